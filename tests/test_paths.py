"""kreg.regularization_path, kreg.cross_validate, kreg.strength_max against independent solvers.

Scaling (see kreg.regularizers): Keras's "mse" is twice scikit-learn's data term
`1/(2n) ||y - Xw||^2`, so `Lasso(alpha)` is `kreg.L1(2 * alpha)`.
"""

import csv
import warnings

import keras
import numpy as np
import pytest

import kreg
from conftest import SLOW_ON_TORCH

pytestmark = pytest.mark.usefixtures("device")

# PyTorch runs Keras's train steps eagerly, one per call: the paths below train thousands of
# steps (15-30 s each there, the plain proximal gradient path of the acceleration test and
# cross-validation's six paths included), so on PyTorch they are `slow` (run them with
# `KERAS_BACKEND=torch python -m pytest -m slow tests/test_paths.py`).

TIGHT = 1e-7  # the residual tolerance that gives 1e-4 of the largest coefficient on diabetes


@pytest.fixture(scope="module")
def diabetes():
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    return x, y - y.mean()


def linear_model(x, reg, lr=None):
    n, p = x.shape
    lipschitz = 2.0 / n * np.linalg.eigvalsh(x.T @ x).max()
    model = keras.Sequential([keras.Input((p,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros", kernel_regularizer=reg)])
    model.compile(optimizer=keras.optimizers.SGD(lr or 1.0 / lipschitz), loss="mse",
                  metrics=["mae"])
    return model


def assert_same_solution(coefs, ref):
    """1e-4 of the largest coefficient, and the same exact zeros, at every strength."""
    scale = np.abs(ref).max()
    np.testing.assert_array_less(np.abs(coefs - ref).max(axis=1), 1e-4 * scale)
    np.testing.assert_array_equal(coefs == 0, ref == 0)


def test_strength_max_is_the_gradient_bound(diabetes):
    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0))
    expected = 2.0 / len(y) * np.abs(x.T @ y).max()
    assert kreg.strength_max(model, x, y) == pytest.approx(expected, rel=1e-5)
    path = kreg.regularization_path(model, x, y, n_strengths=3)
    assert path.strength_max == pytest.approx(expected, rel=1e-5)
    assert path.strengths[0] == pytest.approx(expected, rel=1e-5)
    assert np.all(path.weights()[0] == 0) and path.sparsity[0] == 1.0
    # just below the bound, one coefficient leaves zero
    below = kreg.regularization_path(model, x, y, strengths=[0.99 * expected], tol=TIGHT)
    assert np.count_nonzero(below.weights()[0]) == 1


def test_strength_max_group_and_elastic_net(diabetes):
    x, y = diabetes
    g = 2.0 / len(y) * (x.T @ y)
    ids = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    group = kreg.strength_max(linear_model(x, kreg.GroupLasso(0.0, groups=ids)), x, y)
    norms = [np.linalg.norm(g[np.asarray(ids) == k]) / np.sqrt(ids.count(k)) for k in range(4)]
    assert group == pytest.approx(max(norms), rel=1e-5)
    enet = kreg.strength_max(linear_model(x, kreg.ElasticNet(0.0, l1_ratio=0.25)), x, y)
    assert enet == pytest.approx(np.abs(g).max() / 0.25, rel=1e-5)
    with pytest.raises(ValueError, match="never zeroes"):
        kreg.strength_max(linear_model(x, kreg.ElasticNet(0.0, l1_ratio=0.0)), x, y)


def test_default_grid_with_adam_and_a_group_penalty(diabetes):
    # The grid's bound is computed on a probe clone (plain SGD); with another optimizer
    # the path once read it from its own clone's regularizers, whose layout was unbound.
    x, y = diabetes
    ids = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    model = linear_model(x, kreg.GroupLasso(0.0, groups=ids))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    path = kreg.regularization_path(model, x, y, n_strengths=3, max_epochs=64)
    g = 2.0 / len(y) * (x.T @ y)
    bound = max(np.linalg.norm(g[np.asarray(ids) == k]) / np.sqrt(ids.count(k))
                for k in range(4))
    np.testing.assert_allclose(path.strengths, bound * np.geomspace(1, 1e-3, 3), rtol=1e-5)


def test_strength_max_of_zero_is_an_error_not_a_strength(rng):
    # Every hidden kernel penalised: with all of them zero no gradient reaches any, so
    # the bound is 0, which is no strength to start a path from.
    x = rng.normal(size=(40, 5)).astype("float32")
    y = x[:, :1] ** 2
    model = keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(8, activation="relu", kernel_regularizer=kreg.GroupLasso(0.0)),
        keras.layers.Dense(8, activation="relu", kernel_regularizer=kreg.GroupLasso(0.0)),
        keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    with pytest.raises(ValueError, match="argument `model`: expected a model whose loss "
                                         "gradient at zero penalised weights is not zero"):
        kreg.strength_max(model, x, y)
    with pytest.raises(ValueError, match="argument `strengths`: expected explicit strengths"):
        kreg.regularization_path(model, x, y, n_strengths=3)


def test_lasso_path_matches_sklearn(diabetes):
    from sklearn.linear_model import lasso_path

    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0))
    path = kreg.regularization_path(model, x, y, n_strengths=12, tol=TIGHT, max_epochs=50_000)
    assert path.converged.all()
    assert np.all(np.diff(path.strengths) < 0)
    _, ref, _ = lasso_path(x, y, alphas=path.strengths / 2, tol=1e-12, max_iter=1_000_000)
    assert_same_solution(path.weights()[:, :, 0], ref.T)
    assert path.weights("dense").shape == (12, 10, 1)  # by layer name
    assert set(path.metrics) == {"loss", "mae"}
    mse = np.mean((x @ ref - y[:, None]) ** 2, axis=0)
    penalty = path.strengths * np.abs(ref).sum(axis=0)
    np.testing.assert_allclose(path.metrics["loss"], mse + penalty, rtol=1e-4)
    # the input model is untouched; model_at gives a new model with the path's weights
    assert np.all(model.get_weights()[0] == 0)
    at = path.model_at(path.strengths[5])
    assert at is not model
    np.testing.assert_array_equal(at.get_weights()[0], path.weights()[5])
    assert float(at.layers[0].kernel_regularizer.strength.numpy()) == pytest.approx(
        path.strengths[5], rel=1e-6)
    assert float(model.layers[0].kernel_regularizer.strength.numpy()) == 0.0


