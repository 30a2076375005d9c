"""Writes the notebooks of this folder from the sources below, without outputs.

Run `python notebooks/_build.py` after editing a notebook's source here; commit
the `.ipynb` files it writes (tests/test_notebooks.py checks that they match this
script, carry no outputs, and run top to bottom on a fresh kernel).
"""

import pathlib
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent

# Each notebook is a list of cells; a cell is ("md", text) or ("code", text).
NOTEBOOKS = {}

# The first lines of every notebook's first code cell: inline figures, quiet TensorFlow.
_QUIET = (
    "%matplotlib inline\n"
    "import os\n\n"
    'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow\'s C++ logs quiet\n'
)

NOTEBOOKS["01_l1_vs_l2_paths"] = [
    ("md", """\
# L1 vs L2: coefficient paths on the diabetes data, in Keras

**What this shows.** A Keras linear model on scikit-learn's diabetes data, trained over
30 strengths on a log scale:

* with `kreg.L1` under `kreg.Proximal`, coefficients become **exactly zero**, one after
  another as the strength grows, and the path is scikit-learn's `lasso_path`;
* with `kreg.L2` they only **shrink** and never reach zero, and the path is scikit-learn's
  `Ridge`;
* train and test R² against the strength;
* `kreg.ElasticNet` in between: exact zeros, but later than L1 and spread over correlated
  features, matching `enet_path`.

**The alpha mapping.** Keras's `"mse"` loss is `1/n ||y - Xw||²`, twice scikit-learn's data
term `1/(2n) ||y - Xw||²`, and Keras penalties carry no `1/2`. So, for this model (standardised
`X`, centred `y`, no bias):

| scikit-learn | kreg |
|---|---|
| `Lasso(alpha)` | `L1(strength=2 * alpha)` |
| `Ridge(alpha)` (a sum of squares, not a mean) | `L2(strength=alpha / n)` |
| `ElasticNet(alpha, l1_ratio=rho)` | `ElasticNet(strength=alpha * (1 + rho), l1_ratio=2 * rho / (1 + rho))` |

The cells below assert that the Keras paths agree with scikit-learn's to 1e-3 of the
largest coefficient, with the same exact zeros."""),
    ("code", _QUIET + """
import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge, enet_path, lasso_path
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

import kreg
import kreg.plot

keras.utils.set_random_seed(0)
data = load_diabetes()
X_train, X_test, y_train, y_test = train_test_split(
    data.data, data.target, test_size=0.3, random_state=0
)
# Standardise X and centre y with the training statistics: then no bias is needed,
# and scikit-learn's path functions (which fit no intercept) solve the same problem.
mean, std = X_train.mean(axis=0), X_train.std(axis=0)
X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
y_mean = y_train.mean()
y_train, y_test = y_train - y_mean, y_test - y_mean
n, p = X_train.shape
names = data.feature_names
print(f"{n} training and {len(X_test)} test patients, {p} features: {', '.join(names)}")"""),
    ("md", """\
## One Keras model for a whole path

`kreg.regularization_path`: full-batch proximal gradient descent (plain SGD at the step `1/L`,
`L` the Lipschitz constant of the `"mse"` gradient, wrapped in `kreg.Proximal`), each strength
until the proximal-gradient residual is below `tol`. The strength is a `keras.Variable`:
assigning a new value changes the next step of the already compiled model, so the path is one
model, warm-started from each solution to the next."""),
    ("code", """\
lipschitz = 2 * np.linalg.eigvalsh(X_train.T @ X_train / n).max()


def fit_path(regularizer, strengths):
    \"\"\"Coefficients (one row per strength) of a linear model regularized by `regularizer`:
    `kreg.regularization_path` trains one compiled model along the strengths (no recompile:
    the step reads the strength variable), each strength until converged.\"\"\"
    model = keras.Sequential([
        keras.Input((p,)),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           kernel_regularizer=regularizer),
    ])
    model.compile(optimizer=keras.optimizers.SGD(1 / lipschitz), loss="mse")
    path = kreg.regularization_path(model, X_train, y_train, strengths, tol=1e-7,
                                    max_epochs=100_000)
    assert path.converged.all()
    return path.weights()[:, :, 0]


def r2(coefs, X, y):
    return np.array([r2_score(y, X @ c) for c in coefs])"""),
    ("md", """\
## L1: the lasso path, exact zeros

`alpha_max = max |X^T y| / n` is the smallest scikit-learn alpha at which every coefficient
is zero; the grid runs from just above it down to `alpha_max / 1000`."""),
    ("code", """\
alpha_max = np.abs(X_train.T @ y_train).max() / n
alphas = np.geomspace(1.05 * alpha_max, 1e-3 * alpha_max, 30)
l1_strengths = 2 * alphas  # Lasso(alpha) is kreg.L1(2 * alpha) with "mse"
l1_coefs = fit_path(kreg.L1(0.0), l1_strengths)

_, lasso_coefs, _ = lasso_path(X_train, y_train, alphas=alphas, tol=1e-12, max_iter=100_000)
lasso_coefs = lasso_coefs.T
l1_error = np.abs(l1_coefs - lasso_coefs).max() / np.abs(lasso_coefs).max()
print(f"largest difference to lasso_path: {l1_error:.1e} of the largest coefficient")
print("exact zeros per strength (Keras):", (l1_coefs == 0).sum(axis=1).tolist())
assert l1_error < 1e-3
assert np.array_equal(l1_coefs == 0, lasso_coefs == 0)  # the same exact zeros
assert (l1_coefs[0] == 0).all() and (l1_coefs[-1] != 0).all()"""),
    ("md", """\
## L2: the ridge path, shrinkage without zeros

`Ridge(alpha)` penalises `alpha ||w||²` next to a *sum* of squared errors; divided by `n`
that is `"mse"` plus `(alpha / n) ||w||²`, i.e. `kreg.L2(alpha / n)`."""),
    ("code", """\
l2_strengths = np.geomspace(1e2, 1e-3, 30)
l2_coefs = fit_path(kreg.L2(0.0), l2_strengths)
ridge_coefs = np.array([
    Ridge(alpha=s * n, fit_intercept=False).fit(X_train, y_train).coef_ for s in l2_strengths
])
l2_error = np.abs(l2_coefs - ridge_coefs).max() / np.abs(ridge_coefs).max()
print(f"largest difference to Ridge: {l2_error:.1e} of the largest coefficient")
print(f"smallest |coefficient| on the whole path: {np.abs(l2_coefs).min():.2e}")
assert l2_error < 1e-3
assert (l2_coefs != 0).all()  # L2 shrinks, it never makes a zero"""),
    ("code", """\
fig, (ax_l1, ax_l2) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="constrained")
kreg.plot.coefficient_paths(l1_strengths, l1_coefs, names, ax=ax_l1,
                            reference=(l1_strengths, lasso_coefs), reference_label="lasso_path",
                            title="kreg.L1 + kreg.Proximal (lines) vs lasso_path (dashed)")
kreg.plot.coefficient_paths(l2_strengths, l2_coefs, names, ax=ax_l2,
                            reference=(l2_strengths, ridge_coefs), reference_label="Ridge",
                            title="kreg.L2 (lines) vs Ridge (dashed)")
plt.show()"""),
    ("md", """\
## Train and test R² against the strength

The training R² can only fall as the penalty grows. On the test set a moderate ridge penalty
helps a little, the lasso's first zeros cost almost nothing, and both collapse when the
penalty wins."""),
    ("code", """\
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True, layout="constrained")
for ax, label, strengths, coefs in ((axes[0], "L1", l1_strengths, l1_coefs),
                                    (axes[1], "L2", l2_strengths, l2_coefs)):
    train, test = r2(coefs, X_train, y_train), r2(coefs, X_test, y_test)
    best = strengths[np.argmax(test)]
    kreg.plot.score_vs_strength(strengths, train, test, best={"best test": best}, ax=ax,
                                val_label="test", ylabel="R²", title=label)
    print(f"{label}: best test R² {test.max():.3f} at strength {best:.3g} "
          f"(train R² {train[np.argmax(test)]:.3f})")
    assert train[-1] > train[0] and train[-1] >= test[-1]
plt.show()"""),
    ("md", """\
## Elastic net: in between

`kreg.ElasticNet(strength, l1_ratio=0.5)` is scikit-learn's `ElasticNet(alpha, l1_ratio=rho)`
with `rho = 1/3` and `alpha = strength / (1 + rho)` (from `l1_ratio = 2 rho / (1 + rho)`)."""),
    ("code", """\
en_strengths = l1_strengths
en_coefs = fit_path(kreg.ElasticNet(0.0, l1_ratio=0.5), en_strengths)
rho = 1 / 3
_, enet_coefs, _ = enet_path(X_train, y_train, l1_ratio=rho, alphas=en_strengths / (1 + rho),
                             tol=1e-12, max_iter=100_000)
enet_coefs = enet_coefs.T
en_error = np.abs(en_coefs - enet_coefs).max() / np.abs(enet_coefs).max()
print(f"largest difference to enet_path: {en_error:.1e} of the largest coefficient")
assert en_error < 1e-3
assert np.array_equal(en_coefs == 0, enet_coefs == 0)

nonzeros = {label: (coefs != 0).sum(axis=1)
            for label, coefs in (("L1", l1_coefs), ("elastic net", en_coefs), ("L2", l2_coefs))}
# At every strength elastic net keeps at least as many features as the lasso.
assert (nonzeros["elastic net"] >= nonzeros["L1"]).all()

fig, (ax_path, ax_count) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
kreg.plot.coefficient_paths(en_strengths, en_coefs, names, ax=ax_path,
                            reference=(en_strengths, enet_coefs), reference_label="enet_path",
                            title="kreg.ElasticNet(l1_ratio=0.5) vs enet_path (dashed)")
ax_count.plot(l1_strengths, nonzeros["L1"], "o-", label="L1")
ax_count.plot(en_strengths, nonzeros["elastic net"], "s-", label="elastic net (l1_ratio=0.5)")
ax_count.plot(l2_strengths, nonzeros["L2"], "^-", label="L2")
ax_count.set(xscale="log", xlabel="strength", ylabel="nonzero coefficients",
             title="features kept")
ax_count.legend()
plt.show()"""),
]

