"""Part 1: what kreg adds to a training step, measured against the same model.

Every variant is a compiled Keras model fed the same random batch at every step
(NumPy arrays holding that batch `warm + block` times, read in order in batches of
`batch` for one epoch: a feed every Keras backend takes), compiled with
`steps_per_execution=block`, so one call of its train function runs
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
That part feeds part 3's `tf.data` pipeline and runs with `python -m bench` on
TensorFlow only.

The per-step pools also run on JAX and PyTorch (BENCHMARKS.md section 9), one
backend per process, with the configuration "backends" (or "quick"):

    KERAS_BACKEND=jax python -m bench.overhead      # -> bench/results/overhead_jax.json
    KERAS_BACKEND=torch python -m bench.overhead    # -> bench/results/overhead_torch.json
    python -m bench.overhead --report               # re-render section 9 from the JSON

Backend differences, each reported as "not measured: <reason>" rather than skipped
silently: PyTorch's Keras trainer runs one step per execution, so every variant
runs with `steps_per_execution=1` there (`kreg._backend.steps_per_execution`) and
the "[spe=1]" variants, which would be identical copies, are not run;
`jit_compile=True` on PyTorch means `torch.compile`, and `jit_compile=False` on
JAX an un-jitted, op-by-op train step, so those pools are not run either; on JAX
`StrengthScheduler(update="step")` needs `steps_per_execution=1` (it raises at the
start of `fit` otherwise, by design), so there only its "[spe=1]" variant runs.
"""

import argparse
import os
import sys

import keras
import numpy as np

import kreg
from kreg import _backend
from bench import common

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BEGIN = ("<!-- BEGIN OVERHEAD BACKENDS: python -m bench.overhead rewrites everything down to "
         "END OVERHEAD BACKENDS -->")
END = "<!-- END OVERHEAD BACKENDS -->"
BACKENDS = ("jax", "torch")  # the backends of section 9 (TensorFlow: section 1)

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
    # `python -m bench.overhead` on JAX and PyTorch: the models of "full", fewer rounds,
    # and the pools each backend compiles by default (the others are reported as not
    # measured, with the reason, by `_pool_skip_reason`)
    "backends": {
        "mlp": {"units": (512, 512), "inputs": 784, "classes": 10, "batch": 128},
        "cnn": {"input": (28, 28, 1), "filters": (16, 32), "dense": 128, "classes": 10,
                "batch": 64},
        "warm": 20,
        "block": 20,
        "rounds": 7,
        "pools": (("mlp", True, None), ("cnn", True, None), ("mlp", False, None),
                  ("cnn", False, None)),
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
        if self.start is None or self.stop is None:
            raise RuntimeError(
                f"BlockTimer saw no batch end at step {self.warm} or {self.warm + self.block} "
                "(warm and block must be multiples of steps_per_execution, and the fit "
                "call must run warm + block steps)")
        return (self.stop - self.start) / self.block


def _steps_per_execution(name, cfg):
    """The variant's `steps_per_execution`: 1 for "[spe=1]", else `block` (1 on PyTorch)."""
    return 1 if name.endswith("[spe=1]") else _backend.steps_per_execution(cfg["block"])


def _variant_skip_reason(name, cfg):
    """Why variant `name` cannot run on this backend, or None."""
    backend = _backend.name()
    if backend == "torch" and name.endswith("[spe=1]"):
        return ("not measured: on PyTorch every variant runs one step per execution "
                "(Keras's PyTorch trainer has no steps_per_execution > 1), so this would "
                "be the variant without [spe=1] again")
    scheduled = VARIANTS[name][3]
    if backend == "jax" and scheduled and _steps_per_execution(name, cfg) != 1:
        return ('not measured: on JAX StrengthScheduler(update="step") needs '
                "steps_per_execution=1 (it raises at the start of fit otherwise, by design: "
                "it sets the strength before each execution); its [spe=1] variant is measured")
    return None


def _pool_skip_reason(jit):
    """Why a pool with this `jit_compile` is not run on this backend, or None."""
    backend = _backend.name()
    if backend == "torch" and jit:
        return ("not measured: jit_compile=True on PyTorch means torch.compile (Inductor), "
                "not Keras's PyTorch default; on this 2-core CPU the first fit of a "
                "784-512-10 MLP under Proximal(Adam)+GroupLasso spent 55 s compiling, "
                "about 15 minutes for a pool of 15 variants")
    if backend == "jax" and not jit:
        return ("not measured: jit_compile=False on JAX runs the train step un-jitted, op by "
                "op; JAX's default (jit_compile=\"auto\") compiles it")
    return None


def _variant(kind, spec, cfg, name, jit, data):
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
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
        steps_per_execution=_steps_per_execution(name, cfg),
    )
    x, y = data
    model.fit(x, y, batch_size=spec["batch"], epochs=1, verbose=0, shuffle=False,
              callbacks=list(callbacks))

    def measure():
        timer = BlockTimer(cfg["warm"], cfg["block"])
        model.fit(x, y, batch_size=spec["batch"], epochs=1, verbose=0, shuffle=False,
                  callbacks=[timer, *callbacks])
        return timer.per_step()

    return model, measure