def test_elastic_net_path_matches_sklearn(diabetes):
    from sklearn.linear_model import enet_path

    x, y = diabetes
    r = 0.6  # kreg's l1_ratio; scikit-learn's rho = r / (2 - r), alpha = strength / (1 + rho)
    rho = r / (2 - r)
    model = linear_model(x, kreg.ElasticNet(0.0, l1_ratio=r))
    path = kreg.regularization_path(model, x, y, n_strengths=10, tol=TIGHT, max_epochs=50_000)
    assert path.converged.all()
    _, ref, _ = enet_path(x, y, l1_ratio=rho, alphas=path.strengths / (1 + rho), tol=1e-12,
                          max_iter=1_000_000)
    assert_same_solution(path.weights()[:, :, 0], ref.T)


@SLOW_ON_TORCH
def test_group_lasso_path_matches_skglm(diabetes):
    from skglm.datafits import QuadraticGroup
    from skglm.penalties import WeightedGroupL2
    from skglm.solvers import GroupBCD
    from skglm.utils.data import grp_converter

    x, y = diabetes
    ids = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    sizes = np.bincount(ids)
    model = linear_model(x, kreg.GroupLasso(0.0, groups=ids))
    path = kreg.regularization_path(model, x, y, n_strengths=8, tol=TIGHT, max_epochs=50_000)
    assert path.converged.all()
    grp_indices, grp_ptr = grp_converter([list(np.flatnonzero(np.equal(ids, k)))
                                          for k in range(4)], x.shape[1])
    ref = []
    for strength in path.strengths:
        penalty = WeightedGroupL2(strength / 2, np.sqrt(sizes).astype("float64"), grp_ptr,
                                  grp_indices)
        solver = GroupBCD(tol=1e-12, max_iter=10_000)
        w = solver.solve(x, y, QuadraticGroup(grp_ptr, grp_indices), penalty)[0]
        ref.append(w)
    ref = np.array(ref)
    coefs = path.weights()[:, :, 0]
    np.testing.assert_array_less(np.abs(coefs - ref).max(axis=1), 1e-4 * np.abs(ref).max())
    # the same groups are zero (skglm's zero groups are exact)
    for k in range(4):
        member = np.equal(ids, k)
        np.testing.assert_array_equal(np.all(coefs[:, member] == 0, axis=1),
                                      np.all(ref[:, member] == 0, axis=1))


