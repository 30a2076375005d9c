"""Penalties beyond the lasso: MCP, SCAD, their group versions, and L0.

The lasso shrinks every surviving coefficient by the same amount, so the
strength that selects the right features also biases the large ones toward
zero. The penalties here grow like the lasso near zero (they select) and then
flatten out (they stop shrinking): a large coefficient is left (nearly)
unbiased. They are nonconvex, so training finds a stationary point, not
necessarily the global minimum; start from a sensible point (a lasso fit, or
the usual initialization under `kreg.Proximal`).

Each class has the interface of `kreg.regularizers.Regularizer`: `reg(w)` is the
penalty (with the strength), `reg.strength` a live variable, `reg.gradient(w)`
the closed-form gradient (0 at a kink, as autodiff), and `reg.prox(w, step)`
the exact prox, so `kreg.Proximal` trains them with exact zeros. The elementwise
proxes are exact for a scalar step and for a per-weight step (Adam under
`kreg.Proximal`), also where the 1-D prox problem is nonconvex (a step of at least
`gamma` for MCP, `a - 1` for SCAD): there the global minimizer is taken. The
group versions' prox is exact for a scalar step (closed form at the group's
norm) and for a per-weight step, where no closed form exists: the global
minimizer is then found by a search along a one-parameter curve that provably
contains it (`kreg._math_radial_metric`): per piece of the penalty two
bisections of 40 (float32) or 64 (float64) halvings, each a pass over the
weight, so `kreg.Proximal(Adam)` costs more per step with these two than with
the other penalties.

Scaling with scikit-learn/skglm (whose data term is half Keras's `"mse"`):
skglm's `MCPenalty(alpha, gamma)` with a quadratic datafit is `MCP(2 * alpha,
gamma=gamma / 2)` with `"mse"`; SCAD has no such rescaling (its shape depends
on the strength), so skglm's `SCAD(alpha, gamma)` is `SCAD(alpha, a=gamma)` with
the loss `0.5 * "mse"`.
"""

import keras
from keras import ops

from kreg import _math_nonconvex as _nc
from kreg import _math_radial_metric as _radial
from kreg import _validation
from kreg.regularizers import Regularizer, _Grouped

__all__ = ["GroupMCP", "GroupSCAD", "L0", "MCP", "SCAD"]


def _check_parameter(value, name, lower, expected):
    """A real number (not a bool or a string), finite and strictly above `lower`."""
    if not _validation._is_real(value):
        raise _validation.invalid(name, expected, value)
    value = float(value)
    if not (lower < value < float("inf")):  # also refuses NaN
        raise _validation.invalid(name, expected, value)
    return value


def _check_gamma(gamma):
    return _check_parameter(gamma, "gamma", 0.0, "a finite number > 0 (usually 3)")


def _check_a(a):
    return _check_parameter(a, "a", 1.0, "a finite number > 1 (usually 3.7)")


@keras.saving.register_keras_serializable(package="kreg")
class MCP(Regularizer):
    """Minimax concave penalty `R(w) = sum_i p(w_i)` (Zhang 2010), `lam = strength`:

    `p(x) = lam |x| - x^2 / (2 gamma)` for `|x| <= gamma lam`, `gamma lam^2 / 2` beyond.

    Its slope falls from `lam` at 0 to 0 at `gamma lam`: coefficients above
    `gamma lam` are not shrunk at all. `gamma -> inf` is the lasso; a small
    `gamma` is close to hard thresholding.

    Prox (firm thresholding), for a step `s < gamma`: 0 for `|w| <= s lam`, `w` for
    `|w| > gamma lam`, else `sign(w) (|w| - s lam) / (1 - s / gamma)`; for `s >=
    gamma` the global minimizer (0 or `sign(w) max(|w|, gamma lam)`), in a scalar or
    per-weight step alike.

    With Keras's `"mse"`, skglm's `MCPenalty(alpha, gamma)` (scikit-learn's data
    scaling) is `MCP(2 * alpha, gamma=gamma / 2)`.

    Args:
        strength: non-negative float `lam`, held in the variable `self.strength`.
        gamma: finite float > 0, the concavity parameter (3 is customary).

    References:
        Zhang, "Nearly unbiased variable selection under minimax concave
        penalty", Annals of Statistics, 2010.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.MCP(1.0, gamma=3.0)
    >>> float(reg(np.array([0.0, 1.5, 5.0])))   # (1.5 - 1.5^2 / 6) + 1.5
    2.625
    >>> np.round(np.asarray(reg.prox(np.array([0.5, 1.5, 5.0]), 1.0)), 6).tolist()
    [0.0, 0.75, 5.0]
    """

    def __init__(self, strength=0.01, gamma=3.0):
        super().__init__(strength)
        self.gamma = _check_gamma(gamma)

    def _penalty(self, w, strength, layout):
        return _nc.mcp_value(w, strength, self.gamma)

    def _gradient(self, w, strength, layout):
        return _nc.mcp_gradient(w, strength, self.gamma)

    def _prox(self, w, step, strength, layout):
        return _nc.mcp_prox(w, step, strength, self.gamma)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="kreg")
