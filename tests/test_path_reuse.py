"""A second `regularization_path` / `cross_validate` / `strength_max` call reuses the
compiled clone of the first (kreg._path_cache) and computes exactly what a new clone
computes; anything that would change the clone gives a new one."""

import gc
import weakref

import keras
import numpy as np
import pytest

import kreg
from conftest import BACKEND, SLOW_ON_TORCH, device_names, device_scope
from kreg import _backend, _path_cache

pytestmark = pytest.mark.usefixtures("device")


@pytest.fixture
def data(rng):
    x = rng.normal(size=(60, 5))
    y = x @ np.array([1.5, 0.0, -2.0, 0.0, 0.5]) + 0.1 * rng.normal(size=60)
    return x, y[:, None]


def build(lr=0.1, activation=None, units=1, name=None, loss="mse"):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(
        units, activation=activation, use_bias=False, kernel_initializer="zeros",
        kernel_regularizer=kreg.L1(0.0), name=name)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss, metrics=["mae"])
    return model


def numbers(path):
    return (path.strengths, path.weights(), path.epochs, path.converged, path.sparsity,
            path.metrics)


def assert_identical(a, b):
    for u, v in zip(numbers(a), numbers(b)):
        if isinstance(u, dict):
            assert sorted(u) == sorted(v)
            for key in u:
                np.testing.assert_array_equal(u[key], v[key])
        else:
            np.testing.assert_array_equal(u, v)


def cached(owner):
    return [entry[2] for entry in _path_cache._CACHE.get(owner, [])]


def lasso_residual(x, y, w, strength, lr):
    """The proximal-gradient residual of Keras's mse + strength * ||w||_1, in NumPy."""
    grad = 2.0 / len(y) * x.T @ (x @ w - y[:, 0])
    z = w - lr * grad
    step = np.sign(z) * np.maximum(np.abs(z) - lr * strength, 0.0)
    return np.linalg.norm(w - step) / lr


def test_a_second_path_reuses_the_clone_and_computes_the_same(data):
    x, y = data
    model = build()
    first = kreg.regularization_path(model, x, y, n_strengths=6, tol=1e-6)
    (trainer,) = cached(model)
    second = kreg.regularization_path(model, x, y, n_strengths=6, tol=1e-6)
    assert cached(model) == [trainer]  # the same clone, not a new one
    assert_identical(first, second)
    # what a new clone (another model, the same config and weights) computes
    assert_identical(first, kreg.regularization_path(build(), x, y, n_strengths=6, tol=1e-6))
    # and it is the lasso solution (independent NumPy residual)
    for strength, w in zip(second.strengths, second.weights()[:, :, 0]):
        assert lasso_residual(x, y, w, strength, 0.1) <= 1e-3


def test_the_reused_clone_starts_from_the_models_current_weights(data, rng):
    x, y = data
    model = build()
    kreg.regularization_path(model, x, y, strengths=[0.5, 0.1], tol=1e-6, warm_start=True)
    start = rng.normal(size=(5, 1)).astype("float32")
    model.set_weights([start])
    other = build()
    other.set_weights(model.get_weights())
    # max_epochs=3: the weights after 3 steps from `start` (a stale start would differ)
    with pytest.warns(UserWarning, match="did not converge"):
        reused = kreg.regularization_path(model, x, y, strengths=[0.1], max_epochs=3,
                                          accelerate=False)
    with pytest.warns(UserWarning, match="did not converge"):
        fresh = kreg.regularization_path(other, x, y, strengths=[0.1], max_epochs=3,
                                         accelerate=False)
    assert len(cached(model)) == 2  # accelerate=False is another engine: a second clone
    assert_identical(reused, fresh)
    # three proximal gradient steps from `start`, in NumPy
    w = start[:, 0].astype("float64")
    for _ in range(3):
        z = w - 0.1 * 2.0 / len(y) * x.T @ (x @ w - y[:, 0])
        w = np.sign(z) * np.maximum(np.abs(z) - 0.1 * 0.1, 0.0)
    np.testing.assert_allclose(reused.weights()[0, :, 0], w, rtol=1e-4, atol=1e-6)


