"""Part 4: a 30-lambda Lasso path on diabetes, kreg against scikit-learn's `lasso_path`.

Data: scikit-learn's diabetes (442 x 10), X standardised, y centred, no bias.
scikit-learn minimises `1/(2n) ||y - Xw||^2 + alpha ||w||_1`; kreg trains a
`Dense(1, use_bias=False)` with `"mse"` (twice scikit-learn's data term) and
`kreg.L1(2 * alpha)`, so both have the same minimiser.

kreg: one model, `kreg.Proximal(SGD(1 / L))` with `L = 2/n * lambda_max(X^T X)` (the
Lipschitz constant of the MSE gradient), full batch, `steps_per_execution` steps
per epoch. Along the path the strength variable is assigned the next value and
training continues from the current weights (warm start, no recompilation). Both
solvers stop on the same rule, scikit-learn's: the duality gap of the Lasso
(scaled by n) below `tol * ||y||^2`; for kreg a callback checks it after every
epoch and sets `model.stop_training`. The reference is `lasso_path` at tol 1e-12.
"""

import keras
import numpy as np
import tensorflow as tf

import kreg
from bench import common

CONFIGS = {
    "full": {"alphas": 30, "tols": (1e-4, 1e-6), "chunk": 100, "max_epochs": 500,
             "repeats": 3, "sklearn_repeats": 21},
    "quick": {"alphas": 5, "tols": (1e-3,), "chunk": 20, "max_epochs": 50,
              "repeats": 1, "sklearn_repeats": 2},
}


def data():
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, scaled=False)
    x = (x - x.mean(0)) / x.std(0)
    y = y - y.mean()
    return x, y


def alpha_grid(x, y, count):
    """scikit-learn's default grid: alpha_max = max|X^T y| / n down to 1e-3 of it, geometric."""
    alpha_max = np.max(np.abs(x.T @ y)) / x.shape[0]
    return np.geomspace(alpha_max, 1e-3 * alpha_max, count)


def duality_gap(x, y, w, alpha):
    """The Lasso duality gap in scikit-learn's scaling times n (its coordinate descent's rule)."""
    n = x.shape[0]
    r = y - x @ w
    r_norm2 = r @ r
    dual_norm = np.max(np.abs(x.T @ r))
    if dual_norm > alpha * n:
        const = alpha * n / dual_norm
        gap = 0.5 * (r_norm2 + r_norm2 * const**2)
    else:
        const = 1.0
        gap = r_norm2
    return gap + alpha * n * np.sum(np.abs(w)) - const * (r @ y)


class GapStop(keras.callbacks.Callback):
    """Stops `fit` once the duality gap of the current alpha is below `tol * ||y||^2`."""

    def __init__(self, x, y, tol):
        super().__init__()
        self.x, self.y = x, y
        self.threshold = tol * (y @ y)
        self.alpha = None
        self.epochs = 0
        self.converged = False

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        w = np.asarray(self.model.layers[0].kernel, dtype="float64")[:, 0]
        if duality_gap(self.x, self.y, w, self.alpha) < self.threshold:
            self.converged = True
            self.model.stop_training = True


