"""kreg.callbacks against independent references.

Oracles:

* schedules: NumPy written from the formulas Keras documents for PolynomialDecay,
  PiecewiseConstantDecay and CosineDecay with warm-up, and plain Python callables;
* the strength a step really used: a model whose data loss and penalty are known
  in closed form, trained with SGD(learning_rate=0) so weights stay put, where
  `loss = data + strength * penalty`; and a metric that records `reg.strength`
  after every optimizer step inside the compiled step;
* sparsity: NumPy counts of |w| <= tolerance on the final weights; group sparsity
  from NumPy blocks written from the grouping definition ("units" = last axis,
  "inputs" = second-to-last axis, integer ids = inputs sharing an id).
"""

import csv
import glob
import math
import os

import keras
import numpy as np
import pytest
from keras import ops

import kreg
from conftest import BACKEND, only_on
from oracle import np_groups
from kreg.callbacks import SparsityMonitor, StrengthScheduler, measure_sparsity

pytestmark = pytest.mark.usefixtures("device")

SCHEDULES = keras.optimizers.schedules

# ----------------------------------------------------------------- references


def np_polynomial(step, initial, decay_steps, end, power):
    step = np.minimum(step, decay_steps)
    return (initial - end) * (1 - step / decay_steps) ** power + end


def np_piecewise(step, boundaries, values):
    step = np.asarray(step)
    out = np.full(step.shape, values[-1], dtype=np.float64)
    for i in range(len(boundaries) - 1, -1, -1):
        out = np.where(step <= boundaries[i], values[i], out)
    return out


def np_cosine_warmup(step, initial, decay_steps, warmup_target, warmup_steps, alpha):
    step = np.minimum(np.asarray(step, dtype=np.float64), decay_steps + warmup_steps)
    warm = initial + (warmup_target - initial) * step / warmup_steps
    frac = np.minimum(step - warmup_steps, decay_steps) / decay_steps
    decayed = warmup_target * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * frac)) + alpha)
    return np.where(step < warmup_steps, warm, decayed)


def np_sparsity(w, tol):
    return float(np.mean(np.abs(np.asarray(w, np.float32)) <= np.float32(tol)))


def np_group_sparsity(w, groups, tol):
    blocks = np_groups(np.abs(np.asarray(w, np.float32)), groups)
    return float(np.mean([np.all(b <= np.float32(tol)) for b in blocks]))


# ------------------------------------------------------------------- helpers

W0 = np.array([[0.5], [-1.5]], np.float32)  # sum = -1, sum|w| = 2


def fixed_model(reg, name="net", **compile_kwargs):
    """y = x @ W0 with weights frozen by SGD(0): on x = ones, y = 0 the data loss is
    (sum W0)^2 = 1 and the L1 penalty is strength * sum|W0| = 2 * strength."""
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_regularizer=reg,
                kernel_initializer=keras.initializers.Constant(W0),
                name="out",
            ),
        ],
        name=name,
    )
    model.compile(keras.optimizers.SGD(0.0), "mse", **compile_kwargs)
    return model


DATA_LOSS, PENALTY = 1.0, 2.0


# Steps per execution where a test wants several: PyTorch runs one step per
# execution, and StrengthScheduler(update="step") on JAX needs one.
MANY_STEPS = BACKEND == "tensorflow"


def fixed_data(steps, batch_size=2):
    x = np.ones((steps * batch_size, 2), np.float32)
    return x, np.zeros((steps * batch_size, 1), np.float32)


class StrengthRecorder(keras.metrics.Metric):
    """Records `reg.strength` after every step at index `optimizer.iterations - 1`.

    Metrics update after the optimizer applied the step, inside the compiled step,
    so this sees every step even with steps_per_execution > 1.
    """

    def __init__(self, reg, optimizer, n):
        super().__init__(name="recorder")
        self.reg = reg
        self.optimizer = optimizer
        self.values = self.add_variable(shape=(n,), initializer="zeros", name="values")

    def update_state(self, y_true, y_pred, sample_weight=None):
        index = ops.reshape(ops.convert_to_tensor(self.optimizer.iterations) - 1, (1, 1))
        strength = ops.reshape(ops.convert_to_tensor(self.reg.strength), (1,))
        self.values.assign(ops.scatter_update(self.values, index, strength))

    def result(self):
        return ops.convert_to_tensor(self.reg.strength)

    def reset_state(self):
        pass  # keep the record across epochs


