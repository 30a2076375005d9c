"""Groups follow each Keras layer's own units and inputs (kreg.layouts).

The oracle below lists, by hand and per layer, which kernel entries feed one unit
(or leave one input), read from the layer's documented computation, not from
kreg's layout table. Penalty values, the prox, `measure_sparsity` and
`kreg.plot.surviving_units` are all checked against it. Under kreg 0.1.0 every
non-Dense/Conv case here failed: groups were taken on the last axis.
"""

import keras
import numpy as np
import pytest

import backend_ops
import kreg
from kreg import layouts

pytestmark = pytest.mark.usefixtures("device")


def _units_lstm(gates):
    def units(k):
        u = k.shape[-1] // gates
        return [k[..., [g * u + j for g in range(gates)]] for j in range(u)]

    return units


# name -> (build a model whose layer "L" carries the regularizer, weight name,
#          unit blocks fn, input blocks fn or None)
CASES = {
    "dense": (
        lambda reg: keras.layers.Dense(3, kernel_regularizer=reg, name="L"), (4,), "kernel",
        lambda k: [k[:, j] for j in range(k.shape[1])],
        lambda k: [k[i, :] for i in range(k.shape[0])],
    ),
    "conv2d": (
        lambda reg: keras.layers.Conv2D(5, 3, kernel_regularizer=reg, name="L"), (6, 6, 3),
        "kernel",
        lambda k: [k[..., j] for j in range(k.shape[-1])],
        lambda k: [k[..., i, :] for i in range(k.shape[-2])],
    ),
    "conv2d_transpose": (
        lambda reg: keras.layers.Conv2DTranspose(8, 3, kernel_regularizer=reg, name="L"),
        (5, 5, 3), "kernel",
        # kernel (h, w, filters, channels): filter j is kernel[..., j, :]
        lambda k: [k[..., j, :] for j in range(k.shape[-2])],
        lambda k: [k[..., i] for i in range(k.shape[-1])],
    ),
    "conv1d_transpose": (
        lambda reg: keras.layers.Conv1DTranspose(4, 3, kernel_regularizer=reg, name="L"),
        (7, 2), "kernel",
        lambda k: [k[..., j, :] for j in range(k.shape[-2])],
        lambda k: [k[..., i] for i in range(k.shape[-1])],
    ),
    "depthwise2d": (
        lambda reg: keras.layers.DepthwiseConv2D(3, depthwise_regularizer=reg, name="L"),
        (6, 6, 4), "kernel",
        # multiplier 1: output channel c is kernel[..., c, 0]
        lambda k: [k[..., c, m] for c in range(k.shape[-2]) for m in range(k.shape[-1])],
        lambda k: [k[..., c, :] for c in range(k.shape[-2])],
    ),
    "depthwise_multiplier2": (
        lambda reg: keras.layers.DepthwiseConv2D(
            3, depth_multiplier=2, depthwise_regularizer=reg, name="L"), (6, 6, 3), "kernel",
        lambda k: [k[..., c, m] for c in range(k.shape[-2]) for m in range(k.shape[-1])],
        lambda k: [k[..., c, :] for c in range(k.shape[-2])],
    ),
    "separable_depthwise": (
        lambda reg: keras.layers.SeparableConv2D(
            4, 3, depthwise_regularizer=reg, name="L"), (6, 6, 3), "depthwise_kernel",
        lambda k: [k[..., c, m] for c in range(k.shape[-2]) for m in range(k.shape[-1])],
        lambda k: [k[..., c, :] for c in range(k.shape[-2])],
    ),
    "separable_pointwise": (
        lambda reg: keras.layers.SeparableConv2D(
            4, 3, pointwise_regularizer=reg, name="L"), (6, 6, 3), "pointwise_kernel",
        lambda k: [k[..., j] for j in range(k.shape[-1])],
        lambda k: [k[..., i, :] for i in range(k.shape[-2])],
    ),
    "lstm_kernel": (
        lambda reg: keras.layers.LSTM(3, kernel_regularizer=reg, name="L"), (2, 5), "kernel",
        _units_lstm(4), lambda k: [k[i, :] for i in range(k.shape[0])],
    ),
    "lstm_recurrent": (
        lambda reg: keras.layers.LSTM(3, recurrent_regularizer=reg, name="L"), (2, 5),
        "recurrent_kernel", _units_lstm(4), lambda k: [k[i, :] for i in range(k.shape[0])],
    ),
    "gru_kernel": (
        lambda reg: keras.layers.GRU(3, kernel_regularizer=reg, name="L"), (2, 5), "kernel",
        _units_lstm(3), lambda k: [k[i, :] for i in range(k.shape[0])],
    ),
    "simple_rnn": (
        lambda reg: keras.layers.SimpleRNN(3, recurrent_regularizer=reg, name="L"), (2, 5),
        "recurrent_kernel",
        lambda k: [k[:, j] for j in range(k.shape[1])],
        lambda k: [k[i, :] for i in range(k.shape[0])],
    ),
    "conv_lstm1d": (
        lambda reg: keras.layers.ConvLSTM1D(2, 3, kernel_regularizer=reg, name="L"),
        (2, 6, 3), "kernel", _units_lstm(4), lambda k: [k[..., i, :] for i in range(k.shape[-2])],
    ),
    "einsum_dense": (
        lambda reg: keras.layers.EinsumDense(
            "abc,cde->abde", output_shape=(None, 4, 8), kernel_regularizer=reg, name="L"),
        (3, 6), "kernel",
        # output unit (d, e) is fed by kernel[:, d, e]
        lambda k: [k[:, d, e] for d in range(k.shape[1]) for e in range(k.shape[2])],
        lambda k: [k[c] for c in range(k.shape[0])],
    ),
    "embedding": (
        lambda reg: keras.layers.Embedding(7, 3, embeddings_regularizer=reg, name="L"), (4,),
        "embeddings",
        lambda k: [k[:, j] for j in range(k.shape[1])],
        lambda k: [k[i] for i in range(k.shape[0])],
    ),
}