class KregPath:
    """One compiled model that walks the path with warm starts."""

    def __init__(self, x, y, cfg, jit):
        n, p = x.shape
        lipschitz = 2.0 / n * np.linalg.eigvalsh(x.T @ x).max()
        self.reg = kreg.L1(0.0)
        self.model = keras.Sequential([
            keras.Input((p,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                               kernel_regularizer=self.reg),
        ])
        self.model.compile(
            optimizer=kreg.Proximal(keras.optimizers.SGD(1.0 / lipschitz)),
            loss="mse", steps_per_execution=cfg["chunk"], jit_compile=jit,
        )
        self.dataset = tf.data.Dataset.from_tensors(
            (x.astype("float32"), y.astype("float32")[:, None])).repeat()
        self.x, self.y, self.cfg = x, y, cfg
        self.lipschitz = float(lipschitz)
        self.warm_up()

    def warm_up(self):
        start = common.now()
        self.model.fit(self.dataset, steps_per_epoch=self.cfg["chunk"], epochs=1, verbose=0,
                       shuffle=False)
        self.compile_seconds = common.now() - start

    def path(self, alphas, tol):
        """Runs the path from zero weights; returns (coefs (p, len(alphas)), steps, converged)."""
        kernel = self.model.layers[0].kernel
        kernel.assign(np.zeros(kernel.shape, "float32"))
        stop = GapStop(self.x, self.y, tol)
        coefs, steps, converged = [], [], []
        for alpha in alphas:
            self.reg.strength.assign(2.0 * alpha)
            stop.alpha, stop.epochs, stop.converged = alpha, 0, False
            self.model.fit(self.dataset, steps_per_epoch=self.cfg["chunk"],
                           epochs=self.cfg["max_epochs"], verbose=0, shuffle=False,
                           callbacks=[stop])
            coefs.append(np.asarray(kernel, dtype="float64")[:, 0])
            steps.append(stop.epochs * self.cfg["chunk"])
            converged.append(stop.converged)
        return np.stack(coefs, axis=1), steps, converged


def _compare(coefs, ref):
    scale = np.max(np.abs(ref))
    differs = (coefs == 0) != (ref == 0)
    return {
        "largest_reference_coef": float(scale),
        "max_abs_coef_diff": float(np.max(np.abs(coefs - ref))),
        "max_coef_diff_relative": float(np.max(np.abs(coefs - ref)) / scale),
        "same_zero_pattern_alphas": int(np.sum(~np.any(differs, axis=0))),
        # the largest coefficient (either solver) among those zero in one solution only
        "largest_coef_where_zero_patterns_differ": float(
            np.max(np.where(differs, np.maximum(np.abs(coefs), np.abs(ref)), 0.0))),
    }


def run(quick):
    from sklearn.linear_model import lasso_path

    cfg = CONFIGS["quick" if quick else "full"]
    x, y = data()
    alphas = alpha_grid(x, y, cfg["alphas"])
    _, ref, _ = lasso_path(x, y, alphas=alphas, tol=1e-12, max_iter=1_000_000)
    solver = KregPath(x, y, cfg, jit=True)
    rows = []
    for tol in cfg["tols"]:
        common.log(f"  lasso path tol={tol:g}")
        kreg_seconds, sk_seconds = [], []
        for _ in range(cfg["repeats"]):
            start = common.now()
            coefs, steps, converged = solver.path(alphas, tol)
            kreg_seconds.append(common.now() - start)
            for _ in range(max(1, cfg["sklearn_repeats"] // cfg["repeats"])):
                start = common.now()
                _, sk_coefs, _ = lasso_path(x, y, alphas=alphas, tol=tol)
                sk_seconds.append(common.now() - start)
        kreg_time = common.summarize(kreg_seconds)
        sk_time = common.summarize(sk_seconds)
        rows.append({
            "tol": tol,
            "kreg_seconds": kreg_time,
            "sklearn_seconds": sk_time,
            "time_ratio": kreg_time["median"] / sk_time["median"],
            "kreg_steps": int(sum(steps)),
            "kreg_steps_per_alpha": steps,
            "kreg_converged_alphas": int(sum(converged)),
            "kreg_vs_reference": _compare(coefs, ref),
            "sklearn_vs_reference": _compare(sk_coefs, ref),
        })
    return {
        "config": {"alphas": cfg["alphas"], "alpha_max": float(alphas[0]),
                   "alpha_min": float(alphas[-1]), "steps_per_execution": cfg["chunk"],
                   "max_steps_per_alpha": cfg["chunk"] * cfg["max_epochs"],
                   "step_size": 1.0 / solver.lipschitz, "jit_compile": True,
                   "reference": "sklearn lasso_path(tol=1e-12)", "dtype": "float32",
                   "samples": int(x.shape[0]), "features": int(x.shape[1])},
        "kreg_first_fit_seconds": solver.compile_seconds,
        "rows": rows,
    }
