"""kreg.compact and kreg.unit_counts against independent references.

References: a NumPy forward pass of the compact model's weights (MLPs), the full
model's predictions (every layer kind), hand-built weights whose dead units are
known by construction.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kreg

pytestmark = pytest.mark.usefixtures("device")

L = keras.layers


def _predict(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), "float64")


def _assert_same(small, model, x, rtol=1e-5):
    full = _predict(model, x)
    got = _predict(small, x)
    scale = max(np.abs(full).max(), 1e-6)
    assert np.abs(got - full).max() <= rtol * scale, np.abs(got - full).max() / scale


def _set(layer, **arrays):
    for name, value in arrays.items():
        getattr(layer, name).assign(np.asarray(value, "float32"))


def _mlp(strength=0.01):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((6,)),
        L.Dense(5, activation="relu", name="h1", kernel_regularizer=kreg.GroupLasso(strength)),
        L.Dense(4, activation="relu", name="h2", kernel_regularizer=kreg.GroupLasso(strength)),
        L.Dense(3, name="out"),
    ], name="mlp")


def _numpy_mlp(model, x):
    """An independent forward pass: ReLU MLP from the model's Dense weights."""
    h = x.astype("float64")
    dense = [layer for layer in model.layers if isinstance(layer, L.Dense)]
    for i, layer in enumerate(dense):
        h = h @ np.asarray(layer.kernel, "float64") + np.asarray(layer.bias, "float64")
        if i < len(dense) - 1:
            h = np.maximum(h, 0)
    return h


def test_mlp_all_in_zero_all_out_zero_and_folded_constants(rng):
    model = _mlp()
    h1, h2 = model.get_layer("h1"), model.get_layer("h2")
    k1 = np.array(h1.kernel)
    k1[:, [0, 3]] = 0  # all-in zero: units 0 and 3 output relu(bias), a constant
    _set(h1, kernel=k1, bias=[0.5, 0.1, 0.2, -0.3, 0.4])
    k2 = np.array(h2.kernel)
    k2[1, :] = 0  # all-out zero: h1 unit 1 is read by nobody
    k2[:, 2] = 0  # h2 unit 2: all-in zero, constant relu(b) folded into `out`
    _set(h2, kernel=k2, bias=[0.1, 0.2, 0.7, 0.0])
    before = [np.array(w) for w in model.get_weights()]
    x = rng.normal(size=(64, 6)).astype("float32")

    small, report = kreg.compact(model, report=True)

    # h1 keeps units 2 and 4 (0 and 3 constant, folded; 1 unread); h2 keeps 0, 1, 3.
    assert report.units == {"h1": (2, 5), "h2": (3, 4), "out": (3, 3)}
    assert kreg.unit_counts(model) == report.units
    assert [layer.units for layer in small.layers] == [2, 3, 3]
    np.testing.assert_allclose(_numpy_mlp(small, x), _predict(model, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_numpy_mlp(small, x), _numpy_mlp(model, x), rtol=1e-5, atol=1e-6)
    # the compact weights are the surviving slices of the original ones
    np.testing.assert_array_equal(np.asarray(small.get_layer("h1").kernel), k1[:, [2, 4]])
    # `model` is untouched
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert small.count_params() == 6 * 2 + 2 + 2 * 3 + 3 + 3 * 3 + 3
    assert small.inputs[0].shape == model.inputs[0].shape
    assert small.outputs[0].shape == model.outputs[0].shape


def test_removal_repeats_until_nothing_changes(rng):
    model = _mlp()
    h2, out = model.get_layer("h2"), model.get_layer("out")
    k_out = np.array(out.kernel)
    k_out[0, :] = 0  # h2 unit 0 is read by nobody: removed in round 1...
    _set(out, kernel=k_out)
    k2 = np.array(h2.kernel)
    k2[2, 1:] = 0  # ...and then h1 unit 2, read only by h2 unit 0, in round 2
    _set(h2, kernel=k2)
    small, report = kreg.compact(model, report=True)
    assert report.units["h1"] == (4, 5) and report.units["h2"] == (3, 4)
    assert report.rounds == 2
    x = rng.normal(size=(32, 6)).astype("float32")
    np.testing.assert_allclose(_numpy_mlp(small, x), _numpy_mlp(model, x), rtol=1e-5, atol=1e-6)


def _residual(dead_a, dead_b):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    a = L.Dense(4, name="a")(inputs)
    b = L.Dense(4, name="b")(L.Dense(3, activation="relu", name="pre")(inputs))
    h = L.Add(name="add")([a, b])
    out = L.Dense(2, name="out")(L.Activation("relu", name="act")(h))
    model = keras.Model(inputs, out)
    for name, dead in (("a", dead_a), ("b", dead_b)):
        layer = model.get_layer(name)
        k = np.array(layer.kernel)
        k[:, dead] = 0
        _set(layer, kernel=k, bias=np.linspace(-0.2, 0.3, 4))
    return model


def test_units_tied_across_add_are_removed_only_where_dead_in_every_branch(rng):
    model = _residual(dead_a=[0, 2], dead_b=[0, 3])  # unit 0 dead in both branches
    small, report = kreg.compact(model, report=True)
    assert report.units["a"] == (3, 4) and report.units["b"] == (3, 4)
    x = rng.normal(size=(32, 5)).astype("float32")
    _assert_same(small, model, x)
    # unit 2 alive in b only, unit 3 alive in a only: both kept
    k = np.array(small.get_layer("a").kernel)
    np.testing.assert_array_equal(k, np.asarray(model.get_layer("a").kernel)[:, [1, 2, 3]])


def test_constant_under_same_padding_is_kept_and_reported(rng):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    h = L.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inputs)
    h = L.Conv2D(2, 3, padding="same", name="c2")(h)
    model = keras.Model(inputs, L.GlobalAveragePooling2D()(h))
    c1 = model.get_layer("c1")
    k = np.array(c1.kernel)
    k[..., [0, 1]] = 0  # filter 0: relu(0.5) constant under "same": kept; filter 1: 0: removed
    _set(c1, kernel=k, bias=[0.5, -1.0, 0.0])
    small, report = kreg.compact(model, report=True)
    assert report.units["c1"] == (2, 3)
    assert report.kept_constants == {"c2": 1}
    assert "kept 1 constant channel(s) read by 'c2'" in str(report)
    _assert_same(small, model, rng.normal(size=(8, 6, 6, 2)).astype("float32"))


