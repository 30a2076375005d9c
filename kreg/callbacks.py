"""Callbacks that steer and watch regularization during `fit`.

* `StrengthScheduler` anneals the strength of kreg regularizers, once per epoch or
  exactly at every optimizer step (also with `steps_per_execution > 1` and
  `jit_compile=True`), and logs `strength/<layer>/<weight>`.
* `SparsityMonitor` logs `sparsity/<layer>/<weight>`, `group_sparsity/<layer>/<weight>`
  and the overall `sparsity` of the monitored weights; `measure_sparsity` returns the
  same dict for custom training loops.
* `PenaltyMonitor` logs the total `penalty` and `val_data_loss`, the validation
  loss without it, for `EarlyStopping` and `ReduceLROnPlateau` to monitor.

Log keys are the weight's path without the model's name (`dense_out/kernel`, not
`sequential_2/dense_out/kernel`): name your layers and the keys stay the same when
a notebook cell re-runs and Keras numbers the model anew.

Both report through `logs`, so `History`, `CSVLogger`, `TensorBoard` and any
tracking tool see the numbers, provided they come *after* the kreg callback in the
`callbacks` list (Keras calls callbacks in list order and always appends its own
`History` and progress bar last). Neither callback requires the other.
"""

import math
import numbers
import weakref

import keras
import numpy as np
from keras import ops

from kreg import _backend
from kreg import _keras
from kreg import _math
from kreg import _validation
from kreg import compaction
from kreg import layouts
from kreg.regularizers import Regularizer, kreg_regularizer

__all__ = ["PenaltyMonitor", "SparsityMonitor", "StrengthScheduler", "measure_sparsity"]

_UPDATES = ("epoch", "step")
_INCLUDES = ("regularized", "kernels", "all")

# Which StrengthScheduler controls a regularizer (weak on both sides), to refuse two
# schedulers steering the same regularizer within one `fit`.
_CONTROLLERS = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------- helpers


def _layers(model):
    """The model and every layer nested in it (including layers held as attributes)."""
    return _keras.flatten_layers(model)


def _unique(items):
    seen, out = set(), []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out


def _is_kreg(regularizer):
    return isinstance(regularizer, Regularizer)


def _variable_name(variable):
    return variable.path.rsplit("/", 1)[-1]


def _is_kernel(variable):
    name = _variable_name(variable)
    return name.endswith("kernel") or name.endswith("embeddings")


def _stable_path(variable, model):
    """`variable.path` without the model's own name: `<layer>/<weight>`.

    The model's auto-generated name (`sequential_2`) changes each time a notebook
    cell re-runs; the layer names users choose do not.
    """
    path = variable.path
    if isinstance(model, keras.Model) and path.startswith(model.name + "/"):
        path = path[len(model.name) + 1 :]
    return path


def _keys(prefix, variables, model=None):
    """`prefix/<layer>/<weight>`, made unique when two variables share a path."""
    keys, used = [], set()
    for variable in variables:
        path = _stable_path(variable, model)
        key, n = f"{prefix}/{path}", 1
        while key in used:
            key, n = f"{prefix}/{path}_{n}", n + 1
        used.add(key)
        keys.append(key)
    return keys


# ---------------------------------------------------------------- StrengthScheduler


