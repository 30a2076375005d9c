"""Proximal training: exact zeros inside `model.fit` and in custom training loops.

A Keras regularizer adds its penalty to the loss, so the optimizer follows the
penalty's (sub)gradient: an L1 weight oscillates around zero and is never exactly
zero. The proximal gradient step instead moves along the gradient of the loss
alone and then replaces each regularized weight by the regularizer's prox,

    w <- prox_{step * R}(w - step * grad L(w)),

whose fixed points are the minimisers (KKT points) of `L + R` and whose prox
returns exact zeros. `Proximal` does this inside any compiled Keras train step;
`proximal_step` applies the prox alone, for custom training loops.

Adaptive optimizers do not step by their learning rate: Adam moves weight i by
about `lr / (sqrt(v_i) + eps)` times its gradient. `Proximal` takes the prox in
the optimizer's own diagonal metric, with that per-weight step (the
preconditioned proximal step of ProxGen), so every supported optimizer solves
the same problem as plain proximal gradient descent.

References:
    Yun, Lozano & Yang, "Adaptive proximal gradient methods for structured
    neural networks", NeurIPS 2021 (ProxGen).
"""

import keras
import numpy as np
from keras import ops

from kreg import _backend
from kreg import _keras
from kreg import _math
from kreg import _validation
from kreg import layouts
from kreg.regularizers import kreg_regularizer

__all__ = ["Proximal", "proximal_step"]


def _sgd_step(optimizer, variable, lr, momentum_step, dtype):
    del variable, dtype
    if optimizer.momentum == 0:
        return lr
    if optimizer.nesterov:
        return optimizer.momentum * momentum_step + lr
    return momentum_step


def _adam_step(optimizer, variable, lr, momentum_step, dtype):
    # Keras's Adam update is `alpha * m / (sqrt(v) + eps)` with
    # `alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`; as a multiple of the
    # bias-corrected momentum `m / (1 - beta_1^t)` (the gradient estimate) it is
    # `lr * sqrt(1 - beta_2^t) / (sqrt(v) + eps)` per weight. AdamW's decoupled
    # weight decay has already been applied by the inner optimizer.
    del momentum_step
    v = _keras.optimizer_slot(optimizer, "velocity_hat" if optimizer.amsgrad else "velocity",
                              variable)
    t = ops.cast(optimizer.iterations, dtype)
    beta_2_power = ops.power(ops.cast(optimizer.beta_2, dtype), t)
    v = ops.cast(v, dtype)
    return lr * ops.sqrt(1 - beta_2_power) / (ops.sqrt(v) + optimizer.epsilon)


def _nadam_step(optimizer, variable, lr, momentum_step, dtype):
    # Keras's Nadam update is `lr * m_hat / (sqrt(v_hat) + eps)`, `v_hat = v / (1 - beta_2^t)`;
    # the momentum schedule only enters `m_hat`, the gradient estimate.
    del momentum_step
    v = ops.cast(_keras.optimizer_slot(optimizer, "velocity", variable), dtype)
    t = ops.cast(optimizer.iterations, dtype)
    v_hat = v / (1 - ops.power(ops.cast(optimizer.beta_2, dtype), t))
    return lr / (ops.sqrt(v_hat) + optimizer.epsilon)


def _rmsprop_step(optimizer, variable, lr, momentum_step, dtype):
    # Keras's RMSprop puts epsilon inside the square root.
    denominator = ops.cast(_keras.optimizer_slot(optimizer, "velocity", variable), dtype)
    if optimizer.centered:
        average = _keras.optimizer_slot(optimizer, "average_gradient", variable)
        denominator = denominator - ops.square(ops.cast(average, dtype))
    scale = momentum_step if optimizer.momentum > 0 else lr
    return scale / ops.sqrt(denominator + optimizer.epsilon)


def _adagrad_step(optimizer, variable, lr, momentum_step, dtype):
    del momentum_step
    accumulator = _keras.optimizer_slot(optimizer, "accumulator", variable)
    return lr / ops.sqrt(ops.cast(accumulator, dtype) + optimizer.epsilon)


