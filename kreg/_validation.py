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


def check_strength(value, name="strength"):
    """A non-negative finite Python/NumPy real number, returned as a float."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if not _is_real(value):
        raise TypeError(
            f"Invalid type for argument `{name}`: expected a non-negative finite "
            f"number (int or float). Received: {name}={_short(value)} "
            f"of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise invalid(name, "a non-negative finite number", value)
    return value


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


def check_step(step):
    """A Python/NumPy step must be a non-negative finite number (not a bool, str or None);
    tensors pass through."""
    if _is_real(step) or step is None or isinstance(step, (str, bool, np.bool_)):
        return check_strength(step, name="step")
    return step
