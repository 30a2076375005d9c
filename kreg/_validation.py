"""Argument checks shared by kreg's classes; errors are worded the Keras way."""

import math
import numbers

import numpy as np

GROUP_MODES = ("units", "inputs")


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid(name, expected, received):
    """A ValueError naming the argument, what was expected and what was received."""
    return ValueError(
        f"Invalid value for argument `{name}`: expected {expected}. "
        f"Received: {name}={_short(received)}"
    )


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_TINY = float(np.finfo(np.float32).smallest_subnormal)


def check_strength(value, name="strength", float32=True):
    """A non-negative finite number, returned as a float.

    Like Keras's own regularizers, anything that is not such a number (a string,
    None, a list, a bool) raises a `ValueError`. With `float32`, the value must
    also survive float32 storage: no overflow to inf, no underflow to 0.
    """
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if not _is_real(value):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected a non-negative finite "
            f"number (int or float). Received: {name}={_short(value)} "
            f"of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise invalid(name, "a non-negative finite number", value)
    if float32:
        _check_float32_range(value, name)
    return value


def _check_float32_range(value, name):
    if value > _FLOAT32_MAX or 0 < value < _FLOAT32_TINY:
        raise invalid(
            name,
            "0 or a number representable in float32 (between 1.4e-45 and 3.4e+38, "
            "where the strength is stored)",
            value,
        )


def check_strength_array(array, name="strength"):
    """A concrete value assigned to a strength: a finite non-negative float32 scalar."""
    array = np.asarray(array)
    try:
        array = array.astype("float64")
    except (TypeError, ValueError):
        raise invalid(name, "a non-negative finite scalar", array) from None
    if array.shape != ():
        raise invalid(name, "a non-negative finite scalar", array)
    value = float(array)
    if not math.isfinite(value) or value < 0:
        raise invalid(name, "a non-negative finite number", value)
    _check_float32_range(value, name)
    return value


def check_float_weight(w, owner):
    """The prox is defined for floating-point weights only."""
    import keras

    dtype = keras.backend.standardize_dtype(w.dtype)
    if "float" not in dtype:
        raise TypeError(
            f"Invalid dtype for argument `w` of {owner}.prox: expected a floating-point "
            f"weight (float16, bfloat16, float32 or float64). Received: w of dtype {dtype}"
        )


def checked_step(step, shape, dtype):
    """The prox step as a tensor of `dtype`, refused when it is bad.

    A Python/NumPy number must be non-negative and finite; it is converted to
    `dtype` directly (a float64 weight gets a float64 step). An array or an eager
    tensor must hold non-negative finite values and broadcast to the weight's
    `shape` without growing it. A symbolic (traced) step cannot be checked while
    tracing: a negative or non-finite entry turns its prox into NaN instead of a
    plausible number.
    """
    from keras import ops

    if _is_real(step) or step is None or isinstance(step, (str, bool, np.bool_)):
        return ops.convert_to_tensor(check_strength(step, name="step", float32=False), dtype)
    from kreg import _backend

    value = _backend.concrete(step)
    if value is not None:
        try:
            value = value.astype("float64")
        except (TypeError, ValueError):
            raise invalid("step", "a non-negative finite number or array of them", step)
        _check_step_shape(value.shape, shape)
        if value.size and not (np.all(np.isfinite(value)) and np.all(value >= 0)):
            bad = float(value[~(np.isfinite(value) & (value >= 0))].ravel()[0])
            raise ValueError(
                "Invalid value for argument `step`: expected non-negative finite steps. "
                f"Received: step of shape {value.shape} containing {bad}"
            )
        if not hasattr(step, "dtype") or isinstance(step, (np.ndarray, np.generic)):
            # A Python or NumPy number or array: converted straight to `dtype` (a cast
            # would go through float32 first on PyTorch, losing a float64 step's digits).
            return ops.convert_to_tensor(value, dtype)
        return ops.cast(step, dtype)
    step = ops.cast(step, dtype)
    _check_step_shape(tuple(step.shape), shape)
    valid = ops.logical_and(ops.isfinite(step), ops.greater_equal(step, 0))
    return ops.where(valid, step, ops.full_like(step, np.nan))


def _check_step_shape(step_shape, shape):
    step_shape = tuple(step_shape)
    if any(s is None for s in step_shape):
        return
    try:
        ok = tuple(np.broadcast_shapes(step_shape, shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            "Invalid value for argument `step`: expected a scalar or a tensor that "
            f"broadcasts to the weight's shape {tuple(shape)}. Received: step of shape "
            f"{step_shape}"
        )


def check_l1_ratio(value):
    """A float in [0, 1]."""
    if not _is_real(value):
        raise TypeError(
            "Invalid type for argument `l1_ratio`: expected a float in [0, 1]. "
            f"Received: l1_ratio={_short(value)} of type {type(value).__name__}"
        )
    value = float(value)
    if not (0.0 <= value <= 1.0):  # also refuses NaN
        raise invalid("l1_ratio", "a float in [0, 1]", value)
    return value


def check_groups(groups):
    """`"units"`, `"inputs"`, or a non-empty sequence of integer group ids (as a list)."""
    if isinstance(groups, str):
        if groups not in GROUP_MODES:
            raise invalid(
                "groups", 'one of "units", "inputs" or a sequence of integer group ids', groups
            )
        return groups
    if isinstance(groups, np.ndarray):
        if groups.ndim != 1:
            raise invalid("groups", "a 1-D sequence of integer group ids", groups)
        items = groups.tolist() if groups.dtype.kind in "iu" else list(groups)
    elif isinstance(groups, (list, tuple)):
        items = list(groups)
    else:
        raise TypeError(
            'Invalid type for argument `groups`: expected "units", "inputs" or a '
            f"sequence of integer group ids. Received: groups={_short(groups)} "
            f"of type {type(groups).__name__}"
        )
    if not items:
        raise invalid("groups", "a non-empty sequence of integer group ids", groups)
    bad = [g for g in items if isinstance(g, (bool, np.bool_)) or not isinstance(g, numbers.Integral)]
    if bad:
        raise TypeError(
            "Invalid value for argument `groups`: expected integer group ids. "
            f"Received: groups={_short(groups)} (e.g. {bad[0]!r} of type {type(bad[0]).__name__})"
        )
    return [int(g) for g in items]
