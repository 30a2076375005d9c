"""`kreg.compact`: a model without the units, filters and channels that cannot matter.

Structured sparsity (group lasso on units, L1 on BatchNorm scales, trained with
`kreg.Proximal`) leaves whole units exactly zero, but the model keeps its shapes.
`compact(model)` returns a new, smaller `keras.Model` with the same inputs and
outputs that predicts the same:

* a channel (unit, filter, feature) is removed when nothing downstream reads it
  (all its outgoing weights are zero, by kreg's one dead rule `|w| <= tolerance`),
  or when it is a constant (all its incoming weights zero, or a zero BatchNorm
  scale) that every reader can fold exactly into its bias: Dense, EinsumDense, a
  1x1 or valid-padded convolution, BatchNorm, or any reader when the constant is
  0. A constant under `"same"` padding is kept (the zero padding around it would
  no longer match) and the report says so;
* channels joined by an `Add`, `Multiply`, `Concatenate`, a BatchNorm or an
  activation are one channel: removed only where removable everywhere (a unit
  tied across a residual `Add` must be dead in every branch);
* removing channels can make more constants or unread channels; compact repeats
  until nothing changes.

Layers kreg knows: Dense, EinsumDense (2-D), Conv1D/2D/3D, their transposes,
SeparableConv, DepthwiseConv, BatchNormalization, Embedding, activations,
dropout and noise layers, local and global pooling, Flatten, Reshape (keeping the
channel axis), Add, Subtract, Multiply, Average, Maximum, Minimum and
Concatenate. LayerNormalization (and other layers that mix channels), nested
models, custom layers and anything else are boundaries: every channel they read
or write is kept, and `compact(..., report=True)` says why.
"""

import keras
import numpy as np

from kreg import _compact_rules, _compact_table, _keras

__all__ = ["CompactionReport", "compact", "unit_counts"]


class _Tensor:
    """One tensor of the graph: its shape (last axis: channels) and its slots."""

    def __init__(self, keras_tensor):
        shape = tuple(keras_tensor.shape)
        self.opaque = len(shape) < 2 or shape[-1] is None
        self.shape = shape
        self.size = 0 if self.opaque else int(shape[-1])
        self.slots = np.zeros(0, "int64")


class _Graph:
    """The analysis state of one round: slots, ties, readers and constants."""

    def __init__(self, tensors):
        self.tensors = tensors
        start = 0
        for t in tensors:
            t.slots = np.arange(start, start + t.size)
            start += t.size
        self.n = start
        self.edges = []
        self.required = np.zeros(self.n, bool)
        self.uses = []  # (slots read, foldable, rule)
        self.const = np.zeros(self.n, bool)
        self.value = np.zeros(self.n)
        self.removed = np.zeros(self.n, bool)

    # rules call these
    def tie(self, a, b):
        self.edges.append((np.asarray(a), np.asarray(b)))

    def require(self, tensor):
        self.required[tensor.slots] = True

    def use(self, tensor, used, foldable, rule):
        self.uses.append((tensor.slots[used], foldable, rule))

    def constants(self, tensor):
        return self.const[tensor.slots], self.value[tensor.slots]

    def set_constants(self, tensor, const, value):
        self.const[tensor.slots] = const
        self.value[tensor.slots] = value

    def keep(self, tensor):
        return ~self.removed[tensor.slots]

    def labels(self):
        """Connected components of the ties: one label per slot (vectorized union-find)."""
        labels = np.arange(self.n)
        if not self.edges:
            return labels
        a = np.concatenate([e[0] for e in self.edges])
        b = np.concatenate([e[1] for e in self.edges])
        while True:
            low = np.minimum(labels[a], labels[b])
            before = labels.copy()
            np.minimum.at(labels, a, low)
            np.minimum.at(labels, b, low)
            labels = labels[labels]
            if np.array_equal(labels, before):
                return labels


class CompactionReport:
    """What `compact` did: units kept per layer, boundaries and kept constants.

    Attributes:
        units: `{layer name: (kept, total)}` for every layer with units or channels.
        boundaries: `{layer name: reason}` for the layers compact does not look inside.
        kept_constants: `{layer name: count}` of constant channels a reader could not
            fold (a constant read by a "same"-padded convolution), so they stay.
        rounds: how many removal rounds ran until nothing changed.
    """

    def __init__(self, units, boundaries, kept_constants, rounds):
        self.units = units
        self.boundaries = boundaries
        self.kept_constants = kept_constants
        self.rounds = rounds

    def __str__(self):
        lines = [f"{'layer':<24} {'kept':>12}"]
        for name, (kept, total) in self.units.items():
            lines.append(f"{name:<24} {f'{kept}/{total}':>12}")
        for name, count in self.kept_constants.items():
            lines.append(f"kept {count} constant channel(s) read by '{name}': folding them "
                         "would change the prediction (e.g. 'same' padding)")
        for name, reason in self.boundaries.items():
            lines.append(f"boundary '{name}': {reason}; its channels are kept")
        return "\n".join(lines)

    __repr__ = __str__


def _check(model, tolerance):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Invalid value for argument `model`: expected a keras.Model (Sequential or "
            f"functional). Received: model of type {type(model).__name__}")
    if not isinstance(tolerance, (int, float, np.floating, np.integer)) or isinstance(
            tolerance, bool) or not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(
            "Invalid value for argument `tolerance`: expected a non-negative finite number. "
            f"Received: tolerance={tolerance!r}")
    return float(tolerance)


