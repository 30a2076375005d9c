"""Never silently wrong: no leaking optimizer state, visible NaNs, every input checked.

Each test here is written against a wrong answer kreg 0.1.0 gave without a word
(the comment on each test says which); the expected numbers come from NumPy
written from the docstring formulas or from closed forms.
"""

import os

import keras
import numpy as np
import pytest

import backend_ops
import kreg
from conftest import only_on
from keras import ops
from kreg.callbacks import PenaltyMonitor, StrengthScheduler, measure_sparsity

pytestmark = pytest.mark.usefixtures("device")

ALL = [
    lambda: kreg.L1(0.3),
    lambda: kreg.L2(0.3),
    lambda: kreg.ElasticNet(0.3, l1_ratio=0.4),
    lambda: kreg.GroupLasso(0.3),
    lambda: kreg.SparseGroupLasso(0.3, l1_ratio=0.4),
]
IDS = ["L1", "L2", "ElasticNet", "GroupLasso", "SparseGroupLasso"]


def _two_weight_model(regularizer, name="net"):
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones",
                                               kernel_regularizer=regularizer, name="out")],
        name=name,
    )
    return model


def _zero_data_step(model):
    """One step on zero data: the only gradient is the penalty's."""
    model.train_on_batch(np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32"))
    return model.get_weights()[0].ravel()


# ------------------------------------------------ 2. no state left by Proximal


def test_plain_sgd_after_proximal_follows_the_penalty_again(tmp_path):
    # 0.1.0: Proximal switched the penalty's gradient off on the regularizer for
    # good, so each plain-SGD model below stayed at [1, 1].
    expected = 1.0 - 0.5 * 0.2  # SGD(0.5) on L1(0.2): one subgradient step
    model = _two_weight_model(kreg.L1(0.2))
    model.compile(kreg.Proximal(keras.optimizers.SGD(0.5)), "mse")
    clone = keras.models.clone_model(model)
    clone.compile(keras.optimizers.SGD(0.5), "mse")
    np.testing.assert_allclose(_zero_data_step(clone), [expected] * 2, rtol=1e-6)
    # The same model, recompiled.
    model.compile(keras.optimizers.SGD(0.5), "mse")
    np.testing.assert_allclose(_zero_data_step(model), [expected] * 2, rtol=1e-6)
    # Trained by Proximal first (the prox moves it to 0.9), then recompiled plain.
    model = _two_weight_model(kreg.L1(0.2))
    model.compile(kreg.Proximal(keras.optimizers.SGD(0.5)), "mse")
    np.testing.assert_allclose(_zero_data_step(model), [expected] * 2, rtol=1e-6)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded.compile(keras.optimizers.SGD(0.5), "mse")
    np.testing.assert_allclose(_zero_data_step(loaded), [expected - 0.1] * 2, rtol=1e-6)
    model.compile(keras.optimizers.SGD(0.5), "mse")
    np.testing.assert_allclose(_zero_data_step(model), [expected - 0.1] * 2, rtol=1e-6)


def test_a_second_model_sharing_the_regularizer_follows_its_gradient():
    shared = kreg.L1(0.2)
    first = _two_weight_model(shared, "first")
    first.compile(kreg.Proximal(keras.optimizers.SGD(0.5)), "mse")
    _zero_data_step(first)
    second = _two_weight_model(shared, "second")
    second.compile(keras.optimizers.SGD(0.5), "mse")
    np.testing.assert_allclose(_zero_data_step(second), [0.9, 0.9], rtol=1e-6)


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_closed_form_gradient_equals_autodiff(make, rng):
    reg = make()
    layer = keras.layers.Dense(4, kernel_regularizer=reg)
    layer.build((None, 5))
    w = rng.normal(size=(5, 4)).astype("float32")
    w[1, 0] = 0.0  # a zero weight (a kink of |w|)
    w[:, 2] = 0.0  # a zero unit (the kink of the group norm)
    layer.kernel.assign(w)
    kreg.layouts.bind(layer)
    # A bare tensor has the Dense layout `(inputs, units)`, the layer's own.
    autodiff = backend_ops.gradient(reg, w)
    closed = backend_ops.numpy(reg.gradient(layer.kernel))
    np.testing.assert_allclose(closed, autodiff, rtol=2e-6, atol=1e-7)


# --------------------------------------------------------------- 3. NaN shows


def test_group_penalties_of_a_nan_group_are_nan():
    # 0.1.0: the NaN group counted 0, so GroupLasso returned a finite number.
    w = np.ones((3, 4), "float32")
    w[0, 1] = np.nan
    for reg in (kreg.GroupLasso(0.1), kreg.SparseGroupLasso(0.1), kreg.L1(0.1)):
        assert np.isnan(float(reg(w))), reg


@pytest.mark.parametrize("reg", [kreg.GroupLasso(1.0), kreg.SparseGroupLasso(1.0, 0.3)],
                         ids=["GroupLasso", "SparseGroupLasso"])
@pytest.mark.parametrize("per_weight", [False, True], ids=["scalar", "metric"])
def test_prox_keeps_a_nan_group_nan(reg, per_weight):
    # 0.1.0: the per-weight (Adam, RMSprop, Adagrad) prox made NaN groups exact zeros.
    w = np.full((3, 4), 0.01, "float32")
    w[:, 0] = 5.0
    w[1, 3] = np.nan
    step = np.full((3, 4), 0.5, "float32") if per_weight else 0.5
    y = np.asarray(reg.prox(w, step))
    assert np.isnan(y[1, 3])
    assert not np.any(y[:, 3] == 0)  # the NaN unit is not reported pruned
    np.testing.assert_array_equal(y[:, 1:3], 0.0)  # small units are still pruned
    assert np.all(np.isfinite(y[:, 0])) and np.all(y[:, 0] > 0)


def test_a_nan_step_inside_a_compiled_step_gives_nan_not_zeros():
    reg = kreg.GroupLasso(1.0)
    w = np.full((3, 4), 0.01, "float32")

    prox = backend_ops.compiled(lambda step: reg.prox(w, step))
    bad = np.full((3, 4), 0.5, "float32")
    bad[0, 0] = np.nan
    y = backend_ops.numpy(prox(ops.convert_to_tensor(bad)))
    assert np.all(np.isnan(y[:, 0]))
    negative = backend_ops.numpy(prox(ops.full((3, 4), -1.0)))
    assert np.all(np.isnan(negative))


def test_sparsity_never_counts_nan_as_zero():
    # 0.1.0: a diverged layer showed group_sparsity 1.0.
    reg = kreg.GroupLasso(0.1)
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(4, kernel_regularizer=reg, name="h")])
    w = np.zeros((3, 4), "float32")
    w[0, 1] = np.nan
    w[2, 3] = 1.0
    model.layers[0].kernel.assign(w)
    got = measure_sparsity(model)
    assert got["group_sparsity/h/kernel"] == pytest.approx(2 / 4)  # units 0 and 2
    assert got["sparsity/h/kernel"] == pytest.approx(10 / 12)
    # The same through the monitor's compiled count (TF's graph optimizer once turned
    # "not |w| <= 0" into "|w| > 0", which is False for NaN).
    monitor = kreg.callbacks.SparsityMonitor()
    monitor.set_model(model)
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["group_sparsity/h/kernel"] == pytest.approx(2 / 4)
    assert logs["sparsity/h/kernel"] == pytest.approx(10 / 12)
    np.testing.assert_array_equal(
        kreg.layouts.alive_units(model.layers[0].kernel), [False, True, False, True]
    )


