"""The one place where kreg reads Keras internals.

Everything here depends on Keras details that are not public API. Each reader is
small, named for what it reads, and pinned by `tests/test_keras_internals.py`, so
a Keras release that changes one of them fails one named test instead of making
kreg silently wrong.
"""

import sys

import keras


def flatten_layers(layer):
    """`layer` and every layer nested in it, layers kept as attributes included.

    Reads `Layer._flatten_layers`, Keras's own recursive walk (the only one that
    also finds layers held as attributes of custom layers).
    """
    return list(layer._flatten_layers(include_self=True, recursive=True))


def own_variables(layer):
    """The variables created by `layer` itself (not by its sublayers).

    Reads `Layer._trainable_variables` and `Layer._non_trainable_variables`.
    """
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def regularization_caller(depth=2):
    """`(layer, variable)` when Keras's `Layer._get_regularization_losses` is calling.

    Keras calls `variable.regularizer(value)` from that method; under a stateless
    scope (the JAX trainer) `value` is a plain tensor, so the variable, and the
    model or layer that walks it, are read from the caller's frame. Returns None
    when the regularizer was called by anyone else.
    """
    frame = sys._getframe(depth)
    for _ in range(3):
        if frame is None:
            return None
        if frame.f_code.co_name == "_get_regularization_losses":
            local = frame.f_locals
            layer, variable = local.get("self"), local.get("variable")
            if isinstance(layer, keras.layers.Layer) and isinstance(variable, keras.Variable):
                return layer, variable
            return None
        frame = frame.f_back
    return None


def public_optimizer_class(optimizer):
    """The `keras.optimizers` class whose update `optimizer` performs.

    Under the PyTorch backend `keras.optimizers.Adam(...)` returns an instance of
    a backend subclass (`keras.src.backend.torch.optimizers.torch_adam.Adam`)
    that implements the same update; that subclass is read as its public base.
    Any other subclass is returned as itself (it may change the update).
    """
    cls = type(optimizer)
    if cls.__module__.startswith("keras.src.backend."):
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("keras.src.optimizers."):
                return base
    return cls


# The per-variable slots of Keras's optimizers, by the names kreg uses for them.
_SLOTS = {
    "velocity": "_velocities",  # Adam, AdamW, Nadam, RMSprop: second moments
    "velocity_hat": "_velocity_hats",  # Adam/AdamW with amsgrad
    "average_gradient": "_average_gradients",  # centered RMSprop
    "accumulator": "_accumulators",  # Adagrad
}


def optimizer_slot(optimizer, slot, variable):
    """The optimizer's `slot` variable for `variable` (e.g. Adam's second moment).

    Reads `Optimizer._get_variable_index` and the slot lists `_velocities`,
    `_velocity_hats`, `_average_gradients`, `_accumulators`.
    """
    return getattr(optimizer, _SLOTS[slot])[optimizer._get_variable_index(variable)]


def optimizer_iterations_variable(optimizer):
    """The optimizer's own iteration counter variable (`Optimizer._iterations`)."""
    return optimizer._iterations


def conv_lstm_cell_class():
    """The class of ConvLSTM1D/2D/3D's cell (not exported by Keras)."""
    from keras.src.layers.rnn.conv_lstm import ConvLSTMCell

    return ConvLSTMCell


def graph_nodes(model):
    """`(nodes, inputs, outputs)` of a built Sequential or functional model.

    `nodes` lists `(layer, input tensors, output tensors)` for every layer call of
    the model's graph, inputs before the layers that read them (InputLayers left
    out); `inputs` and `outputs` are the model's symbolic tensors. Reads
    `Sequential._functional` (the functional graph a Sequential model builds
    once its input shape is known), `Functional._nodes_by_depth`, `Node.operation`,
    `Node.input_tensors`, `Node.output_tensors` and `Node.is_input`.
    """
    graph = model
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(
                "Invalid value for argument `model`: expected a built model (give the "
                "Sequential model a `keras.Input` or call it on data first). Received: "
                f"model '{model.name}', not built")
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:
        raise ValueError(
            "Invalid value for argument `model`: expected a Sequential or functional "
            f"model (a graph of layers). Received: model '{model.name}' of type "
            f"{type(model).__name__}, a subclassed model whose graph Keras does not record")
    nodes = []
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if node.is_input:
                continue
            nodes.append((node.operation, list(node.input_tensors), list(node.output_tensors)))
    return nodes, list(graph.inputs), list(graph.outputs)
