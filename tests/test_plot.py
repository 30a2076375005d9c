"""kreg.plot, headless: each figure holds exactly the data it was given (or NumPy's count)."""

import keras
import numpy as np
import pytest

import kreg

plot = pytest.importorskip("kreg.plot", reason="kreg.plot needs matplotlib (kreg[plot])")

pytestmark = pytest.mark.usefixtures("device")


def _line(ax, label):
    matches = [line for line in ax.lines if line.get_label() == label]
    assert len(matches) == 1, [line.get_label() for line in ax.lines]
    return matches[0]


# --- coefficient_paths ---------------------------------------------------------------


def test_coefficient_paths_lines_are_the_columns(rng):
    strengths = np.geomspace(1.0, 1e-3, 7)
    coefs = rng.normal(size=(7, 4))
    fig = plot.coefficient_paths(strengths, coefs, labels=["a", "b", "c", "d"], title="paths")
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_title() == "paths"
    assert len(ax.lines) == 4
    for j, line in enumerate(ax.lines):
        np.testing.assert_array_equal(line.get_xdata(), strengths)
        np.testing.assert_array_equal(line.get_ydata(), coefs[:, j])
        assert line.get_label() == "abcd"[j]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c", "d"]


def test_coefficient_paths_reference_overlay_and_given_axes(rng):
    strengths = np.geomspace(1.0, 1e-2, 5)
    coefs = rng.normal(size=(5, 3))
    ref_strengths = np.geomspace(2.0, 1e-2, 9)
    ref = rng.normal(size=(9, 3))
    fig = plot.coefficient_paths(np.geomspace(1, 2, 5), np.zeros(5))  # an existing Figure
    ax = fig.axes[0]
    out = plot.coefficient_paths(
        strengths, coefs, reference=(ref_strengths, ref), reference_label="sklearn", ax=ax
    )
    assert out is fig and len(fig.axes) == 1
    lines = ax.lines[1:]  # after the 1-D path drawn first
    assert len(lines) == 6
    for j in range(3):
        np.testing.assert_array_equal(lines[3 + j].get_xdata(), ref_strengths)
        np.testing.assert_array_equal(lines[3 + j].get_ydata(), ref[:, j])
        assert lines[3 + j].get_linestyle() == "--"
    assert [line.get_label() for line in lines[3:]] == ["sklearn", "_reference", "_reference"]


