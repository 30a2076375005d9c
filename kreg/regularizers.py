"""kreg's regularizers: Keras regularizers with a live strength and an exact prox.

Every class here is a `keras.regularizers.Regularizer`, so it goes wherever Keras
takes one (`kernel_regularizer=`, `bias_regularizer=`, `embeddings_regularizer=`).
On top of the Keras contract (`reg(w)` is the penalty, `get_config()` its
arguments) each one has:

* `reg.strength`: a non-trainable `keras.Variable`. `reg.strength.assign(v)`
  changes the penalty of the next step of an already compiled model (with and
  without `jit_compile`), because the compiled step reads the variable instead of
  baking in a constant. One regularizer object shared by several layers is one
  strength for all of them.
* `reg.prox(w, step)`: `argmin_y 1/2 ||y - w||^2 + step * R(y)`, where `R(w) =
  reg(w)` includes the strength. `step` is a scalar or a tensor broadcastable to
  `w` (one step per weight: the prox is then taken in that diagonal metric,
  `argmin_y sum_i (y_i - w_i)^2 / (2 step_i) + R(y)`, which is what adaptive
  optimizers need). It returns exact zeros and the input's dtype.

The group penalties read a layer's units and inputs from `kreg.layouts` (a
Conv2DTranspose's filters, an LSTM unit's four gate columns, an EinsumDense's output
axes, ...), so `groups="units"` always means the layer's units. A plain tensor or
array is read in Keras's default kernel layout `(..., inputs, units)`.

Nothing is silently wrong: a NaN weight gives a NaN penalty and a NaN prox group
(never an exact zero), and bad strengths, steps and dtypes raise in the Keras voice
(`ValueError` for a strength that is not a non-negative finite float32 number, as
Keras's own regularizers).

Mapping to scikit-learn for a mean-squared-error loss: Keras's `"mse"` is twice
scikit-learn's data term `1/(2n) ||y - Xw||^2`, so `Lasso(alpha)` is
`L1(strength=2 * alpha)`, and `ElasticNet(alpha, l1_ratio=rho)` is
`ElasticNet(strength=alpha * (1 + rho), l1_ratio=2 * rho / (1 + rho))`.
"""

import keras
import numpy as np
from keras import ops

from kreg import _backend
from kreg import _keras
from kreg import _math
from kreg import _math_nonconvex
from kreg import _validation
from kreg import layouts

__all__ = ["Regularizer", "L1", "L2", "ElasticNet", "GroupLasso", "SparseGroupLasso"]


def _config_float(value):
    """The shortest decimal that round-trips the float32 value (0.01, not 0.009999999776)."""
    return float(repr(np.float32(value)).removeprefix("np.float32(").removesuffix(")"))


def _check_weights(weights, name="weights", ndim=None):
    """Non-negative finite penalty weights as a float64 NumPy array (None stays None)."""
    if weights is None:
        return None
    try:
        array = np.array(weights, dtype="float64")
    except (TypeError, ValueError):
        raise _validation.invalid(name, "an array of non-negative finite numbers", weights) from None
    if array.size == 0 or (ndim is not None and array.ndim != ndim):
        what = "a non-empty 1-D array" if ndim == 1 else "a non-empty array"
        raise _validation.invalid(name, f"{what} of non-negative finite numbers", weights)
    if not (np.all(np.isfinite(array)) and np.all(array >= 0)):
        raise _validation.invalid(
            name,
            "non-negative finite numbers (for an adaptive lasso, clip 1 / |w|^gamma, "
            "e.g. 1 / np.maximum(np.abs(w), 1e-6) ** gamma)",
            weights,
        )
    return array


def _check_positive(value):
    if not isinstance(value, (bool, np.bool_)):
        raise _validation.invalid("positive", "True or False", value)
    return bool(value)