def test_valid_padding_folds_the_constant(rng):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    h = L.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inputs)
    h = L.Conv2D(2, 3, padding="valid", use_bias=False, name="c2")(h)
    model = keras.Model(inputs, L.Flatten()(h))
    c1 = model.get_layer("c1")
    k = np.array(c1.kernel)
    k[..., 0] = 0
    _set(c1, kernel=k, bias=[0.5, -1.0, 0.0])
    small, report = kreg.compact(model, report=True)
    assert report.units["c1"] == (2, 3) and report.kept_constants == {}
    assert small.get_layer("c2").use_bias  # the folded constant needed a bias
    _assert_same(small, model, rng.normal(size=(8, 6, 6, 2)).astype("float32"))


def test_batchnorm_zero_scale_is_dead_network_slimming(rng):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = L.Conv2D(6, 3, padding="same", use_bias=False, name="conv",
                 kernel_regularizer=kreg.GroupLasso(1e-3))(inputs)
    h = L.BatchNormalization(name="bn", gamma_regularizer=kreg.L1(1e-3))(h)
    h = L.ReLU()(h)
    h = L.Conv2D(4, 3, padding="same", name="conv2")(h)
    out = L.Dense(3, name="out")(L.GlobalMaxPooling2D()(h))
    model = keras.Model(inputs, out)
    bn = model.get_layer("bn")
    _set(bn, gamma=[1, 0, 0, 1, 0.5, 0], beta=[0.1, -0.2, 0.0, 0.3, 0.1, 0.4],
         moving_mean=rng.normal(size=6), moving_variance=rng.uniform(0.5, 2, size=6))
    small, report = kreg.compact(model, report=True)
    # channels 1, 2: relu(beta <= 0) = 0, removed; channel 5: relu(0.4) under "same": kept
    assert report.units["conv"] == (4, 6) and report.units["bn"] == (4, 6)
    assert report.kept_constants == {"conv2": 1}
    _assert_same(small, model, rng.normal(size=(16, 8, 8, 3)).astype("float32"))
    assert isinstance(small.get_layer("bn").gamma_regularizer, kreg.L1)