def lasso_residual(x, y, w, strength, lr):
    """The proximal gradient residual of the docstring, in float64 NumPy, relative to the
    loss gradient at zero: `||w - prox(w - lr grad)|| / lr / ||grad L(0)||` for
    `mean((x w - y)^2) + strength ||w||_1`."""
    n = len(y)
    w = np.asarray(w, "float64")
    grad = 2.0 / n * x.T @ (x @ w - y)
    v = w - lr * grad
    prox = np.sign(v) * np.maximum(np.abs(v) - lr * strength, 0.0)
    return np.linalg.norm(w - prox) / lr / np.linalg.norm(2.0 / n * x.T @ y)


def fista_reference(x, y, strength, lr, steps):
    """FISTA with gradient restart (Beck & Teboulle 2009; O'Donoghue & Candes 2015) in
    float64 NumPy from zero: `(the weights after a plain step from the last iterate,
    number of restarts)`."""
    n = len(y)

    def prox_step(w):
        v = w - lr * 2.0 / n * x.T @ (x @ w - y)
        return np.sign(v) * np.maximum(np.abs(v) - lr * strength, 0.0)

    previous = point = np.zeros(x.shape[1])
    t, restarts = 1.0, 0
    for _ in range(steps):
        new = prox_step(point)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        if (point - new) @ (new - previous) > 0:
            restarts += 1
            point, t = new, 1.0
        else:
            point, t = new + (t - 1) / t_next * (new - previous), t_next
        previous = new
    return prox_step(previous), restarts


def test_accelerated_steps_are_fista_with_restart(diabetes):
    """Four compiled blocks of 16 steps: 15 FISTA steps each (the momentum runs on across
    blocks) and a plain step from the last iterate that probes the residual; the weights
    after the last probe are NumPy FISTA's (60 steps, restarts included) plus a plain step,
    and not what 64 plain proximal gradient steps give."""
    x, y = diabetes
    lr = 1.0 / (2.0 / len(y) * np.linalg.eigvalsh(x.T @ x).max())
    strength = 2.0
    model = linear_model(x, kreg.L1(0.0), lr=lr)
    with pytest.warns(UserWarning, match="did not converge"):
        fast = kreg.regularization_path(model, x, y, [strength], tol=1e-12, max_epochs=64)
        plain = kreg.regularization_path(model, x, y, [strength], tol=1e-12, max_epochs=64,
                                         accelerate=False)
    assert fast.epochs[0] == plain.epochs[0] == 64
    expected, restarts = fista_reference(x, y, strength, lr, 60)
    assert restarts >= 1  # the restart branch is exercised
    scale = np.abs(expected).max()
    np.testing.assert_allclose(fast.weights()[0, :, 0], expected, atol=1e-5 * scale)
    assert np.abs(plain.weights()[0, :, 0] - expected).max() > 1e-3 * scale