def _weights_for(weights, w, owner):
    """`weights` as a tensor of `w`'s dtype, refused unless it broadcasts to `w`'s shape."""
    shape = tuple(w.shape)
    try:
        ok = tuple(np.broadcast_shapes(weights.shape, shape)) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{owner}: `weights` of shape {weights.shape} does not broadcast to the weight's "
            f"shape {shape}: expected one weight per coefficient (or an array broadcastable "
            "to the weight)."
        )
    return ops.convert_to_tensor(weights, w.dtype)


def kreg_regularizer(variable):
    """The kreg regularizer of `variable`, or None (the one definition used everywhere)."""
    regularizer = getattr(variable, "regularizer", None)
    return regularizer if isinstance(regularizer, Regularizer) else None


class Strength(keras.Variable):
    """The strength variable: a float32 `keras.Variable` that refuses bad values.

    An `assign` with a concrete value (a number, an array, an eager tensor) is
    checked like the constructor's `strength` argument: a negative, non-finite
    or non-float32 value raises instead of being kept (and saved into a file
    that could not be loaded). A value computed inside a compiled step cannot be
    checked there; `kreg.callbacks.StrengthScheduler` checks its own.
    """

    def __init__(self, initial_value, *args, **kwargs):
        super().__init__(initial_value, *args, **kwargs)
        # The host copy read by a compiled JAX step (see kreg._backend.read_strength).
        self._host = np.float32(initial_value)

    def assign(self, value):
        concrete = _backend.concrete(value)
        if concrete is not None:
            _validation.check_strength_array(concrete, name="strength")
        result = super().assign(value)
        if concrete is not None:
            self._host = np.float32(concrete)
        return result

    def _host_value(self):
        return np.asarray(self._host, dtype="float32")


