"""Part 1: what kreg adds to a training step, measured against the same model.

Every variant is a compiled Keras model fed the same random batch forever,
compiled with `steps_per_execution=block`, so one call of its train function runs
`block` steps in a compiled loop. One measurement is one `model.fit` call of
`warm + block` steps in which a callback timestamps the end of the warm-up
execution and of the timed one: the per-step time of `block` steps, without
tracing, without `fit`'s per-call setup, and without the Python work Keras does
between executions (with `steps_per_execution=1` that work is a large share of a
step and dilutes every ratio; the variants marked "[spe=1]" run one step per
execution, Keras's default, and show how much). All variants of one (model,
jit_compile) pool are measured interleaved, A, B, C, A, B, C, ..., and compared
by their medians; "none (twin)" is a second copy of "none", so
"none (twin) / none" shows the noise floor.

SparsityMonitor runs once per epoch, so its cost is its time per call relative to
an epoch of the digits MLP of part 3 (the same model, batch size, optimizer and
`steps_per_execution`; and, for comparison, with one step per execution).
"""

import keras
import numpy as np
import tensorflow as tf

import kreg
from bench import common, sparsity

CONFIGS = {
    "full": {
        "mlp": {"units": (512, 512), "inputs": 784, "classes": 10, "batch": 128},
        "cnn": {"input": (28, 28, 1), "filters": (16, 32), "dense": 128, "classes": 10,
                "batch": 64},
        "warm": 20,
        "block": 20,
        "rounds": 9,
        # (model, jit_compile, variants: None = all)
        "pools": (("mlp", False, None), ("cnn", False, None), ("mlp", True, None),
                  ("cnn", True, None)),
        "monitor_epochs": 12,
        "monitor_calls": 20,
    },
    "quick": {
        "mlp": {"units": (32, 32), "inputs": 20, "classes": 4, "batch": 16},
        "cnn": {"input": (12, 12, 1), "filters": (2, 4), "dense": 8, "classes": 4, "batch": 16},
        "warm": 3,
        "block": 3,
        "rounds": 2,
        "pools": (("mlp", False, None),
                  ("cnn", True, ("none", "none (twin)", "kreg.GroupLasso",
                                 "kreg.GroupLasso [spe=1]"))),
        "monitor_epochs": 2,
        "monitor_calls": 2,
    },
}

STRENGTH = 1e-4

# name -> (regularizer factory or None, optimizer, wrap in kreg.Proximal, StrengthScheduler)
VARIANTS = {
    "none": (None, "adam", False, False),
    "none (twin)": (None, "adam", False, False),
    "keras.L1": (lambda: keras.regularizers.L1(STRENGTH), "adam", False, False),
    "kreg.L1": (lambda: kreg.L1(STRENGTH), "adam", False, False),
    "keras.L2": (lambda: keras.regularizers.L2(STRENGTH), "adam", False, False),
    "kreg.L2": (lambda: kreg.L2(STRENGTH), "adam", False, False),
    "keras.L1L2": (lambda: keras.regularizers.L1L2(STRENGTH, STRENGTH), "adam", False, False),
    "kreg.ElasticNet": (lambda: kreg.ElasticNet(2 * STRENGTH, 0.5), "adam", False, False),
    "kreg.GroupLasso": (lambda: kreg.GroupLasso(STRENGTH, "units"), "adam", False, False),
    "kreg.SparseGroupLasso": (
        lambda: kreg.SparseGroupLasso(STRENGTH, 0.5, "units"), "adam", False, False),
    "kreg.GroupLasso+StrengthScheduler(step)": (
        lambda: kreg.GroupLasso(STRENGTH, "units"), "adam", False, True),
    # the same two with one step per execution (Keras's default): the scheduler's batch
    # callback then runs after every step
    "kreg.GroupLasso [spe=1]": (
        lambda: kreg.GroupLasso(STRENGTH, "units"), "adam", False, False),
    "kreg.GroupLasso+StrengthScheduler(step) [spe=1]": (
        lambda: kreg.GroupLasso(STRENGTH, "units"), "adam", False, True),
    "Proximal(Adam)+kreg.GroupLasso": (
        lambda: kreg.GroupLasso(STRENGTH, "units"), "adam", True, False),
    "Proximal(Adam)+kreg.L1": (lambda: kreg.L1(STRENGTH), "adam", True, False),
    "sgd": (None, "sgd", False, False),
    "Proximal(SGD)+kreg.GroupLasso": (
        lambda: kreg.GroupLasso(STRENGTH, "units"), "sgd", True, False),
}

