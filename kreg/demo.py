"""`python -m kreg.demo`: prune a digits MLP with group lasso; print, plot and export it.

The demo trains the model of notebooks/02_group_lasso_pruning.ipynb on
scikit-learn's digits (8x8 images, 10 classes; the data ship with scikit-learn):
an MLP whose hidden kernels carry `kreg.GroupLasso(groups="units")`, trained with
`kreg.Proximal` (so whole hidden units become exactly zero), a warm-up
`kreg.callbacks.StrengthScheduler` (the strength rises linearly from 0 over the
first epochs) and `kreg.callbacks.SparsityMonitor`. It also trains the same MLP
without regularization as a baseline, then

* prints one line per epoch, a per-layer table (units kept, fraction of zero
  weights, strength) and the test accuracy against the baseline's;
* writes `training_curves.png` and `surviving_units.png` (see `kreg.plot`) and
  the exported SavedModel `saved_model/` into the output folder, and checks that
  the SavedModel serves the model's predictions;
* ends with `kreg.compact(model)`: the model without its removed units, its
  parameters, file sizes and CPU latency beside the original's, exported as
  `compact_saved_model/` and checked to serve the original's predictions.

Every option has a default (`python -m kreg.demo --help`); needs scikit-learn and
matplotlib: `pip install "kreg[demo]"`.
"""

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field

__all__ = ["main"]

DEFAULT_OUTPUT_DIR = "kreg-demo-output"


