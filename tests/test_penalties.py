"""The penalties beyond the lasso (issue 14): MCP, SCAD, GroupMCP, GroupSCAD, L0,
weighted L1 / GroupLasso (the adaptive lasso) and the non-negative L1 / ElasticNet.

Oracles: skglm's penalties (value and prox: same parametrization, `MCPenalty(alpha,
gamma)` is `MCP(alpha, gamma)` and `SCAD(alpha, gamma)` is `SCAD(alpha, a=gamma)` as
penalties; only the data term differs by Keras's factor 2), brute-force 1-D
minimization on a fine grid for the prox in a per-weight metric (where the closed
form does not apply), tf.GradientTape for the closed-form gradients, and on linear
problems scikit-learn's `Lasso(positive=True)` and skglm's MCP solver, plus the
stationarity conditions checked in NumPy.
"""

import json
import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet as SkElasticNet
from sklearn.linear_model import Lasso
from skglm.penalties import SCAD as SkSCAD
from skglm.penalties import MCPenalty, WeightedL1

import backend_ops
import kreg
from conftest import HAS_FLOAT64, SLOW_ON_TORCH
from keras import ops
from oracle import np_groups

pytestmark = pytest.mark.usefixtures("device")

O = keras.optimizers


# ---------------------------------------------------------------- NumPy oracle


def np_mcp(x, lam, gamma):
    a = np.abs(x)
    return np.where(a <= gamma * lam, lam * a - a**2 / (2 * gamma), gamma * lam**2 / 2)


def np_scad(x, lam, a_):
    a = np.abs(x)
    middle = (2 * a_ * lam * a - a**2 - lam**2) / (2 * (a_ - 1))
    return np.where(a <= lam, lam * a, np.where(a <= a_ * lam, middle, (a_ + 1) * lam**2 / 2))


def np_l0(x, lam):
    return lam * (np.asarray(x) != 0)


def brute_force_prox(penalty, x, step, half_width=None, points=400_001):
    """`min_y (y - x)^2 / (2 step) + penalty(y)` on a fine grid around x: (argmin, min)."""
    half_width = half_width or (abs(x) + 2.0)
    grid = np.linspace(-half_width, half_width, points)
    grid = np.concatenate([grid, [0.0, x]])
    f = (grid - x) ** 2 / (2 * step) + penalty(grid)
    i = np.argmin(f)
    return grid[i], f[i]


def objective_1d(penalty, y, x, step):
    return (y - x) ** 2 / (2 * step) + penalty(np.asarray(y))


def as_np(t):
    return np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float64)


def new_penalties():
    return {
        "MCP": kreg.MCP(0.75, gamma=2.5),
        "SCAD": kreg.SCAD(0.75, a=3.2),
        "L0": kreg.L0(0.25),
        "GroupMCP": kreg.GroupMCP(0.375, gamma=2.0, groups="units"),
        "GroupSCAD": kreg.GroupSCAD(0.375, a=3.7, groups=[0, 1, 0, 2, 1]),
        "L1w": kreg.L1(0.5, weights=np.linspace(0.0, 2.0, 15).reshape(5, 3)),
        "L1row": kreg.L1(0.5, weights=[[1.0], [2.0], [0.5], [0.0], [3.0]]),
        "L1pos": kreg.L1(0.5, positive=True),
        "ENpos": kreg.ElasticNet(0.5, l1_ratio=0.3, positive=True),
        "GLw": kreg.GroupLasso(0.5, groups="units", weights=[0.5, 1.0, 2.0]),
    }


# ------------------------------------------------------- values and prox vs skglm


X_1D = np.concatenate([np.linspace(-6, 6, 241), [0.0, 0.7, -0.7, 1.75, -2.24, 2.24]])


