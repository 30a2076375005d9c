"""`python -m bench.compact`: what `kreg.compact` buys in size and CPU latency.

Three models on scikit-learn's digits (8x8 images, 1347 training and 450 test
samples, no download), each trained twice with the same seed and schedule: dense
(no regularizer) and sparse (under `kreg.Proximal`), then the sparse one compacted:

* `mlp`: 64-256-256-10 ReLU MLP, `kreg.GroupLasso(groups="units")` on the hidden
  kernels;
* `cnn`: conv32-BN-ReLU, conv64-BN-ReLU, max-pool, conv128-BN-ReLU, global
  average pool, dense 10 ("same" padding, convs without bias), `kreg.L1` on the
  BatchNorm scales and shifts (Network Slimming; the shift is penalized too,
  because a channel with a zero scale is the constant `relu(beta)`, which the
  zero padding of the next "same" convolution would not match unless it is 0;
  BatchNorm momentum 0.9: with Keras's 0.99 the moving statistics of these short
  runs, 22 steps an epoch, lag the weights and the residual net scores 10% in
  inference mode, with or without a regularizer);
* `resnet`: conv64 stem, two residual blocks (conv-BN-ReLU-conv-BN + skip, ReLU),
  global average pool, dense 10, the same `kreg.L1` on every BatchNorm.

Per model: parameters, multiply-adds per sample, `.keras` and SavedModel bytes,
test accuracy (dense, sparse, compact: compact must equal sparse), the largest
difference between the compact and the sparse model's predictions relative to
their scale, and CPU latency of a `tf.function` forward pass at batch 1 and 256.
Latency is interleaved (sparse, compact, sparse twin, ...: `rounds` rounds of
`calls` calls each); the ratio is median(sparse) / median(compact), and the A/A
ratio median(sparse twin) / median(sparse) of two identical models is the noise
floor. Results: bench/results/compact.json and the "Compaction" section at the
end of BENCHMARKS.md (between its own markers).
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BEGIN = "<!-- BEGIN COMPACT: python -m bench.compact rewrites everything down to END COMPACT -->"
END = "<!-- END COMPACT -->"

CONFIGS = {
    # strengths: the largest of a small grid (mlp 3e-4, 5e-4, 1e-3, 3e-3; cnn 1e-2, 3e-2,
    # 5e-2, 7e-2, 1e-1; resnet 3e-3, 5e-3, 1e-2) whose sparse model stayed within 1 point
    # of dense (seed 0; cnn at 5e-2: 99.33%, 7e-2: 99.56%, 1e-1: 97.11% against 99.78%)
    "full": {"epochs": 40, "rounds": 25, "calls": {1: 50, 256: 5}, "seed": 0,
             "strengths": {"mlp": 5e-4, "cnn": 7e-2, "resnet": 5e-3}},
    "quick": {"epochs": 1, "rounds": 3, "calls": {1: 3, 256: 1}, "seed": 0,
              "strengths": {"mlp": 1e-3, "cnn": 3e-3, "resnet": 3e-3}},
}


def _data(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return train_test_split(x, y.astype("int32"), test_size=0.25, random_state=seed,
                            stratify=y)


def build(kind, strength):
    import keras

    import kreg

    L = keras.layers
    sparse = strength is not None
    if kind == "mlp":
        reg = kreg.GroupLasso(strength, groups="units") if sparse else None
        return keras.Sequential([
            keras.Input((64,)),
            L.Dense(256, activation="relu", kernel_regularizer=reg, name="hidden1"),
            L.Dense(256, activation="relu", kernel_regularizer=reg, name="hidden2"),
            L.Dense(10, name="logits")], name=kind)
    reg = kreg.L1(strength) if sparse else None

    def bn(h, name):
        return L.BatchNormalization(momentum=0.9, gamma_regularizer=reg, beta_regularizer=reg,
                                    name=name)(h)

    def conv(h, filters, name):
        return L.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(h)

    inputs = keras.Input((64,))
    h = L.Reshape((8, 8, 1))(inputs)
    if kind == "cnn":
        h = L.ReLU()(bn(conv(h, 32, "conv1"), "bn1"))
        h = L.ReLU()(bn(conv(h, 64, "conv2"), "bn2"))
        h = L.MaxPooling2D()(h)
        h = L.ReLU()(bn(conv(h, 128, "conv3"), "bn3"))
    else:
        h = L.ReLU()(bn(conv(h, 64, "stem"), "bn0"))
        for block in (1, 2):
            r = L.ReLU()(bn(conv(h, 64, f"b{block}_conv1"), f"b{block}_bn1"))
            r = bn(conv(r, 64, f"b{block}_conv2"), f"b{block}_bn2")
            h = L.ReLU()(L.Add()([h, r]))
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, L.Dense(10, name="logits")(h), name=kind)


def train(kind, strength, data, cfg):
    import keras

    import kreg

    x_train, _, y_train, _ = data
    keras.utils.set_random_seed(cfg["seed"])
    model = build(kind, strength)
    optimizer = keras.optimizers.Adam(2e-3)
    model.compile(kreg.Proximal(optimizer) if strength is not None else optimizer,
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=22)
    model.fit(x_train, y_train, epochs=cfg["epochs"], batch_size=64, verbose=0)
    return model


def macs(model):
    """Multiply-adds per sample of the Dense and convolution layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            positions = 1
            for s in layer.output.shape[1:-1]:
                positions *= int(s)
            total += int(layer.kernel.shape.num_elements() if hasattr(
                layer.kernel.shape, "num_elements") else _size(layer.kernel.shape)) * positions
    return total