NOTEBOOKS["02_group_lasso_pruning"] = [
    ("md", """\
# Group lasso pruning: whole hidden units, exactly zero

**What this shows.** An MLP on scikit-learn's digits (8x8 images, 10 classes) whose hidden
kernels carry `kreg.GroupLasso(groups="units")` (one group per unit: all the weights feeding
it), trained with

* `kreg.Proximal(Adam)`: the penalty acts through its prox, so whole units become **exactly**
  zero while training, no pruning pass needed;
* `kreg.callbacks.StrengthScheduler`: a warm-up, the strength rising linearly from 0 so the
  network first learns, then prunes;
* `kreg.callbacks.SparsityMonitor`: the fraction of zero weights and of dead units per layer,
  logged every epoch into the `History`.

Then: accuracy, sparsity and strength over epochs; units kept against accuracy for a few
strengths, next to the same MLP without regularization; the export to a SavedModel and
serving it. `python -m kreg.demo` runs this model from the command line."""),
    ("code", _QUIET + """
import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import kreg
import kreg.plot

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                                    stratify=y)
print(f"{len(x_train)} training and {len(x_test)} test images")"""),
    ("code", """\
EPOCHS, WARMUP, BATCH = 40, 10, 64
STEPS_PER_EPOCH = int(np.ceil(len(x_train) / BATCH))


def build_mlp(regularizer=None):
    keras.utils.set_random_seed(0)  # the same initial weights for every model
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(128, activation="relu", kernel_regularizer=regularizer, name="hidden1"),
        keras.layers.Dense(64, activation="relu", kernel_regularizer=regularizer, name="hidden2"),
        keras.layers.Dense(10, name="logits"),
    ])


def train(strength, validate=False):
    \"\"\"An MLP trained with group lasso at `strength` (after warm-up); 0: no regularizer.\"\"\"
    regularizer = kreg.GroupLasso(0.0, groups="units") if strength > 0 else None
    model = build_mlp(regularizer)
    optimizer = keras.optimizers.Adam(2e-3)
    model.compile(
        optimizer=kreg.Proximal(optimizer) if regularizer else optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EPOCH,  # one compiled call per epoch
    )
    callbacks = []
    if regularizer:
        callbacks = [
            kreg.callbacks.StrengthScheduler(lambda epoch: strength * min(1.0, epoch / WARMUP)),
            kreg.callbacks.SparsityMonitor(),
        ]
    history = model.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH, verbose=0,
                        validation_data=(x_test, y_test) if validate else None,
                        callbacks=callbacks)
    return model, history


def units_kept(model):
    \"\"\"Per hidden layer, the units with some nonzero incoming weight (NumPy count).\"\"\"
    return {name: int(np.any(model.get_layer(name).kernel.numpy() != 0, axis=0).sum())
            for name in ("hidden1", "hidden2")}


def accuracy(model):
    return float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))"""),
    ("md", """\
## One pruned model, watched over epochs"""),
    ("code", """\
STRENGTH = 1e-3
model, history = train(STRENGTH, validate=True)  # validation: for the curves only
kept = units_kept(model)
print(f"units kept: {kept} of (128, 64); test accuracy {accuracy(model):.3f}")

logs = history.history
for name, total in (("hidden1", 128), ("hidden2", 64)):
    path = f"{name}/kernel"  # log keys: <layer>/<weight>, without the model's name
    # The monitor's last entry is NumPy's count on the final weights.
    assert np.isclose(logs[f"group_sparsity/{path}"][-1], 1 - kept[name] / total)
    assert logs[f"strength/{path}"][0] == 0.0 and np.isclose(logs[f"strength/{path}"][-1], STRENGTH)
assert 0 < kept["hidden1"] < 128 * 3 // 4  # a large share of the first layer is pruned

kreg.plot.training_curves(history, metrics=["accuracy", "val_accuracy"],
                          title=f"GroupLasso(groups='units'), strength {STRENGTH:g}")"""),
    ("code", """\
kreg.plot.surviving_units(model, title="group norm of every hidden unit (grey: exactly zero)")"""),
    ("md", """\
## Units kept against accuracy

The same MLP trained without a regularizer is the baseline; each stronger penalty keeps
fewer units."""),
    ("code", """\
baseline, _ = train(0.0)
baseline_accuracy = accuracy(baseline)
sweep = {STRENGTH: (sum(kept.values()), accuracy(model))}
for strength in (3e-4, 3e-3):
    m, _ = train(strength)
    sweep[strength] = (sum(units_kept(m).values()), accuracy(m))
print(f"baseline (no regularizer): 192 units, test accuracy {baseline_accuracy:.3f}")
for strength, (units, acc) in sorted(sweep.items()):
    print(f"strength {strength:g}: {units} units, test accuracy {acc:.3f}")

units = [sweep[s][0] for s in sorted(sweep)]
assert units == sorted(units, reverse=True)  # a stronger penalty keeps fewer units
assert sweep[STRENGTH][1] > baseline_accuracy - 0.03  # at a stated margin of the baseline

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for strength, (units_, acc) in sorted(sweep.items()):
    ax.plot(units_, acc, "o", label=f"group lasso, strength {strength:g}")
ax.plot(192, baseline_accuracy, "k*", markersize=12, label="no regularization")
ax.set(xlabel="hidden units kept (of 192)", ylabel="test accuracy")
ax.legend()
plt.show()"""),
    ("md", """\
## Export and serve

`model.export` writes a SavedModel whose `serve` endpoint is the pruned network; the zeros
are ordinary weights, so TensorFlow Serving, TFLite converters and `tf.saved_model.load` take
it as is."""),
    ("code", """\
import tempfile

export_dir = os.path.join(tempfile.mkdtemp(), "pruned_digits_savedmodel")  # not the cwd
model.export(export_dir, verbose=False)
served = tf.saved_model.load(export_dir)
predictions = served.serve(tf.constant(x_test)).numpy()
print("served test accuracy:", np.mean(np.argmax(predictions, axis=1) == y_test))
np.testing.assert_allclose(predictions, model.predict(x_test, verbose=0), rtol=1e-5, atol=1e-5)"""),
]

