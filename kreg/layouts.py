"""Which axes of a weight are a layer's units and which are its inputs.

A group penalty with `groups="units"` makes one group per unit or filter of the
layer (all the weights that feed it), `groups="inputs"` one group per input
feature or channel (all the weights that leave it). Where these live in a kernel
depends on the layer: `Dense` stores `(inputs, units)`, `Conv2DTranspose` stores
`(h, w, filters, channels)`, an `LSTM` kernel `(inputs, 4 * units)` holds the four
gates of a unit in four columns. A `Layout` says it once for a weight, and every
part of kreg (penalties, prox, `SparsityMonitor`, `kreg.plot`) reads groups from
it.

A layout is a `view` of the weight (a reshape: no copy, no transpose) and the
axes of that view that index the units and the inputs:

| layer (weight) | weight shape | view | units | inputs |
|---|---|---|---|---|
| Dense, SimpleRNN (kernels) | `(in, u)` | same | 1 | 0 |
| Conv1D/2D/3D, SeparableConv pointwise | `(*k, in, f)` | same | -1 | -2 |
| Conv*DTranspose | `(*k, f, in)` | same | -2 | -1 |
| DepthwiseConv, SeparableConv depthwise | `(*k, c, m)` | same | (-2, -1) | -2 |
| LSTM/GRU (kernel, recurrent kernel) | `(in, g * u)` | `(in, g, u)` | 2 | 0 |
| ConvLSTM (kernels) | `(*k, in, 4 * f)` | `(*k, in, 4, f)` | -1 | -3 |
| EinsumDense, MultiHeadAttention | from the equation | same | output axes | input axes |
| Embedding | `(vocab, dim)` | same | 1 | 0 (tokens) |
| BatchNormalization and other 1-D weights | `(c,)` | same | 0 | none |

A grouped convolution (`groups > 1`) has no `"inputs"` grouping (its input axis
counts channels within each convolution group), an EinsumDense axis shared by its
input and output has no meaning as a unit or input, and a layer kreg does not know
has no layout: group penalties on those weights refuse at first use, naming the
weight and what to do. A custom layer states its layout with `register`.

Keras calls a weight's regularizer with the model that owns it at hand; kreg
binds the layouts of the whole model then (`bind`), so `model.fit` and
`model.losses` need nothing more. Code that uses a layer's variable before any
loss was computed (a custom loop that leaves `model.losses` out, `kreg.plot` on a
fresh model) calls `kreg.layouts.bind(model)` first, or gets an error saying so.
"""

import math

import keras
import numpy as np

from kreg import _keras

__all__ = ["Layout", "alive_units", "bind", "layout_of", "register"]


class Layout:
    """The units and inputs of a weight of one shape.

    Args:
        shape: the weight's shape.
        units: axes of `view` that index the units/filters (an int or a tuple),
            or None when the weight has none.
        inputs: axes of `view` that index the inputs/channels, or None.
        view: a reshape of the weight (same number of elements) in which the axes
            are counted; default: `shape`.
        reason: for a weight without units or inputs, why (it ends the error a
            group penalty raises).
        name: the weight's path, for error messages.

    Example:

    >>> from kreg.layouts import Layout
    >>> Layout((5, 12), units=2, inputs=0, view=(5, 3, 4)).num_units   # a GRU kernel
    4
    """

    def __init__(self, shape, units, inputs, view=None, reason=None, name=None):
        self.shape = tuple(int(s) for s in shape)
        self.view = self.shape if view is None else tuple(int(s) for s in view)
        if math.prod(self.view) != math.prod(self.shape):
            raise ValueError(
                f"Invalid value for argument `view`: expected a reshape of {self.shape}. "
                f"Received: view={self.view}"
            )
        self.units = self._axes(units, "units")
        self.inputs = self._axes(inputs, "inputs")
        self.reason = reason
        self.name = name

    def _axes(self, axes, arg):
        if axes is None:
            return None
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        rank = len(self.view)
        if not axes or any(not -rank <= a < rank for a in axes):
            raise ValueError(
                f"Invalid value for argument `{arg}`: expected axes of the view {self.view}. "
                f"Received: {arg}={axes}"
            )
        return tuple(sorted(a % rank for a in axes))

    def axes(self, mode):
        """The view axes that index the groups of `mode` ("units" or "inputs")."""
        return self.units if mode == "units" else self.inputs

    @property
    def num_units(self):
        return None if self.units is None else math.prod(self.view[a] for a in self.units)

    @property
    def num_inputs(self):
        return None if self.inputs is None else math.prod(self.view[a] for a in self.inputs)

    def key(self):
        return (self.shape, self.view, self.units, self.inputs)

    def __eq__(self, other):
        return isinstance(other, Layout) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        view = "" if self.view == self.shape else f", view={self.view}"
        return f"Layout({self.shape}, units={self.units}, inputs={self.inputs}{view})"


