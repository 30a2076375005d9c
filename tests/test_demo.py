"""`python -m kreg.demo`: its table and files agree with the model it trained; bad options fail."""

import re

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the demo needs scikit-learn (kreg[demo])")
pytest.importorskip("matplotlib", reason="the demo needs matplotlib (kreg[demo])")

from kreg import demo  # noqa: E402
from conftest import BACKEND  # noqa: E402

_ROW = re.compile(r"^(\w+)\s+(\d+)/(\d+)\s+([\d.]+)%\s+(\S+)$")


def _table(text):
    return {m[1]: m.groups()[1:] for m in map(_ROW.match, text.splitlines()) if m}


def test_demo_table_files_and_saved_model(device, tmp_path, capsys):
    tf = None if BACKEND != "tensorflow" else __import__("tensorflow")
    out = tmp_path / "out"
    strength = 0.03  # large, so that two epochs already prune some units
    result = demo.main(["--epochs", "3", "--warmup-epochs", "1", "--strength", str(strength),
                        "--hidden", "24", "12", "--output-dir", str(out), "--seed", "3"])
    printed = capsys.readouterr().out
    assert len(re.findall(r"^epoch [ \d]+/3 ", printed, flags=re.M)) == 6  # both models

    table = _table(printed)
    assert list(table) == ["hidden1", "hidden2", "logits"]
    model = result.model
    history = result.history.history
    for name, strength_expected in (("hidden1", strength), ("hidden2", strength),
                                    ("logits", None)):
        kernel = model.get_layer(name).kernel
        w = np.asarray(kernel)
        kept, total, zeros, printed_strength = table[name]
        assert int(kept) == np.count_nonzero(np.any(w != 0, axis=0))  # nonzero columns
        assert int(total) == w.shape[1]
        assert float(zeros) == pytest.approx(100 * np.mean(w == 0), abs=0.051)
        if strength_expected is None:
            assert printed_strength == "-"
        else:
            assert float(printed_strength) == pytest.approx(strength_expected)
            # The monitor's last epoch saw the same dead units as NumPy.
            dead = 1 - np.count_nonzero(np.any(w != 0, axis=0)) / w.shape[1]
            assert history[f"group_sparsity/{name}/kernel"][-1] == pytest.approx(dead)
            assert history[f"strength/{name}/kernel"] == pytest.approx([0.0, strength, strength])
    # The test is only meaningful if pruning happened and the layer is not all gone.
    assert 0 < int(table["hidden1"][0]) < 24

    _, x_test, _, y_test = demo.load_data(3)
    predictions = model.predict(x_test, verbose=0)
    accuracy = np.mean(np.argmax(predictions, axis=1) == y_test)
    baseline = np.mean(np.argmax(result.baseline.predict(x_test, verbose=0), axis=1) == y_test)
    assert re.search(rf"test accuracy: {accuracy:.4f} pruned vs {baseline:.4f} baseline", printed)
    kept = sum(int(table[n][0]) for n in ("hidden1", "hidden2"))
    assert f"hidden units kept: {kept} of 36" in printed

    assert str(out.resolve()) in printed
    for name in ("training_curves.png", "surviving_units.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if tf is not None:  # SavedModel export: a TensorFlow format
        reloaded = tf.saved_model.load(str(out / "saved_model"))
        np.testing.assert_allclose(np.asarray(reloaded.serve(x_test)), predictions,
                                   rtol=1e-5, atol=1e-6)
    else:
        assert not (out / "saved_model").exists()
        assert "no SavedModel" in printed

    # It ends with the compact model: smaller, same predictions, exported.
    import kreg

    small = result.compact
    assert result.compact_sizes["params"] == (model.count_params(), small.count_params())
    assert small.count_params() < model.count_params()
    counts = kreg.unit_counts(model)
    assert [layer.units for layer in small.layers] == [counts[n][0] for n in counts]
    assert "kreg.compact(model): units kept " + ", ".join(
        f"{n} {k}/{t}" for n, (k, t) in counts.items()) in printed
    assert re.search(rf"^params\s+{model.count_params():,}\s+{small.count_params():,}\s",
                     printed, flags=re.M)
    keys = ["keras_bytes", "latency_ms_batch_1", f"latency_ms_batch_{len(x_test)}"]
    for key in keys + (["saved_model_bytes"] if tf is not None else []):
        assert re.search(rf"^{key}\s+[\d.,]+\s+[\d.,]+\s+[\d.]+x$", printed, flags=re.M)
    if tf is not None:
        served = tf.saved_model.load(str(out / "compact_saved_model"))
        np.testing.assert_allclose(np.asarray(served.serve(x_test)), predictions,
                                   rtol=1e-5, atol=1e-5)
    assert (out / "compact.keras").stat().st_size == result.compact_sizes["keras_bytes"][1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--strength", "-1"], "argument --strength: expected a non-negative finite number. "
                               "Received: '-1'"),
        (["--strength", "nan"], "argument --strength: expected a non-negative finite number"),
        (["--epochs", "0"], "argument --epochs: expected a positive integer. Received: '0'"),
        (["--epochs", "ten"], "argument --epochs: expected a positive integer. Received: 'ten'"),
        (["--hidden", "64", "-3"], "argument --hidden: expected a positive integer"),
        (["--learning-rate", "0"], "argument --learning-rate: expected a positive finite"),
        (["--epochs", "3", "--warmup-epochs", "5"],
         r"argument --warmup-epochs: expected at most --epochs \(3\). Received: 5"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_demo_bad_options_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m kreg.demo")
    assert re.search(message, err), err


def test_demo_output_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--output-dir", str(path)])
    assert exit_info.value.code == 2
    assert "argument --output-dir: expected a folder" in capsys.readouterr().err


def test_demo_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option, default in (("--epochs", "40"), ("--strength", "0.001"),
                            ("--output-dir", demo.DEFAULT_OUTPUT_DIR), ("--seed", "0")):
        assert option in text and f"(default: {default})" in text
