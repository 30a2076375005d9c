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

The kernel layout assumed by the group penalties is Keras's: the last axis is the
units or filters (Dense `(in, out)`, ConvND `(..., in, out)`), the one before it the
inputs or channels; an Embedding matrix `(vocab, dim)` reads its rows as inputs.

Mapping to scikit-learn for a mean-squared-error loss: Keras's `"mse"` is twice
scikit-learn's data term `1/(2n) ||y - Xw||^2`, so `Lasso(alpha)` is
`L1(strength=2 * alpha)`, and `ElasticNet(alpha, l1_ratio=rho)` is
`ElasticNet(strength=alpha * (1 + rho), l1_ratio=2 * rho / (1 + rho))`.
"""

import keras
import numpy as np
from keras import ops

from kreg import _math
from kreg import _validation

__all__ = ["Regularizer", "L1", "L2", "ElasticNet", "GroupLasso", "SparseGroupLasso"]


def _config_float(value):
    """The shortest decimal that round-trips the float32 value (0.01, not 0.009999999776)."""
    return float(repr(np.float32(value)).removeprefix("np.float32(").removesuffix(")"))


class Regularizer(keras.regularizers.Regularizer):
    """Base class of kreg's regularizers: a strength variable, a value and a prox.

    Subclasses implement `_value(w)` (the penalty *without* the strength) and
    `_prox(w, step, strength)`, both on tensors already in the compute dtype
    (float32 or wider), and extend `get_config()` with their own arguments.

    Args:
        strength: non-negative finite float; the initial value of `self.strength`.
    """

    def __init__(self, strength):
        strength = _validation.check_strength(strength)
        self._strength = keras.Variable(
            strength, dtype="float32", trainable=False, name="strength"
        )
        # Internal hooks:
        # - `_prox_only` (switched on by kreg.Proximal): the penalty enters the loss
        #   without a gradient, because the optimizer applies it through the prox
        #   instead. A variable, read when the step runs: Keras builds the optimizer
        #   inside the first traced train step, after the loss was traced.
        # - `_strength_source` (set by kreg.callbacks.StrengthScheduler(update="step"),
        #   decided before a train step is traced): a callable returning this step's
        #   strength, computed inside the compiled step; the value is written to
        #   `self.strength` before it is used.
        self._prox_only = keras.Variable(False, dtype="bool", trainable=False, name="prox_only")
        self._strength_source = None

    @property
    def strength(self):
        """The strength, a non-trainable float32 `keras.Variable`; `assign` to change it."""
        return self._strength

    def __call__(self, x):
        """The penalty `R(x)` as a scalar tensor of dtype `keras.config.floatx()`.

        It is computed in float32 or wider and returned in Keras's float type, the
        dtype in which a model sums its losses, so a kreg penalty works on float16,
        bfloat16 and float64 layers alike (Keras's own regularizers return the
        weight's dtype, which a float32 model cannot add to its loss).
        """
        xc, dtype = _math._upcast(x)
        if self._strength_source is not None:
            self._strength.assign(ops.cast(self._strength_source(), "float32"))
        value = ops.cast(self._strength, dtype) * self._value(xc)
        value = ops.where(self._prox_only, ops.stop_gradient(value), value)
        return ops.cast(value, keras.config.floatx())

    def prox(self, w, step):
        """`argmin_y 1/2 ||y - w||^2 + step * R(y)` (see the class docstring).

        Args:
            w: the weight, a tensor or variable of any float dtype.
            step: non-negative scalar, or a tensor broadcastable to `w` with one
                step per weight (a diagonal metric).

        Returns:
            The prox point, a tensor of `w`'s shape and dtype.
        """
        step = _validation.check_step(step)
        w = ops.convert_to_tensor(w)
        wc, dtype = _math._upcast(w)
        step = ops.cast(step, dtype)
        strength = ops.cast(self._strength, dtype)
        return ops.cast(self._prox(wc, step, strength), w.dtype)

    def _value(self, w):
        raise NotImplementedError

    def _prox(self, w, step, strength):
        raise NotImplementedError

    def get_config(self):
        return {"strength": _config_float(ops.convert_to_numpy(self._strength))}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="kreg")
class L1(Regularizer):
    """Lasso penalty `R(w) = strength * sum_i |w_i|`.

    Prox: `soft_threshold(w, step * strength) = sign(w) * max(|w| - step * strength, 0)`.

    `kreg.L1(a)` has the value of `keras.regularizers.L1(a)`; under scikit-learn's
    scaling with Keras's `"mse"`, `Lasso(alpha)` is `L1(2 * alpha)`.

    Args:
        strength: non-negative float, held in the variable `self.strength`.

    Example:

    >>> import numpy as np, kreg
    >>> reg = kreg.L1(0.5)
    >>> float(reg(np.array([1.0, -2.0, 0.25])))
    1.625
    >>> np.asarray(reg.prox(np.array([1.0, -2.0, 0.25]), 1.0)).tolist()
    [0.5, -1.5, 0.0]
    """

    def __init__(self, strength=0.01):
        super().__init__(strength)

    def _value(self, w):
        return _math.l1_value(w)

    def _prox(self, w, step, strength):
        return _math.soft_threshold(w, step * strength)


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

    def _value(self, w):
        return _math.l2_value(w)

    def _prox(self, w, step, strength):
        return _math.elastic_net_prox(w, step, strength, 0.0)


@keras.saving.register_keras_serializable(package="kreg")
class ElasticNet(Regularizer):
    """Elastic net `R(w) = strength * (r * sum_i |w_i| + (1 - r) * sum_i w_i^2)`, `r = l1_ratio`.

    Prox: `soft_threshold(w, step * strength * r) / (1 + 2 * step * strength * (1 - r))`.

    `ElasticNet(s, 1)` is `L1(s)`, `ElasticNet(s, 0)` is `L2(s)`, and
    `ElasticNet(2 * a, 0.5)` is `keras.regularizers.L1L2(a, a)`. scikit-learn's
    `ElasticNet(alpha, l1_ratio=rho)` with Keras's `"mse"` is
    `ElasticNet(alpha * (1 + rho), 2 * rho / (1 + rho))`.

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        l1_ratio: float in [0, 1], the share of the L1 term.

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

    def __init__(self, strength=0.01, l1_ratio=0.5):
        super().__init__(strength)
        self.l1_ratio = _validation.check_l1_ratio(l1_ratio)

    def _value(self, w):
        r = self.l1_ratio
        return r * _math.l1_value(w) + (1 - r) * _math.l2_value(w)

    def _prox(self, w, step, strength):
        return _math.elastic_net_prox(w, step, strength, self.l1_ratio)

    def get_config(self):
        return {**super().get_config(), "l1_ratio": self.l1_ratio}


class _Grouped(Regularizer):
    """Shared machinery of the group penalties: the `groups` argument and its checks."""

    def __init__(self, strength, groups):
        super().__init__(strength)
        self.groups = _validation.check_groups(groups)
        self._groupings = {}

    def grouping(self, shape):
        """The `Grouping` of a weight of `shape`; refuses shapes the groups cannot split."""
        shape = tuple(shape)
        if shape in self._groupings:
            return self._groupings[shape]
        name = type(self).__name__
        if any(s is None for s in shape):
            raise ValueError(
                f"{name} needs a weight of fully known shape. Received: a weight of shape {shape}"
            )
        if len(shape) < 2:
            raise ValueError(
                f"{name}(groups={self.groups!r}) needs a weight of rank >= 2 (units or "
                "filters on the last axis, inputs or channels on the one before), such as "
                "a Dense or Conv kernel or an Embedding matrix; use kreg.L1 or kreg.L2 for "
                f"biases. Received: a weight of shape {shape}"
            )
        if isinstance(self.groups, str):
            grouping = _math.Grouping(self.groups, shape)
        else:
            if len(self.groups) != shape[-2]:
                raise ValueError(
                    f"{name} was given {len(self.groups)} group ids, but a weight of shape "
                    f"{shape} has {shape[-2]} inputs (its second-to-last axis): expected one "
                    "group id per input."
                )
            grouping = _math.Grouping("ids", shape, ids=self.groups)
        self._groupings[shape] = grouping
        return grouping

    def group_norms(self, w):
        """`||w_g||_2` for every group of `w`, a tensor of shape `(num_groups,)`."""
        w = ops.convert_to_tensor(w)
        wc, _ = _math._upcast(w)
        return self.grouping(w.shape).group_norms(wc)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="kreg")
