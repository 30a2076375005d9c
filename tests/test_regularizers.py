"""Penalty values of kreg's regularizers against NumPy, Keras and each other.

The oracle is NumPy written from the formulas in the docstrings (Keras's scaling,
no 1/2 on squares):

    L1                strength * sum|w|
    L2                strength * sum w^2
    ElasticNet        strength * (r sum|w| + (1 - r) sum w^2)
    GroupLasso        strength * sum_g sqrt(p_g) ||w_g||_2
    SparseGroupLasso  strength * (r sum|w| + (1 - r) sum_g sqrt(p_g) ||w_g||_2)

with p_g the number of weights in group g, and for a kernel (..., inputs, units):
"units" = one group per slice of the last axis, "inputs" = one group per slice
of the second-to-last axis, integer ids = inputs sharing an id form one group
across all units.
"""

import keras
import numpy as np
import pytest

import backend_ops
import kreg
from conftest import BACKEND
from keras import ops
from oracle import np_groups

pytestmark = pytest.mark.usefixtures("device")

# Kernel shapes of the three layer kinds the issue names.
SHAPES = {
    "dense": (5, 3),  # Dense (in, out)
    "conv2d": (3, 2, 4, 6),  # Conv2D (kh, kw, in, out)
    "embedding": (7, 4),  # Embedding (vocab, dim): rows are the inputs
}


def ids_for(n_inputs):
    """Unsorted, non-contiguous, partly negative integer ids with uneven group sizes."""
    return [int(v) for v in (np.arange(n_inputs) * 7) % 3 * 5 - 5]


# ---------------------------------------------------------------- NumPy oracle


def np_l1(w):
    return np.sum(np.abs(w))


def np_l2(w):
    return np.sum(w**2)


def np_group(w, groups):
    return sum(np.sqrt(b.size) * np.linalg.norm(b) for b in np_groups(w, groups))


def np_penalty(kind, w, strength, l1_ratio=None, groups=None):
    """The penalty from the formula table above, in float64."""
    w = np.asarray(w, dtype=np.float64)
    if kind == "L1":
        return strength * np_l1(w)
    if kind == "L2":
        return strength * np_l2(w)
    if kind == "ElasticNet":
        return strength * (l1_ratio * np_l1(w) + (1 - l1_ratio) * np_l2(w))
    if kind == "GroupLasso":
        return strength * np_group(w, groups)
    if kind == "SparseGroupLasso":
        return strength * (l1_ratio * np_l1(w) + (1 - l1_ratio) * np_group(w, groups))
    raise AssertionError(kind)


def make(kind, strength, l1_ratio=None, groups=None):
    cls = getattr(kreg, kind)
    kwargs = {}
    if l1_ratio is not None:
        kwargs["l1_ratio"] = l1_ratio
    if groups is not None:
        kwargs["groups"] = groups
    return cls(strength, **kwargs)


# (kind, l1_ratio, groups); groups "ids" is resolved per shape by ids_for.
CASES = [
    ("L1", None, None),
    ("L2", None, None),
    ("ElasticNet", 0.3, None),
    ("GroupLasso", None, "units"),
    ("GroupLasso", None, "inputs"),
    ("GroupLasso", None, "ids"),
    ("SparseGroupLasso", 0.4, "units"),
    ("SparseGroupLasso", 0.4, "inputs"),
    ("SparseGroupLasso", 0.4, "ids"),
]


def case_id(case):
    kind, ratio, groups = case
    return "-".join(str(p) for p in (kind, ratio, groups) if p is not None)


def resolve(groups, shape):
    return ids_for(shape[-2]) if groups == "ids" else groups


# ---------------------------------------------------------------------- values


@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_value_matches_numpy_formula(case, shape_name, rng):
    kind, ratio, groups = case
    shape = SHAPES[shape_name]
    groups = resolve(groups, shape)
    w = rng.normal(size=shape).astype("float32")
    reg = make(kind, 0.37, ratio, groups)
    value = reg(w)
    assert tuple(value.shape) == ()
    assert keras.backend.standardize_dtype(value.dtype) == keras.config.floatx()
    expected = np_penalty(kind, w, 0.37, ratio, groups)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)


