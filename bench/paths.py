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
  cold` is the whole `kreg.regularization_path` call on a new model, clone, compile
  and XLA compilation included; `kreg again` is the whole call again on the same model,
  which reuses the compiled clone of its earlier calls (`kreg._path_cache`).
  Interleaved rounds (warm, twin, plain, sklearn, cold, again, warm, ...), medians
  compared.
* Cross-validation: `kreg.cross_validate(build, x, y, cv=KFold(5))` (whole call, the
  same `build` every call: after the first, the compiled clone is reused) against
  `LassoCV(alphas, cv=KFold(5), fit_intercept=False)`, interleaved.
* Where the time goes: steps and compiled calls of one warm path (FISTA and
  plain), the measured cost of one step and of one call, the evaluation per strength.
* Warm starts on a non-linear model: a digits MLP (64-32-32-10, ReLU,
  `GroupLasso(groups="units")` on both hidden kernels; 1347 training, 450 validation
  images), 20 strengths from 5e-3 (few hidden units kept) down to 3e-5,
  `kreg.Proximal(SGD(0.05))`, full batch: total epochs of the warm-started path
  (`warm_start="auto"`) against 20 independent fits (`warm_start=False`, every strength
  from the same initial weights), to the same tolerance and budget, with plain proximal
  gradient steps (`accelerate=False`, the measurement: at this learning rate they
  decrease the objective) and with FISTA (the default for SGD, whose extrapolation need
  not decrease it on a non-convex model). With SGD the criterion is the
  proximal-gradient residual; with every hidden kernel penalised the loss gradient at
  zero penalised weights is 0, so the engine scales the residual by 1 (`tol` is
  absolute). The setup before, full-batch Adam(0.01) at a constant rate with the
  relative change of the objective as the criterion, measured nothing: 0 of 20 strengths
  converged within 2000 epochs, warm or independent (Adam keeps moving the weights by
  about its learning rate per step). Where the time goes, per call: the setup until the
  walk begins and the end of every strength, clocked in the call by a callback; per
  strength the work besides steps (the metrics, a compiled call, the Python between
  strengths: strength, snapshot, sparsity, reset) measured on a compiled clone of its
  own; the cost of an epoch from the strengths after the first, and the first
  strength's extra (the test function's compilation). Warm and independent objectives,
  units and accuracies are compared strength by strength.

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
MLP_LR = 0.05
MLP_STRENGTHS = (5e-3, 3e-5)

CONFIGS = {
    "full": {"strengths": 30, "rounds": 7, "sklearn_calls": 5, "cv_rounds": 3,
             "mlp_strengths": 20, "mlp_max_epochs": 10_000, "mlp_tol": 2e-2, "mlp_repeats": 5},
    "quick": {"strengths": 5, "rounds": 2, "sklearn_calls": 1, "cv_rounds": 1,
              "mlp_strengths": 3, "mlp_max_epochs": 200, "mlp_tol": 2e-2, "mlp_repeats": 2},
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

        self.trainer.start_from(self.model.get_weights())
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

    def cold():  # a new model each time: nothing to reuse
        fresh = build_linear(x)
        start = common.now()
        kreg.regularization_path(fresh, x, y, n_strengths=cfg["strengths"], tol=TOL,
                                 max_epochs=100_000)
        return common.now() - start

    def again():  # the public call on the same model: reuses its compiled clone
        start = common.now()
        kreg.regularization_path(model, x, y, n_strengths=cfg["strengths"], tol=TOL,
                                 max_epochs=100_000)
        return common.now() - start

    again()
    samples = common.interleaved({"kreg warm": time_warm(warm), "kreg warm (twin)":
                                  time_warm(twin), "kreg warm, plain": time_warm(plain),
                                  "sklearn lasso_path": sklearn, "kreg cold": cold,
                                  "kreg again": again}, cfg["rounds"])
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
            "again_vs_sklearn": common.ratio(samples, "kreg again", "sklearn lasso_path"),
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

    def build():
        return build_linear(x)

    def run_kreg():  # the same `build` every call: the compiled clone is reused
        start = common.now()
        holder["cv"] = kreg.cross_validate(build, x, y, cv=folds,
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


def digits_mlp():
    """`(model, (x_train, y_train), (x_val, y_val))`: the digits MLP, compiled with
    `kreg.Proximal(SGD(MLP_LR))`, always with the same initial weights."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    import kreg

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
    model.compile(optimizer=kreg.Proximal(keras.optimizers.SGD(MLP_LR)), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, (x[train], y[train]), (x[val], y[val])


def _finite(values):
    """JSON-safe floats: None for NaN or infinity (a criterion of a diverged strength)."""
    import numpy as np

    return [float(v) if np.isfinite(v) else None for v in values]


def mlp_path(model, train, val, strengths, cfg, accelerate, warm_start):
    """One `kreg.regularization_path` call (clone, compile and all), timed, with the wall
    clock when the walk begins (the setup done: clone, `compile`, the train function traced
    and compiled by the step for the gradient at zero) and at the end of every strength."""
    import keras

    import kreg
    from bench import common

    stamps = {"begin": None, "strengths": []}

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            stamps["begin"] = common.now()

        def on_epoch_end(self, epoch, logs=None):  # one "epoch" per strength
            stamps["strengths"].append(common.now())

    start = common.now()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence is reported from `converged`
        path = kreg.regularization_path(
            model, *train, strengths, validation_data=val, tol=cfg["mlp_tol"],
            max_epochs=cfg["mlp_max_epochs"], warm_start=warm_start, accelerate=accelerate,
            callbacks=[Clock()])
    seconds = common.now() - start
    ends = stamps["strengths"]
    units = [sum(kept for kept, _ in list(kreg.unit_counts(path.model_at(s)).values())[:2])
             for s in path.strengths]  # hidden units kept (of 64) at each strength
    return {
        "epochs": path.epochs.tolist(), "converged": int(path.converged.sum()),
        "converged_per_strength": path.converged.tolist(),
        "criterion": _finite(path.criterion), "seconds": seconds,
        "setup_seconds": stamps["begin"] - start,
        "strength_seconds": [b - a for a, b in zip([stamps["begin"], *ends[:-1]], ends)],
        "after_last_strength_seconds": start + seconds - ends[-1],
        "objective": path.metrics["loss"].tolist(), "accuracy": path.metrics["accuracy"].tolist(),
        "val_accuracy": path.metrics["val_accuracy"].tolist(),
        "sparsity": path.sparsity.tolist(), "hidden_units_kept": units,
    }


def mlp_costs(model, train, val, strengths, cfg, accelerate, repeats):
    """What a path call spends besides its steps, measured on a compiled clone of its own
    (the steady costs: medians of `repeats`): the first train and validation metrics (the
    test function traced and compiled for each data shape) less a steady pair; per strength
    the train and validation metrics (two `test_on_batch`), a compiled call, the new
    strength and the momentum's restart, the weights' snapshot and the sparsity, and (for
    independent fits) the reset to the initial weights; and one full-batch step (calls of
    1024 steps against calls of 1, the fastest of `repeats`: the least disturbed by other
    processes)."""
    import numpy as np

    from bench import common
    from kreg import paths

    indices, strengths, _, _, tol, max_epochs, data, trainer = paths._prepare(
        model, *train, None, strengths, len(strengths), 1e-3, None, cfg["mlp_tol"],
        cfg["mlp_max_epochs"], None, accelerate)
    paths._grid(model, trainer, data, indices, strengths, len(strengths), 1e-3)
    validation = paths._data(*val, None)
    initial = trainer.snapshot()

    def timed(fn):
        begin = common.now()
        fn()
        return common.now() - begin

    def median(fn):
        return float(np.median([timed(fn) for _ in range(repeats)]))

    def evaluation():
        paths._evaluate(trainer, data, "")
        paths._evaluate(trainer, validation, "val_")

    first_evaluation = timed(evaluation)
    evaluation_seconds = median(evaluation)
    strength = float(strengths[len(strengths) // 2])
    costs = {
        "repeats": repeats, "first_evaluation_seconds": first_evaluation - evaluation_seconds,
        "evaluation_seconds": evaluation_seconds,
        "begin_strength_seconds": median(lambda: trainer.begin_strength(strength)),
        "snapshot_sparsity_seconds": median(lambda: paths._sparsity(trainer.snapshot(),
                                                                    indices)),
        "reset_seconds": median(lambda: trainer.reset(initial)),
    }
    trainer.begin_strength(strength)
    trainer.threshold.assign(-1.0)  # never reached: every call runs all its steps
    per = {}
    for count in (1, 1024):
        trainer.run(data, count)
        per[count] = min(timed(lambda: trainer.run(data, count)) for _ in range(repeats))
    step = (per[1024] - per[1]) / 1023
    return {**costs, "step_seconds": step, "call_seconds": per[1] - step}


def _time_split(result, costs, independent):
    """A path call's seconds: the setup (measured in the call: until the walk begins); per
    strength the work besides steps, measured on the clone: the Python part (strength,
    snapshot, sparsity, the reset of independent fits) and the compiled metrics and call;
    the steps: the strengths after the first, less that work, give the cost of an epoch in
    the call, times every epoch; the first strength's extra: its time less its steps and
    that work (the test function traced and compiled for the training and the validation
    data); the tail after the last strength (the result's assembly)."""
    n = len(result["epochs"])
    python = costs["begin_strength_seconds"] + costs["snapshot_sparsity_seconds"]
    reset = costs["reset_seconds"] if independent else 0.0  # before every strength but the first
    compiled = costs["evaluation_seconds"] + costs["call_seconds"]
    times, epochs = result["strength_seconds"], result["epochs"]
    later = sum(times[1:]) - (n - 1) * (python + reset + compiled)
    epoch = later / sum(epochs[1:]) if n > 1 else costs["step_seconds"]
    first_extra = times[0] - python - compiled - epochs[0] * epoch
    return {"setup": result["setup_seconds"], "first_strength_extra": first_extra,
            "python": n * python + (n - 1) * reset, "compiled": n * compiled,
            "steps": sum(epochs) * epoch, "epoch_seconds_in_call": epoch,
            "tail": result["after_last_strength_seconds"]}


def _compare(warm, independent):
    """Warm-started path against independent fits, strength by strength."""
    import numpy as np

    w, i = np.asarray(warm["objective"]), np.asarray(independent["objective"])
    diff = w - i
    k = int(np.argmax(np.abs(diff)))
    rel = np.abs(diff) / np.minimum(w, i)
    r = int(np.argmax(rel))
    units = np.asarray(warm["hidden_units_kept"]) - np.asarray(independent["hidden_units_kept"])
    u = int(np.argmax(np.abs(units)))
    acc = np.asarray(warm["val_accuracy"]) - np.asarray(independent["val_accuracy"])
    a = int(np.argmax(np.abs(acc)))
    return {
        "warm_objective_lower": int(np.sum(diff < 0)), "warm_objective_higher": int(np.sum(
            diff > 0)),
        "largest_objective_difference": {"index": k, "warm": float(w[k]),
                                         "independent": float(i[k])},
        "largest_relative_objective_difference": {"index": r, "warm": float(w[r]),
                                                  "independent": float(i[r]),
                                                  "relative": float(rel[r])},
        "largest_units_difference": {"index": u, "warm": int(warm["hidden_units_kept"][u]),
                                     "independent": int(independent["hidden_units_kept"][u])},
        "largest_val_accuracy_difference": {"index": a, "warm": float(warm["val_accuracy"][a]),
                                            "independent": float(
                                                independent["val_accuracy"][a])},
    }


def mlp_part(cfg):
    import numpy as np

    from bench import common

    model, train, val = digits_mlp()
    strengths = np.geomspace(MLP_STRENGTHS[0], MLP_STRENGTHS[1], cfg["mlp_strengths"])
    load_before = os.getloadavg()[0]  # other processes on the machine slow every timing here
    variants = {}
    # plain proximal gradient first (the measurement, and the default for a network), then
    # FISTA (accelerate=True; the default with SGD before this measurement)
    for name, accelerate in (("plain", False), ("fista", True)):
        common.log(f"  paths: digits MLP, {name}: warm path")
        warm = mlp_path(model, train, val, strengths, cfg, accelerate, "auto")
        common.log(f"  paths: digits MLP, {name}: independent fits")
        independent = mlp_path(model, train, val, strengths, cfg, accelerate, False)
        costs = mlp_costs(model, train, val, strengths, cfg, accelerate, cfg["mlp_repeats"])
        warm["time_split"] = _time_split(warm, costs, False)
        independent["time_split"] = _time_split(independent, costs, True)
        variants[name] = {
            "warm": warm, "independent": independent, "costs": costs,
            "comparison": _compare(warm, independent),
            "epoch_ratio": float(sum(independent["epochs"]) / max(sum(warm["epochs"]), 1)),
        }
    plain = variants["plain"]
    return {
        "config": {"strengths": strengths.tolist(), "tol": cfg["mlp_tol"],
                   "max_epochs": cfg["mlp_max_epochs"],
                   "optimizer": f"kreg.Proximal(SGD({MLP_LR}))", "learning_rate": MLP_LR,
                   "train_samples": int(len(train[1])), "val_samples": int(len(val[1]))},
        # the measurement: plain proximal gradient steps (`accelerate=False`)
        "warm": plain["warm"], "independent": plain["independent"], "costs": plain["costs"],
        "comparison": plain["comparison"], "epoch_ratio": plain["epoch_ratio"],
        "fista": variants["fista"],
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }


PARTS = {"lasso": ("lasso_path", "lasso path"), "cv": ("cross_validation", "cross-validation"),
         "mlp": ("mlp", "digits MLP")}


def run(quick, parts=tuple(PARTS)):
    cfg = CONFIGS["quick" if quick else "full"]
    from bench import common

    functions = {"lasso": lasso_part, "cv": cv_part, "mlp": mlp_part}
    result = {}
    for part in parts:
        key, label = PARTS[part]
        common.log(f"  paths: {label}")
        result[key] = functions[part](cfg)
    return result


def _fmt_s(summary):
    return f"{summary['median'] * 1e3:.1f} ms"


def _part_meta(part):
    """A sentence naming the run that measured `part` when it was measured on its own
    (`--only`), else ""."""
    meta = part.get("meta")
    if not meta:
        return ""
    return (f" Measured on its own: `{meta['command']}`, {meta['date']}, {meta['device']}: "
            f"{meta['cpu']}, {meta['cores']} cores; TensorFlow {meta['tensorflow']}, Keras "
            f"{meta['keras']} (git {meta['git']}); took {meta['seconds']:.0f} s.")


def _mlp_rows(variant, strengths, step):
    """Per-strength rows of one variant: every `step`-th strength and the last."""
    warm, independent = variant["warm"], variant["independent"]

    def epochs(result, k):
        return (f"{result['epochs'][k]}" if result["converged_per_strength"][k]
                else f"{result['epochs'][k]} (not converged)")

    rows = []
    for k in sorted(set(range(0, len(strengths), step)) | {len(strengths) - 1}):
        rows.append(
            f"| {strengths[k]:.2e} | {epochs(warm, k)} | {warm['objective'][k]:.4f} | "
            f"{warm['hidden_units_kept'][k]} | {warm['val_accuracy'][k]:.3f} | "
            f"{epochs(independent, k)} | {independent['objective'][k]:.4f} | "
            f"{independent['hidden_units_kept'][k]} | {independent['val_accuracy'][k]:.3f} |")
    return rows


def _mlp_comparison(variant, strengths):
    c = variant["comparison"]
    o, r = c["largest_objective_difference"], c["largest_relative_objective_difference"]
    u, a = c["largest_units_difference"], c["largest_val_accuracy_difference"]
    return (f"objective (loss + penalty) lower on the warm path at {c['warm_objective_lower']} "
            f"and higher at {c['warm_objective_higher']} of {len(strengths)} strengths; the "
            f"largest difference at {strengths[o['index']]:.2e}: warm {o['warm']:.4f}, "
            f"independent {o['independent']:.4f}; the largest relative one at "
            f"{strengths[r['index']]:.2e}: {r['warm']:.4f} against {r['independent']:.4f} "
            f"({r['relative']:.0%} of the lower); hidden units kept, the largest difference at "
            f"{strengths[u['index']]:.2e}: {u['warm']} against {u['independent']}; validation "
            f"accuracy, at {strengths[a['index']]:.2e}: {a['warm']:.3f} against "
            f"{a['independent']:.3f}")


def _load(mlp):
    load = mlp.get("load_average_1min")
    if not load:
        return ""
    return (f" One-minute load average {load['before']:.1f} before the part, "
            f"{load['after']:.1f} after.")


def render_mlp(mlp):
    cfg = mlp["config"]
    strengths = cfg["strengths"]
    n = len(strengths)
    variants = (("plain proximal gradient (`accelerate=False`)", mlp),
                ("FISTA (`accelerate=True`; the default for SGD until it became the linear models' only)", mlp["fista"]))
    lines = [f"Digits MLP (64-32-32-10, ReLU, group lasso on the units of both hidden "
             f"layers; {cfg['train_samples']} training, {cfg['val_samples']} validation "
             f"images), {n} strengths from {strengths[0]:.0e} to {strengths[-1]:.0e}, "
             f"{cfg['optimizer']}, full batch, tol={cfg['tol']:g} on the proximal-gradient "
             f"residual (absolute: with both hidden kernels penalised the loss gradient at zero "
             f"penalised weights is 0, so the engine's scale is 1), at most "
             f"{cfg['max_epochs']} epochs per strength; warm-started path "
             f"(`warm_start=\"auto\"`) against {n} independent fits (`warm_start=False`, each "
             f"from the initial weights), each a whole `kreg.regularization_path` call."
             f"{_part_meta(mlp)}{_load(mlp)}", "",
             "| method | fits | epochs | converged | seconds | setup | first strength's extra | "
             "metrics and calls | Python between strengths | steps | per epoch |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, variant in variants:
        for fits, result in (("warm-started path", variant["warm"]),
                             ("independent fits", variant["independent"])):
            t = result["time_split"]
            lines.append(
                f"| {label} | {fits} | {sum(result['epochs'])} | {result['converged']}/{n} | "
                f"{result['seconds']:.1f} | {t['setup']:.1f} | {t['first_strength_extra']:.1f} | "
                f"{t['compiled']:.2f} | {t['python']:.2f} | {t['steps']:.1f} | "
                f"{t['epoch_seconds_in_call'] * 1e6:.0f} us |")
    plain, fista = mlp, mlp["fista"]
    header = ["| strength | warm: epochs | warm: objective | warm: hidden units (of 64) | "
              "warm: val accuracy | independent: epochs | independent: objective | "
              "independent: units | independent: val accuracy |",
              "|---|---|---|---|---|---|---|---|---|"]
    pc, fc = plain["costs"], fista["costs"]
    lines += ["", f"Epoch ratio (independent / warm): plain **{plain['epoch_ratio']:.1f}x**, "
              f"FISTA {fista['epoch_ratio']:.1f}x. Seconds ratio: plain "
              f"{plain['independent']['seconds'] / plain['warm']['seconds']:.1f}x, FISTA "
              f"{fista['independent']['seconds'] / fista['warm']['seconds']:.1f}x.", "",
              f"Where the time goes. *Setup*: from the call to the walk's first strength "
              f"(clone, `compile`, the train function traced and XLA-compiled by the one step "
              f"for the gradient at zero), and the end of every strength, clocked in each call "
              f"by a callback (`on_train_begin`, `on_epoch_end`). Per strength, the work "
              f"besides steps is measured on a compiled clone of its own (medians of "
              f"{pc['repeats']}): *metrics and calls*: the train and validation metrics "
              f"({pc['evaluation_seconds'] * 1e3:.1f} ms) and one compiled call "
              f"({pc['call_seconds'] * 1e3:.2f} ms; two past 8192 steps); *Python between "
              f"strengths*: the new strength and momentum restart "
              f"({pc['begin_strength_seconds'] * 1e3:.2f} ms), the weights' snapshot and the "
              f"sparsity ({pc['snapshot_sparsity_seconds'] * 1e3:.2f} ms), and for "
              f"independent fits the reset to the initial weights "
              f"({pc['reset_seconds'] * 1e3:.2f} ms). *Per epoch*: the strengths after the "
              f"first, less that work, over their epochs; *steps*: that times every epoch. "
              f"*First strength's extra*: the first strength's time less its steps and that "
              f"work, i.e. the test function traced and compiled for the training and for the "
              f"validation data (on the clone: {pc['first_evaluation_seconds']:.1f} s). On the "
              f"clone (the fastest of {pc['repeats']} calls of 1024 steps), a step takes {pc['step_seconds'] * 1e6:.0f} us plain and "
              f"{fc['step_seconds'] * 1e6:.0f} us with FISTA; a higher cost per epoch inside "
              f"a call is other processes on the machine's cores (see the load average "
              f"above) or work this split misses.", "",
              f"Warm against independent, plain: {_mlp_comparison(plain, strengths)}. FISTA: "
              f"{_mlp_comparison(fista, strengths)}.", "",
              "Plain proximal gradient, every strength (*objective*: loss + penalty on the "
              "training data):", "", *header]
    lines += _mlp_rows(plain, strengths, 1)
    lines += ["", "FISTA, every fourth strength and the last:", "", *header]
    lines += _mlp_rows(fista, strengths, 4)
    return lines


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
    for name in ("kreg warm", "kreg warm (twin)", "kreg warm, plain", "kreg again",
                 "kreg cold", "sklearn lasso_path"):
        goal = ""
        if name == "kreg warm":
            goal = "<= 30x: " + ("met" if r["warm_vs_sklearn"]["ratio"] <= 30 else "**missed**")
        if name in ("kreg cold", "kreg again"):
            key = "cold_vs_sklearn" if name == "kreg cold" else "again_vs_sklearn"
            goal = "<= 30x: " + ("met" if r[key]["ratio"] <= 30 else "**missed**")
        label = {"kreg warm": "kreg warm (FISTA, the default)",
                 "kreg warm (twin)": "kreg warm (FISTA, twin clone)",
                 "kreg warm, plain": "kreg warm, plain (`accelerate=False`)",
                 "kreg again": "kreg, the public call again on the same model (reuses its "
                               "compiled clone)",
                 "kreg cold": "kreg cold (the public call on a new model)"}.get(name, name)
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
              f"5-fold cross-validation (`KFold(5)`, {lasso['config']['strengths']} strengths; "
              f"the same `build_model` every call, so every call after the first reuses its "
              f"compiled clone): "
              f"kreg {_fmt_s(cv['seconds']['kreg cross_validate'])}, LassoCV "
              f"{_fmt_s(cv['seconds']['LassoCV'])}: **{cv['ratio']['ratio']:.0f}x** (goal <= 30x: "
              f"{'met' if cv['ratio']['ratio'] <= 30 else '**missed**'}); best strength kreg "
              f"{cv['best_strength']['kreg']:.4g}, LassoCV (x2) "
              f"{cv['best_strength']['LassoCV_times_2']:.4g}; one-SE strength "
              f"{cv['one_se_strength']:.4g}.", ""]
    lines += render_mlp(mlp)
    lines += ["", END]
    return "\n".join(lines)


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
    p.add_argument("--only", choices=sorted(PARTS), default=None,
                   help="measure only this part (lasso: the diabetes lasso path; cv: "
                   "cross-validation; mlp: the digits MLP's warm starts) and keep the other "
                   "parts' results from the JSON (the part records its own command and date)")
    args = p.parse_args(argv)
    from bench.__main__ import setup_environment

    out = args.out or os.path.join(HERE, "results", *(("quick.tmp",) if args.quick else ()),
                                   "paths.json")
    markdown = args.markdown or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if args.only and not args.report and not os.path.exists(out):
        p.error(f"--only {args.only} keeps the other parts from {out}, which does not exist: "
                "run without --only first")
    device = setup_environment(False)
    from bench import common

    if not args.report:
        start = common.now()
        command = " ".join(["python -m bench.paths", *argv])
        if args.only:
            result = common.read_json(out)
            key = PARTS[args.only][0]
            result[key] = run(args.quick, (args.only,))[key]
            result[key]["meta"] = {**common.machine_info(command, device),
                                   "seconds": common.now() - start}
        else:
            result = run(args.quick)
            result = {"meta": {**common.machine_info(command, device),
                               "seconds": common.now() - start}, **result}
        common.write_json(out, result)
        common.log(f"[bench.paths] -> {out}")
    result = common.read_json(out)
    text = render(result)
    print(text)
    if markdown:
        common.write_section(markdown, BEGIN, END, text)
        common.log(f"[bench.paths] wrote {markdown}")


if __name__ == "__main__":
    main()