class GroupLasso(_Grouped):
    """Group lasso `R(w) = strength * sum_g sqrt(p_g) * ||w_g||_2`, `p_g` = weights in group g.

    Prox (block soft-thresholding):
    `y_g = w_g * max(0, 1 - step * strength * sqrt(p_g) / ||w_g||_2)`; a group whose
    norm is below its threshold becomes exactly zero as a whole.

    `groups` says what a group is, for a kernel `(..., inputs, units)`:
    `"units"` (all weights feeding one unit or filter: pruning units),
    `"inputs"` (all weights leaving one input feature or channel: feature
    selection), or a sequence of integer ids, one per input, where inputs with the
    same id form one group across all units (e.g. the one-hot columns of one
    categorical variable). Groups of one weight each reduce it to `L1`.

    Args:
        strength: non-negative float, held in the variable `self.strength`.
        groups: `"units"`, `"inputs"` or a sequence of integer group ids.

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

    def __init__(self, strength=0.01, groups="units"):
        super().__init__(strength, groups)

    def _value(self, w):
        return _math.group_lasso_value(w, self.grouping(w.shape))

    def _prox(self, w, step, strength):
        return _math.group_lasso_prox(w, step, strength, self.grouping(w.shape))


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

    def _value(self, w):
        return _math.sparse_group_lasso_value(w, self.grouping(w.shape), self.l1_ratio)

    def _prox(self, w, step, strength):
        return _math.sparse_group_lasso_prox(
            w, step, strength, self.l1_ratio, self.grouping(w.shape)
        )

    def get_config(self):
        return {**super().get_config(), "l1_ratio": self.l1_ratio}