# -------------------------------------------------------- 4. steps, strengths


@pytest.mark.parametrize("bad", [-0.5, np.nan], ids=["negative", "nan"])
@pytest.mark.parametrize("kind", ["array", "tensor"])
def test_bad_step_arrays_and_tensors_are_refused(bad, kind):
    # 0.1.0: weights grew from 1.0 to 1.5, or became NaN.
    step = np.array([0.1, bad, 0.1], "float32")
    step = ops.convert_to_tensor(step) if kind == "tensor" else step
    for reg in (kreg.L1(1.0), kreg.GroupLasso(1.0)):
        with pytest.raises(ValueError, match=r"argument `step`: expected non-negative finite"):
            reg.prox(np.ones((2, 3), "float32"), step)
    variable = keras.Variable(np.ones((2, 3)), dtype="float32")
    variable.regularizer = kreg.L1(1.0)
    with pytest.raises(ValueError, match="`step_size`"):
        kreg.proximal_step([variable], ops.convert_to_tensor(bad))
    np.testing.assert_array_equal(backend_ops.numpy(variable), 1.0)


def test_a_step_that_would_grow_the_weight_is_refused():
    # 0.1.0: a (3, 1) step with a (1, 3) weight returned a (3, 3) array.
    with pytest.raises(ValueError, match=r"broadcasts to the weight's shape \(1, 3\).*\(3, 1\)"):
        kreg.L1(0.1).prox(np.ones((1, 3), "float32"), np.ones((3, 1), "float32"))


