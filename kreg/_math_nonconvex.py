"""Pure `keras.ops` math of the penalties beyond the lasso (see `kreg.nonconvex`).

Same conventions as `kreg._math`: tensors in the compute dtype, `step` a scalar
or a tensor broadcastable to the weight (one step per weight: the prox is then
`argmin_y sum_i (y_i - w_i)^2 / (2 step_i) + R(y)`), NaN in, NaN out.

The 1-D proxes of MCP and SCAD have a closed form while the 1-D problem
`(y - a)^2 / (2 s) + p(y)` is strictly convex (`s < gamma` for MCP, `s < a - 1`
for SCAD). For a larger step the problem is a concave-convex patchwork: on each
piece of the penalty the minimizer is either the piece's stationary point
(where the piece is convex) or one of its end points (where it is concave), so
the global minimizer is the best of a short list of candidates, compared by
objective value (ties go to the candidate nearer zero). Both branches are
computed elementwise, so a per-weight step may mix the two cases.
"""

from keras import ops

from kreg import _math


def _keep_nan(x, step, y):
    """`y`, but NaN wherever `x` or the step is NaN (a NaN is never thresholded away)."""
    bad = ops.isnan(x + 0 * step)
    return ops.where(bad, ops.full_like(y, float("nan")), y)


# ------------------------------------------------------------------ MCP (Zhang 2010)


def mcp_abs(a, lam, gamma):
    """MCP of `a >= 0`: `lam a - a^2 / (2 gamma)` for `a <= gamma lam`, else `gamma lam^2 / 2`."""
    inner = ops.less_equal(a, gamma * lam)
    value = ops.where(inner, lam * a - ops.square(a) / (2 * gamma), gamma * ops.square(lam) / 2)
    return ops.where(ops.isnan(a), a, value)  # NaN stays NaN (not the flat value)


def mcp_value(w, lam, gamma):
    """`sum_i MCP_{lam, gamma}(w_i)`; NaN weights give NaN."""
    return ops.sum(mcp_abs(_math.magnitude(w), lam, gamma))


def mcp_derivative_abs(a, lam, gamma):
    """`d MCP / d a` for `a >= 0` as autodiff takes it: `max(lam - a / gamma, 0)`."""
    return _math.positive_part(lam - a / gamma)


def mcp_gradient(w, lam, gamma):
    """The gradient of `mcp_value`: `sign(w) * max(lam - |w| / gamma, 0)` (0 at 0)."""
    return ops.sign(w) * mcp_derivative_abs(ops.abs(w), lam, gamma)


def mcp_prox_abs(a, step, lam, gamma):
    """`argmin_{y >= 0} (y - a)^2 / (2 step) + MCP(y)` for `a >= 0` (elementwise steps).

    `step < gamma` (firm thresholding): 0 for `a <= step lam`, `a` for `a > gamma lam`,
    else `(a - step lam) / (1 - step / gamma)`. `step >= gamma`: the objective is
    concave on `[0, gamma lam]`, so the minimizer is 0 or `max(a, gamma lam)`, the
    better of the two (0 on a tie).
    """
    zero = ops.zeros_like(a + step)
    convex = ops.less(step, gamma)
    safe = ops.where(convex, 1 - step / gamma, ops.ones_like(zero))
    firm = (a - step * lam) / safe
    closed = ops.where(
        ops.less_equal(a, step * lam), zero, ops.where(ops.greater(a, gamma * lam), a + zero, firm)
    )
    far = _math.maximum(a + zero, gamma * lam + zero)
    safe_step = ops.where(ops.greater(step, 0), step + zero, ops.ones_like(zero))
    f_far = ops.square(far - a) / (2 * safe_step) + mcp_abs(far, lam, gamma)
    f_zero = ops.square(a) / (2 * safe_step)
    global_min = ops.where(ops.less(f_far, f_zero), far, zero)
    return ops.where(convex, closed, global_min)