def _pool(kind, cfg, jit, names):
    spec = cfg[kind]
    rng = np.random.default_rng(0)
    shape = (spec["inputs"],) if kind == "mlp" else spec["input"]
    x = rng.standard_normal((spec["batch"], *shape)).astype("float32")
    y = rng.integers(0, spec["classes"], spec["batch"]).astype("int32")
    # the same batch at every step: `warm + block` copies read in order (shuffle=False),
    # one epoch per fit call, so BlockTimer sees exactly the steps it times
    copies = cfg["warm"] + cfg["block"]
    data = (np.tile(x, (copies,) + (1,) * (x.ndim - 1)), np.tile(y, copies))
    measures, skipped, params = {}, {}, None
    start = common.now()
    for name in VARIANTS:
        if names is not None and name not in names:
            skipped[name] = "not measured: not in this run's variant list (--quick)"
            continue
        reason = _variant_skip_reason(name, cfg)
        if reason:
            skipped[name] = reason
            continue
        model, measures[name] = _variant(kind, spec, cfg, name, jit, data)
        params = model.count_params()
    built = common.now()
    samples = common.interleaved(measures, cfg["rounds"])
    common.log(f"  overhead {_backend.name()} {kind} jit={jit}: {len(measures)} variants built in "
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
        "steps_per_execution": _backend.steps_per_execution(cfg["block"]),
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
    from bench import sparsity  # TensorFlow (tf.data): `python -m bench` only

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
    from bench import sparsity  # TensorFlow (tf.data): `python -m bench` only

    cfg = CONFIGS["quick" if quick else "full"]
    scfg = sparsity.CONFIGS["quick" if quick else "full"]
    dcfg = scfg["datasets"]["digits"]
    data = sparsity.load("digits", seed=0)
    main = _monitor_once(data, scfg, dcfg, cfg, scfg["steps_per_execution"])
    main["steps_per_execution_1"] = _monitor_once(data, scfg, dcfg, cfg, 1)
    return main


def _pools(cfg):
    pools = []
    for kind, jit, names in cfg["pools"]:
        reason = _pool_skip_reason(jit)
        if reason:
            common.log(f"  overhead {_backend.name()} {kind} jit={jit}: {reason}")
            pools.append({"model": kind, "jit_compile": jit, "not_measured": reason})
        else:
            pools.append(_pool(kind, cfg, jit, names))
    return pools


def _config(cfg):
    return {
        "warm_steps": cfg["warm"],
        "block_steps": cfg["block"],
        "rounds": cfg["rounds"],
        "strength": STRENGTH,
        "mlp": cfg["mlp"],
        "cnn": cfg["cnn"],
        "regularized": "the kernels of every layer but the output layer",
        "optimizers": "Adam(1e-3) unless the name says SGD: SGD(1e-2, momentum=0.9)",
    }


def run(quick):
    """`python -m bench` (TensorFlow): the per-step pools and the SparsityMonitor part."""
    cfg = CONFIGS["quick" if quick else "full"]
    monitor = _monitor(quick)
    pools = _pools(cfg)
    return {"config": _config(cfg), "pools": pools, "sparsity_monitor": monitor}


def run_backend(config):
    """`python -m bench.overhead`: the per-step pools on the backend `KERAS_BACKEND` names."""
    cfg = CONFIGS[config]
    backend = _backend.name()
    notes = []
    if backend == "torch":
        notes.append("every variant runs one step per execution (Keras's PyTorch trainer "
                     "requires steps_per_execution=1), so per-step times include Keras's "
                     "Python work between steps")
    return {"backend": backend, "config_name": config,
            "config": {**_config(cfg), "steps_per_execution": _backend.steps_per_execution(
                cfg["block"])},
            "notes": notes, "pools": _pools(cfg)}


def device_name():
    """The device the Keras backend computes on, in words ("CPU" or "GPU <name>")."""
    backend = _backend.name()
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return "CPU" if d.platform == "cpu" else f"GPU {d.device_kind}"
    if backend == "torch":
        import torch

        return f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU {gpus[0].name}" if gpus else "CPU"


# -- section 9 of BENCHMARKS.md ----------------------------------------------------------

BACKEND_LABELS = {"jax": "JAX", "torch": "PyTorch", "tensorflow": "TensorFlow"}


def _label(res, pool):
    return (f"{BACKEND_LABELS[res['backend']]} {pool['model'].upper()} jit "
            f"{'on' if pool['jit_compile'] else 'off'}")


def _cell_ratio(c):
    return (f"{c['ratio']:.3f} [{c['per_round_q1']:.3f}–{c['per_round_q3']:.3f}]"
            if "ratio" in c else "not measured")


def render(results):
    """Section 9 from {backend: result of run_backend (with "meta")}, in BACKENDS order."""
    from bench.report import _overhead_status

    results = [results[b] for b in BACKENDS if b in results]
    cols = [(r, p) for r in results for p in r["pools"] if "not_measured" not in p]
    unmeasured = [(r, p) for r in results for p in r["pools"] if "not_measured" in p]
    cfg = results[0]["config"]
    metas = [r["meta"] for r in results]
    versions = "; ".join(
        f"{BACKEND_LABELS[r['backend']]} {r['meta'].get('backend_version')} "
        f"({r['meta']['device']}, {r['meta']['seconds']:.0f} s, {r['meta']['date']}, "
        f"git {r['meta']['git']})" for r in results)
    m = metas[0]
    lines = [BEGIN, "", "## 9. Proximal training and penalties per step on JAX and PyTorch "
             "(issue 13)", "",
             "Reproduce (one backend per process; `--report` re-renders this section from "
             "`bench/results/overhead_<backend>.json`):", "", "```bash"]
    # the canonical command (the recorded one, in the JSON's meta, may add --out/--markdown)
    lines += [f"KERAS_BACKEND={r['backend']} python -m bench.overhead"
              + ("" if r["config_name"] == "backends" else f" --config {r['config_name']}")
              for r in results]
    lines += ["```", "",
              f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
              f"{m['platform']}; no GPU was available. Keras {m['keras']}, NumPy "
              f"{m['numpy']}, Python {m['python']}, kreg {m['kreg']}. Backends: {versions}.",
              "",
              f"The method of section 1 (`bench/overhead.py`, configuration "
              f"\"{results[0]['config_name']}\"): random data, the same batch every step, fed "
              f"as NumPy arrays; "
              f"{cfg['rounds']} interleaved rounds, each a block of {cfg['block_steps']} steps "
              f"timed inside `fit` after a warm-up of {cfg['warm_steps']} steps. MLP "
              f"{cfg['mlp']['inputs']}-" + "-".join(map(str, cfg["mlp"]["units"]))
              + f"-{cfg['mlp']['classes']} (batch {cfg['mlp']['batch']}), CNN "
              f"conv{cfg['cnn']['filters'][0]}-pool-conv{cfg['cnn']['filters'][1]}-pool-"
              f"dense{cfg['cnn']['dense']} on {'x'.join(map(str, cfg['cnn']['input']))} "
              f"inputs (batch {cfg['cnn']['batch']}). Strength {cfg['strength']:g} on "
              f"{cfg['regularized']}; {cfg['optimizers']}. Steps per execution: "
              + ", ".join(f"{BACKEND_LABELS[r['backend']]} "
                          f"{r['config']['steps_per_execution']}" for r in results)
              + " (besides the `[spe=1]` variants).", ""]
    for r in results:
        for note in r["notes"]:
            lines.append(f"* {BACKEND_LABELS[r['backend']]}: {note}.")
    for r, p in unmeasured:
        lines.append(f"* {_label(r, p)}: not measured. Reason: "
                     f"{p['not_measured'].removeprefix('not measured: ')}.")
    lines += ["", "Median milliseconds per step (quartiles of the rounds in brackets):", "",
              "| variant | " + " | ".join(_label(r, p) for r, p in cols) + " |",
              "|---" * (len(cols) + 1) + "|"]
    for name in VARIANTS:
        cells = []
        for _, p in cols:
            s = p["step_seconds"].get(name)
            cells.append(f"{1e3 * s['median']:.2f} [{1e3 * s['q1']:.2f}–{1e3 * s['q3']:.2f}]"
                         if s else "not measured")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios of the medians (quartiles of the per-round ratios in brackets); "
              "status per backend over its measured cases:", "",
              "| comparison | goal | " + " | ".join(_label(r, p) for r, p in cols)
              + " | status |", "|---" * (len(cols) + 3) + "|"]
    for i, (num, den, goal) in enumerate(COMPARISONS):
        comps = [p["comparisons"][i] for _, p in cols]
        label = f"{num} / {den}"
        cells = " | ".join(_cell_ratio(c) for c in comps)
        if goal is None:
            lines.append(f"| {label} | (diagnostic) | {cells} | – |")
            continue
        statuses = []
        for r in results:
            cases = [c for (rr, _), c in zip(cols, comps) if rr is r and "ratio" in c]
            statuses.append(f"{BACKEND_LABELS[r['backend']]}: {_overhead_status(cases)}")
        lines.append(f"| {label} | <= {goal:.2f}x | {cells} | {'; '.join(statuses)} |")
    reasons = {}  # (backend, reason) -> variant names, in order
    for r, p in cols:
        for name, why in p["skipped"].items():
            names = reasons.setdefault((BACKEND_LABELS[r["backend"]], why), [])
            if name not in names:
                names.append(name)
    lines += [""]
    for (where, why), names in reasons.items():
        lines.append(f"* *Not measured* on {where}: {', '.join(names)}. Reason: "
                     f"{why.removeprefix('not measured: ')}.")
    for r, p in cols:  # the A/A pair says when a column's rounds were disturbed
        twin = next(c for c in p["comparisons"] if c["numerator"] == "none (twin)")
        if "ratio" in twin and (twin["per_round_q1"] < 0.9 or twin["per_round_q3"] > 1.1):
            lines.append(f"* **{_label(r, p)}: noisy.** The per-round ratios of the twin span "
                         f"{twin['per_round_q1']:.3f}–{twin['per_round_q3']:.3f} (beyond "
                         "±10%): other load on the machine hit some rounds, so this column's "
                         "ratios are not evidence either way.")
    lines += ["", "A ratio above its goal whose per-round quartiles still reach down to the goal "
              "is marked *within noise*. `none (twin) / none` compares two identical models: "
              "the noise floor. The TensorFlow numbers of the same comparisons are in section "
              "1; section 8 has the live strength's cost alone (kreg.L1 against keras.L1, "
              "SGD, batch 256) per backend.", "", END]
    return "\n".join(lines)