class Regularizer(keras.regularizers.Regularizer):
    """Base class of kreg's regularizers: a strength variable, a value, a gradient and a prox.

    Subclasses implement `_value(w, layout)` (the penalty *without* the strength;
    or `_penalty(w, strength, layout)`, the penalty *with* it, where the strength
    enters nonlinearly, as in `kreg.MCP`),
    `_gradient(w, strength, layout)` and `_prox(w, step, strength, layout)`, on
    tensors already in the compute dtype (float32 or wider), and extend
    `get_config()` with their own arguments. `layout` is the weight's
    `kreg.layouts.Layout` for the group penalties, None for the others.

    Args:
        strength: non-negative finite float; the initial value of `self.strength`.
    """

    def __init__(self, strength):
        strength = _validation.check_strength(strength)
        self._strength = Strength(strength, dtype="float32", trainable=False, name="strength")
        # Internal hook, set by kreg.callbacks.StrengthScheduler(update="step") before
        # a train step is traced: a callable returning this step's strength, computed
        # inside the compiled step; the value is written to `self.strength` before use.
        self._strength_source = None

    @property
    def strength(self):
        """The strength, a non-trainable float32 `keras.Variable`; `assign` to change it."""
        return self._strength

    def _layout(self, weight, caller=None):
        """The weight's layout where the penalty needs one (group penalties), else None."""
        return None

    def __call__(self, x):
        """The penalty `R(x)` as a scalar tensor of dtype `keras.config.floatx()`.

        It is computed in float32 or wider and returned in Keras's float type, the
        dtype in which a model sums its losses, so a kreg penalty works on float16,
        bfloat16 and float64 layers alike (Keras's own regularizers return the
        weight's dtype, which a float32 model cannot add to its loss). A NaN
        weight gives a NaN penalty. Group penalties read the units and inputs
        from the layer that owns the weight (see `kreg.layouts`).
        """
        layout = self._layout(x, _keras.regularization_caller())
        xc, dtype = _math._upcast(ops.convert_to_tensor(x))
        if self._strength_source is not None:
            # The penalty uses the computed value, not a read of the variable: on PyTorch
            # that read is the variable's own storage, which autograd saves for the
            # backward pass, and a second weight sharing this regularizer assigns it in
            # place within the same step.
            step_strength = ops.cast(self._strength_source(), "float32")
            self._strength.assign(step_strength)
            strength = ops.cast(step_strength, dtype)
        else:
            strength = self._strength_in(xc, dtype)
        value = self._penalty(xc, strength, layout)
        return ops.cast(value, keras.config.floatx())

    def _strength_in(self, like, dtype):
        """The strength as a tensor of `dtype`, read live inside a compiled step."""
        return ops.cast(_backend.read_strength(self._strength, like), dtype)

    def gradient(self, w):
        """The gradient of `R` at `w`, in closed form, as autodiff takes it.

        At a kink (a zero weight for L1, a zero group for the group lasso) it is
        the value autodiff gives, 0. `kreg.Proximal` subtracts it from the
        gradients it receives, so the penalty acts through the prox alone.
        """
        return self._gradient_in_layout(w, self._layout(w))

    def _gradient_in_layout(self, w, layout):
        w = ops.convert_to_tensor(w)
        wc, dtype = _math._upcast(w)
        return ops.cast(self._gradient(wc, self._strength_in(wc, dtype), layout), w.dtype)

    def prox(self, w, step):
        """`argmin_y 1/2 ||y - w||^2 + step * R(y)` (see the module docstring).

        Args:
            w: the weight, a tensor or variable of a float dtype.
            step: non-negative finite scalar, or a tensor/array broadcastable to
                `w`'s shape (one step per weight: a diagonal metric).

        Returns:
            The prox point, a tensor of `w`'s shape and dtype. A NaN weight stays
            NaN (its whole group for a group penalty).

        Raises:
            ValueError: a negative or non-finite step, or one whose shape does not
                broadcast to `w`'s shape.
            TypeError: a weight that is not floating-point.
        """
        return self._prox_in_layout(w, step, self._layout(w))

    def _prox_in_layout(self, w, step, layout):
        w = ops.convert_to_tensor(w)
        _validation.check_float_weight(w, type(self).__name__)
        wc, dtype = _math._upcast(w)
        step = _validation.checked_step(step, tuple(w.shape), dtype)
        return ops.cast(self._prox(wc, step, self._strength_in(wc, dtype), layout), w.dtype)

    def _penalty(self, w, strength, layout):
        """`R(w)` with the strength; `strength * _value` unless the strength enters nonlinearly."""
        return strength * self._value(w, layout)

    def _value(self, w, layout):
        raise NotImplementedError

    def _gradient(self, w, strength, layout):
        raise NotImplementedError

    def _prox(self, w, step, strength, layout):
        raise NotImplementedError

    def get_config(self):
        return {"strength": _config_float(_backend.to_numpy(self._strength))}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="kreg")