NOTEBOOKS["03_grouped_feature_selection"] = [
    ("md", """\
# Grouped feature selection: whole categorical variables in or out

**What this shows.** A categorical variable with `k` levels becomes `k` one-hot columns.
Plain L1 judges every column on its own, so it keeps scattered dummy columns: part of a
variable, or a stray column of an irrelevant one. `kreg.GroupLasso` with one group id per
column (the variable it came from) keeps or drops **whole variables**.

The data are synthetic with a known answer: 8 categorical variables, of which only
variables 0, 2 and 5 affect the target. Along the path, the group lasso takes variables in
or out whole and those three enter first; at the strength chosen on a validation set it keeps
exactly those three (all their columns), where L1 keeps parts of variables. Its solution
satisfies the group lasso's optimality conditions (checked in NumPy)."""),
    ("code", _QUIET + """
import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import lasso_path
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder

import kreg
import kreg.plot

rng = np.random.default_rng(0)
levels = [3, 4, 5, 3, 6, 4, 5, 3]  # levels of the 8 categorical variables
relevant = [0, 2, 5]  # the known answer
n = 1200
categories = np.column_stack([rng.integers(0, k, size=n) for k in levels])
effects = {v: rng.choice([-1.0, 1.0], size=levels[v]) * rng.uniform(0.5, 1.5, size=levels[v])
           for v in relevant}
y = sum(effects[v][categories[:, v]] for v in relevant) + rng.normal(scale=1.0, size=n)

X = OneHotEncoder(sparse_output=False).fit_transform(categories)  # every level, 33 columns
ids = np.repeat(np.arange(len(levels)), levels)  # the variable of each column
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
# Centre the columns and the target with the training means: no bias needed.
x_mean, y_mean = X_train.mean(axis=0), y_train.mean()
X_train, X_val = X_train - x_mean, X_val - x_mean
y_train, y_val = y_train - y_mean, y_val - y_mean
n_train, p = X_train.shape
print(f"{n_train} training rows, {p} one-hot columns from {len(levels)} variables; "
      f"relevant: {relevant}")"""),
    ("code", """\
lipschitz = 2 * np.linalg.eigvalsh(X_train.T @ X_train / n_train).max()


def fit_path(regularizer, strengths):
    \"\"\"Coefficients along `strengths` (one row each) of a linear model, and the path.

    `kreg.regularization_path`: full-batch proximal gradient descent (plain SGD at the step
    `1/L` under `kreg.Proximal`), one compiled model warm-started from each strength to the
    next, each strength until the proximal-gradient residual is below `tol`.\"\"\"
    model = keras.Sequential([
        keras.Input((p,)),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           kernel_regularizer=regularizer),
    ])
    model.compile(optimizer=keras.optimizers.SGD(1 / lipschitz), loss="mse")
    path = kreg.regularization_path(model, X_train, y_train, strengths, tol=1e-6,
                                    max_epochs=20_000)
    assert path.converged.all()
    return path.weights()[:, :, 0].astype("float64"), path


def variables_kept(coef):
    \"\"\"Per variable: how many of its columns are nonzero.\"\"\"
    return np.bincount(ids, weights=(coef != 0), minlength=len(levels)).astype(int)


def val_mse(coefs):
    return np.array([np.mean((y_val - X_val @ c) ** 2) for c in coefs])"""),
    ("md", """\
## Two paths

The group lasso uses `groups=ids` (one integer per input column; columns with the same id
are one group across the unit) and weighs each group by `sqrt(p_g)`, its number of columns.
Both grids run from the strength that zeroes everything down by a factor of 300; each path is
one call of `kreg.regularization_path`, every strength trained to convergence (asserted in
`fit_path`)."""),
    ("code", """\
gradient0 = 2 * X_train.T @ y_train / n_train  # -gradient of "mse" at w = 0
group_max = max(np.linalg.norm(gradient0[ids == g]) / np.sqrt(levels[g])
                for g in range(len(levels)))
group_strengths = np.geomspace(1.05 * group_max, group_max / 300, 25)
l1_strengths = np.geomspace(1.05 * np.abs(gradient0).max(), np.abs(gradient0).max() / 300, 25)

group_reg = kreg.GroupLasso(0.0, groups=ids.tolist())
group_coefs, group_path = fit_path(group_reg, group_strengths)
l1_coefs, _ = fit_path(kreg.L1(0.0), l1_strengths)
# The L1 path solves scikit-learn's lasso (Lasso's alpha is half the strength with "mse").
# The centred dummies of a variable sum to zero, so the lasso's coefficients need not be
# unique; its objective value and fitted values are, and are compared.
_, lasso_coefs, _ = lasso_path(X_train, y_train, alphas=l1_strengths / 2, tol=1e-12,
                               max_iter=100_000)
lasso_coefs = lasso_coefs.T


def lasso_objective(coefs):
    residuals = y_train[:, None] - X_train @ coefs.T
    return np.mean(residuals**2, axis=0) + l1_strengths * np.abs(coefs).sum(axis=1)


objective_gap = np.max(lasso_objective(l1_coefs) / lasso_objective(lasso_coefs) - 1)
fit_gap = np.abs(X_train @ (l1_coefs - lasso_coefs).T).max() / np.abs(y_train).max()
print(f"L1 against scikit-learn's lasso_path: objective at most {objective_gap:.1e} higher "
      f"(relative), fitted values within {fit_gap:.1e} of max |y|")
assert objective_gap < 1e-5 and fit_gap < 1e-3

group_norms = np.array([[np.linalg.norm(c[ids == g]) for g in range(len(levels))]
                        for c in group_coefs])
fig, (ax_group, ax_l1) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
kreg.plot.coefficient_paths(group_strengths, group_norms,
                            [f"variable {g}" for g in range(len(levels))], ax=ax_group,
                            ylabel="group norm ||w_g||",
                            title="GroupLasso(groups=ids): variables enter whole")
kreg.plot.coefficient_paths(l1_strengths, l1_coefs, ax=ax_l1,
                            title="L1: one dummy column at a time (colour: variable)")
for line, g in zip(ax_l1.lines, ids):  # colour each column by its variable
    line.set_color(f"C{g}")
plt.show()

# On the group lasso path a variable is always all in or all out ...
for coef in group_coefs:
    kept = variables_kept(coef)
    assert np.all((kept == 0) | (kept == np.array(levels)))
# ... while the L1 path keeps part of a variable somewhere.
partial = [np.any((variables_kept(c) > 0) & (variables_kept(c) < levels)) for c in l1_coefs]
print(f"strengths at which L1 keeps part of a variable: {sum(partial)} of {len(partial)}")
assert any(partial)"""),
    ("md", """\
## The strength chosen on the validation set

Validation error is flat near its minimum (the noise variance is 1), so the weakest strengths
that add irrelevant variables cost almost nothing there. The one-standard-error rule picks
the strongest penalty whose validation MSE is within one standard error of the lowest (the
standard error of a mean of squared errors over the validation rows); see
`04_choosing_lambda` for the same rule under cross-validation."""),
    ("code", """\
def one_standard_error(coefs):
    squared = (y_val[:, None] - X_val @ coefs.T) ** 2  # rows x strengths
    mse, se = squared.mean(axis=0), squared.std(axis=0, ddof=1) / np.sqrt(len(y_val))
    best = np.argmin(mse)
    return int(np.flatnonzero(mse <= mse[best] + se[best])[0]), mse  # strong to weak grid


group_choice, group_mse = one_standard_error(group_coefs)
l1_choice, l1_mse = one_standard_error(l1_coefs)
group_kept, l1_kept = variables_kept(group_coefs[group_choice]), variables_kept(l1_coefs[l1_choice])
print("levels per variable:       ", levels)
print(f"group lasso, columns kept:  {group_kept.tolist()}  "
      f"(validation MSE {group_mse[group_choice]:.3f})")
print(f"L1,          columns kept:  {l1_kept.tolist()}  (validation MSE {l1_mse[l1_choice]:.3f})")

# The group lasso finds the known answer: exactly the relevant variables, every column ...
assert np.flatnonzero(group_kept).tolist() == relevant
assert all(group_kept[v] == levels[v] for v in relevant)
# ... and they are the first three variables to enter its path.
entry = [int(np.argmax(group_norms[:, g] > 0)) if group_norms[-1, g] > 0 else len(group_norms)
         for g in range(len(levels))]
assert sorted(np.argsort(entry)[:3].tolist()) == relevant
# L1 keeps scattered columns: some variable only in part.
assert np.any((l1_kept > 0) & (l1_kept < levels))"""),
    ("code", """\
# The chosen model (a new Keras model with the path's weights at that strength): bars are
# group norms, crosses mark dropped variables.
chosen_model = group_path.model_at(group_strengths[group_choice])
np.testing.assert_array_equal(chosen_model.layers[0].kernel.numpy()[:, 0],
                              group_coefs[group_choice])
kreg.plot.surviving_units(chosen_model, title="group lasso at the chosen strength")"""),
    ("md", """\
## Optimality, checked in NumPy

At a minimiser of `mse + strength * sum_g sqrt(p_g) ||w_g||`, with `grad` the gradient of the
`"mse"` term: a kept group has `grad[g] = -strength * sqrt(p_g) * w_g / ||w_g||`, and a dropped
group has `||grad[g]|| <= strength * sqrt(p_g)`. Every point of the Keras path is checked;
the residuals are relative to `strength * sqrt(p_g)`."""),
    ("code", """\
def optimality_residuals(w, strength):
    gradient = 2 * X_train.T @ (X_train @ w - y_train) / n_train
    residuals = []
    for g in range(len(levels)):
        block, scale = ids == g, strength * np.sqrt(levels[g])
        norm = np.linalg.norm(w[block])
        if norm > 0:
            residuals.append(np.linalg.norm(gradient[block] + scale * w[block] / norm) / scale)
        else:
            residuals.append(max(np.linalg.norm(gradient[block]) / scale - 1, 0.0))
    return np.array(residuals)


print("at the chosen strength, per variable:",
      np.array2string(optimality_residuals(group_coefs[group_choice],
                                           group_strengths[group_choice]), precision=1))
worst = max(optimality_residuals(w, s).max() for w, s in zip(group_coefs, group_strengths))
print(f"largest residual on the whole path: {worst:.1e}")
assert worst < 1e-4"""),
]

