"""`python -m bench.cv_costs`: where 5-fold cross-validation's time goes, on each backend.

The problem of `bench.paths` (diabetes, 442 x 10, `Dense(1, use_bias=False)`, `"mse"`,
`kreg.L1`, `SGD(1 / L)`, 30 strengths from `strength_max` down by `eps=1e-3`, kreg at
`tol=1e-7`), the whole `kreg.cross_validate(build, x, y, cv=KFold(5))` call against
`LassoCV(alphas=strengths / 2, cv=KFold(5), fit_intercept=False)`, in one fresh process
per backend (`KERAS_BACKEND` = tensorflow, jax, torch), CPU only:

* *cold path*: the first `kreg.regularization_path` call of the process (clone, compile,
  tracing and compilation included);
* *first CV call*: the process's first `cross_validate(build, ...)` (its clone traced and
  compiled);
* *CV call*: then `--rounds` interleaved rounds of: `cross_validate(build, ...)` again
  (the same callable: the compiled clone of the call before is reused, see
  `kreg._path_cache`), *twin* (the same with `build_twin`, an identical callable with a
  clone of its own: twin / CV call is the noise floor), *new `build_model`* (a new
  `lambda` per call, as when the builder is written in the call: nothing to reuse) and
  `LassoCV`; medians compared, and the held-out scores of the three kreg variants
  checked for equality;
* *where it goes*: one more call reusing its clone, its parts clocked (kreg internals
  wrapped by this script, outermost call only): the compiled calls of the train function,
  the test function (the refit's train metrics), the held-out scoring (one compiled
  call per fold and strength, `PathTrainer.held_out_score`, and the model called to
  build the refit's model), `build_model()`, and the rest (Python between strengths:
  strengths, snapshots, sparsity, the per-fold gradient bound's bookkeeping, the reuse
  check, result objects).

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
PARTS = ("compiled calls", "test function", "held-out scoring", "build_model", "rest")


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
    from kreg import _keras, _path_fit

    x, y = diabetes()
    folds = KFold(5)
    start = time.perf_counter()
    path = kreg.regularization_path(build_linear(x), x, y, n_strengths=n_strengths, tol=TOL,
                                    max_epochs=100_000)
    cold_path = time.perf_counter() - start
    holder = {}

    def build():
        return build_linear(x)

    def build_twin():  # the same model from another callable: a compiled clone of its own
        return build_linear(x)

    def run(builder, key="cv"):
        def measure():
            start = time.perf_counter()
            holder[key] = kreg.cross_validate(builder(), x, y, cv=folds,
                                              n_strengths=n_strengths, tol=TOL,
                                              max_epochs=100_000)
            return time.perf_counter() - start
        return measure

    def run_sklearn():
        start = time.perf_counter()
        holder["ref"] = LassoCV(alphas=holder["cv"].strengths / 2, cv=folds,
                                fit_intercept=False).fit(x, y)
        return time.perf_counter() - start

    first_cv = run(lambda: build)()  # the process's first CV call: clone, trace, compile
    run(lambda: build_twin, "twin")()
    run_sklearn()
    samples = common.interleaved({
        "kreg": run(lambda: build),
        "kreg (twin)": run(lambda: build_twin, "twin"),
        # a new callable per call (`lambda: build_linear(x)` written in the call): nothing to
        # reuse, every call clones, traces and compiles
        "kreg, new build_model": run(lambda: (lambda: build_linear(x)), "new"),
        "LassoCV": run_sklearn}, rounds)
    same = bool(np.array_equal(holder["cv"].scores, holder["new"].scores)
                and np.array_equal(holder["cv"].scores, holder["twin"].scores))

    clock = Clock()
    clock.wrap(_keras, "train_on_full_batch", "train")
    clock.wrap(keras.Model, "test_on_batch", "test")
    clock.wrap(keras.Model, "__call__", "held-out scoring")
    clock.wrap(_path_fit.PathTrainer, "held_out_score", "held-out scoring")
    built = {"seconds": 0.0, "calls": 0}

    def timed_build():
        start = time.perf_counter()
        model = build_linear(x)
        built["seconds"] += time.perf_counter() - start
        built["calls"] += 1
        return model

    # the clocked call reuses the clone of this one, as the rounds' "kreg" calls do
    kreg.cross_validate(timed_build, x, y, cv=folds, n_strengths=n_strengths, tol=TOL,
                        max_epochs=100_000)
    clock.seconds, clock.calls, clock.first = {}, {}, {}
    built.update(seconds=0.0, calls=0)
    start = time.perf_counter()
    cv = kreg.cross_validate(timed_build, x, y, cv=folds, n_strengths=n_strengths, tol=TOL,
                             max_epochs=100_000)
    total = time.perf_counter() - start
    parts = {
        "compiled calls": clock.seconds["train"],
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
        "first_cv_seconds": first_cv,
        "same_scores_every_variant": same,
        "path_steps": int(np.sum(path.epochs)),
        "seconds": {k: common.summarize(v) for k, v in samples.items()},
        "ratio": common.ratio(samples, "kreg", "LassoCV"),
        "noise_floor": common.ratio(samples, "kreg (twin)", "kreg"),
        "new_builder_ratio": common.ratio(samples, "kreg, new build_model", "LassoCV"),
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
             "medians of interleaved rounds. *CV call*: `cross_validate(build, ...)` again "
             "with the same `build`, which reuses the compiled clone of the call before; "
             "*twin*: the same with another, identical callable (the noise floor); *new "
             "`build_model`*: a new callable per call, so every call clones, traces and "
             "compiles; *first CV call*: the process's first.", "",
             "| backend | CV call | LassoCV | ratio (per-round quartiles) | goal <= 30x | "
             "twin / CV call | new `build_model` each call | first CV call | cold path call | "
             "steps in a CV call |", "|---" * 10 + "|"]
    for backend, r in rows.items():
        ratio, noise, new = r["ratio"], r["noise_floor"], r["new_builder_ratio"]
        lines.append(
            f"| {backend} {r['meta']['backend_version']} | "
            f"{r['seconds']['kreg']['median'] * 1e3:.0f} ms | "
            f"{r['seconds']['LassoCV']['median'] * 1e3:.1f} ms | {ratio['ratio']:.0f}x "
            f"({ratio['per_round_q1']:.0f}-{ratio['per_round_q3']:.0f}) | "
            f"{'met' if ratio['ratio'] <= 30 else '**missed**'} | "
            f"{noise['ratio']:.2f} ({noise['per_round_q1']:.2f}-{noise['per_round_q3']:.2f}) | "
            f"{r['seconds']['kreg, new build_model']['median'] * 1e3:.0f} ms = "
            f"{new['ratio']:.0f}x | {r['first_cv_seconds']:.2f} s | "
            f"{r['cold_path_seconds']:.2f} s | {r['steps']} |")
    lines += ["", "One more CV call per backend (reusing its clone), its parts clocked "
              "(seconds; calls in brackets):", "",
              "| backend | total | " + " | ".join(PARTS) + " | compiled calls / LassoCV |",
              "|---" * (len(PARTS) + 3) + "|"]
    for backend, r in rows.items():
        p = r["parts_seconds"]
        calls = {"compiled calls": r["compiled_calls"], "test function":
                 r["test_calls"], "held-out scoring": r["scoring_calls"],
                 "build_model": r["build_calls"]}
        cells = [f"{p[k]:.3f}" + (f" ({calls[k]})" if k in calls else "") for k in PARTS]
        lines.append(f"| {backend} | {r['clocked_total_seconds']:.3f} | " + " | ".join(cells)
                     + f" | {p['compiled calls'] / r['seconds']['LassoCV']['median']:.0f}x |")
    same = all(abs(r["best_strength"]["kreg"] - r["best_strength"]["LassoCV_times_2"])
               <= 1e-6 * r["best_strength"]["kreg"] for r in rows.values())
    identical = all(r["same_scores_every_variant"] for r in rows.values())
    lines += ["", "Best strength: " + "; ".join(
        f"{b} {r['best_strength']['kreg']:.4g} (LassoCV x2 "
        f"{r['best_strength']['LassoCV_times_2']:.4g})" for b, r in rows.items())
        + (" (the same as LassoCV's on every backend)." if same else "."),
        "Held-out scores of the reusing, twin and new-callable calls: " +
        ("identical (bit for bit) on every backend." if identical else
         "**not identical** on " + ", ".join(b for b, r in rows.items()
                                            if not r["same_scores_every_variant"]) + "."),
        "", END]
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
