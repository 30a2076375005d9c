"""Shared fixtures: every numeric test runs once per device kind the backend can see.

The backend comes from `KERAS_BACKEND` (TensorFlow when unset): run the suite on
one backend with `KERAS_BACKEND=jax python -m pytest` (or `torch`, `tensorflow`).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# JAX computes in float32 unless x64 is on; the suite checks float64 weights to float64
# precision, so it switches x64 on (JAX's float32-only default is run by
# tests/test_distribution.py, which trains with JAX_ENABLE_X64=0).
os.environ.setdefault("JAX_ENABLE_X64", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()

if BACKEND == "jax":
    import jax

    # JAX computes in float32 unless x64 is switched on (`JAX_ENABLE_X64=1`).
    HAS_FLOAT64 = bool(jax.config.jax_enable_x64)
else:
    HAS_FLOAT64 = True
NO_FLOAT64 = "float64 needs JAX_ENABLE_X64=1 under JAX (JAX computes in float32 otherwise)"


def device_names(kind):
    """The devices of `kind` ("CPU" or "GPU") that the Keras backend sees, as
    names `keras.device` takes."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices(kind)]
    if BACKEND == "jax":
        import jax

        try:
            return [f"{kind.lower()}:{d.id}" for d in jax.devices(kind.lower())]
        except RuntimeError:  # no such platform
            return []
    import torch

    if kind == "CPU":
        return ["cpu"]
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def device_scope(name):
    """A scope that places new tensors and variables on the device `name`."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.device(name)
    return keras.device(name)


@pytest.fixture(params=["CPU", "GPU"], ids=["cpu", "gpu"])
def device(request):
    """Run the test body on the first device of each kind the backend sees.

    CPU always runs; the GPU case skips with a stated reason when the backend
    lists no GPU (as on CI), so a skip is never presented as a pass.
    """
    names = device_names(request.param)
    if not names:
        pytest.skip(f"no {request.param} visible to the {BACKEND} backend")
    with device_scope(names[0]):
        yield names[0]


def only_on(*backends, reason):
    """Mark a test that exercises one backend's own API (e.g. `tf.function`)."""
    return pytest.mark.skipif(
        BACKEND not in backends, reason=f"{reason} (runs on {', '.join(backends)}; "
        f"this run: {BACKEND})"
    )


# Tests that train for thousands of eager steps on PyTorch (minutes there, seconds
# elsewhere) are `slow` on PyTorch only: `KERAS_BACKEND=torch python -m pytest -m slow`.
SLOW_ON_TORCH = pytest.mark.slow if BACKEND == "torch" else (lambda test: test)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from float32 policy, a known seed and a clear session."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    # free_memory=False: skip the full gc.collect() (about 0.2 s per test with TF loaded).
    keras.backend.clear_session(free_memory=False)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# A script that tests/test_distribution.py runs in fresh processes, not a test module.
collect_ignore = ["distributed_fit.py"]
collect_ignore.append("run_backends.py")
