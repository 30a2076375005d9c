"""Runs the test suite once per Keras backend, each in its own process.

    python tests/run_backends.py                 # TensorFlow, JAX and PyTorch
    python tests/run_backends.py jax torch       # some of them
    KERAS_BACKEND=jax python -m pytest           # one backend, by hand

TensorFlow runs everything; JAX and PyTorch leave out the tests marked `slow`
(long trainings whose numbers do not depend on the backend's own code paths:
README, "Tests", says what each backend covers). A backend that is not
installed is reported and counts as a failure: nothing is skipped silently.
"""

import importlib.util
import os
import subprocess
import sys
import time

MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
EXTRA_ARGS = {"tensorflow": [], "jax": ["-m", "not slow"], "torch": ["-m", "not slow"]}


def main(argv):
    backends = [a for a in argv if a in MODULES] or list(MODULES)
    pytest_args = [a for a in argv if a not in MODULES]
    results = []
    for backend in backends:
        if importlib.util.find_spec(MODULES[backend]) is None:
            print(f"[{backend}] not installed (pip install -e \".[{backend}]\")", flush=True)
            results.append((backend, 1, 0.0))
            continue
        command = [sys.executable, "-m", "pytest", *EXTRA_ARGS[backend], *pytest_args]
        print(f"[{backend}] KERAS_BACKEND={backend} {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, env={**os.environ, "KERAS_BACKEND": backend})
        results.append((backend, code, time.perf_counter() - start))
    print("\nbackend      result   time")
    for backend, code, seconds in results:
        print(f"{backend:<12} {'passed' if code == 0 else f'FAILED ({code})':<8} {seconds:6.0f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
