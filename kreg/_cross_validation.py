"""`kreg.cross_validate`: one warm-started path per fold, one compiled model for all folds."""

import numbers

import keras
import numpy as np
from keras import ops

from kreg import _path_cache
from kreg import _validation
from kreg import paths as _paths

_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "mape", "msle", "crossentropy", "hinge",
                    "poisson", "divergence", "logcosh", "huber")
_GREATER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "r2", "iou")


class CrossValidation:
    """The result of `kreg.cross_validate`.

    Attributes:
        strengths: the grid, descending.
        scores: `(n_folds, n_strengths)` held-out scores.
        mean, std_error: per strength, over the folds (`std(ddof=1) / sqrt(n_folds)`).
        best_strength: the strength of the best mean score (the first, i.e. the
            largest, on a tie).
        one_se_strength: the largest strength whose mean score is within one standard
            error of the best (ESL section 7.10).
        model: a model trained on all the data at `best_strength` (None if `refit=False`).
        path: the path on all the data down to `best_strength` (None if `refit=False`).
        paths: the per-fold `RegularizationPath`s (epochs, convergence and sparsity per
            strength; no weights or metrics are kept, so memory stays flat over the folds).
        scoring: the scoring's name; greater_is_better: its direction.
    """

    def __init__(self, strengths, scores, scoring, greater_is_better, paths, path, model):
        self.strengths = np.asarray(strengths, "float64")
        self.scores = np.asarray(scores, "float64")
        self.scoring = scoring
        self.greater_is_better = greater_is_better
        self.paths = paths
        self.path = path
        self.model = model
        folds = self.scores.shape[0]
        self.mean = self.scores.mean(axis=0)
        self.std_error = (self.scores.std(axis=0, ddof=1) / np.sqrt(folds) if folds > 1
                          else np.zeros_like(self.mean))
        sign = -1.0 if greater_is_better else 1.0
        objective = sign * self.mean
        self.best_index = int(np.argmin(objective))
        self.best_strength = float(self.strengths[self.best_index])
        limit = objective[self.best_index] + self.std_error[self.best_index]
        self.one_se_index = int(np.flatnonzero(objective <= limit)[0])
        self.one_se_strength = float(self.strengths[self.one_se_index])

    def plot(self, **kwargs):
        """Mean held-out score with standard-error bars, best and one-SE strengths marked
        (`kreg.plot.score_vs_strength`). Needs matplotlib."""
        from kreg import plot

        kwargs.setdefault("ylabel", self.scoring)
        kwargs.setdefault("val_label", f"cross-validation ({self.scores.shape[0]} folds)")
        return plot.score_vs_strength(
            self.strengths, None, self.mean, val_errors=self.std_error,
            best={"best": self.best_strength, "one standard error": self.one_se_strength},
            **kwargs)

    def __repr__(self):
        return (f"CrossValidation({self.scores.shape[0]} folds, {len(self.strengths)} "
                f"strengths, best_strength={self.best_strength:.4g}, "
                f"one_se_strength={self.one_se_strength:.4g})")