def test_float64_weights_get_a_float64_step():
    # 0.1.0: the Python step was rounded to float32 first (6e-9 off).
    w = np.array([1.0, -2.0, 0.05])
    y = np.asarray(kreg.L1(1.0).prox(w, 0.1))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [1.0 - 0.1, -2.0 + 0.1, 0.0])
    variable = keras.Variable(w, dtype="float64")
    variable.regularizer = kreg.L1(1.0)
    kreg.proximal_step([variable], 0.1)
    np.testing.assert_array_equal(variable.numpy(), [1.0 - 0.1, -2.0 + 0.1, 0.0])


@pytest.mark.parametrize("value", [1e39, 1e-46], ids=["overflow", "underflow"])
def test_strengths_float32_cannot_hold_are_refused(value):
    # 0.1.0: L1(1e39) had strength inf, L1(1e-46) strength 0.
    with pytest.raises(ValueError, match=r"`strength`.*float32"):
        kreg.L1(value)
    reg = kreg.L1(0.1)
    with pytest.raises(ValueError, match=r"`strength`.*float32"):
        reg.strength.assign(value)


@pytest.mark.parametrize("bad", [-0.1, np.nan, np.inf, np.array([0.1, 0.2])])
def test_bad_strength_assignments_are_refused_and_the_model_still_saves(bad, tmp_path):
    # 0.1.0: the bad value stayed and the saved .keras file could not be loaded.
    reg = kreg.L1(0.1)
    with pytest.raises(ValueError, match="`strength`"):
        reg.strength.assign(bad)
    with pytest.raises(ValueError, match="`strength`"):
        reg.strength.assign(ops.convert_to_tensor(bad, "float32"))
    assert float(backend_ops.numpy(reg.strength)) == pytest.approx(0.1)
    model = _two_weight_model(reg)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].kernel_regularizer.get_config()["strength"] == 0.1


def test_a_schedule_going_negative_is_refused_and_leaves_the_last_good_strength():
    reg = kreg.L1(0.1)
    model = _two_weight_model(reg)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x, y = np.zeros((4, 2)), np.zeros((4, 1))
    with pytest.raises(ValueError, match="at epoch 1"):
        model.fit(x, y, epochs=3, verbose=0,
                  callbacks=[StrengthScheduler(lambda epoch: 0.2 - 0.3 * epoch)])
    assert float(reg.strength.numpy()) == pytest.approx(0.2)


@pytest.mark.parametrize("value", ["x", [0.1]])
def test_non_numeric_strength_raises_what_keras_raises(value):
    with pytest.raises(ValueError):
        keras.regularizers.L1(value)
    with pytest.raises(ValueError, match="`strength`"):
        kreg.L1(value)
    # Keras turns None into its default strength; kreg refuses it (a ValueError too).
    with pytest.raises(ValueError, match="`strength`"):
        kreg.L1(None)


