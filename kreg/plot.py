"""Figures of what kreg and Keras produce: paths, scores, training curves, surviving units.

Every function takes plain results (arrays over a strength grid, a `History`, a
model) and returns a `matplotlib.figure.Figure`. The figures are built without
`pyplot`, so they need no display, hold no global state, and show once in a
notebook when they are a cell's last value; save one with `fig.savefig(path)`.
Pass `ax=` to draw into an existing Axes instead (the Figure returned is then
`ax.figure`).

Needs matplotlib: `pip install "kreg[plot]"`.
"""

import numbers

import numpy as np

try:
    from matplotlib.figure import Figure
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        'kreg.plot needs matplotlib, which is not installed: pip install "kreg[plot]"'
    ) from error

from kreg import _math
from kreg import _validation
from kreg import layouts

__all__ = ["coefficient_paths", "score_vs_strength", "surviving_units", "training_curves"]

# The prefixes of the keys that kreg.callbacks puts in `logs` (and so in History).
_SPARSITY_PREFIXES = ("sparsity", "group_sparsity/")
_STRENGTH_PREFIX = "strength/"


def _new_axes(ax, figsize):
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return ax.figure, ax


def _strength_grid(strengths, name="strengths"):
    values = np.asarray(strengths, dtype="float64")
    if values.ndim != 1 or values.size == 0:
        raise _validation.invalid(name, "a non-empty 1-D sequence of strengths", strengths)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise _validation.invalid(
            name, "positive finite strengths (the x-axis is logarithmic)", strengths
        )
    return values


def _per_strength(values, name, count, ndim=(1,)):
    array = np.asarray(values, dtype="float64")
    if array.ndim not in ndim or array.shape[0] != count:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected one value per strength "
            f"(an array of shape ({count},{' p' if 2 in ndim else ''})). "
            f"Received: {name} of shape {array.shape}"
        )
    return array


def coefficient_paths(
    strengths,
    coefs,
    labels=None,
    *,
    reference=None,
    reference_label="reference",
    ax=None,
    title=None,
    xlabel="strength",
    ylabel="coefficient",
):
    """Coefficient paths: one line per coefficient against the strength, log x-axis.

    Line `j` of the Axes goes through the points `(strengths[k], coefs[k, j])`.
    For a layer, pass per-unit weight norms instead of coefficients (e.g.
    `reg.group_norms(kernel)` at each strength) to draw unit paths.

    Args:
        strengths: 1-D sequence of `k` positive strengths (the grid, any order).
        coefs: array of shape `(k,)` or `(k, p)`: the `p` coefficients fitted at
            each strength.
        labels: optional `p` names, shown in a legend.
        reference: optional pair `(ref_strengths, ref_coefs)` of the same layout,
            drawn as dashed black lines over the paths (e.g. scikit-learn's
            solution on the same problem); they follow the `p` path lines in
            `ax.lines`, the first one labelled `reference_label`.
        reference_label: legend label of the reference lines.
        ax: an Axes to draw into; a new Figure when None.
        title, xlabel, ylabel: texts of the Axes.

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: a non-positive strength, or arrays whose first dimension is
            not the number of strengths, or `labels` of the wrong length.

    Example:

    >>> import numpy as np
    >>> from kreg.plot import coefficient_paths
    >>> fig = coefficient_paths([1.0, 0.1], np.array([[0.0, 0.5], [1.0, 2.0]]), ["a", "b"])
    >>> [line.get_ydata().tolist() for line in fig.axes[0].lines]
    [[0.0, 1.0], [0.5, 2.0]]
    """
    x = _strength_grid(strengths)
    y = _per_strength(coefs, "coefs", x.size, ndim=(1, 2)).reshape(x.size, -1)
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != y.shape[1]:
            raise ValueError(
                f"Invalid value for argument `labels`: expected {y.shape[1]} names, one "
                f"per coefficient. Received: {len(labels)} names"
            )
    fig, ax = _new_axes(ax, (6, 4))
    for j in range(y.shape[1]):
        ax.plot(x, y[:, j], label=labels[j] if labels else f"_coef{j}", linewidth=1.5)
    if reference is not None:
        try:
            ref_strengths, ref_coefs = reference
        except (TypeError, ValueError):
            raise _validation.invalid(
                "reference", "a pair (ref_strengths, ref_coefs)", reference
            ) from None
        rx = _strength_grid(ref_strengths, "reference")
        ry = _per_strength(ref_coefs, "reference", rx.size, ndim=(1, 2)).reshape(rx.size, -1)
        if ry.shape[1] != y.shape[1]:
            raise ValueError(
                f"Invalid value for argument `reference`: expected {y.shape[1]} coefficients "
                f"per strength, as in `coefs`. Received: {ry.shape[1]}"
            )
        for j in range(ry.shape[1]):
            ax.plot(rx, ry[:, j], linestyle="--", color="black", linewidth=0.9,
                    label=reference_label if j == 0 else "_reference")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if labels or reference is not None:
        ax.legend(fontsize="small", ncols=2 if y.shape[1] > 6 else 1)
    return fig