class L1(Regularizer):
    """Lasso penalty `R(w) = strength * sum_i v_i |w_i|` (`v_i = 1` unless `weights` is given).

    Prox: `soft_threshold(w, step * strength * v) = sign(w) * max(|w| - step * strength * v, 0)`;
    with `positive=True`, `max(w - step * strength * v, 0)`.

    `kreg.L1(a)` has the value of `keras.regularizers.L1(a)`; under scikit-learn's
    scaling with Keras's `"mse"`, `Lasso(alpha)` is `L1(2 * alpha)` and
    `Lasso(alpha, positive=True)` is `L1(2 * alpha, positive=True)`.

    **Weights (the adaptive lasso, Zou 2006).** `weights` is an array of
    non-negative finite numbers broadcastable to the weight's shape (one per
    coefficient, or e.g. one per row), saved in the config. The adaptive lasso
    fits once (ridge, least squares or a plain lasso), sets
    `weights = 1 / np.maximum(np.abs(w_first), eps) ** gamma` (gamma = 1 is usual;
    clipping keeps a zero first-fit coefficient from an infinite weight), and
    refits with `L1(strength, weights=weights)`: large coefficients are barely
    shrunk, small ones strongly, which removes most of the lasso's bias.
    scikit-learn's equivalent is a lasso on the columns `X / weights`.

    **Non-negative lasso.** `positive=True` constrains the weights to `w >= 0`
    as scikit-learn's `Lasso(positive=True)` does: the prox projects, so under
    `kreg.Proximal` every weight stays non-negative. The value `reg(w)` stays
    `strength * sum_i v_i |w_i|`, the penalty of the feasible set, also for a
    negative weight (rather than `+inf`, which would make the loss of a
    not-yet-projected weight infinite); the constraint acts through the prox only,
    so a plain optimizer (without `kreg.Proximal`) does not enforce it.

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        weights: None, or non-negative finite per-coefficient weights `v`
            broadcastable to the weight.
        positive: if True, constrain the weights to be non-negative.

    References:
        Zou, "The adaptive lasso and its oracle properties", JASA, 2006.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.L1(0.5)
    >>> float(reg(np.array([1.0, -2.0, 0.25])))
    1.625
    >>> np.asarray(reg.prox(np.array([1.0, -2.0, 0.25]), 1.0)).tolist()
    [0.5, -1.5, 0.0]
    >>> np.asarray(kreg.L1(0.5, positive=True).prox(np.array([1.0, -2.0]), 1.0)).tolist()
    [0.5, 0.0]
    >>> np.asarray(kreg.L1(0.5, weights=[2.0, 0.0]).prox(np.array([1.0, -2.0]), 1.0)).tolist()
    [0.0, -2.0]
    """

    def __init__(self, strength=0.01, weights=None, positive=False):
        super().__init__(strength)
        self.weights = _check_weights(weights)
        self.positive = _check_positive(positive)

    def _v(self, w):
        return None if self.weights is None else _weights_for(self.weights, w, "L1")

    def _value(self, w, layout):
        if self.weights is None:
            return _math.l1_value(w)
        return _math_nonconvex.weighted_l1_value(w, self._v(w))

    def _gradient(self, w, strength, layout):
        v = self._v(w)
        gradient = strength * _math.l1_gradient(w)
        return gradient if v is None else gradient * v

    def _prox(self, w, step, strength, layout):
        v = self._v(w)
        if self.positive:
            return _math_nonconvex.positive_elastic_net_prox(w, step, strength, 1.0, v)
        return _math.soft_threshold(w, step * strength if v is None else step * strength * v)

    def get_config(self):
        return {
            **super().get_config(),
            "weights": None if self.weights is None else self.weights.tolist(),
            "positive": self.positive,
        }


@keras.saving.register_keras_serializable(package="kreg")
class L2(Regularizer):
    """Ridge penalty `R(w) = strength * sum_i w_i^2` (no 1/2, as in Keras).

    Prox: `w / (1 + 2 * step * strength)`: it shrinks and never makes zeros.

    `kreg.L2(a)` has the value of `keras.regularizers.L2(a)`; with Keras's
    `"mse"`, scikit-learn's `Ridge(alpha)` on n samples is `L2(alpha / n)`.

    Args:
        strength: non-negative float, held in the variable `self.strength`.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.L2(0.5)
    >>> float(reg(np.array([1.0, -2.0])))
    2.5
    >>> np.asarray(reg.prox(np.array([1.0, -2.0]), 1.0)).tolist()
    [0.5, -1.0]
    """

    def __init__(self, strength=0.01):
        super().__init__(strength)

    def _value(self, w, layout):
        return _math.l2_value(w)

    def _gradient(self, w, strength, layout):
        return 2 * strength * w

    def _prox(self, w, step, strength, layout):
        return _math.elastic_net_prox(w, step, strength, 0.0)


