"""Shared fixtures: every numeric test runs once per device kind TensorFlow can see."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(params=["CPU", "GPU"], ids=["cpu", "gpu"])
def device(request):
    """Run the test body on the first logical device of each kind.

    CPU always runs; the GPU case skips with a stated reason when TensorFlow
    lists no GPU (as on CI), so a skip is never presented as a pass.
    """
    devices = tf.config.list_logical_devices(request.param)
    if not devices:
        pytest.skip(f"no {request.param} visible to TensorFlow")
    with tf.device(devices[0].name):
        yield devices[0].name


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
