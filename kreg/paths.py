"""Regularization paths and cross-validation for any compiled Keras model.

`regularization_path` trains a clone of the model at each strength of a
descending grid, from the sparse end to the dense end, each strength starting
from the previous one's weights (warm starts, Friedman, Hastie & Tibshirani
2010; for a network, not from one that a strength cut entirely: see
`warm_start`). The strength changes through `reg.strength.assign`: one compiled train
function serves the whole path and the data stay on the device. `cross_validate`
runs one path per fold and picks the strength by the held-out score, with the
one-standard-error rule beside the best.

**Training.** Full batch: every step is one epoch over `x`, so the path solves
the same problem as proximal gradient descent. The clone is compiled with the
model's own loss and metrics and a fresh copy of its optimizer, wrapped in
`kreg.Proximal` (exact zeros) unless it already is one. With plain
`keras.optimizers.SGD` (no momentum, a constant learning rate `lr <= 1 / L`, `L`
the Lipschitz constant of the loss gradient) this is the proximal gradient
method, and the convergence criterion is an optimality residual.

**Convergence, per strength.** With plain SGD, the norm of the proximal
gradient mapping at the last step,

    r(w) = ||w - prox_{lr R}(w - lr * grad L(w))||_2 / lr,

which is zero exactly at a stationary point of `L + R` (a minimiser for convex
problems), relative to `||grad L(w0)||_2`, the loss gradient at the start with
every penalised weight zero: converged when `r / ||grad L(w0)|| <= tol`. With
any other optimizer (momentum, Adam, a schedule): the relative change of the
objective `|f_k - f_{k-1}| / |f_k| <= tol` between two checks, `f` the loss
with the penalty as Keras logs it. Checks come after 8, 16, 32, ... (at most
1024) steps; training stops at `max_epochs` steps, and the strengths that did
not converge are named in a warning and marked in `path.converged`.

**Strength grid.** `strengths=None` gives `n_strengths` values from
`strength_max` down to `eps * strength_max`, evenly spaced in log scale
(scikit-learn's `lasso_path` convention, `eps=1e-3`). With Keras's `"mse"`,
kreg's strength is twice scikit-learn's `alpha` (see `kreg.regularizers`).

References:
    Friedman, Hastie & Tibshirani, "Regularization paths for generalized linear
    models via coordinate descent", Journal of Statistical Software, 2010
    (the log grid from `lambda_max`, warm starts).
    Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", 2nd
    ed., 2009, section 7.10 (cross-validation, the one-standard-error rule).
"""

import numbers
import warnings

import keras
import numpy as np
from keras import ops

from kreg import _path_bounds
from kreg import _path_fit
from kreg import _validation
from kreg.regularizers import Regularizer, kreg_regularizer

__all__ = [
    "CrossValidation",
    "RegularizationPath",
    "cross_validate",
    "regularization_path",
    "strength_max",
]


# -- argument checks -----------------------------------------------------------
def _check_model(model, name="model"):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Invalid type for argument `{name}`: expected a compiled keras.Model. "
            f"Received: {name} of type {type(model).__name__}")
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a compiled model (call "
            "`model.compile(optimizer, loss)`: the path trains with that optimizer and loss). "
            f"Received: {name} {model.name!r}, not compiled")
    if not model.built:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a built model (give it a "
            f"`keras.Input`). Received: {name} {model.name!r}, not built")


def _selected_indices(model, regularizers):
    """Indices into `model.variables` of the trainable variables whose strength the path sets."""
    candidates = [
        i for i, v in enumerate(model.variables)
        if v.trainable and kreg_regularizer(v) is not None
    ]
    if not candidates:
        raise ValueError(
            "Invalid value for argument `model`: expected a model with at least one trainable "
            "variable that has a kreg regularizer (e.g. `kernel_regularizer=kreg.L1(0.0)`). "
            f"Received: model {model.name!r} without one")
    if regularizers is None:
        return candidates
    if isinstance(regularizers, Regularizer):
        regularizers = [regularizers]
    try:
        regularizers = list(regularizers)
    except TypeError:
        raise TypeError(
            "Invalid type for argument `regularizers`: expected None or a list of kreg "
            f"regularizers of the model. Received: regularizers={_validation._short(regularizers)}"
        ) from None
    for reg in regularizers:
        if not isinstance(reg, Regularizer):
            raise TypeError(
                "Invalid type for argument `regularizers`: expected kreg regularizers. "
                f"Received: {_validation._short(reg)} of type {type(reg).__name__}")
    chosen = [i for i in candidates
              if any(kreg_regularizer(model.variables[i]) is r for r in regularizers)]
    missing = [r for r in regularizers
               if all(kreg_regularizer(model.variables[i]) is not r for i in candidates)]
    if missing or not regularizers:
        raise ValueError(
            "Invalid value for argument `regularizers`: expected regularizers attached to "
            f"trainable variables of model {model.name!r}. Received: regularizers="
            f"{_validation._short(regularizers)}" + (f", of which {missing!r} are not" if missing else ""))
    return chosen


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise _validation.invalid(name, "a positive integer", value)
    return int(value)