@keras.saving.register_keras_serializable(package="kreg")
class ElasticNet(Regularizer):
    """Elastic net `R(w) = strength * (r * sum_i |w_i| + (1 - r) * sum_i w_i^2)`, `r = l1_ratio`.

    Prox: `soft_threshold(w, step * strength * r) / (1 + 2 * step * strength * (1 - r))`.

    `ElasticNet(s, 1)` is `L1(s)`, `ElasticNet(s, 0)` is `L2(s)`, and
    `ElasticNet(2 * a, 0.5)` is `keras.regularizers.L1L2(a, a)`. scikit-learn's
    `ElasticNet(alpha, l1_ratio=rho)` with Keras's `"mse"` is
    `ElasticNet(alpha * (1 + rho), 2 * rho / (1 + rho))` (with `positive=True`
    on both sides for the non-negative version).

    `positive=True` constrains the weights to `w >= 0` (scikit-learn's
    `ElasticNet(positive=True)`): the prox becomes
    `max(w - step * strength * r, 0) / (1 + 2 * step * strength * (1 - r))`. As for
    `L1(positive=True)`, the value `reg(w)` is the formula above for any `w` and
    the constraint acts through the prox, i.e. under `kreg.Proximal`.

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        l1_ratio: float in [0, 1], the share of the L1 term.
        positive: if True, constrain the weights to be non-negative.

    References:
        Zou & Hastie, "Regularization and variable selection via the elastic
        net", JRSS B, 2005.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.ElasticNet(1.0, l1_ratio=0.5)
    >>> float(reg(np.array([1.0, -2.5])))
    5.375
    >>> np.asarray(reg.prox(np.array([1.0, -2.5]), 0.5)).tolist()
    [0.5, -1.5]
    """

    def __init__(self, strength=0.01, l1_ratio=0.5, positive=False):
        super().__init__(strength)
        self.l1_ratio = _validation.check_l1_ratio(l1_ratio)
        self.positive = _check_positive(positive)

    def _value(self, w, layout):
        r = self.l1_ratio
        return r * _math.l1_value(w) + (1 - r) * _math.l2_value(w)

    def _gradient(self, w, strength, layout):
        r = self.l1_ratio
        return strength * (r * _math.l1_gradient(w) + 2 * (1 - r) * w)

    def _prox(self, w, step, strength, layout):
        if self.positive:
            return _math_nonconvex.positive_elastic_net_prox(w, step, strength, self.l1_ratio)
        return _math.elastic_net_prox(w, step, strength, self.l1_ratio)

    def get_config(self):
        return {**super().get_config(), "l1_ratio": self.l1_ratio, "positive": self.positive}