def mcp_prox(w, step, lam, gamma):
    """Prox of `sum_i MCP_{lam, gamma}(w_i)`, exact for every scalar or per-weight step."""
    a = ops.abs(w)
    return _keep_nan(w, step, ops.sign(w) * mcp_prox_abs(a, step, lam, gamma))


# ---------------------------------------------------------------- SCAD (Fan & Li 2001)


def scad_abs(a, lam, alpha):
    """SCAD of `a >= 0` with parameter `alpha` (Fan & Li's `a`)."""
    middle = (2 * alpha * lam * a - ops.square(a) - ops.square(lam)) / (2 * (alpha - 1))
    flat = (alpha + 1) * ops.square(lam) / 2
    value = ops.where(
        ops.less_equal(a, lam), lam * a, ops.where(ops.less_equal(a, alpha * lam), middle, flat)
    )
    return ops.where(ops.isnan(a), a, value)  # NaN stays NaN (not the flat value)


def scad_value(w, lam, alpha):
    """`sum_i SCAD_{lam, alpha}(w_i)`; NaN weights give NaN."""
    return ops.sum(scad_abs(_math.magnitude(w), lam, alpha))


def scad_derivative_abs(a, lam, alpha):
    """`d SCAD / d a` for `a >= 0` as autodiff takes it."""
    return ops.where(
        ops.less_equal(a, lam),
        lam + ops.zeros_like(a),
        _math.positive_part(alpha * lam - a) / (alpha - 1),
    )


def scad_gradient(w, lam, alpha):
    """The gradient of `scad_value` (0 at 0)."""
    return ops.sign(w) * scad_derivative_abs(ops.abs(w), lam, alpha)


def scad_prox_abs(a, step, lam, alpha):
    """`argmin_{y >= 0} (y - a)^2 / (2 step) + SCAD(y)` for `a >= 0` (elementwise steps).

    `step < alpha - 1`: soft-thresholding `max(a - step lam, 0)` for
    `a <= (1 + step) lam`, `((alpha - 1) a - step alpha lam) / (alpha - 1 - step)` for
    `a <= alpha lam`, `a` beyond. `step >= alpha - 1`: the objective is concave on
    `[lam, alpha lam]`, so the minimizer is the better of `clip(a - step lam, 0, lam)`
    and `max(a, alpha lam)`.
    """
    zero = ops.zeros_like(a + step)
    convex = ops.less(step, alpha - 1)
    safe = ops.where(convex, alpha - 1 - step, ops.ones_like(zero))
    soft = _math.positive_part(a - step * lam)
    middle = ((alpha - 1) * a - step * alpha * lam) / safe
    closed = ops.where(
        ops.less_equal(a, (1 + step) * lam),
        soft,
        ops.where(ops.less_equal(a, alpha * lam), middle, a + zero),
    )
    near = ops.minimum(soft, lam + zero)
    far = _math.maximum(a + zero, alpha * lam + zero)
    safe_step = ops.where(ops.greater(step, 0), step + zero, ops.ones_like(zero))
    f_near = ops.square(near - a) / (2 * safe_step) + scad_abs(near, lam, alpha)
    f_far = ops.square(far - a) / (2 * safe_step) + scad_abs(far, lam, alpha)
    global_min = ops.where(ops.less(f_far, f_near), far, near)
    return ops.where(convex, closed, global_min)


def scad_prox(w, step, lam, alpha):
    """Prox of `sum_i SCAD_{lam, alpha}(w_i)`, exact for every scalar or per-weight step."""
    a = ops.abs(w)
    return _keep_nan(w, step, ops.sign(w) * scad_prox_abs(a, step, lam, alpha))


# ------------------------------------------------------------------------------ L0


def l0_value(w):
    """The number of nonzero weights; NaN if a weight is NaN."""
    count = ops.where(ops.equal(w, 0), ops.zeros_like(w), ops.ones_like(w))
    return ops.sum(ops.where(ops.isnan(w), w, count))


