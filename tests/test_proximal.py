"""kreg.Proximal and kreg.proximal_step against scikit-learn, skglm and NumPy.

Keras's "mse" is `1/n ||y - Xw||^2`, twice scikit-learn's and skglm's data term
`1/(2n) ||y - Xw||^2`, so Lasso(alpha) is L1(2 * alpha), ElasticNet(alpha, rho) is
ElasticNet(alpha * (1 + rho), 2 * rho / (1 + rho)), and skglm's group lasso with
weights sqrt(p_g) at alpha is GroupLasso(2 * alpha). The NumPy oracles below are
written from the docstring formulas: one proximal gradient (ISTA) step is
`w <- prox_{step R}(w - step * grad)` with `grad = 2/n X^T (Xw - y)`.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.linear_model import ElasticNet, Lasso
from skglm.datafits import QuadraticGroup
from skglm.penalties import WeightedGroupL2
from skglm.solvers import GroupBCD

import backend_ops
import kreg
from conftest import BACKEND, only_on
from keras import ops

pytestmark = pytest.mark.usefixtures("device")

O = keras.optimizers
S = keras.optimizers.schedules

# diabetes features: age, sex | bmi, bp | s1, s2, s3 | s4, s5, s6 (group sizes 2, 2, 3, 3)
GROUP_IDS = [0, 0, 1, 1, 2, 2, 2, 3, 3, 3]


@pytest.fixture(scope="module")
def diabetes():
    """Standardised X (442 x 10), centred y, and the Lipschitz constant of Keras's mse."""
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = y - y.mean()
    lipschitz = 2 * np.linalg.eigvalsh(X.T @ X / len(y)).max()
    return X, y, lipschitz


# ---------------------------------------------------------------- NumPy oracle


def mse_grad(X, y, w):
    return 2 / len(y) * X.T @ (X @ w - y)


def soft_threshold(w, t):
    return np.sign(w) * np.maximum(np.abs(w) - t, 0)


def group_soft_threshold(w, t, ids):
    """`w_g * max(0, 1 - t * sqrt(p_g) / ||w_g||)` for the input groups of a 1-D `w`."""
    ids = np.asarray(ids)
    out = np.zeros_like(w)
    for g in np.unique(ids):
        block = w[ids == g]
        norm = np.linalg.norm(block)
        if norm > 0:
            out[ids == g] = block * max(0.0, 1 - t * np.sqrt(block.size) / norm)
    return out


def sgl_prox(w, step, strength, r, ids):
    shrunk = soft_threshold(w, step * strength * r)
    return group_soft_threshold(shrunk, step * strength * (1 - r), ids)


def ista(X, y, prox, step, tol=1e-10, max_iter=200_000):
    """Proximal gradient descent on Keras's mse, run until no coordinate moves by `tol`."""
    w = np.zeros(X.shape[1])
    for _ in range(max_iter):
        new = prox(w - step * mse_grad(X, y, w), step)
        if np.max(np.abs(new - w)) < tol:
            return new
        w = new
    raise AssertionError("the NumPy reference did not converge")


# ---------------------------------------------------------------- Keras side


def linear_model(regularizer, initial=None, bias=False, bias_regularizer=None, n_features=10):
    model = keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.Dense(
                1,
                use_bias=bias,
                kernel_regularizer=regularizer,
                bias_regularizer=bias_regularizer,
                kernel_initializer="zeros",
            ),
        ]
    )
    if initial is not None:
        model.set_weights(initial)
    return model


