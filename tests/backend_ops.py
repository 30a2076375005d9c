"""Test-side helpers that need each backend's own API: autodiff, compilation,
and one step of a custom training loop, written the way each backend's users
write them (Keras's guides: `tf.GradientTape`, `jax.value_and_grad` with
`stateless_call`, `torch` autograd)."""

import keras
import numpy as np
from keras import ops

BACKEND = keras.backend.backend()


def numpy(x):
    """A tensor or variable as a NumPy array (detached on torch)."""
    if isinstance(x, keras.Variable):
        x = x.value
    if BACKEND == "torch" and hasattr(x, "detach"):
        x = x.detach()
    return np.asarray(ops.convert_to_numpy(x))


def gradient(function, w):
    """`d function(w) / d w` by the backend's autodiff, at the NumPy array `w`."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(w)
        with tf.GradientTape() as tape:
            value = function(x)
        return tape.gradient(value, x).numpy()
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.grad(lambda x: function(x))(ops.convert_to_tensor(w)))
    import torch

    x = torch.tensor(w, requires_grad=True)
    function(x).backward()
    return x.grad.detach().cpu().numpy()


def compiled(function, jit_compile=False):
    """`function` compiled by the backend: `tf.function` (XLA with `jit_compile`),
    `jax.jit`, or `torch.compile` (TorchDynamo's graph capture; the "eager" backend
    without `jit_compile`, Inductor's code generation with it)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=jit_compile)
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    import torch

    return torch.compile(function, backend="inductor" if jit_compile else "eager")


def custom_loop_step(model, optimizer, x, data_loss, include_penalties=True):
    """One step of a custom training loop on `data_loss(model(x))` (+ `model.losses`)."""
    if BACKEND == "jax":
        import jax

        def loss_fn(trainable, non_trainable):
            y_pred, non_trainable, losses = model.stateless_call(
                trainable, non_trainable, x, return_losses=True
            )
            loss = data_loss(y_pred)
            if include_penalties and losses:
                loss = loss + sum(losses)
            return loss, non_trainable

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        opt_vars = [v.value for v in optimizer.variables]
        (_, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            trainable, non_trainable
        )
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        for variable, value in zip(model.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(model.non_trainable_variables, non_trainable):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, opt_vars):
            variable.assign(value)
        return
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = data_loss(model(x))
            if include_penalties and model.losses:
                loss = loss + tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
    else:
        import torch

        model.zero_grad()
        loss = data_loss(model(x))
        if include_penalties and model.losses:
            loss = loss + sum(model.losses)
        loss.backward()
        grads = [v.value.grad for v in model.trainable_variables]
        with torch.no_grad():
            optimizer.apply(grads, model.trainable_variables)
        return
    optimizer.apply(grads, model.trainable_variables)