# The classes whose update `Proximal` knows (a backend's own implementation of one of
# them included, see `_keras.public_optimizer_class`); any other subclass may change
# the update rule, so it is refused rather than given a wrong step.
_STEP_RULES = {
    keras.optimizers.SGD: _sgd_step,
    keras.optimizers.Adam: _adam_step,
    keras.optimizers.AdamW: _adam_step,
    keras.optimizers.Nadam: _nadam_step,
    keras.optimizers.RMSprop: _rmsprop_step,
    keras.optimizers.Adagrad: _adagrad_step,
}


def _momentum(optimizer):
    """The heavy-ball momentum of SGD or RMSprop (0 when there is none)."""
    if _keras.public_optimizer_class(optimizer) in (keras.optimizers.SGD, keras.optimizers.RMSprop):
        return float(optimizer.momentum)
    return 0.0


@keras.saving.register_keras_serializable(package="kreg")
class Proximal(keras.optimizers.Optimizer):
    """Wraps a Keras optimizer to train kreg regularizers by their prox.

    After every update of the inner optimizer, each updated variable whose
    regularizer is a kreg regularizer is replaced by the prox of that
    regularizer, taken with the step the inner optimizer just made:

        w <- reg.prox(w_after_update, step)

    and the regularizer's own gradient is taken out of the gradient it receives
    (each kreg regularizer knows it in closed form, `reg.gradient(w)`), so the
    penalty acts through the prox alone. Nothing is switched on the regularizer:
    the same regularizer under any other optimizer (after a recompile,
    `clone_model`, `load_model`, in a second model) follows its gradient as
    usual. The `loss` in logs includes the penalty value: it is the objective
    being minimised.
    Variables without a kreg regularizer train exactly as under the inner
    optimizer, Keras regularizers included. The steps, in Keras's own formulas
    (`t` = the update's iteration count, starting at 1; `lr` the learning rate
    at that update, schedules included):

    * `SGD`: `lr`; with momentum `beta` the step is the accumulated learning
      rate `s_t = beta * s_{t-1} + lr` (`beta * s_t + lr` with Nesterov), the
      displacement per unit of a constant gradient, which tends to
      `lr / (1 - beta)`;
    * `Adam`, `AdamW`: `lr * sqrt(1 - beta_2^t) / (sqrt(v) + epsilon)` per weight;
    * `Nadam`: `lr / (sqrt(v / (1 - beta_2^t)) + epsilon)` per weight;
    * `RMSprop`: `lr / sqrt(v + epsilon)` (`v - mean_grad^2` inside when
      centered; `s_t` in place of `lr` with momentum);
    * `Adagrad`: `lr / sqrt(accumulator + epsilon)`.

    With these, a fixed point of training satisfies the optimality (KKT)
    condition of `loss + penalty` whatever the optimizer. Per-weight steps give
    the prox in the diagonal metric (`argmin_y sum_i (y_i - w_i)^2 / (2 step_i) +
    R(y)`), exact for every kreg regularizer.

    The prox runs inside the compiled train step, once per real update: with
    `steps_per_execution`, `jit_compile`, only on the applying steps of
    `gradient_accumulation_steps`, and not on an update that loss scaling skips
    (under `mixed_float16`, Keras wraps `Proximal` in a `LossScaleOptimizer`).
    A compiled model saves to `.keras` with its optimizer state.

    In a custom training loop, differentiate the loss `fit` differentiates,
    penalties included (`loss + ops.sum(model.losses)`), and call
    `optimizer.apply(grads, variables)` as usual: `Proximal` takes the
    penalties' gradient out again. (For a loop whose loss leaves the penalties
    out, use a plain optimizer and `kreg.proximal_step`.)

    Args:
        optimizer: the inner optimizer, an instance of exactly one of
            `keras.optimizers.SGD`, `Adam`, `AdamW`, `Nadam`, `RMSprop` or
            `Adagrad`, without `use_ema`.

    Raises:
        TypeError: for any other optimizer (its class is named).
        ValueError: for an inner optimizer with `use_ema=True` (its moving
            average would be taken before the prox).

    References:
        Yun, Lozano & Yang, "Adaptive proximal gradient methods for structured
        neural networks", NeurIPS 2021 (ProxGen).

    Example:

    >>> import numpy as np, keras, kreg
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
    ...     1, use_bias=False, kernel_regularizer=kreg.L1(0.2))])
    >>> model.set_weights([np.array([[1.0], [0.05], [-0.5]])])
    >>> model.compile(optimizer=kreg.Proximal(keras.optimizers.SGD(0.5)), loss="mse")
    >>> _ = model.train_on_batch(np.zeros((4, 3)), np.zeros((4, 1)))  # zero gradient
    >>> np.round(model.get_weights()[0].ravel().astype(float), 6).tolist()  # threshold 0.5 * 0.2
    [0.9, 0.0, -0.4]
    """

    def __init__(self, optimizer):
        if _keras.public_optimizer_class(optimizer) not in _STEP_RULES:
            names = ", ".join(c.__name__ for c in _STEP_RULES)
            received = type(optimizer).__name__
            raise TypeError(
                "Invalid type for argument `optimizer`: expected an instance of exactly one "
                f"of keras.optimizers.{{{names}}} (kreg.Proximal takes the prox with the step "
                "of the update, which it knows for these classes; a subclass may change the "
                f"update). Received: optimizer of type {received}"
                + (
                    "; to combine with loss scaling, wrap the other way round, "
                    "keras.optimizers.LossScaleOptimizer(kreg.Proximal(...)) "
                    "(Keras does it for you under the mixed_float16 policy)"
                    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
                    else ""
                )
            )
        if optimizer.use_ema:
            raise ValueError(
                "Invalid value for argument `optimizer`: expected an optimizer without "
                "`use_ema` (its moving average would be taken before the prox). "
                f"Received: optimizer={type(optimizer).__name__}(use_ema=True)"
            )
        # Like LossScaleOptimizer: the wrapper's own learning rate is unused, the
        # inner optimizer's is exposed as `learning_rate`.
        super().__init__(learning_rate=0.0)
        self.inner_optimizer = optimizer
        self._momentum_step = None

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def loss_scale_factor(self):
        if "inner_optimizer" not in self.__dict__:  # read by the base constructor
            return None
        return self.inner_optimizer.loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        # Set to None by the base constructor and by a wrapping LossScaleOptimizer
        # (which then scales the loss itself): it belongs to the inner optimizer.
        if "inner_optimizer" in self.__dict__:
            self.inner_optimizer.loss_scale_factor = value

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def build(self, var_list):
        """Builds the inner optimizer (and the accumulated step of momentum SGD/RMSprop)."""
        if self.built:
            return
        self.inner_optimizer.build(var_list)
        if _momentum(self.inner_optimizer) > 0:
            self._momentum_step = self.add_variable(
                shape=(), dtype="float32", initializer="zeros", name="momentum_step"
            )
        super().build(var_list)

    def apply(self, grads, trainable_variables=None):
        """Applies the inner optimizer's update to the gradients without the kreg
        penalties' gradient, then the prox of each kreg regularizer."""
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    "When passing `grads` without `trainable_variables`, the optimizer "
                    "must already be built: call `optimizer.build(trainable_variables)` first."
                )
            trainable_variables = list(trainable_variables)
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        grads = list(grads)
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        inner = self.inner_optimizer
        pairs = []
        share = _backend.penalty_share_per_replica()
        for i, (grad, variable) in enumerate(zip(grads, trainable_variables)):
            regularizer = kreg_regularizer(variable)
            if (
                grad is not None
                and regularizer is not None
                and not getattr(variable, "overwrite_with_gradient", False)
            ):
                layout = regularizer._layout(variable)
                grad = ops.convert_to_tensor(grad)
                penalty = regularizer._gradient_in_layout(variable.value, layout)
                if share != 1.0:  # one replica's gradient of a distributed step
                    penalty = penalty * share
                grads[i] = grad - ops.cast(penalty, grad.dtype)
                pairs.append((variable, regularizer, layout))
        # Read before the update: a learning-rate schedule is evaluated at the
        # iteration the update uses, and the accumulation counter is the one the
        # update tests.
        lr = ops.convert_to_tensor(inner.learning_rate)
        accumulation = inner.gradient_accumulation_steps
        if accumulation:
            iterations = _keras.optimizer_iterations_variable(inner)
            is_update_step = ops.equal(ops.mod(iterations + 1, accumulation), 0)
        inner.apply(grads, trainable_variables)
        if pairs:
            self._apply_prox(pairs, lr, is_update_step if accumulation else None)

    def _apply_prox(self, pairs, lr, is_update_step=None):
        # With gradient accumulation the prox applies on update steps only. It is
        # selected with `where` rather than run under `cond`: JAX's `cond` cannot
        # write variables from inside a branch.
        def assign(variable, value):
            if is_update_step is not None:
                value = ops.where(is_update_step, value, variable.value)
            variable.assign(value)

        inner = self.inner_optimizer
        momentum_step = None
        if self._momentum_step is not None:
            momentum_step = _momentum(inner) * self._momentum_step + ops.cast(lr, "float32")
            assign(self._momentum_step, momentum_step)
        rule = _STEP_RULES[_keras.public_optimizer_class(inner)]
        for variable, regularizer, layout in pairs:
            dtype = _math.compute_dtype(variable.dtype)
            step = rule(
                inner,
                variable,
                ops.cast(lr, dtype),
                None if momentum_step is None else ops.cast(momentum_step, dtype),
                dtype,
            )
            assign(variable, self._prox(regularizer, variable.value, step, layout))

    def _prox(self, regularizer, w, step, layout):
        """`regularizer`'s prox, traced into the train step.

        Not compiled by XLA on its own: TensorFlow keeps every XLA program in a
        process-wide cache that `keras.backend.clear_session()` does not reach
        (measured: 2.4 to 4 MiB more per built-and-cleared model), so a separate
        XLA program per optimizer would grow a cross-validation grid's memory
        without end. Compile the model with `jit_compile=True` to have XLA fuse
        the prox with the rest of the step (the default on GPUs).
        """
        return regularizer._prox_in_layout(w, step, layout)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(self.inner_optimizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects
        )
        return cls(optimizer, **config)