def _zero_units(layer, units):
    """Zeroes the incoming weights of `units` (by the layer's layout) and their biases."""
    kreg.layouts.bind(layer)
    for variable in layer.trainable_weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in ("kernel", "embeddings", "pointwise_kernel"):
            w = np.array(variable)
            axis = -2 if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose,
                                            L.Conv3DTranspose)) else -1
            index = [slice(None)] * w.ndim
            index[axis] = units
            w[tuple(index)] = 0
            variable.assign(w)
        elif name == "bias":
            b = np.array(variable)
            b[units] = 0
            variable.assign(b)


# case -> () -> (input shape, producer, layer under test or None, kept units of the producer)
_CASES = {
    "Dense": lambda: ((5,), L.Dense(6, name="p"), None, 4),
    "EinsumDense": lambda: ((3, 5), L.EinsumDense("abc,cd->abd", (3, 6), bias_axes="d", name="p"),
                    None, 4),
    "Conv1D": lambda: ((7, 3), L.Conv1D(6, 3, name="p"), None, 4),
    "Conv2D": lambda: ((6, 6, 3), L.Conv2D(6, 3, padding="same", name="p"), None, 4),
    "Conv3D": lambda: ((4, 4, 4, 2), L.Conv3D(6, 2, name="p"), None, 4),
    "Conv1DTranspose": lambda: ((4, 3), L.Conv1DTranspose(6, 3, strides=2, name="p"), None, 4),
    "Conv2DTranspose": lambda: ((4, 4, 3), L.Conv2DTranspose(6, 2, strides=2, name="p"),
                                None, 4),
    "Conv3DTranspose": lambda: ((3, 3, 3, 2), L.Conv3DTranspose(6, 2, name="p"), None, 4),
    "SeparableConv1D": lambda: ((7, 3), L.SeparableConv1D(6, 3, depth_multiplier=2, name="p"),
                        None, 4),
    "SeparableConv2D": lambda: ((6, 6, 3), L.SeparableConv2D(6, 3, name="p"), None, 4),
    "DepthwiseConv2D": lambda: ((6, 6, 3), L.Conv2D(6, 1, name="p"),
                        L.DepthwiseConv2D(3, depth_multiplier=2, name="t"), 4),
    "DepthwiseConv1D": lambda: ((7, 3), L.Conv1D(6, 1, name="p"),
                                L.DepthwiseConv1D(3, name="t"), 4),
    "Embedding": lambda: ((4,), L.Embedding(9, 6, name="p"), None, 4),
    "BatchNormalization": lambda: ((5,), L.Dense(6, name="p"), L.BatchNormalization(name="t"), 4),
    "LayerNormalization": lambda: ((5,), L.Dense(6, name="p"), L.LayerNormalization(name="t"), 6),
    "Dropout": lambda: ((5,), L.Dense(6, name="p"), L.Dropout(0.5, name="t"), 4),
    "Activation": lambda: ((5,), L.Dense(6, name="p"), L.Activation("tanh", name="t"), 4),
    "softmax": lambda: ((5,), L.Dense(6, name="p"), L.Activation("softmax", name="t"), 6),
    "LeakyReLU": lambda: ((5,), L.Dense(6, name="p"), L.LeakyReLU(name="t"), 4),
    "MaxPooling2D": lambda: ((6, 6, 3), L.Conv2D(6, 1, name="p"), L.MaxPooling2D(name="t"), 4),
    "AveragePooling1D": lambda: ((6, 3), L.Conv1D(6, 1, name="p"),
                         L.AveragePooling1D(2, padding="same", name="t"), 4),
    "GlobalAveragePooling2D": lambda: ((6, 6, 3), L.Conv2D(6, 1, name="p"),
                               L.GlobalAveragePooling2D(name="t"), 4),
    "Flatten": lambda: ((4, 4, 3), L.Conv2D(6, 1, name="p"), L.Flatten(name="t"), 4),
    "Reshape": lambda: ((4, 4, 3), L.Conv2D(6, 1, name="p"), L.Reshape((16, 6), name="t"), 4),
    "Reshape-boundary": lambda: ((4, 4, 3), L.Conv2D(6, 1, name="p"),
                                 L.Reshape((48, 2), name="t"), 6),
}


