"""The one place for backend-specific code (TensorFlow, JAX, PyTorch).

kreg's math is written in `keras.ops`; what differs between backends is how a
value is read inside a compiled step, how a small function is compiled on its
own, and how a tensor is brought to NumPy. Every `if backend == ...` of kreg
lives here, and `tests/test_backends.py` checks each branch on the backend the
suite runs under.

The one real difference is the live strength under JAX. TensorFlow and PyTorch
read a variable when the step runs. JAX's trainer traces the step as a pure
function of the model's and optimizer's variables; any other variable (a
regularizer's strength is neither) would be read once, at trace time, and baked
in as a constant. Under a JAX trace the strength is therefore read through
`jax.pure_callback` from its host copy, kept by `Strength.assign`: one scalar per
regularizer and step, so `reg.strength.assign(v)` reaches the next compiled
step as on the other backends.
"""

import numbers

import keras
import numpy as np


def name():
    """The Keras backend: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def _is_jax_tracer(value):
    if name() != "jax":
        return False
    import jax

    return isinstance(value, jax.core.Tracer)


def concrete(value):
    """`value` as a NumPy array when it is known now (not a symbolic/traced tensor), else None."""
    if isinstance(value, (numbers.Number, np.ndarray, np.generic, list, tuple)):
        return np.asarray(value)
    if isinstance(value, keras.Variable):
        value = value.value
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(value, tf.Tensor) and not tf.is_symbolic_tensor(value):
            return value.numpy()
        if isinstance(value, tf.Variable) and tf.executing_eagerly():
            return value.numpy()
        return None
    if backend == "jax" and _is_jax_tracer(value):
        return None
    if backend == "torch":
        import torch

        if isinstance(value, torch.Tensor):
            if torch.compiler.is_compiling():
                return None
            return np.asarray(keras.ops.convert_to_numpy(value.detach()))  # bfloat16 too
    try:
        return np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:  # a symbolic tensor of another backend
        return None


def to_numpy(value):
    """A concrete tensor or variable as a NumPy array (detached from autograd on torch)."""
    array = concrete(value)
    if array is None:
        raise ValueError(f"Expected a concrete tensor, received a traced one: {value!r}")
    return array


def placement():
    """Where a new tensor is placed in the current device scope, as a string (the
    device of a scalar made now: `tf.device`, `keras.device`)."""
    probe = keras.ops.zeros(())
    backend = name()
    if backend == "tensorflow":
        return str(probe.device)
    if backend == "jax":
        return str(sorted(str(d) for d in probe.devices()))
    return str(getattr(probe, "device", None))


def read_strength(strength, like):
    """The value of `strength` (a `Strength` variable) that a compiled step re-reads.

    `like` is a tensor of the computation that reads it: when it is a JAX tracer
    and the variable is not part of the traced state, the value comes from a
    `jax.pure_callback`, evaluated at every run of the compiled step. Elsewhere
    it is the variable's value (a stateless scope's value where one is set).
    """
    value = strength.value
    if name() != "jax" or _is_jax_tracer(value) or not _is_jax_tracer(like):
        return value
    import jax

    return jax.pure_callback(
        strength._host_value, jax.ShapeDtypeStruct((), np.dtype(strength.dtype))
    )


def compiled_update(variable, function):
    """`update(*args)`: `variable.assign(function(variable.value, *args))`, compiled once.

    Kept by the caller (kreg keeps it on the variable, so it goes away with the
    model). TensorFlow: one `tf.function` that assigns in the graph (not
    XLA-compiled on its own: TensorFlow keeps every XLA program in a process-wide
    cache that outlives the model). JAX: `jax.jit` of `function`, then an assign.
    PyTorch: eager, without autograd recording.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(
            lambda *args: variable.assign(function(variable.value, *args)), autograph=False
        )
    if backend == "jax":
        import jax

        jitted = jax.jit(function)
        return lambda *args: variable.assign(jitted(variable.value, *args))
    if backend == "torch":
        import torch

        def update(*args):
            with torch.no_grad():
                variable.assign(function(variable.value, *args))

        return update
    return lambda *args: variable.assign(function(variable.value, *args))


def compiled(function):
    """`function` compiled for repeated calls with tensor arguments (no variable writes).

    TensorFlow: a `tf.function` (not XLA-compiled on its own, as above). JAX:
    `jax.jit`. PyTorch: eager, without autograd recording.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, autograph=False)
    if backend == "jax":
        import jax

        return jax.jit(function)
    if backend == "torch":
        import torch

        def no_grad(*args):
            with torch.no_grad():
                return function(*args)

        return no_grad
    return function


def compiled_inference(model, function):
    """`call(x, y)`: `function(model(x, training=False), x, y)` compiled, at the model's
    weights when called.

    TensorFlow: a `tf.function` that reads the model's variables when it runs (a
    captured variable is read at call time there). JAX, where a traced function
    would keep the values it was traced with: `jax.jit` over `model.stateless_call`,
    the variables' current values passed at every call. PyTorch: eager, no autograd.
    """
    if name() == "tensorflow":
        run = compiled(lambda x, y: function(model(x, training=False), x, y))
        return run

    def stateless(trainable, non_trainable, x, y):
        outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return function(outputs, x, y)

    run = compiled(stateless)
    return lambda x, y: run([v.value for v in model.trainable_variables],
                            [v.value for v in model.non_trainable_variables], x, y)


def export_saved_model(model, path, x):
    """Exports `model` as a SavedModel at `path`; returns its `serve(x)` as NumPy.

    SavedModel is TensorFlow's format, and Keras exports it from the TensorFlow
    backend (from JAX it needs TensorFlow installed beside JAX, and PyTorch exports
    its own formats), so on the other backends this returns None and writes
    nothing: the `.keras` file is the portable artifact there.
    """
    if name() != "tensorflow":
        return None
    import tensorflow as tf

    model.export(path, verbose=False)
    served = tf.saved_model.load(path)  # keep it while serving: it owns the variables
    return np.asarray(served.serve(x))


def steps_per_execution(wanted):
    """`wanted`, or 1 on PyTorch (whose Keras trainer runs one step per call)."""
    return 1 if name() == "torch" else wanted


def penalty_share_per_replica():
    """The share of the whole penalty's gradient in one replica's gradient.

    Under a TensorFlow `tf.distribute` strategy Keras scales each replica's loss,
    penalties included, by `1 / replicas` and sums the replicas' gradients, so
    one replica's gradient holds `1 / replicas` of the penalty's. Elsewhere it
    holds all of it (JAX's `keras.distribution` computes one global loss).
    """
    if name() != "tensorflow":
        return 1.0
    import tensorflow as tf

    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync


def jit_compile_default():
    """`jit_compile` for kreg's own compiled loops: XLA on TensorFlow and JAX; off on
    PyTorch (where Keras's `jit_compile=True` means `torch.compile`, minutes of
    Inductor compilation on a CPU for a short path)."""
    return name() in ("tensorflow", "jax")
