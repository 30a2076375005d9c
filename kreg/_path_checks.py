"""Argument checks and data conversion for `kreg.paths`, worded the Keras way."""

import numbers

import keras
import numpy as np
from keras import ops

from kreg import _validation
from kreg.regularizers import Regularizer, kreg_regularizer


def _check_model(model, name="model"):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Invalid type for argument `{name}`: expected a compiled keras.Model. "
            f"Received: {name} of type {type(model).__name__}")
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a compiled model (call "
            "`model.compile(optimizer, loss)`: the path trains with that optimizer and loss). "
            f"Received: {name} {model.name!r}, not compiled")
    if not model.built:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a built model (give it a "
            f"`keras.Input`). Received: {name} {model.name!r}, not built")


def _selected_indices(model, regularizers):
    """Indices into `model.variables` of the trainable variables whose strength the path sets."""
    candidates = [
        i for i, v in enumerate(model.variables)
        if v.trainable and kreg_regularizer(v) is not None
    ]
    if not candidates:
        raise ValueError(
            "Invalid value for argument `model`: expected a model with at least one trainable "
            "variable that has a kreg regularizer (e.g. `kernel_regularizer=kreg.L1(0.0)`). "
            f"Received: model {model.name!r} without one")
    if regularizers is None:
        return candidates
    if isinstance(regularizers, Regularizer):
        regularizers = [regularizers]
    try:
        regularizers = list(regularizers)
    except TypeError:
        raise TypeError(
            "Invalid type for argument `regularizers`: expected None or a list of kreg "
            f"regularizers of the model. Received: regularizers={_validation._short(regularizers)}"
        ) from None
    for reg in regularizers:
        if not isinstance(reg, Regularizer):
            raise TypeError(
                "Invalid type for argument `regularizers`: expected kreg regularizers. "
                f"Received: {_validation._short(reg)} of type {type(reg).__name__}")
    chosen = [i for i in candidates
              if any(kreg_regularizer(model.variables[i]) is r for r in regularizers)]
    missing = [r for r in regularizers
               if all(kreg_regularizer(model.variables[i]) is not r for i in candidates)]
    if missing or not regularizers:
        raise ValueError(
            "Invalid value for argument `regularizers`: expected regularizers attached to "
            f"trainable variables of model {model.name!r}. Received: regularizers="
            f"{_validation._short(regularizers)}"
            + (f", of which {missing!r} are not" if missing else ""))
    return chosen


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise _validation.invalid(name, "a positive integer", value)
    return int(value)


def _check_tol(value, name="tol"):
    if not _validation._is_real(value) or not np.isfinite(value) or value <= 0:
        raise _validation.invalid(name, "a positive finite number", value)
    return float(value)


def _check_eps(value):
    if not _validation._is_real(value) or not 0 < value < 1:
        raise _validation.invalid("eps", "a number in (0, 1)", value)
    return float(value)


def _check_strengths(strengths):
    """A descending float64 array of non-negative finite strengths."""
    if isinstance(strengths, (str, bytes, dict)):
        raise _validation.invalid("strengths", "a non-empty 1-D sequence of non-negative "
                                  "finite numbers", strengths)
    try:
        values = np.asarray(strengths, dtype="float64")
    except (TypeError, ValueError):
        raise _validation.invalid("strengths", "a non-empty 1-D sequence of non-negative "
                                  "finite numbers", strengths) from None
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(
            values < 0):
        raise _validation.invalid("strengths", "a non-empty 1-D sequence of non-negative "
                                  "finite numbers", strengths)
    return np.sort(values)[::-1].copy()


def _float_tensor(a):
    a = np.asarray(a) if not hasattr(a, "dtype") or isinstance(a, np.ndarray) else a
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        a = a.astype(keras.config.floatx())
    return ops.convert_to_tensor(a)


def _data(x, y, sample_weight):
    """Full-batch data as tensors on the device, converted once for the whole path."""
    if x is None or y is None:
        raise _validation.invalid("x" if x is None else "y", "an array (full-batch data)", None)
    x = keras.tree.map_structure(_float_tensor, x)
    y = keras.tree.map_structure(_float_tensor, y)
    if sample_weight is not None:
        sample_weight = _float_tensor(sample_weight)
    return (x, y, sample_weight)


def _check_validation(validation_data):
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise _validation.invalid(
            "validation_data", "a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val)",
            validation_data)
    return _data(*validation_data) if len(validation_data) == 3 else _data(*validation_data, None)


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback) or callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for cb in callbacks:
        if not (isinstance(cb, keras.callbacks.Callback) or callable(cb)):
            raise TypeError(
                "Invalid type for argument `callbacks`: expected keras.callbacks.Callback "
                "instances or callables `fn(row)`. Received: "
                f"{_validation._short(cb)} of type {type(cb).__name__}")
    return callbacks


def _check_warm_start(warm_start):
    if not (warm_start is True or warm_start is False or (
            isinstance(warm_start, str) and warm_start == "auto")):
        raise _validation.invalid("warm_start", "'auto', True or False", warm_start)
    return warm_start