class _StepSource:
    """This step's strength, computed inside the compiled train step.

    Set as `reg._strength_source` by `StrengthScheduler(update="step")`; the
    regularizer calls it (and assigns the result to `reg.strength`) before it
    computes its penalty, so the value comes from the optimizer's iteration count
    of *this* step even when several steps run in one compiled execution. A
    negative or non-finite value is recorded in the scheduler's `_bad_step` /
    `_bad_value` variables (no Python `if` on tensors: the record is a `where`),
    which the scheduler checks eagerly after each execution.
    """

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def __call__(self):
        scheduler = self.scheduler
        step = ops.convert_to_tensor(scheduler.model.optimizer.iterations)
        value = ops.cast(scheduler.schedule(step), "float32")
        if len(value.shape) != 0:
            raise ValueError(
                "Invalid value for argument `schedule`: expected a scalar strength. "
                f"Received: schedule(step) of shape {tuple(value.shape)}"
            )
        if _backend.concrete(value) is not None:  # an eager step (PyTorch): check it now
            scheduler._check_value(value, int(_backend.to_numpy(step)))
            return value
        valid = ops.logical_and(ops.isfinite(value), ops.greater_equal(value, 0))
        first_bad = ops.convert_to_tensor(scheduler._bad_step)
        record = ops.logical_and(ops.logical_not(valid), ops.less(first_bad, 0))
        scheduler._bad_step.assign(ops.where(record, ops.cast(step, "int64"), first_bad))
        scheduler._bad_value.assign(ops.where(record, value, scheduler._bad_value))
        return value


