"""Configs, `.keras` files, SavedModel export and cloning keep kreg's regularizers."""

import inspect
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kreg
from conftest import BACKEND, only_on

pytestmark = pytest.mark.usefixtures("device")


STRENGTHS = [0.01, 0.02, 0.03, 0.04, 0.05]


def all_five():
    s = STRENGTHS
    return [
        kreg.L1(s[0]),
        kreg.L2(s[1]),
        kreg.ElasticNet(s[2], l1_ratio=0.25),
        kreg.GroupLasso(s[3], groups="inputs"),
        kreg.SparseGroupLasso(s[4], l1_ratio=0.75, groups=[2, 0, 2, 7]),
    ]


def test_registered_names():
    for cls in (kreg.L1, kreg.L2, kreg.ElasticNet, kreg.GroupLasso, kreg.SparseGroupLasso):
        name = keras.saving.get_registered_name(cls)
        assert name == f"kreg>{cls.__name__}"
        assert keras.saving.get_registered_object(name) is cls


@pytest.mark.parametrize("reg", all_five(), ids=lambda r: type(r).__name__)
def test_config_keys_are_the_constructor_arguments(reg):
    config = reg.get_config()
    assert set(config) == set(list(inspect.signature(type(reg).__init__).parameters)[1:])
    assert json.loads(json.dumps(config)) == config  # plain JSON types only


@pytest.mark.parametrize("assign", [None, 0.0, 0.003, 2.5], ids=lambda v: f"assign={v}")
@pytest.mark.parametrize("index", range(5), ids=lambda i: type(all_five()[i]).__name__)
def test_json_round_trip(index, assign, rng):
    reg = all_five()[index]
    if assign is not None:
        reg.strength.assign(assign)
    strength = float(reg.strength.numpy())
    text = json.dumps(keras.saving.serialize_keras_object(reg))
    back = keras.saving.deserialize_keras_object(json.loads(text))
    assert type(back) is type(reg)
    assert back is not reg and back.strength is not reg.strength
    assert back.get_config() == reg.get_config()
    # The config holds the current strength as the short decimal that was assigned.
    expected_strength = STRENGTHS[index] if assign is None else assign
    assert back.get_config()["strength"] == expected_strength
    assert float(back.strength.numpy()) == strength
    w = rng.normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(float(back(w)), float(reg(w)), rtol=1e-7)
    np.testing.assert_array_equal(np.asarray(back.prox(w, 0.5)), np.asarray(reg.prox(w, 0.5)))
    # from_config / get_config directly, as keras.layers do.
    assert type(reg).from_config(reg.get_config()).get_config() == reg.get_config()


def build_model():
    """A model holding all five regularizers (kernels and biases, two kinds of layer)."""
    l1, l2, en, gl, sgl = all_five()
    inputs = keras.Input((4,))
    h = keras.layers.Dense(6, activation="tanh", kernel_regularizer=sgl, bias_regularizer=l1,
                           name="first")(inputs)
    h = keras.layers.Reshape((6, 1))(h)
    h = keras.layers.Conv1D(5, 3, activation="tanh", kernel_regularizer=gl, bias_regularizer=l2,
                            name="conv")(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(2, kernel_regularizer=en, name="last")(h)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model


def regularizer_configs(model):
    """{'layer/attribute': (registered name, config)} for every regularizer in the model."""
    found = {}
    for layer in model.layers:
        for attr in ("kernel_regularizer", "bias_regularizer"):
            reg = getattr(layer, attr, None)
            if reg is not None:
                found[f"{layer.name}/{attr}"] = [
                    keras.saving.get_registered_name(type(reg)),
                    reg.get_config(),
                ]
    return found


# The script the fresh process runs: only `import kreg` registers the classes.
FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import kreg  # the only thing that makes kreg>... names known

    path, x_path, out_path = sys.argv[1:]
    model = keras.models.load_model(path, safe_mode=True)
    x = np.load(x_path)
    result = {"pred": model.predict(x, verbose=0).tolist(), "configs": {}, "strengths": {}}
    for layer in model.layers:
        for attr in ("kernel_regularizer", "bias_regularizer"):
            reg = getattr(layer, attr, None)
            if reg is not None:
                key = layer.name + "/" + attr
                result["configs"][key] = [keras.saving.get_registered_name(type(reg)),
                                          reg.get_config()]
                result["strengths"][key] = float(reg.strength.numpy())
    result["penalty"] = float(sum(float(v) for v in model.losses))
    y = np.ones((x.shape[0], 2), "float32")
    kernel = model.get_layer("first").kernel.numpy()
    history = model.fit(x, y, epochs=3, batch_size=len(x), verbose=0)
    result["loss"] = history.history["loss"]
    result["kernel_moved"] = float(np.max(np.abs(model.get_layer("first").kernel.numpy() - kernel)))
    with open(out_path, "w") as f:
        json.dump(result, f)
    """
)


def test_fresh_process_load(tmp_path, rng):
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    model = build_model()
    model.fit(x, y, epochs=1, verbose=0)
    # Change strengths after compile and training: the file must hold the current ones.
    new = {
        "first/kernel_regularizer": 0.125,
        "conv/bias_regularizer": 0.0,
        "last/kernel_regularizer": 0.5,
    }
    for key, value in new.items():
        layer, attr = key.split("/")
        getattr(model.get_layer(layer), attr).strength.assign(value)
    expected_configs = regularizer_configs(model)
    assert len(expected_configs) == 5
    for key, value in new.items():
        assert expected_configs[key][1]["strength"] == value
    expected_penalty = float(sum(float(v) for v in model.losses))
    expected_pred = model.predict(x, verbose=0)

    path = str(tmp_path / "model.keras")
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "result.json"
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, str(script), path, str(tmp_path / "x.npy"), str(out)],
        capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())

    np.testing.assert_allclose(np.array(result["pred"]), expected_pred, rtol=1e-6, atol=1e-7)
    assert result["configs"] == expected_configs
    for key, (_, config) in expected_configs.items():
        assert result["strengths"][key] == pytest.approx(config["strength"], rel=1e-7)
    np.testing.assert_allclose(result["penalty"], expected_penalty, rtol=1e-6)
    assert all(np.isfinite(result["loss"]))
    assert result["loss"][-1] < result["loss"][0]
    assert result["kernel_moved"] > 0


@only_on("tensorflow", reason="SavedModel export, a TensorFlow format")
def test_export_serve_matches_predict(tmp_path, rng):
    import tensorflow as tf

    x = rng.normal(size=(5, 4)).astype("float32")
    model = build_model()
    model.fit(x, np.zeros((5, 2), "float32"), epochs=1, verbose=0)
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    served = reloaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(served, model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_clone_model_keeps_regularizers(rng):
    model = build_model()
    model.get_layer("conv").kernel_regularizer.strength.assign(0.375)
    clone = keras.models.clone_model(model)
    assert regularizer_configs(clone) == regularizer_configs(model)
    for layer, cloned in zip(model.layers, clone.layers):
        for attr in ("kernel_regularizer", "bias_regularizer"):
            reg = getattr(layer, attr, None)
            if reg is not None:
                twin = getattr(cloned, attr)
                assert type(twin) is type(reg)
                assert float(twin.strength.numpy()) == float(reg.strength.numpy())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(
        float(sum(float(v) for v in clone.losses)),
        float(sum(float(v) for v in model.losses)),
        rtol=1e-6,
    )
