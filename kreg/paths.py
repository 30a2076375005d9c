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
with the penalty as Keras logs it. The residual is checked every 16 steps inside
the compiled training call, which returns once it passes (one call per strength,
usually); the objective between calls of 8, 16, 32, ... (at most 1024) steps.
Training stops at `max_epochs` steps, and the strengths that did not converge
are named in a warning and marked in `path.converged`.

**Acceleration.** With plain SGD, on a problem known to be convex (a linear or
generalised linear model: one `Dense`/`EinsumDense` layer without activation,
a squared, absolute, Huber or log-cosh loss or a cross-entropy on logits, and
lasso-family penalties), the steps are by default (`accelerate=None`) FISTA's
(Beck & Teboulle 2009): each proximal gradient step is taken from a point
extrapolated along the last displacement, `y_{k+1} = x_{k+1} + (t_k - 1) / t_{k+1}
(x_{k+1} - x_k)`, `t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2`, with the gradient
scheme's adaptive restart (O'Donoghue & Candes 2015: no momentum, `t = 1`, when
`<y_k - x_{k+1}, x_{k+1} - x_k> > 0`). On a problem of condition number `kappa`
this takes about `sqrt(kappa)` instead of `kappa` steps per digit of accuracy
(the diabetes lasso path, `kappa` = 470: 12 times fewer steps). It applies to
every trainable variable (biases too) and changes neither the problem nor the
criterion: the last step before every residual check is a plain proximal
gradient step from the last iterate, whose displacement is the residual above
(the momentum then goes on from where it was), and the weights a strength ends
with are that step's, an iterate, never an extrapolated point. The momentum
starts afresh at every strength (from the previous strength's weights). With any
other optimizer there is nothing to accelerate (`accelerate=True` is then an
error). `accelerate=False` gives the plain proximal gradient method, which is
also the default for anything not known to be convex (a network, an activation,
MCP or SCAD): there FISTA's extrapolation does not keep the objective falling,
and on a digits MLP it ended in a sparser, worse stationary point (validation
accuracy 0.79 against 0.97-0.98; BENCHMARKS.md section 7). `accelerate=True`
still asks for it.

**The tolerance's scale.** The residual is compared with `tol` times the loss
gradient at zero penalised weights. Where that gradient is 0 (e.g. a network
whose every hidden kernel is penalised: with them zero, no gradient reaches
any), the scale is 1 and `tol` is absolute.

**Reuse.** As a second `fit` reuses a model's compiled train function, a
second call reuses the compiled clone of the first: `regularization_path` and
`strength_max` on the same model, `cross_validate` with the same `build_model`
callable (a new `lambda` per call has nothing to reuse). Only where the model
would give the same clone (the rule and its checks: `kreg._path_cache`), and
reset first to the model's weights, a fresh optimizer state and the model's
strengths, so the results are those of a new clone, bit for bit. On diabetes
this is the difference between about 0.4 and 1.1 s for 5-fold cross-validation
on TensorFlow (BENCHMARKS.md section 7). The clone lives as long as its model
or callable.

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
    Beck & Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for Linear
    Inverse Problems", SIAM Journal on Imaging Sciences, 2009 (FISTA).
    O'Donoghue & Candes, "Adaptive Restart for Accelerated Gradient Schemes",
    Foundations of Computational Mathematics, 2015 (the gradient restart scheme).
"""

import warnings

import keras
import numpy as np
from keras import ops

from kreg import _path_bounds
from kreg import _path_cache
from kreg import _path_fit
from kreg import _validation
from kreg._path_checks import (  # noqa: F401  (also used by kreg._cross_validation)
    _check_callbacks,
    _check_eps,
    _check_model,
    _check_positive_int,
    _check_strengths,
    _check_tol,
    _check_validation,
    _check_warm_start,
    _data,
    _selected_indices,
)
from kreg._path_results import RegularizationPath
from kreg.regularizers import kreg_regularizer

__all__ = [
    "CrossValidation",
    "RegularizationPath",
    "cross_validate",
    "regularization_path",
    "strength_max",
]


# -- the gradient at zero and strength_max ---------------------------------------
def _probe(model, indices, owner=None):
    """A clone trained by SGD(1) without acceleration: one step from zero penalised
    weights gives the loss gradient there."""
    return _path_cache.trainer(
        owner, model, lambda: _path_fit.PathTrainer(
            model, indices, accelerate=False, optimizer=keras.optimizers.SGD(learning_rate=1.0)),
        "probe", tuple(indices))


def _gradient_at_zero(model, trainer, data, indices, owner=None):
    """`(trainer, gradients)`: the loss gradient at the model's weights with the penalised
    ones zero, from `trainer` when it trains with plain SGD, else from a probe clone
    trained by SGD(1), returned with the gradients (its penalised variables are theirs)."""
    if not trainer.residual_mode:
        trainer = _probe(model, indices, owner)
    return trainer, trainer.gradient_at_zero(data)


# The bound is rounded up by this factor: at the bound itself the prox of a float32 step
# sits exactly on its threshold, where rounding may leave a weight of 1e-9 instead of 0.
_ROUND_UP = 1.0 + 1e-6


def _max_from_gradients(trainer, grads, argument="strengths", received="strengths=None"):
    """The bound from `grads` (aligned with `trainer.penalised`); a ValueError when it is 0."""
    top = _ROUND_UP * max(
        _path_bounds.bound(kreg_regularizer(v), v, g) for v, g in zip(trainer.penalised, grads))
    if not top > 0:
        expected = ("explicit strengths" if argument == "strengths" else
                    "a model whose loss gradient at zero penalised weights is not zero")
        raise ValueError(
            f"Invalid value for argument `{argument}`: expected {expected}. The loss "
            "gradient with respect to every penalised weight is zero when they are all "
            "zero, so the gradient bound gives no strength (it would be 0): either zero "
            "weights already fit the data, or the penalised weights block each other's "
            "gradient (e.g. every hidden kernel of a network penalised: with all of them zero "
            f"no gradient reaches any); choose the strengths by hand. Received: {received}")
    return top


@_path_cache.one_call
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
            zeroes (L2, ElasticNet(l1_ratio=0)) or has no gradient bound (L0), or a
            bound of 0 (a zero loss gradient at zero penalised weights, e.g. every
            hidden kernel of a network penalised).

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
    probe = _probe(model, indices, owner=model)
    return _max_from_gradients(probe, probe.gradient_at_zero(data), "model",
                               f"model {model.name!r}, whose gradient bound is 0")


# -- the walk ------------------------------------------------------------------------
def _sparsity(snapshot, indices):
    """The fraction of exact zeros among the penalised weights (`snapshot[i]`, i in
    `indices`: read from the device once, with the snapshot)."""
    total = sum(int(np.size(snapshot[i])) for i in indices)
    zeros = sum(int(np.sum(snapshot[i] == 0)) for i in indices)
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
        sparsity.append(_sparsity(snapshot, indices))
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
            f"{[float(f'{v:.3g}') for v in bad]}, criterion "
            f"{[float(f'{v:.3g}') for v in path.criterion[~path.converged]]}. Their weights "
            "are not "
            "the solution: raise `max_epochs`, or the learning rate (up to 1 / L for SGD); "
            "a NaN criterion means the training diverged (lower the learning rate).",
            stacklevel=4)  # the caller of the public function (behind one_call)
    return path


def _prepare(model, x, y, sample_weight, strengths, n_strengths, eps, regularizers, tol,
             max_epochs, jit_compile, accelerate=None, owner=None):
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
    if accelerate is not None and not isinstance(accelerate, bool):
        raise _validation.invalid("accelerate", "None, True or False", accelerate)
    data = _data(x, y, sample_weight)
    trainer = _path_cache.trainer(
        owner, model, lambda: _path_fit.PathTrainer(model, indices, jit_compile=jit_compile,
                                                    accelerate=accelerate),
        "path", tuple(indices), jit_compile, accelerate)
    return indices, strengths, n_strengths, eps, tol, max_epochs, data, trainer


def _grid(model, trainer, data, indices, strengths, n_strengths, eps, owner=None):
    """`(strengths, gradient scale, strength_max or None)` from the gradient at zero."""
    need_max = strengths is None
    grads = None
    if trainer.residual_mode or need_max:
        source, grads = _gradient_at_zero(model, trainer, data, indices, owner)
    scale = 1.0
    if grads is not None:
        scale = float(np.sqrt(sum(np.sum(g**2) for g in grads)))
        scale = scale if scale > 0 else 1.0
    top = None
    if need_max:
        top = _max_from_gradients(source, grads)
        strengths = top * np.geomspace(1.0, eps, n_strengths) if n_strengths > 1 else np.array(
            [top])
    return strengths, scale, top


@_path_cache.one_call
def regularization_path(model, x, y, strengths=None, *, n_strengths=30, eps=1e-3,
                        regularizers=None, validation_data=None, sample_weight=None, tol=1e-4,
                        max_epochs=10_000, warm_start="auto", callbacks=None,
                        jit_compile=None, accelerate=None):
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
        accelerate: None (default): FISTA's steps (see the module docstring) where the
            path trains by the proximal gradient method (plain `SGD`) on a problem known
            to be convex (a linear model), plain proximal gradient steps on any other
            with plain `SGD`, the optimizer's own steps otherwise; True: FISTA, a
            ValueError for any other optimizer; False: plain proximal gradient steps.

    Returns:
        A `RegularizationPath`.

    Raises:
        TypeError: a model that is not a `keras.Model`, an optimizer that
            `kreg.Proximal` cannot wrap, callbacks of the wrong type.
        ValueError: an uncompiled model or one without kreg regularizers, bad
            `strengths`, `n_strengths`, `eps`, `tol`, `max_epochs`, `validation_data`,
            `accelerate=True` for a model whose optimizer is not plain SGD.

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
        jit_compile, accelerate, owner=model)
    validation = _check_validation(validation_data)
    callbacks = _check_callbacks(callbacks)
    warm_start = _check_warm_start(warm_start)
    strengths, scale, top = _grid(model, trainer, data, indices, strengths, n_strengths, eps,
                                  owner=model)
    return _walk(model, trainer, data, strengths, validation=validation, tol=tol,
                 max_epochs=max_epochs, callbacks=callbacks, gradient_scale=scale,
                 strength_max_value=top, indices=indices, warm_start=warm_start)


from kreg._cross_validation import CrossValidation, cross_validate  # noqa: E402  (uses the above)