def l0_gradient(w):
    """0 (the count is piecewise constant), NaN where `w` is NaN."""
    return ops.where(ops.isnan(w), w, ops.zeros_like(w))


def l0_prox(w, step, lam):
    """Hard thresholding: `w` where `w^2 > 2 step lam`, else 0 (0 on the tie)."""
    keep = ops.greater(ops.square(w), 2 * step * lam)
    return _keep_nan(w, step, ops.where(keep, w, ops.zeros_like(w)))


# ------------------------------------------------------ weighted and non-negative L1


def positive_elastic_net_prox(w, step, strength, l1_ratio, weights=None):
    """Prox of `strength * (r sum v_i |w_i| + (1 - r) sum w_i^2)` plus the constraint `w >= 0`.

    `max(w - step strength r v, 0) / (1 + 2 step strength (1 - r))`: the one-sided
    soft-threshold (exact for scalar and per-weight steps: the problem separates).
    """
    threshold = step * (strength * l1_ratio)
    if weights is not None:
        threshold = threshold * weights
    y = _math.positive_part(w - threshold)
    if l1_ratio < 1:
        y = y / (1 + 2 * step * (strength * (1 - l1_ratio)))
    return _keep_nan(w, step, y)


def weighted_l1_value(w, weights):
    """`sum_i v_i |w_i|`."""
    return ops.sum(weights * _math.magnitude(w))


# ------------------------------------------------------------------- group penalties


def weighted_group_lasso_value(w, grouping, lam):
    """`sum_g lam_g ||w_g||` for per-group `lam` (shape `(num_groups,)`)."""
    return ops.sum(lam * grouping.group_norms(w))


def weighted_group_lasso_gradient(w, grouping, lam):
    """`lam_g w_g / ||w_g||`, 0 on a zero group."""
    norms = grouping.group_norms(w)
    scale = lam / ops.where(ops.equal(norms, 0), ops.ones_like(norms), norms)
    return w * grouping.expand(scale)


def weighted_group_lasso_prox(w, step, grouping, lam):
    """Prox of `sum_g lam_g ||w_g||`: block soft-thresholding, scalar or per-weight step."""
    if len(step.shape) == 0:
        norms = grouping.group_norms(w)
        shrink = _math.positive_part(norms - step * lam)
        scale = shrink / ops.where(ops.greater(norms, 0), norms, ops.ones_like(norms))
        return w * grouping.expand(scale)
    return _math._group_prox_metric(w, ops.broadcast_to(step, ops.shape(w)), lam, grouping)


def group_radial_value(w, grouping, penalty_abs):
    """`sum_g p_g(||w_g||)` for a per-group 1-D penalty `penalty_abs(norms)`."""
    return ops.sum(penalty_abs(grouping.group_norms(w)))


def group_radial_gradient(w, grouping, derivative_abs):
    """`p_g'(||w_g||) w_g / ||w_g||`, 0 on a zero group (as autodiff takes it)."""
    norms = grouping.group_norms(w)
    scale = derivative_abs(norms) / ops.where(ops.equal(norms, 0), ops.ones_like(norms), norms)
    return w * grouping.expand(scale)


def group_radial_prox(w, step, grouping, prox_abs):
    """Prox of `sum_g p_g(||w_g||)` for a scalar step: `y_g = w_g * rho_g / ||w_g||`.

    `rho_g = prox_abs(||w_g||)` is the 1-D prox of `p_g` at the group's norm. For a
    nondecreasing `p_g` the prox keeps the direction of `w_g`, so this is exact.
    A NaN weight makes its whole group NaN.
    """
    norms = grouping.group_norms(w)
    rho = prox_abs(norms)
    scale = rho / ops.where(ops.greater(norms, 0), norms, ops.ones_like(norms))
    scale = ops.where(ops.isnan(norms + 0 * step), norms, scale)
    return w * grouping.expand(scale)