class BatchLogs(keras.callbacks.Callback):
    """Keeps a copy of every batch's logs (placed after the kreg callback)."""

    def __init__(self, extra=None):
        super().__init__()
        self.batches = []
        self.extra = extra

    def on_train_batch_end(self, batch, logs=None):
        entry = {"batch": batch, **(logs or {})}
        if self.extra is not None:
            entry.update(self.extra(self.model))
        self.batches.append(entry)


# ------------------------------------------------------ StrengthScheduler: epoch


EPOCH_CASES = {
    "polynomial": (
        SCHEDULES.PolynomialDecay(0.4, decay_steps=3, end_learning_rate=0.05, power=2.0),
        lambda e: np_polynomial(e, 0.4, 3, 0.05, 2.0),
    ),
    "piecewise": (
        SCHEDULES.PiecewiseConstantDecay([0, 2], [0.3, 0.2, 0.01]),
        lambda e: np_piecewise(e, [0, 2], [0.3, 0.2, 0.01]),
    ),
    "callable": (lambda epoch: 0.5 * 0.5**epoch, lambda e: 0.5 * 0.5 ** np.asarray(e)),
}


@pytest.mark.parametrize("case", sorted(EPOCH_CASES))
def test_epoch_strengths_equal_schedule_and_are_used(case):
    schedule, reference = EPOCH_CASES[case]
    reg = kreg.L1(1.0)
    model = fixed_model(reg)
    epochs = 5
    history = model.fit(
        *fixed_data(3),
        batch_size=2,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=[StrengthScheduler(schedule)],
    )
    expected = reference(np.arange(epochs))
    np.testing.assert_allclose(history.history["strength/out/kernel"], expected, rtol=1e-6)
    # The penalty of every step of epoch e used schedule(e).
    np.testing.assert_allclose(history.history["loss"], DATA_LOSS + PENALTY * expected, rtol=1e-5)
    np.testing.assert_allclose(float(reg.strength), expected[-1], rtol=1e-6)
    assert reg._strength_source is None


# ------------------------------------------------------- StrengthScheduler: step


STEP_CASES = {
    "cosine_warmup": (
        SCHEDULES.CosineDecay(0.0, decay_steps=20, alpha=0.1, warmup_target=0.8, warmup_steps=5),
        lambda s: np_cosine_warmup(s, 0.0, 20, 0.8, 5, 0.1),
    ),
    "callable": (
        lambda step: 0.9 / (1.0 + ops.cast(step, "float32")),
        lambda s: 0.9 / (1.0 + np.asarray(s, np.float64)),
    ),
}


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "jit"])
@pytest.mark.parametrize("case", sorted(STEP_CASES))
def test_step_strengths_equal_schedule_at_every_step(case, jit_compile):
    schedule, reference = STEP_CASES[case]
    reg = kreg.L1(1.0)
    steps_per_epoch, epochs, spe = 16, 2, 8 if MANY_STEPS else 1
    n = steps_per_epoch * epochs
    model = fixed_model(reg)
    # Inside the compiled step (TensorFlow): with one step per execution the batch
    # logs below see every step's strength.
    recorder = StrengthRecorder(reg, model.optimizer, n) if MANY_STEPS else None
    model.compile(
        model.optimizer,
        "mse",
        metrics=[recorder] if recorder else [],
        steps_per_execution=spe,
        jit_compile=jit_compile,
    )
    batch_logs = BatchLogs()
    history = model.fit(
        *fixed_data(steps_per_epoch),
        batch_size=2,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=[StrengthScheduler(schedule, update="step"), batch_logs],
    )
    expected = reference(np.arange(n))
    # reg.strength after every single step holds schedule(iteration of that step).
    if recorder is not None:
        np.testing.assert_allclose(ops.convert_to_numpy(recorder.values), expected, rtol=1e-6)
    # The penalty used it: the epoch loss is the mean of data + s_k * penalty.
    per_epoch = expected.reshape(epochs, steps_per_epoch).mean(axis=1)
    np.testing.assert_allclose(history.history["loss"], DATA_LOSS + PENALTY * per_epoch, rtol=1e-5)
    # Logs: epoch end = last step of the epoch; batch end = last step of the execution.
    np.testing.assert_allclose(
        history.history["strength/out/kernel"],
        expected[steps_per_epoch - 1 :: steps_per_epoch],
        rtol=1e-6,
    )
    logged = [b["strength/out/kernel"] for b in batch_logs.batches]
    np.testing.assert_allclose(logged, expected[spe - 1 :: spe], rtol=1e-6)
    assert [b["batch"] for b in batch_logs.batches] == list(range(spe - 1, 16, spe)) * epochs
    np.testing.assert_allclose(float(reg.strength), expected[-1], rtol=1e-6)
    assert int(model.optimizer.iterations) == n


