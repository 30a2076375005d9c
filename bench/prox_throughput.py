"""Part 2: `kreg.proximal_step` throughput against a fused copy of the same variables.

For each size N the weights are one float32 Dense kernel of N entries (square,
`sqrt(N) x sqrt(N)`) in a one-layer model. The reference is the cheapest pass
that reads and writes every weight once, `v.assign(v * c)` for all variables in
one `tf.function` (c = 1.0 passed as a tensor, so nothing folds it away), timed
both as traced by TensorFlow and compiled by XLA; the ratio is taken against the
faster of the two. Both
move 8 bytes per weight (4 read, 4 written): GB/s = 8 N / seconds per call.
The prox's strength is tiny (1e-9 with step 1) so the weights stay what they
are from round to round (the work of an elementwise pass does not depend on the
values, but subnormal numbers would).
"""

import keras
import numpy as np
import tensorflow as tf

import kreg
from bench import common

CONFIGS = {
    "full": {"sizes": (2**20, 2**22, 2**24, 2**26), "rounds": 7, "block_bytes": 2**30},
    "quick": {"sizes": (2**12, 2**14), "rounds": 2, "block_bytes": 2**20},
}

# The reference pass, traced by TensorFlow and compiled by XLA; a ratio's goal is
# judged against the faster of the two (proximal_step itself is XLA-compiled).
COPIES = {"fused copy (tf.function)": False, "fused copy (XLA)": True}

REFERENCE = "reference: column norms + scale, plain TF (XLA)"

REGULARIZERS = {
    "kreg.L1": lambda: kreg.L1(1e-9),
    "kreg.GroupLasso(units)": lambda: kreg.GroupLasso(1e-9, "units"),
}


def _model(n, reg):
    side = int(round(np.sqrt(n)))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((side,)),
        keras.layers.Dense(side, use_bias=False, kernel_regularizer=reg),
    ])
    return model


def _timed(fn, calls):
    def measure():
        start = common.now()
        for _ in range(calls):
            out = fn()
        _sync(out)
        return (common.now() - start) / calls
    return measure


def _sync(variables):
    # reading one element waits for every pending write of the variable (GPU runs async)
    for v in variables:
        np.asarray(v.value[0, 0] if len(v.shape) == 2 else v.value)


def _size(n, cfg):
    calls = max(2, int(cfg["block_bytes"] // (8 * n)))
    copy_model = _model(n, None)
    copy_vars = copy_model.trainable_variables
    scale = tf.constant(1.0, dtype="float32")
    measures = {}
    for label, jit in COPIES.items():
        @tf.function(jit_compile=jit)
        def fused_copy(c):
            for v in copy_vars:
                v.assign(v * c)

        def copy_call(fused_copy=fused_copy):
            fused_copy(scale)
            return copy_vars

        measures[label] = _timed(copy_call, calls)
    for name, factory in REGULARIZERS.items():
        model = _model(n, factory())

        def prox_call(model=model):
            kreg.proximal_step(model, 1.0)
            return model.trainable_variables

        measures[f"proximal_step {name}"] = _timed(prox_call, calls)
    # A diagnostic, not kreg: the least a units group prox must do (a column norm, then a
    # scale of every weight) written directly in TensorFlow and compiled by XLA.
    ref_vars = _model(n, None).trainable_variables

    @tf.function(jit_compile=True)
    def block_shrink(c):
        for v in ref_vars:
            norms = tf.sqrt(tf.reduce_sum(tf.square(v), axis=0))
            v.assign(v * (tf.maximum(norms - c, 0.0) / norms))

    threshold = tf.constant(1e-9, dtype="float32")

    def reference_call():
        block_shrink(threshold)
        return ref_vars

    measures[REFERENCE] = _timed(reference_call, calls)
    for measure in measures.values():
        measure()  # warm-up: tracing and first touch of the memory
    common.log(f"  prox N={n}: {len(measures)} variants x {cfg['rounds']} rounds "
               f"of {calls} calls")
    samples = common.interleaved(measures, cfg["rounds"])
    nbytes = 8 * n
    rows = {}
    for name, s in samples.items():
        seconds = common.summarize(s)
        rows[name] = {"seconds": seconds, "gb_per_s": nbytes / seconds["median"] / 1e9}
    fastest_copy = min(COPIES, key=lambda c: rows[c]["seconds"]["median"])
    comparisons = []
    for name in REGULARIZERS:
        key = f"proximal_step {name}"
        # throughput(prox) / throughput(copy) = time(copy) / time(prox)
        r = common.ratio(samples, fastest_copy, key)
        r.update(goal=0.5, met=bool(r["ratio"] >= 0.5), throughput_of=key)
        comparisons.append(r)
    reference = common.ratio(samples, fastest_copy, REFERENCE)
    reference.update(goal=None, met=None, throughput_of=REFERENCE)
    comparisons.append(reference)
    return {"weights": n, "bytes_per_call": nbytes, "calls_per_block": calls,
            "variants": rows, "samples": samples, "comparisons": comparisons}


def run(quick):
    cfg = CONFIGS["quick" if quick else "full"]
    return {
        "config": {"sizes": list(cfg["sizes"]), "rounds": cfg["rounds"],
                   "dtype": "float32", "step_size": 1.0,
                   "bytes": "8 per weight per call (one read, one write)"},
        "sizes": [_size(n, cfg) for n in cfg["sizes"]],
    }
