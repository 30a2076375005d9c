"""`reg.prox` against closed forms, its definition and a scipy reference; NaN safety.

The prox of a penalty R (strength included) is

    scalar step t:      argmin_y 1/2 ||y - w||^2 + t * R(y)
    per-weight step d:  argmin_y sum_i (y_i - w_i)^2 / (2 d_i) + R(y)

Closed forms (scalar t, s = strength, r = l1_ratio):

    L1                sign(w) max(|w| - t s, 0)
    L2                w / (1 + 2 t s)
    ElasticNet        sign(w) max(|w| - t s r, 0) / (1 + 2 t s (1 - r))
    GroupLasso        w_g max(0, 1 - t s sqrt(p_g) / ||w_g||)
    SparseGroupLasso  GroupLasso prox at strength s (1 - r) of the L1 prox at s r

For a per-weight step the L1/L2/ElasticNet forms hold with t replaced by d_i;
the group prox has no closed form and is checked against scipy's brentq.

Strengths here are dyadic (0.375, 3.0, ...): `reg.strength` is a float32 variable, and
dyadic values are the same in float32 and float64, so float64 weights can be checked
to 1e-12.
"""

import numpy as np
import pytest
from scipy.optimize import brentq

import backend_ops
import kreg
from keras import ops

pytestmark = pytest.mark.usefixtures("device")

SHAPES = {"dense": (6, 4), "conv2d": (3, 2, 5, 4)}


def ids_for(n_inputs):
    return [int(v) for v in (np.arange(n_inputs) * 7) % 3 * 5 - 5]


def resolve(groups, shape):
    return ids_for(shape[-2]) if groups == "ids" else groups


# ---------------------------------------------------------------- NumPy oracle


def np_group_masks(shape, groups):
    """Boolean masks, one per group, written from the `groups` definition."""
    masks = []
    if groups == "units":
        for j in range(shape[-1]):
            m = np.zeros(shape, bool)
            m[..., j] = True
            masks.append(m)
    elif groups == "inputs":
        for i in range(shape[-2]):
            m = np.zeros(shape, bool)
            m[..., i, :] = True
            masks.append(m)
    else:
        ids = np.asarray(groups)
        for g in np.unique(ids):
            m = np.zeros(shape, bool)
            m[..., ids == g, :] = True
            masks.append(m)
    return masks


def np_penalty(kind, y, s, r, groups):
    if kind == "L1":
        return s * np.sum(np.abs(y))
    if kind == "L2":
        return s * np.sum(y**2)
    if kind == "ElasticNet":
        return s * (r * np.sum(np.abs(y)) + (1 - r) * np.sum(y**2))
    group = sum(np.sqrt(m.sum()) * np.linalg.norm(y[m]) for m in np_group_masks(y.shape, groups))
    if kind == "GroupLasso":
        return s * group
    return s * (r * np.sum(np.abs(y)) + (1 - r) * group)


def np_soft(w, t):
    return np.sign(w) * np.maximum(np.abs(w) - t, 0)


def np_block(w, t, groups):
    """Block soft-thresholding with scalar step t and unit strength: per group t*sqrt(p_g)."""
    y = np.zeros_like(w)
    for m in np_group_masks(w.shape, groups):
        norm = np.linalg.norm(w[m])
        if norm > 0:
            y[m] = w[m] * max(0.0, 1 - t * np.sqrt(m.sum()) / norm)
    return y


def np_prox(kind, w, t, s, r, groups):
    """Closed forms from the module docstring; `t` may be a per-weight array for L1/L2/EN."""
    if kind == "L1":
        return np_soft(w, t * s)
    if kind == "L2":
        return w / (1 + 2 * t * s)
    if kind == "ElasticNet":
        return np_soft(w, t * s * r) / (1 + 2 * t * s * (1 - r))
    if kind == "GroupLasso":
        return np_block(w, t * s, groups)
    return np_block(np_soft(w, t * s * r), t * s * (1 - r), groups)


