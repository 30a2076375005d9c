"""Reusing the compiled clone of the path engine from one call to the next.

`regularization_path`, `strength_max` and `cross_validate` train a clone of the
model, compiled once. Its first call traces the train step and, on TensorFlow and
JAX, compiles it with XLA: 0.3 to 1 s, more than the rest of a small path or
cross-validation (BENCHMARKS.md section 7). Keras keeps a model's compiled train
function for its next `fit`; kreg does the same for its clone. A call reuses the
clone of an earlier call when

* the *owner* is the same object: the model passed to `regularization_path` or
  `strength_max`, or the `build_model` callable passed to `cross_validate` (the
  clone lives as long as the owner, and at most `PER_OWNER` clones per owner);
* the model would give the same clone: its serialized config, compile config
  included, equal up to the names of its layers (a builder's models are named
  `dense`, `dense_1`, ... by Keras; the names are compared by position, and a
  multi-output model's output names, which are its logs' keys, exactly);
* the same classes and functions would build it (the class of every layer, the
  objects held by every configured attribute, e.g. an activation function, and
  the registered custom objects, compared by identity, so a class redefined in a
  notebook cell is a new clone);
* the same loss (the clone is compiled with the model's own loss objects, whose
  state is compared: Keras's config can drop some of it, e.g. Huber's `delta`);
* in the same device scope (`keras.device`, `tf.device`: where a new tensor is
  placed) and under the same `keras.distribution` (compared by identity);
* and with the same engine arguments (penalised variables, optimizer,
  `jit_compile`, `accelerate`).

The reused clone then gets the model's weights, a fresh optimizer state and the
model's strengths (`PathTrainer.reuse`), so the call computes exactly what a new
clone would. Anything that cannot be compared (a config that is not JSON, an
owner that takes no weak reference) gets a new clone, as before, and so does a
call made while another is using the clone (a callback computing a path of the
same model: `call()`).
"""

import contextlib
import functools
import json
import weakref

import keras

from kreg import _backend
from kreg import _keras

PER_OWNER = 2
_CACHE = weakref.WeakKeyDictionary()  # owner -> [(signature, pins, trainer), ...], newest first
_CALLS = []  # per public call running (nested: a callback may call again), its trainers


@contextlib.contextmanager
def call():
    """The extent of one public call: the clones it was handed are not handed to a call
    nested in it (a callback that computes another path of the same model), which would
    reset them under the running one."""
    handed = []
    _CALLS.append(handed)
    try:
        yield
    finally:
        _CALLS.remove(handed)


def one_call(function):
    """Runs `function` (a public entry point) inside `call()`."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        with call():
            return function(*args, **kwargs)

    return run


def _busy(made):
    return any(any(t is made for t in handed) for handed in _CALLS[:-1])


def trainer(owner, model, build, *args):
    """A `PathTrainer` for `model`: `build()` or, if an earlier call of the same `owner`
    made one for an equivalent model with the same `args` (and no enclosing call is
    using it), that one, reset to `model`."""
    made = _find_or_build(owner, model, build, args)
    if _CALLS:
        _CALLS[-1].append(made)
    return made


def _find_or_build(owner, model, build, args):
    if owner is None or not _CALLS:
        return build()
    key = signature(model, args)
    if key is None:
        return build()
    text, pins = key
    try:
        entries = _CACHE.get(owner)
    except TypeError:  # not weakly referenceable
        return build()
    entries = entries if entries is not None else []
    for k, (other_text, other_pins, cached) in enumerate(entries):
        if other_text == text and len(other_pins) == len(pins) and all(
                a is b for a, b in zip(other_pins, pins)):
            if _busy(cached):
                return build()  # in use by an enclosing call: a clone of this call's own
            entries.insert(0, entries.pop(k))
            cached.reuse(model)
            return cached
    made = build()
    entries.insert(0, (text, pins, made))
    del entries[PER_OWNER:]
    _CACHE[owner] = entries
    return made


def clear():
    """Forgets every kept clone (tests; memory is otherwise freed with the owners)."""
    _CACHE.clear()


def signature(model, args):
    """`(text, pins)`: what decides the clone, as a string compared by equality and objects
    compared by identity; None when the model's config cannot be written as JSON."""
    layers = _keras.flatten_layers(model)
    names = {layer.name: k for k, layer in enumerate(layers)}
    classes = {type(layer).__name__ for layer in layers}
    try:
        config = keras.saving.serialize_keras_object(model)
        text = json.dumps([_rename(config, names, classes), _plain(args),
                           keras.config.floatx(), keras.config.backend(),
                           _backend.placement()], sort_keys=True)
    except Exception:  # anything that cannot be written or compared: a new clone, as before
        return None
    # the loss objects the clone is compiled with (`compile_config`): their state, since
    # the config may drop some of it (Huber's delta)
    try:
        losses = keras.tree.flatten(getattr(model, "loss", None))
        text += json.dumps([vars(v) if isinstance(v, keras.losses.Loss) else v
                            for v in losses], sort_keys=True, default=repr)
    except Exception:
        return None
    outputs = list(getattr(model, "output_names", None) or [])
    if len(outputs) > 1:  # the logs' keys: "<output>_loss", ...
        text += json.dumps(outputs)
    pins = [type(layer) for layer in layers]
    for layer in layers:
        try:
            keys = sorted(layer.get_config())
        except Exception:
            return None
        for key in keys:
            try:
                value = getattr(layer, key, None)
            except Exception:
                return None
            if callable(value) or isinstance(value, keras.layers.Layer):
                pins.append(value if _is_function(value) else type(value))
    for name, value in sorted(keras.saving.get_custom_objects().items()):
        pins.append(value)
    pins.extend(v if _is_function(v) else type(v) for v in losses if not isinstance(v, str))
    pins.extend(type(a) for a in args if not _is_plain(a))
    pins.append(keras.distribution.distribution())  # None, or the global layout of variables
    return text, tuple(pins)