def generic(shape, name=None):
    """Keras's default kernel layout `(..., inputs, units)`; rank 1: units only."""
    shape = tuple(shape)
    if len(shape) >= 2:
        return Layout(shape, -1, -2, name=name)
    if len(shape) == 1:
        return Layout(shape, 0, None, reason="a 1-D weight has no inputs axis", name=name)
    return Layout(shape, None, None, reason="a scalar weight has no groups", name=name)


def _unknown(layer, shape, name):
    return Layout(
        shape,
        None,
        None,
        name=name,
        reason=(
            f"kreg does not know the layout of layer '{layer.name}' "
            f"({type(layer).__name__}). State it with "
            "`kreg.layouts.register(LayerClass)` (see help(kreg.layouts.register)), or "
            "use a penalty without groups (kreg.L1, kreg.L2, kreg.ElasticNet)"
        ),
    )


# ----------------------------------------------------------------- the table

_RULES = {}


def register(layer_class):
    """Decorator: `fn(layer, variable) -> Layout or None` states `layer_class`'s layouts.

    The function is used for instances of `layer_class` and of its subclasses
    (the most specific registered class wins). Return None for a weight the
    rule does not describe (it then has no layout, and group penalties on it
    refuse).

    Example:

    >>> import keras, kreg
    >>> class Transposed(keras.layers.Layer):      # stores (units, inputs)
    ...     def build(self, shape):
    ...         self.w = self.add_weight((4, shape[-1]), name="w",
    ...                                  regularizer=kreg.GroupLasso(0.1))
    ...     def call(self, x):
    ...         return x @ keras.ops.transpose(self.w)
    >>> @kreg.layouts.register(Transposed)
    ... def _(layer, variable):
    ...     return kreg.layouts.Layout(variable.shape, units=0, inputs=1)
    >>> layer = Transposed()
    >>> layer.build((None, 3))
    >>> kreg.layouts.layout_of(layer, layer.w)
    Layout((4, 3), units=(0,), inputs=(1,))
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        raise TypeError(
            "Invalid type for argument `layer_class`: expected a subclass of "
            f"keras.layers.Layer. Received: layer_class={layer_class!r}"
        )

    def decorator(fn):
        _RULES[layer_class] = fn
        return fn

    return decorator


def layout_of(layer, variable):
    """The `Layout` of `variable`, a weight created by `layer`."""
    shape = tuple(variable.shape)
    for cls in type(layer).__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            layout = rule(layer, variable)
            if layout is None:
                return _unknown(layer, shape, variable.path)
            if layout.shape != shape:
                raise ValueError(
                    f"The layout rule for {type(layer).__name__} returned a layout of shape "
                    f"{layout.shape} for weight '{variable.path}' of shape {shape}."
                )
            layout.name = variable.path
            return layout
    return _unknown(layer, shape, variable.path)


def _name(variable):
    return variable.path.rsplit("/", 1)[-1]


def _dense_like(layer, variable):
    if len(variable.shape) == 2:
        return Layout(variable.shape, 1, 0)
    return generic(variable.shape)


def _conv(layer, variable):
    shape = variable.shape
    if len(shape) == 1:
        return generic(shape)
    groups = getattr(layer, "groups", 1) or 1
    if groups > 1:
        return Layout(
            shape,
            -1,
            None,
            reason=(
                f"the kernel of a grouped convolution (groups={groups}) indexes the "
                "channels within each convolution group on its input axis, so it has "
                "no one group per input channel; use groups='units'"
            ),
        )
    return Layout(shape, -1, -2)


def _conv_transpose(layer, variable):
    if len(variable.shape) == 1:
        return generic(variable.shape)
    return Layout(variable.shape, -2, -1)


def _depthwise(layer, variable):
    if len(variable.shape) == 1:
        return generic(variable.shape)
    return Layout(variable.shape, (-2, -1), -2)


def _separable(layer, variable):
    if _name(variable) == "depthwise_kernel":
        return _depthwise(layer, variable)
    return _conv(layer, variable)


def _gated(gates):
    def rule(layer, variable):
        shape = tuple(variable.shape)
        units = shape[-1] // gates
        if units * gates != shape[-1]:
            return None
        view = shape[:-1] + (gates, units)
        if len(shape) == 1:  # bias (g * u,)
            return Layout(shape, -1, None, view=view, reason="a bias has no inputs axis")
        if _name(variable) == "bias":  # GRU reset_after: (2, 3 * u)
            return Layout(shape, -1, None, view=view, reason="a bias has no inputs axis")
        return Layout(shape, -1, -3, view=view)

    return rule


def _einsum(layer, variable):
    if _name(variable) != "kernel":
        return generic(variable.shape)
    equation = layer.equation.replace(" ", "")
    inputs_spec, rest = equation.split(",")
    kernel_spec, output_spec = rest.split("->")
    units, inputs, odd = [], [], []
    for axis, letter in enumerate(kernel_spec):
        in_input, in_output = letter in inputs_spec, letter in output_spec
        if in_output and not in_input:
            units.append(axis)
        elif in_input and not in_output:
            inputs.append(axis)
        else:
            odd.append(letter)
    if odd or not units or not inputs:
        return Layout(
            variable.shape,
            None,
            None,
            reason=(
                f"the kernel axes {odd} of equation {layer.equation!r} are shared by the "
                "input and the output (or by neither), so they are neither units nor inputs"
            ),
        )
    return Layout(variable.shape, tuple(units), tuple(inputs))


def _one_d(layer, variable):
    return generic(variable.shape)


for _cls in (keras.layers.Dense, keras.layers.SimpleRNNCell, keras.layers.Embedding):
    register(_cls)(_dense_like)
for _cls in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D):
    register(_cls)(_conv)
for _cls in (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
):
    register(_cls)(_conv_transpose)
for _cls in (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D):
    register(_cls)(_depthwise)
for _cls in (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D):
    register(_cls)(_separable)
register(keras.layers.LSTMCell)(_gated(4))
register(keras.layers.GRUCell)(_gated(3))
register(_keras.conv_lstm_cell_class())(_gated(4))
register(keras.layers.EinsumDense)(_einsum)
for _cls in (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
):
    register(_cls)(_one_d)


# ------------------------------------------------------------------ binding


def bind(model):
    """Records the layout of every weight of `model` (a model or layer) on the weight.

    Keras calls it for you through the first regularization loss of a model;
    call it yourself before using a layer's weight with a group penalty
    outside a loss (a custom loop that leaves `model.losses` out, `kreg.plot`
    on a model that never computed its loss). Returns `model`.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "Invalid type for argument `model`: expected a Keras model or layer. "
            f"Received: model of type {type(model).__name__}"
        )
    for layer in _keras.flatten_layers(model):
        for variable in _keras.own_variables(layer):
            layout = layout_of(layer, variable)
            variable._kreg_layout = layout
    return model


