"""The engine behind `kreg.regularization_path` and `kreg.cross_validate`.

One `_PathTrainer` owns a clone of the user's model compiled once, with a train
step that runs a variable number of full-batch steps inside one compiled call
(`keras.ops.fori_loop`), so a strength costs a few calls, not one `fit` per
epoch. Strengths change only through `reg.strength.assign`; the weights carry
over from one strength to the next (warm starts).

The multi-step train step wraps the model's own `train_step` (the documented
override point of `keras.Model`); the step count is a variable tracked by the
clone, so it is part of the state on every backend. In residual mode (plain SGD)
a call runs blocks of CHECK_EVERY steps and returns as soon as a block's last step
passes the residual test; the steps are FISTA's with adaptive restart
(`kreg._fista`) unless `accelerate=False`, and the last step of every block is a
plain proximal gradient step from the last iterate, so the residual is the plain
method's and the weights a call returns are an iterate.
"""

import keras
import numpy as np
from keras import ops

from kreg import _backend
from kreg import _fista
from kreg import _keras
from kreg import _validation
from kreg import proximal as _proximal
from kreg import regularizers as _regularizers
from kreg.regularizers import kreg_regularizer

# Objective criterion (any optimizer but plain SGD): steps in the first compiled call for
# a strength, and the most in one call: the count doubles between convergence checks (a
# strength that converges at once costs one short call, one that needs thousands costs
# about log2(thousands) calls).
FIRST_CHUNK = 8
MAX_CHUNK = 1024
# Residual criterion (plain SGD): the compiled call checks the residual itself every
# CHECK_EVERY steps and returns once it is below the tolerance (usually one call per
# strength, at most CHECK_EVERY - 1 steps past the first point that passes), or after
# MAX_CALL steps.
CHECK_EVERY = 16
MAX_CALL = 8192
_RESIDUAL_KEY = "kreg_last_step_sq"
_STEPS_KEY = "kreg_steps"


def residual_mode(optimizer):
    """True when the last step's displacement over the learning rate is the
    proximal-gradient residual: plain SGD, no momentum, a constant learning rate,
    nothing else that changes the update."""
    inner = optimizer.inner_optimizer
    return (
        isinstance(inner, keras.optimizers.SGD)
        and float(inner.momentum) == 0.0
        and not isinstance(inner._learning_rate, keras.optimizers.schedules.LearningRateSchedule)
        and not inner.weight_decay
        and inner.clipnorm is None
        and inner.clipvalue is None
        and inner.global_clipnorm is None
        and not inner.gradient_accumulation_steps
    )


def wrap_optimizer(optimizer):
    """A fresh copy of `optimizer` (from its config), wrapped in `kreg.Proximal` if it is not."""
    fresh = type(optimizer).from_config(optimizer.get_config())
    if isinstance(fresh, _proximal.Proximal):
        return fresh
    return _proximal.Proximal(fresh)  # TypeError (naming the class) for unsupported ones


def compile_config(model):
    """The arguments `model` was compiled with, as objects (None if not compiled).

    From Keras's compile config, except the loss: `model.loss`, the objects `compile`
    received, because the config can drop a loss's arguments (Keras 3.15's
    `Huber.get_config()` has no `delta`: a clone compiled from it would train the
    Huber loss with `delta=1.0` whatever the model's). Loss objects hold no state, so
    the clone shares them.
    """
    config = model.get_compile_config() if getattr(model, "compiled", False) else None
    if config is None:
        return None
    config = keras.saving.deserialize_keras_object(config)
    if getattr(model, "loss", None) is not None:
        config["loss"] = model.loss
    return config


# What `known_convex` accepts: one affine layer of the inputs (shape-only layers
# around it), a loss convex in that layer's output, penalties convex in the weights.
_SHAPE_ONLY = (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Reshape)
_CONVEX_LOSS_NAMES = {"mse", "mean_squared_error", "mae", "mean_absolute_error", "huber",
                      "log_cosh"}
_CONVEX_LOSSES = (keras.losses.MeanSquaredError, keras.losses.MeanAbsoluteError,
                  keras.losses.Huber, keras.losses.LogCosh)
_CONVEX_PENALTIES = (_regularizers.L1, _regularizers.L2, _regularizers.ElasticNet,
                     _regularizers.GroupLasso, _regularizers.SparseGroupLasso)