def fit_full_batch(model, optimizer, X, y, steps, steps_per_execution=500, jit_compile=False):
    """`steps` full-batch steps of `model.fit` with `kreg.Proximal(optimizer)`."""
    if BACKEND == "torch":
        steps_per_execution = 1  # PyTorch runs one step per execution
    model.compile(
        optimizer=kreg.Proximal(optimizer),
        loss="mse",
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile or BACKEND == "jax",  # JAX's eager steps are slow
    )
    # One epoch = `copies` copies of the full batch (few epochs: each costs a new iterator).
    copies = max(steps_per_execution, min(steps, 500))
    assert steps % copies == 0 and copies % steps_per_execution == 0
    xs = np.tile(X, (copies, 1)).astype("float32")
    ys = np.tile(y, copies).astype("float32")
    model.fit(xs, ys, batch_size=len(y), epochs=steps // copies, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == steps
    return model.get_weights()[0].ravel().astype("float64")


def assert_same_solution(w, reference):
    """Max coefficient error <= 1e-3 of the largest coefficient, same zero pattern."""
    scale = np.abs(reference).max()
    assert np.abs(w - reference).max() <= 1e-3 * scale, (w, reference)
    np.testing.assert_array_equal(w == 0, reference == 0)
    assert 0 < np.sum(reference == 0) < len(reference)  # a mix of zeros and non-zeros


def sklearn_lasso(X, y, alpha):
    return Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=1_000_000).fit(X, y).coef_


def skglm_group_lasso(X, y, alpha, ids):
    ids = np.asarray(ids)
    grp_indices = np.argsort(ids, kind="stable").astype(np.int32)
    grp_ptr = np.r_[0, np.cumsum(np.bincount(ids))].astype(np.int32)
    penalty = WeightedGroupL2(
        alpha=alpha, weights=np.sqrt(np.bincount(ids)).astype(float), grp_ptr=grp_ptr,
        grp_indices=grp_indices,
    )
    datafit = QuadraticGroup(grp_ptr, grp_indices)  # 1/(2n) ||y - Xw||^2
    solver = GroupBCD(tol=1e-12, max_iter=10_000, max_epochs=100_000)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*faster on contiguous arrays")
        return solver.solve(X, y, datafit, penalty)[0]


# ------------------------------------------------- the solutions of reference solvers

LASSO_ALPHA = 4.0  # 4 of 10 coefficients zero
GROUP_ALPHA = 10.0  # groups {age, sex} and {s1, s2, s3} zero


def test_sgd_l1_reaches_sklearn_lasso(diabetes):
    X, y, lipschitz = diabetes
    reference = sklearn_lasso(X, y, LASSO_ALPHA)
    w = fit_full_batch(
        linear_model(kreg.L1(2 * LASSO_ALPHA)), O.SGD(1 / lipschitz), X, y, steps=1000
    )
    assert_same_solution(w, reference)


def test_sgd_elastic_net_reaches_sklearn_elastic_net(diabetes):
    X, y, lipschitz = diabetes
    alpha, rho = 6.0, 0.8
    reference = (
        ElasticNet(alpha=alpha, l1_ratio=rho, fit_intercept=False, tol=1e-12, max_iter=1_000_000)
        .fit(X, y)
        .coef_
    )
    regularizer = kreg.ElasticNet(alpha * (1 + rho), l1_ratio=2 * rho / (1 + rho))
    w = fit_full_batch(linear_model(regularizer), O.SGD(1 / lipschitz), X, y, steps=1000)
    assert_same_solution(w, reference)


@pytest.fixture(scope="module")
def group_lasso_reference(diabetes):
    """skglm's group lasso solution (computed once: skglm's numba compilation is slow)."""
    X, y, _ = diabetes
    return skglm_group_lasso(X, y, GROUP_ALPHA, GROUP_IDS)


def test_sgd_group_lasso_reaches_skglm(diabetes, group_lasso_reference):
    X, y, lipschitz = diabetes
    reference = group_lasso_reference
    regularizer = kreg.GroupLasso(2 * GROUP_ALPHA, groups=GROUP_IDS)
    w = fit_full_batch(linear_model(regularizer), O.SGD(1 / lipschitz), X, y, steps=1000)
    assert_same_solution(w, reference)
    # Whole groups are zero, and only whole groups.
    ids = np.asarray(GROUP_IDS)
    assert all(np.all(w[ids == g] == 0) or np.all(w[ids == g] != 0) for g in range(4))


def test_sgd_sparse_group_lasso_reaches_numpy_ista(diabetes):
    X, y, lipschitz = diabetes
    strength, r = 12.0, 0.5
    reference = ista(X, y, lambda w, t: sgl_prox(w, t, strength, r, GROUP_IDS), 1 / lipschitz)
    regularizer = kreg.SparseGroupLasso(strength, l1_ratio=r, groups=GROUP_IDS)
    w = fit_full_batch(linear_model(regularizer), O.SGD(1 / lipschitz), X, y, steps=1000)
    assert_same_solution(w, reference)


