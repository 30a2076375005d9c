"""How each Keras layer takes part in `kreg.compact`: one rule per layer kind.

A rule sees one call of a layer (its input and output tensors) and tells the
analysis in `kreg.compaction`:

* `connect`: which channels (entries of the last axis) of its inputs and outputs
  are the same channel, so that they are kept or removed together (a BatchNorm,
  an activation, an `Add`); which must be kept (a boundary's); and which input
  channels it reads through weights, and whether a constant there could be
  folded into its bias;
* `constants`: which output channels are constant (the same value for every
  sample and position), and their values, given its inputs' constants;
* `apply`: its weights and config once some channels are removed, with the
  constants of removed input channels folded into its bias.

Every "is this weight zero" question goes through `kreg._math.nonzero`, kreg's
one dead rule (a weight is zero when `|w| <= tolerance`; NaN never is).
A layer without a rule is a `Boundary`: the channels it reads and writes are
kept, and the report says why.
"""

import keras
import numpy as np

from kreg import _math

# Activations that act on each entry alone (a constant stays a constant, and
# removing one channel leaves the others unchanged).
_ELEMENTWISE = {
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid",
    "hard_sigmoid", "tanh", "softplus", "softsign", "silu", "swish", "hard_silu",
    "hard_swish", "exponential", "mish", "celu", "log_sigmoid", "tanh_shrink",
    "hard_tanh", "squareplus", "sparse_plus", "soft_shrink", "hard_shrink", "threshold",
}


def elementwise(activation):
    """True when `activation` (a function or name) acts on each entry on its own."""
    if activation is None:
        return True
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    if name not in _ELEMENTWISE:
        return False
    try:  # a custom function that happens to share a built-in's name is not trusted
        return isinstance(activation, str) or keras.activations.get(name) is activation
    except (ValueError, TypeError):
        return False


def nonzero(w, tolerance):
    """NumPy boolean of `w`'s shape: kreg's dead rule (`not |w| <= tolerance`)."""
    return np.asarray(keras.ops.convert_to_numpy(_math.nonzero(np.asarray(w), tolerance)))


def _apply_activation(activation, values):
    if activation is None or not len(values):
        return np.asarray(values, "float64")
    out = activation(keras.ops.convert_to_tensor(np.asarray(values, "float32")[None]))
    return np.asarray(keras.ops.convert_to_numpy(out), "float64")[0]


def _last_axis(axis, rank):
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return len(axis) == 1 and axis[0] % rank == rank - 1


def _weight_name(variable):
    return variable.path.rsplit("/", 1)[-1]


class Rule:
    """Base: a layer call with one input and one output tensor."""

    reason = None  # why a Boundary is one

    def __init__(self, layer, inputs, outputs, tolerance):
        self.layer = layer
        self.inputs = inputs  # graph tensors (see compaction._Tensor)
        self.outputs = outputs
        self.tolerance = tolerance
        self.weights = {_weight_name(v): np.array(keras.ops.convert_to_numpy(v))
                        for v in layer.weights}
        self.config = layer.get_config()

    @property
    def x(self):
        return self.inputs[0]

    @property
    def y(self):
        return self.outputs[0]

    def connect(self, graph):
        raise NotImplementedError

    def constants(self, graph):
        graph.set_constants(self.y, np.zeros(self.y.size, bool), np.zeros(self.y.size))

    def apply(self, graph):
        pass

    def units(self):
        """Output channels kept (for `kreg.unit_counts`), or None for a layer without units."""
        return None

    def new_weights(self, layer):
        return [self.weights[_weight_name(v)] for v in layer.weights]


class Boundary(Rule):
    """Any layer compact does not look inside: what it reads and writes is kept."""

    def __init__(self, layer, inputs, outputs, tolerance, reason):
        self.layer = layer
        self.inputs = inputs
        self.outputs = outputs
        self.tolerance = tolerance
        self.reason = reason

    def connect(self, graph):
        for t in self.inputs + self.outputs:
            graph.require(t)

    def constants(self, graph):
        for t in self.outputs:
            graph.set_constants(t, np.zeros(t.size, bool), np.zeros(t.size))

    def new_weights(self, layer):
        return self.layer.get_weights()