def proximal_step(model_or_variables, step_size):
    """Replaces each kreg-regularized variable `w` by `reg.prox(w, step_size)`.

    For custom training loops that apply the gradient of the loss themselves:
    after `optimizer.apply(grads, variables)` with SGD at learning rate `lr`,
    `kreg.proximal_step(model, lr)` completes one proximal gradient step.
    Each variable's prox is compiled once (a `tf.function` under TensorFlow,
    `jax.jit` under JAX; eager under PyTorch), kept on the variable (it goes away
    with the model): another `step_size` value does not retrace. Under
    TensorFlow it is not XLA-compiled on its own (TensorFlow's process-wide XLA
    cache would keep the program after the model is gone); called inside your
    own `tf.function(jit_compile=True)` train step, it is compiled and fused with
    that step.

    The penalties' gradient must not also enter the loss: leave
    `model.losses` out of the loss you differentiate.

    Args:
        model_or_variables: a Keras model or layer (its trainable variables that
            have a kreg regularizer are used; their layouts are bound, see
            `kreg.layouts`), or a list of `keras.Variable`s each of which has a
            kreg regularizer.
        step_size: non-negative finite scalar: a Python number (converted to each
            variable's own float dtype, so float64 stays exact) or a scalar
            tensor.

    Raises:
        ValueError: when there is no variable with a kreg regularizer, when a
            listed variable has none, or for a negative, non-finite or
            non-scalar step.
        TypeError: for a listed object that is not a `keras.Variable`.

    Example:

    >>> import numpy as np, keras, kreg
    >>> w = keras.Variable(np.array([[1.0, -0.2], [0.5, 2.0]]))
    >>> w.regularizer = kreg.L1(0.5)
    >>> kreg.proximal_step([w], 0.6)  # soft-threshold at 0.3
    >>> np.round(w.numpy().astype(float), 4).tolist()
    [[0.7, -0.0], [0.2, 1.7]]
    """
    if isinstance(model_or_variables, keras.layers.Layer):
        variables = [
            v for v in model_or_variables.trainable_variables if kreg_regularizer(v) is not None
        ]
        if any(getattr(v, "_kreg_layout", None) is None for v in variables):
            layouts.bind(model_or_variables)
        if not variables:
            raise ValueError(
                "Invalid value for argument `model_or_variables`: expected a model with "
                "at least one trainable variable that has a kreg regularizer. Received: "
                f"model_or_variables={model_or_variables.name!r} without one"
            )
    else:
        if isinstance(model_or_variables, keras.Variable):
            model_or_variables = [model_or_variables]
        variables = list(model_or_variables)
        if not variables:
            raise ValueError(
                "Invalid value for argument `model_or_variables`: expected a model or a "
                "non-empty list of variables. Received: model_or_variables=[]"
            )
        for variable in variables:
            if not isinstance(variable, keras.Variable):
                raise TypeError(
                    "Invalid type for argument `model_or_variables`: expected a Keras "
                    "model or a list of `keras.Variable`s (a kreg regularizer is found "
                    f"through `variable.regularizer`). Received: {_validation._short(variable)} "
                    f"of type {type(variable).__module__}.{type(variable).__name__}, which "
                    "is not a keras.Variable"
                )
            if kreg_regularizer(variable) is None:
                raise ValueError(
                    "Invalid value for argument `model_or_variables`: expected variables "
                    "whose `regularizer` is a kreg regularizer. Received: "
                    f"{variable.path!r} with regularizer {variable.regularizer!r}"
                )
    step = _check_scalar_step(step_size)
    for variable in variables:
        _prox_function(variable)(step)