def test_strength_max_reuses_its_probe_and_follows_the_weights(data):
    x, y = data
    model = build()
    first = kreg.strength_max(model, x, y)
    (probe,) = cached(model)
    assert first == pytest.approx(2.0 / len(y) * np.abs(x.T @ y[:, 0]).max(), rel=1e-5)
    # the bound is at zero penalised weights whatever they are now: the same value, and the
    # same probe
    model.set_weights([np.ones((5, 1), "float32")])
    assert kreg.strength_max(model, x, y) == first
    assert cached(model) == [probe]
    # another target: the bound of the new data, from the reused probe
    assert kreg.strength_max(model, x, 2 * y) == pytest.approx(2 * first, rel=1e-6)


def test_a_path_computed_inside_a_callback_does_not_take_the_running_clone(data):
    x, y = data
    model = build()
    kwargs = dict(n_strengths=5, tol=1e-6, warm_start=True)
    expected = kreg.regularization_path(build(), x, y, **kwargs)  # another owner: a new clone
    inner = []

    def nested(row):  # the same model, the same arguments, while the outer path runs warm
        if row["strength"] < expected.strengths[0] and not inner:
            inner.append(kreg.regularization_path(model, x, y, **kwargs))

    outer = kreg.regularization_path(model, x, y, callbacks=[nested], **kwargs)
    assert_identical(outer, expected)
    assert_identical(inner[0], expected)
    assert len(cached(model)) == 1  # the outer call's clone is kept, the nested one is not


def test_the_convergence_warning_names_the_callers_line(data):
    x, y = data
    def ours(record):
        return [w for w in record if "did not converge" in str(w.message)]

    with pytest.warns(UserWarning, match="did not converge") as record:
        kreg.regularization_path(build(), x, y, strengths=[0.01], max_epochs=2)
    assert [w.filename for w in ours(record)] == [__file__]
    with pytest.warns(UserWarning, match="did not converge") as record:
        kreg.cross_validate(lambda: build(), x, y, strengths=[0.01], cv=2, max_epochs=2,
                            refit=False)
    assert {w.filename for w in ours(record)} == {__file__}


def test_a_recompiled_model_gets_a_new_clone(data):
    x, y = data
    model = build(lr=0.1)
    kreg.regularization_path(model, x, y, strengths=[0.2], tol=1e-6)
    (old,) = cached(model)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    path = kreg.regularization_path(model, x, y, strengths=[0.2], tol=1e-6, max_epochs=20,
                                    accelerate=False)
    assert old not in cached(model)[:1]
    assert cached(model)[0].learning_rate == pytest.approx(0.05)
    assert_identical(path, kreg.regularization_path(build(lr=0.05), x, y, strengths=[0.2],
                                                    tol=1e-6, max_epochs=20,
                                                    accelerate=False))


def test_what_would_change_the_clone_changes_the_signature():
    def signature(model):
        return _path_cache.signature(model, ("path", (0,), None, None))

    def same(a, b):
        return a[0] == b[0] and all(p is q for p, q in zip(a[1], b[1]))

    base = signature(build())
    assert same(base, signature(build()))  # Keras's counter names them dense, dense_1, ...
    assert not same(base, signature(build(activation="relu")))
    assert not same(base, signature(build(units=2)))
    assert not same(base, signature(build(lr=0.2)))
    assert not same(base, signature(build(loss="mae")))
    # a loss argument that Keras's config drops (Huber's delta)
    huber = signature(build(loss=keras.losses.Huber(0.5)))
    assert same(huber, signature(build(loss=keras.losses.Huber(0.5))))
    assert not same(huber, signature(build(loss=keras.losses.Huber(1.0))))
    # a layer named like an activation: only the places that hold layer names are renamed
    assert not same(signature(build(name="relu", activation="relu")),
                    signature(build(name="tanh", activation="tanh")))

    # the same config, another class (a class redefined in a notebook cell)
    def custom_model():
        class Dense(keras.layers.Dense):
            pass

        model = keras.Sequential([keras.Input((5,)), Dense(
            1, kernel_regularizer=kreg.L1(0.0), kernel_initializer="zeros")])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
        return model

    assert not same(signature(custom_model()), signature(custom_model()))

    # wiring: the same layers, connected otherwise
    def wired(swap):
        inputs = keras.Input((5,))
        a = keras.layers.Dense(5, kernel_regularizer=kreg.L1(0.0))
        b = keras.layers.Dense(5)
        outputs = b(a(inputs)) if swap else a(b(inputs))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="sgd", loss="mse")
        return model

    assert same(signature(wired(False)), signature(wired(False)))
    assert not same(signature(wired(False)), signature(wired(True)))
    # the precision policy
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = signature(build())
    finally:
        keras.config.set_dtype_policy("float32")
    assert not same(base, mixed)