def test_step_schedule_of_a_regularizer_shared_by_two_layers():
    # One regularizer object on two kernels: each step computes its strength twice and
    # assigns it twice. On PyTorch the second assignment once modified, in place, the
    # tensor autograd had saved from the first layer's penalty (a crash in the first step).
    reg = kreg.L1(1.0)
    model = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(2, use_bias=False, kernel_initializer="ones", kernel_regularizer=reg),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", kernel_regularizer=reg),
    ])
    model.compile(keras.optimizers.SGD(0.0), "mse")  # the weights stay as they are
    steps = 4
    x = np.ones((steps * 2, 2), np.float32)
    y = np.zeros((steps * 2, 1), np.float32)
    batch_logs = BatchLogs()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False,
              callbacks=[StrengthScheduler(lambda s: 0.5 * (ops.cast(s, "float32") + 1),
                                           update="step"), batch_logs])
    # NumPy: output 4 for input (1, 1) (all weights 1), data loss 16; penalty sum|w| = 6.
    strengths = 0.5 * (np.arange(steps) + 1)
    running_mean = np.cumsum(16 + 6 * strengths) / np.arange(1, steps + 1)
    np.testing.assert_allclose([b["loss"] for b in batch_logs.batches], running_mean, rtol=1e-6)
    assert float(reg.strength) == pytest.approx(strengths[-1])


def test_step_hook_is_off_for_validation_and_removed_after_fit():
    schedule = SCHEDULES.PolynomialDecay(1.0, decay_steps=6, end_learning_rate=0.2)
    reg = kreg.L1(1.0)
    model = fixed_model(reg)
    x, y = fixed_data(3)
    history = model.fit(
        x,
        y,
        batch_size=2,
        epochs=2,
        verbose=0,
        shuffle=False,
        validation_data=(x, y),
        callbacks=[StrengthScheduler(schedule, update="step")],
    )
    expected = np_polynomial(np.arange(6), 1.0, 6, 0.2, 1.0)
    # Validation runs after the epoch with the strength of its last step.
    np.testing.assert_allclose(
        history.history["val_loss"], DATA_LOSS + PENALTY * expected[[2, 5]], rtol=1e-5
    )
    np.testing.assert_allclose(
        history.history["strength/out/kernel"], expected[[2, 5]], rtol=1e-6
    )
    assert reg._strength_source is None
    # A later fit without scheduler trains with whatever strength is assigned.
    reg.strength.assign(0.125)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    np.testing.assert_allclose(history.history["loss"], [DATA_LOSS + PENALTY * 0.125], rtol=1e-5)
    np.testing.assert_allclose(float(reg.strength), 0.125)


def test_step_schedule_drives_the_proximal_prox():
    try:
        optimizer = kreg.Proximal(keras.optimizers.SGD(0.1))
    except NotImplementedError:
        pytest.skip("kreg.Proximal is not implemented yet (issue 3)")
    # Zero inputs and targets: the data gradient is 0, so each step is only the prox
    # w <- soft_threshold(w, lr * s_k), and |w| = max(|w0| - lr * sum_k s_k, 0).
    reg = kreg.L1(1.0)
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_regularizer=reg,
                kernel_initializer=keras.initializers.Constant([[3.0], [-0.1]]),
            ),
        ]
    )
    model.compile(optimizer, "mse", steps_per_execution=4 if MANY_STEPS else 1)
    steps = 8
    schedule = lambda step: 0.25 * (1.0 + ops.cast(step, "float32"))  # noqa: E731
    model.fit(
        np.zeros((steps, 2), np.float32),
        np.zeros((steps, 1), np.float32),
        batch_size=1,
        epochs=1,
        verbose=0,
        callbacks=[StrengthScheduler(schedule, update="step")],
    )
    shrink = 0.1 * np.sum(0.25 * (1.0 + np.arange(steps)))
    w0 = np.array([[3.0], [-0.1]])
    expected = np.sign(w0) * np.maximum(np.abs(w0) - shrink, 0)
    np.testing.assert_allclose(
        ops.convert_to_numpy(model.layers[0].kernel), expected, rtol=1e-5, atol=1e-7
    )


# ------------------------------------------------ StrengthScheduler: selection