def _type(kind, check, expected):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not check(value):
            raise argparse.ArgumentTypeError(f"expected {expected}. Received: {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


_positive_int = _type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _type(int, lambda v: v >= 0, "a non-negative integer")
_non_negative_float = _type(
    float, lambda v: math.isfinite(v) and v >= 0, "a non-negative finite number"
)
_positive_float = _type(float, lambda v: math.isfinite(v) and v > 0, "a positive finite number")


def build_parser():
    """The command line of `python -m kreg.demo` (every option has a default)."""
    parser = argparse.ArgumentParser(
        prog="python -m kreg.demo",
        description=(
            "Train a digits MLP with kreg.GroupLasso(groups='units'), kreg.Proximal, a "
            "warm-up StrengthScheduler and SparsityMonitor, and an unregularized baseline; "
            "print the units each hidden layer keeps and the accuracy against the baseline; "
            "write plots (PNG) and the exported SavedModel into --output-dir; end with "
            "kreg.compact(model): its size and latency beside the original's, exported too."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=_positive_int, default=40,
                        help="training epochs of each model")
    parser.add_argument("--strength", type=_non_negative_float, default=1e-3,
                        help="group lasso strength reached after the warm-up")
    parser.add_argument("--warmup-epochs", type=_non_negative_int, default=10,
                        help="epochs over which the strength rises linearly from 0")
    parser.add_argument("--hidden", type=_positive_int, nargs="+", default=[128, 64],
                        help="units of each hidden layer")
    parser.add_argument("--learning-rate", type=_positive_float, default=2e-3,
                        help="Adam's learning rate")
    parser.add_argument("--batch-size", type=_positive_int, default=64,
                        help="training batch size")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR,
                        help="folder for the plots and the SavedModel (created if missing)")
    parser.add_argument("--seed", type=_non_negative_int, default=0,
                        help="seed of the data split and of the weights")
    return parser


def parse_args(argv=None):
    """Parsed and checked options; bad ones exit with the usage and a clear message."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.warmup_epochs > args.epochs:
        parser.error(
            f"argument --warmup-epochs: expected at most --epochs ({args.epochs}). "
            f"Received: {args.warmup_epochs}"
        )
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        parser.error(
            "argument --output-dir: expected a folder (or a path to create). "
            f"Received: {args.output_dir!r}, an existing file"
        )
    return args


@dataclass
class LayerRow:
    """One row of the demo's table."""

    name: str
    path: str
    units_kept: int
    units: int
    sparsity: float
    strength: float | None


@dataclass
class DemoResult:
    """What `main` did: the models, the table and the files it wrote."""

    model: object
    baseline: object
    history: object
    rows: list
    accuracy: float
    baseline_accuracy: float
    output_dir: str
    files: dict = field(default_factory=dict)
    seconds: float = 0.0
    compact: object = None
    compact_sizes: dict = field(default_factory=dict)


def load_data(seed):
    """Digits scaled to [0, 1], split 75/25 (stratified) into train and test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return train_test_split(x, y.astype("int32"), test_size=0.25, random_state=seed, stratify=y)


def build_model(hidden, regularizer=None, name="mlp"):
    """The MLP: `hidden` ReLU layers (each kernel regularized by `regularizer`), 10 logits."""
    import keras

    layers = [keras.Input((64,))]
    for i, units in enumerate(hidden):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"hidden{i + 1}",
                                         kernel_regularizer=regularizer))
    layers.append(keras.layers.Dense(10, name="logits"))
    return keras.Sequential(layers, name=name)


def warmup(strength, epochs):
    """The warm-up `epoch -> strength * min(1, epoch / epochs)` (0 first, `strength` from `epochs`).

    >>> from kreg.demo import warmup
    >>> [warmup(0.001, 2)(epoch) for epoch in range(4)]
    [0.0, 0.0005, 0.001, 0.001]
    """
    if epochs == 0:
        return lambda epoch: strength
    return lambda epoch: strength * min(1.0, epoch / epochs)


def _epoch_line_callback(total_epochs, prefix):
    import keras

    class EpochLine(keras.callbacks.Callback):
        """One concise line per epoch (loss, accuracy, sparsity, strength, time)."""

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            parts = [f"{prefix}epoch {epoch + 1:>{len(str(total_epochs))}}/{total_epochs}"]
            for key, text in (("loss", "loss {:.4f}"), ("accuracy", "acc {:.3f}"),
                              ("val_accuracy", "val_acc {:.3f}"), ("sparsity", "zeros {:.1%}")):
                if key in logs:
                    parts.append(text.format(float(logs[key])))
            strengths = sorted({float(v) for k, v in logs.items() if k.startswith("strength/")})
            if strengths:
                parts.append("strength " + ",".join(f"{s:.2g}" for s in strengths))
            parts.append(f"{time.perf_counter() - self._start:.1f}s")
            print("  ".join(parts), flush=True)

    return EpochLine()


def layer_table(model):
    """One `LayerRow` per Dense layer: units kept (a nonzero incoming weight), zeros, strength."""
    import numpy as np

    from kreg import callbacks, layouts
    from kreg.regularizers import kreg_regularizer

    measured = callbacks.measure_sparsity(model)  # the regularized kernels' zero fractions
    rows = []
    for layer in model.layers:
        kernel = layer.kernel
        w = np.asarray(kernel)
        regularizer = kreg_regularizer(kernel)
        key = f"sparsity/{layer.name}/kernel"
        rows.append(LayerRow(
            name=layer.name,
            path=kernel.path,
            units_kept=int(layouts.alive_units(kernel).sum()),
            units=int(w.shape[-1]),
            sparsity=float(measured[key]) if key in measured else float(np.mean(w == 0)),
            strength=(float(np.asarray(regularizer.strength))
                      if regularizer is not None else None),
        ))
    return rows


def format_table(rows):
    """The table printed by the demo, one line per layer."""
    header = f"{'layer':<10} {'units kept':>12} {'zero weights':>13} {'strength':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        kept = f"{row.units_kept}/{row.units}"
        strength = "-" if row.strength is None else f"{row.strength:.3g}"
        lines.append(f"{row.name:<10} {kept:>12} {row.sparsity:>13.1%} {strength:>10}")
    return "\n".join(lines)


def _accuracy(model, x, y):
    import numpy as np

    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


def _directory_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def _latency_ms(models, x, rounds=15, calls=20):
    """Median milliseconds per forward call of each model, measured interleaved."""
    import numpy as np
    from keras import ops

    from kreg import _backend

    fns = {name: _backend.compiled(lambda x, m=m: m(x, training=False))
           for name, m in models.items()}
    x = ops.convert_to_tensor(x)
    for fn in fns.values():
        _backend.to_numpy(fn(x))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                y = fn(x)
            _backend.to_numpy(y)
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: 1e3 * float(np.median(v)) for name, v in samples.items()}


def compact_and_compare(model, x_test, output_dir, files):
    """`kreg.compact(model)`: sizes and latency beside `model`'s; exports the compact model."""
    import numpy as np

    import kreg
    from kreg import _backend

    small, report = kreg.compact(model, report=True)
    files["model_keras"] = os.path.join(output_dir, "model.keras")
    files["compact_keras"] = os.path.join(output_dir, "compact.keras")
    model.save(files["model_keras"])
    small.save(files["compact_keras"])
    sizes = {
        "params": (model.count_params(), small.count_params()),
        "keras_bytes": (_directory_bytes(files["model_keras"]),
                        _directory_bytes(files["compact_keras"])),
    }
    expected = model.predict(x_test, verbose=0)
    path = os.path.join(output_dir, "compact_saved_model")
    served = _backend.export_saved_model(small, path, x_test)
    if served is None:  # SavedModel export needs the TensorFlow backend
        difference = float(np.max(np.abs(small.predict(x_test, verbose=0) - expected)))
    else:
        files["compact_saved_model"] = path
        difference = float(np.max(np.abs(served - expected)))
        sizes["saved_model_bytes"] = (_directory_bytes(files["saved_model"]),
                                      _directory_bytes(files["compact_saved_model"]))
    for batch, x in (("1", x_test[:1]), (str(len(x_test)), x_test)):
        ms = _latency_ms({"original": model, "compact": small}, x)
        sizes[f"latency_ms_batch_{batch}"] = (ms["original"], ms["compact"])
    print("\nkreg.compact(model): units kept "
          + ", ".join(f"{name} {k}/{n}" for name, (k, n) in report.units.items()))
    header = f"{'':<26} {'original':>12} {'compact':>12} {'ratio':>7}"
    print(header + "\n" + "-" * len(header))
    for key, (a, b) in sizes.items():
        text = (lambda v: f"{v:.3f}") if key.startswith("latency") else (lambda v: f"{v:,}")
        print(f"{key:<26} {text(a):>12} {text(b):>12} {a / b:>6.2f}x")
    what = "compact_saved_model/ serves" if served is not None else "the compact model predicts"
    print(f"{what} the original model's predictions (max difference {difference:.1e})")
    return small, sizes, difference


def _compile(model, learning_rate, proximal, steps_per_epoch):
    import keras

    import kreg
    from kreg import _backend

    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(
        optimizer=kreg.Proximal(optimizer) if proximal else optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        # one compiled call per epoch (PyTorch runs one step per call)
        steps_per_execution=_backend.steps_per_execution(steps_per_epoch),
    )


def main(argv=None):
    """Run the demo with command-line options `argv` (default `sys.argv[1:]`).

    Returns:
        A `DemoResult` with the trained models, the table's rows, the accuracies
        and the paths of the files written.
    """
    args = parse_args(argv)
    start = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import sklearn  # noqa: F401

        from kreg import plot
    except ImportError as error:
        sys.exit(f'kreg.demo needs scikit-learn and matplotlib: pip install "kreg[demo]" ({error})')
    import keras
    import numpy as np

    import kreg
    from kreg import _backend

    output_dir = os.path.abspath(args.output_dir)
    x_train, x_test, y_train, y_test = load_data(args.seed)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8 pixels, "
          "10 classes")

    keras.utils.set_random_seed(args.seed)
    regularizer = kreg.GroupLasso(0.0, groups="units")
    model = build_model(args.hidden, regularizer, name="pruned")
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    _compile(model, args.learning_rate, proximal=True, steps_per_epoch=steps_per_epoch)
    print(f"\ntraining {model.name}: GroupLasso(groups='units') on the hidden kernels, "
          f"kreg.Proximal(Adam({args.learning_rate:g})), strength 0 -> {args.strength:g} "
          f"over {args.warmup_epochs} epochs")
    history = model.fit(
        x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0,
        validation_data=(x_test, y_test),
        callbacks=[
            kreg.callbacks.StrengthScheduler(warmup(args.strength, args.warmup_epochs)),
            kreg.callbacks.SparsityMonitor(),
            _epoch_line_callback(args.epochs, ""),
        ],
    )

    keras.utils.set_random_seed(args.seed)
    baseline = build_model(args.hidden, None, name="baseline")
    _compile(baseline, args.learning_rate, proximal=False, steps_per_epoch=steps_per_epoch)
    print(f"\ntraining {baseline.name}: the same MLP without regularization")
    baseline.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0,
                 validation_data=(x_test, y_test),
                 callbacks=[_epoch_line_callback(args.epochs, "")])

    rows = layer_table(model)
    accuracy = _accuracy(model, x_test, y_test)
    baseline_accuracy = _accuracy(baseline, x_test, y_test)
    hidden_rows = rows[:-1]
    kept = sum(r.units_kept for r in hidden_rows)
    total = sum(r.units for r in hidden_rows)
    print("\n" + format_table(rows))
    print(f"\nhidden units kept: {kept} of {total} ({kept / total:.0%})")
    print(f"test accuracy: {accuracy:.4f} pruned vs {baseline_accuracy:.4f} baseline "
          f"({accuracy - baseline_accuracy:+.4f})")

    os.makedirs(output_dir, exist_ok=True)
    files = {
        "training_curves": os.path.join(output_dir, "training_curves.png"),
        "surviving_units": os.path.join(output_dir, "surviving_units.png"),
        "saved_model": os.path.join(output_dir, "saved_model"),
    }
    plot.training_curves(history, metrics=["accuracy", "val_accuracy"],
                         title="kreg demo: digits MLP, group lasso on units").savefig(
        files["training_curves"], dpi=100)
    plot.surviving_units(model, title="group norms of the hidden units (grey: pruned)").savefig(
        files["surviving_units"], dpi=100)
    served = _backend.export_saved_model(model, files["saved_model"], x_test)
    if served is None:
        del files["saved_model"]
    else:
        difference = float(np.max(np.abs(served - model.predict(x_test, verbose=0))))
    print(f"\nwrote to {output_dir}:")
    print("  training_curves.png  accuracy, sparsity and strength per epoch")
    print("  surviving_units.png  norm of every hidden unit; grey ones are exactly zero")
    if served is not None:
        print(f"  saved_model/         SavedModel; its `serve` endpoint matches model.predict "
              f"(max difference {difference:.1e})")
    else:
        print(f"  (no SavedModel: Keras exports that TensorFlow format from the TensorFlow "
              f"backend; this run uses {keras.backend.backend()})")
    small, sizes, _ = compact_and_compare(model, x_test, output_dir, files)
    print("  model.keras, compact.keras  the model and its compact version (.keras)")
    if "compact_saved_model" in files:
        print("  compact_saved_model/ the compact model as a SavedModel")
    seconds = time.perf_counter() - start
    print(f"done in {seconds:.0f} s")
    return DemoResult(model=model, baseline=baseline, history=history, rows=rows,
                      accuracy=accuracy, baseline_accuracy=baseline_accuracy,
                      output_dir=output_dir, files=files, seconds=seconds,
                      compact=small, compact_sizes=sizes)


if __name__ == "__main__":
    main()
