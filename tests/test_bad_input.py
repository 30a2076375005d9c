"""Every bad input of the issue is refused with a message naming what went wrong.

At construction: a strength that is negative, NaN, infinite or not a number; an
l1_ratio outside [0, 1] or NaN; an unknown `groups` string; group ids that are not
integers. At first use: group ids whose count does not match the weight's inputs,
and a group mode on a rank-1 weight (a bias).
"""

import re

import keras
import numpy as np
import pytest

import kreg

pytestmark = pytest.mark.usefixtures("device")

ALL = [kreg.L1, kreg.L2, kreg.ElasticNet, kreg.GroupLasso, kreg.SparseGroupLasso]
WITH_RATIO = [kreg.ElasticNet, kreg.SparseGroupLasso]
GROUPED = [kreg.GroupLasso, kreg.SparseGroupLasso]


def names(classes):
    return [c.__name__ for c in classes]


# ------------------------------------------------------------------- strength


@pytest.mark.parametrize("cls", ALL, ids=names(ALL))
@pytest.mark.parametrize(
    "value, shown",
    [(-0.1, "-0.1"), (-1, "-1"), (float("nan"), "nan"), (float("inf"), "inf"),
     (-float("inf"), "-inf"), (np.float32(-2.0), "-2.0")],
    ids=["negative", "negative_int", "nan", "inf", "-inf", "np_negative"],
)
def test_bad_strength_value(cls, value, shown):
    with pytest.raises(ValueError) as info:
        cls(value)
    message = str(info.value)
    assert "`strength`" in message
    assert "non-negative finite" in message  # what was expected
    assert f"Received: strength={shown}" in message  # what was received


@pytest.mark.parametrize("cls", ALL, ids=names(ALL))
@pytest.mark.parametrize(
    "value", ["0.1", None, True, False, np.bool_(True), [0.1], 1j],
    ids=["str", "None", "True", "False", "np_bool", "list", "complex"],
)
def test_non_numeric_strength(cls, value):
    # ValueError, as Keras's own L1/L2/L1L2 raise: kreg's classes are drop-ins.
    with pytest.raises(ValueError) as info:
        cls(value)
    message = str(info.value)
    assert "`strength`" in message
    assert f"Received: strength={value!r}" in message
    assert type(value).__name__ in message


def test_strength_keyword_and_numpy_scalars_are_accepted():
    assert float(kreg.L1(strength=np.float64(0.5)).strength.numpy()) == 0.5
    assert float(kreg.L2(np.array(0.25)).strength.numpy()) == 0.25
    assert float(kreg.ElasticNet(3).strength.numpy()) == 3.0
    assert float(kreg.GroupLasso(0).strength.numpy()) == 0.0


# ------------------------------------------------------------------- l1_ratio


@pytest.mark.parametrize("cls", WITH_RATIO, ids=names(WITH_RATIO))
@pytest.mark.parametrize("value", [-0.01, 1.5, 2, float("nan"), float("inf")])
def test_bad_l1_ratio_value(cls, value):
    with pytest.raises(ValueError) as info:
        cls(0.1, l1_ratio=value)
    message = str(info.value)
    assert "`l1_ratio`" in message and "[0, 1]" in message
    assert f"Received: l1_ratio={float(value)!r}" in message


@pytest.mark.parametrize("cls", WITH_RATIO, ids=names(WITH_RATIO))
@pytest.mark.parametrize("value", ["0.5", None, True])
def test_non_numeric_l1_ratio(cls, value):
    with pytest.raises(TypeError) as info:
        cls(0.1, l1_ratio=value)
    message = str(info.value)
    assert "`l1_ratio`" in message and f"Received: l1_ratio={value!r}" in message


# --------------------------------------------------------------------- groups


@pytest.mark.parametrize("cls", GROUPED, ids=names(GROUPED))
@pytest.mark.parametrize("value", ["rows", "Units", "unit", "", "filters"])
def test_unknown_groups_string(cls, value):
    with pytest.raises(ValueError) as info:
        cls(0.1, groups=value)
    message = str(info.value)
    assert "`groups`" in message
    assert '"units"' in message and '"inputs"' in message  # what was expected
    assert f"Received: groups={value!r}" in message