def two_layer_model(reg_a, reg_b, reg_c):
    inputs = keras.Input((3,))
    h = keras.layers.Dense(4, kernel_regularizer=reg_a, name="a")(inputs)
    h = keras.layers.Dense(4, kernel_regularizer=reg_b, bias_regularizer=reg_c, name="b")(h)
    out = keras.layers.Dense(1, kernel_regularizer=reg_b, name="c")(h)  # shares reg_b
    model = keras.Model(inputs, out, name="two")
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model


def test_selection_by_layer_name_objects_and_default():
    x = np.ones((4, 3), np.float32)
    y = np.zeros((4, 1), np.float32)
    reg_a, reg_b, reg_c = kreg.L1(1.0), kreg.GroupLasso(1.0), kreg.L2(1.0)
    model = two_layer_model(reg_a, reg_b, reg_c)

    history = model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[
            StrengthScheduler(lambda e: 0.1 * (e + 1), regularizers=["a"]),
            StrengthScheduler(lambda e: 0.01 * (e + 1), regularizers=[reg_b]),
        ],
    )
    logs = history.history
    np.testing.assert_allclose(logs["strength/a/kernel"], [0.1, 0.2], rtol=1e-6)
    # One shared regularizer, one key per weight that uses it.
    np.testing.assert_allclose(logs["strength/b/kernel"], [0.01, 0.02], rtol=1e-6)
    np.testing.assert_allclose(logs["strength/c/kernel"], [0.01, 0.02], rtol=1e-6)
    assert "strength/b/bias" not in logs
    np.testing.assert_allclose(float(reg_c.strength), 1.0)

    # Default: every kreg regularizer of the model, shared ones once.
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[StrengthScheduler(lambda e: 0.5)])
    keys = sorted(k for k in history.history if k.startswith("strength/"))
    assert keys == [
        "strength/a/kernel",
        "strength/b/bias",
        "strength/b/kernel",
        "strength/c/kernel",
    ]
    for reg in (reg_a, reg_b, reg_c):
        np.testing.assert_allclose(float(reg.strength), 0.5)


def test_two_schedulers_on_one_regularizer_is_an_error():
    model = two_layer_model(kreg.L1(1.0), kreg.L1(1.0), kreg.L2(1.0))
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)
    with pytest.raises(ValueError, match="Two StrengthSchedulers control the same regularizer"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[StrengthScheduler(lambda e: 0.1), StrengthScheduler(lambda e: 0.2, ["b"])],
        )
    # The failed fit does not block a later one.
    model.fit(x, y, epochs=1, verbose=0, callbacks=[StrengthScheduler(lambda e: 0.3, ["b"])])


# ------------------------------------------ StrengthScheduler: BackupAndRestore


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("update", ["epoch", "step"])
def test_backup_and_restore_resume_ends_at_the_uninterrupted_strength(update, tmp_path):
    epochs, steps = 5, 3
    schedule = SCHEDULES.PolynomialDecay(
        1.0, decay_steps=4 if update == "epoch" else 12, end_learning_rate=0.1, power=2.0
    )
    last_index = epochs - 1 if update == "epoch" else epochs * steps - 1
    decay = 4 if update == "epoch" else 12
    expected_last = np_polynomial(last_index, 1.0, decay, 0.1, 2.0)

    def run(callbacks, reg, model):
        return model.fit(
            *fixed_data(steps),
            batch_size=2,
            epochs=epochs,
            verbose=0,
            shuffle=False,
            callbacks=callbacks,
        )

    reg_full = kreg.L1(1.0)
    model_full = fixed_model(reg_full, name="full")
    run([StrengthScheduler(schedule, update=update)], reg_full, model_full)

    reg = kreg.L1(1.0)
    model = fixed_model(reg, name="net")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        run([backup, StrengthScheduler(schedule, update=update), Interrupt(3)], reg, model)
    reg.strength.assign(123.0)  # whatever the interrupted run left must not matter
    history = run([backup, StrengthScheduler(schedule, update=update)], reg, model)

    assert len(history.history["loss"]) == epochs - 3  # resumed at epoch 3
    np.testing.assert_allclose(float(reg.strength), float(reg_full.strength), rtol=1e-6)
    np.testing.assert_allclose(float(reg.strength), expected_last, rtol=1e-6)
    index = np.arange(3, epochs) if update == "epoch" else np.arange(3, epochs) * steps + steps - 1
    np.testing.assert_allclose(
        history.history["strength/out/kernel"],
        np_polynomial(index, 1.0, decay, 0.1, 2.0),
        rtol=1e-6,
    )
    assert reg._strength_source is None