def test_another_device_scope_gets_another_clone(monkeypatch):
    model = build()
    here = _path_cache.signature(model, ())
    monkeypatch.setattr(_backend, "placement", lambda: "elsewhere:0")
    assert _path_cache.signature(model, ())[0] != here[0]


def test_a_path_on_the_gpu_after_one_on_the_cpu_trains_on_the_gpu(data):
    gpus = device_names("GPU")
    if not gpus:
        pytest.skip(f"no GPU visible to the {BACKEND} backend")
    x, y = data
    model = build()
    with device_scope(device_names("CPU")[0]):
        on_cpu = kreg.regularization_path(model, x, y, strengths=[0.2], tol=1e-5)
    with device_scope(gpus[0]):
        on_gpu = kreg.regularization_path(model, x, y, strengths=[0.2], tol=1e-5)
    cpu_clone, gpu_clone = cached(model)[1], cached(model)[0]
    assert cpu_clone is not gpu_clone
    where = str(getattr(gpu_clone.model.variables[0].value, "device", "")).lower()
    assert "gpu" in where or "cuda" in where, where
    np.testing.assert_allclose(on_cpu.weights(), on_gpu.weights(), rtol=1e-4, atol=1e-6)


def test_the_clone_is_freed_with_its_owner(data):
    x, y = data
    model = build()
    kreg.regularization_path(model, x, y, strengths=[0.2], tol=1e-4)
    clone = weakref.ref(cached(model)[0].model)
    owner = weakref.ref(model)
    del model
    gc.collect()  # frees the owner (in reference cycles, as every Keras model) and so the entry
    gc.collect()  # then the clone, in reference cycles of its own
    assert owner() is None
    assert clone() is None


def test_at_most_per_owner_clones(data):
    x, y = data
    model = build()
    for tol in (1e-3, 1e-4):  # the same engine: one clone
        kreg.regularization_path(model, x, y, strengths=[0.2], tol=tol)
    assert len(cached(model)) == 1
    kreg.regularization_path(model, x, y, strengths=[0.2], accelerate=False)
    kreg.regularization_path(model, x, y, strengths=[0.2], jit_compile=False)
    assert len(cached(model)) == _path_cache.PER_OWNER


@SLOW_ON_TORCH
def test_cross_validate_twice_with_one_builder_reuses_and_agrees(data):
    x, y = data

    def builder():
        return build()

    first = kreg.cross_validate(builder, x, y, cv=3, n_strengths=5, tol=1e-5)
    (trainer,) = cached(builder)
    second = kreg.cross_validate(builder, x, y, cv=3, n_strengths=5, tol=1e-5)
    assert cached(builder) == [trainer]
    fresh = kreg.cross_validate(lambda: build(), x, y, cv=3, n_strengths=5, tol=1e-5)
    for other in (second, fresh):
        np.testing.assert_array_equal(first.strengths, other.strengths)
        np.testing.assert_array_equal(first.scores, other.scores)
        np.testing.assert_array_equal(first.model.get_weights()[0], other.model.get_weights()[0])
    # the held-out scores: each fold's own path (unpadded, by hand), its mse in NumPy
    n = len(y)
    for fold, test in enumerate(np.array_split(np.arange(n), 3)):
        train = np.setdiff1d(np.arange(n), test)
        path = kreg.regularization_path(build(), x[train], y[train], strengths=first.strengths,
                                        tol=1e-5)
        for k, w in enumerate(path.weights()[:, :, 0]):
            mse = np.mean((x[test] @ w - y[test, 0]) ** 2)
            assert first.scores[fold, k] == pytest.approx(mse, rel=1e-3, abs=1e-6)