@pytest.mark.parametrize("cls", GROUPED, ids=names(GROUPED))
@pytest.mark.parametrize(
    "value, culprit",
    [
        ([0.0, 1.0, 1.0], "0.0"),
        ([0, 1, 1.5], "1.5"),
        (["a", "b"], "'a'"),
        ([True, False, True], "True"),
        ([0, None], "None"),
        (np.array([0.0, 1.0]), "0.0"),
        (np.array(["x", "y"]), "'x'"),
    ],
    ids=["floats", "one_float", "strings", "bools", "None", "np_floats", "np_strings"],
)
def test_non_integer_group_ids(cls, value, culprit):
    with pytest.raises(TypeError) as info:
        cls(0.1, groups=value)
    message = str(info.value)
    assert "`groups`" in message and "integer group ids" in message
    assert "Received: groups=" in message
    assert culprit in message  # names the offending id


@pytest.mark.parametrize(
    "value, error",
    [([], ValueError), (np.zeros((2, 2), "int64"), ValueError), (3, TypeError),
     ({0: 1}, TypeError), (None, TypeError)],
    ids=["empty", "2d_array", "int", "dict", "None"],
)
def test_other_bad_groups(value, error):
    with pytest.raises(error, match="`groups`"):
        kreg.GroupLasso(0.1, groups=value)


def test_integer_group_ids_are_accepted():
    assert kreg.GroupLasso(0.1, groups=(3, 3, -1)).groups == [3, 3, -1]
    assert kreg.GroupLasso(0.1, groups=np.array([1, 0], "int8")).groups == [1, 0]
    assert kreg.SparseGroupLasso(0.1, groups=[np.int64(2)]).groups == [2]


# ------------------------------------------------------------------ first use


def mismatch_pattern(n_ids, shape):
    return rf"{n_ids} group ids.*{re.escape(str(shape))}"


@pytest.mark.parametrize("cls", GROUPED, ids=names(GROUPED))
def test_group_ids_length_mismatch_direct(cls):
    reg = cls(0.1, groups=[0, 0, 1])
    w = np.ones((4, 2), "float32")
    for use in (lambda: reg(w), lambda: reg.prox(w, 0.5), lambda: reg.group_norms(w)):
        with pytest.raises(ValueError, match=mismatch_pattern(3, (4, 2))):
            use()
    # Conv kernels: the inputs are the second-to-last axis (channels).
    with pytest.raises(ValueError, match=mismatch_pattern(3, (3, 3, 2, 8))):
        reg(np.ones((3, 3, 2, 8), "float32"))


@pytest.mark.parametrize("cls", GROUPED, ids=names(GROUPED))
def test_group_ids_length_mismatch_in_a_model(cls, rng):
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(3, kernel_regularizer=cls(0.1, groups=[0, 1, 1, 2]))]
    )
    model.compile("sgd", "mse")
    x = rng.normal(size=(4, 5)).astype("float32")
    y = rng.normal(size=(4, 3)).astype("float32")
    with pytest.raises(ValueError, match=mismatch_pattern(4, (5, 3))):
        model.train_on_batch(x, y)
    with pytest.raises(ValueError, match=mismatch_pattern(4, (5, 3))):
        model.losses


@pytest.mark.parametrize("cls", GROUPED, ids=names(GROUPED))
@pytest.mark.parametrize("groups", ["units", "inputs", [0, 1, 2]])
def test_rank_one_weight_is_refused(cls, groups, rng):
    reg = cls(0.1, groups=groups)
    with pytest.raises(ValueError, match=r"rank >= 2.*shape \(3,\)"):
        reg(np.ones(3, "float32"))
    with pytest.raises(ValueError, match=r"rank >= 2.*shape \(3,\)"):
        reg.prox(np.ones(3, "float32"), 0.5)
    # As a Dense bias_regularizer the error surfaces when the model is used.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, bias_regularizer=reg)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*rank >= 2.*shape \(3,\)"):
        model.train_on_batch(
            rng.normal(size=(2, 4)).astype("float32"), rng.normal(size=(2, 3)).astype("float32")
        )


# ----------------------------------------------------------------------- step


@pytest.mark.parametrize("step", [-0.5, float("nan"), float("inf")])
def test_bad_prox_step(step):
    with pytest.raises(ValueError, match=r"`step`.*Received: step="):
        kreg.L1(0.1).prox(np.ones(3, "float32"), step)


@pytest.mark.parametrize("step", [True, None, "0.5"], ids=["bool", "None", "str"])
def test_non_numeric_prox_step(step):
    with pytest.raises(ValueError, match=rf"`step`.*Received: step={re.escape(repr(step))}"):
        kreg.L1(0.1).prox(np.ones(3, "float32"), step)
