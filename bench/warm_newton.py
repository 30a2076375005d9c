"""Issue 13's warm-started group prox, measured (and not adopted): does it pay?

Under `kreg.Proximal` with a per-weight step (Adam), the group lasso's prox is
the root of a one-dimensional equation per group, solved by Newton's method from
a cold start in a fixed 5 steps (float32; `kreg._math._NEWTON_STEPS`), each a
pass over the kernel. The idea measured here: start each group from the norms
of its weights before the optimizer's update (after the last prox they *are*
its multipliers, `rho_g = ||y_g||`, and they move little between steps), and
stop as soon as every group has settled. Exactness must not suffer, so:

* each step is clamped to the cold start (which lies below the root); from a
  start above the root one Newton step lands below it (the tangent of a concave
  function lies above it), and below the root Newton's map is increasing, so
  after `k + 1` warm steps the iterate is never below the cold solve's after
  `k`: the loop runs until every group's last step moved it by at most 1e-4 of
  itself (float32), at most 6 steps;
* the loop is a data-dependent `while_loop`, the only way to skip work, and
  that control flow is what this measures against the saved passes.

Variants (784-512-512-10 MLP, batch 128, `GroupLasso(1e-4)` on both hidden
kernels, Adam(1e-3), the same batch at every step, 20 steps per execution
where the backend allows it, interleaved rounds):

* `adam`, `adam (twin)`: no penalty; the twin gives the noise floor;
* `cold`: `kreg.Proximal(Adam)` as shipped (5 Newton steps);
* `warm (while_loop)`: the warm start above, exact;
* `warm (2 steps, no check)`: two warm Newton steps and no test, *not exact in
  general* (measured only to show what the control flow costs).

After timing, `cold` and `warm (while_loop)` take one more step from the timed
`cold` model's weights and optimizer state, and their kernels are compared
(they must agree to float32 round-off).

    python -m bench.warm_newton                      # TensorFlow, jit off and on
    KERAS_BACKEND=jax python -m bench.warm_newton    # JAX (XLA)
    KERAS_BACKEND=torch python -m bench.warm_newton  # PyTorch (eager)

Results: BENCHMARKS.md, section 1, "Warm-started Newton".
"""

import argparse

import keras
import numpy as np
from keras import ops

import kreg
from kreg import _backend
from kreg import _math
from bench import common
from bench import overhead

SETTLED = 1e-4  # float32: the last step moved rho by at most this share of it
MAX_STEPS = 6  # one more than the cold solve's 5: never worse than it


def _newton_step(w, c, rho, lower, grouping):
    """One Newton step for `F(rho) = S(rho)^(-1/2) = 1`, clamped to `lower` (as kreg's)."""
    tiny = ops.cast(np.finfo(np.float32).tiny, w.dtype)
    inv = 1 / _math.maximum(grouping.expand(rho) + c, tiny)
    a = ops.square(w * inv)
    s = _math.maximum(grouping.group_sum(a), tiny)
    t = _math.maximum(grouping.group_sum(a * inv), tiny)
    return _math.maximum(rho - (s - s * ops.sqrt(s)) / t, lower)


def warm_group_prox(w, d, lam, grouping, previous, checked):
    """kreg's metric group prox (`_math._group_prox_metric`) from the start `previous`."""
    tiny = ops.cast(np.finfo(np.float32).tiny, w.dtype)
    keep = _math._greater_or_nan(
        grouping.group_sum(ops.square(w / _math.maximum(d, tiny))), ops.square(lam))
    c = d * grouping.expand(lam)
    lower = _math.positive_part(grouping.group_max(ops.abs(w) - c))
    usable = ops.logical_and(ops.greater(previous, 0), ops.isfinite(previous))
    rho = ops.where(usable, _math.maximum(previous, lower), lower)
    if checked:
        ignored = ops.logical_or(ops.logical_not(keep), ops.isnan(rho))

        def moving(rho, change, count):
            still = ops.logical_not(ops.logical_or(
                ops.less_equal(ops.abs(change), SETTLED * rho), ignored))
            return ops.logical_and(ops.less(count, MAX_STEPS), ops.any(still))

        def body(rho, change, count):
            new = _newton_step(w, c, rho, lower, grouping)
            return new, new - rho, count + 1

        rho, _, _ = ops.while_loop(
            moving, body, (rho, ops.full_like(rho, float("inf")), ops.convert_to_tensor(0)))
    else:
        for _ in range(2):
            rho = _newton_step(w, c, rho, lower, grouping)
    rho = grouping.expand(ops.where(keep, rho, 0))
    y = w * rho / _math.maximum(rho + c, tiny)
    return ops.where(grouping.expand(keep), y, ops.zeros_like(y))


