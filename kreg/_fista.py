"""FISTA with adaptive restart, the path engine's accelerated steps (residual mode).

Beck & Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for Linear
Inverse Problems", SIAM J. Imaging Sciences, 2009: the proximal gradient step is
taken from an extrapolated point

    x_{k+1} = prox_{lr R}(y_k - lr * grad L(y_k)),
    t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2,
    y_{k+1} = x_{k+1} + (t_k - 1) / t_{k+1} * (x_{k+1} - x_k),

which needs about `sqrt(kappa)` times fewer steps than the plain method on a
problem of condition number `kappa`. O'Donoghue & Candes, "Adaptive Restart for
Accelerated Gradient Schemes", Foundations of Computational Mathematics, 2015
(the gradient scheme): when the step from `y_k` points against the last
displacement, `<y_k - x_{k+1}, x_{k+1} - x_k> > 0`, the momentum is dropped
(`t_{k+1} = 1`, `y_{k+1} = x_{k+1}`), which keeps the fast rate without knowing
the strong convexity and stops the oscillations of FISTA without restarts.

The model's trainable variables hold `y_k` during a compiled call; `Fista` keeps
`x_k`, `t_k` and (between blocks of steps) `y_k` in variables of its own, tracked by the model (so they are part of
the state every backend's trainer threads). The functions here are pure: lists
of tensors in, lists out (`kreg._keras.repeat_train_step` reads and writes the
variables).
"""

import keras
import numpy as np
from keras import ops


class Fista:
    """The FISTA state for `trainable`: the last iterate `x_k` of each variable, the next
    point `y_k` the steps start from, and `t_k`.

    A compiled run of steps (a block) starts with `resume` (the weights := `y_k`), steps,
    then `pause` (`y_k` saved, the weights := `x_k`) before its last, plain step: that
    step probes the residual at `x_k`, and the next block's steps do not see it (they go
    on from the saved `y_k`), so the momentum runs across blocks and calls undisturbed.
    """

    def __init__(self, trainable):
        def copies(kind):
            return [keras.Variable(np.zeros(tuple(v.shape), dtype=v.dtype), dtype=v.dtype,
                                   trainable=False, name=f"kreg_fista_{kind}_{k}")
                    for k, v in enumerate(trainable)]

        self.previous = copies("previous")
        self.point = copies("point")
        self.t = keras.Variable(np.float32(1.0), dtype="float32", trainable=False,
                                name="kreg_fista_t")
        self.variables = self.previous + self.point + [self.t]
        self._n = len(trainable)

    def restart(self):
        """A fresh start from the weights the next call finds: `t = 0` flags it (`resume`
        then sets `x_k = y_k` = those weights and `t = 1`, inside the compiled call)."""
        self.t.assign(np.float32(0.0))

    def resume(self, weights, state):
        """`(the weights a run of steps starts from: y_k, state)`; `state` holds the values
        of `variables`, `weights` the current weights."""
        n = self._n
        t = state[-1]
        fresh = ops.equal(t, 0.0)
        point = [ops.where(fresh, w, y) for w, y in zip(weights, state[n: 2 * n])]
        previous = [ops.where(fresh, w, x) for w, x in zip(weights, state[:n])]
        t = ops.cast(ops.where(fresh, 1.0, t), "float32")
        return point, [*previous, *point, t]

    def step(self, y, x, state):
        """`(y_{k+1}, state_{k+1})` after the prox step from `y` (the values before it) gave `x`."""
        previous, t = state[: self._n], state[-1]
        direction = [ops.subtract(a, b) for a, b in zip(x, previous)]
        inner = sum(ops.sum(ops.cast(ops.subtract(a, b), "float32") * ops.cast(d, "float32"))
                    for a, b, d in zip(y, x, direction))
        restart = ops.greater(inner, 0.0)
        t_next = (1.0 + ops.sqrt(1.0 + 4.0 * ops.square(t))) / 2.0
        beta = ops.where(restart, 0.0, (t - 1.0) / t_next)
        t_new = ops.cast(ops.where(restart, 1.0, t_next), "float32")
        y_new = [ops.cast(ops.add(a, ops.cast(beta, a.dtype) * d), a.dtype)
                 for a, d in zip(x, direction)]
        return y_new, [*x, *state[self._n: 2 * self._n], t_new]

    def pause(self, y, state):
        """`(x_k, state with y_k = y)`: the weights the call's last (plain) step starts from."""
        return list(state[: self._n]), [*state[: self._n], *y, state[-1]]