def brentq_group_prox(u, d, lam):
    """argmin_y sum_i (y_i - u_i)^2 / (2 d_i) + lam ||y||_2 for one group, by scipy's brentq.

    Optimality: y = 0 iff ||u / d|| <= lam. Otherwise (y_i - u_i) / d_i + lam y_i / ||y|| = 0,
    i.e. y_i = u_i / (1 + d_i mu) with mu = lam / ||y||, so mu is the root of
    F(mu) = sum_i u_i^2 / (1 + d_i mu)^2 - lam^2 / mu^2, negative at mu = lam / ||u||
    and positive for large mu.
    """
    if np.linalg.norm(u / d) <= lam:
        return np.zeros_like(u)

    def F(mu):
        return np.sum(u**2 / (1 + d * mu) ** 2) - lam**2 / mu**2

    lo = lam / np.linalg.norm(u)
    hi = 2 * lo
    while F(hi) <= 0:
        hi *= 2
    mu = brentq(F, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    return u / (1 + d * mu)


def brentq_prox(kind, w, d, s, r, groups):
    """Metric prox of GroupLasso / SparseGroupLasso: per-weight L1 prox, then the group one."""
    u = np_soft(w, d * s * r) if kind == "SparseGroupLasso" else w
    group_strength = s * (1 - r) if kind == "SparseGroupLasso" else s
    y = np.zeros_like(w)
    for m in np_group_masks(w.shape, groups):
        y[m] = brentq_group_prox(u[m], d[m], group_strength * np.sqrt(m.sum()))
    return y


def make(kind, s, r, groups):
    if kind in ("L1", "L2"):
        return getattr(kreg, kind)(s)
    if kind == "ElasticNet":
        return kreg.ElasticNet(s, r)
    if kind == "GroupLasso":
        return kreg.GroupLasso(s, groups)
    return kreg.SparseGroupLasso(s, r, groups)


CASES = [
    ("L1", None, None),
    ("L2", None, None),
    ("ElasticNet", 0.35, None),
    ("GroupLasso", None, "units"),
    ("GroupLasso", None, "inputs"),
    ("GroupLasso", None, "ids"),
    ("SparseGroupLasso", 0.35, "units"),
    ("SparseGroupLasso", 0.35, "inputs"),
    ("SparseGroupLasso", 0.35, "ids"),
]


def case_id(case):
    return "-".join(str(p) for p in case if p is not None)


def weights(rng, shape, groups):
    """Normal weights where some groups are small, so both kinds of zeros occur."""
    w = rng.normal(size=shape)
    if groups is not None:
        for k, m in enumerate(np_group_masks(shape, groups)):
            if k % 2 == 1:
                w[m] *= 0.05
    return w


# ---------------------------------------------------------- scalar closed form


@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_prox_matches_closed_form(case, shape_name, rng):
    kind, r, groups = case
    shape = SHAPES[shape_name]
    groups = resolve(groups, shape)
    w = weights(rng, shape, groups)
    s, t = 0.375, 0.5
    reg = make(kind, s, r, groups)
    for dtype, tol in (("float64", 1e-12), ("float32", 2e-6)):
        wd = w.astype(dtype)
        y = np.asarray(reg.prox(wd, t))
        assert y.dtype == dtype and y.shape == shape
        ref = np_prox(kind, wd.astype("float64"), t, s, r, groups)
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
        # Exact zeros exactly where the closed form has them (none for L2).
        np.testing.assert_array_equal(y == 0, ref == 0)
    if kind != "L2":
        assert np.any(y == 0) and np.any(y != 0)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_prox_at_zero_step_or_strength_is_identity(case, rng):
    kind, r, groups = case
    shape = SHAPES["dense"]
    groups = resolve(groups, shape)
    w = rng.normal(size=shape)
    np.testing.assert_array_equal(np.asarray(make(kind, 0.375, r, groups).prox(w, 0.0)), w)
    np.testing.assert_array_equal(np.asarray(make(kind, 0.0, r, groups).prox(w, 0.7)), w)


def test_exact_zeros():
    w = np.array([[3.0, 0.1, -0.02], [4.0, -0.1, 0.5], [0.0, 0.05, -2.0]])
    # L1: every |w| <= t*s gives an exact zero; here all of them.
    assert np.all(np.asarray(kreg.L1(1.0).prox(w, 4.0)) == 0.0)
    # GroupLasso by units: unit 1 (norm ~0.15) is below t*s*sqrt(3) and vanishes whole;
    # units 0 and 2 only shrink.
    y = np.asarray(kreg.GroupLasso(0.1, "units").prox(w, 1.0))
    assert np.all(y[:, 1] == 0.0)
    assert np.count_nonzero(y[:, 0]) == 2  # the zero weight of unit 0 stays zero
    assert np.count_nonzero(y[:, 2]) == 3
    # SparseGroupLasso: single small weights inside surviving groups become zero too.
    y = np.asarray(kreg.SparseGroupLasso(0.2, 0.5, "units").prox(w, 1.0))
    assert np.all(y[:, 1] == 0.0)
    assert y[0, 2] == 0.0 and y[1, 2] != 0.0 and y[2, 2] != 0.0
    # L2 shrinks but never zeroes a non-zero weight.
    assert np.all((np.asarray(kreg.L2(10.0).prox(w, 10.0)) == 0) == (w == 0))


# ------------------------------------------------------ against the definition


def perturbations(rng, y, count=60):
    """Random points near y at scales 1e-1 .. 1e-6: dense noise, noise on y's zeros only,
    and single-coordinate moves."""
    for k in range(count):
        scale = 10.0 ** -(k % 6 + 1)
        noise = rng.normal(size=y.shape) * scale
        if k % 3 == 1:
            noise = noise * (y == 0)
        elif k % 3 == 2:
            noise = noise * (np.arange(y.size).reshape(y.shape) == rng.integers(y.size))
        yield y + noise


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_prox_minimises_its_objective(case, rng):
    kind, r, groups = case
    shape = SHAPES["conv2d"]
    groups = resolve(groups, shape)
    w = weights(rng, shape, groups)
    s, t = 0.375, 0.5
    d = rng.uniform(0.05, 1.5, size=shape)
    reg = make(kind, s, r, groups)
    for step in (t, d):  # scalar step, then one step per weight
        y = np.asarray(reg.prox(w, step))

        def objective(z):
            return np.sum((z - w) ** 2 / (2 * step)) + np_penalty(kind, z, s, r, groups)

        best = objective(y)
        worse = [objective(z) - best for z in perturbations(rng, y)]
        assert min(worse) >= -1e-12 * max(1.0, abs(best)), min(worse)


# ---------------------------------------------------------- per-weight metric


@pytest.mark.parametrize("kind, r", [("L1", None), ("L2", None), ("ElasticNet", 0.6)])
def test_metric_prox_matches_closed_form(kind, r, rng):
    shape = SHAPES["conv2d"]
    w = rng.normal(size=shape)
    d = 10 ** rng.uniform(-3, 0, size=shape)  # steps spread like an adaptive optimizer's
    s = 3.0
    y = np.asarray(make(kind, s, r, None).prox(w, d))
    ref = np_prox(kind, w, d, s, r, None)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(y == 0, ref == 0)
    if kind != "L2":
        assert np.any(y == 0) and np.any(y != 0)


@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("case", [c for c in CASES if c[2] is not None], ids=case_id)
def test_metric_group_prox_matches_brentq(case, shape_name, rng):
    kind, r, groups = case
    shape = SHAPES[shape_name]
    groups = resolve(groups, shape)
    w = weights(rng, shape, groups)
    s = 0.3125
    reg = make(kind, s, r, groups)
    zeros = []
    for spread in (0.0, 1.0, 3.0):  # d spans 10**spread: uniform, 10x, 1000x
        d = 0.5 * 10 ** rng.uniform(-spread, 0, size=shape)
        ref = brentq_prox(kind, w, d, s, r, groups)
        zeros.append(np.mean(ref == 0))
        y = np.asarray(reg.prox(w, d))
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6 * np.max(np.abs(ref)))
        np.testing.assert_array_equal(y == 0, ref == 0)
        y32 = np.asarray(reg.prox(w.astype("float32"), d.astype("float32")))
        np.testing.assert_allclose(y32, ref, rtol=2e-5, atol=2e-5 * np.max(np.abs(ref)))
    assert 0 < max(zeros) < 1  # some zero groups, and not everything zero


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_uniform_metric_equals_scalar_step(case, rng):
    kind, r, groups = case
    shape = SHAPES["dense"]
    groups = resolve(groups, shape)
    w = weights(rng, shape, groups)
    reg = make(kind, 0.375, r, groups)
    scalar = np.asarray(reg.prox(w, 0.5))
    for step in (np.full(shape, 0.5), np.full((1, shape[-1]), 0.5), ops.convert_to_tensor(0.5, "float64")):
        np.testing.assert_allclose(np.asarray(reg.prox(w, step)), scalar, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_zero_metric_step_is_identity_even_with_zero_weights(case, rng):
    # A per-weight step of 0 (e.g. Adam under a warm-up learning rate starting at 0)
    # must leave w unchanged, also where w has exact zeros inside a kept group
    # (0 / 0 must not turn the group into NaN or zero it).
    kind, r, groups = case
    shape = SHAPES["dense"]
    groups = resolve(groups, shape)
    w = rng.normal(size=shape)
    w[0, :] = 0.0
    w[:, 0] = 0.0
    for dtype in ("float64", "float32"):
        y = np.asarray(make(kind, 0.375, r, groups).prox(w.astype(dtype), np.zeros(shape, dtype)))
        assert np.all(np.isfinite(y))
        np.testing.assert_array_equal(y == 0, w == 0)
        np.testing.assert_allclose(y, w, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_metric_prox_broadcast_step_per_unit(rng):
    # A step of shape (1, units) is one step per unit, broadcast over the inputs.
    w = rng.normal(size=(5, 3))
    per_unit = np.array([[0.1, 0.5, 2.0]])
    reg = kreg.GroupLasso(0.375, "inputs")
    np.testing.assert_allclose(
        np.asarray(reg.prox(w, per_unit)),
        brentq_prox("GroupLasso", w, np.broadcast_to(per_unit, w.shape), 0.375, None, "inputs"),
        rtol=1e-6,
        atol=1e-9,
    )


# ------------------------------------------------------------------ NaN safety


@pytest.mark.parametrize("kind", ["GroupLasso", "SparseGroupLasso"])
@pytest.mark.parametrize("groups", ["units", "inputs", "ids"])
def test_zero_group_has_finite_value_and_zero_gradient(kind, groups, rng):
    shape = SHAPES["dense"]
    groups = resolve(groups, shape)
    masks = np_group_masks(shape, groups)
    w0 = rng.normal(size=shape).astype("float32")
    w0[masks[0]] = 0.0  # one all-zero group
    s, r = 0.3125, 0.4
    reg = make(kind, s, r, groups)
    for w_value in (w0, np.zeros(shape, "float32")):
        value = reg(w_value)
        grad = backend_ops.gradient(reg, w_value)
        assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
        np.testing.assert_allclose(
            float(value), np_penalty(kind, w_value.astype("float64"), s, r, groups), rtol=1e-5
        )
        # The gradient: s * sqrt(p_g) w_g / ||w_g|| on non-zero groups, 0 on zero groups,
        # plus s * r * sign(w) for the L1 part (0 at w = 0).
        group_share = s * (1 - r) if kind == "SparseGroupLasso" else s
        expected = np.zeros(shape)
        for m in masks:
            norm = np.linalg.norm(w_value[m].astype("float64"))
            if norm > 0:
                expected[m] = group_share * np.sqrt(m.sum()) * w_value[m] / norm
        if kind == "SparseGroupLasso":
            expected += s * r * np.sign(w_value)
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
        assert np.all(grad[masks[0]] == 0.0)
        # group_norms alone is NaN-safe too.
        norms_gradient = backend_ops.gradient(lambda x: ops.sum(reg.group_norms(x)), w_value)
        assert np.all(np.isfinite(norms_gradient))
        # The prox of a zero group is zero, with a scalar or per-weight step.
        for step in (0.5, np.full(shape, 0.5, "float32")):
            y = np.asarray(reg.prox(w_value, step))
            assert np.all(np.isfinite(y)) and np.all(y[masks[0]] == 0.0)