def _check_scalar_step(step_size):
    """A Python/NumPy number (checked, as a float64 tensor) or a scalar tensor."""
    if _validation._is_real(step_size) or (
        isinstance(step_size, np.ndarray) and step_size.shape == ()
    ):
        value = _validation.check_strength(step_size, name="step_size", float32=False)
        return ops.convert_to_tensor(value, "float64")
    if step_size is None or isinstance(step_size, (str, bool, np.bool_)):
        _validation.check_strength(step_size, name="step_size")  # raises
    step = ops.convert_to_tensor(step_size)
    if len(step.shape) != 0:
        raise ValueError(
            "Invalid value for argument `step_size`: expected a scalar. Received: "
            f"step_size of shape {tuple(step.shape)}"
        )
    value = _backend.concrete(step)
    if value is not None:
        _validation.check_strength(value, name="step_size", float32=False)
    # float64 (exact for every float step): one trace whatever the step's dtype.
    return ops.cast(step, "float64")


def _prox_function(variable):
    """`fn(step)`: `variable.assign(prox)`, compiled and kept on the variable.

    The function lives as long as the variable (no process-wide cache keeps
    models or their programs alive after `keras.backend.clear_session()`); the
    step comes in as a tensor, so any step value reuses the one trace.
    """
    regularizer = kreg_regularizer(variable)
    layout = regularizer._layout(variable)
    cached = getattr(variable, "_kreg_prox_step", None)
    if cached is not None and cached[0] is regularizer and cached[1] == layout:
        return cached[2]

    def prox(value, step):
        step = ops.cast(step, _math.compute_dtype(variable.dtype))
        return regularizer._prox_in_layout(value, step, layout)

    # One compiled function per variable (see `_backend.compiled_update`); inside
    # your own `tf.function(jit_compile=True)` or `jax.jit` step the prox is
    # compiled with that step instead.
    apply_prox = _backend.compiled_update(variable, prox)
    variable._kreg_prox_step = (regularizer, layout, apply_prox)
    return apply_prox