class SCAD(Regularizer):
    """Smoothly clipped absolute deviation `R(w) = sum_i p(w_i)` (Fan & Li 2001), `lam = strength`:

    `p(x) = lam |x|` for `|x| <= lam`,
    `(2 a lam |x| - x^2 - lam^2) / (2 (a - 1))` for `lam < |x| <= a lam`,
    `(a + 1) lam^2 / 2` beyond.

    The lasso up to `lam`, then a slope falling linearly to 0 at `a lam`.

    Prox, for a step `s < a - 1`: soft-thresholding `sign(w) max(|w| - s lam, 0)` for
    `|w| <= (1 + s) lam`, `((a - 1) w - sign(w) s a lam) / (a - 1 - s)` for
    `|w| <= a lam`, `w` beyond; for `s >= a - 1` the global minimizer of the 1-D
    problem, in a scalar or per-weight step alike.

    Args:
        strength: non-negative float `lam`, held in the variable `self.strength`.
        a: finite float > 1 (Fan & Li's 3.7 is customary).

    References:
        Fan & Li, "Variable selection via nonconcave penalized likelihood and its
        oracle properties", JASA, 2001.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.SCAD(1.0, a=3.7)
    >>> round(float(reg(np.array([0.5, 10.0]))), 4)   # 0.5 + 4.7 / 2
    2.85
    >>> np.round(np.asarray(reg.prox(np.array([1.5, 3.0, 10.0]), 1.0)), 4).tolist()
    [0.5, 2.5882, 10.0]
    """

    def __init__(self, strength=0.01, a=3.7):
        super().__init__(strength)
        self.a = _check_a(a)

    def _penalty(self, w, strength, layout):
        return _nc.scad_value(w, strength, self.a)

    def _gradient(self, w, strength, layout):
        return _nc.scad_gradient(w, strength, self.a)

    def _prox(self, w, step, strength, layout):
        return _nc.scad_prox(w, step, strength, self.a)

    def get_config(self):
        return {**super().get_config(), "a": self.a}


@keras.saving.register_keras_serializable(package="kreg")
class L0(Regularizer):
    """`R(w) = strength * #{i : w_i != 0}`, the number of nonzero weights.

    Prox (hard thresholding): `w_i` where `w_i^2 > 2 * step_i * strength`, else 0
    (exact for scalar and per-weight steps; 0 on the tie). Its gradient is 0 (the
    count is piecewise constant), so it acts through `kreg.Proximal` only; under a
    plain optimizer it does nothing.

    **What `kreg.Proximal` converges to.** The penalty is discontinuous and
    nonconvex; proximal gradient descent (iterative hard thresholding) with a
    step `s` below `1 / L` (L = the loss's gradient Lipschitz constant) decreases
    `loss + R` monotonically, and a limit point `w` is a fixed point of
    `w = hard_threshold(w - s grad L(w))`: every kept weight has
    `d L / d w_i = 0` and `|w_i| >= sqrt(2 s strength)`, every zero weight has
    `|d L / d w_i| <= sqrt(2 strength / s)` (an "L-stationary" point, Beck &
    Eldar 2013). That is a minimizer of the loss on its own support, not in
    general the global minimizer of `loss + R`, and which one is reached depends
    on the start and on the step (a larger step thresholds more).

    Args:
        strength: non-negative float, held in the variable `self.strength`.

    References:
        Blumensath & Davies, "Iterative hard thresholding for compressed
        sensing", 2009; Beck & Eldar, "Sparsity constrained nonlinear
        optimization", SIAM J. Optim., 2013.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.L0(0.5)
    >>> float(reg(np.array([0.0, 2.0, -0.1])))
    1.0
    >>> np.asarray(reg.prox(np.array([0.9, 1.1, -2.0]), 1.0)).tolist()
    [0.0, 1.1, -2.0]
    """

    def __init__(self, strength=0.01):
        super().__init__(strength)

    def _value(self, w, layout):
        return _nc.l0_value(w)

    def _gradient(self, w, strength, layout):
        return _nc.l0_gradient(w)

    def _prox(self, w, step, strength, layout):
        return _nc.l0_prox(w, step, strength)


class _GroupRadial(_Grouped):
    """A nonconvex penalty of each group's norm, `sum_g p_{lam_g}(||w_g||)`, `lam_g = lam sqrt(p_g)`."""

    def _lam(self, grouping, strength):
        return strength * ops.cast(grouping.sqrt_sizes, strength.dtype)

    def _penalty(self, w, strength, layout):
        grouping = self.grouping(layout)
        lam = self._lam(grouping, strength)
        return _nc.group_radial_value(
            grouping.to_view(w), grouping, lambda r: self._abs(r, lam)
        )

    def _gradient(self, w, strength, layout):
        lam = self._lam(self.grouping(layout), strength)
        return self._in_view(
            w, None, layout,
            lambda v, _, g: _nc.group_radial_gradient(v, g, lambda r: self._derivative(r, lam)),
        )

    def _prox(self, w, step, strength, layout):
        lam = self._lam(self.grouping(layout), strength)
        if len(step.shape) != 0:  # a per-weight step: the exact search of kreg._math_radial_metric
            return self._in_view(
                w, step, layout,
                lambda v, s, g: _radial.group_radial_prox_metric(
                    v, s, g, lambda r: self._abs(r, lam), self._pieces(lam)
                ),
            )
        return self._in_view(
            w, step, layout,
            lambda v, s, g: _nc.group_radial_prox(
                v, s, g, lambda r: self._prox_abs(r, s, lam)
            ),
        )


