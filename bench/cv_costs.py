"""`python -m bench.cv_costs`: where 5-fold cross-validation's time goes, on each backend.

The problem of `bench.paths` (diabetes, 442 x 10, `Dense(1, use_bias=False)`, `"mse"`,
`kreg.L1`, `SGD(1 / L)`, 30 strengths from `strength_max` down by `eps=1e-3`, kreg at
`tol=1e-7`), the whole `kreg.cross_validate(build, x, y, cv=KFold(5))` call against
`LassoCV(alphas=strengths / 2, cv=KFold(5), fit_intercept=False)`, in one fresh process
per backend (`KERAS_BACKEND` = tensorflow, jax, torch), CPU only:

* *cold path*: the first `kreg.regularization_path` call of the process (clone, compile,
  tracing and compilation included);
* *CV*: one warm-up call, then `--rounds` interleaved rounds (kreg, LassoCV, kreg, ...),
  medians compared;
* *where it goes*: one more call with its parts clocked (kreg internals wrapped by this
  script, outermost call only): the first compiled call of the train function (on
  TensorFlow and JAX its trace and XLA compilation; on PyTorch, which runs eagerly, a
  call like the others), the other compiled calls, the first and other calls of the
  test function (the refit's train metrics), the held-out scoring (the model called
  outside any compiled call: on each fold's held-out rows once per strength, and a few
  times to build the refit's model), `build_model()`, and the rest
  (Python between strengths: strengths, snapshots, sparsity, the per-fold gradient
  bound's bookkeeping, result objects);
* *floor*: the first compiled call plus the other compiled calls, i.e. what the design
  (one compiled call per fold and strength, one trace per process) costs even with
  every other part at zero.

Results: bench/results/cv_costs.json and the section between the CV COSTS markers of
BENCHMARKS.md.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BEGIN = "<!-- BEGIN CV COSTS: python -m bench.cv_costs rewrites everything down to END CV COSTS -->"
END = "<!-- END CV COSTS -->"
DEFAULT_MARKDOWN = os.path.join(ROOT, "BENCHMARKS.md")
BACKENDS = ("tensorflow", "jax", "torch")
PARTS = ("first compiled call", "other compiled calls", "test function", "held-out scoring",
         "build_model", "rest")


class Clock:
    """Wraps functions so that each outermost call adds its duration under a label."""

    def __init__(self):
        self.seconds, self.calls, self.first = {}, {}, {}
        self._depth = 0

    def wrap(self, owner, name, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            if self._depth:
                return original(*args, **kwargs)
            self._depth += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._depth -= 1
                self.first.setdefault(label, elapsed)
                self.seconds[label] = self.seconds.get(label, 0.0) + elapsed
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, name, timed)
        return original


def child(rounds, n_strengths):
    """Runs in a process of its own (the backend is `KERAS_BACKEND`); prints one JSON line."""
    import keras
    import numpy as np
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold

    import kreg
    from bench import common
    from bench.paths import TOL, build_linear, diabetes
    from kreg import _keras

    x, y = diabetes()
    folds = KFold(5)
    start = time.perf_counter()
    path = kreg.regularization_path(build_linear(x), x, y, n_strengths=n_strengths, tol=TOL,
                                    max_epochs=100_000)
    cold_path = time.perf_counter() - start
    holder = {}

    def build():
        return build_linear(x)

    def run_kreg():
        start = time.perf_counter()
        holder["cv"] = kreg.cross_validate(build, x, y, cv=folds, n_strengths=n_strengths,
                                           tol=TOL, max_epochs=100_000)
        return time.perf_counter() - start

    def run_sklearn():
        start = time.perf_counter()
        holder["ref"] = LassoCV(alphas=holder["cv"].strengths / 2, cv=folds,
                                fit_intercept=False).fit(x, y)
        return time.perf_counter() - start

    run_kreg()
    run_sklearn()
    samples = common.interleaved({"kreg": run_kreg, "LassoCV": run_sklearn}, rounds)

    clock = Clock()
    clock.wrap(_keras, "train_on_full_batch", "train")
    clock.wrap(keras.Model, "test_on_batch", "test")
    clock.wrap(keras.Model, "__call__", "held-out scoring")
    built = {"seconds": 0.0, "calls": 0}

    def timed_build():
        start = time.perf_counter()
        model = build_linear(x)
        built["seconds"] += time.perf_counter() - start
        built["calls"] += 1
        return model

    start = time.perf_counter()
    cv = kreg.cross_validate(timed_build, x, y, cv=folds, n_strengths=n_strengths, tol=TOL,
                             max_epochs=100_000)
    total = time.perf_counter() - start
    parts = {
        "first compiled call": clock.first["train"],
        "other compiled calls": clock.seconds["train"] - clock.first["train"],
        "test function": clock.seconds.get("test", 0.0),
        "held-out scoring": clock.seconds.get("held-out scoring", 0.0),
        "build_model": built["seconds"],
    }
    parts["rest"] = total - sum(parts.values())
    ref = holder["ref"]
    steps = int(sum(int(np.sum(p.epochs)) for p in cv.paths) + np.sum(cv.path.epochs))
    print("CV_COSTS " + json.dumps({
        "meta": common.machine_info("python -m bench.cv_costs", "CPU"),
        "rounds": rounds,
        "strengths": n_strengths,
        "samples": samples,
        "cold_path_seconds": cold_path,
        "path_steps": int(np.sum(path.epochs)),
        "seconds": {k: common.summarize(v) for k, v in samples.items()},
        "ratio": common.ratio(samples, "kreg", "LassoCV"),
        "clocked_total_seconds": total,
        "parts_seconds": parts,
        "compiled_calls": clock.calls["train"],
        "test_calls": clock.calls.get("test", 0),
        "scoring_calls": clock.calls.get("held-out scoring", 0),
        "build_calls": built["calls"],
        "steps": steps,
        "best_strength": {"kreg": cv.best_strength, "LassoCV_times_2": 2 * float(ref.alpha_)},
        "one_se_strength": cv.one_se_strength,
    }), flush=True)


def measure(backend, rounds, n_strengths):
    env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="",
               TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "bench.cv_costs", "--child", "--rounds", str(rounds),
               "--strengths", str(n_strengths)]
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("CV_COSTS "):
            return json.loads(line[len("CV_COSTS "):])
    raise SystemExit(f"bench.cv_costs: the {backend} process failed:\n{out.stderr[-4000:]}")


def render(result):
    rows = result["backends"]
    first = next(iter(rows.values()))["meta"]
    lines = [BEGIN, "", "### Cross-validation on each backend, and where its time goes", "",
             f"`{result['command']}`, {result['date']}, CPU: {first['cpu']}, {first['cores']} "
             f"cores; Keras {first['keras']}, scikit-learn {first['scikit-learn']} (git "
             f"{first['git']}); took {result['seconds']:.0f} s. Method: `bench/cv_costs.py` "
             f"docstring. {first_strengths(rows)} strengths, one fresh process per backend; "
             "medians of interleaved rounds.", "",
             "| backend | CV call | LassoCV | ratio (per-round quartiles) | goal <= 30x | "
             "cold path call | steps in a CV call |", "|---|---|---|---|---|---|---|"]
    for backend, r in rows.items():
        ratio = r["ratio"]
        lines.append(
            f"| {backend} {r['meta']['backend_version']} | "
            f"{r['seconds']['kreg']['median'] * 1e3:.0f} ms | "
            f"{r['seconds']['LassoCV']['median'] * 1e3:.1f} ms | {ratio['ratio']:.0f}x "
            f"({ratio['per_round_q1']:.0f}-{ratio['per_round_q3']:.0f}) | "
            f"{'met' if ratio['ratio'] <= 30 else '**missed**'} | "
            f"{r['cold_path_seconds']:.2f} s | {r['steps']} |")
    lines += ["", "One more call per backend, its parts clocked (seconds; calls in brackets):",
              "", "| backend | total | " + " | ".join(PARTS) + " | floor (first + other "
              "compiled calls) | floor / LassoCV |", "|---" * (len(PARTS) + 4) + "|"]
    for backend, r in rows.items():
        p = r["parts_seconds"]
        calls = {"other compiled calls": r["compiled_calls"] - 1, "test function":
                 r["test_calls"], "held-out scoring": r["scoring_calls"],
                 "build_model": r["build_calls"]}
        cells = [f"{p[k]:.3f}" + (f" ({calls[k]})" if k in calls else "") for k in PARTS]
        floor = p["first compiled call"] + p["other compiled calls"]
        lines.append(f"| {backend} | {r['clocked_total_seconds']:.3f} | " + " | ".join(cells)
                     + f" | {floor:.3f} | "
                     f"{floor / r['seconds']['LassoCV']['median']:.0f}x |")
    same = all(abs(r["best_strength"]["kreg"] - r["best_strength"]["LassoCV_times_2"])
               <= 1e-6 * r["best_strength"]["kreg"] for r in rows.values())
    lines += ["", "Best strength: " + "; ".join(
        f"{b} {r['best_strength']['kreg']:.4g} (LassoCV x2 "
        f"{r['best_strength']['LassoCV_times_2']:.4g})" for b, r in rows.items())
        + (" (the same as LassoCV's on every backend)." if same else "."), "", END]
    return "\n".join(lines)


def first_strengths(rows):
    return next(iter(rows.values()))["strengths"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.cv_costs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (PyTorch: "
                        "at most 2, a call takes about 25 s there)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated, of tensorflow, jax, torch")
    parser.add_argument("--out", default=None, help="JSON path (default: "
                        "bench/results/cv_costs.json; bench/results/quick.tmp/cv_costs.json "
                        "with --quick)")
    parser.add_argument("--markdown", default=DEFAULT_MARKDOWN,
                        help="BENCHMARKS.md to update ('' for none)")
    parser.add_argument("--report", action="store_true", help="only re-render from the JSON")
    parser.add_argument("--strengths", type=int, default=30, help="strengths in the grid")
    parser.add_argument("--quick", action="store_true", help="a tiny run of every code path "
                        "(5 strengths, 1 round; nothing written to BENCHMARKS.md unless "
                        "--markdown names a file)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.rounds, args.strengths)
    if args.quick:
        args.rounds, args.strengths = 1, 5
        if args.markdown == DEFAULT_MARKDOWN:
            args.markdown = ""
    args.out = args.out or os.path.join(HERE, "results", *(("quick.tmp",) if args.quick else ()),
                                        "cv_costs.json")
    import datetime

    from bench import common

    if not args.report:
        backends = [b for b in args.backends.split(",") if b]
        unknown = sorted(set(backends) - set(BACKENDS))
        if unknown:
            parser.error(f"--backends: expected names among {', '.join(BACKENDS)}; "
                         f"received {', '.join(unknown)}")
        start = time.perf_counter()
        rows = {}
        for backend in backends:
            common.log(f"[bench.cv_costs] {backend} ...")
            rows[backend] = measure(backend, min(args.rounds, 2) if backend == "torch"
                                    else args.rounds, args.strengths)
        common.write_json(args.out, {
            "command": " ".join(["python -m bench.cv_costs", *argv]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": time.perf_counter() - start, "backends": rows})
    text = render(common.read_json(args.out))
    print(text)
    if args.markdown:
        common.write_section(args.markdown, BEGIN, END, text, after="<!-- END PATHS -->")


if __name__ == "__main__":
    main()