class _Grouped(Regularizer):
    """Shared machinery of the group penalties: the `groups` argument and the layout."""

    def __init__(self, strength, groups):
        super().__init__(strength)
        self.groups = _validation.check_groups(groups)
        self._groupings = {}

    def _layout(self, weight, caller=None):
        return layouts.resolve(weight, caller)

    def grouping(self, weight):
        """The `Grouping` of `weight`: a layer's variable, a tensor, a `Layout` or a shape.

        A layer's variable is grouped by its layer's layout (`kreg.layouts`); a
        tensor, an array or a shape by Keras's default `(..., inputs, units)`.
        Refuses, naming the weight, what its layout cannot group.
        """
        if isinstance(weight, layouts.Layout):
            layout = weight
        elif isinstance(weight, (tuple, list)):
            layout = layouts.generic(tuple(weight))
        else:
            layout = self._layout(weight)
        if layout in self._groupings:
            return self._groupings[layout]
        grouping = self._make_grouping(layout)
        self._groupings[layout] = grouping
        return grouping

    def _make_grouping(self, layout):
        name = type(self).__name__
        shape = layout.shape
        what = f"weight '{layout.name}'" if layout.name else "a weight"
        if any(s is None for s in shape):
            raise ValueError(
                f"{name} needs a weight of fully known shape. Received: {what} of shape {shape}"
            )
        if len(shape) < 2:
            raise ValueError(
                f"{name}(groups={self.groups!r}) needs a weight of rank >= 2 with units and "
                "inputs, such as a Dense or Conv kernel or an Embedding matrix; use kreg.L1 "
                f"or kreg.L2 for biases and scales. Received: {what} of shape {shape}"
            )
        mode = self.groups if isinstance(self.groups, str) else "inputs"
        if layout.axes(mode) is None:
            raise ValueError(
                f"{name}(groups={mode!r}) cannot group {what} of shape {shape}: "
                f"{layout.reason or 'its layout has no ' + mode}."
            )
        if isinstance(self.groups, str):
            return _math.Grouping(layout, self.groups)
        if len(self.groups) != layout.num_inputs:
            raise ValueError(
                f"{name} was given {len(self.groups)} group ids, but {what} of shape "
                f"{shape} has {layout.num_inputs} inputs: expected one group id per input."
            )
        return _math.Grouping(layout, "ids", ids=self.groups)

    def group_norms(self, w):
        """`||w_g||_2` for every group of `w`, a tensor of shape `(num_groups,)`."""
        grouping = self.grouping(w)
        wc, _ = _math._upcast(ops.convert_to_tensor(w))
        return grouping.group_norms(grouping.to_view(wc))

    def _in_view(self, w, step, layout, fn):
        """`fn(w_view, step_view, grouping)` mapped back to `w`'s shape."""
        grouping = self.grouping(layout)
        if step is not None and len(step.shape) != 0:
            step = grouping.to_view(ops.broadcast_to(step, grouping.shape))
        return grouping.from_view(fn(grouping.to_view(w), step, grouping))

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="kreg")
class GroupLasso(_Grouped):
    """Group lasso `R(w) = strength * sum_g sqrt(p_g) * ||w_g||_2`, `p_g` = weights in group g.

    Prox (block soft-thresholding):
    `y_g = w_g * max(0, 1 - step * strength * sqrt(p_g) / ||w_g||_2)`; a group whose
    norm is below its threshold becomes exactly zero as a whole.

    `groups` says what a group is, in the layer's own terms (see `kreg.layouts`):
    `"units"` (all weights feeding one unit or filter: pruning units),
    `"inputs"` (all weights leaving one input feature or channel: feature
    selection), or a sequence of integer ids, one per input, where inputs with the
    same id form one group across all units (e.g. the one-hot columns of one
    categorical variable). Groups of one weight each reduce it to `L1`. A plain
    tensor is read as `(..., inputs, units)`.

    `weights` (one non-negative finite number `v_g` per group, in the order of
    `reg.group_norms(w)`, saved in the config) makes it
    `strength * sum_g v_g * sqrt(p_g) * ||w_g||_2`, the adaptive group lasso:
    fit, set `v_g = 1 / max(||w_g||, eps)`, refit (see `kreg.L1`). skglm's
    `WeightedGroupL2(alpha, weights=v * sqrt(p))` is `GroupLasso(2 * alpha, weights=v)`
    with Keras's `"mse"`.

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        groups: `"units"`, `"inputs"` or a sequence of integer group ids.
        weights: None, or a 1-D array of non-negative finite per-group weights.

    References:
        Yuan & Lin, "Model selection and estimation in regression with grouped
        variables", JRSS B, 2006.

    Example:

    >>> import numpy as np, kreg
    >>> w = np.array([[3.0, 0.1], [4.0, 0.0]])   # 2 inputs, 2 units
    >>> reg = kreg.GroupLasso(1.0, groups="units")
    >>> round(float(reg(w)), 4)                  # sqrt(2) * (5 + 0.1)
    7.2125
    >>> np.round(np.asarray(reg.prox(w, 0.5 / np.sqrt(2))), 4).tolist()
    [[2.7, 0.0], [3.6, 0.0]]
    """

    def __init__(self, strength=0.01, groups="units", weights=None):
        super().__init__(strength, groups)
        self.weights = _check_weights(weights, ndim=1)

    def _group_scale(self, grouping, dtype):
        """`v_g * sqrt(p_g)` per group, refused unless there is one weight per group."""
        if len(self.weights) != grouping.num_groups:
            raise ValueError(
                f"GroupLasso was given {len(self.weights)} group weights, but the weight of "
                f"shape {grouping.shape} has {grouping.num_groups} groups "
                f"(groups={self.groups!r}): expected one weight per group."
            )
        return ops.convert_to_tensor(self.weights * grouping.sqrt_sizes, dtype)

    def _value(self, w, layout):
        grouping = self.grouping(layout)
        if self.weights is not None:
            lam = self._group_scale(grouping, w.dtype)
            return _math_nonconvex.weighted_group_lasso_value(grouping.to_view(w), grouping, lam)
        return _math.group_lasso_value(grouping.to_view(w), grouping)

    def _gradient(self, w, strength, layout):
        if self.weights is not None:
            lam = self._group_scale(self.grouping(layout), w.dtype)
            return strength * self._in_view(
                w, None, layout,
                lambda v, _, g: _math_nonconvex.weighted_group_lasso_gradient(v, g, lam),
            )
        return strength * self._in_view(
            w, None, layout, lambda v, _, g: _math.group_lasso_gradient(v, g)
        )

    def _prox(self, w, step, strength, layout):
        if self.weights is not None:
            lam = strength * self._group_scale(self.grouping(layout), w.dtype)
            return self._in_view(
                w, step, layout,
                lambda v, s, g: _math_nonconvex.weighted_group_lasso_prox(v, s, g, lam),
            )
        return self._in_view(
            w, step, layout, lambda v, s, g: _math.group_lasso_prox(v, s, strength, g)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "weights": None if self.weights is None else self.weights.tolist(),
        }