# (numerator, denominator, goal: ratio <= goal; None: reported, no goal)
COMPARISONS = [
    ("kreg.L1", "keras.L1", 1.02),
    ("kreg.L2", "keras.L2", 1.02),
    ("kreg.ElasticNet", "keras.L1L2", 1.02),
    ("kreg.GroupLasso", "none", 1.10),
    ("kreg.SparseGroupLasso", "none", 1.10),
    ("Proximal(SGD)+kreg.GroupLasso", "sgd", 1.15),
    ("Proximal(Adam)+kreg.GroupLasso", "none", 1.15),
    ("kreg.GroupLasso+StrengthScheduler(step)", "kreg.GroupLasso", 1.02),
    ("kreg.GroupLasso+StrengthScheduler(step) [spe=1]", "kreg.GroupLasso [spe=1]", 1.02),
    # diagnostics: the noise floor, Keras's per-step Python work, and what the prox
    # costs without the group Newton iterations
    ("none (twin)", "none", None),
    ("kreg.GroupLasso [spe=1]", "kreg.GroupLasso", None),
    ("Proximal(Adam)+kreg.L1", "keras.L1", None),
]


def strength_schedule(step):
    """The strength at optimizer step `step`: a linear ramp to STRENGTH over 1000 steps."""
    from keras import ops

    step = ops.cast(step, "float32")
    return STRENGTH * ops.minimum(step / 1000.0, 1.0)


def build_mlp(spec, reg):
    layers = [keras.Input((spec["inputs"],))]
    for units in spec["units"]:
        layers.append(keras.layers.Dense(units, activation="relu", kernel_regularizer=reg))
    layers.append(keras.layers.Dense(spec["classes"]))
    return keras.Sequential(layers)


def build_cnn(spec, reg):
    layers = [keras.Input(spec["input"])]
    for filters in spec["filters"]:
        layers.append(keras.layers.Conv2D(filters, 3, activation="relu", kernel_regularizer=reg))
        layers.append(keras.layers.MaxPooling2D())
    layers.append(keras.layers.Flatten())
    layers.append(keras.layers.Dense(spec["dense"], activation="relu", kernel_regularizer=reg))
    layers.append(keras.layers.Dense(spec["classes"]))
    return keras.Sequential(layers)


def make_optimizer(name):
    if name == "adam":
        return keras.optimizers.Adam(1e-3)
    return keras.optimizers.SGD(1e-2, momentum=0.9)


class BlockTimer(keras.callbacks.Callback):
    """Timestamps the end of step `warm` and of step `warm + block` of one fit call.

    With `steps_per_execution=k`, Keras calls `on_train_batch_end` once per execution
    with the index of its last step, so `warm` and `block` are multiples of k. It
    hands batch callbacks logs converted to Python numbers, so the execution has
    finished (also on a GPU) when `on_train_batch_end` runs.
    """

    def __init__(self, warm, block):
        super().__init__()
        self.warm = warm
        self.block = block
        self.start = None
        self.stop = None

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.warm - 1:
            self.start = common.now()
        elif batch == self.warm + self.block - 1:
            self.stop = common.now()

    def per_step(self):
        return (self.stop - self.start) / self.block


def _variant(kind, spec, cfg, name, jit, dataset):
    """Builds, compiles and warms up one variant; returns its measuring callable."""
    reg_factory, opt_name, proximal, scheduled = VARIANTS[name]
    keras.utils.set_random_seed(0)
    reg = reg_factory() if reg_factory else None
    model = (build_mlp if kind == "mlp" else build_cnn)(spec, reg)
    optimizer = make_optimizer(opt_name)
    if proximal:
        optimizer = kreg.Proximal(optimizer)
    callbacks = []
    if scheduled:
        callbacks.append(
            kreg.callbacks.StrengthScheduler(strength_schedule, regularizers=[reg], update="step")
        )
    per_step = name.endswith("[spe=1]")
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
        steps_per_execution=1 if per_step else cfg["block"],
    )
    steps = cfg["warm"] + cfg["block"]
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False,
              callbacks=list(callbacks))

    def measure():
        timer = BlockTimer(cfg["warm"], cfg["block"])
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False,
                  callbacks=[timer, *callbacks])
        return timer.per_step()

    return model, measure