def _model(case, reg):
    make, input_shape, weight, *_ = CASES[case]
    dtype = "int32" if case == "embedding" else "float32"
    inputs = keras.Input(input_shape, dtype=dtype)
    layer = make(reg)
    model = keras.Model(inputs, layer(inputs))
    variable = next(v for v in layer.weights if v.path.endswith("/" + weight))
    return model, layer, variable


def _randomize(variable, rng, dead=()):
    value = rng.normal(size=variable.shape).astype("float32")
    variable.assign(value)
    return value


def _group_lasso(blocks, strength):
    return strength * sum(np.sqrt(b.size) * np.linalg.norm(b) for b in blocks)


@pytest.mark.parametrize("mode", ["units", "inputs"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_penalty_uses_the_layers_own_groups(case, mode, rng):
    reg = kreg.GroupLasso(0.3, groups=mode)
    model, layer, variable = _model(case, reg)
    k = _randomize(variable, rng)
    blocks = CASES[case][3 if mode == "units" else 4](k)
    assert sum(b.size for b in blocks) == k.size
    (loss,) = [float(x) for x in model.losses]
    np.testing.assert_allclose(loss, _group_lasso(blocks, 0.3), rtol=1e-5)


def _np_block_prox(k, blocks_of, threshold):
    """Block soft-thresholding, applied by writing through index arrays of the blocks."""
    index = np.arange(k.size).reshape(k.shape)
    out = np.empty(k.size)
    for b, idx in zip(blocks_of(k), blocks_of(index)):
        norm = np.linalg.norm(b)
        scale = max(0.0, 1 - threshold * np.sqrt(b.size) / norm) if norm > 0 else 0.0
        out[np.ravel(idx)] = np.ravel(b) * scale
    return out.reshape(k.shape)


@pytest.mark.parametrize("case", sorted(CASES))
def test_prox_and_counts_use_the_layers_units(case, rng):
    reg = kreg.GroupLasso(1.0, groups="units")
    model, layer, variable = _model(case, reg)
    k = _randomize(variable, rng)
    blocks_of = CASES[case][3]
    norms = np.array([np.linalg.norm(b) / np.sqrt(b.size) for b in blocks_of(k)])
    step = float(np.median(norms))  # kills about half of the units
    layouts.bind(model)
    expected = _np_block_prox(k, blocks_of, step)
    kreg.proximal_step(model, step)
    got = np.asarray(variable.numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    dead = np.array([not np.any(b) for b in blocks_of(got)])
    assert 0 < dead.sum() < dead.size
    measured = kreg.callbacks.measure_sparsity(model)
    key = "group_sparsity/" + variable.path.removeprefix(model.name + "/")
    assert measured[key] == pytest.approx(dead.mean())
    np.testing.assert_array_equal(layouts.alive_units(variable), ~dead)


def test_surviving_units_counts_filters_of_a_transposed_conv(rng):
    pytest.importorskip("matplotlib")
    from kreg.plot import surviving_units

    model, layer, variable = _model("conv2d_transpose", kreg.GroupLasso(0.1))
    k = np.ones(variable.shape, "float32")
    k[..., 2, :] = 0  # filter 2 of 8
    variable.assign(k)
    title = surviving_units(model).axes[0].get_title()
    assert title.endswith("7 of 8 units kept")


def test_attention_query_kernel_groups_by_input_feature(rng):
    reg = kreg.GroupLasso(0.2, groups="inputs")
    mha = keras.layers.MultiHeadAttention(2, 4, kernel_regularizer=reg)
    q = keras.Input((3, 16))
    model = keras.Model(q, mha(q, q))
    layouts.bind(model)
    kernel = mha.query_dense.kernel
    assert tuple(kernel.shape) == (16, 2, 4)
    k = _randomize(kernel, rng)
    np.testing.assert_allclose(
        float(reg(kernel)), _group_lasso([k[i] for i in range(16)], 0.2), rtol=1e-5
    )


def test_integer_group_ids_follow_the_inputs_of_a_transposed_conv(rng):
    reg = kreg.GroupLasso(0.5, groups=[0, 1, 0])
    model, layer, variable = _model("conv2d_transpose", reg)
    k = _randomize(variable, rng)
    blocks = [k[..., [0, 2]], k[..., [1]]]
    np.testing.assert_allclose(float(sum(model.losses)), _group_lasso(blocks, 0.5), rtol=1e-5)


# ------------------------------------------------------------------- refusals


def test_grouped_convolution_refuses_inputs_and_keeps_units():
    reg = kreg.GroupLasso(0.1, groups="inputs")
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, groups=2, kernel_regularizer=reg,
                                                    name="grouped")(inputs))
    with pytest.raises(ValueError, match=r"grouped/kernel.*grouped convolution.*groups='units'"):
        model.losses
    units = kreg.GroupLasso(0.1, groups="units")
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, groups=2, kernel_regularizer=units)(
        inputs))
    assert np.isfinite(float(sum(model.losses)))