def test_group_norms_and_grouping_match_numpy(rng):
    w = rng.normal(size=SHAPES["conv2d"]).astype("float32")
    for groups in ("units", "inputs", ids_for(w.shape[-2])):
        reg = kreg.GroupLasso(1.0, groups=groups)
        blocks = np_groups(w, groups)
        grouping = reg.grouping(w.shape)
        assert grouping.num_groups == len(blocks)
        np.testing.assert_array_equal(grouping.sizes, [b.size for b in blocks])
        np.testing.assert_allclose(
            np.asarray(reg.group_norms(w)), [np.linalg.norm(b) for b in blocks], rtol=1e-5
        )


def test_layer_losses_match_numpy(rng):
    """The penalties Keras collects from Dense, Conv2D and Embedding layers."""
    gl = kreg.GroupLasso(0.02, groups="inputs")
    sgl = kreg.SparseGroupLasso(0.03, l1_ratio=0.25, groups="units")
    en = kreg.ElasticNet(0.05, l1_ratio=0.6)
    l2 = kreg.L2(0.07)
    dense = keras.layers.Dense(3, kernel_regularizer=gl, bias_regularizer=l2)
    conv = keras.layers.Conv2D(6, (3, 2), kernel_regularizer=sgl)
    emb = keras.layers.Embedding(7, 4, embeddings_regularizer=en)
    dense.build((None, 5))
    conv.build((None, 8, 8, 4))
    emb.build((None, 2))
    for variable in (dense.kernel, dense.bias, conv.kernel, emb.embeddings):
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    expected = {
        "dense": np_penalty("GroupLasso", dense.kernel.numpy(), 0.02, groups="inputs")
        + np_penalty("L2", dense.bias.numpy(), 0.07),
        "conv": np_penalty("SparseGroupLasso", conv.kernel.numpy(), 0.03, 0.25, "units"),
        "emb": np_penalty("ElasticNet", emb.embeddings.numpy(), 0.05, 0.6),
    }
    for name, layer in (("dense", dense), ("conv", conv), ("emb", emb)):
        got = sum(float(loss) for loss in layer.losses)
        np.testing.assert_allclose(got, expected[name], rtol=1e-5, err_msg=name)