NOTEBOOKS["04_choosing_lambda"] = [
    ("md", """\
# Choosing lambda by K-fold cross-validation

**What this shows.** How to pick the strength of a Keras model's regularizer by K-fold
cross-validation (scikit-learn's `KFold` gives the splits):

* for each fold, `kreg.regularization_path` trains one Keras model along the whole strength
  grid (warm starts: the strength is a variable, so one compiled model serves the whole grid),
  each strength to a stated convergence criterion;
* the cross-validation curve with its standard error;
* the best strength (lowest mean validation error) and the **one-standard-error** strength
  (the strongest penalty whose error is within one standard error of the best: a simpler
  model that is statistically as good);
* the final model, refitted on all training data at the chosen strength.

The model is a linear regression with `kreg.L1` on the diabetes data, so every number can be
checked: the same folds run through scikit-learn's `lasso_path` give the same CV curve and
the same choices (asserted below). Nothing here depends on the model being linear; at the
end, `kreg.cross_validate` does the whole loop in one call."""),
    ("code", _QUIET + """
import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import lasso_path
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, train_test_split

import kreg
import kreg.plot

keras.utils.set_random_seed(0)
data = load_diabetes()
X_train, X_test, y_train, y_test = train_test_split(
    data.data, data.target, test_size=0.25, random_state=1
)
names = np.array(data.feature_names)
FOLDS = 5


def standardize(X_fit, y_fit, *others):
    \"\"\"Standardise X and centre y with the statistics of the fitting part only.\"\"\"
    mean, std, y_mean = X_fit.mean(axis=0), X_fit.std(axis=0), y_fit.mean()
    return [(X_fit - mean) / std, y_fit - y_mean] + [
        (X - mean) / std if i % 2 == 0 else X - y_mean for i, X in enumerate(others)
    ]


def linear_model(X):
    \"\"\"A linear Keras model with kreg.L1, compiled with SGD at step 1 / L (L: the Lipschitz
    constant of the MSE gradient), the proximal gradient method under kreg.Proximal.\"\"\"
    n, p = X.shape
    model = keras.Sequential([
        keras.Input((p,)),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           kernel_regularizer=kreg.L1(0.0)),
    ])
    lipschitz = 2 * np.linalg.eigvalsh(X.T @ X / n).max()
    model.compile(optimizer=keras.optimizers.SGD(1 / lipschitz), loss="mse")
    return model


def fit_path(X, y, strengths):
    \"\"\"Coefficients along `strengths`, one row each, every strength converged.\"\"\"
    path = kreg.regularization_path(linear_model(X), X, y, strengths, tol=1e-7,
                                    max_epochs=100_000)
    assert path.converged.all()
    return path.weights()[:, :, 0]"""),
    ("md", """\
## The grid and the folds

The grid is fixed once, from the whole training set: from the strength at which every
coefficient is zero (`kreg.strength_max`; `2 * max |X^T y| / n` for `"mse"`) down by a factor
of 1000."""),
    ("code", """\
X_std, y_std = standardize(X_train, y_train)
strength_max = kreg.strength_max(linear_model(X_std), X_std, y_std)
assert np.isclose(strength_max, 2 * np.abs(X_std.T @ y_std).max() / len(y_std), rtol=1e-5)
strengths = np.geomspace(strength_max, strength_max / 1000, 20)

folds = list(KFold(FOLDS, shuffle=True, random_state=0).split(X_train))
val_mse = np.zeros((FOLDS, len(strengths)))
train_mse = np.zeros((FOLDS, len(strengths)))
sklearn_val_mse = np.zeros((FOLDS, len(strengths)))
for k, (fit_idx, val_idx) in enumerate(folds):
    X_fit, y_fit, X_val, y_val = standardize(X_train[fit_idx], y_train[fit_idx],
                                             X_train[val_idx], y_train[val_idx])
    coefs = fit_path(X_fit, y_fit, strengths)
    val_mse[k] = np.mean((y_val[:, None] - X_val @ coefs.T) ** 2, axis=0)
    train_mse[k] = np.mean((y_fit[:, None] - X_fit @ coefs.T) ** 2, axis=0)
    # The same fold through scikit-learn (Lasso alpha = strength / 2 with "mse").
    _, sk_coefs, _ = lasso_path(X_fit, y_fit, alphas=strengths / 2, tol=1e-12, max_iter=100_000)
    sklearn_val_mse[k] = np.mean((y_val[:, None] - X_val @ sk_coefs) ** 2, axis=0)
    print(f"fold {k + 1}: {len(fit_idx)} fitting rows, {len(val_idx)} validation rows")

np.testing.assert_allclose(val_mse, sklearn_val_mse, rtol=1e-4)"""),
    ("md", """\
## The CV curve, the best and the one-standard-error strength

The standard error of the mean validation error is `std over folds / sqrt(K)`."""),
    ("code", """\
def choose(errors):
    mean = errors.mean(axis=0)
    se = errors.std(axis=0, ddof=1) / np.sqrt(errors.shape[0])
    best = int(np.argmin(mean))
    # The grid runs from strong to weak: the first index within one SE is the strongest.
    one_se = int(np.flatnonzero(mean <= mean[best] + se[best])[0])
    return mean, se, best, one_se


mean, se, best, one_se = choose(val_mse)
sk_mean, _, sk_best, sk_one_se = choose(sklearn_val_mse)
print(f"best strength:       {strengths[best]:.4g} (CV MSE {mean[best]:.1f} +- {se[best]:.1f})")
print(f"one-SE strength:     {strengths[one_se]:.4g} (CV MSE {mean[one_se]:.1f})")
assert (best, one_se) == (sk_best, sk_one_se)  # scikit-learn makes the same choices
assert strengths[one_se] >= strengths[best] and mean[one_se] <= mean[best] + se[best]

fig = kreg.plot.score_vs_strength(
    strengths, train_mse.mean(axis=0), mean, val_errors=se,
    best={"best": strengths[best], "one standard error": strengths[one_se]},
    train_label="fitting folds", val_label=f"{FOLDS}-fold CV (± 1 s.e.)", ylabel="MSE",
    title="choosing the L1 strength")
fig.axes[0].axhline(mean[best] + se[best], color="grey", linewidth=0.8, linestyle="--",
                    label="best + 1 s.e.")
fig.axes[0].legend(fontsize="small")
fig"""),
    ("md", """\
## The final model

Refit on the whole training set at the chosen strengths, then score once on the test set
that played no part in the choice."""),
    ("code", """\
X_all, y_all, X_te, y_te = standardize(X_train, y_train, X_test, y_test)
chosen = np.array([strengths[one_se], strengths[best]])  # a path runs from strong to weak
final = fit_path(X_all, y_all, chosen)
for label, strength, coef in zip(("one-SE", "best"), chosen, final):
    kept = names[coef != 0]
    print(f"{label:>6}: strength {strength:.4g}, test R² {r2_score(y_te, X_te @ coef):.3f}, "
          f"{len(kept)} features: {', '.join(kept)}")
assert (final[0] != 0).sum() <= (final[1] != 0).sum()  # the one-SE model is the simpler one
assert r2_score(y_te, X_te @ final[0]) > 0.3"""),
    ("md", """\
## The same in one call, with one row logged per strength

`kreg.cross_validate` runs this loop for any model that `build_model()` returns (here on the
training set standardised once, so its numbers differ slightly from the per-fold
standardisation above), picks the best and the one-standard-error strength, and refits at
the best. `callbacks=` takes Keras callbacks (`CSVLogger`, `TensorBoard`, a tracker's Keras
callback) or plain functions, called with one row per strength: what `wandb.log(row)` would
receive."""),
    ("code", """\
def log_row(row):  # stands in for wandb.log(row) or a CSV writer
    if row["strength"] in strengths[::5]:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})


cv = kreg.cross_validate(lambda: linear_model(X_std), X_std, y_std, strengths,
                         cv=KFold(FOLDS, shuffle=True, random_state=0), tol=1e-7,
                         max_epochs=100_000)
print(cv)
path = kreg.regularization_path(linear_model(X_std), X_std, y_std, strengths, tol=1e-7,
                                max_epochs=100_000, callbacks=[log_row])
assert cv.one_se_strength >= cv.best_strength and path.converged.all()
cv.plot(title="kreg.cross_validate")"""),
]


