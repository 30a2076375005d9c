"""The prox of a nonconvex penalty of each group's norm in a diagonal metric.

Solves, group by group, `min_y  Q(y) + p(||y||)` with
`Q(y) = sum_i (y_i - w_i)^2 / (2 d_i)` (the per-weight steps `d_i >= 0` of an
adaptive optimizer) and `p` the group MCP or SCAD of the group's norm (see
`kreg.nonconvex`). Pure `keras.ops`, every backend; no closed form exists, and
none is approximated: the global minimizer is found to the dtype's round-off.

The reduction (a Lagrange argument on the sphere `||y|| = r`):

* For `0 < r <= ||w||`, the best point of norm `r` is `y(u) = w / (1 + d u)`
  with the multiplier `u >= 0` that gives `||y(u)|| = r` (for `u >= 0` the
  Lagrangian is convex in `y`, so its stationary point minimizes it). Since `p`
  is nondecreasing, no point of norm above `||w||` does better than `w` itself
  (`u = 0`). So the minimizer is `0` or a point `y(u)` of this curve.
* Along the curve, `h(r) = Q(y(u(r))) + p(r)` has `dh/dr = p'(r) - u r`. On a
  piece of `p` where `p'(r) = T - c0 r` (MCP's inner piece: `c0 = 1/gamma`,
  `T = lam`; SCAD's middle piece: `c0 = 1/(a-1)`, `T = a lam/(a-1)`; the lasso
  piece: `c0 = 0`, `T = lam`), `dh/dr` has the sign of `T - G(u)` with
  `G(u) = ||y(u)|| (u + c0)`. `G` decreases then increases in `u` (its slope has
  the sign of `sum_i w_i^2 (1 - c0 d_i) / (1 + d_i u)^3`, which changes sign at
  most once, from - to +), so `h` decreases, increases, decreases: its only
  interior local minimum on the piece is the root of `G(u) = T` on the
  increasing branch of `G`. `p` is continuously differentiable, so a local
  minimum at a junction of pieces is such a root too.
* The global minimizer is therefore among `0`, `w`, and one root per piece, each
  found by bisection (the turning point of `G` by the sign above, then the root
  on the monotone branch), and the candidates are compared by their objective
  (ties go to the candidate nearer zero). A candidate that falls outside its
  piece is still a feasible point, so comparing it is harmless.

Bisection runs in `s in (0, 1]` with `u = (1 - s) / (s d_max)` (`d_max` the
group's largest step), so `y = w s / (s + e (1 - s))` with `e = d / d_max`: no
division overflows, a zero step (`d_i = 0`) keeps `y_i = w_i`, and small `s`
(heavy shrinkage) keeps its relative precision. `_BISECTIONS` halvings pin `s`
to `2^-40` (float32) or `2^-64` (float64): the dtype's round-off wherever
`s > 2^-16` resp. `2^-12`, and below that a point `2^16` times smaller than `w`
or more, off by less than `2^-40 |w|`.
"""

import keras
import numpy as np
from keras import ops

from kreg import _math

_BISECTIONS = {"float32": 40, "float64": 64}


def _tiny(dtype):
    return ops.cast(np.finfo(np.float32).tiny, dtype)


def _bisect(predicate, lo, hi, count):
    """Per-group bisection: keeps `predicate(lo)` true and `predicate(hi)` false."""

    def body(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) / 2
        ok = predicate(mid)
        return ops.where(ok, mid, lo), ops.where(ok, hi, mid)

    return ops.fori_loop(0, count, body, (lo, hi))


def _curve(w, e, grouping, s):
    """`(y, ||w / D||)` at per-group `s`, with `D = s + e (1 - s)` and `y = w s / D`."""
    s_full = grouping.expand(s)
    den = _math.maximum(s_full + e * (1 - s_full), _tiny(w.dtype))
    return w * (s_full / den), _math.safe_sqrt(grouping.group_sum(ops.square(w / den)))


def _piece_root(w, d, e, d_max, grouping, c0, target, count):
    """The candidate of one piece: `y(u)` at the root of `G(u) = target` on the
    increasing branch of `G` (or at the branch's end when there is no root)."""
    zero = ops.zeros_like(d_max)
    one = ops.ones_like(d_max)
    if c0 > 0:
        weight = ops.square(w) * (1 - c0 * d)

        def rising(s):  # the slope of G in u is >= 0 at s (s/D scales it by a positive factor)
            s_full = grouping.expand(s)
            q = s_full / _math.maximum(s_full + e * (1 - s_full), _tiny(w.dtype))
            return ops.greater_equal(grouping.group_sum(weight * q * q * q), 0)

        turn, _ = _bisect(rising, zero, one, count)
        turn = ops.where(rising(one), one, turn)  # rising all the way to u = 0
    else:  # the lasso piece: G increases everywhere
        turn = one

    def above(s):  # G(u(s)) > target: s is on the heavy-shrinkage side of the root
        _, norm_over_d = _curve(w, e, grouping, s)
        return ops.greater(norm_over_d * ((1 - s) / d_max + c0 * s), target)

    _, root = _bisect(above, zero, turn, count)
    return _curve(w, e, grouping, root)[0]


def group_radial_prox_metric(w, d, grouping, penalty_abs, pieces):
    """Prox of `sum_g p_g(||w_g||)` in the diagonal metric `d` (see the module docstring).

    Args:
        w: the weight in the grouping's view.
        d: per-weight steps, broadcastable to `w`, all `>= 0`.
        grouping: a `kreg._math.Grouping`.
        penalty_abs: `p(norms)`, per group (shape `(num_groups,)`).
        pieces: `[(c0, target), ...]`, one per piece of `p` with
            `p'(r) = target - c0 * r` (`c0` a Python float >= 0, `target` per group).

    A NaN weight or step makes its whole group NaN.
    """
    d = ops.broadcast_to(ops.cast(d, w.dtype), ops.shape(w))
    count = _BISECTIONS.get(keras.backend.standardize_dtype(w.dtype), 64)
    d_max = grouping.group_max(d)
    positive = ops.greater(d_max, 0)
    safe_max = ops.where(positive, d_max, ops.ones_like(d_max))
    e = d / grouping.expand(safe_max)
    moving = ops.greater(d, 0)
    safe_d = ops.where(moving, d, ops.ones_like(d))

    def objective(y):
        moved = ops.where(moving, ops.square(y - w) / (2 * safe_d),
                          ops.where(ops.equal(y, w), ops.zeros_like(w),
                                    ops.full_like(w, float("inf"))))
        return grouping.group_sum(moved) + penalty_abs(grouping.group_norms(y))

    best = ops.zeros_like(w)
    best_value = objective(best)
    candidates = [_piece_root(w, d, e, safe_max, grouping, c0, target, count)
                  for c0, target in pieces]
    for y in candidates + [w]:
        value = objective(y)
        better = ops.less(value, best_value)  # strict: a tie keeps the smaller candidate
        best = ops.where(grouping.expand(better), y, best)
        best_value = ops.where(better, value, best_value)
    best = ops.where(grouping.expand(positive), best, w)  # all steps 0: nothing moves
    bad = ops.isnan(grouping.group_sum(w * 0 + d * 0))
    return ops.where(grouping.expand(bad), ops.full_like(w, float("nan")), best)