def test_mcp_value_and_prox_match_skglm():
    alpha, gamma = 0.75, 2.5
    reg, sk = kreg.MCP(alpha, gamma=gamma), MCPenalty(alpha, gamma)
    for x in (X_1D, X_1D[::7]):
        value = float(reg(x))  # reg(w) is returned in Keras's floatx, float32
        assert value == pytest.approx(sk.value(x), rel=1e-7)
        assert value == pytest.approx(np.sum(np_mcp(x, alpha, gamma)), rel=1e-7)
    for step in (0.1, 0.5, 1.0, 2.4):  # the closed form (step < gamma) is skglm's prox
        ours = as_np(reg.prox(X_1D, step))
        theirs = np.array([sk.prox_1d(x, step, 0) for x in X_1D])
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_scad_value_and_prox_match_skglm():
    alpha, a = 0.75, 3.7
    reg, sk = kreg.SCAD(alpha, a=a), SkSCAD(alpha, a)
    assert float(reg(X_1D)) == pytest.approx(sk.value(X_1D), rel=1e-7)
    assert float(reg(X_1D)) == pytest.approx(np.sum(np_scad(X_1D, alpha, a)), rel=1e-7)
    for step in (0.1, 0.5, 1.0, 2.0):  # a - 1 = 2.7 > step: the closed form
        ours = as_np(reg.prox(X_1D, step))
        theirs = np.array([sk.prox_1d(x, step, 0) for x in X_1D])
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_weighted_and_positive_l1_match_skglm_weighted_l1(rng):
    x = rng.normal(size=50) * 2
    v = rng.uniform(0, 2, size=50)
    v[:5] = 0.0
    for positive in (False, True):
        reg = kreg.L1(0.625, weights=v, positive=positive)
        sk = WeightedL1(0.625, v, positive=positive)
        assert float(reg(x)) == pytest.approx(sk.value(x), rel=1e-7)
        for step in (0.3, 1.7):
            theirs = np.array([sk.prox_1d(xi, step, j) for j, xi in enumerate(x)])
            np.testing.assert_allclose(as_np(reg.prox(x, step)), theirs, rtol=1e-12, atol=0)
    ours = as_np(kreg.L1(0.625, positive=True).prox(x, 1.0))
    np.testing.assert_array_equal(ours, np.maximum(x - 0.625, 0))


def test_positive_elastic_net_prox_is_the_constrained_minimizer(rng):
    x = rng.normal(size=40) * 2
    step = rng.uniform(0.1, 2.0, size=40)
    strength, r = 0.75, 0.3
    reg = kreg.ElasticNet(strength, l1_ratio=r, positive=True)
    ours = as_np(reg.prox(x, step))
    expected = np.maximum(x - step * strength * r, 0) / (1 + 2 * step * strength * (1 - r))
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    assert np.all(ours >= 0) and np.sum(ours == 0) > 5
    # brute force on the half line
    for xi, si, yi in zip(x[:8], step[:8], ours[:8]):
        pen = lambda y: np.where(y < 0, np.inf, strength * (r * np.abs(y) + (1 - r) * y**2))  # noqa: E731
        y_bf, f_bf = brute_force_prox(pen, xi, si)
        assert objective_1d(pen, yi, xi, si) <= f_bf + 1e-9
        assert abs(yi - y_bf) < 1e-4


# --------------------------------------------- the prox in a per-weight metric: brute force