def _load_results(directory):
    found = {}
    for backend in BACKENDS:
        path = os.path.join(directory, f"overhead_{backend}.json")
        if os.path.exists(path):
            found[backend] = common.read_json(path)
    return found


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m bench.overhead",
        description="The per-step pools of part 1 on the backend KERAS_BACKEND names "
                    "(JAX or PyTorch; TensorFlow's are run by `python -m bench`), written to "
                    "bench/results/overhead_<backend>.json and BENCHMARKS.md section 9.")
    p.add_argument("--config", default="backends", choices=("backends", "quick", "full"),
                   help="sizes and rounds (default: backends; quick: a smoke run)")
    p.add_argument("--quick", action="store_true", help="same as --config quick")
    p.add_argument("--out", default=None, help="JSON path (default: "
                   "bench/results/overhead_<backend>.json; under bench/results/quick.tmp/ "
                   "unless --config backends)")
    p.add_argument("--markdown", default=None, help="BENCHMARKS.md to update (default: the "
                   "repository's with --config backends, else none: the section is printed)")
    p.add_argument("--report", action="store_true",
                   help="only re-render section 9 from the JSON in bench/results/")
    args = p.parse_args(argv)
    if args.quick:
        args.config = "quick"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results_dir = os.path.join(HERE, "results")
    committed = args.config == "backends" and args.out is None
    markdown = args.markdown or (os.path.join(ROOT, "BENCHMARKS.md") if committed else None)
    if not args.report:
        backend = _backend.name()
        if backend not in BACKENDS:
            raise SystemExit(
                f"python -m bench.overhead runs on JAX or PyTorch (KERAS_BACKEND=jax or torch); "
                f"this process has KERAS_BACKEND={backend}. TensorFlow's numbers are part 1 of "
                "`python -m bench --only overhead` (BENCHMARKS.md section 1).")
        out = args.out or os.path.join(
            results_dir, *(() if committed else ("quick.tmp",)), f"overhead_{backend}.json")
        start = common.now()
        result = run_backend(args.config)
        command = " ".join(["python -m bench.overhead", *argv])
        result = {"meta": {**common.machine_info(command, device_name()),
                           "seconds": common.now() - start}, **result}
        common.write_json(out, result)
        common.log(f"[bench.overhead] {backend}: {result['meta']['seconds']:.0f} s -> {out}")
        found = {**_load_results(os.path.dirname(out)), backend: result}
    else:
        found = _load_results(results_dir)
    if not found:
        raise SystemExit(f"no overhead_<backend>.json for {', '.join(BACKENDS)} found")
    text = render(found)
    print(text)
    if markdown:
        common.write_section(markdown, BEGIN, END, text)
        common.log(f"[bench.overhead] wrote {markdown}")


if __name__ == "__main__":
    main()