# With the metric-aware prox every supported optimizer has the Lasso solution as its
# fixed point (a prox taken with the learning rate instead gives another solution).
OPTIMIZERS = {
    "sgd_momentum": lambda L: O.SGD(0.5 / L, momentum=0.9),
    "sgd_nesterov": lambda L: O.SGD(0.5 / L, momentum=0.9, nesterov=True),
    "adam_inverse_time": lambda L: O.Adam(S.InverseTimeDecay(1.0, 50, 1.0)),
    "adam_amsgrad_exponential": lambda L: O.Adam(S.ExponentialDecay(1.0, 300, 0.5), amsgrad=True),
    # AdamW's class with no decay (decoupled decay changes the problem being solved).
    "adamw": lambda L: O.AdamW(S.InverseTimeDecay(1.0, 50, 1.0), weight_decay=0.0),
    "nadam": lambda L: O.Nadam(S.InverseTimeDecay(1.0, 50, 1.0)),
    "rmsprop": lambda L: O.RMSprop(S.InverseTimeDecay(0.5, 100, 1.0)),
    "rmsprop_momentum": lambda L: O.RMSprop(0.2, momentum=0.5),
    "adagrad": lambda L: O.Adagrad(3.0),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_supported_optimizer_reaches_sklearn_lasso(diabetes, name):
    X, y, lipschitz = diabetes
    reference = sklearn_lasso(X, y, LASSO_ALPHA)
    optimizer = OPTIMIZERS[name](lipschitz)
    w = fit_full_batch(linear_model(kreg.L1(2 * LASSO_ALPHA)), optimizer, X, y, steps=1500)
    assert_same_solution(w, reference)


def test_adam_with_decaying_learning_rate_reaches_skglm_group_lasso(
    diabetes, group_lasso_reference
):
    # Per-weight steps: the group prox is taken in Adam's diagonal metric.
    X, y, _ = diabetes
    reference = group_lasso_reference
    regularizer = kreg.GroupLasso(2 * GROUP_ALPHA, groups=GROUP_IDS)
    optimizer = O.Adam(S.InverseTimeDecay(1.0, 50, 1.0))
    w = fit_full_batch(linear_model(regularizer), optimizer, X, y, steps=2000)
    assert_same_solution(w, reference)


# ------------------------------------------------------------- single steps


def test_one_sgd_step_is_one_ista_step(diabetes, rng):
    # From a random start, one full-batch step of model.fit is one ISTA step: the
    # kreg penalty acts only through its prox (its gradient is not added), while
    # a Keras regularizer on the bias keeps its gradient, and the reported loss is
    # mse + both penalties.
    X, y, lipschitz = diabetes
    w0 = rng.normal(scale=10.0, size=10)
    b0 = 3.0
    lr, strength, l2 = 1 / lipschitz, 20.0, 0.05
    model = linear_model(
        kreg.L1(strength),
        initial=[w0[:, None], np.array([b0])],
        bias=True,
        bias_regularizer=keras.regularizers.L2(l2),
    )
    model.compile(optimizer=kreg.Proximal(O.SGD(lr)), loss="mse")
    loss = model.train_on_batch(X.astype("float32"), y.astype("float32"))

    residual = X @ w0 + b0 - y
    expected_w = soft_threshold(w0 - lr * 2 / len(y) * X.T @ residual, lr * strength)
    expected_b = b0 - lr * (2 * np.mean(residual) + 2 * l2 * b0)
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel.ravel(), expected_w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bias, [expected_b], rtol=1e-5)
    assert np.sum(kernel == 0) == np.sum(expected_w == 0) > 0
    expected_loss = np.mean(residual**2) + strength * np.abs(w0).sum() + l2 * b0**2
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)