@pytest.mark.parametrize(
    "strengths, coefs, kwargs, match",
    [
        ([1.0, 0.0], np.zeros((2, 3)), {}, "positive finite strengths"),
        ([1.0, np.nan], np.zeros((2, 3)), {}, "positive finite strengths"),
        ([[1.0, 0.1]], np.zeros((2, 3)), {}, "1-D sequence"),
        ([1.0, 0.1], np.zeros((3, 3)), {}, r"one value per strength.*shape \(3, 3\)"),
        ([1.0, 0.1], np.zeros((2, 3)), {"labels": ["a"]}, "expected 3 names"),
        ([1.0, 0.1], np.zeros((2, 3)), {"reference": ([1.0], np.zeros((1, 2)))}, "expected 3"),
        ([1.0, 0.1], np.zeros((2, 3)), {"reference": 5}, "argument `reference`"),
    ],
)
def test_coefficient_paths_bad_input(strengths, coefs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot.coefficient_paths(strengths, coefs, **kwargs)


# --- score_vs_strength ---------------------------------------------------------------


def test_score_vs_strength_lines_and_marks(rng):
    strengths = np.geomspace(1e-4, 1e-1, 6)
    train, val = rng.uniform(size=6), rng.uniform(size=6)
    fig = plot.score_vs_strength(strengths, train, val, best={"best": 1e-3, "1 s.e.": 1e-2},
                                 ylabel="R^2")
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "R^2"
    np.testing.assert_array_equal(_line(ax, "train").get_ydata(), train)
    np.testing.assert_array_equal(_line(ax, "validation").get_ydata(), val)
    np.testing.assert_array_equal(_line(ax, "validation").get_xdata(), strengths)
    assert np.all(np.asarray(_line(ax, "best = 0.001").get_xdata()) == 1e-3)
    assert np.all(np.asarray(_line(ax, "1 s.e. = 0.01").get_xdata()) == 1e-2)


def test_score_vs_strength_error_bars_span_the_errors(rng):
    strengths = np.geomspace(1e-4, 1e-1, 5)
    val, err = rng.uniform(size=5), rng.uniform(0.01, 0.1, size=5)
    fig = plot.score_vs_strength(strengths, None, val, best=1e-2, val_errors=err,
                                 val_label="CV")
    (ax,) = fig.axes
    (container,) = ax.containers
    assert container.get_label() == "CV"
    data_line, _, (bars,) = container.lines
    np.testing.assert_array_equal(data_line.get_ydata(), val)
    segments = np.array([seg for seg in bars.get_segments()])  # one (x, y) pair per point
    np.testing.assert_allclose(segments[:, 0, 1], val - err)
    np.testing.assert_allclose(segments[:, 1, 1], val + err)
    np.testing.assert_allclose(segments[:, 0, 0], strengths)
    assert np.all(np.asarray(_line(ax, "best = 0.01").get_xdata()) == 1e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"val_scores": [1.0]}, r"`val_scores`: expected one value per strength"),
        ({"best": -1.0}, "`best`: expected a positive strength"),
        ({"best": {"x": "a"}}, "`best`: expected a positive strength"),
        ({"val_errors": [1.0, 2.0, 3.0]}, "`val_errors`"),
        ({"train_scores": None, "train_errors": [1.0, 1.0]}, "`train_errors`"),
    ],
)
def test_score_vs_strength_bad_input(kwargs, match):
    args = {"strengths": [0.1, 1.0], "train_scores": [1.0, 2.0], "val_scores": [1.0, 2.0]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        plot.score_vs_strength(**args)


# --- training_curves -----------------------------------------------------------------


class _LogFakeRegularizationKeys(keras.callbacks.Callback):
    """Puts kreg-style keys into logs, so the History is a real one from `fit`."""

    def on_epoch_end(self, epoch, logs=None):
        logs["sparsity/dense/kernel"] = 0.1 * epoch
        logs["group_sparsity/dense/kernel"] = 0.05 * epoch
        logs["sparsity"] = 0.08 * epoch
        logs["strength/dense/kernel"] = 1e-3 * (epoch + 1)


def test_training_curves_from_a_history():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(x, x[:, :1], epochs=4, verbose=0, validation_split=0.25,
                        callbacks=[_LogFakeRegularizationKeys()])
    fig = plot.training_curves(history, metrics=["loss", "val_loss"], title="run")
    metric_ax, sparsity_ax, strength_ax = fig.axes
    assert fig.get_suptitle() == "run"
    assert [line.get_label() for line in metric_ax.lines] == ["loss", "val_loss"]
    assert [line.get_label() for line in sparsity_ax.lines] == [
        "sparsity", "group_sparsity/dense/kernel", "sparsity/dense/kernel",
    ]
    assert [line.get_label() for line in strength_ax.lines] == ["strength/dense/kernel"]
    for ax in fig.axes:
        for line in ax.lines:
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
            np.testing.assert_allclose(line.get_ydata(), history.history[line.get_label()])
    # The plain dict gives the same figure, minus the metrics panel.
    fig = plot.training_curves(history.history)
    assert [ax.get_ylabel() for ax in fig.axes] == ["fraction of zeros", "strength"]


def test_training_curves_bad_input():
    with pytest.raises(ValueError, match=r"`metrics`.*\['accuracy'\] not found"):
        plot.training_curves({"loss": [1.0], "sparsity": [0.0]}, metrics=["loss", "accuracy"])
    with pytest.raises(ValueError, match=r"expected `sparsity...` keys.*\['loss'\]"):
        plot.training_curves({"loss": [1.0]})
    with pytest.raises(TypeError, match="`history`: expected a keras.callbacks.History"):
        plot.training_curves([1.0, 2.0])


# --- surviving_units -----------------------------------------------------------------


def _numpy_units(kernel, tolerance=0.0):
    """Per-unit norms over all but the last axis and the units with some |w| > tolerance."""
    axes = tuple(range(kernel.ndim - 1))
    return np.sqrt((kernel**2).sum(axis=axes)), (np.abs(kernel) > tolerance).any(axis=axes)


def test_surviving_units_matches_numpy_on_a_model(rng):
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(5, 3, kernel_regularizer=kreg.GroupLasso(0.1, groups="units")),
        keras.layers.Flatten(),
        keras.layers.Dense(8, kernel_regularizer=kreg.SparseGroupLasso(0.1, 0.5, "units")),
        keras.layers.Dense(2, kernel_regularizer=kreg.L1(0.1)),  # not a group penalty: left out
    ])
    conv, _, dense, _ = model.layers
    k1 = rng.normal(size=conv.kernel.shape) * 0.1
    k1[..., [0, 3]] = 0.0
    k1[0, 0, 0, 4] = 0.0  # one zero weight does not kill a unit
    k2 = rng.normal(size=dense.kernel.shape)
    k2[:, [1, 2, 5, 7]] = 0.0
    k2[:, 6] = 1e-3  # alive at tolerance 0, dead at tolerance 1e-2
    conv.kernel.assign(k1)
    dense.kernel.assign(k2)
    for tolerance in (0.0, 1e-2):
        fig = plot.surviving_units(model, tolerance=tolerance)
        assert len(fig.axes) == 2
        for ax, variable, kernel in zip(fig.axes, [conv.kernel, dense.kernel], [k1, k2]):
            norms, alive = _numpy_units(kernel, tolerance)
            np.testing.assert_allclose([p.get_height() for p in ax.patches], norms, rtol=1e-6)
            assert ax.get_title() == (
                f"{variable.path}: {alive.sum()} of {alive.size} units kept"
            )
            dead = [line for line in ax.lines if line.get_label() == "dead"]
            np.testing.assert_array_equal(dead[0].get_xdata(), np.flatnonzero(~alive))
    assert fig.axes[1].get_title().endswith(": 3 of 8 units kept")  # units 0, 3, 4 at 1e-2