# ------------------------------------------------ StrengthScheduler: bad input


@only_on("jax", reason="the JAX step scheduler sets strengths between executions")
def test_step_update_on_jax_needs_one_step_per_execution():
    model = fixed_model(kreg.L1(1.0), steps_per_execution=2)
    with pytest.raises(ValueError, match="needs `steps_per_execution=1`.*Received: steps_per_execution=2"):
        model.fit(*fixed_data(4), batch_size=2, verbose=0,
                  callbacks=[StrengthScheduler(lambda s: 0.1, update="step")])


def test_bad_update():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `update`: expected \"epoch\" or \"step\". "
        r"Received: update='batch'",
    ):
        StrengthScheduler(lambda e: 0.1, update="batch")


def test_bad_schedule_type_and_regularizers():
    with pytest.raises(TypeError, match="argument `schedule`"):
        StrengthScheduler(0.1)
    with pytest.raises(TypeError, match="argument `regularizers`.*L2"):
        StrengthScheduler(lambda e: 0.1, regularizers=[keras.regularizers.L2(0.1)])
    with pytest.raises(ValueError, match="argument `regularizers`"):
        StrengthScheduler(lambda e: 0.1, regularizers=[])


def test_layer_names_and_objects_that_match_nothing():
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)
    model = two_layer_model(kreg.L1(1.0), kreg.L1(1.0), None)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.fit(x, y, verbose=0, callbacks=[StrengthScheduler(lambda e: 0.1, ["nope"])])
    inputs = keras.Input((3,))
    plain = keras.Model(inputs, keras.layers.Dense(1, name="d")(inputs))
    plain.compile("sgd", "mse")
    with pytest.raises(ValueError, match="layer 'd' has none"):
        plain.fit(x, y, verbose=0, callbacks=[StrengthScheduler(lambda e: 0.1, ["d"])])
    with pytest.raises(ValueError, match="no weight of the model uses"):
        model.fit(x, y, verbose=0, callbacks=[StrengthScheduler(lambda e: 0.1, [kreg.L1(0.1)])])
    with pytest.raises(ValueError, match="no kreg regularizer"):
        plain.fit(x, y, verbose=0, callbacks=[StrengthScheduler(lambda e: 0.1)])


@pytest.mark.parametrize("bad", [-0.5, math.nan])
def test_bad_epoch_strength_names_the_epoch(bad):
    reg = kreg.L1(1.0)
    model = fixed_model(reg)
    with pytest.raises(
        ValueError, match=rf"non-negative finite strength. Received: schedule\(2\)={bad} at epoch 2"
    ):
        model.fit(
            *fixed_data(2),
            batch_size=2,
            epochs=4,
            verbose=0,
            callbacks=[StrengthScheduler(lambda e: 0.1 if e < 2 else bad)],
        )


@pytest.mark.parametrize("bad", [-0.5, math.nan])
def test_bad_step_strength_names_the_step(bad):
    reg = kreg.L1(1.0)
    model = fixed_model(reg, steps_per_execution=4 if MANY_STEPS else 1)
    # Bad from step 5 on: the first step is checked eagerly, later ones in the graph.
    schedule = lambda step: ops.where(step < 5, 0.1, bad)  # noqa: E731
    with pytest.raises(ValueError, match=rf"schedule\(5\)={bad} at step 5"):
        model.fit(
            *fixed_data(12),
            batch_size=2,
            epochs=1,
            verbose=0,
            callbacks=[StrengthScheduler(schedule, update="step")],
        )
    # Bad at the very first step: refused before training.
    model = fixed_model(kreg.L1(1.0))
    with pytest.raises(ValueError, match=rf"schedule\(0\)={bad} at step 0"):
        model.fit(
            *fixed_data(2),
            batch_size=2,
            epochs=1,
            verbose=0,
            callbacks=[StrengthScheduler(lambda step: ops.cast(bad, "float32"), update="step")],
        )


# ------------------------------------------------------------- SparsityMonitor


class ApplyProx(keras.callbacks.Callback):
    """Makes exact zeros: w <- reg.prox(w, step) for every kreg-regularized weight,
    at every epoch end (default) or every batch end."""

    def __init__(self, step, every_batch=False):
        super().__init__()
        self.step = step
        self.every_batch = every_batch

    def _apply(self):
        for v in self.model.trainable_variables:
            if isinstance(v.regularizer, kreg.regularizers.Regularizer):
                v.assign(v.regularizer.prox(v, self.step))

    def on_train_batch_end(self, batch, logs=None):
        if self.every_batch:
            self._apply()

    def on_epoch_end(self, epoch, logs=None):
        if not self.every_batch:
            self._apply()