NOTEBOOKS["05_beyond_the_lasso"] = [
    ("md", """\
# Beyond the lasso: MCP and the adaptive lasso, in Keras

**What this shows.** On synthetic data with a known sparse truth (6 of 30 coefficients
nonzero), a Keras linear model trained under `kreg.Proximal` with three penalties over a
grid of strengths:

* `kreg.L1` (the lasso): it finds the right features, but only at strengths where it also
  **shrinks the true coefficients** by about the strength: selection and bias come together;
* `kreg.MCP` (Zhang 2010): the same slope as the lasso at zero, none beyond `gamma * strength`,
  so at the strengths that select the right features the large coefficients are **not shrunk
  at all**: they are the least-squares fit on the true support (the "oracle");
* the adaptive lasso (Zou 2006): `kreg.L1(strength, weights=1 / |w_first|)` with the weights
  from a first, unpenalized fit: a convex penalty that shrinks the large coefficients little
  and the noise ones a lot, so it recovers the support over a much wider range of strengths;
* and for a neural network, `kreg.GroupMCP(groups="units")` after `kreg.GroupLasso`: the same
  pruned units, without the shrinkage of the units that survive.

The cells assert every claim: the L1 path is scikit-learn's `lasso_path`, the adaptive lasso
is `lasso_path` on the rescaled columns `X / weights`, the MCP solutions satisfy MCP's
stationarity conditions (checked in NumPy), and the bias and support-recovery claims above."""),
    ("code", _QUIET + """
import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from sklearn.linear_model import lasso_path

import kreg
import kreg.plot

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
n, p = 200, 30
truth = np.zeros(p)
truth[:6] = [4.0, -3.5, 3.0, -2.5, 2.0, 1.5]  # the first 6 features matter, the other 24 not
corr = 0.3 ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))  # neighbours correlate
X = rng.multivariate_normal(np.zeros(p), corr, size=n)
X = (X - X.mean(axis=0)) / X.std(axis=0)
y = X @ truth + rng.normal(size=n)
y = y - y.mean()
true_support = truth != 0
# The oracle: least squares on the true support, the best a selector can hope for.
oracle = np.zeros(p)
oracle[true_support] = np.linalg.lstsq(X[:, true_support], y, rcond=None)[0]
names = [f"x{j}" for j in range(p)]
print("truth: ", truth[:6])
print("oracle:", np.round(oracle[:6], 3))"""),
    ("md", """\
## One Keras model per penalty, one compiled step for the whole path

Full-batch proximal gradient descent with the step `1/L` (`L` the Lipschitz constant of the
`"mse"` gradient); the strength is a `keras.Variable`, so each path is one model, warm-started
from one strength to the next without recompiling. The strengths run from `lam_max`, the
smallest L1 strength at which every coefficient is zero (`2 max|X^T y| / n` with `"mse"`),
down to `lam_max / 100`; MCP has the same slope at zero, hence the same `lam_max`."""),
    ("code", """\
lipschitz = 2 * np.linalg.eigvalsh(X.T @ X / n).max()


def fit_path(regularizer, strengths):
    \"\"\"Coefficients (one row per strength) of a linear model regularized by `regularizer`,
    along `strengths` with warm starts, each strength until converged.\"\"\"
    model = keras.Sequential([
        keras.Input((p,)),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                           kernel_regularizer=regularizer),
    ])
    model.compile(optimizer=keras.optimizers.SGD(1 / lipschitz), loss="mse")
    path = kreg.regularization_path(model, X, y, strengths, tol=1e-7, max_epochs=100_000)
    assert path.converged.all()
    return path.weights()[:, :, 0].astype("float64")


def selection(coefs):
    \"\"\"False positives, false negatives and the worst error on the true coefficients.\"\"\"
    false_pos = ((coefs != 0) & ~true_support).sum(axis=1)
    false_neg = ((coefs == 0) & true_support).sum(axis=1)
    bias = np.abs(coefs[:, true_support] - oracle[true_support]).max(axis=1)
    return false_pos, false_neg, bias


lam_max = 2 * np.abs(X.T @ y).max() / n
relative = np.geomspace(1.0, 0.01, 25)  # strength / lam_max
l1_coefs = fit_path(kreg.L1(0.0), relative * lam_max)

_, lasso_coefs, _ = lasso_path(X, y, alphas=relative * lam_max / 2, tol=1e-12,
                               max_iter=100_000)
lasso_coefs = lasso_coefs.T
l1_error = np.abs(l1_coefs - lasso_coefs).max() / np.abs(lasso_coefs).max()
print(f"L1: largest difference to lasso_path {l1_error:.1e} of the largest coefficient")
assert l1_error < 1e-3 and np.array_equal(l1_coefs == 0, lasso_coefs == 0)"""),
    ("md", """\
## MCP

`kreg.MCP(strength, gamma=3)`: `p(x) = strength |x| - x² / (2 gamma)` up to
`|x| = gamma * strength`, flat beyond. The problem is nonconvex, so the check is the
first-order optimality condition: with `g = 2/n X^T (Xw - y)`, `g_j + sign(w_j) max(strength -
|w_j| / gamma, 0) = 0` for every nonzero `w_j` and `|g_j| <= strength` for every zero one."""),
    ("code", """\
GAMMA = 3.0
mcp_coefs = fit_path(kreg.MCP(0.0, gamma=GAMMA), relative * lam_max)
worst = 0.0
for strength, w in zip(relative * lam_max, mcp_coefs):
    g = 2 / n * X.T @ (X @ w - y)
    slope = np.sign(w) * np.maximum(strength - np.abs(w) / GAMMA, 0)
    on = w != 0
    worst = max(worst, np.abs(g[on] + slope[on]).max(initial=0) / strength)
    assert np.all(np.abs(g[~on]) <= strength * (1 + 1e-4))
print(f"MCP: worst stationarity residual {worst:.1e} of the strength")
assert worst < 1e-3"""),
    ("md", """\
## The adaptive lasso

First an unpenalized fit (the same model with `kreg.L1(0.0)`: least squares), then weights
`1 / |w_first|` (clipped, so that a zero coefficient would not get an infinite weight), then
the weighted lasso path. A weighted lasso is the plain lasso on the columns `X / weights`
(coefficients divided by the weights), which is what scikit-learn is given to compare.
Its `lam_max` is `2 max|X^T y / weights| / n`."""),
    ("code", """\
first = fit_path(kreg.L1(0.0), [0.0])[0]
assert np.abs(first - np.linalg.lstsq(X, y, rcond=None)[0]).max() < 1e-4  # least squares
weights = 1 / np.maximum(np.abs(first), 1e-6)
lam_max_adaptive = 2 * np.abs(X.T @ y / weights).max() / n
adaptive_coefs = fit_path(kreg.L1(0.0, weights=weights[:, None]), relative * lam_max_adaptive)

_, ref, _ = lasso_path(X / weights, y, alphas=relative * lam_max_adaptive / 2, tol=1e-12,
                       max_iter=100_000)
ref = ref.T / weights
adaptive_error = np.abs(adaptive_coefs - ref).max() / np.abs(ref).max()
print(f"adaptive lasso: largest difference to lasso_path on X / weights {adaptive_error:.1e}")
assert adaptive_error < 1e-3"""),
    ("md", """\
## Support recovery and bias against the strength

Left: the number of wrongly selected plus wrongly dropped features. Right: the largest error
on the six true coefficients, measured against the oracle (least squares on the true
support), at the strengths where the support is exactly right."""),
    ("code", """\
paths = {"L1": l1_coefs, f"MCP (gamma={GAMMA:g})": mcp_coefs, "adaptive lasso": adaptive_coefs}
fig, (ax_sel, ax_bias) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
summary = {}
for label, coefs in paths.items():
    false_pos, false_neg, bias = selection(coefs)
    exact = (false_pos == 0) & (false_neg == 0)
    summary[label] = exact, bias
    ax_sel.plot(relative, false_pos + false_neg, marker="o", markersize=3, label=label)
    ax_bias.plot(relative[exact], bias[exact] + 1e-6, marker="o", markersize=3, label=label)
    print(f"{label:>15}: exact support at {exact.sum():2d} of {len(relative)} strengths, "
          f"smallest error on the true coefficients there {bias[exact].min():.2e}")
ax_sel.set(xscale="log", xlabel="strength / lam_max", ylabel="wrong features (FP + FN)",
           title="support recovery")
ax_bias.set(xscale="log", yscale="log", xlabel="strength / lam_max",
            ylabel="max |w - oracle| on the true support", title="bias where the support is right")
for ax in (ax_sel, ax_bias):
    ax.invert_xaxis()
    ax.legend(fontsize="small")
plt.show()

l1_exact, l1_bias = summary["L1"]
mcp_exact, mcp_bias = summary[f"MCP (gamma={GAMMA:g})"]
ad_exact, ad_bias = summary["adaptive lasso"]
assert l1_exact.any() and mcp_exact.any() and ad_exact.any()
# The lasso never selects the right features without shrinking the true ones.
assert l1_bias[l1_exact].min() > 0.1
# MCP does: at some strength it returns exactly the oracle.
assert mcp_bias[mcp_exact].min() < 1e-3
# The adaptive lasso: less than half the lasso's best bias, over more strengths.
assert ad_bias[ad_exact].min() < l1_bias[l1_exact].min() / 2
assert ad_exact.sum() > l1_exact.sum()"""),
    ("md", """\
## The paths

The lasso's true coefficients (colours) climb towards their values only as the strength
falls, while the noise features (grey) enter; MCP's jump to the oracle values as soon as they
pass `gamma * strength`; the adaptive lasso keeps the noise features out almost to the end."""),
    ("code", """\
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True, layout="constrained")
for ax, (label, coefs) in zip(axes, paths.items()):
    kreg.plot.coefficient_paths(relative, coefs, ax=ax, title=label, xlabel="strength / lam_max")
    for j, line in enumerate(ax.lines[:p]):
        if not true_support[j]:
            line.set_color("0.75")
    ax.scatter(np.full(6, relative[-1]), oracle[true_support], marker="x", color="k",
               zorder=3, label="oracle")
    ax.legend(fontsize="small", loc="upper left")
plt.show()"""),    ("md", """\
## Unit pruning in an MLP: group MCP after the group lasso

`kreg.GroupMCP(groups="units")` applies MCP to the norm of each hidden unit's incoming weights
(Breheny & Huang's group MCP, with the group lasso's `sqrt(p_g)` scaling). Being nonconvex,
it is best started from a sensible point: here a teacher network with 4 hidden ReLU units
generates the targets, a 32-unit student is pruned by `kreg.GroupLasso`, and the same student
is then trained on with `kreg.GroupMCP` at the same strength. The pruned units stay dead (both
penalties have the same slope at zero), and the surviving ones are no longer shrunk, so the
training error falls to round-off. (The group penalties' prox is exact for a scalar step, so
the optimizer is SGD with momentum.)"""),
    ("code", """\
rng_mlp = np.random.default_rng(1)
d, teacher_units = 10, 4
W1 = rng_mlp.normal(size=(d, teacher_units))
w2 = rng_mlp.choice([-1.0, 1.0], size=(teacher_units, 1)) * rng_mlp.uniform(1, 2, (teacher_units, 1))
X_mlp = rng_mlp.normal(size=(500, d)).astype("float32")
y_mlp = np.maximum(X_mlp @ W1, 0) @ w2
y_mlp = ((y_mlp - y_mlp.mean()) / y_mlp.std()).astype("float32")
MLP_STEPS = 2000
mlp_batch = tf.data.Dataset.from_tensors((X_mlp, y_mlp)).repeat(MLP_STEPS)


def train_mlp(regularizer, start=None):
    \"\"\"A 32-unit student trained full batch under kreg.Proximal; returns (model, unit norms, MSE).\"\"\"
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((d,)),
        keras.layers.Dense(32, activation="relu", kernel_regularizer=regularizer),
        keras.layers.Dense(1),
    ])
    if start is not None:
        model.set_weights(start.get_weights())
    model.compile(optimizer=kreg.Proximal(keras.optimizers.SGD(0.05, momentum=0.9)), loss="mse",
                  steps_per_execution=MLP_STEPS, jit_compile=True)
    model.fit(mlp_batch, epochs=1, verbose=0, shuffle=False)
    norms = np.linalg.norm(model.layers[0].kernel.numpy(), axis=0)
    mse = float(np.mean((model.predict(X_mlp, batch_size=500, verbose=0) - y_mlp) ** 2))
    return model, norms, mse


group_lasso_mlp, gl_norms, gl_mse = train_mlp(kreg.GroupLasso(0.01, groups="units"))
_, mcp_norms, mcp_mse = train_mlp(kreg.GroupMCP(0.01, gamma=3.0, groups="units"),
                                  start=group_lasso_mlp)
for label, norms, mse in (("GroupLasso", gl_norms, gl_mse), ("then GroupMCP", mcp_norms, mcp_mse)):
    print(f"{label:>13}: {np.sum(norms > 0):2d} of 32 units alive, training MSE {mse:.1e}, "
          f"surviving unit norms {np.round(np.sort(norms[norms > 0])[::-1], 3)}")
assert np.sum(gl_norms > 0) <= 2 * teacher_units  # the group lasso prunes most units
assert np.array_equal(mcp_norms > 0, gl_norms > 0)  # group MCP keeps the same units
assert np.all(mcp_norms[gl_norms > 0] > gl_norms[gl_norms > 0])  # ... less shrunk
assert mcp_mse < gl_mse / 100  # and fits the teacher where the group lasso's bias could not"""),
]