@pytest.mark.parametrize(
    "name, penalty",
    [
        ("MCP", lambda: (kreg.MCP(0.75, gamma=1.5), lambda y: np_mcp(y, 0.75, 1.5))),
        ("SCAD", lambda: (kreg.SCAD(0.75, a=2.5), lambda y: np_scad(y, 0.75, 2.5))),
        ("L0", lambda: (kreg.L0(0.75), lambda y: np_l0(y, 0.75))),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_metric_prox_is_the_global_minimizer(name, penalty, rng):
    reg, pen = penalty()
    # Steps on both sides of the closed form's limit (gamma = 1.5, a - 1 = 1.5).
    x = np.concatenate([rng.uniform(-4, 4, 120), [0.0, 1.2, -2.0, 3.9]])
    step = np.concatenate([rng.uniform(0.05, 4.0, 120), [1.5, 1.5, 3.0, 0.7]])
    ours = as_np(reg.prox(x, step))
    worst = 0.0
    for xi, si, yi in zip(x, step, ours):
        y_bf, f_bf = brute_force_prox(pen, xi, si)
        f_ours = objective_1d(pen, yi, xi, si)
        assert f_ours <= f_bf + 1e-9, (xi, si, yi, y_bf)  # never worse than the grid
        worst = max(worst, abs(yi - y_bf))
    assert worst < 1e-4 or name == "L0"  # (L0 may tie at the threshold; objective checked)
    # the metric prox is the scalar prox weight by weight
    for si in (0.3, 2.0):
        np.testing.assert_allclose(
            as_np(reg.prox(x, np.full_like(x, si))), as_np(reg.prox(x, si)), rtol=0, atol=0
        )


def test_mcp_large_step_takes_the_global_minimizer_not_the_closed_form():
    # step >= gamma: the firm-thresholding formula divides by (1 - step / gamma) <= 0.
    reg = kreg.MCP(1.0, gamma=1.0)
    x = np.array([0.5, 1.2, 1.5, 3.0])
    ours = as_np(reg.prox(x, 2.0))
    # objective: 0 -> x^2 / 4; far = max(x, 1) -> (far - x)^2 / 4 + 1/2: keep iff x^2 > 2 (x>1)
    np.testing.assert_array_equal(ours, [0.0, 0.0, 1.5, 3.0])


def test_l0_prox_is_hard_thresholding(rng):
    x = rng.normal(size=100) * 2
    step = rng.uniform(0.1, 3.0, size=100)
    ours = as_np(kreg.L0(0.375).prox(x, step))
    np.testing.assert_array_equal(ours, np.where(x**2 > 2 * step * 0.375, x, 0.0))
    assert float(kreg.L0(0.375)(x)) == pytest.approx(0.375 * np.sum(x != 0))


# ------------------------------------------------------------------- group penalties


def np_group_radial(w, groups, strength, pen):
    return sum(float(pen(np.linalg.norm(b), strength * np.sqrt(b.size)))
               for b in np_groups(w, groups))


@pytest.mark.parametrize("groups", ["units", "inputs", [0, 1, 0, 2, 1]])
@pytest.mark.parametrize("kind", ["GroupMCP", "GroupSCAD"])
def test_group_value_and_prox_against_numpy(kind, groups, rng):
    w = rng.normal(size=(5, 3)) * np.array([0.1, 1.0, 3.0])  # small, middle and large units
    strength = 0.5
    if kind == "GroupMCP":
        reg = kreg.GroupMCP(strength, gamma=2.0, groups=groups)
        pen = lambda r, lam: np_mcp(r, lam, 2.0)  # noqa: E731
    else:
        reg = kreg.GroupSCAD(strength, a=3.7, groups=groups)
        pen = lambda r, lam: np_scad(r, lam, 3.7)  # noqa: E731
    assert float(reg(w)) == pytest.approx(np_group_radial(w, groups, strength, pen), rel=1e-7)
    for step in (0.2, 1.0, 5.0):  # 5.0: beyond the closed form (gamma = 2, a - 1 = 2.7)
        y = as_np(reg.prox(w, step))
        # each group: y_g = w_g * rho / ||w_g||, rho the 1-D global minimizer at the norm
        for bw, by in zip(np_groups(w, groups), np_groups(y, groups)):
            r, lam = np.linalg.norm(bw), strength * np.sqrt(bw.size)
            rho_bf, f_bf = brute_force_prox(lambda t: pen(t, lam), r, step, points=100_001)
            rho = np.linalg.norm(by)
            assert (rho - r) ** 2 / (2 * step) + pen(rho, lam) <= f_bf + 1e-9
            np.testing.assert_allclose(by, bw * rho / r, rtol=1e-12, atol=1e-15)
    # Groups of one weight each reduce it to the elementwise penalty.
    w1 = rng.normal(size=(4, 1)) * 2
    single = (kreg.GroupMCP(0.5, gamma=2.0, groups="inputs") if kind == "GroupMCP"
              else kreg.GroupSCAD(0.5, a=3.7, groups="inputs"))
    elementwise = kreg.MCP(0.5, gamma=2.0) if kind == "GroupMCP" else kreg.SCAD(0.5, a=3.7)
    np.testing.assert_allclose(as_np(single.prox(w1, 0.7)), as_np(elementwise.prox(w1, 0.7)),
                               rtol=1e-12)
    assert float(single(w1)) == pytest.approx(float(elementwise(w1)), rel=1e-7)


def np_group_metric_objective(y, w, d, pen):
    """`sum_i (y_i - w_i)^2 / (2 d_i) + pen(||y||)` for one group (d_i = 0: y_i must be w_i)."""
    moved = np.where(d > 0, (y - w) ** 2 / (2 * np.where(d > 0, d, 1)),
                     np.where(y == w, 0.0, np.inf))
    return moved.sum() + pen(np.linalg.norm(y))


def np_group_metric_brute_force(w, d, pen):
    """The best of 0 and the points `w / (1 + d u)` for `u` on a fine log grid (with 0)."""
    u = np.concatenate([[0.0], np.logspace(-7, 9, 40_001)])
    ys = w[None, :] / (1 + d[None, :] * u[:, None])
    moved = np.where(d > 0, (ys - w) ** 2 / (2 * np.where(d > 0, d, 1)), 0.0).sum(axis=1)
    f = moved + pen(np.linalg.norm(ys, axis=1))
    f_zero = np_group_metric_objective(np.zeros_like(w), w, d, pen)
    return (ys[np.argmin(f)], f.min()) if f.min() < f_zero else (np.zeros_like(w), f_zero)


def group_penalty(kind, strength, groups):
    if kind == "GroupMCP":
        return (kreg.GroupMCP(strength, gamma=2.0, groups=groups),
                lambda r, lam: np_mcp(r, lam, 2.0))
    return (kreg.GroupSCAD(strength, a=3.7, groups=groups),
            lambda r, lam: np_scad(r, lam, 3.7))


def adversarial_metric_groups(rng):
    """Columns of a (4, 24) kernel (groups="units") and their per-weight steps: steps on
    both sides of gamma = 2 and a - 1 = 2.7 in one group, a zero step in a group, a
    zero group, huge and tiny steps, groups just below and above their thresholds."""
    w = rng.normal(size=(4, 24)) * rng.choice([0.05, 0.5, 1.0, 3.0], size=24)
    d = np.exp(rng.uniform(-4, 2.5, size=(4, 24)))
    d[:, 0] = [0.1, 5.0, 0.3, 8.0]           # straddles gamma: G(u) not monotone
    d[0, 1] = 0.0                             # one weight that cannot move
    w[:, 2] = 0.0                             # a zero group
    d[:, 3] = [1e-6, 1e-6, 1e3, 1e3]          # huge and tiny steps in one group
    d[:, 4] = 1.7                             # a uniform step: the scalar case
    w[:, 5] = [0.49, 0.5, 0.51, 0.5]          # near the group's threshold
    d[:, 5] = 1.0
    return w, d


@pytest.mark.parametrize("kind", ["GroupMCP", "GroupSCAD"])
def test_group_metric_prox_is_the_global_minimizer(kind, rng):
    # The prox of a group MCP/SCAD in a per-weight metric (Adam under kreg.Proximal): the
    # objective is never above a brute-force search, and the point is the searched one.
    strength = 0.5
    reg, pen = group_penalty(kind, strength, "units")
    w, d = adversarial_metric_groups(rng)
    y = as_np(reg.prox(w, d))
    lam = strength * 2.0  # sqrt(4) weights per group
    kept = 0
    for g in range(w.shape[1]):
        penalty = lambda r: pen(r, lam)  # noqa: E731
        f_ours = np_group_metric_objective(y[:, g], w[:, g], d[:, g], penalty)
        y_bf, f_bf = np_group_metric_brute_force(w[:, g], d[:, g], penalty)
        assert f_ours <= f_bf + 1e-9 * (1 + abs(f_bf)), (g, f_ours, f_bf, y[:, g], y_bf)
        scale = max(np.abs(w[:, g]).max(), 1e-12)
        assert np.abs(y[:, g] - y_bf).max() <= 1e-3 * scale, (g, y[:, g], y_bf)  # grid spacing
        kept += bool(np.any(y[:, g] != 0))
    assert 0 < kept < w.shape[1]  # some groups zeroed, some kept
    np.testing.assert_array_equal(y[:, 2], 0.0)
    assert y[0, 1] == w[0, 1]  # a zero step leaves its weight where it is


@pytest.mark.parametrize("kind", ["GroupMCP", "GroupSCAD"])
def test_group_metric_prox_two_weights_against_a_full_grid(kind, rng):
    # Independent of the reduction to the curve w / (1 + d u): a 2-D grid over y itself.
    reg, pen = group_penalty(kind, 0.5, "units")
    lam = 0.5 * np.sqrt(2)
    w = rng.normal(size=(2, 12)) * 1.5
    d = np.exp(rng.uniform(-2, 2, size=(2, 12)))
    d[:, 0] = [0.2, 6.0]
    y = as_np(reg.prox(w, d))
    for g in range(w.shape[1]):
        half = 1.05 * np.abs(w[:, g]).max()
        grid = np.linspace(-half, half, 1201)
        a, b = np.meshgrid(grid, grid, indexing="ij")
        f = ((a - w[0, g]) ** 2 / (2 * d[0, g]) + (b - w[1, g]) ** 2 / (2 * d[1, g])
             + pen(np.hypot(a, b), lam))
        f_ours = np_group_metric_objective(y[:, g], w[:, g], d[:, g], lambda r: pen(r, lam))
        assert f_ours <= f.min() + 1e-9, (g, f_ours, f.min())
        i, j = np.unravel_index(np.argmin(f), f.shape)
        assert np.abs(y[:, g] - [grid[i], grid[j]]).max() <= 2 * (grid[1] - grid[0]) + 1e-12


@pytest.mark.parametrize("kind", ["GroupMCP", "GroupSCAD"])
@pytest.mark.parametrize("groups", ["units", "inputs", [0, 1, 0, 2, 1]])
def test_group_metric_prox_with_a_uniform_step_is_the_scalar_prox(kind, groups, rng):
    reg, _ = group_penalty(kind, 0.5, groups)
    w = rng.normal(size=(5, 3)) * np.array([0.1, 1.0, 3.0])
    for step in (0.2, 1.0, 5.0):  # 5.0: beyond the closed form of the scalar prox
        uniform = np.full(w.shape, step)
        tol = 1e-12 if HAS_FLOAT64 else 1e-6
        np.testing.assert_allclose(as_np(reg.prox(w, uniform)), as_np(reg.prox(w, step)),
                                   rtol=tol, atol=tol * np.abs(w).max())


@pytest.mark.parametrize("kind", ["GroupMCP", "GroupSCAD"])
def test_group_metric_prox_keeps_nan_in_its_group(kind, rng):
    reg, _ = group_penalty(kind, 0.5, "units")
    w = rng.normal(size=(4, 3))
    d = np.full((4, 3), 0.5)
    w[1, 0] = np.nan  # (a NaN step is refused by the prox's argument check)
    y = as_np(reg.prox(w, d))
    assert np.isnan(y[:, 0]).all()  # never a plausible number
    np.testing.assert_allclose(y[:, 1:], as_np(reg.prox(w[:, 1:], 0.5)), rtol=1e-6)
    # all steps 0 (a warm-up learning rate of 0): nothing moves
    np.testing.assert_array_equal(as_np(reg.prox(np.nan_to_num(w), np.zeros((4, 3)))),
                                  np.nan_to_num(w))


def test_weighted_group_lasso(rng):
    w = rng.normal(size=(5, 3))
    v = np.array([0.5, 1.0, 2.0])
    reg = kreg.GroupLasso(0.5, groups="units", weights=v)
    norms = np.linalg.norm(w, axis=0)
    assert float(reg(w)) == pytest.approx(0.5 * np.sum(v * np.sqrt(5) * norms), rel=1e-7)
    y = as_np(reg.prox(w, 0.6))
    expected = w * np.maximum(0, 1 - 0.6 * 0.5 * v * np.sqrt(5) / norms)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # all-ones weights are the unweighted group lasso, in a per-weight metric too
    step = rng.uniform(0.1, 1.0, size=(5, 3))
    ones = kreg.GroupLasso(0.5, groups="units", weights=[1.0, 1.0, 1.0])
    np.testing.assert_allclose(
        as_np(ones.prox(w, step)), as_np(kreg.GroupLasso(0.5).prox(w, step)), rtol=1e-12
    )
    # weights v_g scale each group's strength: compare with the unweighted prox group by group
    for g in range(3):
        single = kreg.GroupLasso(0.5 * v[g], groups="units")
        np.testing.assert_allclose(
            as_np(reg.prox(w, step))[:, g], as_np(single.prox(w, step))[:, g], rtol=1e-10
        )


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("name", list(new_penalties()))
def test_closed_form_gradient_is_autodiff(name, rng):
    reg = new_penalties()[name]
    w = rng.normal(size=(5, 3)) * 2
    # kinks and boundaries: zeros, a zero unit, |w| at lam, gamma lam, a lam
    w[0, 0] = 0.0
    w[1, 1] = 0.75
    w[2, 1] = -2.5 * 0.75
    w[3, 2] = 3.2 * 0.75
    if name.startswith("Group") or name == "GLw":
        w[:, 1] = 0.0  # a zero unit
    for dtype in ("float32", "float64") if HAS_FLOAT64 else ("float32",):
        x = w.astype(dtype)
        auto = backend_ops.gradient(reg, x)
        closed = as_np(reg.gradient(x))
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(closed, auto, rtol=tol, atol=tol)
    assert np.isfinite(closed).all()


# ----------------------------------------------------------- configs and saving


@pytest.mark.parametrize("name", list(new_penalties()))
def test_config_round_trips_through_json_and_keras_file(name, rng, tmp_path):
    reg = new_penalties()[name]
    text = json.dumps(keras.saving.serialize_keras_object(reg))
    back = keras.saving.deserialize_keras_object(json.loads(text))
    assert type(back) is type(reg) and back.get_config() == reg.get_config()
    w = rng.normal(size=(5, 3))
    assert float(back(w)) == float(reg(w))
    np.testing.assert_array_equal(as_np(back.prox(w, 0.5)), as_np(reg.prox(w, 0.5)))
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, kernel_regularizer=reg)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    again = loaded.layers[0].kernel_regularizer
    assert type(again) is type(reg) and again.get_config() == reg.get_config()
    assert float(loaded.losses[0]) == pytest.approx(float(model.losses[0]), rel=1e-6)


def test_configs_name_their_new_arguments():
    assert kreg.MCP(0.1, gamma=2.0).get_config() == {"strength": 0.1, "gamma": 2.0}
    assert kreg.SCAD(0.1).get_config() == {"strength": 0.1, "a": 3.7}
    assert kreg.L0(0.1).get_config() == {"strength": 0.1}
    assert kreg.L1(0.1, weights=[1, 2], positive=True).get_config() == {
        "strength": 0.1, "weights": [1.0, 2.0], "positive": True}
    # Every constructor argument is in the config, defaults included (as in Keras).
    assert kreg.L1(0.1).get_config() == {"strength": 0.1, "weights": None, "positive": False}
    assert kreg.GroupLasso(0.1).get_config() == {
        "strength": 0.1, "groups": "units", "weights": None}
    assert kreg.GroupMCP(0.1).get_config() == {"strength": 0.1, "groups": "units", "gamma": 3.0}
    assert kreg.GroupLasso(0.1, weights=[1, 2]).get_config() == {
        "strength": 0.1, "groups": "units", "weights": [1.0, 2.0]}
    assert kreg.ElasticNet(0.1, positive=True).get_config() == {
        "strength": 0.1, "l1_ratio": 0.5, "positive": True}


# ----------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "make, arg",
    [
        (lambda v: kreg.MCP(0.1, gamma=v), "gamma"),
        (lambda v: kreg.GroupMCP(0.1, gamma=v), "gamma"),
        (lambda v: kreg.SCAD(0.1, a=v), "a"),
        (lambda v: kreg.GroupSCAD(0.1, a=v), "a"),
    ],
)
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), "3", True, None])
def test_bad_shape_parameters_are_refused(make, arg, value):
    if arg == "a" and value == 0.0:
        value = 1.0  # a must exceed 1
    with pytest.raises(ValueError, match=f"Invalid value for argument `{arg}`"):
        make(value)