def numpy_adam_prox_l1(X, y, w, strength, lrs, beta_1=0.9, beta_2=0.999, eps=1e-7):
    """Keras's Adam update followed by the L1 prox with step lr*sqrt(1-b2^t)/(sqrt(v)+eps)."""
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, lr in enumerate(lrs, start=1):
        g = mse_grad(X, y, w)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        w = w - alpha * m / (np.sqrt(v) + eps)
        step = lr * np.sqrt(1 - beta_2**t) / (np.sqrt(v) + eps)  # per weight
        w = soft_threshold(w, strength * step)
    return w


def numpy_momentum_prox_l1(X, y, w, strength, lrs, beta, nesterov):
    """Keras's SGD momentum update, then the L1 prox with the accumulated step."""
    m = np.zeros_like(w)
    s = 0.0
    for lr in lrs:
        g = mse_grad(X, y, w)
        m = beta * m - lr * g
        w = w + (beta * m - lr * g if nesterov else m)
        s = beta * s + lr
        w = soft_threshold(w, strength * (beta * s + lr if nesterov else s))
    return w


@pytest.mark.parametrize("kind", ["adam", "sgd_momentum", "sgd_nesterov"])
def test_three_steps_follow_the_documented_step(diabetes, rng, kind):
    # The step of each update, schedule included, as the Proximal docstring writes it.
    X, y, _ = diabetes
    w0 = rng.normal(scale=10.0, size=10)
    strength = 30.0
    schedule = S.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
    lrs = [0.5, 0.25, 0.125]
    if kind == "adam":
        optimizer = O.Adam(schedule)
        expected = numpy_adam_prox_l1(X, y, w0, strength, lrs)
    else:
        lrs = [lr / 20 for lr in lrs]
        optimizer = O.SGD(
            S.ExponentialDecay(0.5 / 20, 1, 0.5), momentum=0.8, nesterov=kind == "sgd_nesterov"
        )
        expected = numpy_momentum_prox_l1(
            X, y, w0, strength, lrs, 0.8, nesterov=kind == "sgd_nesterov"
        )
    model = linear_model(kreg.L1(strength), initial=[w0[:, None]])
    model.compile(optimizer=kreg.Proximal(optimizer), loss="mse")
    for _ in range(3):
        model.train_on_batch(X.astype("float32"), y.astype("float32"))
    w = model.get_weights()[0].ravel()
    np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(w == 0, expected == 0)
    assert 0 < np.sum(expected == 0) < 10


def test_steps_per_execution_and_jit_give_the_same_weights(diabetes):
    X, y, _ = diabetes
    results = {}
    for steps_per_execution in (1, 40) if BACKEND != "torch" else (1,):
        for jit_compile in (False, True):
            keras.utils.set_random_seed(0)
            regularizer = kreg.SparseGroupLasso(2 * GROUP_ALPHA, 0.3, groups=GROUP_IDS)
            model = linear_model(regularizer)
            optimizer = O.Adam(S.InverseTimeDecay(1.0, 5, 1.0))
            results[steps_per_execution, jit_compile] = fit_full_batch(
                model, optimizer, X, y, steps=40, steps_per_execution=steps_per_execution,
                jit_compile=jit_compile,
            )
    reference = results[1, False]
    assert np.sum(reference == 0) > 0
    for key, w in results.items():
        np.testing.assert_allclose(w, reference, rtol=1e-5, atol=1e-5, err_msg=str(key))
        np.testing.assert_array_equal(w == 0, reference == 0)


def test_gradient_accumulation_applies_the_prox_only_on_update_steps(diabetes, rng):
    X, y, lipschitz = diabetes
    w0 = rng.normal(scale=10.0, size=10)
    lr, strength = 1 / lipschitz, 20.0
    model = linear_model(kreg.L1(strength), initial=[w0[:, None]])
    model.compile(optimizer=kreg.Proximal(O.SGD(lr, gradient_accumulation_steps=3)), loss="mse")
    for _ in range(2):
        model.train_on_batch(X.astype("float32"), y.astype("float32"))
        np.testing.assert_array_equal(model.get_weights()[0].ravel(), w0.astype("float32"))
    model.train_on_batch(X.astype("float32"), y.astype("float32"))
    # Three equal gradients averaged: one ISTA step.
    expected = soft_threshold(w0 - lr * mse_grad(X, y, w0), lr * strength)
    np.testing.assert_allclose(model.get_weights()[0].ravel(), expected, rtol=1e-5, atol=1e-5)
    assert np.sum(expected == 0) > 0


