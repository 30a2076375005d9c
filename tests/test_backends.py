"""kreg/_backend.py, the one place for backend-specific code, on the backend this
suite runs under (`KERAS_BACKEND`): a strength change reaches the next compiled
step, also under JAX's `jit`, where any state outside the model and optimizer is
otherwise baked in at trace time."""

import keras
import numpy as np
import pytest
from keras import ops

import backend_ops
import kreg
from conftest import BACKEND
from kreg import _backend

pytestmark = pytest.mark.usefixtures("device")


def test_the_backend_is_the_one_keras_runs():
    assert _backend.name() == keras.backend.backend() == BACKEND


def test_a_compiled_penalty_and_prox_read_the_current_strength(rng):
    w = rng.normal(size=(5, 3)).astype("float32")
    for reg in (kreg.L1(0.5), kreg.GroupLasso(0.5), kreg.MCP(0.5)):
        both = backend_ops.compiled(lambda x: (reg(x), reg.prox(x, 0.25), reg.gradient(x)))
        for strength in (0.5, 2.0, 0.0):  # assigned after the first trace
            reg.strength.assign(strength)
            want = [backend_ops.numpy(t) for t in (reg(w), reg.prox(w, 0.25), reg.gradient(w))]
            got = [backend_ops.numpy(t) for t in both(ops.convert_to_tensor(w))]
            for g, e in zip(got, want):
                np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
        if BACKEND == "jax":
            np.testing.assert_allclose(float(got[0]), 0.0)  # 0.1.0: the first strength


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "jit"])
def test_strength_assigned_after_compile_reaches_the_next_step(jit_compile):
    if jit_compile and BACKEND == "torch":
        pytest.skip("torch.compile of a train step: covered by Keras; slow to compile on CPU")
    reg = kreg.L1(0.1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        1, use_bias=False, kernel_regularizer=reg,
        kernel_initializer=keras.initializers.Constant([[1.0], [-2.0]]))])
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=jit_compile)
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    for strength in (0.1, 0.5, 0.0, 3.0):
        reg.strength.assign(strength)
        # data loss (1 - 2)^2 = 1, penalty strength * (|1| + |-2|)
        loss = model.train_on_batch(x, y)
        np.testing.assert_allclose(float(np.ravel(loss)[0]), 1.0 + 3.0 * strength, rtol=1e-6)
        np.testing.assert_allclose(model.evaluate(x, y, verbose=0), 1.0 + 3.0 * strength, rtol=1e-6)


def test_proximal_prox_uses_the_strength_of_the_step():
    reg = kreg.L1(0.2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
        1, use_bias=False, kernel_regularizer=reg,
        kernel_initializer=keras.initializers.Constant([[1.0], [-1.0]]))])
    model.compile(kreg.Proximal(keras.optimizers.SGD(0.5)), "mse")
    zeros = np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")
    expected = np.array([1.0, -1.0])
    for strength in (0.2, 0.6, 0.0, 0.1):  # zero data gradient: each step is the prox
        reg.strength.assign(strength)
        model.train_on_batch(*zeros)
        expected = np.sign(expected) * np.maximum(np.abs(expected) - 0.5 * strength, 0)
        np.testing.assert_allclose(model.get_weights()[0].ravel(), expected, rtol=1e-6)


def test_concrete_is_none_inside_a_compiled_function():
    seen = []

    def probe(x):
        seen.append(_backend.concrete(x))
        return x + 1

    assert _backend.concrete(ops.ones((2,))) is not None
    backend_ops.compiled(probe)(ops.ones((2,)))
    assert seen[-1] is None  # tf.function, jax.jit, torch.compile: traced, not known yet


def test_a_bad_strength_tensor_is_refused_on_every_backend():
    reg = kreg.L1(0.1)
    for bad in (ops.convert_to_tensor(-1.0), ops.convert_to_tensor(float("nan"))):
        with pytest.raises(ValueError, match="`strength`"):
            reg.strength.assign(bad)
    assert float(backend_ops.numpy(reg.strength)) == pytest.approx(0.1)