@pytest.mark.parametrize(
    "weights", [[-1.0, 1.0], [np.nan], [np.inf, 1.0], [], "abc", [[1.0], [1.0, 2.0]]]
)
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError, match="Invalid value for argument `weights`"):
        kreg.L1(0.1, weights=weights)
    with pytest.raises(ValueError, match="Invalid value for argument `weights`"):
        kreg.GroupLasso(0.1, weights=weights)


def test_weights_of_the_wrong_shape_are_refused(rng):
    w = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        kreg.L1(0.1, weights=np.ones(5))(w)  # (5,) against (5, 3): not broadcastable
    with pytest.raises(ValueError, match="does not broadcast"):
        kreg.L1(0.1, weights=np.ones((2, 5, 3))).prox(w, 0.1)  # would grow the weight
    with pytest.raises(ValueError, match="one weight per group"):
        kreg.GroupLasso(0.1, weights=[1.0, 2.0])(w)
    with pytest.raises(ValueError, match="Invalid value for argument `weights`"):
        kreg.GroupLasso(0.1, weights=[[1.0, 2.0, 3.0]])  # not 1-D


@pytest.mark.parametrize("cls", [kreg.L1, kreg.ElasticNet])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_bad_positive_is_refused(cls, value):
    with pytest.raises(ValueError, match="Invalid value for argument `positive`"):
        cls(0.1, positive=value)