def _marks(best):
    if best is None:
        return {}
    if isinstance(best, dict):
        marks = dict(best)
    else:
        marks = {"best": best}
    for label, value in marks.items():
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
            raise _validation.invalid(
                "best", "a positive strength or a dict of label -> positive strength", best
            )
    return marks


def score_vs_strength(
    strengths,
    train_scores,
    val_scores,
    best=None,
    *,
    train_errors=None,
    val_errors=None,
    train_label="train",
    val_label="validation",
    ax=None,
    title=None,
    xlabel="strength",
    ylabel="score",
):
    """Train and validation score against the strength (log x-axis), the chosen strength marked.

    The line labelled `train_label` goes through `(strengths[k], train_scores[k])`,
    the one labelled `val_label` through `(strengths[k], val_scores[k])`; with
    `*_errors` (e.g. the standard error over cross-validation folds) the line is
    drawn with error bars (then `ax.containers` holds the bars). Each mark is a
    vertical line labelled `"<label> = <strength:.3g>"`.

    Args:
        strengths: 1-D sequence of `k` positive strengths.
        train_scores: `k` training scores, or None to draw validation only.
        val_scores: `k` validation (or test, or cross-validation) scores.
        best: None, a strength to mark as `"best"`, or a dict of label -> strength
            (e.g. `{"best": 1e-3, "one standard error": 3e-3}`).
        train_errors, val_errors: optional `k` error-bar half-widths.
        train_label, val_label: legend labels of the two curves.
        ax: an Axes to draw into; a new Figure when None.
        title, xlabel, ylabel: texts of the Axes.

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        ValueError: a non-positive strength or mark, or score arrays whose length
            is not the number of strengths.

    Example:

    >>> from kreg.plot import score_vs_strength
    >>> fig = score_vs_strength([0.1, 1.0], [0.9, 0.7], [0.8, 0.75], best=1.0)
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['train', 'validation', 'best = 1']
    """
    x = _strength_grid(strengths)
    marks = _marks(best)
    curves = []
    if train_scores is not None:
        curves.append((train_scores, train_errors, "train_scores", "train_errors", train_label))
    elif train_errors is not None:
        raise ValueError(
            "Invalid value for argument `train_errors`: expected None when `train_scores` "
            "is None. Received: an array of train errors"
        )
    curves.append((val_scores, val_errors, "val_scores", "val_errors", val_label))
    fig, ax = _new_axes(ax, (6, 4))
    for scores, errors, name, error_name, label in curves:
        y = _per_strength(scores, name, x.size)
        if errors is None:
            ax.plot(x, y, marker="o", markersize=3, label=label)
        else:
            err = _per_strength(errors, error_name, x.size)
            ax.errorbar(x, y, yerr=err, marker="o", markersize=3, capsize=2, label=label)
    for i, (label, value) in enumerate(marks.items()):
        ax.axvline(float(value), color=f"C{i + 2}", linestyle=":",
                   label=f"{label} = {float(value):.3g}")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def _history_dict(history):
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(
            "Invalid type for argument `history`: expected a keras.callbacks.History or "
            f"its `.history` dict. Received: history of type {type(history).__name__}"
        )
    return logs