class PassThrough(Rule):
    """Channel i of the output is channel i of the input (activations, dropout, pooling)."""

    def connect(self, graph):
        graph.tie(self.x.slots, self.y.slots)

    def transform(self, values):
        return values

    def constants(self, graph):
        const, value = graph.constants(self.x)
        value = np.where(const, value, 0.0)
        graph.set_constants(self.y, const, np.where(const, self.transform(value), 0.0))


class ActivationLayer(PassThrough):
    def transform(self, values):
        return _apply_activation(self.layer, values)


class Reshape(PassThrough):
    def apply(self, graph):
        target = list(self.config["target_shape"])
        target[-1] = int(graph.keep(self.y).sum())
        self.config["target_shape"] = tuple(target)


class Flatten(Rule):
    """Flattened feature f of a `(..., C)` input is channel `f % C`."""

    def connect(self, graph):
        positions = self.y.size // max(self.x.size, 1)
        graph.tie(np.tile(self.x.slots, positions), self.y.slots)

    def constants(self, graph):
        const, value = graph.constants(self.x)
        positions = self.y.size // max(self.x.size, 1)
        graph.set_constants(self.y, np.tile(const, positions), np.tile(value, positions))


class BatchNorm(Rule):
    """Per-channel affine map at inference; a zero scale makes the channel the constant beta."""

    def _gamma(self):
        if "gamma" in self.weights:
            return self.weights["gamma"].astype("float64")
        return np.ones(self.x.size)

    def connect(self, graph):
        graph.tie(self.x.slots, self.y.slots)

    def constants(self, graph):
        const, value = graph.constants(self.x)
        gamma = self._gamma()
        dead = ~nonzero(gamma, self.tolerance) if "gamma" in self.weights else np.zeros(
            len(gamma), bool)
        beta = self.weights.get("beta", np.zeros(len(gamma))).astype("float64")
        mean = self.weights["moving_mean"].astype("float64")
        var = self.weights["moving_variance"].astype("float64")
        eps = float(self.config["epsilon"])
        out = np.where(dead, 0.0, gamma) * (value - mean) / np.sqrt(var + eps) + beta
        out_const = const | dead
        graph.set_constants(self.y, out_const, np.where(out_const, np.where(dead, beta, out), 0.0))

    def apply(self, graph):
        keep = graph.keep(self.y)
        self.weights = {k: v[keep] for k, v in self.weights.items()}

    def units(self):
        return self.y.size


class Merge(Rule):
    """Add, Subtract, Multiply, Average, Maximum, Minimum: channel i of every input is one."""

    def connect(self, graph):
        for t in self.inputs:
            graph.tie(t.slots, self.y.slots)

    def constants(self, graph):
        pairs = [graph.constants(t) for t in self.inputs]
        const = np.logical_and.reduce([c for c, _ in pairs])
        values = np.stack([np.where(c, v, 0.0) for c, v in pairs])
        kind = type(self.layer).__name__
        if kind == "Add":
            value = values.sum(0)
        elif kind == "Subtract":
            value = values[0] - values[1]
        elif kind == "Average":
            value = values.mean(0)
        elif kind == "Maximum":
            value = values.max(0)
        elif kind == "Minimum":
            value = values.min(0)
        else:  # Multiply: a constant 0 in any input makes the product 0
            value = values.prod(0)
            zero = np.logical_or.reduce([c & (v == 0) for c, v in pairs])
            const = const | zero
            value = np.where(zero, 0.0, value)
        graph.set_constants(self.y, const, np.where(const, value, 0.0))


class Concatenate(Rule):
    def connect(self, graph):
        graph.tie(np.concatenate([t.slots for t in self.inputs]), self.y.slots)

    def constants(self, graph):
        pairs = [graph.constants(t) for t in self.inputs]
        graph.set_constants(self.y, np.concatenate([c for c, _ in pairs]),
                            np.concatenate([v for _, v in pairs]))