NOTEBOOKS["06_mlp_path_and_cv"] = [
    ("md", """\
# A regularization path and cross-validation for an MLP

**What this shows.** `kreg.regularization_path` and `kreg.cross_validate` on a non-linear
model: an MLP on scikit-learn's digits (64 pixels, two hidden ReLU layers of 32 units, 10
classes) whose hidden kernels carry `kreg.GroupLasso(groups="units")`, trained under
`kreg.Proximal(SGD)` (the proximal gradient method), so that whole hidden units become
exactly zero:

* a path over 9 strengths with validation data, one row per strength logged by a plain
  function through `callbacks=`, every strength trained until its optimality residual is
  below the tolerance (`path.converged`);
* hidden units kept (counted by `kreg.unit_counts`, checked against a NumPy count of the
  nonzero weight groups) and validation accuracy against the strength;
* warm starts (the default) against independent fits (`warm_start=False`): to the same
  tolerance, the warm-started path takes about a quarter of the epochs, and on this
  non-convex model it ends at other solutions, and why;
* 3-fold `kreg.cross_validate` over 5 strengths, the strength picked by the
  one-standard-error rule (checked in NumPy from the fold scores), and the refitted model's
  units and test accuracy.

For an MLP there is no reference solution (scikit-learn's, or a known answer) to compare
with: the asserts check the claims above on the numbers the notebook computes, with fixed
seeds, on TensorFlow and JAX."""),
    ("code", _QUIET + """
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, train_test_split

import kreg

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
# A test set that plays no part in any choice; the rest for the path (train / validation)
# and, whole, for cross-validation.
x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                                  stratify=y)
x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.25,
                                                  random_state=0, stratify=y_rest)
print(f"{len(x_train)} training, {len(x_val)} validation, {len(x_test)} test images")"""),
    ("md", """\
## The model and the convergence criterion

Each strength is trained full batch (one step is one epoch over the training data) with
`kreg.Proximal(SGD(0.05))`: a gradient step on the loss, then the exact prox of the group
lasso, which sets whole units to zero. With plain SGD the criterion is an optimality
residual: the displacement of a proximal gradient step over the learning rate,
`||w - prox(w - lr * grad L(w))|| / lr`, which is zero exactly at a stationary point of loss
plus penalty. `regularization_path` divides it by the loss gradient at zero penalised
weights; for this network that gradient is 0 (with both hidden kernels zero, no gradient
reaches either), so the scale is 1 and `tol` is absolute. `tol=0.02` is a loose tolerance
(the residual after the first steps is about 0.25; BENCHMARKS.md, section 7), chosen so that
the notebook runs in about a minute; a strength that has not converged after `max_epochs`
steps stops there, and a warning names it.

The network is not convex, so the steps are plain proximal gradient steps (the default,
`accelerate=None`, takes FISTA's accelerated steps only on problems known to be convex: their
extrapolation can raise a network's objective). The learning rate 0.05 is one at which the
objective falls at every strength (BENCHMARKS.md, section 7, lists the rates that did not)."""),
    ("code", """\
STRENGTHS = np.geomspace(5e-3, 5e-5, 9)
MAX_EPOCHS, TOL = 20_000, 2e-2
HIDDEN = ("hidden1", "hidden2")


def build_mlp():
    \"\"\"A new compiled MLP, always with the same initial weights.\"\"\"
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu", name="hidden1",
                           kernel_regularizer=kreg.GroupLasso(0.0, groups="units")),
        keras.layers.Dense(32, activation="relu", name="hidden2",
                           kernel_regularizer=kreg.GroupLasso(0.0, groups="units")),
        keras.layers.Dense(10, name="logits"),
    ])
    model.compile(optimizer=kreg.Proximal(keras.optimizers.SGD(0.05)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def fit_path(**kwargs):
    \"\"\"`kreg.regularization_path` over STRENGTHS; its non-convergence warning is printed.\"\"\"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = kreg.regularization_path(build_mlp(), x_train, y_train, STRENGTHS,
                                        validation_data=(x_val, y_val), tol=TOL,
                                        max_epochs=MAX_EPOCHS, **kwargs)
    messages = [str(w.message) for w in caught if "kreg.regularization_path" in str(w.message)]
    for message in messages:
        print("UserWarning:", message)
    # The warning is given exactly when some strength did not converge.
    assert len(messages) == (0 if path.converged.all() else 1)
    return path


def units_kept(path):
    \"\"\"`(n_strengths, 2)`: per hidden layer, the units with a nonzero incoming weight
    (a nonzero column of the kernel: GroupLasso's groups="units"), counted in NumPy.\"\"\"
    return np.array([np.any(path.weights(name) != 0, axis=1).sum(axis=1) for name in HIDDEN]).T"""),
    ("md", """\
## The path, one logged row per strength

`callbacks=` takes Keras callbacks (`CSVLogger`, `TensorBoard`, a tracker's Keras callback) or
plain functions, called with one row per strength: what `wandb.log(row)` would receive. The
path starts from the strongest strength, and each strength starts from the previous one's
weights (`warm_start="auto"`, the default)."""),
    ("code", """\
rows = []


def log_row(row):  # stands in for wandb.log(row), mlflow.log_metrics(row) or a CSV writer
    rows.append(row)
    print(f"strength {row['strength']:.2e}: {row['epochs']} epochs, converged "
          f"{bool(row['converged'])}, {100 * row['sparsity']:.0f}% zero weights, "
          f"val accuracy {row['val_accuracy']:.3f}")


path = fit_path(callbacks=[log_row])
print(path)
assert len(rows) == len(STRENGTHS)
np.testing.assert_allclose([r["val_accuracy"] for r in rows], path.metrics["val_accuracy"])"""),
    ("md", """\
**Did the strengths converge?** Yes: every strength's residual is below `tol` (the table
below; asserted), so `regularization_path` gave no warning (had one stopped at `max_epochs`,
a warning would name it, and its weights would be where training stopped, not a stationary
point). The first strength takes most of the epochs: it starts from the initial weights.
Every later one starts from the previous strength's solution, a few hundred epochs away."""),
    ("code", """\
print("strength   epochs  converged  criterion")
for s, e, c, v in zip(path.strengths, path.epochs, path.converged, path.criterion):
    print(f"{s:.2e}  {e:6d}  {str(c):>9}  {v:9.3g}")
print(f"converged: {int(path.converged.sum())} of {len(path)} strengths, "
      f"{int(path.epochs.sum())} epochs in all")
assert path.converged.all() and np.all(path.criterion <= TOL)
# The first strength, from the initial weights, takes more epochs than all the others.
assert path.epochs[0] > path.epochs[1:].sum()"""),
    ("md", """\
## Units kept and validation accuracy

`kreg.unit_counts(model)` gives per layer `(kept, total)`: the units that `kreg.compact` would
keep. `path.model_at(s)` is a new Keras model with the weights of strength `s`. Its counts are
checked against the NumPy count of nonzero weight groups (they would differ for a layer with no
unit left: `kreg.compact` never empties a layer, so it counts one; no strength here goes that
far)."""),
    ("code", """\
warm_units = units_kept(path)
for k, s in enumerate(path.strengths):
    counts = kreg.unit_counts(path.model_at(s))
    assert [counts[name] for name in HIDDEN] == [(int(n), 32) for n in warm_units[k]]
    print(f"strength {s:.2e}: hidden units kept {warm_units[k].tolist()} of [32, 32], "
          f"val accuracy {path.metrics['val_accuracy'][k]:.3f}")
path.plot(metric="accuracy", title="accuracy along the path (warm starts)")"""),
    ("md", """\
## Warm starts against independent fits

For the lasso on a linear model a warm start only saves steps: every strength has one
solution. Here it saves steps and changes the answer. With `warm_start=False`, each strength
starts from the model's initial weights (independent fits), trained to the same tolerance:
every strength then costs thousands of epochs, like the first one.

A hidden unit whose incoming weights are all zero and whose bias is not positive outputs 0
for every image; the gradient of the loss with respect to its incoming weights is then exactly
zero, so at every weaker strength the prox leaves them at zero: such a unit, once pruned,
stays pruned. A warm-started path from the strong end therefore keeps the few units of its
strongest strength and adds units slowly, while the independent fits keep more units as the
strength falls. Both paths end where the residual is below `tol`, at different stationary
points of a non-convex objective: here the warm path's have the lower objective (loss plus
penalty, on the training data) at every strength after the first, with fewer units, and the
independent fits validate about as well or a little better. Which path to prefer is a
modelling choice; the warm one costs a fraction of the epochs."""),
    ("code", """\
independent = fit_path(warm_start=False)
independent_units = units_kept(independent)

# On the warm path, a pruned unit with a non-positive bias is pruned at every weaker strength.
for name, layer in zip(HIDDEN, range(2)):
    kernel = path.weights(name)
    bias = path.weights(next(n for n in path.names if n.endswith(f"{name}/bias")))
    for k in range(len(path) - 1):
        dead = ~np.any(kernel[k] != 0, axis=0) & (bias[k] <= 0)
        assert not np.any(kernel[k + 1][:, dead]), (name, k)

fig, (ax_units, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
for label, result, units in (("warm starts (default)", path, warm_units),
                             ("independent fits (warm_start=False)", independent,
                              independent_units)):
    ax_units.plot(result.strengths, units.sum(axis=1), "o-", label=label)
    ax_acc.plot(result.strengths, result.metrics["val_accuracy"], "o-", label=label)
    print(f"{label:>36}: units {units.sum(axis=1).tolist()}")
    print(f"{'':>36}  val accuracy {np.round(result.metrics['val_accuracy'], 3).tolist()}")
ax_units.set(ylabel="hidden units kept (of 64)", title="units kept")
ax_acc.set(ylabel="validation accuracy", title="validation accuracy")
for ax in (ax_units, ax_acc):
    ax.set(xscale="log", xlabel="strength")
    ax.invert_xaxis()
    ax.legend(fontsize="small")
plt.show()

total_independent, total_warm = independent_units.sum(axis=1), warm_units.sum(axis=1)
# Independent fits: the strongest strength keeps fewer units than the weakest ...
assert total_independent[0] < total_independent[-1]
# ... and at the weakest strength, more than the warm-started path does.
assert total_independent[-1] > total_warm[-1]
# The first strength is the same fit on both paths.
assert total_independent[0] == total_warm[0] and independent.epochs[0] == path.epochs[0]

# Both paths converged; the independent fits took more than twice the epochs ...
print(f"epochs: warm starts {int(path.epochs.sum())}, independent fits "
      f"{int(independent.epochs.sum())}")
assert independent.converged.all()
assert independent.epochs.sum() > 2 * path.epochs.sum()
# ... and ended at solutions of a higher objective (the logged loss includes the penalty).
print("objective, warm / independent:",
      np.round(path.metrics["loss"] / independent.metrics["loss"], 2).tolist())
assert np.all(path.metrics["loss"][1:] < independent.metrics["loss"][1:])"""),
    ("md", """\
## Cross-validation and the one-standard-error rule

`kreg.cross_validate` trains one path per fold from fresh weights (`build_model()` is called
for each) and scores every strength on the held-out fold; here 3 stratified folds of all the
non-test images, 5 strengths, accuracy as the score, warm starts (the default: a quarter
of the epochs; `warm_start=False` would score the independent fits' denser solutions). The
best strength has the highest mean accuracy; the **one-standard-error** strength is the
strongest whose mean is within one standard error of the best: the sparser model that the
folds cannot tell apart from the best. `cv.model` is refitted on all the non-test images at
the best strength, and `cv.path` holds that refit's path, down from the strongest strength,
so it also has the one-SE model. Every strength converges on every fold and in the refit
(asserted): the scores compare solutions to the same tolerance, not what a training budget
reached."""),
    ("code", """\
CV_STRENGTHS = STRENGTHS[::2]
cv = kreg.cross_validate(build_mlp, x_rest, y_rest, CV_STRENGTHS,
                         cv=StratifiedKFold(3, shuffle=True, random_state=0),
                         scoring="accuracy", tol=TOL, max_epochs=MAX_EPOCHS)
print(cv)
for s, m, se in zip(cv.strengths, cv.mean, cv.std_error):
    print(f"strength {s:.2e}: CV accuracy {m:.3f} +- {se:.3f}")
converged = [int(p.converged.sum()) for p in cv.paths]
print(f"strengths converged per fold: {converged} of {len(CV_STRENGTHS)}")
assert converged == [len(CV_STRENGTHS)] * 3 and cv.path.converged.all()

# The same choice, in NumPy, from the fold scores.
mean = cv.scores.mean(axis=0)
se = cv.scores.std(axis=0, ddof=1) / np.sqrt(cv.scores.shape[0])
best = int(np.argmax(mean))
one_se = int(np.flatnonzero(mean >= mean[best] - se[best])[0])  # the grid runs strong to weak
assert (cv.best_strength, cv.one_se_strength) == (CV_STRENGTHS[best], CV_STRENGTHS[one_se])
assert cv.one_se_strength >= cv.best_strength
cv.plot(title="3-fold cross-validation of the group lasso strength")"""),
    ("code", """\
def test_accuracy(model):
    logits = model.predict(x_test, batch_size=len(x_test), verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y_test))


chosen = {"one-SE": cv.path.model_at(cv.one_se_strength), "best": cv.model}
chosen_units = {}
for label, model in chosen.items():
    counts = kreg.unit_counts(model)
    chosen_units[label] = sum(counts[name][0] for name in HIDDEN)
    strength = float(model.get_layer("hidden1").kernel_regularizer.strength.numpy())
    print(f"{label:>6}: strength {strength:.2e}, hidden units kept "
          f"{[counts[name] for name in HIDDEN]}, test accuracy {test_accuracy(model):.3f}")
# The one-SE model is the sparser one, and it still classifies the test digits well.
assert chosen_units["one-SE"] <= chosen_units["best"]
assert test_accuracy(chosen["one-SE"]) > 0.9"""),
]


def build(name):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, source) in enumerate(NOTEBOOKS[name]):
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(make(source, id=f"cell-{i:02d}"))  # stable ids: clean diffs
    nbformat.validate(nb)
    return nb


def path(name):
    return HERE / f"{name}.ipynb"


def main(argv):
    check = argv == ["--check"]
    if argv and not check:
        sys.exit("usage: python notebooks/_build.py [--check]")
    stale = []
    for name in NOTEBOOKS:
        text = nbformat.writes(build(name)) + "\n"
        if check:
            if not path(name).exists() or path(name).read_text() != text:
                stale.append(path(name).name)
        else:
            path(name).write_text(text)
            print(f"wrote {path(name)}")
    if stale:
        sys.exit(f"out of date with notebooks/_build.py: {', '.join(stale)}")


if __name__ == "__main__":
    main(sys.argv[1:])
