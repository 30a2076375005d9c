"""`python -m bench.paths`: `kreg.regularization_path` and `kreg.cross_validate` against scikit-learn.

Data: scikit-learn's diabetes (442 x 10), X standardised, y centred, no bias;
`Dense(1, use_bias=False)`, `"mse"`, `kreg.L1`, `SGD(1 / L)` with `L = 2/n *
lambda_max(X^T X)`; the grid is kreg's default (30 strengths from `strength_max`
down by `eps = 1e-3`), scikit-learn gets `alphas = strengths / 2` (the same problems).

* Path: kreg at `tol = 1e-7` (the residual tolerance at which every coefficient is
  within 1e-4 of the largest coefficient of the exact path, the goal's accuracy;
  the achieved accuracy is reported) against `lasso_path` at its default `tol=1e-4`
  (accuracy reported too). `kreg warm` walks the path on an already compiled
  clone (the weights reset to zero first) with FISTA's steps (the default): the
  cost of a path once Keras has traced the step; `kreg warm (twin)` is a second,
  identical compiled clone, so `twin / warm` is the noise floor; `kreg warm,
  plain` is the same with `accelerate=False` (proximal gradient steps); `kreg
  cold` is the whole `kreg.regularization_path` call, clone, compile and XLA
  compilation included. Interleaved rounds (warm, twin, plain, sklearn, cold,
  warm, ...), medians compared.
* Cross-validation: `kreg.cross_validate(build, x, y, cv=KFold(5))` (whole call)
  against `LassoCV(alphas, cv=KFold(5), fit_intercept=False)`, interleaved.
* Where the time goes: steps and compiled calls of one warm path (FISTA and
  plain), the measured cost of one step and of one call, the evaluation per strength.
* Warm starts on a non-linear model: a digits MLP (64-32-10, ReLU,
  `GroupLasso(groups="units")` on both hidden kernels), 20 strengths: total epochs
  of the warm-started path against 20 independent fits from the same initial
  weights, both to the same tolerance.

Results: bench/results/paths.json and the section between the PATHS markers of
BENCHMARKS.md.
"""

import argparse
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BEGIN = "<!-- BEGIN PATHS: python -m bench.paths rewrites everything down to END PATHS -->"
END = "<!-- END PATHS -->"
TOL = 1e-7
MLP_LR = 1e-2
MLP_STRENGTHS = (3e-3, 3e-5)

CONFIGS = {
    "full": {"strengths": 30, "rounds": 7, "sklearn_calls": 5, "cv_rounds": 3,
             "mlp_strengths": 20, "mlp_max_epochs": 2000, "mlp_tol": 1e-3},
    "quick": {"strengths": 5, "rounds": 2, "sklearn_calls": 1, "cv_rounds": 1,
              "mlp_strengths": 3, "mlp_max_epochs": 100, "mlp_tol": 1e-2},
}


def diabetes():
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    return x, y - y.mean()