def test_default_steps_are_fista_only_where_the_problem_is_known_convex(diabetes, rng):
    """accelerate=None takes FISTA's steps for a linear model under a convex loss and
    penalty (the steps of accelerate=True) and plain proximal gradient steps for a network
    (those of accelerate=False): on a nonconvex objective FISTA's extrapolation can raise
    the objective and end in a worse stationary point (BENCHMARKS.md section 7)."""
    x, y = diabetes
    kw = dict(strengths=[2.0], tol=1e-12, max_epochs=64)
    linear = linear_model(x, kreg.L1(0.0))
    with pytest.warns(UserWarning, match="did not converge"):
        default = kreg.regularization_path(linear, x, y, **kw).weights()[0]
        fista = kreg.regularization_path(linear, x, y, accelerate=True, **kw).weights()[0]
        plain = kreg.regularization_path(linear, x, y, accelerate=False, **kw).weights()[0]
    np.testing.assert_array_equal(default, fista)
    assert np.abs(default - plain).max() > 1e-3 * np.abs(fista).max()
    network = keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(6, activation="tanh", kernel_regularizer=kreg.GroupLasso(0.0)),
        keras.layers.Dense(1)])
    network.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    y = y / np.abs(y).max()
    with pytest.warns(UserWarning, match="did not converge"):
        default = kreg.regularization_path(network, x, y, **kw).weights()[0]
        fista = kreg.regularization_path(network, x, y, accelerate=True, **kw).weights()[0]
        plain = kreg.regularization_path(network, x, y, accelerate=False, **kw).weights()[0]
    np.testing.assert_array_equal(default, plain)
    assert np.abs(default - fista).max() > 1e-4 * np.abs(plain).max()


def test_what_is_known_convex():
    from kreg import _path_fit

    def model(*layers):
        return keras.Sequential([keras.Input((4, 2)), *layers])

    dense = lambda **kw: keras.layers.Dense(3, kernel_regularizer=kreg.L1(0.1), **kw)
    flat = keras.layers.Flatten
    convex = kreg.L1(0.1), kreg.ElasticNet(0.1), kreg.GroupLasso(0.1)
    logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    probabilities = keras.losses.SparseCategoricalCrossentropy()
    cases = [
        (model(flat(), dense()), "mse", convex, True),
        (model(flat(), dense()), keras.losses.Huber(), convex, True),
        (model(flat(), dense()), logits, convex, True),
        (model(keras.layers.EinsumDense("abc,cd->abd", (4, 3))), "mae", convex, True),
        (model(flat(), dense()), probabilities, convex, False),  # not convex in the weights
        (model(flat(), dense()), "binary_crossentropy", convex, False),
        (model(flat(), dense()), lambda y, p: (y - p) ** 2, convex, False),  # unknown
        (model(flat(), dense(activation="sigmoid")), "mse", convex, False),
        (model(flat(), dense(), keras.layers.ReLU()), "mse", convex, False),
        (model(flat(), dense(), dense()), "mse", convex, False),  # two layers
        (model(flat(), keras.layers.Dropout(0.1), dense()), "mse", convex, False),
        (model(flat(), dense()), "mse", (kreg.L1(0.1), kreg.MCP(0.1)), False),
    ]
    for i, (m, loss, regs, expected) in enumerate(cases):
        assert _path_fit.known_convex(m, loss, list(regs)) is expected, i


@SLOW_ON_TORCH
def test_accelerated_path_needs_far_fewer_steps(diabetes):
    """FISTA (the default) against plain proximal gradient at the same tolerance: several
    times fewer steps, the lasso path of scikit-learn (tol=1e-10) to 1e-4 of the largest
    coefficient with the same zeros, and at every strength the residual recomputed in NumPy
    at the returned weights is within the tolerance."""
    from sklearn.linear_model import lasso_path

    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0))
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    fast = kreg.regularization_path(model, x, y, n_strengths=12, tol=TIGHT, max_epochs=50_000)
    plain = kreg.regularization_path(model, x, y, n_strengths=12, tol=TIGHT, max_epochs=50_000,
                                     accelerate=False)
    assert fast.converged.all() and plain.converged.all()
    assert 4 * fast.epochs.sum() < plain.epochs.sum()
    _, ref, _ = lasso_path(x, y, alphas=fast.strengths / 2, tol=1e-10, max_iter=1_000_000)
    assert_same_solution(fast.weights()[:, :, 0], ref.T)
    # the criterion keeps its meaning: the residual at the returned weights, at a tolerance
    # well above float32's rounding of the weights
    loose = 1e-5
    path = kreg.regularization_path(model, x, y, n_strengths=12, tol=loose, max_epochs=50_000)
    assert path.converged.all()
    for strength, w in zip(path.strengths, path.weights()[:, :, 0]):
        assert lasso_residual(x, y, w, strength, lr) <= loose