def test_integer_weights():
    # 0.1.0: L1(0.5) of an int32 tensor was 0.0; the group prox raised a raw TF error.
    w = np.array([[1, -2], [3, 0]], "int32")
    assert float(kreg.L1(0.5)(w)) == pytest.approx(3.0)
    assert float(kreg.L2(0.5)(w)) == pytest.approx(7.0)
    with pytest.raises(TypeError, match=r"`w`.*floating-point.*int32"):
        kreg.GroupLasso(0.1).prox(w, 0.1)


@only_on("tensorflow", reason="a raw tf.Variable")
def test_proximal_step_names_a_non_keras_variable():
    
    import tensorflow as tf

    variable = tf.Variable(np.ones(3, "float32"))
    variable.regularizer = kreg.L1(0.1)
    with pytest.raises(TypeError, match="is not a keras.Variable"):
        kreg.proximal_step([variable], 0.1)


# ----------------------------------------------------------- 5. smaller things


def test_network_slimming_zeroes_batchnorm_channels_and_counts_them(rng):
    """Liu et al. 2017: L1 on BatchNorm's gamma under Proximal gives exact dead channels."""
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, use_bias=False, name="conv")(inputs)
    h = keras.layers.BatchNormalization(gamma_regularizer=kreg.L1(0.25), name="bn")(h)
    h = keras.layers.ReLU()(h)
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, out)
    model.compile(kreg.Proximal(keras.optimizers.SGD(0.1)), "mse")
    x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    y = 3 * np.maximum(x[..., 0], 0).mean(axis=(1, 2))[:, None]
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0,
                        callbacks=[kreg.callbacks.SparsityMonitor()])
    gamma = model.get_layer("bn").gamma.numpy()
    dead = np.mean(gamma == 0)
    assert 0 < dead < 1
    assert history.history["group_sparsity/bn/gamma"][-1] == pytest.approx(dead)
    assert history.history["sparsity/bn/gamma"][-1] == pytest.approx(dead)


def test_batchnorm_makes_the_fit_blind_to_a_filters_scale(rng):
    """Why GroupLasso on a conv before BatchNorm selects nothing (README): in training,
    BatchNorm's output does not change when one filter is scaled, so the penalty can
    shrink any filter at no cost to the data loss."""
    inputs = keras.Input((6, 6, 3))
    conv = keras.layers.Conv2D(4, 3, use_bias=False)
    bn = keras.layers.BatchNormalization(epsilon=1e-9)
    model = keras.Model(inputs, bn(conv(inputs)))
    x = rng.normal(size=(16, 6, 6, 3)).astype("float32")
    before = backend_ops.numpy(model(x, training=True))
    k = conv.kernel.numpy()
    k[..., 1] *= 0.05
    conv.kernel.assign(k)
    after = backend_ops.numpy(model(x, training=True))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)


def test_penalty_monitor_gives_the_validation_loss_without_the_penalty(rng):
    reg = kreg.L1(0.0)
    model = _two_weight_model(reg)
    model.compile(keras.optimizers.SGD(0.01), "mse")
    x = rng.normal(size=(32, 2)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0]])).astype("float32")
    xv, yv = x[:8] + 0.5, y[:8]
    history = model.fit(
        x, y, epochs=3, verbose=0, validation_data=(xv, yv),
        callbacks=[StrengthScheduler(lambda epoch: 0.5 * epoch), PenaltyMonitor()],
    )
    w = model.get_weights()[0]
    assert history.history["penalty"][-1] == pytest.approx(1.0 * np.abs(w).sum(), rel=1e-6)
    data = float(np.mean((xv @ w - yv) ** 2))
    assert history.history["val_data_loss"][-1] == pytest.approx(data, rel=1e-5)
    assert history.history["val_loss"][-1] == pytest.approx(data + np.abs(w).sum(), rel=1e-5)


def test_log_keys_do_not_depend_on_the_models_generated_name():
    keys = []
    for _ in range(2):  # as when a notebook cell runs twice: sequential, sequential_1
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
            1, kernel_regularizer=kreg.L1(0.1), name="out")])
        keys.append(sorted(measure_sparsity(model)))
    assert keys[0] == keys[1] == ["sparsity", "sparsity/out/kernel"]