@keras.saving.register_keras_serializable(package="kreg")
class SparseGroupLasso(_Grouped):
    """Sparse group lasso `R(w) = strength * (r * sum_i |w_i| + (1 - r) * sum_g sqrt(p_g) * ||w_g||_2)`.

    With `r = l1_ratio`. Prox: soft-thresholding then block soft-thresholding,
    `y = group_prox(soft_threshold(w, step * strength * r))` with the group prox at
    strength `strength * (1 - r)`; it zeroes single weights and whole groups.

    `l1_ratio=1` is `L1`, `l1_ratio=0` is `GroupLasso`; `groups` as in `GroupLasso`.

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        l1_ratio: float in [0, 1], the share of the L1 term.
        groups: `"units"`, `"inputs"` or a sequence of integer group ids.

    References:
        Simon, Friedman, Hastie & Tibshirani, "A sparse-group lasso", Journal of
        Computational and Graphical Statistics, 2013.

    Example:

    >>> import numpy as np, kreg
    >>> w = np.array([[3.0, 0.1], [4.0, 0.0]])
    >>> reg = kreg.SparseGroupLasso(1.0, l1_ratio=0.5, groups="units")
    >>> round(float(reg(w)), 4)                  # 0.5 * 7.1 + 0.5 * sqrt(2) * 5.1
    7.1562
    """

    def __init__(self, strength=0.01, l1_ratio=0.5, groups="units"):
        super().__init__(strength, groups)
        self.l1_ratio = _validation.check_l1_ratio(l1_ratio)

    def _value(self, w, layout):
        grouping = self.grouping(layout)
        return _math.sparse_group_lasso_value(grouping.to_view(w), grouping, self.l1_ratio)

    def _gradient(self, w, strength, layout):
        r = self.l1_ratio
        return strength * self._in_view(
            w,
            None,
            layout,
            lambda v, _, g: r * _math.l1_gradient(v) + (1 - r) * _math.group_lasso_gradient(v, g),
        )

    def _prox(self, w, step, strength, layout):
        return self._in_view(
            w,
            step,
            layout,
            lambda v, s, g: _math.sparse_group_lasso_prox(v, s, strength, self.l1_ratio, g),
        )

    def get_config(self):
        return {**super().get_config(), "l1_ratio": self.l1_ratio}