def training_curves(history, metrics=None, *, title=None):
    """Sparsity and strength over epochs (and chosen metrics), from a `History`.

    Reads the keys that kreg's callbacks log: `sparsity`, `sparsity/<path>` and
    `group_sparsity/<path>` (from `SparsityMonitor`) in one panel, and
    `strength/<path>` (from `StrengthScheduler`) in another; `metrics` (e.g.
    `["accuracy", "val_accuracy"]`) adds a first panel. A panel without keys is
    left out. Each line is labelled with its key and goes through
    `(epoch, history[key][epoch - 1])` for epochs 1, 2, ...

    Args:
        history: a `keras.callbacks.History` (what `fit` returns) or its
            `.history` dict of key -> list of per-epoch values.
        metrics: optional sequence of other keys of `history` to draw first.
        title: optional title of the Figure.

    Returns:
        The `matplotlib.figure.Figure`, one Axes per panel.

    Raises:
        TypeError: `history` is neither a History nor a dict.
        ValueError: a key of `metrics` is missing, or there is nothing to draw.

    Example:

    >>> from kreg.plot import training_curves
    >>> logs = {"loss": [1.0, 0.5], "sparsity": [0.0, 0.3], "strength/dense/kernel": [0.0, 1e-3]}
    >>> fig = training_curves(logs)
    >>> [[line.get_label() for line in ax.lines] for ax in fig.axes]
    [['sparsity'], ['strength/dense/kernel']]
    """
    logs = _history_dict(history)
    metrics = [] if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [key for key in metrics if key not in logs]
    if missing:
        raise ValueError(
            f"Invalid value for argument `metrics`: expected keys of the history "
            f"({sorted(logs)}). Received: metrics={metrics} ({missing} not found)"
        )
    sparsity = [k for k in logs if k == "sparsity" or k.startswith(_SPARSITY_PREFIXES)]
    sparsity.sort(key=lambda k: (k != "sparsity", k))
    strength = sorted(k for k in logs if k.startswith(_STRENGTH_PREFIX))
    panels = [
        (keys, ylabel)
        for keys, ylabel in (
            (metrics, "metric"),
            (sparsity, "fraction of zeros"),
            (strength, "strength"),
        )
        if keys
    ]
    if not panels:
        raise ValueError(
            "Invalid value for argument `history`: expected `sparsity...` keys (from "
            "kreg.callbacks.SparsityMonitor), `strength/...` keys (from "
            "kreg.callbacks.StrengthScheduler) or `metrics`. Received: a history with keys "
            f"{sorted(logs)}"
        )
    fig = Figure(figsize=(6, 2.4 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (keys, ylabel) in zip(axes, panels):
        for key in keys:
            values = np.asarray(logs[key], dtype="float64").reshape(-1)
            epochs = np.arange(1, values.size + 1)
            ax.plot(epochs, values, label=key, linewidth=2.0 if key == "sparsity" else 1.2)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="x-small")
    axes[-1].set_xlabel("epoch")
    if title is not None:
        fig.suptitle(title)
    return fig


def _grouped_regularizer(variable):
    from kreg.regularizers import GroupLasso, SparseGroupLasso, kreg_regularizer

    regularizer = kreg_regularizer(variable)
    return regularizer if isinstance(regularizer, (GroupLasso, SparseGroupLasso)) else None


def _grouped_variables(model_or_regularized_layers):
    """The `(variable, regularizer)` pairs with a kreg group penalty, in layer order."""
    import keras

    obj = model_or_regularized_layers
    layers = [obj] if isinstance(obj, keras.layers.Layer) else None
    if layers is None:
        try:
            layers = list(obj)
        except TypeError:
            layers = None
    if not layers or not all(isinstance(layer, keras.layers.Layer) for layer in layers):
        raise TypeError(
            "Invalid type for argument `model_or_regularized_layers`: expected a Keras "
            "model or layer, or a non-empty list of layers. Received: "
            f"{_validation._short(obj)} of type {type(obj).__name__}"
        )
    pairs, seen = [], set()
    for layer in layers:
        if layer.built:
            layouts.bind(layer)
        found = [(v, _grouped_regularizer(v)) for v in layer.trainable_variables]
        found = [(v, r) for v, r in found if r is not None]
        if not found:
            built = "" if layer.built else " (it is not built yet: call it on data first)"
            raise ValueError(
                "Invalid value for argument `model_or_regularized_layers`: expected layers "
                "with a kreg.GroupLasso or kreg.SparseGroupLasso weight regularizer. "
                f"Received: layer {layer.name!r} without one{built}"
            )
        for variable, regularizer in found:
            if id(variable) not in seen:
                seen.add(id(variable))
                pairs.append((variable, regularizer))
    return pairs


def _group_survival(variable, regularizer, tolerance):
    """Per-group norms and the mask of surviving groups (some `|w| > tolerance`)."""
    from keras import ops

    grouping = regularizer.grouping(variable)
    norms = np.asarray(ops.convert_to_numpy(regularizer.group_norms(variable)), dtype="float64")
    w = grouping.to_view(ops.convert_to_tensor(variable))
    alive = np.asarray(ops.convert_to_numpy(_math.alive_groups(w, grouping, tolerance)))
    return norms, alive


def _group_kind(regularizer):
    groups = regularizer.groups
    return groups if isinstance(groups, str) else "input groups"


def surviving_units(model_or_regularized_layers, tolerance=0.0, *, title=None):
    """Which units, filters or input groups survive, one panel per group-regularized weight.

    For every trainable weight whose regularizer is a `kreg.GroupLasso` or
    `kreg.SparseGroupLasso`, bar `g` of its panel is the norm `||w_g||_2` of
    group `g` (a unit or filter for `groups="units"`, an input feature or channel
    for `"inputs"`, an id's inputs for integer ids, in sorted id order). A group
    survives when some weight in it has `|w| > tolerance` (the rule of
    `group_sparsity` in `kreg.callbacks.SparsityMonitor`); dead groups are
    marked with a red cross at zero, and the panel's title reads
    `"<variable.path>: <kept> of <total> <units|inputs|input groups> kept"`.

    Args:
        model_or_regularized_layers: a built Keras model or layer, or a list of
            layers each holding such a weight.
        tolerance: non-negative float; weights with `|w| <= tolerance` count as zero.
        title: optional title of the Figure.

    Returns:
        The `matplotlib.figure.Figure`, one Axes per weight.

    Raises:
        TypeError: not a model, a layer or a list of layers.
        ValueError: no group-regularized weight (or a listed layer without one),
            or a negative `tolerance`.

    Example:

    >>> import keras, numpy as np, kreg
    >>> from kreg.plot import surviving_units
    >>> layer = keras.layers.Dense(3, kernel_regularizer=kreg.GroupLasso(0.1, groups="units"))
    >>> layer.build((None, 2))
    >>> _ = layer.kernel.assign(np.array([[1.0, 0.0, 3.0], [1.0, 0.0, 4.0]]))
    >>> fig = surviving_units(layer)
    >>> fig.axes[0].get_title().split(": ")[1]
    '2 of 3 units kept'
    """
    tolerance = _validation.check_strength(tolerance, name="tolerance")
    pairs = _grouped_variables(model_or_regularized_layers)
    fig = Figure(figsize=(7, 1.9 * len(pairs) + 0.4), layout="constrained")
    axes = fig.subplots(len(pairs), 1, squeeze=False)[:, 0]
    for ax, (variable, regularizer) in zip(axes, pairs):
        norms, alive = _group_survival(variable, regularizer, tolerance)
        index = np.arange(norms.size)
        colors = np.where(alive, "C0", "lightgrey")
        ax.bar(index, norms, color=colors, width=1.0 if norms.size > 60 else 0.8)
        if not alive.all():
            ax.plot(index[~alive], np.zeros((~alive).sum()), linestyle="none", marker="x",
                    color="C3", markersize=4, label="dead")
        ax.set_title(
            f"{variable.path}: {int(alive.sum())} of {norms.size} {_group_kind(regularizer)} kept",
            fontsize="medium",
        )
        ax.set_ylabel("group norm")
        ax.set_xlim(-0.6, norms.size - 0.4)
    axes[-1].set_xlabel("group (unit, filter or input group) index")
    if title is not None:
        fig.suptitle(title)
    return fig