@pytest.mark.slow
@SLOW_ON_TORCH
def test_cross_validate_picks_what_lasso_cv_picks(diabetes):
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold

    x, y = diabetes
    folds = KFold(5)

    def build():
        return linear_model(x, kreg.L1(0.0))

    cv = kreg.cross_validate(build, x, y, cv=folds, n_strengths=15, tol=TIGHT,
                             max_epochs=50_000)
    ref = LassoCV(alphas=cv.strengths / 2, cv=folds, fit_intercept=False, tol=1e-12,
                  max_iter=1_000_000).fit(x, y)
    np.testing.assert_allclose(ref.alphas_ * 2, cv.strengths)
    # a hand-rolled loop over the same folds: LassoCV's per-fold MSE is our per-fold score
    np.testing.assert_allclose(cv.scores, ref.mse_path_.T, rtol=1e-4)
    assert cv.best_strength == pytest.approx(2 * ref.alpha_)
    mean = ref.mse_path_.mean(axis=1)
    se = ref.mse_path_.std(axis=1, ddof=1) / np.sqrt(5)
    best = np.argmin(mean)
    one_se = np.flatnonzero(mean <= mean[best] + se[best])[0]
    assert cv.one_se_strength == pytest.approx(2 * ref.alphas_[one_se])
    assert cv.one_se_strength >= cv.best_strength
    # the refit at the best strength is LassoCV's final model
    np.testing.assert_allclose(cv.model.get_weights()[0][:, 0], ref.coef_,
                               atol=1e-4 * np.abs(ref.coef_).max())


def test_cross_validate_int_folds_are_kfold(rng):
    from sklearn.model_selection import KFold

    from kreg._cross_validation import _folds

    for n, k in [(10, 3), (442, 5), (7, 7)]:
        ours = _folds(k, n)
        theirs = list(KFold(k).split(np.zeros(n)))
        for (a, b), (c, d) in zip(ours, theirs):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_unconverged_strengths_warn(diabetes):
    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0))
    with pytest.warns(UserWarning, match=r"did not converge within max_epochs=5"):
        path = kreg.regularization_path(model, x, y, n_strengths=4, tol=1e-8, max_epochs=5)
    assert not path.converged[1:].any()
    assert np.all(path.epochs <= 5)


def test_diverging_learning_rate_is_not_converged(diabetes):
    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0), lr=10.0)
    with pytest.warns(UserWarning, match="diverged"):
        path = kreg.regularization_path(model, x, y, n_strengths=3, max_epochs=200)
    assert not path.converged[-1]


def test_adam_uses_the_objective_criterion(diabetes):
    """Under Adam (Proximal in Adam's diagonal metric) the criterion is the relative change
    of the objective; the path still reaches the lasso solution."""
    from sklearn.linear_model import lasso_path

    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0))
    model.compile(optimizer=keras.optimizers.Adam(0.5), loss="mse")
    path = kreg.regularization_path(model, x, y, strengths=[20.0, 2.0], tol=1e-5,
                                    max_epochs=5000)
    assert path.converged.all()
    with pytest.raises(ValueError, match="argument `accelerate`: expected None or False for "
                                         "this model.*Adam"):
        kreg.regularization_path(model, x, y, strengths=[20.0], accelerate=True)
    _, ref, _ = lasso_path(x, y, alphas=path.strengths / 2, tol=1e-12, max_iter=1_000_000)
    assert_same_solution(path.weights()[:, :, 0], ref.T)


def test_objective_criterion_is_checked_after_a_strength_that_used_its_budget(diabetes):
    # A warm-started strength's first call once ran the previous strength's step count:
    # after one that hit max_epochs, the whole budget in one call, so no two losses were
    # ever compared (criterion inf) and no later strength could converge.
    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    with pytest.warns(UserWarning, match="did not converge"):
        path = kreg.regularization_path(model, x, y, strengths=[1e-1, 1e-2, 1e-3], tol=1e-12,
                                        max_epochs=64)
    assert np.all(path.epochs == 64) and not path.converged.any()
    assert np.all(np.isfinite(path.criterion)), path.criterion
    loose = kreg.regularization_path(model, x, y, strengths=[1e-1, 1e-2, 1e-3], tol=0.5,
                                     max_epochs=64)
    assert loose.converged.all(), loose.criterion


