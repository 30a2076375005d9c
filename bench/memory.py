"""Memory: does a process that builds, trains and clears many kreg models grow more than Keras?

    python -m bench.memory [--models 60] [--rounds 3] [--out bench/results/memory.json]

Each measurement is a fresh Python process (CPU only: no GPU visible) that imports
Keras (and kreg where the variant uses it), then `--models` times in a row: builds
a small MLP (16 -> Dense(32, relu) -> Dense(10)), compiles it, calls `fit` twice
(64 random samples, batch 16, 2 epochs each), then `keras.backend.clear_session()`
and `gc.collect()`. It reports its resident set size from /proc/self/status
(`VmRSS`) after the imports, after each model, and at the end, and its peak
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, or `VmHWM` where that is higher: the
kernel updates the two at different moments).

Variants (both kernels carry the regularizer; strength 1e-3):

* `plain`: `keras.regularizers.L1` and `keras.optimizers.SGD(0.1)`; kreg not imported;
* `plain-twin`: the same as `plain`, a second copy: `plain-twin / plain` is the noise floor;
* `kreg`: `kreg.GroupLasso`, `kreg.Proximal(SGD(0.1))`, the
  `kreg.callbacks.SparsityMonitor()` callback, and one `kreg.proximal_step(model, 0.01)`
  after the fits;
* `kreg-l1`: `kreg.L1` and `kreg.Proximal(keras.optimizers.Adam())`;
* `plain-adam`: `keras.regularizers.L1` and `keras.optimizers.Adam()`, the baseline with
  kreg-l1's optimizer: Adam's slots and its larger train step cost memory of their own
  (most of what separates kreg-l1 from plain), so kreg-l1 is judged against this one.

The variants run interleaved (plain, plain-twin, kreg, kreg-l1, plain-adam, plain, ...)
for `--rounds` rounds and are compared by the median over rounds. The stated goal:
kreg's final RSS over 60 built-and-cleared models within 10% of plain Keras's with
the same optimizer (ratio <= 1.10; kreg-l1 / plain is printed too). The final RSS
includes what the imports take (several hundred MiB for TensorFlow); "growth" (final
minus after-imports) and the growth per model over the second half of the models (a
leak shows there as a steady slope) are reported beside it.

Not part of `python -m bench`'s default suite (one run is 5 x rounds processes,
about a minute each with 60 models on 2 cores) and not rendered into BENCHMARKS.md;
it writes its own JSON.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VARIANTS = ("plain", "plain-twin", "kreg", "kreg-l1", "plain-adam")
# (numerator, denominator, goal: final RSS ratio <= goal; None: reported, no goal)
COMPARISONS = (
    ("plain-twin", "plain", None),  # the noise floor
    ("kreg", "plain", 1.10),
    ("kreg-l1", "plain-adam", 1.10),  # the same optimizer
    ("kreg-l1", "plain", None),
    ("plain-adam", "plain", None),  # what Adam itself costs
)
GOAL = 1.10  # kreg's final RSS / plain's
STRENGTH = 1e-3
RESULT_PREFIX = "MEMORY_RESULT "


# ---------------------------------------------------------------------------------------
# the worker: one fresh process, one variant, N models


def _vm_kib(field):
    """A `Vm...` line of /proc/self/status, in KiB (None where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # "VmRSS:   123456 kB"
    except OSError:
        pass
    return None


def _maxrss_kib():
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def worker(variant, models):
    import gc
    import time

    import keras
    import numpy as np

    use_kreg = variant.startswith("kreg")
    if use_kreg:
        import kreg

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16)).astype("float32")
    y = rng.integers(0, 10, size=64)
    gc.collect()
    after_imports = _vm_kib("VmRSS")

    def one_model():
        if variant in ("plain", "plain-twin"):
            make_reg = lambda: keras.regularizers.L1(STRENGTH)  # noqa: E731
            optimizer = keras.optimizers.SGD(0.1)
        elif variant == "plain-adam":
            make_reg = lambda: keras.regularizers.L1(STRENGTH)  # noqa: E731
            optimizer = keras.optimizers.Adam()
        elif variant == "kreg":
            make_reg = lambda: kreg.GroupLasso(STRENGTH)  # noqa: E731
            optimizer = kreg.Proximal(keras.optimizers.SGD(0.1))
        elif variant == "kreg-l1":
            make_reg = lambda: kreg.L1(STRENGTH)  # noqa: E731
            optimizer = kreg.Proximal(keras.optimizers.Adam())
        else:
            raise ValueError(f"unknown variant {variant!r}")
        model = keras.Sequential([
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu", kernel_regularizer=make_reg()),
            keras.layers.Dense(10, kernel_regularizer=make_reg()),
        ])
        model.compile(optimizer,
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        callbacks = [kreg.callbacks.SparsityMonitor()] if variant == "kreg" else []
        for _ in range(2):
            model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=callbacks)
        if variant == "kreg":
            kreg.proximal_step(model, 0.01)

    per_model = []
    start = time.perf_counter()
    for _ in range(models):
        one_model()
        keras.backend.clear_session()
        gc.collect()
        per_model.append(_vm_kib("VmRSS"))
    seconds = time.perf_counter() - start
    result = {
        "variant": variant,
        "models": models,
        "rss_after_imports_kib": after_imports,
        "rss_per_model_kib": per_model,
        "final_rss_kib": _vm_kib("VmRSS"),
        # ru_maxrss and VmHWM are both the high-water mark, updated at different moments
        "ru_maxrss_kib": _maxrss_kib(),
        "vm_hwm_kib": _vm_kib("VmHWM"),
        "seconds": seconds,
    }
    result["peak_rss_kib"] = max(k for k in (result["ru_maxrss_kib"], result["vm_hwm_kib"]) if k)
    return result