def test_einsum_with_a_shared_axis_refuses():
    reg = kreg.GroupLasso(0.1)
    inputs = keras.Input((3, 4))
    layer = keras.layers.EinsumDense("abc,bcd->abd", output_shape=(3, 5), kernel_regularizer=reg,
                                     name="shared")
    model = keras.Model(inputs, layer(inputs))
    with pytest.raises(ValueError, match=r"shared/kernel.*shared by the input and the output"):
        model.losses


class _Transposed(keras.layers.Layer):
    """A custom layer that stores its kernel as (units, inputs)."""

    def __init__(self, units, reg, **kwargs):
        super().__init__(**kwargs)
        self.units, self.reg = units, reg

    def build(self, shape):
        self.w = self.add_weight((self.units, shape[-1]), name="w", regularizer=self.reg)

    def call(self, x):
        return x @ keras.ops.transpose(self.w)


def test_unknown_custom_layer_refuses_until_registered(rng):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, _Transposed(4, kreg.GroupLasso(0.1), name="mine")(inputs))
    with pytest.raises(ValueError, match=r"mine/w.*does not know the layout.*register"):
        model.losses
    # L1 needs no layout.
    model = keras.Model(inputs, _Transposed(4, kreg.L1(0.1))(inputs))
    assert np.isfinite(float(sum(model.losses)))

    class Registered(_Transposed):
        pass

    layouts.register(Registered)(
        lambda layer, v: layouts.Layout(v.shape, units=0, inputs=1)
    )
    layer = Registered(4, kreg.GroupLasso(0.1))
    model = keras.Model(inputs, layer(inputs))
    k = _randomize(layer.w, rng)
    np.testing.assert_allclose(
        float(sum(model.losses)), _group_lasso([k[j] for j in range(4)], 0.1), rtol=1e-5
    )


def test_unbound_layer_variable_asks_for_bind(rng):
    layer = keras.layers.Conv2DTranspose(8, 3, kernel_regularizer=kreg.GroupLasso(0.1))
    layer.build((None, 5, 5, 3))
    with pytest.raises(ValueError, match=r"kreg.layouts.bind\(model\)"):
        layer.kernel_regularizer.prox(layer.kernel, 0.1)
    layouts.bind(layer)
    k = _randomize(layer.kernel, rng)
    got = backend_ops.numpy(layer.kernel_regularizer.prox(layer.kernel, 0.05))
    expected = _np_block_prox(k, CASES["conv2d_transpose"][3], 0.05 * 0.1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_bare_tensors_use_the_keras_default_layout():
    w = np.arange(6.0).reshape(2, 3)
    reg = kreg.GroupLasso(1.0)
    expected = _group_lasso([w[:, j] for j in range(3)], 1.0)
    np.testing.assert_allclose(float(reg(w)), expected, rtol=1e-6)


def test_layout_arguments_are_checked():
    with pytest.raises(ValueError, match="`view`"):
        layouts.Layout((4, 6), units=1, inputs=0, view=(4, 5))
    with pytest.raises(ValueError, match="`units`"):
        layouts.Layout((4, 6), units=2, inputs=0)
    with pytest.raises(TypeError, match="`layer_class`"):
        layouts.register(int)
