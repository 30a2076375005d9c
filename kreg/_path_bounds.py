"""`strength_max` from the gradient at zero: the smallest strength whose subdifferential
at zero weights contains minus the loss gradient, one rule per penalty."""

import numpy as np
from keras import ops

from kreg import nonconvex
from kreg import regularizers as _regs


def _l1_bound(grad, weights, positive):
    v = np.ones_like(grad) if weights is None else np.broadcast_to(weights, grad.shape)
    g = -grad if positive else np.abs(grad)
    mask = v > 0  # a weight of 0 leaves the coefficient unpenalised: it never forces zero
    if not np.any(mask):
        return 0.0
    return max(float(np.max(g[mask] / v[mask])), 0.0)


def _group_norms(reg, variable, grad):
    grouping = reg.grouping(variable)
    norms = grouping.group_norms(grouping.to_view(ops.convert_to_tensor(grad, "float64")))
    return grouping, np.asarray(ops.convert_to_numpy(norms), "float64")


def _sparse_group_bound(reg, variable, grad):
    """Per group, the smallest `lam` with `||S(g_g, lam r)|| <= lam (1 - r) sqrt(p_g)`, by
    bisection (the left side falls and the right side grows with `lam`)."""
    r = reg.l1_ratio
    grouping = reg.grouping(variable)
    view = grouping.to_view(ops.convert_to_tensor(grad, "float64"))
    sqrt_sizes = np.asarray(grouping.sqrt_sizes, "float64")
    hi = np.full(grouping.num_groups, float(np.max(np.abs(grad))) / r)
    lo = np.zeros_like(hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        lam = ops.convert_to_tensor(mid * r, "float64")
        shrunk = ops.sign(view) * ops.maximum(ops.abs(view) - grouping.expand(lam), 0.0)
        norms = np.asarray(ops.convert_to_numpy(grouping.group_norms(shrunk)), "float64")
        ok = norms <= mid * (1 - r) * sqrt_sizes
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return float(np.max(hi))


def bound(reg, variable, grad):
    """The strength above which `reg` keeps `variable` at zero, given the loss gradient there."""
    grad = np.asarray(grad, "float64")
    if isinstance(reg, _regs.L1):
        return _l1_bound(grad, reg.weights, reg.positive)
    if isinstance(reg, _regs.ElasticNet):
        if reg.l1_ratio == 0:
            raise ValueError(
                "Invalid value for argument `regularizers`: expected penalties with a finite "
                "strength that zeroes every weight. Received: ElasticNet(l1_ratio=0), a ridge "
                "penalty, which shrinks but never zeroes")
        return _l1_bound(grad, None, reg.positive) / reg.l1_ratio
    if isinstance(reg, (nonconvex.MCP, nonconvex.SCAD)):
        return _l1_bound(grad, None, False)  # slope `strength` at zero, as L1
    if isinstance(reg, _regs.SparseGroupLasso):
        if reg.l1_ratio == 1:
            return _l1_bound(grad, None, False)
        return _sparse_group_bound(reg, variable, grad)
    if isinstance(reg, (_regs.GroupLasso, nonconvex.GroupMCP, nonconvex.GroupSCAD)):
        grouping, norms = _group_norms(reg, variable, grad)
        scale = np.asarray(grouping.sqrt_sizes, "float64")
        if isinstance(reg, _regs.GroupLasso) and reg.weights is not None:
            scale = scale * reg.weights
        mask = scale > 0
        return float(np.max(norms[mask] / scale[mask])) if np.any(mask) else 0.0
    raise ValueError(
        "Invalid value for argument `regularizers`: expected L1, ElasticNet (l1_ratio > 0), "
        "GroupLasso, SparseGroupLasso, MCP, SCAD, GroupMCP or GroupSCAD, whose strength_max is "
        "the gradient bound at zero. Received: a "
        f"{type(reg).__name__} on {variable.path!r}; pass `strengths` explicitly")