def test_an_update_skipped_by_loss_scaling_skips_the_prox(diabetes, rng):
    X, y, lipschitz = diabetes
    keras.config.set_dtype_policy("mixed_float16")
    w0 = rng.normal(scale=10.0, size=10)
    lr, strength = 1 / lipschitz, 20.0
    model = linear_model(kreg.L1(strength), initial=[w0[:, None]])
    model.compile(optimizer=kreg.Proximal(O.SGD(lr)), loss="mse")
    # Keras wraps the optimizer for mixed_float16: the prox must sit inside the
    # update that loss scaling may skip.
    assert isinstance(model.optimizer, O.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, kreg.Proximal)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.dynamic_scale.assign(1e30)  # overflows the float16 gradients
    model.train_on_batch(X.astype("float32"), y.astype("float32"))
    np.testing.assert_array_equal(model.get_weights()[0].ravel(), w0.astype("float32"))
    assert int(model.optimizer.iterations.numpy()) == 0
    model.optimizer.dynamic_scale.assign(1.0)
    model.train_on_batch(X.astype("float32"), y.astype("float32"))
    expected = soft_threshold(w0 - lr * mse_grad(X, y, w0), lr * strength)
    # float16 forward and backward passes: about 3 significant digits.
    np.testing.assert_allclose(model.get_weights()[0].ravel(), expected, rtol=1e-2, atol=5e-2)
    np.testing.assert_array_equal(model.get_weights()[0].ravel() == 0, expected == 0)


# ------------------------------------------------------------ custom loops


def custom_loop_step(model, optimizer, X, y, include_penalty=True):
    backend_ops.custom_loop_step(
        model, optimizer, X, lambda y_pred: keras.losses.mean_squared_error(y, y_pred[:, 0]),
        include_penalties=include_penalty,
    )