def _is_layer_owned(variable):
    # Keras names a layer's weights "<layer>/<weight>"; a bare keras.Variable has
    # no "/" in its path.
    return "/" in variable.path


def resolve(weight, caller=None):
    """The `Layout` of `weight` (a variable or tensor) for penalties and counts.

    A variable bound by `bind` has its layer's layout; an unbound variable seen
    through Keras's regularization call (`caller`) binds that model first; a bare
    tensor or a variable that belongs to no layer is read in Keras's default
    layout `(..., inputs, units)`. An unbound variable of a layer raises.
    """
    variable = weight if isinstance(weight, keras.Variable) else None
    if caller is not None:
        owner, variable = caller
        if getattr(variable, "_kreg_layout", None) is None:
            bind(owner)
    if variable is None:
        return generic(tuple(weight.shape))
    layout = getattr(variable, "_kreg_layout", None)
    if layout is not None and layout.shape == tuple(variable.shape):
        return layout
    if _is_layer_owned(variable):
        raise ValueError(
            f"kreg does not know the layout of weight '{variable.path}' yet: it is read "
            "from its layer when Keras first computes the model's regularization losses. "
            "Call `kreg.layouts.bind(model)` once before using it (e.g. in a custom "
            "training loop that leaves `model.losses` out of its loss)."
        )
    return generic(tuple(variable.shape), name=variable.path)


def alive_units(variable, tolerance=0.0):
    """Boolean NumPy array, one entry per unit of `variable`'s layer: does it survive?

    A unit (filter, channel) is dead when every weight of it is at most
    `tolerance` in magnitude (kreg's one dead rule, the one `SparsityMonitor`
    counts by); a NaN weight keeps its unit alive. `variable` must be bound
    (see `bind`) or belong to no layer.
    """
    from keras import ops

    from kreg import _math

    layout = resolve(variable)
    if layout.units is None:
        raise ValueError(
            f"Weight '{layout.name}' of shape {layout.shape} has no units: {layout.reason}."
        )
    grouping = _math.Grouping(layout, "units")
    value = grouping.to_view(ops.convert_to_tensor(variable))
    return np.asarray(ops.convert_to_numpy(_math.alive_groups(value, grouping, tolerance)))