def _check_tol(value, name="tol"):
    if not _validation._is_real(value) or not np.isfinite(value) or value <= 0:
        raise _validation.invalid(name, "a positive finite number", value)
    return float(value)


def _check_eps(value):
    if not _validation._is_real(value) or not 0 < value < 1:
        raise _validation.invalid("eps", "a number in (0, 1)", value)
    return float(value)


def _check_strengths(strengths):
    """A descending float64 array of non-negative finite strengths."""
    if isinstance(strengths, (str, bytes, dict)):
        raise _validation.invalid("strengths", "a non-empty 1-D sequence of non-negative "
                                  "finite numbers", strengths)
    try:
        values = np.asarray(strengths, dtype="float64")
    except (TypeError, ValueError):
        raise _validation.invalid("strengths", "a non-empty 1-D sequence of non-negative "
                                  "finite numbers", strengths) from None
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(
            values < 0):
        raise _validation.invalid("strengths", "a non-empty 1-D sequence of non-negative "
                                  "finite numbers", strengths)
    return np.sort(values)[::-1].copy()


def _float_tensor(a):
    a = np.asarray(a) if not hasattr(a, "dtype") or isinstance(a, np.ndarray) else a
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        a = a.astype(keras.config.floatx())
    return ops.convert_to_tensor(a)


def _data(x, y, sample_weight):
    """Full-batch data as tensors on the device, converted once for the whole path."""
    if x is None or y is None:
        raise _validation.invalid("x" if x is None else "y", "an array (full-batch data)", None)
    x = keras.tree.map_structure(_float_tensor, x)
    y = keras.tree.map_structure(_float_tensor, y)
    if sample_weight is not None:
        sample_weight = _float_tensor(sample_weight)
    return (x, y, sample_weight)


def _check_validation(validation_data):
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise _validation.invalid(
            "validation_data", "a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val)",
            validation_data)
    return _data(*validation_data) if len(validation_data) == 3 else _data(*validation_data, None)


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback) or callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for cb in callbacks:
        if not (isinstance(cb, keras.callbacks.Callback) or callable(cb)):
            raise TypeError(
                "Invalid type for argument `callbacks`: expected keras.callbacks.Callback "
                "instances or callables `fn(row)`. Received: "
                f"{_validation._short(cb)} of type {type(cb).__name__}")
    return callbacks


# -- the gradient at zero and strength_max ---------------------------------------
def _gradient_at_zero(model, trainer, data, indices):
    """Loss gradient at the model's weights with the penalised ones zero (from `trainer`
    when it trains with plain SGD, else from a probe clone trained by SGD(1))."""
    if not trainer.residual_mode:
        trainer = _path_fit.PathTrainer(
            model, indices, optimizer=keras.optimizers.SGD(learning_rate=1.0))
    return trainer.gradient_at_zero(data)


# The bound is rounded up by this factor: at the bound itself the prox of a float32 step
# sits exactly on its threshold, where rounding may leave a weight of 1e-9 instead of 0.
_ROUND_UP = 1.0 + 1e-6


def _max_from_gradients(trainer, grads):
    return _ROUND_UP * max(
        _path_bounds.bound(kreg_regularizer(v), v, g) for v, g in zip(trainer.penalised, grads))