@pytest.mark.parametrize(
    "mode",
    [pytest.param("tf_function", marks=only_on("tensorflow", reason="a tf.function custom loop")),
     "eager_built_first"],
)
def test_custom_loop_with_proximal_is_ista(diabetes, rng, mode):
    X, y, lipschitz = diabetes
    w0 = rng.normal(scale=10.0, size=10)
    lr, strength = 1 / lipschitz, 20.0
    model = linear_model(kreg.GroupLasso(strength, groups=GROUP_IDS), initial=[w0[:, None]])
    optimizer = kreg.Proximal(O.SGD(lr))
    Xf, yf = X.astype("float32"), y.astype("float32")
    if mode == "tf_function":
        # Built by its first `apply`, inside the trace: still in time.
        step = backend_ops.compiled(lambda: custom_loop_step(model, optimizer, Xf, yf))
    else:
        optimizer.build(model.trainable_variables)
        step = lambda: custom_loop_step(model, optimizer, Xf, yf)  # noqa: E731
    expected = w0
    for _ in range(3):
        step()
        expected = group_soft_threshold(
            expected - lr * mse_grad(X, y, expected), lr * strength, GROUP_IDS
        )
    np.testing.assert_allclose(model.get_weights()[0].ravel(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model.get_weights()[0].ravel() == 0, expected == 0)
    assert np.sum(expected == 0) > 0


def test_eager_custom_loop_needs_no_build(diabetes):
    """The first eager `apply` builds the optimizer; nothing must happen before it."""
    X, y, lipschitz = diabetes
    lr, strength = 1 / lipschitz, 30.0
    model = linear_model(kreg.L1(strength), initial=[np.ones((10, 1))])
    optimizer = kreg.Proximal(O.SGD(lr))
    custom_loop_step(model, optimizer, X.astype("float32"), y.astype("float32"))
    expected = soft_threshold(np.ones(10) - lr * mse_grad(X, y, np.ones(10)), lr * strength)
    np.testing.assert_allclose(model.get_weights()[0].ravel(), expected, rtol=1e-5, atol=1e-6)


def test_custom_loop_with_proximal_step_is_ista(diabetes, rng):
    X, y, lipschitz = diabetes
    w0 = rng.normal(scale=10.0, size=10)
    lr, strength, r = 1 / lipschitz, 20.0, 0.4
    regularizer = kreg.SparseGroupLasso(strength, l1_ratio=r, groups=GROUP_IDS)
    model = linear_model(regularizer, initial=[w0[:, None]])
    optimizer = O.SGD(lr)
    Xf, yf = X.astype("float32"), y.astype("float32")
    expected = w0
    for _ in range(3):
        custom_loop_step(model, optimizer, Xf, yf, include_penalty=False)
        kreg.proximal_step(model, lr)
        expected = sgl_prox(expected - lr * mse_grad(X, y, expected), lr, strength, r, GROUP_IDS)
    np.testing.assert_allclose(model.get_weights()[0].ravel(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model.get_weights()[0].ravel() == 0, expected == 0)


def test_proximal_step_traces_once_per_variable(rng):
    w_init = rng.normal(size=(6, 3))
    kernel = keras.Variable(w_init, dtype="float32")
    kernel.regularizer = kreg.GroupLasso(0.5, groups="units")
    vector = keras.Variable(rng.normal(size=(4,)), dtype="float32")
    vector.regularizer = kreg.L1(0.3)
    expected_kernel, expected_vector = w_init, vector.numpy().astype("float64")
    for step in [0.1, 0.25, np.float32(0.05), ops.convert_to_tensor(0.4), 0.0]:
        kreg.proximal_step([kernel, vector], step)
        t = float(step)
        columns = [expected_kernel[:, j] for j in range(3)]
        expected_kernel = np.stack(
            [c * max(0.0, 1 - t * 0.5 * np.sqrt(6) / np.linalg.norm(c)) if np.linalg.norm(c) > 0
             else c for c in columns],
            axis=1,
        )
        expected_vector = soft_threshold(expected_vector, t * 0.3)
        np.testing.assert_allclose(backend_ops.numpy(kernel), expected_kernel, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(backend_ops.numpy(vector), expected_vector, rtol=1e-5, atol=1e-6)
    if BACKEND == "tensorflow":
        for variable in (kernel, vector):
            assert kreg.proximal._prox_function(variable).experimental_get_tracing_count() == 1


def test_proximal_step_bad_input():
    plain = keras.Variable(np.ones((2, 2)), dtype="float32")
    with pytest.raises(ValueError, match="`model_or_variables`.*kreg regularizer"):
        kreg.proximal_step([plain], 0.1)
    with pytest.raises(ValueError, match="non-empty"):
        kreg.proximal_step([], 0.1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="at least one trainable variable"):
        kreg.proximal_step(model, 0.1)
    plain.regularizer = kreg.L1(0.1)
    with pytest.raises(ValueError, match="`step_size`.*Received: step_size=-0.1"):
        kreg.proximal_step([plain], -0.1)
    with pytest.raises(ValueError, match="`step_size`: expected a scalar"):
        kreg.proximal_step([plain], ops.ones((2,)))


# ------------------------------------------------------------- a real network


def digits_mlp(regularizer):
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=regularizer),
            keras.layers.Dense(10),
        ]
    )


def test_digits_mlp_group_lasso_prunes_whole_units():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:1200], order[1200:]
    accuracy = {}
    for name in ("plain", "group_lasso"):
        keras.utils.set_random_seed(0)
        if name == "plain":
            model, optimizer = digits_mlp(None), O.Adam(1e-2)
        else:
            model = digits_mlp(kreg.GroupLasso(1e-3, groups="units"))
            optimizer = kreg.Proximal(O.Adam(1e-2))
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            steps_per_execution=12 if BACKEND != "torch" else 1,
        )
        model.fit(X[train], y[train], batch_size=100, epochs=20, verbose=0)
        accuracy[name] = model.evaluate(X[test], y[test], verbose=0)[1]
    kernel = model.layers[0].kernel.numpy()
    zero_units = np.all(kernel == 0, axis=0)
    # A fifth of the hidden units exactly zero (the count depends on the backend's random
    # stream: 13 to 20 of 64 seen), the rest untouched by the groups...
    assert zero_units.sum() >= 12
    assert np.all(kernel[:, ~zero_units].any(axis=0))
    # ... at an accuracy within 2 points of the unregularized twin.
    assert accuracy["group_lasso"] >= accuracy["plain"] - 0.02, accuracy
    assert accuracy["plain"] > 0.95


