"""float16, bfloat16, float32, float64 and mixed_float16: finite penalties, training, prox dtype.

kreg computes in float32 or wider and returns the penalty in `keras.config.floatx()`
(the dtype a model sums its losses in); `prox` returns the input's dtype.
"""

import keras
import numpy as np
import pytest

import kreg

pytestmark = pytest.mark.usefixtures("device")

DTYPES = ["float16", "bfloat16", "float32", "float64"]
# Relative spacing of each dtype (unit roundoff is half of it).
EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}


def all_five():
    return [
        kreg.L1(0.01),
        kreg.L2(0.02),
        kreg.ElasticNet(0.03, l1_ratio=0.25),
        kreg.GroupLasso(0.04, groups="units"),
        kreg.SparseGroupLasso(0.05, l1_ratio=0.5, groups=[0, 1, 1, 0]),
    ]


def np_penalty(reg, w):
    """The docstring formula in float64 (groups: "units" or one id per input, as used here)."""
    w = np.asarray(w, dtype=np.float64)
    config = reg.get_config()
    s = float(np.float32(config["strength"]))  # the value the float32 variable holds
    r = config.get("l1_ratio")
    l1, l2 = np.sum(np.abs(w)), np.sum(w**2)
    kind = type(reg).__name__
    if kind == "L1":
        return s * l1
    if kind == "L2":
        return s * l2
    if kind == "ElasticNet":
        return s * (r * l1 + (1 - r) * l2)
    if config["groups"] == "units":
        blocks = [w[:, j] for j in range(w.shape[1])]
    else:
        ids = np.asarray(config["groups"])
        blocks = [w[ids == g] for g in np.unique(ids)]
    group = sum(np.sqrt(b.size) * np.linalg.norm(b) for b in blocks)
    if kind == "GroupLasso":
        return s * group
    return s * (r * l1 + (1 - r) * group)


def five_layer_model(dtype=None):
    regs = all_five()
    layers = [
        keras.layers.Dense(4, activation="tanh", kernel_regularizer=reg, dtype=dtype)
        for reg in regs
    ]
    layers.append(keras.layers.Dense(2, dtype="float32"))  # float32 output for the loss
    model = keras.Sequential([keras.Input((4,))] + layers)
    kreg.layouts.bind(model)  # the layers' kernels are used directly below
    return model, regs, layers


def train(model, rng):
    """Four SGD steps; returns the epoch loss and the largest change of any weight."""
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")
    model.compile(keras.optimizers.SGD(0.05), "mse")
    before = [v.numpy().astype("float64") for v in model.trainable_variables]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = [v.numpy().astype("float64") for v in model.trainable_variables]
    moved = max(np.max(np.abs(a - b)) for a, b in zip(after, before))
    return history.history["loss"], moved


@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_of_each_dtype_train_with_finite_penalties(dtype, rng):
    model, regs, layers = five_layer_model(dtype)
    for layer in layers[:-1]:
        assert keras.backend.standardize_dtype(layer.kernel.dtype) == dtype
    for reg, layer in zip(regs, layers):
        # Weights of order 1 whose squares and norms the dtype represents.
        layer.kernel.assign(rng.normal(size=layer.kernel.shape).astype(dtype))
        value = reg(layer.kernel)
        assert keras.backend.standardize_dtype(value.dtype) == keras.config.floatx()
        assert np.isfinite(float(value))
        # Computed in float32 or wider from the exact stored weights: float32 accuracy.
        np.testing.assert_allclose(
            float(value), np_penalty(reg, layer.kernel.numpy()), rtol=1e-5, err_msg=repr(reg)
        )
    losses = [float(v) for v in model.losses]
    assert len(losses) == 5 and all(np.isfinite(losses))
    loss, moved = train(model, rng)
    assert np.all(np.isfinite(loss)) and moved > 0
    assert all(np.isfinite(float(v)) for v in model.losses)


def test_half_precision_weights_do_not_overflow():
    # 300**2 * 12 is far above float16's largest value (65504): kreg sums in float32.
    w = np.full((4, 3), 300.0, "float16")
    for reg in all_five():
        value = float(reg(w))
        assert np.isfinite(value)
        np.testing.assert_allclose(value, np_penalty(reg, w), rtol=1e-6)


def test_mixed_float16_model_trains(rng):
    keras.config.set_dtype_policy("mixed_float16")  # reset by the conftest fixture
    model, regs, layers = five_layer_model()
    assert keras.backend.standardize_dtype(layers[0].compute_dtype) == "float16"
    # Dynamic loss scaling skips the first steps while the scale is too large; enough
    # steps are taken for some to apply.
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 2)).astype("float32")
    model.compile(keras.optimizers.SGD(0.05), "mse")
    kernel = layers[0].kernel.numpy()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.max(np.abs(layers[0].kernel.numpy() - kernel)) > 0
    for reg, layer in zip(regs, layers):
        value = reg(layer.kernel)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        np.testing.assert_allclose(float(value), np_penalty(reg, layer.kernel.numpy()), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prox_returns_the_input_dtype(dtype, rng):
    """Half precision is computed in float32: the result is the float64 prox rounded once.

    The float64 prox itself is checked against closed forms and scipy in test_prox.py.
    """
    w = rng.normal(size=(4, 3)).astype(dtype)
    w64 = w.astype("float64")
    d = rng.uniform(0.2, 1.0, size=(4, 3))
    for reg in all_five():
        reg.strength.assign(0.5)
        for step, step64 in ((0.5, 0.5), (d.astype(dtype), d.astype(dtype).astype("float64")),
                             (d.astype("float32"), d.astype("float32").astype("float64"))):
            y = reg.prox(w, step)
            assert keras.backend.standardize_dtype(y.dtype) == dtype, (reg, dtype)
            assert tuple(y.shape) == w.shape
            y = keras.ops.convert_to_numpy(y).astype("float64")
            ref = keras.ops.convert_to_numpy(reg.prox(w64, step64))
            assert np.all(np.isfinite(y))
            tol = max(EPS[dtype], 1e-6)
            np.testing.assert_allclose(
                y, ref, rtol=tol, atol=tol * np.max(np.abs(ref)), err_msg=repr(reg)
            )
            np.testing.assert_array_equal(y == 0, ref == 0)