def strength_max(model, x, y, *, regularizers=None, sample_weight=None):
    """The smallest strength at which every penalised weight of `model` stays zero.

    For a penalty `strength * P(w)` whose subdifferential at zero is
    `strength * B` (`B` the unit ball of the dual norm), the zero weights are
    optimal as long as `-grad L(0) in strength * B`: the gradient bound. For a
    linear model with the mean squared error this is exact (scikit-learn's
    `alpha_max`, times 2 for Keras's `"mse"`):

    * `L1`: `max_i |g_i| / v_i` (`v` the per-weight `weights`; `max_i -g_i / v_i` when
      `positive`), so for `Dense(1, use_bias=False)` and `"mse"`, `2 / n * max|X^T y|`;
    * `ElasticNet(l1_ratio=r)`: that over `r`; `MCP`, `SCAD`: as `L1`;
    * `GroupLasso`, `GroupMCP`, `GroupSCAD`: `max_g ||g_g||_2 / (v_g sqrt(p_g))`;
    * `SparseGroupLasso(l1_ratio=r)`: per group the smallest `s` with
      `||soft_threshold(g_g, s r)||_2 <= s (1 - r) sqrt(p_g)` (bisection).

    `g` is the loss gradient at the model's current weights with every penalised
    weight set to zero (other weights, biases included, as they are). For a deeper
    model it is where the path starts, an upper guess: zero weights are a
    stationary point there, but training from other weights may find others.
    Several regularizers share the path strength: the largest bound is returned,
    rounded up by one part in a million (at the bound itself float32 rounding may
    leave a weight of 1e-9 where the solution has 0).

    Args:
        model: a compiled, built Keras model with kreg regularizers.
        x, y: full-batch training data.
        regularizers: None (every kreg regularizer of the model) or a list of them.
        sample_weight: optional per-sample weights.

    Returns:
        A Python float.

    Raises:
        ValueError: for a model without kreg regularizers, a penalty that never
            zeroes (L2, ElasticNet(l1_ratio=0)) or has no gradient bound (L0).

    Example:

    >>> import numpy as np, keras, kreg
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    >>> y = np.array([[1.0], [1.0], [0.0], [2.0]])
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
    ...     1, use_bias=False, kernel_regularizer=kreg.L1(0.0))])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    >>> round(kreg.strength_max(model, x, y), 4)   # 2 / n * max|X^T y| = 2 / 4 * 2
    1.0
    """
    _check_model(model)
    indices = _selected_indices(model, regularizers)
    data = _data(x, y, sample_weight)
    probe = _path_fit.PathTrainer(model, indices, optimizer=keras.optimizers.SGD(1.0))
    return _max_from_gradients(probe, probe.gradient_at_zero(data))