# ----------------------------------------------------------- Keras built-ins


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_equals_keras_builtins(shape_name, rng):
    w = rng.normal(size=SHAPES[shape_name]).astype("float32")
    a = 0.013
    pairs = [
        (kreg.L1(a), keras.regularizers.L1(a)),
        (kreg.L2(a), keras.regularizers.L2(a)),
        (kreg.ElasticNet(2 * a, 0.5), keras.regularizers.L1L2(a, a)),
        (kreg.ElasticNet(a, 1.0), keras.regularizers.L1L2(l1=a, l2=0.0)),
        (kreg.ElasticNet(a, 0.0), keras.regularizers.L1L2(l1=0.0, l2=a)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(float(ours(w)), float(theirs(w)), rtol=1e-6, err_msg=repr(ours))


def test_strength_is_first_positional_argument():
    for cls in (kreg.L1, kreg.L2, kreg.ElasticNet, kreg.GroupLasso, kreg.SparseGroupLasso):
        assert float(cls(0.25).strength.numpy()) == 0.25


# ----------------------------------------------------------------- reductions


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_reductions(shape_name, rng):
    shape = SHAPES[shape_name]
    w = rng.normal(size=shape).astype("float32")
    s = 0.21

    def same(a, b, name):
        np.testing.assert_allclose(float(a(w)), float(b(w)), rtol=1e-6, err_msg=f"value {name}")
        np.testing.assert_allclose(
            np.asarray(a.prox(w, 0.8)), np.asarray(b.prox(w, 0.8)), rtol=1e-6, atol=1e-7,
            err_msg=f"prox {name}",
        )

    same(kreg.ElasticNet(s, l1_ratio=1.0), kreg.L1(s), "ElasticNet(r=1) == L1")
    same(kreg.ElasticNet(s, l1_ratio=0.0), kreg.L2(s), "ElasticNet(r=0) == L2")
    for groups in ("units", "inputs", ids_for(shape[-2])):
        same(kreg.SparseGroupLasso(s, 1.0, groups), kreg.L1(s), f"SGL(r=1, {groups}) == L1")
        same(
            kreg.SparseGroupLasso(s, 0.0, groups),
            kreg.GroupLasso(s, groups),
            f"SGL(r=0, {groups}) == GroupLasso",
        )


@pytest.mark.parametrize("n", [1, 6])
def test_group_lasso_with_singleton_groups_is_l1(n, rng):
    # A (n, 1) kernel with ids 0..n-1: every group holds one weight, so p_g = 1,
    # sqrt(p_g) = 1 and sum_g ||w_g|| = sum |w|. "units" on (1, n) is the same.
    s = 0.3
    for w, groups in (
        (rng.normal(size=(n, 1)).astype("float32"), list(range(n))),
        (rng.normal(size=(1, n)).astype("float32"), "units"),
        (rng.normal(size=(n, 1)).astype("float32"), "inputs"),
    ):
        gl = kreg.GroupLasso(s, groups=groups)
        np.testing.assert_allclose(float(gl(w)), float(kreg.L1(s)(w)), rtol=1e-6)
        np.testing.assert_allclose(
            np.asarray(gl.prox(w, 0.5)), np.asarray(kreg.L1(s).prox(w, 0.5)), rtol=1e-6, atol=1e-7
        )
    # With groups of m > 1 weights the sqrt(p_g) weight shows: a (n, 2) kernel with
    # one id per input is sqrt(2) * sum_i ||w_i||, not L1.
    w = rng.normal(size=(n, 2)).astype("float32")
    expected = s * np.sqrt(2) * np.sum(np.linalg.norm(w, axis=1))
    np.testing.assert_allclose(float(kreg.GroupLasso(s, list(range(n)))(w)), expected, rtol=1e-6)


# ------------------------------------------------------------- the strength


def test_strength_is_a_live_variable(rng):
    w = rng.normal(size=(4, 3)).astype("float32")
    reg = kreg.SparseGroupLasso(0.1, 0.5, "units")
    assert isinstance(reg.strength, keras.Variable)
    assert not reg.strength.trainable
    assert keras.backend.standardize_dtype(reg.strength.dtype) == "float32"
    reg.strength.assign(0.9)
    expected = np_penalty("SparseGroupLasso", w, 0.9, 0.5, "units")
    np.testing.assert_allclose(float(reg(w)), expected, rtol=1e-5)
    reg.strength.assign(0.0)
    assert float(reg(w)) == 0.0
    np.testing.assert_array_equal(np.asarray(reg.prox(w, 1.0)), w)


def test_shared_regularizer_is_one_strength(rng):
    reg = kreg.L1(0.1)
    a = keras.layers.Dense(3, kernel_regularizer=reg, use_bias=False)
    b = keras.layers.Dense(2, kernel_regularizer=reg, use_bias=False)
    a.build((None, 4))
    b.build((None, 3))
    reg.strength.assign(0.4)
    got = sum(float(x) for x in a.losses + b.losses)
    expected = 0.4 * (np_l1(a.kernel.numpy()) + np_l1(b.kernel.numpy()))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def five_regularizer_model():
    """A small model with every kreg regularizer; returns (model, [(reg, variable)])."""
    regs = {
        "gl": kreg.GroupLasso(0.05, groups=[3, 3, 1, 0]),
        "l2": kreg.L2(0.02),
        "sgl": kreg.SparseGroupLasso(0.04, l1_ratio=0.3, groups="inputs"),
        "en": kreg.ElasticNet(0.03, l1_ratio=0.7),
        "l1": kreg.L1(0.01),
    }
    first = keras.layers.Dense(5, kernel_regularizer=regs["gl"], bias_regularizer=regs["l2"])
    second = keras.layers.Dense(6, activation="tanh", kernel_regularizer=regs["sgl"])
    third = keras.layers.Dense(2, kernel_regularizer=regs["en"], bias_regularizer=regs["l1"])
    model = keras.Sequential([keras.Input((4,)), first, second, third])
    # Non-zero biases, so the bias penalties are not trivially zero.
    first.bias.assign(np.linspace(-0.5, 0.5, 5).astype("float32"))
    third.bias.assign(np.array([0.3, -0.2], "float32"))
    pairs = [
        (regs["gl"], first.kernel),
        (regs["l2"], first.bias),
        (regs["sgl"], second.kernel),
        (regs["en"], third.kernel),
        (regs["l1"], third.bias),
    ]
    return model, pairs


def unit_penalty(reg, variable):
    """NumPy penalty of `variable` under `reg` at strength 1."""
    config = reg.get_config()
    return np_penalty(
        type(reg).__name__, variable.numpy(), 1.0, config.get("l1_ratio"), config.get("groups")
    )


@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager_graph", "jit"])
@pytest.mark.parametrize("via", ["train_on_batch", "fit"])
def test_strength_assigned_after_trace_changes_next_step(jit_compile, via, rng):
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    model, pairs = five_regularizer_model()
    # learning_rate=0: the weights stay put, so only the strengths change the loss.
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse", jit_compile=jit_compile)

    def step():
        if via == "train_on_batch":
            return float(model.train_on_batch(x, y))
        return model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history["loss"][0]

    before = step()  # traces (and compiles) the train step
    assert step() == pytest.approx(before, rel=1e-6)  # the weights did not move
    new_strengths = [0.5, 0.11, 0.0, 0.2, 0.7]
    expected_delta = 0.0
    for (reg, variable), new in zip(pairs, new_strengths):
        expected_delta += (new - float(reg.strength.numpy())) * unit_penalty(reg, variable)
        reg.strength.assign(new)
    after = step()
    assert abs(expected_delta) > 0.5  # a change that a stale constant could not hide
    np.testing.assert_allclose(after - before, expected_delta, rtol=1e-5, atol=1e-5)


# Every class and every kind of `groups` once (XLA compiles are the slow part of this file).
JIT_CASES = [c for c in CASES if c[2] in (None, "units", "ids") and c[0] != "SparseGroupLasso"]
JIT_CASES.append(("SparseGroupLasso", 0.4, "inputs"))


@pytest.mark.parametrize("case", JIT_CASES, ids=case_id)
def test_same_result_eager_tf_function_and_jit(case, rng):
    kind, ratio, groups = case
    shape = SHAPES["conv2d"]
    groups = resolve(groups, shape)
    w = ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))
    d = ops.convert_to_tensor(rng.uniform(0.1, 1.0, size=shape).astype("float32"))
    reg = make(kind, 0.2, ratio, groups)

    def both(w, d):
        return reg(w), reg.prox(w, 0.3), reg.prox(w, d)

    # tf.function (graph and XLA), jax.jit, torch.compile.
    graph = backend_ops.compiled(both)
    jit = backend_ops.compiled(both, jit_compile=BACKEND != "torch")  # Inductor: slow on CPU
    for strength in (0.2, 0.9):  # the second value is assigned after both traces
        reg.strength.assign(strength)
        eager = [backend_ops.numpy(t) for t in both(w, d)]
        np.testing.assert_allclose(
            eager[0], np_penalty(kind, backend_ops.numpy(w), strength, ratio, groups), rtol=1e-5
        )
        for fn in (graph, jit):
            for got, want in zip(fn(w, d), eager):
                np.testing.assert_allclose(backend_ops.numpy(got), want, rtol=1e-5, atol=1e-6)
    if BACKEND == "tensorflow":  # one trace: the strength is read, not baked in
        assert graph.experimental_get_tracing_count() == 1
        assert jit.experimental_get_tracing_count() == 1
