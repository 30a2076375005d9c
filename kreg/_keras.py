"""The one place where kreg reads Keras internals.

Everything here depends on Keras details that are not public API. Each reader is
small, named for what it reads, and pinned by `tests/test_keras_internals.py`, so
a Keras release that changes one of them fails one named test instead of making
kreg silently wrong.
"""

import sys

import keras
import numpy as np


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


def repeat_train_step(model, count, trainable, residual_key, momentum=None, stop=None):
    """Makes one call of `model`'s compiled train function run up to `count` steps.

    `count` is an int32 variable tracked by the model (so it is part of the state
    every backend's trainer threads through its compiled step); the logs of the
    call are the last step's, plus `residual_key`: the squared displacement of the
    `trainable` variables in that last step. Wraps `model.train_step`, whose
    signature differs by backend (reads it): `train_step(data) -> logs` on
    TensorFlow and PyTorch, `train_step(state, data) -> (logs, state)` on JAX,
    where `state[0]` holds the trainable and `state[1]` the non-trainable
    variables' values, in `model.trainable_variables` / `non_trainable_variables` order.

    `momentum` (optional, `kreg._fista.Fista`): its `variables` (tracked by the
    model, non-trainable) hold an extrapolation state; a run of steps sets the
    `trainable` variables to `momentum.resume(weights, state)`'s point, after each
    step but the last to `momentum.step(before, after, state)`'s point, and before
    the last step to `momentum.pause(weights, state)`'s, so the last step is a
    plain one from the point `pause` names (an iterate) and its displacement is
    logged.

    `stop` (optional): `(threshold, block, steps_key)`, `threshold` a float32
    variable tracked by the model: the call runs blocks of `block` steps (as above)
    until the last step's squared displacement is `<= threshold` or `count` steps
    are done, and logs only that displacement and (`steps_key`) the steps done:
    the step is traced once, inside the loop (the train step's own logs, whose
    structure is not known before tracing it, are not carried out of the loop).
    Without it, one run of `count` steps.
    """
    from keras import ops

    one_step = model.train_step
    watched = [count] + ([stop[0]] if stop is not None else [])

    def start():
        """`(steps done, squared displacement)` before the first block: 0 and infinity."""
        return ops.convert_to_tensor(0, "int32"), ops.convert_to_tensor(np.inf, "float32")

    def squared(after, before):
        return sum(ops.sum(ops.square(ops.cast(a, "float32") - ops.cast(b, "float32")))
                   for a, b in zip(after, before))

    if keras.backend.backend() == "jax":
        index = {}

        def locate():
            if not index:
                ids = [id(v) for v in model.non_trainable_variables]
                index["watched"] = [ids.index(id(v)) for v in watched]
                index["momentum"] = ([ids.index(id(v)) for v in momentum.variables]
                                     if momentum is not None else [])

        def replace(state, weights, extra):
            """`state` with the trainable values `weights` and the momentum values `extra`."""
            others = list(state[1])
            for j, value in zip(index["momentum"], extra):
                others[j] = value
            return (type(state[0])(weights), type(state[1])(others), *state[2:])

        def extra_of(state):
            return [state[1][j] for j in index["momentum"]]

        def run(state, data, n):
            """`n` steps from `state`: `(state, logs, squared displacement of the last)`."""
            def body(i, state):
                before = state[0]
                state = one_step(state, data)[1]
                if momentum is None:
                    return state
                return replace(state, *momentum.step(list(before), list(state[0]),
                                                     extra_of(state)))

            if momentum is not None:
                state = replace(state, *momentum.resume(list(state[0]), extra_of(state)))
            state = ops.fori_loop(0, n - 1, body, state)
            if momentum is not None:
                state = replace(state, *momentum.pause(list(state[0]), extra_of(state)))
            before = state[0]
            logs, state = one_step(state, data)
            return state, dict(logs), squared(state[0], before)

        def multi_step(state, data):
            locate()
            steps = state[1][index["watched"][0]]
            if stop is None:
                state, logs, last = run(state, data, steps)
                logs[residual_key] = last
                return logs, state
            threshold, block, steps_key = stop
            limit = state[1][index["watched"][1]]

            def more(state, done, last):
                return ops.logical_and(ops.less(done, steps), ops.greater(last, limit))

            def next_block(state, done, last):
                n = ops.minimum(steps - done, block)
                state, _, last = run(state, data, n)
                return state, done + n, last

            state, done, last = ops.while_loop(more, next_block, (state, *start()))
            return {residual_key: last, steps_key: done}, state
    else:
        def values(variables):
            # `+ 0` makes a copy: a bare read may alias the variable after the update.
            return [ops.add(ops.convert_to_tensor(v), 0) for v in variables]

        def assign(variables, new):
            for variable, value in zip(variables, new):
                variable.assign(value)

        def run(data, n):
            """`n` steps: `(logs, squared displacement of the last)`."""
            def body(i, carry):
                before = values(trainable) if momentum is not None else None
                one_step(data)
                if momentum is not None:
                    weights, extra = momentum.step(before, values(trainable),
                                                   values(momentum.variables))
                    assign(trainable, weights)
                    assign(momentum.variables, extra)
                return carry

            if momentum is not None:
                weights, extra = momentum.resume(values(trainable), values(momentum.variables))
                assign(trainable, weights)
                assign(momentum.variables, extra)
            ops.fori_loop(0, n - 1, body, 0)
            if momentum is not None:
                weights, extra = momentum.pause(values(trainable), values(momentum.variables))
                assign(trainable, weights)
                assign(momentum.variables, extra)
            before = values(trainable)
            logs = dict(one_step(data))
            return logs, squared([ops.convert_to_tensor(v) for v in trainable], before)

        def multi_step(data):
            steps = ops.convert_to_tensor(count)
            if stop is None:
                logs, last = run(data, steps)
                logs[residual_key] = last
                return logs
            threshold, block, steps_key = stop
            limit = ops.convert_to_tensor(threshold)

            def more(done, last):
                return ops.logical_and(ops.less(done, steps), ops.greater(last, limit))

            def next_block(done, last):
                n = ops.minimum(steps - done, block)
                return done + n, run(data, n)[1]

            done, last = ops.while_loop(more, next_block, start())
            return {residual_key: last, steps_key: done}

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