@pytest.mark.parametrize("bias", [0.0, 0.7], ids=["zero", "constant"])
@pytest.mark.parametrize("case", sorted(_CASES))
def test_every_listed_layer_predicts_the_same(case, bias, rng):
    shape, producer, under_test, kept = _CASES[case]()
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape, dtype="int32" if case == "Embedding" else "float32")
    h = producer(inputs)
    if under_test is not None:
        h = under_test(h)
    if len(h.shape) > 2:
        h = L.Flatten(name="flat")(h)
    model = keras.Model(inputs, L.Dense(3, name="out")(h))
    _zero_units(producer, [1, 4])  # incoming zero, bias zero: the constant 0
    if bias and getattr(producer, "bias", None) is not None:
        b = np.array(producer.bias)
        b[[1, 4]] = [bias, -bias]  # a nonzero constant, folded downstream
        _set(producer, bias=b)
    if case == "BatchNormalization":
        _set(under_test, moving_mean=rng.normal(size=6), gamma=rng.normal(size=6))
    x = (rng.integers(0, 9, size=(16,) + shape) if case == "Embedding"
         else rng.normal(size=(16,) + shape).astype("float32"))
    small, report = kreg.compact(model, report=True)
    assert report.units["p"] == (kept, 6)
    _assert_same(small, model, x)
    if kept == 6:
        assert "t" in report.boundaries
    else:
        assert small.count_params() < model.count_params()


@pytest.mark.parametrize("merge", ["Add", "Subtract", "Multiply", "Average", "Maximum",
                                   "Minimum", "Concatenate"])
def test_merge_layers(merge, rng):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    a = L.Dense(4, name="a")(inputs)
    b = L.Dense(4, name="b")(inputs)
    h = getattr(L, merge)(name="m")([a, b])
    model = keras.Model(inputs, L.Dense(2, name="out")(h))
    _zero_units(model.get_layer("a"), [0, 1])
    _zero_units(model.get_layer("b"), [0, 2])
    small, report = kreg.compact(model, report=True)
    # tied: unit 0 is zero in both branches; Concatenate: each branch on its own;
    # Multiply: a zero in either factor makes the product 0 (units 0, 1, 2 go)
    expected = {"Concatenate": (2, 2), "Multiply": (1, 1)}.get(merge, (3, 3))
    assert (report.units["a"][0], report.units["b"][0]) == expected
    _assert_same(small, model, rng.normal(size=(16, 5)).astype("float32"))


def test_boundaries_nested_model_and_custom_layer_keep_their_channels(rng):
    @keras.saving.register_keras_serializable(package="kreg_tests")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    keras.utils.set_random_seed(0)
    inner_in = keras.Input((6,))
    inner = keras.Model(inner_in, L.Dense(6, name="inner_dense")(inner_in), name="inner")
    inputs = keras.Input((5,))
    h = L.Dense(6, name="p")(inputs)
    h = Scale(name="custom")(h)
    h = L.Dense(6, name="q")(h)
    h = inner(h)
    model = keras.Model(inputs, L.Dense(2, name="out")(h))
    for name in ("p", "q"):
        _zero_units(model.get_layer(name), [1])
    small, report = kreg.compact(model, report=True)
    assert report.units["p"] == (6, 6) and report.units["q"] == (6, 6)
    assert "no rule for Scale" in report.boundaries["custom"]
    assert "nested model" in report.boundaries["inner"]
    _assert_same(small, model, rng.normal(size=(8, 5)).astype("float32"))


def test_errors():
    with pytest.raises(ValueError, match="Invalid value for argument `model`: expected a "
                                         "keras.Model.*Received: model of type Dense"):
        kreg.compact(L.Dense(2))
    with pytest.raises(ValueError, match="argument `tolerance`.*Received: tolerance=-1"):
        kreg.compact(_mlp(), tolerance=-1)
    shared = L.Dense(5, name="shared")
    inputs = keras.Input((5,))
    model = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match="calls layer 'shared'.*more than once"):
        kreg.compact(model)
    with pytest.raises(ValueError, match="expected a built model"):
        kreg.compact(keras.Sequential([L.Dense(2)]))

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.ones((1, 3)))
    with pytest.raises(ValueError, match="subclassed model"):
        kreg.compact(sub)