def _pool(kind, cfg, jit, names):
    spec = cfg[kind]
    rng = np.random.default_rng(0)
    shape = (spec["inputs"],) if kind == "mlp" else spec["input"]
    x = rng.standard_normal((spec["batch"], *shape)).astype("float32")
    y = rng.integers(0, spec["classes"], spec["batch"]).astype("int32")
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    measures, skipped, params = {}, {}, None
    start = common.now()
    for name in VARIANTS:
        if names is not None and name not in names:
            skipped[name] = "not measured: not in this run's variant list (--quick)"
            continue
        model, measures[name] = _variant(kind, spec, cfg, name, jit, dataset)
        params = model.count_params()
    built = common.now()
    samples = common.interleaved(measures, cfg["rounds"])
    common.log(f"  overhead {kind} jit={jit}: {len(measures)} variants built in "
               f"{built - start:.0f} s, {cfg['rounds']} rounds of {cfg['block']} steps in "
               f"{common.now() - built:.0f} s")
    comparisons = []
    for num, den, goal in COMPARISONS:
        if num in samples and den in samples:
            r = common.ratio(samples, num, den)
            r.update(goal=goal, met=None if goal is None else bool(r["ratio"] <= goal))
        else:
            r = {"numerator": num, "denominator": den, "goal": goal,
                 "not_measured": skipped.get(num) or skipped.get(den)}
        comparisons.append(r)
    return {
        "model": kind,
        "jit_compile": jit,
        "params": params,
        "step_seconds": {name: common.summarize(s) for name, s in samples.items()},
        "samples": samples,
        "skipped": skipped,
        "comparisons": comparisons,
    }


class _EpochProbe(keras.callbacks.Callback):
    """Times each epoch of a fit, then times `calls` direct calls of the monitor after it."""

    def __init__(self, monitor, calls):
        super().__init__()
        self.monitor = monitor
        self.calls = calls
        self.epoch_seconds = []
        self.call_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = common.now()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(common.now() - self._start)
        start = common.now()
        for _ in range(self.calls):
            self.monitor.on_epoch_end(epoch, logs={})
        self.call_seconds.append((common.now() - start) / self.calls)


def _monitor_once(data, scfg, dcfg, cfg, steps_per_execution):
    keras.utils.set_random_seed(0)
    reg = kreg.GroupLasso(dcfg["group_grid"]["adam"][0], "units")
    model = sparsity.build(data, dcfg["hidden"], reg)
    sparsity.compile_model(model, "adam", True, steps_per_execution)
    monitor = kreg.callbacks.SparsityMonitor()
    monitor.set_model(model)
    monitor.on_train_begin()
    probe = _EpochProbe(monitor, cfg["monitor_calls"])
    model.fit(sparsity.train_dataset(data, scfg["batch"]), verbose=0, shuffle=False,
              epochs=cfg["monitor_epochs"], callbacks=[probe])
    # the first epoch includes tracing; it is left out of both medians
    epoch = common.summarize(probe.epoch_seconds[1:] or probe.epoch_seconds)
    call = common.summarize(probe.call_seconds[1:] or probe.call_seconds)
    value = call["median"] / epoch["median"]
    return {
        "model": f"digits MLP 64-{'-'.join(map(str, dcfg['hidden']))}-10, batch "
                 f"{scfg['batch']}, steps_per_execution {steps_per_execution}, "
                 "Proximal(Adam) + GroupLasso(units)",
        "steps_per_execution": steps_per_execution,
        "epoch_seconds": epoch,
        "call_seconds": call,
        "ratio": value,
        "goal": 0.02,
        "met": bool(value <= 0.02),
    }


def _monitor(quick):
    """SparsityMonitor's time per call relative to one epoch of the digits MLP of part 3.

    Measured with part 3's `steps_per_execution` (the goal is judged on it) and
    with 1 (Keras's default, a longer epoch).
    """
    cfg = CONFIGS["quick" if quick else "full"]
    scfg = sparsity.CONFIGS["quick" if quick else "full"]
    dcfg = scfg["datasets"]["digits"]
    data = sparsity.load("digits", seed=0)
    main = _monitor_once(data, scfg, dcfg, cfg, scfg["steps_per_execution"])
    main["steps_per_execution_1"] = _monitor_once(data, scfg, dcfg, cfg, 1)
    return main


def run(quick):
    cfg = CONFIGS["quick" if quick else "full"]
    monitor = _monitor(quick)
    pools = [_pool(kind, cfg, jit, names) for kind, jit, names in cfg["pools"]]
    return {
        "config": {
            "warm_steps": cfg["warm"],
            "block_steps": cfg["block"],
            "rounds": cfg["rounds"],
            "strength": STRENGTH,
            "mlp": cfg["mlp"],
            "cnn": cfg["cnn"],
            "regularized": "the kernels of every layer but the output layer",
            "optimizers": "Adam(1e-3) unless the name says SGD: SGD(1e-2, momentum=0.9)",
        },
        "pools": pools,
        "sparsity_monitor": monitor,
    }