# ----------------------------------------------------------------------- NaN


@pytest.mark.parametrize("name", list(new_penalties()))
def test_nan_propagates(name, rng):
    reg = new_penalties()[name]
    w = rng.normal(size=(5, 3)).astype("float32") * 0.01  # small: thresholded to zero
    w[2, 1] = np.nan
    assert np.isnan(float(reg(w)))
    y = as_np(reg.prox(w, 0.5))
    assert np.isnan(y[2, 1])
    if name == "GroupSCAD":
        assert np.isnan(y[[0, 2]]).all() and not np.isnan(np.delete(y, [0, 2], 0)).any()
    elif name.startswith("Group") or name == "GLw":
        assert np.isnan(y[:, 1]).all() and not np.isnan(y[:, [0, 2]]).any()  # its unit only
    else:
        assert np.isnan(y).sum() == 1
    assert np.sum(y == 0) > 0  # the other small weights are still thresholded
    # a NaN step (possible only inside a compiled step) gives NaN, never a plausible value
    step = backend_ops.compiled(lambda s: reg.prox(w, s))(ops.convert_to_tensor(np.nan, "float32"))
    if not name.startswith("Group") and name != "GLw":
        assert np.isnan(as_np(step)).all()


# -------------------------------------------------- linear problems: reference solvers


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = y - y.mean()
    return X, y, 2 * np.linalg.eigvalsh(X.T @ X / len(y)).max()