def _folds(cv, n):
    """`[(train_indices, test_indices), ...]` from an int (contiguous K folds, as
    scikit-learn's unshuffled `KFold`) or a splitter with `split(x, y)`."""
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if not 2 <= cv <= n:
            raise _validation.invalid("cv", f"an integer in [2, {n}] (the number of folds) or "
                                      "a splitter such as sklearn's KFold", cv)
        sizes = np.full(cv, n // cv)
        sizes[: n % cv] += 1
        stops = np.cumsum(sizes)
        every = np.arange(n)
        return [(np.concatenate([every[: stop - size], every[stop:]]), every[stop - size: stop])
                for size, stop in zip(sizes, stops)]
    if hasattr(cv, "split"):
        return cv
    raise _validation.invalid("cv", "an integer >= 2 or a splitter with a `split(x, y)` method "
                              "(sklearn's KFold, StratifiedKFold, ...)", cv)


def _fold_data(x, y, index, n, pad):
    """The training fold as full-batch tensors, padded to `n` rows when `pad`."""
    index = np.asarray(index)
    if not pad or len(index) >= n:
        return _paths._data(_take(x, index), _take(y, index), None)
    rows = np.resize(index, n)  # the fold's rows, repeated cyclically
    weights = np.zeros(n)
    weights[: len(index)] = n / len(index)
    return _paths._data(_take(x, rows), _take(y, rows), weights)


def _take(data, index):
    return keras.tree.map_structure(lambda a: np.asarray(a)[index], data)


def _accuracy(y_true, y_pred):
    """`"accuracy"` resolved as `model.compile(metrics=["accuracy"])` resolves it: binary for
    one output column, sparse categorical for integer labels, categorical for one-hot."""
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    if pred_shape[-1] == 1:
        return keras.metrics.binary_accuracy(y_true, y_pred)
    if len(true_shape) < len(pred_shape) or true_shape[-1] == 1:
        return keras.metrics.sparse_categorical_accuracy(y_true, y_pred)
    return keras.metrics.categorical_accuracy(y_true, y_pred)


def _scorer(scoring, loss, greater_is_better):
    """`(fn(y_true, y_pred) -> float, name, greater_is_better, tensor_fn)`; `tensor_fn` is
    the Keras function itself (None for a callable or a stateful `Metric`), which the
    engine evaluates inside one compiled call per strength."""
    if greater_is_better is not None and not isinstance(greater_is_better, bool):
        raise _validation.invalid("greater_is_better", "None, True or False", greater_is_better)
    if callable(scoring) and not isinstance(scoring, str):
        name = getattr(scoring, "__name__", type(scoring).__name__)
        fn = scoring
        greater = bool(greater_is_better)
    elif isinstance(scoring, str):
        name = scoring
        if scoring == "loss":
            fn = keras.losses.get(loss) if isinstance(loss, str) else loss
        elif scoring in ("accuracy", "acc"):
            fn = _accuracy
        else:
            try:
                fn = keras.metrics.get(scoring)
            except ValueError:
                raise _validation.invalid(
                    "scoring", "'loss', a Keras metric name or a callable fn(y_true, y_pred)",
                    scoring) from None
        if greater_is_better is None:
            low = scoring.lower()
            if any(key in low for key in _LOWER_IS_BETTER):
                greater = False
            elif any(key in low for key in _GREATER_IS_BETTER):
                greater = True
            else:
                raise _validation.invalid(
                    "greater_is_better", f"True or False: the direction of {scoring!r} is "
                    "not known", greater_is_better)
        else:
            greater = greater_is_better
    else:
        raise _validation.invalid(
            "scoring", "'loss', a Keras metric name or a callable fn(y_true, y_pred)", scoring)

    def score(y_true, y_pred):
        if isinstance(fn, keras.metrics.Metric):
            fn.reset_state()
            fn.update_state(y_true, y_pred)
            return float(ops.convert_to_numpy(fn.result()))
        return float(np.mean(ops.convert_to_numpy(fn(y_true, y_pred))))

    user_callable = callable(scoring) and not isinstance(scoring, str)
    tensor_fn = None if user_callable or isinstance(fn, keras.metrics.Metric) else fn
    return score, name, greater, tensor_fn


@_path_cache.one_call
def cross_validate(build_model, x, y, strengths=None, cv=5, scoring="loss", *,
                   n_strengths=30, eps=1e-3, greater_is_better=None, tol=1e-4,
                   max_epochs=10_000, refit=True, pad_folds=True, warm_start="auto",
                   callbacks=None, jit_compile=None, accelerate=None):
    """K-fold cross-validation of the strength, a warm-started path per fold.

    For each fold, a model from `build_model()` (fresh initial weights) walks the
    whole grid on the training part (as `kreg.regularization_path`) and is scored
    on the held-out part at every strength. One clone compiled once serves every
    fold (its weights and optimizer state are reset per fold), so memory stays
    flat over the grid. Then:

    * `mean[k]`, `std_error[k] = std(scores[:, k], ddof=1) / sqrt(K)` over the K folds;
    * `best_strength`: the best mean score (the largest strength on a tie);
    * `one_se_strength`: the largest strength whose mean is within one standard
      error of the best one's (the one-standard-error rule, ESL 7.10): the
      sparsest model that cannot be told apart from the best.

    The held-out score of each strength is one compiled call (the model's forward
    pass and a Keras loss or metric function), or, for a callable `scoring` or a
    model with several outputs, the model's outputs scored in NumPy.

    `scoring="loss"` is the compiled loss on the held-out fold *without* the
    penalty (what `LassoCV.mse_path_` holds for `"mse"`); a Keras metric name
    (`"mae"`; `"accuracy"` is resolved from the shapes as `compile` does: binary,
    sparse categorical or categorical) or a callable `fn(y_true, y_pred) -> float`
    (NumPy arrays: the fold's targets and the model's outputs; its mean over the
    fold is the score) may be given instead. The grid (`strengths=None`) comes from `strength_max` on all the
    data, as `LassoCV` does.

    Args:
        build_model: a callable returning a new compiled, built model (as KerasTuner's
            `build(hp)`); every call must give the same architecture. A later
            `cross_validate` with the same callable reuses this call's compiled clone
            (see "Reuse" in `kreg.paths`), so define it once rather than as a new
            `lambda` in every call.
        x, y: all the data (arrays, indexed along the first axis).
        strengths, n_strengths, eps, tol, max_epochs, warm_start, callbacks,
            jit_compile, accelerate: as in `kreg.regularization_path` (`callbacks` see every fold's
            rows in turn).
        cv: the number of folds (contiguous, unshuffled: scikit-learn's `KFold(cv)`) or
            a splitter with `split(x, y)` (`KFold(5, shuffle=True, random_state=0)`).
        scoring: `"loss"`, a Keras metric name, or a callable.
        greater_is_better: the direction of `scoring`; None infers it from the name
            (losses and errors lower, accuracies higher; a callable is taken as a loss).
        refit: train a model on all the data at `best_strength` (`cv.model`).
        pad_folds: give every training fold the shape of the full data, so that one
            compiled step serves all folds (each new shape is a new trace and XLA
            compilation, 0.5 to 1 s): the fold's rows are repeated to `len(x)` rows,
            the repeats with sample weight 0 and the fold's own rows with weight
            `len(x) / len(fold)`, which leaves a per-sample mean loss (Keras's
            default `"sum_over_batch_size"` reduction) exactly the fold's. Set it to
            False for a loss with another reduction, or a model whose forward pass
            mixes samples (BatchNorm in training mode sees the repeated rows).

    Returns:
        A `CrossValidation`.

    Raises:
        TypeError: `build_model` not callable, or it returns something else than a model.
        ValueError: as `regularization_path`; bad `cv` or `scoring`; models of
            different architectures from two calls of `build_model`.
    """
    if not callable(build_model) or isinstance(build_model, keras.Model):
        raise TypeError(
            "Invalid type for argument `build_model`: expected a callable returning a new "
            "compiled model (as KerasTuner's `build(hp)`), so that every fold starts from "
            f"fresh weights. Received: build_model of type {type(build_model).__name__}")
    if not isinstance(pad_folds, bool):
        raise _validation.invalid("pad_folds", "True or False", pad_folds)
    model = build_model()
    indices, strengths, n_strengths, eps, tol, max_epochs, data, trainer = _paths._prepare(
        model, x, y, None, strengths, n_strengths, eps, None, tol, max_epochs, jit_compile,
        accelerate, owner=build_model)
    callbacks = _paths._check_callbacks(callbacks)
    warm_start = _paths._check_warm_start(warm_start)
    score, name, greater, tensor_fn = _scorer(scoring, trainer.source_config.get("loss"),
                                              greater_is_better)
    if not isinstance(y, np.ndarray):
        tensor_fn = None  # targets of several outputs: scored on their NumPy structure
    n = len(keras.tree.flatten(x)[0])
    if pad_folds:
        # All the data with sample weights too (ones: the same loss), so that the grid, the
        # folds and the refit share one traced and compiled train function.
        data = _paths._data(x, y, np.ones(n))
    splitter = _folds(cv, n)
    folds = list(splitter.split(x, y) if hasattr(splitter, "split") else splitter)
    if len(folds) < 2:
        raise _validation.invalid("cv", "a splitter with at least 2 folds", cv)
    strengths, _, _ = _paths._grid(model, trainer, data, indices, strengths, n_strengths, eps,
                                   owner=build_model)
    shapes = [tuple(v.shape) for v in model.variables]
    scores, fold_paths = [], []
    for train, test in folds:
        fold_model = build_model()
        _paths._check_model(fold_model, "build_model()")
        if [tuple(v.shape) for v in fold_model.variables] != shapes:
            raise ValueError(
                "Invalid value for argument `build_model`: expected every call to return the "
                "same architecture. Received: models whose variables have shapes "
                f"{shapes} and {[tuple(v.shape) for v in fold_model.variables]}")
        trainer.start_from(fold_model.get_weights())
        train_data = _fold_data(x, y, train, n, pad_folds)
        x_test = _paths._data(_take(x, test), _take(y, test), None)[0]
        y_test = keras.tree.map_structure(np.asarray, _take(y, test))
        fold_scores = []

        y_tensor = None if tensor_fn is None else ops.convert_to_tensor(y_test)

        def on_strength(k, x_test=x_test, y_test=y_test, y_tensor=y_tensor,
                        fold_scores=fold_scores):
            if tensor_fn is not None:
                fold_scores.append(trainer.held_out_score(tensor_fn, x_test, y_tensor))
                return
            y_pred = ops.convert_to_numpy(trainer.model(x_test, training=False))
            fold_scores.append(score(y_test, y_pred))

        _, scale, _ = _paths._grid(model, trainer, train_data, indices, strengths, n_strengths,
                                   eps, owner=build_model)
        fold_paths.append(_paths._walk(
            model, trainer, train_data, strengths, validation=None, tol=tol,
            max_epochs=max_epochs, callbacks=callbacks, gradient_scale=scale,
            strength_max_value=None, indices=indices, on_strength=on_strength, evaluate=False,
            warm_start=warm_start, keep_weights=False))
        scores.append(fold_scores)
    result = CrossValidation(strengths, scores, name, greater, fold_paths, None, None)
    if refit:
        trainer.start_from(build_model().get_weights())
        grid = strengths[: result.best_index + 1]
        _, scale, _ = _paths._grid(model, trainer, data, indices, grid, n_strengths, eps,
                                   owner=build_model)
        result.path = _paths._walk(
            model, trainer, data, grid, validation=None, tol=tol, max_epochs=max_epochs,
            callbacks=[], gradient_scale=scale, strength_max_value=None, indices=indices,
            warm_start=warm_start)
        result.model = result.path.model_at(result.best_strength)
    return result