class StrengthScheduler(keras.callbacks.Callback):
    """Sets the strength of kreg regularizers from a schedule during `fit`.

    The schedule gives absolute strengths: `reg.strength = schedule(index)`, with
    `index` the epoch (`update="epoch"`, applied at the start of each epoch) or the
    optimizer's iteration count (`update="step"`, applied at every step).

    With `update="step"` the strength is computed *inside* the compiled train step
    from `model.optimizer.iterations` (before the step increments it), so every
    step gets its own value even with `steps_per_execution > 1` (where batch
    callbacks fire once per execution) and with `jit_compile=True`; after each step
    `reg.strength` holds the value that step used, which is also the value a
    `kreg.Proximal` optimizer uses for its prox in that step. The hook is installed
    at `on_train_begin` (the train function is retraced once) and removed at
    `on_train_end`. While `fit` validates, the hook is off, so the validation loss
    uses the strength of the last training step. JAX's compiled step sees only
    the model's and the optimizer's state, not the iteration count where the
    penalty is computed: on JAX the scheduler sets the strength before each
    batch instead, the same values for `steps_per_execution=1`, and a
    `ValueError` at the start of `fit` for `steps_per_execution > 1` (where the
    steps of one execution would share a value). PyTorch runs one step per
    execution.
    The model must be built before `fit` (as for `keras.callbacks.BackupAndRestore`).

    Resuming with `keras.callbacks.BackupAndRestore` ends at the strength of an
    uninterrupted run: the epoch index comes from `fit` (which starts at the
    restored epoch) and the step index from the restored optimizer iterations.

    Adds `strength/<layer>/<weight>` (e.g. `strength/dense/kernel`) to the epoch
    logs, and with `update="step"` also to the batch logs, for every weight whose
    regularizer it controls. Put it before `CSVLogger`/`TensorBoard` in the
    `callbacks` list so that they see these keys.

    Validation: a strength that is negative, NaN or infinite raises a `ValueError`
    naming the epoch or step. With `update="epoch"` it is raised before the epoch
    starts. With `update="step"` the value is checked eagerly for the first step
    of `fit` and otherwise recorded inside the compiled step and raised at the end
    of the execution (batch) that contained the step, i.e. after at most
    `steps_per_execution` steps ran with it (an in-graph assertion would not run
    under XLA).

    Several schedulers may control different regularizers in one `fit`; two
    schedulers controlling the same regularizer raise a `ValueError` at the start
    of `fit`. If `fit` stops with an exception, `on_train_end` is not called by
    Keras and the step hook stays installed: the next `fit` with a
    `StrengthScheduler` for the same regularizers replaces it, or call
    `scheduler.on_train_end()` yourself.

    Args:
        schedule: a `keras.optimizers.schedules.LearningRateSchedule` (e.g.
            `PolynomialDecay`, `CosineDecay` with warm-up, `ExponentialDecay`,
            `PiecewiseConstantDecay`), or a callable `f(index) -> strength`. With
            `update="epoch"` a callable receives the epoch as a Python int; with
            `update="step"` it receives the iteration count as a scalar int64
            tensor inside the compiled step, so write it with `keras.ops` and
            without Python `if`s on the step (e.g.
            `lambda step: 1e-3 * ops.minimum(ops.cast(step, "float32") / 100, 1)`).
        regularizers: which regularizers to control. `None` (default): every kreg
            regularizer attached to a weight of the model (one regularizer shared
            by several layers counts once); a kreg regularizer or a list of them
            (each must be attached to a weight of the model); a layer name or a
            list of names (every kreg regularizer on the weights of the layers
            with those names, nested layers included).
        update: `"epoch"` (default) or `"step"`.

    Raises:
        ValueError: for an unknown `update`, an empty `regularizers` list; during
            `fit`: an unbuilt model, names that match no layer or a layer without
            kreg regularizer, a regularizer that no weight of the model uses, a
            regularizer controlled by two schedulers, or an invalid strength.
        TypeError: for a `schedule` that is not callable, or `regularizers` that
            are neither kreg regularizers nor layer names.

    Example:

    >>> import numpy as np, keras, kreg
    >>> reg = kreg.L1(0.1)
    >>> model = keras.Sequential([keras.Input((2,)),
    ...     keras.layers.Dense(1, kernel_regularizer=reg, name="out")], name="net")
    >>> model.compile("sgd", "mse")
    >>> scheduler = kreg.callbacks.StrengthScheduler(lambda epoch: 0.1 / (epoch + 1))
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                     callbacks=[scheduler])
    >>> [round(s, 4) for s in history.history["strength/out/kernel"]]
    [0.1, 0.05]
    """

    def __init__(self, schedule, regularizers=None, update="epoch"):
        super().__init__()
        if not isinstance(update, str) or update not in _UPDATES:
            raise _validation.invalid("update", '"epoch" or "step"', update)
        if not callable(schedule):
            raise TypeError(
                "Invalid type for argument `schedule`: expected a "
                "`keras.optimizers.schedules.LearningRateSchedule` or a callable "
                f"`f(index) -> strength`. Received: schedule={schedule!r} of type "
                f"{type(schedule).__name__}"
            )
        self.schedule = schedule
        self.update = update
        self.regularizers = _check_regularizers_arg(regularizers)
        # Epoch updates do nothing per batch, so batch callbacks may run asynchronously.
        self.async_safe = update == "epoch"
        self._controlled = []  # kreg regularizers, unique
        self._log_keys = []  # (key, regularizer) per controlled weight
        self._running = False
        self._hooked = False
        self._bad_step = None
        self._bad_value = None

    # -- resolution --------------------------------------------------------

    def _resolve(self, model):
        weights = _unique(model.weights)
        attached = [(w, w.regularizer) for w in weights if _is_kreg(w.regularizer)]
        if self.regularizers is None:
            regs = _unique(r for _, r in attached)
            if not regs:
                raise ValueError(
                    f"StrengthScheduler found no kreg regularizer in model '{model.name}': "
                    "no weight has a kreg regularizer (kernel_regularizer=kreg.L1(...), ...)."
                )
        else:
            regs = []
            layers = None
            for item in self.regularizers:
                if isinstance(item, str):
                    if layers is None:
                        layers = _layers(model)
                    matches = [layer for layer in layers if layer.name == item]
                    if not matches:
                        with_regs = [
                            layer.name
                            for layer in layers
                            if layer is not model
                            and any(_is_kreg(w.regularizer) for w in layer.weights)
                        ]
                        raise ValueError(
                            "Invalid value for argument `regularizers`: expected names of "
                            f"layers of model '{model.name}' (layers with kreg regularizers: "
                            f"{_unique(with_regs)}). Received: no layer named {item!r}"
                        )
                    found = [
                        w.regularizer
                        for layer in matches
                        for w in layer.weights
                        if _is_kreg(w.regularizer)
                    ]
                    if not found:
                        raise ValueError(
                            "Invalid value for argument `regularizers`: expected layers "
                            f"with a kreg regularizer. Received: layer {item!r} has none"
                        )
                    regs.extend(found)
                else:
                    if not any(r is item for _, r in attached):
                        raise ValueError(
                            "Invalid value for argument `regularizers`: expected "
                            f"regularizers attached to weights of model '{model.name}'. "
                            f"Received: {item!r}, which no weight of the model uses (a "
                            "cloned or reloaded model has new regularizer objects; pass "
                            "layer names instead)"
                        )
                    regs.append(item)
            regs = _unique(regs)
        controlled = {id(r) for r in regs}
        variables = [w for w, r in attached if id(r) in controlled]
        keys = _keys("strength", variables, model)
        return regs, [(k, w.regularizer) for k, w in zip(keys, variables)]

    def _claim(self):
        for reg in self._controlled:
            ref = _CONTROLLERS.get(reg)
            other = ref() if ref is not None else None
            if (
                other is not None
                and other is not self
                and other._running
                and other.params is self.params
            ):
                raise ValueError(
                    f"Two StrengthSchedulers control the same regularizer {reg!r} in one "
                    "`fit`. Give each scheduler its own regularizers (argument "
                    "`regularizers`)."
                )
            _CONTROLLERS[reg] = weakref.ref(self)

    # -- schedule evaluation -------------------------------------------------

    def _check_value(self, value, index):
        where = f"at {'epoch' if self.update == 'epoch' else 'step'} {index}"
        array = np.asarray(ops.convert_to_numpy(value))
        if array.shape != () or array.dtype.kind not in "fiu":
            raise ValueError(
                "Invalid value for argument `schedule`: expected a scalar strength. "
                f"Received: schedule({index})={_validation._short(value)} {where}"
            )
        number = float(array)
        if not math.isfinite(number) or number < 0:
            raise ValueError(
                "Invalid value for argument `schedule`: expected a non-negative finite "
                f"strength. Received: schedule({index})={number} {where} "
                f"(update={self.update!r})"
            )
        return number

    def _raise_if_bad_step(self):
        step = int(ops.convert_to_numpy(self._bad_step))
        if step >= 0:
            self._check_value(self._bad_value, step)  # raises

    # -- hook management ----------------------------------------------------

    def _set_hooks(self, on):
        source = _StepSource(self) if on else None
        for reg in self._controlled:
            reg._strength_source = source
        self._hooked = on

    def _retrace(self):
        # Keras caches the compiled train step; the hook is read while tracing.
        self.model.make_train_function(force=True)

    # -- callback methods ---------------------------------------------------

    def on_train_begin(self, logs=None):
        if not self.model.built:
            # Keras (TensorFlow backend) builds an unbuilt model while tracing the first
            # step, too late to find its regularizers and install the step hook.
            raise ValueError(
                f"StrengthScheduler needs a built model, but model '{self.model.name}' is "
                "not built. Build it before `fit` by calling it on a batch of data or with "
                "`model.build(input_shape)`."
            )
        self._controlled, self._log_keys = self._resolve(self.model)
        self._claim()
        self._running = True
        if self.update == "step" and _backend.name() == "jax":
            if self.model.steps_per_execution != 1:
                raise ValueError(
                    'StrengthScheduler(update="step") on the JAX backend sets the strength '
                    "before each execution of the compiled step, so it needs "
                    "`steps_per_execution=1` in `model.compile` (or use update=\"epoch\"). "
                    f"Received: steps_per_execution={self.model.steps_per_execution}"
                )
        elif self.update == "step":
            if self._bad_step is None:
                self._bad_step = keras.Variable(-1, dtype="int64", trainable=False)
                self._bad_value = keras.Variable(0.0, dtype="float32", trainable=False)
            self._bad_step.assign(-1)
            step = ops.convert_to_tensor(self.model.optimizer.iterations)
            self._check_value(self.schedule(step), int(ops.convert_to_numpy(step)))
            self._set_hooks(True)
            self._retrace()
        elif any(reg._strength_source is not None for reg in self._controlled):
            # Left by a step scheduler whose `fit` stopped with an exception.
            for reg in self._controlled:
                reg._strength_source = None
            self._retrace()

    def on_epoch_begin(self, epoch, logs=None):
        if self.update == "epoch":
            value = self._check_value(self.schedule(epoch), epoch)
            for reg in self._controlled:
                reg.strength.assign(value)

    def on_train_batch_begin(self, batch, logs=None):
        if self.update == "step" and not self._hooked:  # JAX: set on the host
            step = int(_backend.to_numpy(self.model.optimizer.iterations))
            value = self._check_value(self.schedule(ops.convert_to_tensor(step)), step)
            for reg in self._controlled:
                reg.strength.assign(value)

    def on_train_batch_end(self, batch, logs=None):
        if self.update == "step":
            if self._bad_step is not None:
                self._raise_if_bad_step()
            self._log(logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.update == "step" and self._bad_step is not None:
            self._raise_if_bad_step()
        self._log(logs)

    def on_test_begin(self, logs=None):
        # Validation inside `fit` traces its own step: keep the hook out of it.
        if self._hooked:
            self._set_hooks(False)

    def on_test_end(self, logs=None):
        if self._running and self._bad_step is not None and not self._hooked:
            self._set_hooks(True)

    def on_train_end(self, logs=None):
        self._running = False
        if self.update == "step":
            self._set_hooks(False)
            self._retrace()
        for reg in self._controlled:
            ref = _CONTROLLERS.get(reg)
            if ref is not None and ref() is self:
                del _CONTROLLERS[reg]

    def _log(self, logs):
        if logs is None:
            return
        values = {}
        for key, reg in self._log_keys:
            if id(reg) not in values:
                values[id(reg)] = float(_backend.to_numpy(reg.strength))
            logs[key] = values[id(reg)]


def _check_regularizers_arg(regularizers):
    if regularizers is None:
        return None
    if isinstance(regularizers, (str, keras.regularizers.Regularizer)):
        regularizers = [regularizers]
    if not isinstance(regularizers, (list, tuple)):
        raise TypeError(
            "Invalid type for argument `regularizers`: expected None, a kreg regularizer, "
            "a layer name, or a list of them. Received: "
            f"regularizers={_validation._short(regularizers)} of type "
            f"{type(regularizers).__name__}"
        )
    if not regularizers:
        raise _validation.invalid(
            "regularizers",
            "None or a non-empty list of kreg regularizers or layer names",
            regularizers,
        )
    for item in regularizers:
        if not (isinstance(item, str) or _is_kreg(item)):
            raise TypeError(
                "Invalid type for argument `regularizers`: expected kreg regularizers "
                "(kreg.L1, kreg.GroupLasso, ...) or layer names. Received: "
                f"{_validation._short(item)} of type {type(item).__name__}"
            )
    return list(regularizers)


# ------------------------------------------------------------------ sparsity


def _check_include(include):
    if not isinstance(include, str) or include not in _INCLUDES:
        raise _validation.invalid("include", '"regularized", "kernels" or "all"', include)
    return include


def _monitored_variables(model_or_variables, include):
    """The variables to measure, in order, deduplicated, with a description for errors."""
    if isinstance(model_or_variables, keras.layers.Layer):
        candidates = model_or_variables.trainable_variables
        where = f"the trainable variables of '{model_or_variables.name}'"
        if not model_or_variables.built:
            where += " (it is not built yet)"
    elif isinstance(model_or_variables, keras.Variable):
        candidates = [model_or_variables]
        where = "the variable given"
    else:
        try:
            candidates = list(model_or_variables)
        except TypeError:
            candidates = None
        if candidates is None or not all(isinstance(v, keras.Variable) for v in candidates):
            raise TypeError(
                "Invalid type for argument `model_or_variables`: expected a Keras model or "
                "layer, or a list of `keras.Variable`s. Received: "
                f"model_or_variables={_validation._short(model_or_variables)}"
            )
        where = "the variables given"
    candidates = _unique(candidates)
    if include == "regularized":
        chosen = [v for v in candidates if _is_kreg(v.regularizer)]
    elif include == "kernels":
        chosen = [v for v in candidates if _is_kreg(v.regularizer) or _is_kernel(v)]
    else:
        chosen = candidates
    if not chosen:
        hint = {
            "regularized": "with a kreg regularizer",
            "kernels": "with a kreg regularizer or named *kernel/*embeddings",
            "all": "",
        }[include]
        raise ValueError(
            f"Nothing to measure: none of {where} is a variable {hint} "
            f"(include={include!r}). Use include='kernels' or include='all' to measure "
            "variables without a kreg regularizer."
        )
    return chosen


def _grouping(variable):
    """The groups counted for `variable`: its group penalty's, or per channel of a
    normalization scale (Network Slimming); None when it has no groups to count."""
    regularizer = kreg_regularizer(variable)
    if regularizer is not None and hasattr(regularizer, "grouping"):
        return regularizer.grouping(variable)
    layout = getattr(variable, "_kreg_layout", None)
    if regularizer is not None and layout is not None and _variable_name(variable) == "gamma":
        return _math.Grouping(layout, "units")
    return None


def _counter(groupings, tolerance):
    """`counts(values)`: per weight, its zeros (`|w| <= tolerance`), then its dead groups.

    Uses kreg's one dead rule (`_math.nonzero` / `_math.alive_groups`): a NaN is
    never a zero and a group holding one is never dead.
    """

    def counts(values):
        out = []
        for value, grouping in zip(values, groupings):
            live = _math.nonzero(value, tolerance)
            out.append(ops.sum(ops.cast(ops.logical_not(live), "int32")))
            if grouping is not None:
                alive = _math.alive_groups(grouping.to_view(value), grouping, tolerance)
                out.append(ops.sum(ops.cast(ops.logical_not(alive), "int32")))
        return ops.stack(out)

    return counts


class _SparsityMeter:
    """Measures a fixed list of variables with one call and one transfer."""

    def __init__(self, variables, tolerance, model=None, compiled=False):
        self.variables = variables
        self.groupings = [_grouping(v) for v in variables]
        self.sizes = [int(np.prod(v.shape)) for v in variables]
        self.sparsity_keys = _keys("sparsity", variables, model)
        self.group_keys = _keys("group_sparsity", variables, model)
        self.function = _counter(self.groupings, float(tolerance))
        if compiled:
            # One compiled count, owned by this meter (so by its callback): nothing
            # process-wide outlives the model.
            self.function = _backend.compiled(self.function)

    def __call__(self):
        counts = _backend.to_numpy(
            self.function([ops.convert_to_tensor(v) for v in self.variables])
        ).tolist()
        result, i, zeros = {}, 0, 0
        for key, group_key, size, grouping in zip(
            self.sparsity_keys, self.group_keys, self.sizes, self.groupings
        ):
            result[key] = counts[i] / size
            zeros += counts[i]
            i += 1
            if grouping is not None:
                result[group_key] = counts[i] / grouping.num_groups
                i += 1
        result["sparsity"] = zeros / sum(self.sizes)
        return result


def measure_sparsity(model_or_variables, tolerance=0.0, include="regularized"):
    """Sparsity of a model's weights, as the dict `SparsityMonitor` puts in `logs`.

    For every measured variable `w` (in order):

    * `sparsity/<layer>/<weight>`: `mean(|w| <= tolerance)` (exact zeros at
      `tolerance=0`); a NaN is never counted as a zero;
    * `group_sparsity/<layer>/<weight>`, for a weight with a group penalty
      (`kreg.GroupLasso`, `kreg.SparseGroupLasso`): the fraction of its groups
      (units, filters or input features of its layer, see `kreg.layouts`) whose
      weights are all `<= tolerance` in magnitude; for a 1-D weight of a
      normalization layer with a kreg penalty (a BatchNormalization `gamma`
      under `kreg.L1`: Network Slimming), the fraction of dead channels. A
      group holding a NaN is never dead;

    and `sparsity`: the fraction of all measured weights with `|w| <= tolerance`.
    Everything is counted in one compiled call; weights in float16/bfloat16 are
    compared in float32.

    Args:
        model_or_variables: a Keras model or layer (its trainable variables are the
            candidates), or a `keras.Variable` or a list of them.
        tolerance: non-negative finite float.
        include: which candidates to measure: `"regularized"` (default; those with
            a kreg regularizer), `"kernels"` (those, plus every variable whose name
            ends in `kernel` or `embeddings`), or `"all"`.

    Returns:
        A dict of Python floats.

    Raises:
        ValueError: for a bad `tolerance` or `include`, or nothing to measure.
        TypeError: for a `tolerance` that is not a number, or an argument that is
            neither a model/layer nor variables.

    Example:

    >>> import numpy as np, keras, kreg
    >>> layer = keras.layers.Dense(2, kernel_regularizer=kreg.GroupLasso(0.1), name="hidden")
    >>> layer.build((None, 3))
    >>> _ = layer.kernel.assign(np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 2.0]]))
    >>> for key, value in kreg.callbacks.measure_sparsity(layer).items():
    ...     print(key, round(value, 4))
    sparsity/hidden/kernel 0.6667
    group_sparsity/hidden/kernel 0.5
    sparsity 0.6667
    """
    tolerance = _validation.check_strength(tolerance, name="tolerance")
    include = _check_include(include)
    model = None
    if isinstance(model_or_variables, keras.layers.Layer):
        model = model_or_variables
        if model.built:
            layouts.bind(model)
    variables = _monitored_variables(model_or_variables, include)
    return _SparsityMeter(variables, tolerance, model)()


class SparsityMonitor(keras.callbacks.Callback):
    """Adds the sparsity of the model's weights to `logs` (see `measure_sparsity`).

    At every epoch end (and, with an integer `update_freq`, every `update_freq`
    batches) it adds `sparsity/<layer>/<weight>`, `group_sparsity/<layer>/<weight>`
    (weights with a group penalty) and `sparsity` (over all monitored weights),
    counted in one compiled function built once per `fit`. The monitored variables
    are fixed at the first measurement of each `fit` (a subclassed model that `fit`
    builds in its first step is fine).

    With `units=True` it also adds, at every epoch end, `units/<layer>`: the units,
    filters or channels of each layer that `kreg.compact` would keep (from
    `kreg.unit_counts`, the same dead-unit rule and analysis; a Sequential or
    functional model), so a run logs "kept k of n" per layer as it prunes.

    Put it *before* `CSVLogger` and `TensorBoard` in the `callbacks` list: Keras calls
    callbacks in list order, so callbacks after it see the keys (`History` is always
    last). With `update_freq=N` the batch logs get the keys every N batches (counted
    in batches, also with `steps_per_execution > 1`, at the first batch end at or
    past each multiple).

    Args:
        tolerance: non-negative finite float; a weight with `|w| <= tolerance`
            counts as zero.
        include: `"regularized"` (default: trainable variables with a kreg
            regularizer), `"kernels"` (those plus every trainable variable named
            `*kernel` or `*embeddings`), or `"all"` (every trainable variable).
        update_freq: `"epoch"` (default) or a positive int N (also every N batches).
        units: bool; also log `units/<layer>` (kept units per layer) at epoch end.

    Raises:
        ValueError: for a bad `tolerance`, `include`, `update_freq` or `units`, or
            (at the first measurement) a model with nothing to monitor, or with
            `units=True` a model `kreg.unit_counts` cannot analyse.

    Example:

    >>> import numpy as np, keras, kreg
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
    ...     1, kernel_regularizer=kreg.L1(0.1), kernel_initializer="zeros", name="out")],
    ...     name="net")
    >>> model.compile(keras.optimizers.SGD(0.0), "mse")
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0,
    ...                     callbacks=[kreg.callbacks.SparsityMonitor()])
    >>> history.history["sparsity/out/kernel"], history.history["sparsity"]
    ([1.0], [1.0])
    """

    def __init__(self, tolerance=0.0, include="regularized", update_freq="epoch", units=False):
        super().__init__()
        if not isinstance(units, (bool, np.bool_)):
            raise _validation.invalid("units", "a bool", units)
        self.units = bool(units)
        self.tolerance = _validation.check_strength(tolerance, name="tolerance")
        self.include = _check_include(include)
        if update_freq != "epoch" and not (
            isinstance(update_freq, numbers.Integral)
            and not isinstance(update_freq, (bool, np.bool_))
            and update_freq > 0
        ):
            raise _validation.invalid(
                "update_freq", '"epoch" or a positive integer (batches)', update_freq
            )
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        # Epoch-only monitoring does nothing per batch: batch callbacks may run async.
        self.async_safe = update_freq == "epoch"
        self._meter = None
        self._last_batch = -1
        self._batches_since = 0

    def on_train_begin(self, logs=None):
        # Resolved at the first measurement: a subclassed model is built in its first step.
        self._meter = None
        self._batches_since = 0

    def _measure(self):
        self.model  # noqa: B018  (JAX: Keras's property writes the weights back first)
        if self._meter is None:
            layouts.bind(self.model)
            variables = _monitored_variables(self.model, self.include)
            self._meter = _SparsityMeter(variables, self.tolerance, self.model, compiled=True)
        return self._meter()

    def on_epoch_begin(self, epoch, logs=None):
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        self._batches_since += batch - self._last_batch
        self._last_batch = batch
        if self._batches_since >= self.update_freq:
            self._batches_since %= self.update_freq
            if logs is not None:
                logs.update(self._measure())

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._measure())
            if self.units:
                counts = compaction.unit_counts(self.model, self.tolerance)
                logs.update({f"units/{name}": kept for name, (kept, _) in counts.items()})