def test_tolerance_uses_the_one_dead_rule(rng):
    model = _mlp()
    h1 = model.get_layer("h1")
    k = np.array(h1.kernel)
    k[:, 2] = 1e-4
    _set(h1, kernel=k)
    kreg.layouts.bind(model)
    assert kreg.unit_counts(model)["h1"] == (5, 5)
    assert kreg.unit_counts(model, tolerance=1e-4)["h1"] == (4, 5)
    np.testing.assert_array_equal(kreg.layouts.alive_units(h1.kernel, 1e-4),
                                  [True, True, False, True, True])


def test_proximal_training_compact_finetune_save_load_and_export(tmp_path, rng):
    model = _mlp(strength=0.1)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = rng.integers(0, 3, size=128)
    model.compile(kreg.Proximal(keras.optimizers.SGD(0.5)),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=5, verbose=0)
    kept = kreg.unit_counts(model)
    assert kept["h1"][0] < 5 or kept["h2"][0] < 4  # strong enough to prune something
    small = kreg.compact(model)
    _assert_same(small, model, x)
    np.testing.assert_allclose(_numpy_mlp(small, x), _predict(model, x), rtol=1e-5, atol=1e-5)
    # same regularizers: fine-tunable with Proximal
    assert small.get_layer("h1").kernel_regularizer.get_config() == \
        model.get_layer("h1").kernel_regularizer.get_config()
    small.compile(kreg.Proximal(keras.optimizers.SGD(0.1)),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    small.fit(x, y, epochs=1, verbose=0)
    # .keras round trip and SavedModel export
    path = str(tmp_path / "small.keras")
    small.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_predict(reloaded, x), _predict(small, x), rtol=1e-6, atol=1e-6)
    if keras.backend.backend() == "tensorflow":  # SavedModel: a TensorFlow format
        import tensorflow as tf

        small.export(str(tmp_path / "saved"), verbose=False)
        served = tf.saved_model.load(str(tmp_path / "saved"))
        np.testing.assert_allclose(np.asarray(served.serve(x)), _predict(small, x),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_loads_in_a_fresh_process(tmp_path, rng):
    model = _mlp()
    _zero_units(model.get_layer("h1"), [0, 2])
    small = kreg.compact(model)
    x = rng.normal(size=(16, 6)).astype("float32")
    small.save(str(tmp_path / "m.keras"))
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, keras, kreg, json, sys; "
            f"m = keras.saving.load_model({str(tmp_path / 'm.keras')!r}); "
            f"print(json.dumps(np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}))).tolist()))")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(kreg.__file__))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    got = np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, _predict(model, x), rtol=1e-5, atol=1e-6)


def test_agrees_with_the_benchmarks_numpy_mlp_compaction(rng):
    """bench/sparsity.py's Dense-only NumPy compaction (written separately) keeps the same units."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench.sparsity import compact as numpy_compact

    model = _mlp()
    for name, dead_in, dead_out in (("h1", [0, 2], [4]), ("h2", [3], [1])):
        layer = model.get_layer(name)
        k = np.array(layer.kernel)
        k[:, dead_in] = 0
        _set(layer, kernel=k, bias=rng.normal(size=k.shape[1]))
    out = model.get_layer("out")
    k = np.array(out.kernel)
    k[1, :] = 0
    _set(out, kernel=k)
    k = np.array(model.get_layer("h2").kernel)
    k[4, :] = 0
    _set(model.get_layer("h2"), kernel=k)
    weights = [(np.asarray(layer.kernel), np.asarray(layer.bias)) for layer in model.layers]
    reference, kept = numpy_compact(weights)
    small = kreg.compact(model)
    assert [layer.units for layer in small.layers[:-1]] == kept == [2, 2]
    for layer, (k_ref, b_ref) in zip(small.layers, reference):
        np.testing.assert_allclose(np.asarray(layer.kernel), k_ref, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(layer.bias), b_ref, rtol=1e-5, atol=1e-6)
