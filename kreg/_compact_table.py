"""Which `kreg.compact` rule each Keras layer gets (`rule_for`); any other is a boundary."""

import keras

from kreg._compact_linear import (Conv, ConvTranspose, Dense, Depthwise, EinsumDense,
                                  Embedding, Separable)
from kreg._compact_rules import (ActivationLayer, BatchNorm, Boundary, Concatenate, Flatten,
                                 Merge, PassThrough, Reshape, _last_axis, elementwise)

L = keras.layers
_POOLING = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D,
            L.AveragePooling2D, L.AveragePooling3D, L.GlobalMaxPooling1D,
            L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.GlobalAveragePooling1D,
            L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)
_IDENTITY_AT_INFERENCE = (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
                          L.SpatialDropout3D, L.GaussianDropout, L.GaussianNoise,
                          L.AlphaDropout, L.ActivityRegularization)
_ACTIVATIONS = (L.ReLU, L.LeakyReLU, L.ELU)
_MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)
_CONV_T = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)
_DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_MIXING = (L.LayerNormalization, L.GroupNormalization, L.UnitNormalization, L.Softmax)


def rule_for(layer, inputs, outputs, tolerance):
    """The `Rule` of one call of `layer`, a `Boundary` (with its reason) for any other."""

    def boundary(reason):
        return Boundary(layer, inputs, outputs, tolerance, reason)

    kind = type(layer).__name__
    if isinstance(layer, keras.Model):
        return boundary("a nested model: compact does not look inside it")
    if len(outputs) != 1:
        return boundary(f"{kind} has {len(outputs)} outputs")
    if any(t.opaque for t in inputs + outputs):
        return boundary("a tensor it reads or writes has no known channel axis")
    rank = len(outputs[0].shape)
    merge = isinstance(layer, _MERGES + (L.Concatenate,))
    if not merge and len(inputs) != 1:
        return boundary(f"{kind} is called on {len(inputs)} tensors")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return boundary("data_format='channels_first' (compact follows channels_last only)")

    def make(cls):
        return cls(layer, inputs, outputs, tolerance)

    if isinstance(layer, _MIXING):
        return boundary(f"{kind} mixes the channels (removing one would change the others)")
    if isinstance(layer, _CONV) and type(layer) not in _CONV_T + _SEPARABLE + _DEPTHWISE:
        if getattr(layer, "groups", 1) != 1:
            return boundary(f"a grouped convolution (groups={layer.groups})")
        return make(Conv)
    if isinstance(layer, _CONV_T):
        return make(ConvTranspose)
    if isinstance(layer, _SEPARABLE):
        return make(Separable)
    if isinstance(layer, _DEPTHWISE):
        return make(Depthwise)
    if type(layer) is L.Dense:
        return make(Dense)
    if type(layer) is L.EinsumDense:
        return _einsum(layer, inputs, outputs, tolerance, boundary)
    if type(layer) is L.Embedding:
        return make(Embedding)
    if type(layer) is L.BatchNormalization:
        if not _last_axis(layer.axis, rank):
            return boundary(f"BatchNormalization over axis {layer.axis}, not the channel axis")
        return make(BatchNorm)
    if type(layer) in _ACTIVATIONS or type(layer) is L.Activation:
        activation = layer.get_config().get("activation", "relu")
        if type(layer) is L.Activation and not elementwise(activation):
            return boundary(f"activation {activation!r} mixes the channels")
        return make(ActivationLayer)
    if type(layer) in _IDENTITY_AT_INFERENCE or type(layer) in _POOLING:
        return make(PassThrough)
    if type(layer) is L.Flatten:
        return make(Flatten)
    if type(layer) is L.Reshape:
        if inputs[0].shape[-1] != outputs[0].shape[-1]:
            return boundary("Reshape changes the channel axis")
        return make(Reshape)
    if type(layer) in _MERGES:
        if any(t.size != outputs[0].size for t in inputs):
            return boundary(f"{kind} broadcasts over the channel axis")
        return make(Merge)
    if type(layer) is L.Concatenate:
        if not _last_axis(layer.axis, rank):
            return boundary(f"Concatenate along axis {layer.axis}, not the channel axis")
        return make(Concatenate)
    return boundary(f"compact has no rule for {kind} (custom or unsupported layer)")


def _einsum(layer, inputs, outputs, tolerance, boundary):
    from kreg import layouts

    layout = layouts.layout_of(layer, layer.kernel)
    equation = layer.equation.replace(" ", "")
    lhs, out = equation.split("->")
    x_spec, k_spec = lhs.split(",")
    bias_axes = layer.bias_axes
    if (len(layer.kernel.shape) != 2 or layout.units != (1,) or layout.inputs != (0,)
            or x_spec[-1] != k_spec[0] or out[-1] != k_spec[1]
            or (bias_axes is not None and bias_axes != k_spec[1])):
        return boundary(f"EinsumDense {layer.equation!r} is not a 2-D kernel from the last "
                        "input axis to the last output axis (with its bias on the units)")
    return EinsumDense(layer, inputs, outputs, tolerance)