class WarmProximal(kreg.Proximal):
    """`kreg.Proximal` whose GroupLasso prox starts from the group norms before the update."""

    def __init__(self, optimizer, checked=True):
        super().__init__(optimizer)
        self.checked = checked
        self._starts = []

    def apply(self, grads, trainable_variables=None):
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        self._starts = []
        for variable in variables:
            reg = kreg.regularizers.kreg_regularizer(variable)
            if isinstance(reg, kreg.GroupLasso):
                grouping = reg.grouping(reg._layout(variable))
                self._starts.append(grouping.group_norms(grouping.to_view(variable.value)))
        super().apply(grads, trainable_variables)

    def _prox(self, regularizer, w, step, layout, start=None):
        grouping = regularizer.grouping(layout)
        lam = ops.cast(grouping.sqrt_sizes, w.dtype) * ops.cast(regularizer.strength, w.dtype)
        d = grouping.to_view(ops.broadcast_to(step, grouping.shape))
        y = warm_group_prox(grouping.to_view(w), d, lam, grouping, self._starts.pop(0),
                            self.checked)
        return grouping.from_view(y)


VARIANTS = {
    "adam": (False, None),
    "adam (twin)": (False, None),
    "cold": (True, kreg.Proximal),
    "warm (while_loop)": (True, WarmProximal),
    "warm (2 steps, no check)": (True, lambda o: WarmProximal(o, checked=False)),
}


# The pools each backend runs: TensorFlow with and without XLA, JAX's jitted step,
# PyTorch's eager one.
JIT_COMPILE = {"tensorflow": (False, True), "jax": (True,), "torch": (False,)}


def _model(kind, spec, jit, block):
    penalised, wrapper = VARIANTS[kind]
    keras.utils.set_random_seed(0)
    model = overhead.build_mlp(spec, kreg.GroupLasso(1e-4) if penalised else None)
    optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer=wrapper(optimizer) if wrapper else optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit, steps_per_execution=_backend.steps_per_execution(block))
    return model


def pool(jit, rounds, quick=False):
    """Per-variant seconds per step over `rounds` interleaved rounds, and the exactness gap."""
    config = overhead.CONFIGS["quick" if quick else "full"]
    spec, warm, block = config["mlp"], config["warm"], config["block"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((spec["batch"], spec["inputs"])).astype("float32")
    y = rng.integers(0, spec["classes"], spec["batch"]).astype("int32")
    data = (np.tile(x, (warm + block, 1)), np.tile(y, warm + block))
    models, measures = {}, {}
    for kind in VARIANTS:
        model = models[kind] = _model(kind, spec, jit, block)
        model.fit(*data, batch_size=spec["batch"], epochs=1, verbose=0, shuffle=False)

        def measure(model=model):
            timer = overhead.BlockTimer(warm, block)
            model.fit(*data, batch_size=spec["batch"], epochs=1, verbose=0, shuffle=False,
                      callbacks=[timer])
            return timer.per_step()

        measures[kind] = measure
    samples = common.interleaved(measures, rounds)
    # Exactness: one more step from the cold model's weights and optimizer state
    # (mid-training second moments), under each solve.
    reference = models["cold"]
    kernels = {}
    for kind in ("cold", "warm (while_loop)"):
        model = _model(kind, spec, jit, block)
        model.optimizer.build(model.trainable_variables)
        model.set_weights(reference.get_weights())
        for mine, theirs in zip(model.optimizer.variables, reference.optimizer.variables):
            mine.assign(ops.convert_to_numpy(theirs))
        model.train_on_batch(x, y)
        kernels[kind] = [ops.convert_to_numpy(model.layers[i].kernel) for i in (0, 1)]
    gap = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
              for a, b in zip(kernels["warm (while_loop)"], kernels["cold"]))
    return samples, gap


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.warm_newton", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--quick", action="store_true", help="a tiny MLP, for a smoke test")
    args = p.parse_args(argv)
    backend = _backend.name()
    for jit in JIT_COMPILE[backend]:
        samples, gap = pool(jit, args.rounds, args.quick)
        base = np.median(samples["adam"])
        print(f"\n{backend}, jit_compile={jit}, {args.rounds} interleaved rounds; "
              f"median ms per step [quartiles], ratio to adam [quartiles of per-round ratios]")
        for kind, values in samples.items():
            per_round = np.asarray(values) / np.asarray(samples["adam"])
            print(f"  {kind:26s} {1e3 * np.median(values):7.2f} "
                  f"[{1e3 * np.percentile(values, 25):.2f}-{1e3 * np.percentile(values, 75):.2f}]"
                  f"  {np.median(values) / base:.3f} "
                  f"[{np.percentile(per_round, 25):.3f}-{np.percentile(per_round, 75):.3f}]")
        print(f"  warm (while_loop) vs cold, one step from the same state: largest kernel difference "
              f"{gap:.1e} of the largest weight")


if __name__ == "__main__":
    main()