GROUP_IDS = [0, 1, 0, 2, 2, 1, 3, 3]


def sparse_model():
    inputs = keras.Input((6,))
    h = keras.layers.Dense(
        8, activation="relu", name="h1", kernel_regularizer=kreg.GroupLasso(0.1, groups="units")
    )(inputs)
    h = keras.layers.Dense(
        6,
        activation="relu",
        name="h2",
        kernel_regularizer=kreg.SparseGroupLasso(0.1, 0.5, groups=GROUP_IDS),
    )(h)
    out = keras.layers.Dense(1, name="out", kernel_regularizer=kreg.L1(0.05))(h)
    model = keras.Model(inputs, out, name="sparse")
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model


GROUPS = {"h1/kernel": "units", "h2/kernel": GROUP_IDS}


def numpy_report(model, tol, include=("h1", "h2", "out")):
    out, zeros, total = {}, 0, 0
    for v in model.trainable_variables:
        layer = v.path.split("/")[0]
        if layer not in include or not v.path.endswith("kernel"):
            continue
        w = ops.convert_to_numpy(v)
        out[f"sparsity/{v.path}"] = np_sparsity(w, tol)
        if v.path in GROUPS:
            out[f"group_sparsity/{v.path}"] = np_group_sparsity(w, GROUPS[v.path], tol)
        zeros += int(np.sum(np.abs(w.astype(np.float32)) <= np.float32(tol)))
        total += w.size
    out["sparsity"] = zeros / total
    return out


def numpy_units_kept(w1, w2, w3, tol):
    """Kept units of a Dense-Dense-Dense chain, by the rule in kreg.compaction's
    docstring: a unit goes when all its incoming or all its outgoing weights (to the
    units that stay) are at most `tol`; repeated to a fixed point; a layer keeps >= 1."""
    live = [np.abs(w) > tol for w in (w1, w2, w3)]
    a1 = np.ones(w1.shape[1], bool)
    a2 = np.ones(w2.shape[1], bool)
    for _ in range(10):
        a1 = live[0].any(0) & live[1][:, a2].any(1)
        a2 = live[1][a1].any(0) & live[2].any(1)
    return {"units/h1": max(int(a1.sum()), 1), "units/h2": max(int(a2.sum()), 1), "units/out": 1}


@pytest.mark.parametrize("tolerance", [0.0, 0.05])
def test_sparsity_monitor_logs_the_units_compact_keeps(tolerance, rng):
    model = sparse_model()
    w1, b1, w2, b2, w3, b3 = model.get_weights()
    w1[:, [0, 3]] = 0.0           # h1 units 0, 3: no incoming weight
    w2[[1, 5], :] = 0.0           # h1 units 1, 5: no outgoing weight
    w2[:, 2] = 0.0                # h2 unit 2: no incoming weight
    w2[[2, 4, 6, 7], 4] = 0.0     # h2 unit 4: incoming only from h1 units that go (0, 1, 3, 5)
    w3[5] = 0.0                   # h2 unit 5: no outgoing weight
    w1[:, 6] = 0.01               # h1 unit 6: dead only at tolerance 0.05
    model.set_weights([w1, b1, w2, b2, w3, b3])
    model.compile(keras.optimizers.SGD(0.0), "mse")  # the weights stay as set
    x = rng.normal(size=(16, 6)).astype(np.float32)
    history = model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0,
                        callbacks=[SparsityMonitor(tolerance=tolerance, units=True)])
    expected = numpy_units_kept(w1, w2, w3, tolerance)
    assert expected["units/h1"] == (3 if tolerance else 4)
    for key, value in expected.items():
        assert history.history[key] == [value, value]
    assert kreg.unit_counts(model, tolerance)["h2"] == (expected["units/h2"], 6)


def test_sparsity_monitor_units_must_be_a_bool():
    with pytest.raises(ValueError, match="Invalid value for argument `units`: expected a bool"):
        SparsityMonitor(units="yes")


