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


def repeat_train_step(model, count, trainable, residual_key):
    """Makes one call of `model`'s compiled train function run `count` steps.

    `count` is an int32 variable tracked by the model (so it is part of the state
    every backend's trainer threads through its compiled step); the logs of the
    call are the last step's, plus `residual_key`: the squared displacement of the
    `trainable` variables in that last step. Wraps `model.train_step`, whose
    signature differs by backend (reads it): `train_step(data) -> logs` on
    TensorFlow and PyTorch, `train_step(state, data) -> (logs, state)` on JAX,
    where `state[0]` holds the trainable and `state[1]` the non-trainable
    variables' values, in `model.trainable_variables` / `non_trainable_variables` order.
    """
    from keras import ops

    one_step = model.train_step
    if keras.backend.backend() == "jax":
        index = []

        def multi_step(state, data):
            if not index:
                index.append([id(v) for v in model.non_trainable_variables].index(id(count)))
            steps = state[1][index[0]]
            state = ops.fori_loop(0, steps - 1, lambda i, state: one_step(state, data)[1], state)
            before = state[0]
            logs, state = one_step(state, data)
            logs = dict(logs)
            logs[residual_key] = sum(
                ops.sum(ops.square(ops.cast(a, "float32") - ops.cast(b, "float32")))
                for a, b in zip(state[0], before))
            return logs, state
    else:
        def multi_step(data):
            def body(i, carry):
                one_step(data)
                return carry

            ops.fori_loop(0, ops.convert_to_tensor(count) - 1, body, 0)
            # `+ 0` makes a copy: a bare read may alias the variable after the update.
            before = [ops.add(ops.convert_to_tensor(v), 0) for v in trainable]
            logs = dict(one_step(data))
            logs[residual_key] = sum(
                ops.sum(ops.square(ops.cast(ops.convert_to_tensor(v) - b, "float32")))
                for v, b in zip(trainable, before))
            return logs

    model.train_step = multi_step
    model.make_train_function(force=True)


def train_on_full_batch(model, data):
    """One call of the compiled train function on one batch `(x, y, sample_weight)`: its logs.

    On TensorFlow this calls `model.train_function` with a one-batch iterator, as
    Keras's own `train_on_batch` does, without `train_on_batch`'s per-call work
    (about 0.5 of its 1 ms on a small model); the metrics are then averaged since
    the last `reset_metrics()`. Elsewhere it is `train_on_batch(..., return_dict=True)`.
    """
    if keras.backend.backend() == "tensorflow":
        return model.train_function(iter([data]))
    x, y, sample_weight = data
    return model.train_on_batch(x, y, sample_weight=sample_weight, return_dict=True)


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