def test_callbacks_log_one_row_per_strength(diabetes, tmp_path):
    x, y = diabetes
    model = linear_model(x, kreg.L1(0.0))
    rows = []
    log = tmp_path / "path.csv"
    path = kreg.regularization_path(
        model, x, y, n_strengths=4, validation_data=(x[:50], y[:50]),
        callbacks=[rows.append, keras.callbacks.CSVLogger(str(log))])
    assert [r["strength"] for r in rows] == pytest.approx(path.strengths.tolist())
    assert rows == [dict(r, converged=float(r["converged"])) for r in path.rows()]
    assert "val_loss" in rows[0] and "val_mae" in rows[0]
    with open(log) as f:
        written = list(csv.DictReader(f))
    assert [float(r["strength"]) for r in written] == pytest.approx(path.strengths.tolist())
    assert [float(r["val_loss"]) for r in written] == pytest.approx(
        path.metrics["val_loss"].tolist(), rel=1e-6)


def test_plots(diabetes):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    x, y = diabetes
    path = kreg.regularization_path(linear_model(x, kreg.L1(0.0)), x, y, n_strengths=3,
                                    validation_data=(x, y))
    fig = path.plot()
    assert len(fig.axes[0].lines) == 10
    fig = path.plot(metric="loss")
    assert [line.get_label() for line in fig.axes[0].lines] == ["train", "validation"]


@pytest.mark.parametrize("kwargs, match", [
    ({"strengths": [-1.0]}, "argument `strengths`: expected a non-empty 1-D"),
    ({"strengths": "abc"}, "argument `strengths`"),
    ({"strengths": [[1.0, 2.0]]}, "argument `strengths`"),
    ({"strengths": [np.nan]}, "argument `strengths`"),
    ({"n_strengths": 0}, "argument `n_strengths`: expected a positive integer"),
    ({"eps": 1.5}, "argument `eps`"),
    ({"tol": 0.0}, "argument `tol`: expected a positive finite number. Received: tol=0.0"),
    ({"max_epochs": 2.5}, "argument `max_epochs`"),
    ({"validation_data": [1, 2, 3, 4]}, "argument `validation_data`"),
    ({"accelerate": "yes"}, "argument `accelerate`: expected None, True or False"),
])
def test_bad_input_names_the_argument(diabetes, kwargs, match):
    x, y = diabetes
    with pytest.raises(ValueError, match=match):
        kreg.regularization_path(linear_model(x, kreg.L1(0.0)), x, y, **kwargs)


