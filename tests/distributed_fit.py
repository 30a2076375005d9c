"""Run by tests/test_distribution.py in a fresh process: the same kreg training on
one device and distributed, written to a JSON file for the test to compare.

    python distributed_fit.py MODE OUT_JSON [WORKER_INDEX]

MODE is `mirrored` (TensorFlow MirroredStrategy over 2 logical CPUs), `multi_worker`
(TensorFlow MultiWorkerMirroredStrategy, one of 2 local workers; TF_CONFIG set by
the test) or `jax_data_parallel` (keras.distribution.DataParallel over 2 host
devices; XLA_FLAGS set by the test). The training: a Dense layer with a group
lasso on its units under `kreg.Proximal(Adam)`, an L1 on a second layer under
the same optimizer, and a `StrengthScheduler(update="step")` warming the group
lasso up, on fixed data without shuffling, so one device and many devices must
agree to float32 round-off.
"""

import json
import os
import sys

import numpy as np

MODE, OUT = sys.argv[1], sys.argv[2]

if MODE == "mirrored":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
elif MODE == "multi_worker":
    import tensorflow as tf

    # Collective ops are configured when the strategy is made, before anything else runs.
    STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402
from keras import ops  # noqa: E402

import kreg  # noqa: E402

STEPS, BATCH = 12, 16


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * BATCH, 8)).astype("float32")
    w = np.zeros((8, 1), "float32")
    w[:3, 0] = [1.5, -2.0, 1.0]
    return x, (x @ w + 0.1 * rng.normal(size=(STEPS * BATCH, 1))).astype("float32")


def initial_weights():
    rng = np.random.default_rng(1)
    return [rng.normal(scale=0.5, size=(8, 6)).astype("float32"), np.zeros(6, "float32"),
            rng.normal(scale=0.5, size=(6, 1)).astype("float32"), np.zeros(1, "float32")]


def build():
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(6, kernel_regularizer=kreg.GroupLasso(0.0, groups="units"),
                           name="hidden"),
        keras.layers.Dense(1, kernel_regularizer=kreg.L1(0.01), name="out"),
    ])
    model.set_weights(initial_weights())
    model.compile(kreg.Proximal(keras.optimizers.Adam(0.05)), "mse")
    return model


def train(model):
    x, y = data()
    # A warm-up of the group lasso's strength, one value per step.
    schedule = lambda step: 0.05 * ops.minimum(ops.cast(step, "float32") / 6.0, 1.0)  # noqa: E731
    history = model.fit(
        x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
        callbacks=[kreg.callbacks.StrengthScheduler(schedule, regularizers="hidden", update="step"),
                   kreg.callbacks.SparsityMonitor()],
    )
    return {
        "weights": [w.tolist() for w in model.get_weights()],
        "loss": history.history["loss"],
        "strength": history.history["strength/hidden/kernel"],
        "group_sparsity": history.history["group_sparsity/hidden/kernel"],
    }


result = {"single": train(build())}
if MODE == "mirrored":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build()
    result["replicas"] = int(strategy.num_replicas_in_sync)
    result["distributed"] = train(model)
elif MODE == "multi_worker":
    strategy = STRATEGY
    with strategy.scope():
        model = build()
    result["replicas"] = int(strategy.num_replicas_in_sync)
    result["distributed"] = train(model)
elif MODE == "jax_data_parallel":
    import jax

    devices = jax.devices("cpu")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    result["replicas"] = len(devices)
    result["distributed"] = train(build())
else:
    raise SystemExit(f"unknown mode {MODE!r}")

if len(sys.argv) < 4 or sys.argv[3] == "0":  # the chief writes
    with open(OUT, "w") as f:
        json.dump(result, f)
os._exit(0)  # multi-worker collectives can hang at interpreter exit