# --------------------------------------------------------- saving and config

LOAD_AND_STEP = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import kreg

    path, data, out = sys.argv[1:]
    model = keras.models.load_model(path)
    assert type(model.optimizer).__name__ == "Proximal", type(model.optimizer)
    with np.load(data) as d:
        model.train_on_batch(d["x"], d["y"])
    np.savez(out, *model.get_weights(), iterations=int(model.optimizer.iterations.numpy()))
    """
)


@pytest.mark.slow  # starts a Python process that imports TensorFlow
def test_saved_model_continues_training_in_a_fresh_process(tmp_path, rng):
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(12, activation="tanh",
                           kernel_regularizer=kreg.GroupLasso(0.02, groups="inputs"))(inputs)
    outputs = keras.layers.Dense(3, kernel_regularizer=kreg.L1(0.01),
                                 bias_regularizer=keras.regularizers.L2(0.01))(h)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=kreg.Proximal(O.Adam(S.ExponentialDecay(0.05, 3, 0.7))),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    for _ in range(5):
        model.train_on_batch(x, y)
    path = str(tmp_path / "model.keras")
    model.save(path)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "load_and_step.py"
    script.write_text(LOAD_AND_STEP)
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, str(script), path, str(tmp_path / "data.npz"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    model.train_on_batch(x, y)  # the same step, in this process
    with np.load(tmp_path / "out.npz") as loaded:
        assert int(loaded["iterations"]) == 6
        for i, w in enumerate(model.get_weights()):
            np.testing.assert_allclose(loaded[f"arr_{i}"], w, rtol=1e-5, atol=1e-6)
    # The prox is at work in both processes: whole input rows are exactly zero.
    assert np.any(np.all(model.layers[1].kernel.numpy() == 0, axis=1))


def test_config_round_trip_through_json():
    optimizer = kreg.Proximal(O.SGD(S.InverseTimeDecay(0.3, 10, 0.5), momentum=0.7, nesterov=True))
    text = json.dumps(keras.saving.serialize_keras_object(optimizer))
    back = keras.saving.deserialize_keras_object(json.loads(text))
    assert type(back) is kreg.Proximal and type(back.inner_optimizer) is type(O.SGD())
    assert back.get_config() == optimizer.get_config()
    assert list(optimizer.get_config()) == ["optimizer"]
    assert back.inner_optimizer.momentum == 0.7 and back.inner_optimizer.nesterov


def test_learning_rate_and_iterations_are_the_inner_optimizers():
    inner = O.Adam(0.01)
    optimizer = kreg.Proximal(inner)
    optimizer.learning_rate = 0.5
    assert float(inner.learning_rate.numpy()) == 0.5
    assert float(optimizer.learning_rate.numpy()) == 0.5
    assert optimizer.iterations is inner.iterations


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "optimizer, match",
    [
        (lambda: O.Lion(), "Received: optimizer of type Lion"),
        (lambda: O.Adamax(), "Received: optimizer of type Adamax"),
        (lambda: "adam", "Received: optimizer of type str"),
        (lambda: O.LossScaleOptimizer(O.SGD()), "LossScaleOptimizer.*wrap the other way round"),
        (lambda: type("MyAdam", (O.Adam,), {})(), "Received: optimizer of type MyAdam"),
        (lambda: kreg.Proximal(O.SGD()), "Received: optimizer of type Proximal"),
    ],
    ids=["lion", "adamax", "string", "loss_scale", "subclass", "nested"],
)
def test_refuses_optimizers_it_does_not_know(optimizer, match):
    with pytest.raises(TypeError, match=f"Invalid type for argument `optimizer`.*{match}"):
        kreg.Proximal(optimizer())


def test_refuses_ema():
    with pytest.raises(ValueError, match="`use_ema`.*Received: optimizer=SGD\\(use_ema=True\\)"):
        kreg.Proximal(O.SGD(use_ema=True))