# -- results -----------------------------------------------------------------------
class RegularizationPath:
    """The result of `kreg.regularization_path`: one row per strength.

    Attributes:
        strengths: 1-D float64 array, descending.
        metrics: dict metric name -> `(n_strengths,)` array, as Keras names them
            (`"loss"`, `"mae"`, ... on the training data at the strength's final
            weights, the penalty included in `"loss"`; `"val_..."` on
            `validation_data`).
        sparsity: fraction of exactly zero penalised weights, per strength.
        epochs: full-batch steps trained at each strength.
        converged: bool per strength (see the module docstring for the criterion).
        criterion: the value of the convergence criterion at the last check.
        names: the variable paths that `weights(name)` accepts (the model's own).
        strength_max: the gradient bound when the grid was made from it, else None.
    """

    def __init__(self, model, compile_config, names, layer_names, penalised, strengths,
                 snapshots, metrics, sparsity, epochs, converged, criterion, strength_max,
                 tol, max_epochs, regularizer_indices):
        self._source = model
        self._compile_config = compile_config
        self.names = list(names)
        self._layer_names = layer_names
        self._penalised = list(penalised)
        self.strengths = np.asarray(strengths, "float64")
        self._snapshots = snapshots
        self.metrics = {k: np.asarray(v, "float64") for k, v in metrics.items()}
        self.sparsity = np.asarray(sparsity, "float64")
        self.epochs = np.asarray(epochs, "int64")
        self.converged = np.asarray(converged, bool)
        self.criterion = np.asarray(criterion, "float64")
        self.strength_max = strength_max
        self.tol = tol
        self.max_epochs = max_epochs
        self._regularizer_indices = regularizer_indices

    def __len__(self):
        return len(self.strengths)

    def _index(self, name):
        if isinstance(name, str):
            if name in self.names:
                return self.names.index(name)
            if name in self._layer_names:
                candidates = self._layer_names[name]
                penalised = [i for i in candidates if i in self._penalised]
                pick = penalised or candidates
                return pick[0]
        raise ValueError(
            "Invalid value for argument `name`: expected a variable path or a layer name of "
            f"the model, one of {self.names + sorted(self._layer_names)}. Received: name={name!r}")

    def weights(self, name=None):
        """`(n_strengths, *shape)` array of one variable along the path.

        Args:
            name: a variable path (`"sequential/dense/kernel"`, see `path.names`) or a
                layer name (its first penalised variable, else its first variable);
                None: the first penalised variable.
        """
        index = self._penalised[0] if name is None else self._index(name)
        if self._snapshots[0] is None:
            raise ValueError(
                "This path kept no weights (the per-fold paths of kreg.cross_validate keep "
                "only epochs, convergence and sparsity, so that memory stays flat over the "
                "folds); use cv.path or kreg.regularization_path for weights")
        return np.stack([snap[index] for snap in self._snapshots])

    def _strength_index(self, strength):
        if _validation._is_real(strength):
            hits = np.flatnonzero(np.isclose(self.strengths, float(strength), rtol=1e-6, atol=0))
            if hits.size:
                return int(hits[0])
        raise _validation.invalid(
            "strength", f"one of the path's strengths {np.round(self.strengths, 6).tolist()}",
            strength)

    def model_at(self, strength):
        """A new model (a clone of the input model) with the weights trained at `strength`.

        Its regularizers hold `strength`, and it is compiled as the input model was
        (a fresh copy of its optimizer). The input model is never changed.
        """
        index = self._strength_index(strength)
        if self._snapshots[index] is None:
            self.weights()  # raises: no weights kept
        model = keras.models.clone_model(self._source)
        for variable, value in zip(model.variables, self._snapshots[index]):
            variable.assign(value)
        for i in self._regularizer_indices:
            reg = kreg_regularizer(model.variables[i])
            reg.strength.assign(self.strengths[index])
        config = dict(self._compile_config)
        optimizer = config["optimizer"]
        config["optimizer"] = type(optimizer).from_config(optimizer.get_config())
        model.compile(**config)
        return model

    def rows(self):
        """One dict per strength: `strength`, `epochs`, `converged`, `sparsity` and the metrics."""
        return [_row(self, k) for k in range(len(self))]

    def __iter__(self):
        return iter(self.rows())

    def plot(self, name=None, metric=None, **kwargs):
        """Coefficient paths of variable `name` (`kreg.plot.coefficient_paths`), or, with
        `metric="loss"` (any key of `metrics` without `val_`), train and validation score
        against the strength (`kreg.plot.score_vs_strength`). Needs matplotlib."""
        from kreg import plot

        if metric is None:
            coefs = self.weights(name).reshape(len(self), -1)
            return plot.coefficient_paths(self.strengths, coefs, **kwargs)
        train = self.metrics.get(metric)
        val = self.metrics.get("val_" + metric)
        if train is None and val is None:
            raise _validation.invalid("metric", f"one of {sorted(self.metrics)}", metric)
        if val is None:
            return plot.score_vs_strength(self.strengths, None, train, val_label="train",
                                          ylabel=metric, **kwargs)
        return plot.score_vs_strength(self.strengths, train, val, ylabel=metric, **kwargs)

    def __repr__(self):
        return (f"RegularizationPath({len(self)} strengths from {self.strengths[0]:.4g} to "
                f"{self.strengths[-1]:.4g}, {int(self.converged.sum())} converged, "
                f"{int(self.epochs.sum())} epochs)")


def _row(path, k):
    row = {"strength": float(path.strengths[k]), "epochs": int(path.epochs[k]),
           "converged": bool(path.converged[k]), "sparsity": float(path.sparsity[k])}
    row.update({name: float(values[k]) for name, values in path.metrics.items()})
    return row


# -- the walk ------------------------------------------------------------------------
def _sparsity(trainer):
    total = sum(int(np.prod(v.shape)) for v in trainer.penalised)
    zeros = sum(int(np.sum(ops.convert_to_numpy(v) == 0)) for v in trainer.penalised)
    return zeros / max(total, 1)


def _evaluate(trainer, data, prefix):
    x, y, sample_weight = data
    logs = trainer.model.test_on_batch(x, y, sample_weight=sample_weight, return_dict=True)
    return {prefix + k: float(v) for k, v in logs.items()}


def _restart(warm_start, snapshot, indices):
    """Whether the next strength starts from the initial weights instead of `snapshot`."""
    if warm_start is True:
        return False
    if warm_start is False:
        return True
    # "auto": a penalised variable that is entirely zero cuts the network (a Dense or conv
    # kernel: only constants flow through the layer), a point that weaker strengths leave
    # slowly if at all (stationary unless a bias keeps a unit active); restart from the
    # initial weights then (for a convex model only the speed differs).
    return any(not np.any(snapshot[i]) for i in indices)