_LOGIT_LOSSES = (keras.losses.BinaryCrossentropy, keras.losses.CategoricalCrossentropy,
                 keras.losses.SparseCategoricalCrossentropy)


def _convex_loss(loss):
    if isinstance(loss, str):
        return loss in _CONVEX_LOSS_NAMES
    if isinstance(loss, _CONVEX_LOSSES):
        return True
    return isinstance(loss, _LOGIT_LOSSES) and bool(loss.get_config().get("from_logits"))


def known_convex(model, loss, regularizers):
    """True when `loss + penalties` is convex in the trainable weights, as far as the
    model's structure shows: a single trainable `Dense` or `EinsumDense` layer
    without activation (a linear or generalised linear model), otherwise only
    layers that reshape, a loss convex in its output (squared, absolute, Huber,
    log-cosh; a cross-entropy on logits) and convex penalties (the lasso family).
    Anything else (a hidden layer, an activation, a nonconvex penalty) is not
    known to be convex, and FISTA's extrapolation can then raise the objective."""
    if not _convex_loss(loss) or not all(isinstance(r, _CONVEX_PENALTIES) for r in regularizers):
        return False
    affine = 0
    for layer in _keras.flatten_layers(model):
        if isinstance(layer, keras.Model) or isinstance(layer, _SHAPE_ONLY):
            continue
        if (not isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))
                or layer.activation is not keras.activations.linear):
            return False
        affine += 1
    return affine == 1


def _check_aligned(values, variables, what):
    """Values for `variables` one to one, never silently truncated by `zip`."""
    shapes = [tuple(np.shape(v)) for v in values]
    expected = [tuple(v.shape) for v in variables]
    if shapes != expected:
        raise ValueError(
            f"kreg: expected the values of a model of this architecture ({what}: "
            f"{len(expected)} arrays of shapes {expected}). Received {len(shapes)} arrays of "
            f"shapes {shapes}")