@pytest.mark.parametrize("tolerance", [0.0, 0.05])
def test_sparsity_logs_equal_numpy_on_final_weights(tolerance, rng, tmp_path):
    model = sparse_model()
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = (x[:, :1] - 0.5 * x[:, 2:3]).astype(np.float32)
    csv_path = str(tmp_path / "log.csv")
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[
            ApplyProx(1.0),
            SparsityMonitor(tolerance=tolerance),
            keras.callbacks.CSVLogger(csv_path),
        ],
    )
    expected = numpy_report(model, tolerance)
    assert 0 < expected["sparsity"] < 1  # the case exercises zeros and non-zeros
    assert 0 < expected["group_sparsity/h1/kernel"] < 1
    logged = {k: v[-1] for k, v in history.history.items() if "sparsity" in k}
    assert logged.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(logged[key], value, rtol=1e-12, err_msg=key)
    assert measure_sparsity(model, tolerance) == logged
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for key, value in expected.items():
        np.testing.assert_allclose(float(rows[-1][key]), value, rtol=1e-6, err_msg=key)


def test_tensorboard_after_the_monitor_writes_the_sparsity_tags(tmp_path):
    pytest.importorskip(
        "tensorboard", reason="the TensorBoard callback needs the tensorboard package"
    )
    tf = pytest.importorskip(
        "tensorflow", reason="Keras's TensorBoard callback writes through tf.summary"
    )
    model = sparse_model()
    x = np.linspace(-1, 1, 48, dtype=np.float32).reshape(8, 6)
    logdir = str(tmp_path / "tb")
    model.fit(
        x,
        x[:, :1],
        epochs=2,
        verbose=0,
        callbacks=[
            ApplyProx(1.0),
            SparsityMonitor(),
            keras.callbacks.TensorBoard(logdir, write_graph=False),
        ],
    )
    expected = numpy_report(model, 0.0)
    found = {}
    for path in glob.glob(os.path.join(logdir, "train", "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    found[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    for key, value in expected.items():
        assert (f"epoch_{key}", 1) in found, key
        np.testing.assert_allclose(found[(f"epoch_{key}", 1)], value, rtol=1e-6)


def test_update_freq_logs_every_n_batches(rng):
    model = sparse_model()
    model.compile(keras.optimizers.SGD(0.05), "mse", steps_per_execution=2 if MANY_STEPS else 1)
    x = rng.normal(size=(40, 6)).astype(np.float32)  # 10 batches of 4 per epoch

    def numpy_now(m):
        return {"numpy": numpy_report(m, 0.0)}

    recorder = BatchLogs(extra=numpy_now)
    model.fit(
        x,
        x[:, :1],
        batch_size=4,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[ApplyProx(0.2, every_batch=True), SparsityMonitor(update_freq=3), recorder],
    )
    # Batch ends come at 1, 3, ..., 9 (two steps per execution); with a global batch
    # count the keys appear at the first batch end at or past each multiple of 3.
    ends = [b["batch"] for b in recorder.batches]
    counts = np.cumsum(
        [ends[0] + 1] + [(e - p) if e > p else e + 1 for p, e in zip(ends, ends[1:])]
    )
    previous = np.concatenate([[0], counts[:-1]])
    due = counts // 3 > previous // 3
    assert due.sum() > 2
    assert 0 < recorder.batches[-1]["numpy"]["sparsity"] < 1  # zeros and non-zeros
    for entry, is_due in zip(recorder.batches, due):
        assert ("sparsity" in entry) == bool(is_due), entry["batch"]
        if is_due:
            for key, value in entry["numpy"].items():
                np.testing.assert_allclose(entry[key], value, rtol=1e-12, err_msg=key)


def test_include_kernels_and_all_and_variable_lists():
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3, kernel_regularizer=kreg.L1(0.1), name="reg")(inputs)
    e = keras.layers.Embedding(5, 3, name="emb")(keras.ops.cast(inputs, "int32"))
    out = keras.layers.Dense(1, name="plain")(h + keras.ops.sum(e, axis=1))
    model = keras.Model(inputs, out, name="m")
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:
        w = rng.normal(size=v.shape).astype(np.float32)
        w[rng.random(v.shape) < 0.4] = 0.0
        v.assign(w)
    paths = {v.path: ops.convert_to_numpy(v) for v in model.trainable_variables}

    def expected(selected):
        out = {f"sparsity/{p}": np_sparsity(paths[p], 0.0) for p in selected}
        out["sparsity"] = sum(np.sum(paths[p] == 0) for p in selected) / sum(
            paths[p].size for p in selected
        )
        return out

    regularized = [p for p in paths if p.startswith("reg/") and p.endswith("kernel")]
    kernels = [p for p in paths if p.endswith("kernel") or p.endswith("embeddings")]
    assert measure_sparsity(model) == pytest.approx(expected(regularized), rel=1e-12)
    assert measure_sparsity(model, include="kernels") == pytest.approx(expected(kernels), rel=1e-12)
    assert measure_sparsity(model, include="all") == pytest.approx(expected(list(paths)), rel=1e-12)
    # A list of variables is filtered the same way.
    assert measure_sparsity(model.trainable_variables, include="all") == measure_sparsity(
        model, include="all"
    )
    bias = [v for v in model.trainable_variables if v.path == "plain/bias"]
    assert measure_sparsity(bias, include="all") == pytest.approx(
        expected(["plain/bias"]), rel=1e-12
    )


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_group_sparsity_on_conv_kernels_and_other_dtypes(dtype, rng):
    layer = keras.layers.Conv2D(
        5, 3, name="conv", dtype=dtype, kernel_regularizer=kreg.GroupLasso(0.1, groups="inputs")
    )
    layer.build((None, 6, 6, 4))
    w = rng.normal(size=(3, 3, 4, 5))
    w[:, :, 1, :] = 0.0  # one dead input channel
    w[:, :, 3, :] = 1e-3  # below a tolerance of 1e-2 only
    w[rng.random(w.shape) < 0.3] = 0.0
    layer.kernel.assign(w.astype(dtype))
    kernel = ops.convert_to_numpy(layer.kernel)
    for tol in (0.0, 1e-2):
        got = measure_sparsity(layer, tol)
        np.testing.assert_allclose(
            got["sparsity/conv/kernel"], np_sparsity(kernel, tol), rtol=1e-12
        )
        np.testing.assert_allclose(
            got["group_sparsity/conv/kernel"], np_group_sparsity(kernel, "inputs", tol), rtol=1e-12
        )


def test_sparsity_bad_input():
    with pytest.raises(
        ValueError, match=r"Invalid value for argument `tolerance`.*Received: tolerance=-0.1"
    ):
        SparsityMonitor(tolerance=-0.1)
    with pytest.raises(ValueError, match="argument `tolerance`"):
        SparsityMonitor(tolerance=math.nan)
    with pytest.raises(ValueError, match="argument `tolerance`"):
        SparsityMonitor(tolerance="0")
    with pytest.raises(ValueError, match="argument `include`"):
        SparsityMonitor(include="weights")
    for bad in (0, -2, 1.5, True, "batch"):
        with pytest.raises(ValueError, match="argument `update_freq`"):
            SparsityMonitor(update_freq=bad)
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="Nothing to measure"):
        measure_sparsity(plain)
    with pytest.raises(TypeError, match="argument `model_or_variables`"):
        measure_sparsity([np.zeros(3)])
    with pytest.raises(ValueError, match="argument `tolerance`"):
        measure_sparsity(plain, tolerance=-1.0, include="all")
    plain.compile("sgd", "mse")
    with pytest.raises(ValueError, match="Nothing to measure"):
        plain.fit(np.ones((2, 2)), np.ones((2, 1)), verbose=0, callbacks=[SparsityMonitor()])


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.hidden = keras.layers.Dense(4, kernel_regularizer=kreg.L1(0.5), name="hidden")

    def call(self, x):
        return self.hidden(x)