def _is_function(value):
    return type(value).__name__ in ("function", "builtin_function_or_method")


def _is_plain(value):
    return value is None or isinstance(value, (bool, int, float, str, tuple))


def _plain(args):
    """The engine arguments as JSON: plain values as they are, a Keras object (an
    optimizer) by its class name and config (its class is pinned by identity)."""
    out = []
    for a in args:
        if _is_plain(a):
            out.append(list(a) if isinstance(a, tuple) else a)
        else:
            out.append([type(a).__name__, _unnamed({"config": a.get_config()})])
    return out


def _unnamed(optimizer):
    """A serialized optimizer without its name (`sgd`, `sgd_1`, ... by Keras's counter; it
    only labels the optimizer's variables)."""
    config = optimizer.get("config")
    if isinstance(config, dict) and "name" in config:
        optimizer = dict(optimizer, config=dict(config, name=None))
    return optimizer


def _rename(node, names, classes):
    """`node` with every layer name replaced by its position in `names`, in the places
    where Keras's configs hold layer names: a layer entry's `name` (and its config's),
    the first item of `keras_history`, and the entries of `input_layers` /
    `output_layers`. Other strings (an activation named like a layer) stay as they are."""
    if isinstance(node, dict):
        out = {}
        is_layer = node.get("class_name") in classes and isinstance(node.get("config"), dict)
        for key, value in node.items():
            if key == "name" and is_layer and isinstance(value, str) and value in names:
                out[key] = ("layer", names[value])
            elif key == "config" and is_layer and isinstance(value, dict):
                inner = _rename(value, names, classes)
                if isinstance(value.get("name"), str) and value["name"] in names:
                    inner["name"] = ("layer", names[value["name"]])
                out[key] = inner
            elif key == "keras_history" and isinstance(value, (list, tuple)) and value:
                out[key] = [_reference(value[0], names), *value[1:]]
            elif key in ("input_layers", "output_layers"):
                out[key] = _references(value, names)
            elif key == "optimizer" and isinstance(value, dict):
                out[key] = _unnamed(_rename(value, names, classes))
            else:
                out[key] = _rename(value, names, classes)
        return out
    if isinstance(node, (list, tuple)):
        return [_rename(v, names, classes) for v in node]
    return node


def _reference(value, names):
    return ("layer", names[value]) if isinstance(value, str) and value in names else value


def _references(value, names):
    """`[name, node, tensor]` or a list of them."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return [_reference(value[0], names), *value[1:]]
    if isinstance(value, (list, tuple)):
        return [_references(v, names) for v in value]
    return value
