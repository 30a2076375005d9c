"""What a live kreg strength costs per training step, on the backend `KERAS_BACKEND` names.

    KERAS_BACKEND=jax python -m bench.backends [--rounds 15]

The same 784-512-512-10 MLP (batch 256, compiled train step, SGD) with three
regularizations, timed interleaved (A, B, C, D, A, B, ...) on one process:

* `keras`: `keras.regularizers.L1(1e-4)` on both hidden kernels (a constant strength);
* `kreg`: `kreg.L1(1e-4)` (a live strength: under JAX's jit it is read through
  `jax.pure_callback` every step, see kreg/_backend.py);
* `kreg twin`: an identical second `kreg` model (the noise floor of the ratio);
* `kreg proximal`: `kreg.L1` under `kreg.Proximal(SGD)`.

Prints the median step time of each and the ratios to `keras`, with quartiles of
the per-round ratios. BENCHMARKS.md, section "Backends", records one run per backend.
"""

import argparse
import json
import os
import sys
import time

import numpy as np


def build(kind):
    import keras

    import kreg

    reg = (lambda: keras.regularizers.L1(1e-4)) if kind == "keras" else (lambda: kreg.L1(1e-4))
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(512, activation="relu", kernel_regularizer=reg()),
        keras.layers.Dense(512, activation="relu", kernel_regularizer=reg()),
        keras.layers.Dense(10),
    ])
    optimizer = keras.optimizers.SGD(0.01)
    if kind == "kreg proximal":
        optimizer = kreg.Proximal(optimizer)
    steps = 1 if keras.backend.backend() == "torch" else 20
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps, jit_compile="auto")
    return model, steps


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=40, help="train steps per measurement")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256 * args.steps, 784)).astype("float32")
    y = rng.integers(0, 10, size=256 * args.steps)
    kinds = ["keras", "kreg", "kreg twin", "kreg proximal"]
    models = {}
    for kind in kinds:
        keras.utils.set_random_seed(0)
        models[kind] = build(kind.replace(" twin", ""))[0]
        models[kind].fit(x, y, batch_size=256, epochs=1, verbose=0)  # compile, warm up
    samples = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            start = time.perf_counter()
            models[kind].fit(x, y, batch_size=256, epochs=1, verbose=0, shuffle=False)
            samples[kind].append((time.perf_counter() - start) / args.steps)
    base = np.asarray(samples["keras"])
    result = {"backend": keras.backend.backend(), "rounds": args.rounds, "steps": args.steps,
              "ms_per_step": {k: 1e3 * float(np.median(v)) for k, v in samples.items()},
              "ratio_to_keras": {}}
    print(f"backend {result['backend']}, 784-512-512-10 MLP, batch 256, median of "
          f"{args.rounds} interleaved rounds of {args.steps} steps")
    print(f"{'':<16} {'ms/step':>8} {'/ keras':>8} {'quartiles of per-round ratios':>32}")
    for kind in kinds:
        r = np.asarray(samples[kind]) / base
        result["ratio_to_keras"][kind] = {
            "median": float(np.median(samples[kind]) / np.median(base)),
            "q1": float(np.percentile(r, 25)), "q3": float(np.percentile(r, 75))}
        q = result["ratio_to_keras"][kind]
        print(f"{kind:<16} {result['ms_per_step'][kind]:8.2f} {q['median']:8.3f} "
              f"{q['q1']:15.3f} .. {q['q3']:.3f}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