@keras.saving.register_keras_serializable(package="kreg")
class GroupMCP(_GroupRadial):
    """Group MCP `R(w) = sum_g MCP_{lam_g, gamma}(||w_g||_2)`, `lam_g = strength * sqrt(p_g)`.

    The penalty of `kreg.MCP` applied to each group's norm (Breheny & Huang), with
    the group lasso's `sqrt(p_g)` weighting: near zero it is `GroupLasso`, and a
    group whose norm exceeds `gamma * lam_g` is not shrunk at all, so unit pruning
    leaves the surviving units unbiased. Prox (scalar step `s`):
    `y_g = w_g * rho / ||w_g||` with `rho` the 1-D MCP prox (`kreg.MCP`) of
    `||w_g||` at strength `lam_g`. For a per-weight step `d` (Adam under
    `kreg.Proximal`) the prox `argmin_y sum_i (y_i - w_i)^2 / (2 d_i) + R(y)` is
    the global minimizer among `0`, `w` and `y = w / (1 + d u)` at the root `u`
    of `||y|| (u + 1/gamma) = lam_g` where the group's objective turns upward,
    found by bisection (see `kreg._math_radial_metric`): exact to round-off,
    also where the problem is nonconvex (steps above `gamma`).

    `groups` as in `kreg.GroupLasso` (`"units"`, `"inputs"` or integer ids).

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        gamma: finite float > 0 (3 is customary).
        groups: `"units"`, `"inputs"` or a sequence of integer group ids.

    References:
        Breheny & Huang, "Penalized methods for bi-level variable selection",
        Statistics and Its Interface, 2009; Zhang, Annals of Statistics, 2010.

    Example:

    >>> import numpy as np, kreg
    >>> w = np.array([[3.0, 0.1], [4.0, 0.0]])   # 2 inputs, 2 units: norms 5 and 0.1
    >>> reg = kreg.GroupMCP(1.0, gamma=3.0, groups="units")
    >>> np.round(np.asarray(reg.prox(w, 0.5)), 4).tolist()   # 5 > 3 sqrt(2): kept as is
    [[3.0, 0.0], [4.0, 0.0]]
    """

    def __init__(self, strength=0.01, gamma=3.0, groups="units"):
        super().__init__(strength, groups)
        self.gamma = _check_gamma(gamma)

    def _abs(self, r, lam):
        return _nc.mcp_abs(r, lam, self.gamma)

    def _derivative(self, r, lam):
        return _nc.mcp_derivative_abs(r, lam, self.gamma)

    def _prox_abs(self, r, step, lam):
        return _nc.mcp_prox_abs(r, step, lam, self.gamma)

    def _pieces(self, lam):  # p'(r) = lam - r / gamma on [0, gamma lam]
        return [(1 / self.gamma, lam)]

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="kreg")
class GroupSCAD(_GroupRadial):
    """Group SCAD `R(w) = sum_g SCAD_{lam_g, a}(||w_g||_2)`, `lam_g = strength * sqrt(p_g)`.

    The penalty of `kreg.SCAD` applied to each group's norm, as `kreg.GroupMCP`
    (same prox construction, for a scalar and a per-weight step; in a per-weight
    metric one root per piece of SCAD: `||y|| u = lam_g` on `[0, lam_g]` and
    `||y|| (u + 1/(a-1)) = a lam_g / (a-1)` on `[lam_g, a lam_g]`).

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        a: finite float > 1 (3.7 is customary).
        groups: `"units"`, `"inputs"` or a sequence of integer group ids.

    References:
        Fan & Li, JASA, 2001; Breheny & Huang, Statistics and Its Interface, 2009.
    """

    def __init__(self, strength=0.01, a=3.7, groups="units"):
        super().__init__(strength, groups)
        self.a = _check_a(a)

    def _abs(self, r, lam):
        return _nc.scad_abs(r, lam, self.a)

    def _derivative(self, r, lam):
        return _nc.scad_derivative_abs(r, lam, self.a)

    def _prox_abs(self, r, step, lam):
        return _nc.scad_prox_abs(r, step, lam, self.a)

    def _pieces(self, lam):  # p'(r) = lam on [0, lam], (a lam - r) / (a - 1) on [lam, a lam]
        return [(0.0, lam), (1 / (self.a - 1), self.a * lam / (self.a - 1))]

    def get_config(self):
        return {**super().get_config(), "a": self.a}