def _size(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def sizes(model, directory):
    keras_path = os.path.join(directory, f"{model.name}.keras")
    model.save(keras_path)
    saved = os.path.join(directory, f"{model.name}_saved")
    model.export(saved, verbose=False)
    return {"params": int(model.count_params()), "macs": macs(model),
            "keras_bytes": _bytes(keras_path), "saved_model_bytes": _bytes(saved)}


def latency(models, cfg):
    """Interleaved per-call seconds of each model's compiled forward pass, per batch size."""
    import numpy as np
    import tensorflow as tf

    from bench import common

    out = {}
    for batch, calls in cfg["calls"].items():
        x = tf.constant(np.random.default_rng(0).random((batch, 64), dtype="float32"))
        fns = {}
        for name, model in models.items():
            fn = tf.function(lambda x, m=model: m(x, training=False))
            for _ in range(3):
                fn(x).numpy()  # trace and warm up

            def measure(fn=fn):
                start = common.now()
                for _ in range(calls):
                    y = fn(x)
                y.numpy()
                return (common.now() - start) / calls

            fns[name] = measure
        samples = common.interleaved(fns, cfg["rounds"])
        out[str(batch)] = {
            "seconds": {k: common.summarize(v) for k, v in samples.items()},
            "speedup": common.ratio(samples, "sparse", "compact"),
            "noise_floor": common.ratio(samples, "sparse_twin", "sparse"),
        }
    return out


def one_model(kind, cfg, data):
    import keras
    import numpy as np

    import kreg
    from bench import common

    _, x_test, _, y_test = data
    strength = cfg["strengths"][kind]
    common.log(f"  compact: {kind} dense")
    dense = train(kind, None, data, cfg)
    common.log(f"  compact: {kind} sparse (strength {strength:g})")
    sparse = train(kind, strength, data, cfg)
    compact, report = kreg.compact(sparse, report=True)
    twin = keras.models.clone_model(sparse)
    twin.set_weights(sparse.get_weights())

    def predict(model):
        return np.asarray(model(x_test, training=False), "float64")

    full, small = predict(sparse), predict(compact)
    rng = np.random.default_rng(1)
    noise = rng.normal(size=x_test.shape).astype("float32")
    accuracy = {name: float(np.mean(predict(m).argmax(-1) == y_test))
                for name, m in (("dense", dense), ("sparse", sparse), ("compact", compact))}
    with tempfile.TemporaryDirectory() as tmp:
        size = {"sparse": sizes(sparse, tmp), "compact": sizes(compact, tmp)}
    timings = latency({"sparse": sparse, "compact": compact, "sparse_twin": twin}, cfg)
    return {
        "strength": strength,
        "regularizer": ("GroupLasso(units) on hidden kernels" if kind == "mlp"
                        else "L1 on BatchNorm gamma and beta"),
        "units": {k: list(v) for k, v in report.units.items()},
        "kept_constants": report.kept_constants,
        "boundaries": report.boundaries,
        "accuracy": accuracy,
        "agreement": {
            "test_max_abs_over_scale": float(np.abs(small - full).max() / np.abs(full).max()),
            "random_max_abs_over_scale": float(
                np.abs(predict_np(compact, noise) - predict_np(sparse, noise)).max()
                / np.abs(predict_np(sparse, noise)).max()),
            "same_argmax": float(np.mean(small.argmax(-1) == full.argmax(-1))),
        },
        "size": size,
        "latency": timings,
    }


def predict_np(model, x):
    import numpy as np

    return np.asarray(model(x, training=False), "float64")


def run(quick):
    cfg = CONFIGS["quick" if quick else "full"]
    data = _data(cfg["seed"])
    return {"config": {k: (v if k != "calls" else {str(b): c for b, c in v.items()})
                       for k, v in cfg.items()},
            "models": {kind: one_model(kind, cfg, data) for kind in ("mlp", "cnn", "resnet")}}


def _ratio(a, b):
    return a / b if b else float("nan")


def render(result):
    meta = result["meta"]
    cfg = result["config"]
    lines = [BEGIN, "", "## 5. Compaction (`kreg.compact`)", "",
             f"Reproduce with `{meta['command']}` (CPU; `--quick` for a smoke run). Measured "
             f"{meta['date']}, {meta['device']}: {meta['cpu']}, {meta['cores']} cores; "
             f"TensorFlow {meta['tensorflow']}, Keras {meta['keras']}, kreg {meta['kreg']} "
             f"(git {meta['git']}); took {meta['seconds']:.0f} s.", "",
             f"Digits (1347 train / 450 test), {cfg['epochs']} epochs of Adam(2e-3), batch 64, "
             f"seed {cfg['seed']}; each model trained dense and sparse (under `kreg.Proximal`), "
             "the sparse one compacted. Latency: a `tf.function` forward pass on CPU, "
             f"{cfg['rounds']} interleaved rounds (sparse, compact, sparse twin); *speedup* = "
             "median(sparse) / median(compact) with the per-round quartiles in brackets; *A/A* "
             "= median(twin) / median(sparse), two identical models: the noise floor.", "",
             "| model | regularizer | params | MACs/sample | .keras bytes | SavedModel bytes "
             "| accuracy dense / sparse / compact | compact vs sparse (max abs / scale) |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, r in result["models"].items():
        s, c = r["size"]["sparse"], r["size"]["compact"]
        a = r["accuracy"]
        lines.append(
            f"| {kind} | {r['regularizer']}, {r['strength']:g} | {s['params']:,} -> "
            f"{c['params']:,} ({_ratio(s['params'], c['params']):.2f}x) | {s['macs']:,} -> "
            f"{c['macs']:,} ({_ratio(s['macs'], c['macs']):.2f}x) | {s['keras_bytes']:,} -> "
            f"{c['keras_bytes']:,} ({_ratio(s['keras_bytes'], c['keras_bytes']):.2f}x) | "
            f"{s['saved_model_bytes']:,} -> {c['saved_model_bytes']:,} "
            f"({_ratio(s['saved_model_bytes'], c['saved_model_bytes']):.2f}x) | "
            f"{100 * a['dense']:.2f} / {100 * a['sparse']:.2f} / {100 * a['compact']:.2f} | "
            f"{r['agreement']['test_max_abs_over_scale']:.1e} test, "
            f"{r['agreement']['random_max_abs_over_scale']:.1e} random |")
    lines += ["", "| model | batch | sparse ms | compact ms | speedup | A/A (noise floor) | "
              "ideal (MACs ratio) | speedup / ideal |", "|---|---|---|---|---|---|---|---|"]
    for kind, r in result["models"].items():
        ideal = _ratio(r["size"]["sparse"]["macs"], r["size"]["compact"]["macs"])
        for batch, t in r["latency"].items():
            sec = t["seconds"]
            sp, nf = t["speedup"], t["noise_floor"]
            lines.append(
                f"| {kind} | {batch} | {1e3 * sec['sparse']['median']:.3f} | "
                f"{1e3 * sec['compact']['median']:.3f} | {sp['ratio']:.2f}x "
                f"[{sp['per_round_q1']:.2f}, {sp['per_round_q3']:.2f}] | {nf['ratio']:.3f} "
                f"[{nf['per_round_q1']:.2f}, {nf['per_round_q3']:.2f}] | {ideal:.2f}x | "
                f"{sp['ratio'] / ideal:.2f} |")
    lines += ["", "Units kept (compact's report):", ""]
    for kind, r in result["models"].items():
        kept = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in r["units"].items())
        extra = ""
        if r["kept_constants"]:
            extra = "; constants kept (read under 'same' padding): " + ", ".join(
                f"{k} {v}" for k, v in r["kept_constants"].items())
        lines.append(f"* {kind}: {kept}{extra}")
    lines += ["", END]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.compact", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny run of every code path")
    p.add_argument("--out", default=None, help="JSON path (default: bench/results/compact.json; "
                   "bench/results/quick.tmp/compact.json with --quick)")
    p.add_argument("--markdown", default=None, help="BENCHMARKS.md to update (default: the "
                   "repository's, except with --quick)")
    p.add_argument("--report", action="store_true", help="only re-render from the JSON")
    args = p.parse_args(argv)
    from bench.__main__ import setup_environment

    out = args.out or os.path.join(HERE, "results", *(("quick.tmp",) if args.quick else ()),
                                   "compact.json")
    markdown = args.markdown or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    device = setup_environment(False)
    from bench import common

    if not args.report:
        start = common.now()
        result = run(args.quick)
        command = " ".join(["python -m bench.compact", *argv])
        result = {"meta": {**common.machine_info(command, device),
                           "seconds": common.now() - start}, **result}
        common.write_json(out, result)
        common.log(f"[bench.compact] -> {out}")
    result = common.read_json(out)
    text = render(result)
    if markdown:
        common.write_section(markdown, BEGIN, END, text)
        common.log(f"[bench.compact] wrote {markdown}")
    else:
        print(text)


if __name__ == "__main__":
    main()