# ---------------------------------------------------------------------------------------
# the driver: interleaved fresh processes, medians, ratios, JSON


def measure(variant, models, timeout):
    """Runs one worker process and returns its result dict."""
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = "-1"  # CPU only, as `python -m bench` without --gpu
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--worker", variant, "--models", str(models)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {variant!r} worker failed (exit {done.returncode}):\n"
                           f"{done.stderr[-4000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def _mib(kib):
    return kib / 1024.0


def _slope_kib_per_model(rss):
    """Least-squares slope of RSS over the second half of the models (KiB per model)."""
    import numpy as np

    half = np.asarray(rss[len(rss) // 2:], dtype="float64")
    if half.size < 2:
        return 0.0
    return float(np.polyfit(np.arange(half.size), half, 1)[0])


def summarize(raw):
    """Per-variant summaries and the COMPARISONS ratios, from the raw worker results."""
    from bench import common

    keys = ("final_rss_mib", "peak_rss_mib", "growth_mib", "slope_kib_per_model")
    samples = {key: {v: [] for v in raw} for key in keys}
    for variant, runs in raw.items():
        for r in runs:
            samples["final_rss_mib"][variant].append(_mib(r["final_rss_kib"]))
            samples["peak_rss_mib"][variant].append(_mib(r["peak_rss_kib"]))
            samples["growth_mib"][variant].append(
                _mib(r["final_rss_kib"] - r["rss_after_imports_kib"]))
            samples["slope_kib_per_model"][variant].append(
                _slope_kib_per_model(r["rss_per_model_kib"]))
    variants = {}
    for variant in raw:
        variants[variant] = {
            "final_rss_mib": common.summarize(samples["final_rss_mib"][variant]),
            "peak_rss_mib": common.summarize(samples["peak_rss_mib"][variant]),
            "growth_mib": common.mean_std(samples["growth_mib"][variant]),
            "slope_second_half_kib_per_model": common.mean_std(
                samples["slope_kib_per_model"][variant]),
            "seconds": common.mean_std([r["seconds"] for r in raw[variant]]),
        }
    comparisons = []
    for numerator, denominator, goal in COMPARISONS:
        c = {**common.ratio(samples["final_rss_mib"], numerator, denominator),
             "measure": "final_rss", "goal": goal}
        c["met"] = None if goal is None else bool(c["ratio"] <= goal)
        c["peak_ratio"] = common.ratio(samples["peak_rss_mib"], numerator, denominator)["ratio"]
        comparisons.append(c)
    return variants, comparisons, samples


def table(variants, comparisons):
    noise = next(c for c in comparisons if c["numerator"] == "plain-twin")
    rows = [f"{'variant':<11} {'final MiB':>10} {'peak MiB':>9} {'growth MiB':>11} "
            f"{'KiB/model':>10}",
            "-" * 55]
    for name, v in variants.items():
        rows.append(
            f"{name:<11} {v['final_rss_mib']['median']:>10.1f} "
            f"{v['peak_rss_mib']['median']:>9.1f} {v['growth_mib']['mean']:>11.1f} "
            f"{v['slope_second_half_kib_per_model']['mean']:>10.1f}")
    rows += ["", f"{'final RSS ratio':<24} {'median':>7} {'per-round q1-q3':>16} "
             f"{'noise (twin/plain)':>19}  goal", "-" * 82]
    for c in comparisons:
        goal = "" if c["goal"] is None else (
            f"<= {c['goal']:.2f} {'met' if c['met'] else 'NOT met'}")
        floor = "" if c is noise else f"{noise['ratio']:.3f}"
        rows.append(f"{c['numerator'] + ' / ' + c['denominator']:<24} {c['ratio']:>7.3f} "
                    f"{c['per_round_q1']:>7.3f}-{c['per_round_q3']:<8.3f} {floor:>19}  {goal}")
    return "\n".join(rows)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench.memory",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=60,
                   help="models built, trained and cleared per process (default 60)")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds of the four variants (default 3, at least 2)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "memory.json"),
                   help="the JSON to write (default bench/results/memory.json)")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.models < 1:
        p.error(f"argument --models: expected a positive integer. Received: {args.models}")
    if args.rounds < 2:
        p.error(f"argument --rounds: expected at least 2. Received: {args.rounds}")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(args.worker, args.models)), flush=True)
        return

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # also for this process's machine_info
    from bench import common

    start = common.now()
    raw = {v: [] for v in VARIANTS}
    timeout = 120 + 10 * args.models
    for k in range(args.rounds):
        for variant in VARIANTS:
            r = measure(variant, args.models, timeout)
            raw[variant].append(r)
            common.log(f"[memory] round {k + 1}/{args.rounds} {variant:<10} "
                       f"final {_mib(r['final_rss_kib']):7.1f} MiB, "
                       f"peak {_mib(r['peak_rss_kib']):7.1f} MiB, {r['seconds']:.0f} s")
    variants, comparisons, samples = summarize(raw)
    command = " ".join(["python -m bench.memory", *argv])
    result = {
        "meta": {**common.machine_info(command, "CPU"), "seconds": common.now() - start},
        "config": {"models": args.models, "rounds": args.rounds, "variants": list(VARIANTS),
                   "comparisons": [list(c) for c in COMPARISONS],
                   "strength": STRENGTH, "model": "16 -> Dense(32, relu) -> Dense(10)",
                   "fit": "2 calls x 2 epochs, 64 samples, batch 16",
                   "goal": f"final RSS kreg / plain <= {GOAL}"},
        "variants": variants,
        "comparisons": comparisons,
        "samples": samples,
        "raw": raw,
    }
    common.write_json(args.out, result)
    print(f"RSS after {args.models} models built, trained and cleared per process, "
          f"median of {args.rounds} interleaved rounds (CPU); growth = final - after imports, "
          f"KiB/model = slope over the second half:")
    print(table(variants, comparisons))
    common.log(f"[memory] {result['meta']['seconds']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