def _plan(model, tolerance):
    """Runs the analysis to its fixed point; returns (rules, tensors, inputs, report)."""
    nodes, inputs, outputs = _keras.graph_nodes(model)
    tensors = {}

    def tensor(kt):
        if id(kt) not in tensors:
            tensors[id(kt)] = _Tensor(kt)
        return tensors[id(kt)]

    seen = {}
    for layer, _, _ in nodes:
        seen[id(layer)] = seen.get(id(layer), 0) + 1
        if seen[id(layer)] > 1:
            raise ValueError(
                f"Invalid value for argument `model`: expected every layer to be called once. "
                f"Received: model '{model.name}' calls layer '{layer.name}' "
                f"({type(layer).__name__}) more than once (a shared layer); compact cannot "
                "remove different channels from each call")
    rules = [_compact_table.rule_for(layer, [tensor(t) for t in ins], [tensor(t) for t in outs],
                                     tolerance) for layer, ins, outs in nodes]
    model_inputs = [tensor(t) for t in inputs]
    model_outputs = [tensor(t) for t in outputs]
    all_tensors = list(tensors.values())
    kept_constants = {}
    rounds = 0
    while True:
        graph = _Graph(all_tensors)
        for t in model_inputs + model_outputs:
            graph.require(t)
        for rule in rules:
            rule.connect(graph)
        for rule in rules:
            rule.constants(graph)
        labels = graph.labels()
        removable = np.ones(graph.n, bool)
        removable[labels[graph.required]] = False
        kept_constants = {}
        for slots, foldable, rule in graph.uses:
            const, value = graph.const[slots], graph.value[slots]
            removable[labels[slots[~(const & (foldable | (value == 0)))]]] = False
            stuck = const & ~foldable & (value != 0)
            if stuck.any():
                kept_constants[rule.layer.name] = int(stuck.sum())
        removed = removable[labels]
        # never empty a tensor: keep the channel of its first slot
        while True:
            changed = False
            for t in all_tensors:
                if t.size and removed[t.slots].all():
                    removed[labels == labels[t.slots[0]]] = False
                    changed = True
            if not changed:
                break
        if not removed.any():
            break
        rounds += 1
        graph.removed = removed
        for rule in rules:
            rule.apply(graph)
        for t in all_tensors:
            keep = graph.keep(t)
            t.size = int(keep.sum())
            if not t.opaque:
                t.shape = t.shape[:-1] + (t.size,)
    boundaries = {r.layer.name: r.reason for r in rules
                  if isinstance(r, _compact_rules.Boundary)}
    return rules, kept_constants, boundaries, rounds


def _totals(model):
    totals = {}
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if isinstance(shape, tuple) and len(shape) >= 2 and shape[-1] is not None:
            totals[layer.name] = int(shape[-1])
    return totals


def unit_counts(model, tolerance=0.0):
    """`{layer name: (kept, total)}`: the units/channels `compact` keeps in each layer.

    Counts every layer with units or channels that compact can shrink (Dense,
    EinsumDense, convolutions, BatchNormalization, Embedding), by the same rule and
    the same analysis as `compact` (see `kreg.compaction`): a unit is kept unless
    compact removes it.

    Args:
        model: a built Sequential or functional `keras.Model`.
        tolerance: a weight with `|w| <= tolerance` counts as zero (kreg's dead rule).
    """
    return _analyse(model, tolerance)[1].units


def _analyse(model, tolerance):
    """The rules at the fixed point and the `CompactionReport`."""
    tolerance = _check(model, tolerance)
    rules, kept_constants, boundaries, rounds = _plan(model, tolerance)
    totals = _totals(model)
    units = {}
    for rule in rules:
        kept = rule.units()
        if kept is not None and rule.layer.name in totals:
            units[rule.layer.name] = (kept, totals[rule.layer.name])
    return rules, CompactionReport(units, boundaries, kept_constants, rounds)


def compact(model, tolerance=0.0, *, report=False):
    """A new `keras.Model` without the units, filters and channels that cannot matter.

    `model` is left untouched. The new model has the same inputs and outputs, the
    same layer names, configs (fewer units) and regularizers, and predicts the same
    (exactly up to float32 round-off at `tolerance=0`; at `tolerance > 0` the weights
    at most `tolerance` in magnitude of removed units are dropped). See
    `kreg.compaction` for what is removed and which layers are boundaries.

    Args:
        model: a built Sequential or functional `keras.Model` (each layer called once).
        tolerance: a weight with `|w| <= tolerance` counts as zero (kreg's dead rule).
        report: also return a `CompactionReport` (units kept per layer, boundaries
            and their reasons, constants that had to stay).

    Returns:
        The compact model, or `(model, report)` with `report=True`.
    """
    rules, info = _analyse(model, tolerance)
    small = _rebuild(model, rules)
    return (small, info) if report else small


def _rebuild(model, rules):
    by_name = {rule.layer.name: rule for rule in rules}

    def clone(layer):
        rule = by_name.get(layer.name)
        config = layer.get_config() if rule is None or isinstance(
            rule, _compact_rules.Boundary) else rule.config
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer)
        try:
            return type(layer).from_config(config)
        except Exception as error:  # a custom layer without a working get_config
            raise ValueError(
                f"kreg.compact could not re-create layer '{layer.name}' "
                f"({type(layer).__name__}) from its config (compact re-creates every layer "
                f"from its config, as keras.models.clone_model does): {error}"
            ) from error

    small = keras.models.clone_model(model, clone_function=clone)
    for rule in rules:
        new_layer = small.get_layer(rule.layer.name)
        weights = rule.new_weights(new_layer)
        new_layer.set_weights(weights)
    return small