def fit_full_batch(regularizer, optimizer, X, y, steps, loss="mse", copies=500):
    model = keras.Sequential(
        [
            keras.Input((X.shape[1],)),
            keras.layers.Dense(
                1, use_bias=False, kernel_regularizer=regularizer, kernel_initializer="zeros"
            ),
        ]
    )
    # PyTorch runs one step per execution.
    spe = 1 if keras.backend.backend() == "torch" else copies
    model.compile(optimizer=kreg.Proximal(optimizer), loss=loss, steps_per_execution=spe)
    xs = np.tile(X, (copies, 1)).astype("float32")
    ys = np.tile(y, copies).astype("float32")
    model.fit(xs, ys, batch_size=len(y), epochs=steps // copies, shuffle=False, verbose=0)
    return model.get_weights()[0].ravel().astype("float64")


def max_rel_error(w, reference):
    return np.abs(w - reference).max() / np.abs(reference).max()


@pytest.mark.parametrize("kind", ["lasso", "elastic_net"])
def test_non_negative_lasso_and_elastic_net_reach_scikit_learn(diabetes, kind):
    X, y, lipschitz = diabetes
    alpha = 0.5
    if kind == "lasso":
        reference = Lasso(alpha=alpha, positive=True, fit_intercept=False, tol=1e-12,
                          max_iter=1_000_000).fit(X, y).coef_
        reg = kreg.L1(2 * alpha, positive=True)
    else:
        rho = 0.8
        reference = SkElasticNet(alpha=alpha, l1_ratio=rho, positive=True, fit_intercept=False,
                                 tol=1e-12, max_iter=1_000_000).fit(X, y).coef_
        reg = kreg.ElasticNet(alpha * (1 + rho), l1_ratio=2 * rho / (1 + rho), positive=True)
    # the unconstrained lasso has negative coefficients here: the constraint matters
    assert np.any(Lasso(alpha=alpha, fit_intercept=False).fit(X, y).coef_ < 0)
    w = fit_full_batch(reg, O.SGD(1 / lipschitz), X, y, steps=2000)
    assert np.all(w >= 0)
    assert max_rel_error(w, reference) <= 1e-5, (w, reference)  # measured 4e-7
    np.testing.assert_array_equal(w == 0, reference == 0)
    assert 0 < np.sum(reference == 0) < len(reference)


@pytest.fixture(scope="module")
def well_conditioned():
    """A sparse linear problem whose MCP objective is convex: lambda_min(X^T X / n) > 1/gamma."""
    rng = np.random.default_rng(7)
    n, p = 300, 8
    X = rng.normal(size=(n, p))
    X = (X - X.mean(0)) / X.std(0)
    truth = np.array([3.0, -2.0, 1.5, 0, 0, 0.3, 0, 0])
    y = X @ truth + 0.5 * rng.normal(size=n)
    y = y - y.mean()
    eig = np.linalg.eigvalsh(X.T @ X / n)
    return X, y, eig


def test_mcp_under_proximal_reaches_skglm_and_is_stationary(well_conditioned):
    from skglm import MCPRegression

    X, y, eig = well_conditioned
    alpha, gamma = 0.25, 3.0
    assert eig.min() > 1 / gamma  # skglm scaling: the whole objective is strictly convex
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        reference = MCPRegression(alpha=alpha, gamma=gamma, fit_intercept=False, tol=1e-12,
                                  max_iter=1000, max_epochs=100_000).fit(X, y).coef_
    # skglm: 1/(2n)||y - Xw||^2 + MCP_{alpha, gamma}; Keras: mse + MCP(2 alpha, gamma / 2)
    reg = kreg.MCP(2 * alpha, gamma=gamma / 2)
    lipschitz = 2 * eig.max()
    w = fit_full_batch(reg, O.SGD(1 / lipschitz), X, y, steps=1000)
    assert max_rel_error(w, reference) <= 1e-5, (w, reference)  # measured 4e-8
    np.testing.assert_array_equal(w == 0, reference == 0)
    assert 0 < np.sum(w == 0) < len(w)
    # stationarity in NumPy (skglm's scaling): grad_j + MCP'(w_j) = 0 on the support
    # (grad_j = 0, no shrinkage, for |w_j| > gamma alpha), |grad_j| <= alpha off it
    support = w != 0
    assert np.sum(np.abs(w) > gamma * alpha) >= 2
    grad = X.T @ (X @ w - y) / len(y)
    deriv = np.sign(w) * np.maximum(alpha - np.abs(w) / gamma, 0)
    assert np.abs(grad[support] + deriv[support]).max() < 1e-4 * np.abs(X.T @ y / len(y)).max()
    assert np.all(np.abs(grad[~support]) <= alpha * (1 + 1e-6))


def test_mcp_under_proximal_adam_reaches_the_same_point(well_conditioned):
    # The per-weight metric prox under Adam: the same stationary point (convex problem).
    X, y, eig = well_conditioned
    alpha, gamma = 0.25, 3.0
    sgd = fit_full_batch(kreg.MCP(2 * alpha, gamma=gamma / 2), O.SGD(1 / (2 * eig.max())),
                         X, y, steps=1000)
    adam = fit_full_batch(kreg.MCP(2 * alpha, gamma=gamma / 2), O.Adam(0.01), X, y, steps=3000)
    np.testing.assert_array_equal(adam == 0, sgd == 0)
    assert max_rel_error(adam, sgd) < 1e-4  # measured 1e-6


@SLOW_ON_TORCH
@pytest.mark.parametrize("kind", ["GroupMCP", "GroupSCAD"])
def test_group_penalty_under_proximal_adam_reaches_the_sgd_point(kind, well_conditioned):
    # The per-weight metric prox of a group penalty under Adam: the same stationary point as
    # the scalar prox under SGD (a convex problem: lambda_min(X^T X / n) > 1/gamma), and it
    # satisfies the group stationarity conditions, checked in NumPy.
    X, y, eig = well_conditioned
    ids = [0, 0, 1, 1, 2, 2, 3, 3]
    strength = 0.3
    reg = (kreg.GroupMCP(strength, gamma=1.5, groups=ids) if kind == "GroupMCP"
           else kreg.GroupSCAD(strength, a=2.5, groups=ids))
    sgd = fit_full_batch(reg, O.SGD(1 / (2 * eig.max())), X, y, steps=1000)
    reg = type(reg).from_config(reg.get_config())
    adam = fit_full_batch(reg, O.Adam(0.01), X, y, steps=3000)
    np.testing.assert_array_equal(adam == 0, sgd == 0)
    assert 0 < np.sum(adam == 0) < len(adam)
    assert max_rel_error(adam, sgd) < 1e-4
    grad = 2 * X.T @ (X @ adam - y) / len(y)  # Keras's "mse"
    lam = strength * np.sqrt(2)
    for g in range(4):
        block, gb = adam[2 * g:2 * g + 2], grad[2 * g:2 * g + 2]
        r = np.linalg.norm(block)
        if r == 0:
            assert np.linalg.norm(gb) <= lam * (1 + 1e-5)
            continue
        if kind == "GroupMCP":
            slope = max(lam - r / 1.5, 0.0)
        else:
            slope = lam if r <= lam else max(2.5 * lam - r, 0.0) / 1.5
        assert np.abs(gb + slope * block / r).max() < 1e-3 * np.abs(2 * X.T @ y / len(y)).max()


def test_l0_under_proximal_is_iterative_hard_thresholding(diabetes):
    X, y, lipschitz = diabetes
    strength, step = 30.0, 1 / lipschitz
    w = np.zeros(X.shape[1])
    for _ in range(500):  # the NumPy oracle: IHT from zero
        u = w - step * 2 / len(y) * X.T @ (X @ w - y)
        w = np.where(u**2 > 2 * step * strength, u, 0.0)
    ours = fit_full_batch(kreg.L0(strength), O.SGD(step), X, y, steps=500)
    np.testing.assert_array_equal(ours == 0, w == 0)
    assert max_rel_error(ours, w) < 1e-3
    # the documented fixed point: least squares on its support, small gradients off it
    support = ours != 0
    assert 0 < support.sum() < len(ours)
    grad = 2 / len(y) * X.T @ (X @ ours - y)
    assert np.abs(grad[support]).max() < 1e-2 * np.abs(grad[~support]).max() + 1e-2
    assert np.all(np.abs(grad[~support]) <= np.sqrt(2 * strength / step) * (1 + 1e-6))
    assert np.all(np.abs(ours[support]) >= np.sqrt(2 * step * strength))


def test_adaptive_lasso_recipe_removes_the_lasso_bias(well_conditioned):
    # The documented recipe: fit, weights = 1 / |w|^gamma (clipped), refit.
    X, y, eig = well_conditioned
    step = 1 / (2 * eig.max())
    first = fit_full_batch(kreg.L1(0.5), O.SGD(step), X, y, steps=500)
    weights = 1 / np.maximum(np.abs(first), 1e-3)
    refit = fit_full_batch(kreg.L1(0.1, weights=weights[:, None]), O.SGD(step), X, y, steps=1000)
    # scikit-learn's equivalent: the lasso on the rescaled columns X / weights
    sk = Lasso(alpha=0.05, fit_intercept=False, tol=1e-12, max_iter=1_000_000).fit(
        X / weights, y).coef_ / weights
    assert max_rel_error(refit, sk) < 1e-3
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    big = np.abs(ols) > 1
    assert np.abs(refit - ols)[big].max() < np.abs(first - ols)[big].max() / 3