class PathTrainer:
    """A clone of `model`, compiled once with a multi-step full-batch train step."""

    def __init__(self, model, selected_indices, jit_compile=None, optimizer=None,
                 accelerate=None):
        config = compile_config(model)
        self.source_config = dict(config)
        try:
            clone = keras.models.clone_model(model)
        except Exception as error:  # Keras's own message says why
            raise ValueError(
                "Invalid value for argument `model`: expected a model that "
                "`keras.models.clone_model` can clone (a Sequential or functional model, or "
                f"a subclassed one with `get_config`). Received: model {model.name!r}, which "
                f"clone_model refused: {error}"
            ) from error
        clone.set_weights(model.get_weights())
        self.model = clone
        self.variables = list(clone.variables)  # aligned with model.variables
        # `get_weights()` order: the variables without the random layers' seed states, whose
        # values from the clone's config are kept to start every new model from.
        self._weights = list(clone.weights)
        weight_ids = {id(v) for v in self._weights}
        self._other_initial = [(v, ops.convert_to_numpy(v)) for v in self.variables
                               if id(v) not in weight_ids]
        self.trainable = list(clone.trainable_variables)
        self.penalised = [self.variables[i] for i in selected_indices]
        self.regularizers = []
        for variable in self.penalised:
            reg = kreg_regularizer(variable)
            if all(reg is not r for r in self.regularizers):
                self.regularizers.append(reg)
        config = dict(config)
        config["optimizer"] = wrap_optimizer(optimizer or config["optimizer"])
        self.residual_mode = residual_mode(config["optimizer"])
        if accelerate is True and not self.residual_mode:
            inner = type(config["optimizer"].inner_optimizer).__name__
            raise _validation.invalid(
                "accelerate", "None or False for this model: FISTA (accelerate=True) "
                "accelerates the proximal gradient method, i.e. plain `keras.optimizers.SGD` "
                "(no momentum, a constant learning rate, no weight decay, clipping or gradient "
                f"accumulation), and the model's optimizer is a {inner} that is not", accelerate)
        self.accelerated = self.residual_mode and (
            accelerate is True
            or (accelerate is None and known_convex(clone, config.get("loss"), self.regularizers))
        )
        config["steps_per_execution"] = 1
        if jit_compile is None:
            jit_compile = _backend.jit_compile_default() and not config.get(
                "run_eagerly")
        config["jit_compile"] = jit_compile
        clone.compile(**config)
        self.optimizer = clone.optimizer
        self.learning_rate = (
            float(ops.convert_to_numpy(self.optimizer.inner_optimizer.learning_rate))
            if self.residual_mode else None
        )
        # The step count: a variable the clone tracks, so it is in the state of every backend.
        self.steps = keras.Variable(np.int32(1), dtype="int32", trainable=False,
                                    name="kreg_path_steps")
        self._count = 1
        self.calls = 0
        clone.kreg_path_steps = self.steps
        # The squared displacement under which the compiled call stops (residual mode).
        self.threshold = keras.Variable(np.float32(0.0), dtype="float32", trainable=False,
                                        name="kreg_path_threshold")
        clone.kreg_path_threshold = self.threshold
        self._threshold = None
        # FISTA's state (x_k, t_k): variables tracked by the clone, so on JAX they are in the
        # state the compiled step threads (non-trainable, as the step count).
        self.fista = _fista.Fista(self.trainable) if self.accelerated else None
        if self.fista is not None:
            for k, variable in enumerate(self.fista.variables):
                setattr(clone, f"kreg_fista_{k}", variable)
        self._install_multi_step()
        self.optimizer.build(self.trainable)
        self._optimizer_initial = [ops.convert_to_numpy(v) for v in self.optimizer.variables]
        self._strengths_initial = [float(ops.convert_to_numpy(r.strength))
                                   for r in self.regularizers]
        self._scores = {}

    def _install_multi_step(self):
        stop = (self.threshold, CHECK_EVERY, _STEPS_KEY) if self.residual_mode else None
        _keras.repeat_train_step(self.model, self.steps, self.trainable, _RESIDUAL_KEY,
                                 momentum=self.fista, stop=stop)

    # -- state ---------------------------------------------------------------
    def reset(self, values):
        """Sets every variable of the clone to `values` (a `snapshot()`: aligned with
        `model.variables`, seed states included) and a fresh optimizer state (and FISTA's:
        no momentum)."""
        _check_aligned(values, self.variables, "snapshot()")
        for variable, value in zip(self.variables, values):
            variable.assign(value)
        self._fresh_optimizer()

    def start_from(self, weights):
        """As `reset`, from a model's `get_weights()` (no seed states: those of a new
        clone, from its config, are restored), i.e. what a new clone of that model starts
        from."""
        _check_aligned(weights, self._weights, "get_weights()")
        for variable, value in zip(self._weights, weights):
            variable.assign(value)
        for variable, value in self._other_initial:
            variable.assign(value)
        self._fresh_optimizer()

    def _fresh_optimizer(self):
        for variable, value in zip(self.optimizer.variables, self._optimizer_initial):
            variable.assign(value)
        self._restart_momentum()

    def held_out_score(self, fn, x, y):
        """`mean(fn(y, model(x)))` at the current weights (inference mode), one compiled
        call: `fn` a Keras loss or metric function (or a stateless `Loss`) of a
        single-output model. The compiled function is kept per `fn` (a `Loss` by its
        config) and traced once per data shape."""
        key = fn if not isinstance(fn, keras.losses.Loss) else (
            type(fn), repr(sorted(fn.get_config().items())))
        compiled = self._scores.get(key)
        if compiled is None:
            if len(self._scores) >= 4:
                self._scores.clear()
            compiled = self._scores[key] = _backend.compiled_inference(
                self.model, lambda y_pred, x, y: ops.mean(ops.cast(fn(y, y_pred), "float32")))
        return float(ops.convert_to_numpy(compiled(x, y)))

    def reuse(self, model):
        """Makes this trainer what `PathTrainer(model, ...)` would build, for a `model` that
        `kreg._path_cache` found equivalent: its weights, a fresh optimizer state, the
        strengths the clone had when built, fresh metrics and the source's compile config."""
        self.start_from(model.get_weights())
        for reg, value in zip(self.regularizers, self._strengths_initial):
            reg.strength.assign(value)
        self.model.reset_metrics()
        self.source_config = dict(compile_config(model))
        self.calls = 0

    def _restart_momentum(self):
        if self.fista is not None:
            self.fista.restart()

    def snapshot(self):
        return [ops.convert_to_numpy(v) for v in self.variables]

    def set_strength(self, value):
        for reg in self.regularizers:
            reg.strength.assign(value)

    def run(self, data, count):
        """`count` full-batch steps in one compiled call (in residual mode: up to `count`,
        until the residual is below `self.threshold`); returns the logs as floats.

        On TensorFlow the compiled train function is called directly with a
        one-batch iterator (as Keras's own `train_on_batch` calls it), which skips
        `train_on_batch`'s per-call work (0.5 of its 1 ms on diabetes); the metrics
        are then reset by `begin_strength` (outside residual mode), so in the logs
        the loss is averaged since then. Elsewhere, `train_on_batch`.
        """
        self.calls += 1
        if count != self._count:
            self.steps.assign(count)
            self._count = count
        logs = _keras.train_on_full_batch(self.model, data)
        return {k: float(v) for k, v in logs.items()}

    def begin_strength(self, strength):
        """A new strength: from the current weights, without momentum (FISTA's `t = 1`).
        The metrics restart (the objective criterion reads the loss) except in residual
        mode, where the loss is not read and resetting costs more than a strength's steps."""
        self.set_strength(strength)
        if not self.residual_mode:
            self.model.reset_metrics()
        self._restart_momentum()

    def gradient_at_zero(self, data):
        """The gradient of the loss (without the selected penalties) at the current
        weights with the penalised weights set to zero, per penalised variable.

        One proximal step at strength 0 (the prox is then the identity) from those
        weights: `w - lr * grad`. Needs residual mode (plain SGD); the weights,
        strengths and optimizer state are restored afterwards.
        """
        saved = self.snapshot()
        saved_strengths = [float(r.strength.numpy()) for r in self.regularizers]
        for variable in self.penalised:
            variable.assign(np.zeros(variable.shape, variable.dtype))
        self.begin_strength(0.0)
        before = [ops.convert_to_numpy(v).astype("float64") for v in self.penalised]
        self.run(data, 1)
        after = [ops.convert_to_numpy(v).astype("float64") for v in self.penalised]
        grads = [(b - a) / self.learning_rate for b, a in zip(before, after)]
        self.reset(saved)
        for reg, value in zip(self.regularizers, saved_strengths):
            reg.strength.assign(value)
        return grads

    # -- one strength ------------------------------------------------------------
    def fit_strength(self, data, strength, tol, max_epochs, gradient_scale, first_chunk=None):
        """Trains at `strength` from the current weights until converged or `max_epochs`
        steps; returns `(epochs, converged, criterion value)`. Objective criterion: the
        first call runs `first_chunk` steps (the previous strength's count: neighbours
        on a path need about as many), the next ones twice as many as the one before."""
        self.begin_strength(strength)
        if self.residual_mode:
            return self._fit_residual(data, tol, max_epochs, gradient_scale)
        # At most a quarter of the budget: the criterion compares two calls' losses, so a
        # first call of the whole budget (a previous strength that hit max_epochs) could
        # never converge.
        chunk = FIRST_CHUNK if first_chunk is None else int(min(
            max(first_chunk, FIRST_CHUNK), MAX_CHUNK, max(FIRST_CHUNK, max_epochs // 4)))
        done, previous = 0, None
        value = float("inf")
        while done < max_epochs:
            count = min(chunk, max_epochs - done)
            logs = self.run(data, count)
            done += count
            loss = logs["loss"]
            if not np.isfinite(loss):
                return done, False, float("nan")
            self.model.reset_metrics()  # the next call's loss: that chunk's mean
            if previous is not None:
                value = abs(previous - loss) / max(abs(loss), np.finfo("float32").tiny)
                if value <= tol:
                    return done, True, value
            previous = loss
            chunk = min(2 * chunk, MAX_CHUNK)
        return done, False, value

    def _fit_residual(self, data, tol, max_epochs, gradient_scale):
        """Residual mode: compiled calls that stop themselves once the last step's
        displacement is at most `tol * lr * gradient_scale` (checked every CHECK_EVERY
        steps); the criterion is then computed here from the logged displacement, and
        decides (a call that stopped on a float32 rounding of the threshold is followed
        by another)."""
        threshold = np.float32((tol * self.learning_rate * gradient_scale) ** 2)
        if threshold != self._threshold:  # the same for every strength of a path
            self.threshold.assign(threshold)
            self._threshold = threshold
        done, value = 0, float("inf")
        while done < max_epochs:
            logs = self.run(data, min(MAX_CALL, max_epochs - done))
            done += int(round(logs[_STEPS_KEY]))
            value = np.sqrt(logs[_RESIDUAL_KEY]) / self.learning_rate / gradient_scale
            if not np.isfinite(value):  # NaN or inf weights (a NaN loss gives NaN steps)
                return done, False, float("nan")
            if value <= tol:
                return done, True, value
        return done, False, value