def _check_warm_start(warm_start):
    if not (warm_start is True or warm_start is False or (
            isinstance(warm_start, str) and warm_start == "auto")):
        raise _validation.invalid("warm_start", "'auto', True or False", warm_start)
    return warm_start


def _walk(model, trainer, data, strengths, *, validation, tol, max_epochs, callbacks,
          gradient_scale, strength_max_value, indices, on_strength=None, warn=True,
          evaluate=True, warm_start="auto", keep_weights=True):
    names = [v.path for v in model.variables]
    layer_names = {}
    for layer in model.layers:
        ids = {id(v) for v in layer.variables}
        layer_names[layer.name] = [i for i, v in enumerate(model.variables) if id(v) in ids]
    snapshots, metrics, sparsity, epochs, converged, criterion = [], {}, [], [], [], []
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.Callback):
            cb.set_model(trainer.model)
            cb.on_train_begin({})
    initial = trainer.snapshot()
    restarted = False
    for k, strength in enumerate(strengths):
        if k and _restart(warm_start, previous, indices):
            trainer.reset(initial)
            restarted = True
        done, ok, value = trainer.fit_strength(data, float(strength), tol, max_epochs,
                                               gradient_scale,
                                               epochs[-1] if epochs and not restarted else None)
        restarted = False
        snapshot = trainer.snapshot()
        snapshots.append(snapshot if keep_weights else None)
        logs = _evaluate(trainer, data, "") if evaluate else {}
        if validation is not None and evaluate:
            logs.update(_evaluate(trainer, validation, "val_"))
        for name, v in logs.items():
            metrics.setdefault(name, []).append(v)
        previous = snapshot
        sparsity.append(_sparsity(trainer))
        epochs.append(done)
        converged.append(ok)
        criterion.append(value)
        if on_strength is not None:
            on_strength(k)
        if callbacks:
            row = {"strength": float(strength), "epochs": done, "converged": float(ok),
                   "sparsity": sparsity[-1], **logs}
            for cb in callbacks:
                if isinstance(cb, keras.callbacks.Callback):
                    cb.on_epoch_end(k, dict(row))
                else:
                    cb(dict(row))
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.Callback):
            cb.on_train_end({})
    path = RegularizationPath(
        model, trainer.source_config, names, layer_names, indices, strengths, snapshots,
        metrics, sparsity, epochs, converged, criterion, strength_max_value, tol, max_epochs,
        indices)
    if warn and not path.converged.all():
        bad = path.strengths[~path.converged]
        what = ("prox-gradient residual / ||grad L(w0)||" if trainer.residual_mode
                else "relative change of the objective")
        warnings.warn(
            f"kreg.regularization_path: {bad.size} of {len(path)} strengths did not converge "
            f"within max_epochs={max_epochs} (criterion: {what} <= tol={tol:g}): strengths "
            f"{np.round(bad, 6).tolist()}, criterion "
            f"{np.round(path.criterion[~path.converged], 6).tolist()}. Their weights are not "
            "the solution: raise `max_epochs`, or the learning rate (up to 1 / L for SGD); "
            "a NaN criterion means the training diverged (lower the learning rate).",
            stacklevel=3)
    return path


def _prepare(model, x, y, sample_weight, strengths, n_strengths, eps, regularizers, tol,
             max_epochs, jit_compile):
    _check_model(model)
    indices = _selected_indices(model, regularizers)
    if strengths is not None:
        strengths = _check_strengths(strengths)
    n_strengths = _check_positive_int(n_strengths, "n_strengths")
    eps = _check_eps(eps)
    tol = _check_tol(tol)
    max_epochs = _check_positive_int(max_epochs, "max_epochs")
    if jit_compile is not None and not isinstance(jit_compile, bool):
        raise _validation.invalid("jit_compile", "None, True or False", jit_compile)
    data = _data(x, y, sample_weight)
    trainer = _path_fit.PathTrainer(model, indices, jit_compile=jit_compile)
    return indices, strengths, n_strengths, eps, tol, max_epochs, data, trainer


def _grid(model, trainer, data, indices, strengths, n_strengths, eps):
    """`(strengths, gradient scale, strength_max or None)` from the gradient at zero."""
    need_max = strengths is None
    grads = None
    if trainer.residual_mode or need_max:
        grads = _gradient_at_zero(model, trainer, data, indices)
    scale = 1.0
    if grads is not None:
        scale = float(np.sqrt(sum(np.sum(g**2) for g in grads)))
        scale = scale if scale > 0 else 1.0
    top = None
    if need_max:
        top = _max_from_gradients(trainer, grads)
        if not top > 0:
            raise ValueError(
                "Invalid value for argument `strengths`: expected explicit strengths, since "
                "the loss gradient at zero weights is zero (strength_max = 0: zero weights "
                "already fit the data). Received: strengths=None")
        strengths = top * np.geomspace(1.0, eps, n_strengths) if n_strengths > 1 else np.array(
            [top])
    return strengths, scale, top