def test_bad_models_and_cv_arguments(diabetes):
    x, y = diabetes
    with pytest.raises(TypeError, match="argument `model`: expected a compiled keras.Model"):
        kreg.regularization_path("model", x, y)
    plain = keras.Sequential([keras.Input((10,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="expected a compiled model"):
        kreg.regularization_path(plain, x, y)
    plain.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="kreg regularizer"):
        kreg.regularization_path(plain, x, y)
    model = linear_model(x, kreg.L1(0.0))
    with pytest.raises(ValueError, match="argument `regularizers`"):
        kreg.regularization_path(model, x, y, regularizers=[kreg.L1(0.1)])
    with pytest.raises(TypeError, match="argument `build_model`"):
        kreg.cross_validate(model, x, y)
    with pytest.raises(ValueError, match="argument `cv`"):
        kreg.cross_validate(lambda: linear_model(x, kreg.L1(0.0)), x, y, cv=1)
    with pytest.raises(ValueError, match="argument `scoring`"):
        kreg.cross_validate(lambda: linear_model(x, kreg.L1(0.0)), x, y, scoring=3)
    path = kreg.regularization_path(model, x, y, n_strengths=2)
    with pytest.raises(ValueError, match="argument `strength`"):
        path.model_at(123.0)
    with pytest.raises(ValueError, match="argument `name`"):
        path.weights("nope")


def test_mlp_group_lasso_path_restarts_after_a_cut_network(rng):
    """A strength that zeroes a whole kernel cuts the network (a stationary point no weaker
    strength leaves easily: only units with a positive bias get a gradient): under
    warm_start="auto" the next strength restarts from the model's weights (as an independent
    fit) and recovers; warm_start=True starts from the cut network."""
    x = rng.normal(size=(200, 6)).astype("float32")
    y = (x[:, :1] - 2 * x[:, 1:2]) ** 2 / 4
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, activation="relu",
                           kernel_regularizer=kreg.GroupLasso(0.0, groups="units")),
        keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    strengths = [10.0, 1e-3]  # the first kills every unit
    initial = [w.copy() for w in model.get_weights()]
    with pytest.warns(UserWarning, match="did not converge"):  # a small budget, on purpose
        auto = kreg.regularization_path(model, x, y, strengths, max_epochs=300, tol=1e-9)
        stuck = kreg.regularization_path(model, x, y, strengths, max_epochs=300, tol=1e-9,
                                         warm_start=True)
    assert auto.sparsity[0] == 1.0 and stuck.sparsity[0] == 1.0
    assert auto.sparsity[1] < 0.5
    assert not np.allclose(auto.weights()[1], stuck.weights()[1])  # another starting point
    # the input model is untouched
    for before, after in zip(initial, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    # warm_start=False: every strength from the model's weights, as independent fits
    with pytest.warns(UserWarning, match="did not converge"):
        independent = kreg.regularization_path(model, x, y, [1e-3], max_epochs=300, tol=1e-9,
                                               warm_start=False)
    np.testing.assert_allclose(independent.weights()[0], auto.weights()[1], rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="argument `warm_start`"):
        kreg.regularization_path(model, x, y, strengths, warm_start="yes")


@SLOW_ON_TORCH
def test_readme_example_runs():
    """The README's "Regularization paths and cross-validation" example runs as written."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text[text.index("## Regularization paths and cross-validation"):]
    code = re.search(r"^```python\n(.*?)^```", section, re.M | re.S).group(1)
    assert "kreg.regularization_path(" in code and "kreg.cross_validate(" in code
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    path, cv = namespace["path"], namespace["cv"]
    assert path.converged.all() and len(path) == 30 and path.sparsity[0] == 1.0
    assert cv.one_se_strength >= cv.best_strength
    assert isinstance(namespace["model"], keras.Model)


def test_cross_validate_accuracy_on_logits(rng):
    """scoring="accuracy" on a logits model is the fraction of argmax hits per fold (as
    compile resolves "accuracy"), and greater is better."""
    x = rng.normal(size=(120, 5)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")

    def build():
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(
            3, kernel_initializer="zeros", kernel_regularizer=kreg.L1(0.0))])
        model.compile(optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    def hits(y_true, logits):
        return np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(y_true))

    kwargs = dict(strengths=[0.3, 0.03, 0.003], cv=3, tol=1e-3, max_epochs=500, refit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        named = kreg.cross_validate(build, x, y, scoring="accuracy", **kwargs)
        custom = kreg.cross_validate(build, x, y, scoring=hits, greater_is_better=True,
                                     **kwargs)
    np.testing.assert_allclose(named.scores, custom.scores)
    assert named.greater_is_better and named.mean[named.best_index] == named.mean.max()
    assert named.mean.max() > 0.6  # above the majority class (0.5)


def test_a_huber_loss_keeps_its_delta(rng):
    """Keras 3.15's `Huber.get_config()` drops `delta`; the path's clone is compiled with the
    model's own loss object (it used to be rebuilt from the config: delta 1.0, another
    problem, silently). The path's solution is checked with the prox-gradient residual of
    mean Huber_0.5 + strength * ||w||_1, in NumPy."""
    x = rng.normal(size=(80, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(2, size=80)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros", kernel_regularizer=kreg.L1(0.0))])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.Huber(delta=0.5))
    path = kreg.regularization_path(model, x, y[:, None], strengths=[0.1, 0.01], tol=1e-7,
                                    max_epochs=50_000)
    assert path.converged.all()

    def residual(w, strength, delta):
        r = x @ w - y
        grad = x.T @ np.clip(r, -delta, delta) / len(y)
        z = w - 0.5 * grad
        return np.linalg.norm(w - np.sign(z) * np.maximum(np.abs(z) - 0.5 * strength, 0)) / 0.5

    for strength, w in zip(path.strengths, path.weights()[:, :, 0].astype("float64")):
        assert residual(w, strength, 0.5) <= 1e-4
        assert residual(w, strength, 1.0) > 1e-2  # the problem with Keras's default delta
    rebuilt = path.model_at(0.01)
    assert rebuilt.loss.get_config() == model.loss.get_config()
    out = keras.ops.convert_to_numpy(rebuilt(x))
    r = np.abs(out[:, 0] - y)
    expected = np.mean(np.where(r <= 0.5, 0.5 * r**2, 0.5 * r - 0.125))
    assert float(rebuilt.compute_loss(x, y[:, None], keras.ops.convert_to_tensor(out))) == \
        pytest.approx(expected + 0.01 * np.abs(path.weights()[1]).sum(), rel=1e-4)


def test_cross_validate_compiled_scores_are_the_numpy_formulas(rng):
    """The held-out scores computed in one compiled call (a `Loss` instance for "loss", a
    metric function for "mae") equal the formulas in NumPy on the same fold models (a
    callable `scoring` is scored on NumPy outputs)."""
    x = rng.normal(size=(90, 4))
    y = (x @ np.array([1.0, -2.0, 0.0, 0.5]) + 0.3 * rng.standard_t(2, size=90))[:, None]

    def build():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
            1, kernel_initializer="zeros", kernel_regularizer=kreg.L1(0.0))])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.Huber(0.5))
        return model

    def huber(y_true, y_pred):
        r = np.abs(np.asarray(y_pred, "float64") - y_true)
        return np.mean(np.where(r <= 0.5, 0.5 * r**2, 0.5 * r - 0.5 * 0.5**2))

    def mae(y_true, y_pred):
        return np.mean(np.abs(np.asarray(y_pred, "float64") - y_true))

    kwargs = dict(strengths=[0.2, 0.05, 0.01], cv=3, tol=1e-4, refit=False)
    scores = {}
    for name, scoring in [("loss", "loss"), ("huber", huber), ("mae", "mae"), ("np mae", mae)]:
        scores[name] = kreg.cross_validate(build, x, y, scoring=scoring, **kwargs).scores
    np.testing.assert_allclose(scores["loss"], scores["huber"], rtol=1e-5)
    np.testing.assert_allclose(scores["mae"], scores["np mae"], rtol=1e-5)
    assert not np.allclose(scores["loss"], scores["mae"])


@SLOW_ON_TORCH
def test_cross_validate_folds_start_from_build_models_weights_with_seed_states(rng):
    """A Dropout layer's seed state is a variable but not a weight: every fold must start
    from its `build_model()` weights, not from weights shifted by one variable (the old
    reset zipped `model.variables` with `get_weights()`: BatchNormalization's gamma got beta's
    zeros, silently). Each fold is compared with its own path on a new model, by hand."""
    x = rng.normal(size=(48, 4))
    y = np.stack([x[:, 0] - x[:, 1], x[:, 2] + 0.5 * x[:, 3]], axis=1)

    def build():
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(1),
                               kernel_regularizer=kreg.L1(0.0)),
            keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(2)),
            keras.layers.Dropout(0.25, seed=3),
            keras.layers.BatchNormalization(gamma_initializer=keras.initializers.Constant(1.5)),
        ])
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        return model

    strengths = [0.05, 0.01]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 40 epochs: not converged, on purpose
        cv = kreg.cross_validate(build, x, y, strengths=strengths, cv=2, tol=1e-9,
                                 max_epochs=40, pad_folds=False, refit=False)
        for fold, test in enumerate(np.array_split(np.arange(len(y)), 2)):
            train = np.setdiff1d(np.arange(len(y)), test)
            path = kreg.regularization_path(build(), x[train], y[train], strengths=strengths,
                                            tol=1e-9, max_epochs=40)
            for k, strength in enumerate(path.strengths):
                out = keras.ops.convert_to_numpy(path.model_at(strength)(x[test]))
                mse = np.mean((out - y[test]) ** 2)
                assert cv.scores[fold, k] == pytest.approx(mse, rel=1e-5), (fold, k)
