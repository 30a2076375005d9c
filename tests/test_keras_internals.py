"""Pins every Keras internal that kreg reads (all of them live in kreg/_keras.py).

If a Keras release changes one of them, the matching test here fails by name,
instead of kreg silently grouping or binding wrong.
"""

import keras
import numpy as np
import pytest

import kreg
from kreg import _keras


def _nested_model():
    inputs = keras.Input((3, 4))
    mha = keras.layers.MultiHeadAttention(2, 2, name="attn")
    h = mha(inputs, inputs)
    out = keras.layers.LSTM(3, name="lstm")(h)
    return keras.Model(inputs, out, name="net"), mha


def test_flatten_layers_finds_sublayers_held_as_attributes():
    model, mha = _nested_model()
    layers = _keras.flatten_layers(model)
    assert layers[0] is model
    assert mha.query_dense in layers  # an attribute of MultiHeadAttention
    assert any(isinstance(layer, keras.layers.LSTMCell) for layer in layers)


def test_own_variables_are_exactly_the_layers_own_weights():
    model, mha = _nested_model()
    owned = {}
    for layer in _keras.flatten_layers(model):
        for variable in _keras.own_variables(layer):
            assert id(variable) not in owned  # every variable has one owner
            owned[id(variable)] = layer
    assert set(owned) == {id(v) for v in model.weights}
    assert owned[id(mha.query_dense.kernel)] is mha.query_dense
    assert _keras.own_variables(mha) == []


def test_regularization_caller_sees_the_model_and_the_variable():
    seen = []

    class Spy(keras.regularizers.Regularizer):
        def __call__(self, x):
            seen.append(_keras.regularization_caller())
            return keras.ops.sum(x) * 0.0

    layer = keras.layers.Dense(2, kernel_regularizer=Spy(), name="d")
    model = keras.Sequential([keras.Input((3,)), layer], name="outer")
    model.losses
    assert seen == [(model, layer.kernel)]
    seen.clear()
    Spy()(np.ones(3))  # called by anyone else: no caller
    assert seen == [None]


def test_the_conv_lstm_cell_class():
    layer = keras.layers.ConvLSTM1D(2, 3, name="c")
    layer.build((None, 2, 6, 3))
    assert isinstance(layer.cell, _keras.conv_lstm_cell_class())


@pytest.mark.parametrize("fit", [False, True])
def test_regularizers_bind_their_model_at_the_first_loss(fit):
    model = keras.Sequential([keras.Input((1, 3)), keras.layers.Conv1DTranspose(
        4, 1, kernel_regularizer=kreg.GroupLasso(0.1), name="t")])
    kernel = model.layers[0].kernel
    assert getattr(kernel, "_kreg_layout", None) is None
    if fit:
        model.compile("sgd", "mse")
        model.fit(np.ones((2, 1, 3)), np.ones((2, 1, 4)), verbose=0)
    else:
        model.losses
    assert kernel._kreg_layout.units == (1,)  # (k, filters, channels)


def test_graph_nodes_of_sequential_and_functional_models():
    inputs = keras.Input((3,), name="x")
    a = keras.layers.Dense(2, name="a")(inputs)
    b = keras.layers.Dense(2, name="b")(inputs)
    out = keras.layers.Add(name="add")([a, b])
    model = keras.Model(inputs, out)
    nodes, ins, outs = _keras.graph_nodes(model)
    names = [layer.name for layer, _, _ in nodes]
    assert sorted(names[:2]) == ["a", "b"] and names[2] == "add"  # readers after writers
    add_inputs = nodes[2][1]
    assert [t is a for t in add_inputs] == [True, False] and add_inputs[1] is b
    assert nodes[2][2] == [out] and ins == [inputs] and outs == [out]

    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d"),
                            keras.layers.ReLU(name="r")])
    nodes, ins, outs = _keras.graph_nodes(seq)
    assert [layer.name for layer, _, _ in nodes] == ["d", "r"]
    assert nodes[0][2][0] is nodes[1][1][0]  # the tensor d writes is the one r reads
    assert ins[0] is nodes[0][1][0] and outs[0] is nodes[1][2][0]
    with pytest.raises(ValueError, match="expected a built model"):
        _keras.graph_nodes(keras.Sequential([keras.layers.Dense(2)]))


# ------------------------------------------------- optimizer slots (kreg.Proximal)