def regularization_path(model, x, y, strengths=None, *, n_strengths=30, eps=1e-3,
                        regularizers=None, validation_data=None, sample_weight=None, tol=1e-4,
                        max_epochs=10_000, warm_start="auto", callbacks=None,
                        jit_compile=None):
    """Trains `model` (a clone) at each strength of a grid, warm-started from sparse to dense.

    See the module docstring for the training, the convergence criterion and the
    grid. Training starts from the model's current weights (with zero initial weights,
    as scikit-learn starts, the first strength of the default grid is reached at once;
    from random ones, a loose `tol` may stop while some weights are still small but not
    exactly zero). The input model is not changed; `path.model_at(s)` returns a new model.

    Args:
        model: a compiled, built Keras model with kreg regularizers. Its optimizer
            (a fresh copy) trains the path, wrapped in `kreg.Proximal` unless it is
            one: plain `SGD` with a constant learning rate `<= 1 / L` gives the exact
            proximal gradient method and the residual criterion.
        x, y: full-batch training data (arrays or the structures the model takes).
        strengths: None (a log grid from `strength_max`) or non-negative strengths,
            sorted here into descending order.
        n_strengths: the grid's size when `strengths` is None.
        eps: the grid's smallest strength over the largest (`1e-3`, as scikit-learn).
        regularizers: None (every kreg regularizer of the model) or a list of the
            model's kreg regularizers; each is assigned the path strength.
        validation_data: optional `(x_val, y_val)` or `(x_val, y_val, sample_weight)`:
            `val_` metrics per strength.
        sample_weight: optional per-sample weights of `x`.
        tol: convergence tolerance (see the module docstring).
        max_epochs: the most full-batch steps per strength.
        warm_start: `"auto"` (default): each strength starts from the previous one's
            weights, except after a strength that zeroed a whole penalised variable
            (a kernel: the network is cut, a point weaker strengths leave slowly if
            at all), after which the next strength restarts from the model's weights;
            True: always from the previous weights; False: every strength from the
            model's weights (independent fits).
        callbacks: Keras callbacks (each strength is one "epoch": `on_epoch_end(k, row)`,
            so `CSVLogger`, `TensorBoard` or a tracker's Keras callback logs one row per
            strength) or callables `fn(row)`; `row` has `strength`, `epochs`,
            `converged`, `sparsity` and the metrics.
        jit_compile: None (XLA on TensorFlow and JAX), True or False.

    Returns:
        A `RegularizationPath`.

    Raises:
        TypeError: a model that is not a `keras.Model`, an optimizer that
            `kreg.Proximal` cannot wrap, callbacks of the wrong type.
        ValueError: an uncompiled model or one without kreg regularizers, bad
            `strengths`, `n_strengths`, `eps`, `tol`, `max_epochs`, `validation_data`.

    Warns:
        UserWarning naming the strengths that did not converge within `max_epochs`.

    Example:

    >>> import numpy as np, keras, kreg
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 4)); y = x @ np.array([[2.0], [0.0], [-1.0], [0.0]])
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
    ...     1, use_bias=False, kernel_initializer="zeros", kernel_regularizer=kreg.L1(0.0))])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.2), loss="mse")
    >>> path = kreg.regularization_path(model, x, y, n_strengths=5)
    >>> bool(path.converged.all()), float(path.sparsity[0])
    (True, 1.0)
    """
    indices, strengths, n_strengths, eps, tol, max_epochs, data, trainer = _prepare(
        model, x, y, sample_weight, strengths, n_strengths, eps, regularizers, tol, max_epochs,
        jit_compile)
    validation = _check_validation(validation_data)
    callbacks = _check_callbacks(callbacks)
    warm_start = _check_warm_start(warm_start)
    strengths, scale, top = _grid(model, trainer, data, indices, strengths, n_strengths, eps)
    return _walk(model, trainer, data, strengths, validation=validation, tol=tol,
                 max_epochs=max_epochs, callbacks=callbacks, gradient_scale=scale,
                 strength_max_value=top, indices=indices, warm_start=warm_start)


from kreg._cross_validation import CrossValidation, cross_validate  # noqa: E402  (uses the above)