# ------------------------------------------------------------------ penalty


class PenaltyMonitor(keras.callbacks.Callback):
    """Adds the total weight penalty and the penalty-free validation loss to `logs`.

    A model's `loss` and `val_loss` include its weight penalties, and a
    `StrengthScheduler` changes them: during a strength warm-up `val_loss` rises
    while the data loss still falls, and `EarlyStopping(monitor="val_loss")` stops
    too early. At every epoch end this callback adds

    * `penalty`: the sum of the penalties of all regularized weights (kreg's and
      Keras's), at the weights and strengths the epoch ended with;
    * `val_data_loss`: `val_loss - penalty`, when `fit` validated. Validation
      runs on those same weights and strengths, so this is the validation loss
      of the data alone (plus any `add_loss` terms of the model).

    Put it *before* the callbacks that read these keys:

        callbacks=[kreg.callbacks.PenaltyMonitor(),
                   keras.callbacks.EarlyStopping(monitor="val_data_loss"),
                   keras.callbacks.ReduceLROnPlateau(monitor="val_data_loss")]

    Example:

    >>> import numpy as np, keras, kreg
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
    ...     1, kernel_regularizer=kreg.L1(0.5), kernel_initializer="ones")])
    >>> model.compile(keras.optimizers.SGD(0.0), "mse")
    >>> history = model.fit(np.ones((4, 2)), np.full((4, 1), 2.0), verbose=0,
    ...                     validation_data=(np.ones((4, 2)), np.full((4, 1), 2.0)),
    ...                     callbacks=[kreg.callbacks.PenaltyMonitor()])
    >>> history.history["penalty"], history.history["val_data_loss"]
    ([1.0], [0.0])
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        penalty = 0.0
        for variable in _unique(self.model.trainable_weights):
            regularizer = getattr(variable, "regularizer", None)
            if regularizer is not None:
                penalty += float(_backend.to_numpy(regularizer(variable)))
        logs["penalty"] = penalty
        if "val_loss" in logs:
            logs["val_data_loss"] = float(logs["val_loss"]) - penalty