def test_subclassed_model_built_in_fit():
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 4), np.float32)
    model = Subclassed()
    model.compile(keras.optimizers.SGD(0.0), "mse")
    # The monitor resolves its variables at the first measurement, after Keras built
    # the model inside the first step.
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[SparsityMonitor()])
    kernel = ops.convert_to_numpy(model.hidden.kernel)
    path = model.hidden.kernel.path.removeprefix(model.name + "/")
    np.testing.assert_allclose(history.history[f"sparsity/{path}"], [np_sparsity(kernel, 0.0)])
    # The scheduler needs the model built before fit (to install its step hook).
    unbuilt = Subclassed()
    unbuilt.compile(keras.optimizers.SGD(0.0), "mse")
    if BACKEND == "tensorflow":  # JAX and PyTorch build the model before callbacks start
        with pytest.raises(ValueError, match="needs a built model"):
            unbuilt.fit(x, y, verbose=0, callbacks=[StrengthScheduler(lambda e: 0.1)])
        unbuilt(x[:1])
    history = unbuilt.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[
            StrengthScheduler(lambda s: 0.1 * (1.0 + ops.cast(s, "float32")), update="step")
        ],
    )
    np.testing.assert_allclose(
        history.history[f"strength/{unbuilt.hidden.kernel.path.removeprefix(unbuilt.name + '/')}"], [0.1, 0.2], rtol=1e-6
    )