def test_surviving_units_input_groups(rng):
    ids = [0, 0, 0, 1, 1, 2, 2, 2]  # three one-hot variables
    inputs = keras.layers.Dense(4, kernel_regularizer=kreg.GroupLasso(0.1, groups="inputs"))
    grouped = keras.layers.Dense(4, kernel_regularizer=kreg.GroupLasso(0.1, groups=ids))
    kernel = rng.normal(size=(8, 4))
    kernel[3:5] = 0.0  # variable 1 dropped
    kernel[6] = 0.0  # one column of variable 2 only
    for layer in (inputs, grouped):
        layer.build((None, 8))
        layer.kernel.assign(kernel)
    fig = plot.surviving_units([inputs, grouped])
    row_norms = np.linalg.norm(kernel, axis=1)
    np.testing.assert_allclose([p.get_height() for p in fig.axes[0].patches], row_norms,
                               rtol=1e-6)
    assert fig.axes[0].get_title().endswith(": 5 of 8 inputs kept")
    group_norms = [np.linalg.norm(kernel[np.array(ids) == g]) for g in range(3)]
    np.testing.assert_allclose([p.get_height() for p in fig.axes[1].patches], group_norms,
                               rtol=1e-6)
    assert fig.axes[1].get_title().endswith(": 2 of 3 input groups kept")


def test_surviving_units_bad_input():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="without one"):
        plot.surviving_units(plain)
    grouped = keras.layers.Dense(2, kernel_regularizer=kreg.GroupLasso(0.1))
    with pytest.raises(ValueError, match="not built yet"):
        plot.surviving_units(grouped)
    grouped.build((None, 3))
    with pytest.raises(ValueError, match="layer 'dense"):
        plot.surviving_units([grouped, plain.layers[0]])
    with pytest.raises(TypeError, match="`model_or_regularized_layers`: expected a Keras"):
        plot.surviving_units("model")
    with pytest.raises(TypeError, match="`model_or_regularized_layers`"):
        plot.surviving_units([])
    with pytest.raises(ValueError, match="Invalid value for argument `tolerance`"):
        plot.surviving_units(grouped, tolerance=-1.0)