def build_linear(x):
    import keras
    import numpy as np

    import kreg

    n, p = x.shape
    lipschitz = 2.0 / n * np.linalg.eigvalsh(x.T @ x).max()
    model = keras.Sequential([keras.Input((p,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros", kernel_regularizer=kreg.L1(0.0))])
    model.compile(optimizer=keras.optimizers.SGD(1.0 / lipschitz), loss="mse")
    return model


def _accuracy(coefs, ref):
    import numpy as np

    return {"max_coef_diff_relative": float(np.abs(coefs - ref).max() / np.abs(ref).max()),
            "same_zeros_strengths": int(np.sum(np.all((coefs == 0) == (ref == 0), axis=1)))}


class Prepared:
    """A compiled clone ready to walk the path (what `regularization_path` builds first)."""

    def __init__(self, model, x, y, count, accelerate=None):
        from kreg import paths

        self.model = model
        (self.indices, _, _, _, self.tol, self.max_epochs, self.data,
         self.trainer) = paths._prepare(model, x, y, None, None, count, 1e-3, None, TOL,
                                        100_000, None, accelerate)
        self.strengths, self.scale, self.top = paths._grid(
            model, self.trainer, self.data, self.indices, None, count, 1e-3)

    def walk(self, evaluate=True):
        from kreg import paths

        self.trainer.reset(self.model.get_weights())
        return paths._walk(self.model, self.trainer, self.data, self.strengths, validation=None,
                           tol=self.tol, max_epochs=self.max_epochs, callbacks=[],
                           gradient_scale=self.scale, strength_max_value=self.top,
                           indices=self.indices, evaluate=evaluate)


def lasso_part(cfg):
    import numpy as np
    from sklearn.linear_model import lasso_path

    import kreg
    from bench import common

    x, y = diabetes()
    model = build_linear(x)
    warm, twin = Prepared(model, x, y, cfg["strengths"]), Prepared(model, x, y, cfg["strengths"])
    plain = Prepared(model, x, y, cfg["strengths"], accelerate=False)
    alphas = warm.strengths / 2
    _, ref, _ = lasso_path(x, y, alphas=alphas, tol=1e-12, max_iter=1_000_000)
    ref = ref.T
    path = warm.walk()
    twin.walk()
    plain_path = plain.walk()

    def time_warm(prepared):
        def measure():
            start = common.now()
            prepared.walk()
            return common.now() - start
        return measure

    def sklearn():
        start = common.now()
        for _ in range(cfg["sklearn_calls"]):
            lasso_path(x, y, alphas=alphas)
        return (common.now() - start) / cfg["sklearn_calls"]

    def cold():
        start = common.now()
        kreg.regularization_path(model, x, y, n_strengths=cfg["strengths"], tol=TOL,
                                 max_epochs=100_000)
        return common.now() - start

    samples = common.interleaved({"kreg warm": time_warm(warm), "kreg warm (twin)":
                                  time_warm(twin), "kreg warm, plain": time_warm(plain),
                                  "sklearn lasso_path": sklearn, "kreg cold": cold},
                                 cfg["rounds"])
    _, sk_coefs, _ = lasso_path(x, y, alphas=alphas)

    # where the time goes, on the warm clones
    def breakdown(prepared, name):
        trainer = prepared.trainer
        calls_before = trainer.calls
        start = common.now()
        walked = prepared.walk(evaluate=False)
        walk_no_eval = common.now() - start
        calls = trainer.calls - calls_before
        # steps without the early stop (a negative threshold is never reached)
        trainer.threshold.assign(-1.0)
        per = {}
        for count in (1, 1024):
            trainer.run(prepared.data, count)
            start = common.now()
            for _ in range(20):
                trainer.run(prepared.data, count)
            per[count] = (common.now() - start) / 20
        trainer.threshold.assign(trainer._threshold)
        step = (per[1024] - per[1]) / 1023
        call = per[1] - step
        epochs = int(walked.epochs.sum())
        return {
            "epochs": epochs, "compiled_calls": calls, "step_seconds": step,
            "call_seconds": call, "steps_total_seconds": epochs * step,
            "calls_total_seconds": calls * call, "walk_without_evaluation_seconds": walk_no_eval,
            "evaluation_seconds": float(np.median(samples[name])) - walk_no_eval,
            "epochs_per_strength": walked.epochs.tolist(),
        }

    return {
        "config": {"strengths": cfg["strengths"], "tol": TOL, "samples": int(x.shape[0]),
                   "features": int(x.shape[1]), "strength_max": float(warm.top),
                   "learning_rate": float(warm.trainer.learning_rate), "rounds": cfg["rounds"],
                   "jit_compile": bool(warm.trainer.model.jit_compile)},
        "samples": samples,
        "seconds": {k: common.summarize(v) for k, v in samples.items()},
        "ratios": {
            "warm_vs_sklearn": common.ratio(samples, "kreg warm", "sklearn lasso_path"),
            "plain_vs_sklearn": common.ratio(samples, "kreg warm, plain", "sklearn lasso_path"),
            "plain_vs_warm": common.ratio(samples, "kreg warm, plain", "kreg warm"),
            "cold_vs_sklearn": common.ratio(samples, "kreg cold", "sklearn lasso_path"),
            "noise_floor": common.ratio(samples, "kreg warm (twin)", "kreg warm"),
        },
        "accuracy": {"kreg": _accuracy(path.weights()[:, :, 0], ref),
                     "kreg_plain": _accuracy(plain_path.weights()[:, :, 0], ref),
                     "sklearn_default_tol": _accuracy(sk_coefs.T, ref),
                     "kreg_converged": int(path.converged.sum()),
                     "kreg_plain_converged": int(plain_path.converged.sum())},
        "breakdown": breakdown(warm, "kreg warm"),
        "breakdown_plain": breakdown(plain, "kreg warm, plain"),
    }


def cv_part(cfg):
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold

    import kreg
    from bench import common

    x, y = diabetes()
    folds = KFold(5)
    holder = {}

    def run_kreg():
        start = common.now()
        holder["cv"] = kreg.cross_validate(lambda: build_linear(x), x, y, cv=folds,
                                           n_strengths=cfg["strengths"], tol=TOL,
                                           max_epochs=100_000)
        return common.now() - start

    def run_sklearn():
        start = common.now()
        holder["ref"] = LassoCV(alphas=holder["cv"].strengths / 2, cv=folds,
                                fit_intercept=False).fit(x, y)
        return common.now() - start

    run_kreg()
    samples = common.interleaved({"kreg cross_validate": run_kreg, "LassoCV": run_sklearn},
                                 cfg["cv_rounds"])
    cv, ref = holder["cv"], holder["ref"]
    return {
        "samples": samples,
        "seconds": {k: common.summarize(v) for k, v in samples.items()},
        "ratio": common.ratio(samples, "kreg cross_validate", "LassoCV"),
        "best_strength": {"kreg": cv.best_strength, "LassoCV_times_2": 2 * float(ref.alpha_)},
        "one_se_strength": cv.one_se_strength,
    }


def mlp_part(cfg):
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    import kreg
    from bench import common
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, val = order[:1347], order[1347:]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu",
                           kernel_regularizer=kreg.GroupLasso(0.0, groups="units")),
        keras.layers.Dense(32, activation="relu",
                           kernel_regularizer=kreg.GroupLasso(0.0, groups="units")),
        keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(MLP_LR), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    strengths = np.geomspace(MLP_STRENGTHS[0], MLP_STRENGTHS[1], cfg["mlp_strengths"])
    start = common.now()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = kreg.regularization_path(model, x[train], y[train], strengths,
                                        validation_data=(x[val], y[val]), tol=cfg["mlp_tol"],
                                        max_epochs=cfg["mlp_max_epochs"])
    warm_seconds = common.now() - start
    # independent fits: every strength from the model's initial weights, fresh optimizer
    start = common.now()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        independent = kreg.regularization_path(
            model, x[train], y[train], strengths, validation_data=(x[val], y[val]),
            tol=cfg["mlp_tol"], max_epochs=cfg["mlp_max_epochs"], warm_start=False)
    independent_seconds = common.now() - start
    cold_epochs = independent.epochs.tolist()
    cold_converged = independent.converged.tolist()
    def hidden_units(result):  # hidden units kept (of 64) at each strength
        return [sum(kept for kept, _ in list(kreg.unit_counts(result.model_at(s)).values())[:2])
                for s in result.strengths]

    units = hidden_units(path)
    return {
        "config": {"strengths": strengths.tolist(), "tol": cfg["mlp_tol"],
                   "max_epochs": cfg["mlp_max_epochs"], "optimizer": f"Adam({MLP_LR})"},
        "warm": {"epochs": path.epochs.tolist(), "converged": int(path.converged.sum()),
                 "seconds": warm_seconds, "val_accuracy": path.metrics["val_accuracy"].tolist(),
                 "sparsity": path.sparsity.tolist(), "hidden_units_kept": units},
        "independent": {"epochs": cold_epochs, "converged": int(sum(cold_converged)),
                        "seconds": independent_seconds,
                        "val_accuracy": independent.metrics["val_accuracy"].tolist(),
                        "hidden_units_kept": hidden_units(independent),
                        "sparsity": independent.sparsity.tolist()},
        "epoch_ratio": float(sum(cold_epochs) / max(path.epochs.sum(), 1)),
    }


def run(quick):
    cfg = CONFIGS["quick" if quick else "full"]
    from bench import common

    common.log("  paths: lasso path")
    lasso = lasso_part(cfg)
    common.log("  paths: cross-validation")
    cv = cv_part(cfg)
    common.log("  paths: digits MLP")
    mlp = mlp_part(cfg)
    return {"lasso_path": lasso, "cross_validation": cv, "mlp": mlp}


def _fmt_s(summary):
    return f"{summary['median'] * 1e3:.1f} ms"


def render(result):
    meta = result["meta"]
    lasso, cv, mlp = result["lasso_path"], result["cross_validation"], result["mlp"]
    r = lasso["ratios"]
    b = lasso["breakdown"]
    bp = lasso["breakdown_plain"]
    rest = (b["walk_without_evaluation_seconds"] - b["steps_total_seconds"]
            - b["calls_total_seconds"])
    acc = lasso["accuracy"]
    lines = [BEGIN, "", "## 7. Regularization paths and cross-validation (`kreg.regularization_path`, "
             "`kreg.cross_validate`)", "",
             f"`{meta['command']}`, {meta['date']}, {meta['device']}: {meta['cpu']}, "
             f"{meta['cores']} cores; TensorFlow {meta['tensorflow']}, Keras {meta['keras']}, "
             f"scikit-learn {meta['scikit-learn']} (git {meta['git']}); took "
             f"{meta['seconds']:.0f} s. Method: `bench/paths.py` docstring.", "",
             f"Diabetes lasso path, {lasso['config']['strengths']} strengths, kreg at "
             f"tol={lasso['config']['tol']:g} (FISTA: max coefficient error "
             f"{acc['kreg']['max_coef_diff_relative']:.1e} of the largest, same zeros at "
             f"{acc['kreg']['same_zeros_strengths']}/{lasso['config']['strengths']} strengths, "
             f"{acc['kreg_converged']} converged; plain: "
             f"{acc['kreg_plain']['max_coef_diff_relative']:.1e}, same zeros at "
             f"{acc['kreg_plain']['same_zeros_strengths']}, {acc['kreg_plain_converged']} "
             f"converged), `lasso_path` at its default tol=1e-4 "
             f"(error {acc['sklearn_default_tol']['max_coef_diff_relative']:.1e}, same zeros at "
             f"{acc['sklearn_default_tol']['same_zeros_strengths']}); "
             f"{lasso['config']['rounds']} interleaved rounds, medians:", "",
             "| variant | median | ratio to sklearn | goal |", "|---|---|---|---|"]
    s = lasso["seconds"]
    sk = s["sklearn lasso_path"]["median"]
    for name in ("kreg warm", "kreg warm (twin)", "kreg warm, plain", "kreg cold",
                 "sklearn lasso_path"):
        goal = ""
        if name == "kreg warm":
            goal = "<= 30x: " + ("met" if r["warm_vs_sklearn"]["ratio"] <= 30 else "**missed**")
        if name == "kreg cold":
            goal = "<= 30x: " + ("met" if r["cold_vs_sklearn"]["ratio"] <= 30 else "**missed**")
        label = {"kreg warm": "kreg warm (FISTA, the default)",
                 "kreg warm (twin)": "kreg warm (FISTA, twin clone)",
                 "kreg warm, plain": "kreg warm, plain (`accelerate=False`)"}.get(name, name)
        lines.append(f"| {label} | {_fmt_s(s[name])} | {s[name]['median'] / sk:.0f}x | {goal} |")
    lines += ["", f"Noise floor (twin / warm): {r['noise_floor']['ratio']:.2f} (per-round "
              f"quartiles {r['noise_floor']['per_round_q1']:.2f}-"
              f"{r['noise_floor']['per_round_q3']:.2f}).", "",
              f"Plain / FISTA: {r['plain_vs_warm']['ratio']:.1f}x (per-round quartiles "
              f"{r['plain_vs_warm']['per_round_q1']:.1f}-{r['plain_vs_warm']['per_round_q3']:.1f})."
              f" Steps over the path: FISTA {b['epochs']}, plain {bp['epochs']} "
              f"({bp['epochs'] / max(b['epochs'], 1):.1f}x).", "",
              f"Where a warm FISTA path's time goes: {b['epochs']} full-batch steps at "
              f"{b['step_seconds'] * 1e6:.1f} us = {b['steps_total_seconds'] * 1e3:.0f} ms; "
              f"{b['compiled_calls']} compiled calls (each checks the residual every 16 steps "
              f"and returns once it passes) at "
              f"{b['call_seconds'] * 1e3:.2f} ms = {b['calls_total_seconds'] * 1e3:.0f} ms; "
              f"the rest of the walk without evaluation (strength and momentum resets, "
              f"snapshots, sparsity) "
              f"{rest * 1e3:.0f} ms; "
              f"train metrics per strength (`test_on_batch`) {b['evaluation_seconds'] * 1e3:.0f} "
              f"ms. Plain: {bp['epochs']} steps at {bp['step_seconds'] * 1e6:.1f} us = "
              f"{bp['steps_total_seconds'] * 1e3:.0f} ms, {bp['compiled_calls']} calls. "
              f"The cold call adds the clone, `compile` and the XLA compilation of the "
              f"step and of the test step: "
              f"{(s['kreg cold']['median'] - s['kreg warm']['median']) * 1e3:.0f} ms.", "",
              f"5-fold cross-validation (`KFold(5)`, {lasso['config']['strengths']} strengths): "
              f"kreg {_fmt_s(cv['seconds']['kreg cross_validate'])}, LassoCV "
              f"{_fmt_s(cv['seconds']['LassoCV'])}: **{cv['ratio']['ratio']:.0f}x** (goal <= 30x: "
              f"{'met' if cv['ratio']['ratio'] <= 30 else '**missed**'}); best strength kreg "
              f"{cv['best_strength']['kreg']:.4g}, LassoCV (x2) "
              f"{cv['best_strength']['LassoCV_times_2']:.4g}; one-SE strength "
              f"{cv['one_se_strength']:.4g}.", "",
              f"Digits MLP (64-32-10, group lasso on the units of both hidden layers), "
              f"{len(mlp['config']['strengths'])} strengths from "
              f"{mlp['config']['strengths'][0]:.0e} to {mlp['config']['strengths'][-1]:.0e}, "
              f"{mlp['config']['optimizer']}, tol={mlp['config']['tol']:g} (relative change of "
              f"the objective), at most {mlp['config']['max_epochs']} epochs each: the "
              f"warm-started path took {sum(mlp['warm']['epochs'])} epochs "
              f"({mlp['warm']['converged']} strengths converged, {mlp['warm']['seconds']:.1f} s), "
              f"{len(mlp['config']['strengths'])} independent fits (`warm_start=False`) "
              f"{sum(mlp['independent']['epochs'])} epochs ({mlp['independent']['converged']} "
              f"converged, {mlp['independent']['seconds']:.1f} s): epoch ratio "
              f"{mlp['epoch_ratio']:.1f}x.", "",
              "| strength | warm: hidden units kept (of 64) | warm: val accuracy | "
              "independent: units | independent: val accuracy |", "|---|---|---|---|---|"]
    for k in range(0, len(mlp["config"]["strengths"]), 4):
        lines.append(
            f"| {mlp['config']['strengths'][k]:.2e} | {mlp['warm']['hidden_units_kept'][k]} | "
            f"{mlp['warm']['val_accuracy'][k]:.3f} | "
            f"{mlp['independent']['hidden_units_kept'][k]} | "
            f"{mlp['independent']['val_accuracy'][k]:.3f} |")
    lines += ["", END]
    return "\n".join(lines)


def update_markdown(path, text):
    with open(path) as f:
        current = f.read()
    if BEGIN in current and END in current:
        new = current[:current.index(BEGIN)] + text + current[current.index(END) + len(END):]
    else:
        new = current.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(new)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.paths",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny run of every code path")
    p.add_argument("--out", default=None, help="JSON path (default: bench/results/paths.json; "
                   "bench/results/quick.tmp/paths.json with --quick)")
    p.add_argument("--markdown", default=None, help="BENCHMARKS.md to update (default: the "
                   "repository's, except with --quick)")
    p.add_argument("--report", action="store_true", help="only re-render from the JSON")
    args = p.parse_args(argv)
    from bench.__main__ import setup_environment

    out = args.out or os.path.join(HERE, "results", *(("quick.tmp",) if args.quick else ()),
                                   "paths.json")
    markdown = args.markdown or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    device = setup_environment(False)
    from bench import common

    if not args.report:
        start = common.now()
        result = run(args.quick)
        command = " ".join(["python -m bench.paths", *argv])
        result = {"meta": {**common.machine_info(command, device),
                           "seconds": common.now() - start}, **result}
        common.write_json(out, result)
        common.log(f"[bench.paths] -> {out}")
    result = common.read_json(out)
    text = render(result)
    print(text)
    if markdown:
        update_markdown(markdown, text)
        common.log(f"[bench.paths] wrote {markdown}")


if __name__ == "__main__":
    main()