# NumPy versions of Keras's updates of the slot kreg reads, from Keras's documented
# formulas, for two steps with gradients g1, g2 (rho, beta_2: the defaults below).
def _np_slots(name, grads):
    if name in ("Adam", "AdamW", "Nadam"):
        v = np.zeros_like(grads[0])
        for g in grads:
            v = 0.999 * v + 0.001 * g**2
        return {"velocity": v}
    if name == "Adam_amsgrad":
        v, v_hat = np.zeros_like(grads[0]), np.zeros_like(grads[0])
        for g in grads:
            v = 0.999 * v + 0.001 * g**2
            v_hat = np.maximum(v_hat, v)
        return {"velocity": v, "velocity_hat": v_hat}
    if name == "RMSprop_centered":
        v, m = np.zeros_like(grads[0]), np.zeros_like(grads[0])
        for g in grads:
            v = 0.9 * v + 0.1 * g**2
            m = 0.9 * m + 0.1 * g
        return {"velocity": v, "average_gradient": m}
    if name == "Adagrad":
        acc = np.full_like(grads[0], 0.1)
        for g in grads:
            acc = acc + g**2
        return {"accumulator": acc}
    raise AssertionError(name)


OPTIMIZER_SLOTS = {
    "Adam": lambda: keras.optimizers.Adam(0.1),
    "Adam_amsgrad": lambda: keras.optimizers.Adam(0.1, amsgrad=True),
    "AdamW": lambda: keras.optimizers.AdamW(0.1),
    "Nadam": lambda: keras.optimizers.Nadam(0.1),
    "RMSprop_centered": lambda: keras.optimizers.RMSprop(0.1, centered=True),
    "Adagrad": lambda: keras.optimizers.Adagrad(0.1, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZER_SLOTS))
def test_optimizer_slots_hold_keras_documented_updates(name, device):
    optimizer = OPTIMIZER_SLOTS[name]()
    variables = [keras.Variable(np.ones((3, 2), "float32")), keras.Variable(np.ones(4, "float32"))]
    rng = np.random.default_rng(0)
    steps = [[rng.normal(size=v.shape).astype("float32") for v in variables] for _ in range(2)]
    for grads in steps:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    assert int(keras.ops.convert_to_numpy(_keras.optimizer_iterations_variable(optimizer))) == 2
    for i, variable in enumerate(variables):
        for slot, expected in _np_slots(name, [s[i] for s in steps]).items():
            got = keras.ops.convert_to_numpy(_keras.optimizer_slot(optimizer, slot, variable))
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7, err_msg=slot)


def test_backend_optimizer_classes_read_as_their_public_class():
    for cls in (keras.optimizers.SGD, keras.optimizers.Adam, keras.optimizers.AdamW,
                keras.optimizers.Nadam, keras.optimizers.RMSprop, keras.optimizers.Adagrad):
        # On PyTorch `cls()` is a backend subclass (torch_adam.Adam, ...).
        assert _keras.public_optimizer_class(cls()) is cls

    class Custom(keras.optimizers.Adam):
        pass

    assert _keras.public_optimizer_class(Custom()) is Custom
    with pytest.raises(TypeError, match="of type Custom"):
        kreg.Proximal(Custom())


def test_repeat_train_step_runs_count_steps_in_one_call(rng):
    """`_keras.repeat_train_step` (kreg.regularization_path's engine) against plain steps."""
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    models = []
    for _ in range(2):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
            1, kernel_initializer="ones", kernel_regularizer=kreg.L1(0.1))])
        model.compile(kreg.Proximal(keras.optimizers.SGD(0.05)), "mse")
        models.append(model)
    repeated, plain = models
    count = keras.Variable(np.int32(3), dtype="int32", trainable=False, name="count")
    repeated.kreg_count = count  # tracked: part of the state on every backend
    _keras.repeat_train_step(repeated, count, repeated.trainable_variables, "last_step_sq")
    def weights(model):
        return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]

    before = None
    for _ in range(3):
        before = weights(plain)
        plain.train_on_batch(x, y)
    logs = _keras.train_on_full_batch(repeated, (x, y, None))
    for a, b in zip(weights(repeated), weights(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    last = sum(float(np.sum((a - b) ** 2)) for a, b in zip(weights(plain), before))
    np.testing.assert_allclose(float(np.asarray(logs["last_step_sq"])), last, rtol=1e-4)
    assert int(keras.ops.convert_to_numpy(repeated.optimizer.iterations)) == 3
