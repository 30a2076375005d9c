"""Shared pieces of the benchmark suite: timing, summaries, machine facts, JSON.

Nothing here imports TensorFlow at module import time except through `keras`,
so `bench.__main__` can set the environment (backend, visible devices) first;
`machine_info` imports only the backend Keras runs on.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

def now():
    return time.perf_counter()


def summarize(samples):
    """Median, quartiles, min and count of a list of positive numbers (seconds or ratios)."""
    a = np.asarray(samples, dtype="float64")
    return {
        "median": float(np.median(a)),
        "q1": float(np.percentile(a, 25)),
        "q3": float(np.percentile(a, 75)),
        "min": float(a.min()),
        "n": int(a.size),
    }


def mean_std(values):
    """Mean and sample standard deviation (0 for a single value) of a list of numbers."""
    a = np.asarray(values, dtype="float64")
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {"mean": float(a.mean()), "std": std, "values": [float(v) for v in a]}


def interleaved(variants, rounds):
    """Run every variant once per round, in the same order each round (A, B, C, A, B, C, ...).

    Args:
        variants: dict name -> zero-argument callable returning one measurement
            (seconds per step, per call, ...), already warmed up.
        rounds: number of rounds.

    Returns:
        dict name -> list of `rounds` measurements, in round order.
    """
    samples = {name: [] for name in variants}
    for _ in range(rounds):
        for name, measure in variants.items():
            samples[name].append(float(measure()))
    return samples


def ratio(samples, numerator, denominator):
    """`median(numerator) / median(denominator)` and the quartiles of the per-round ratios."""
    a = np.asarray(samples[numerator])
    b = np.asarray(samples[denominator])
    per_round = a / b
    return {
        "numerator": numerator,
        "denominator": denominator,
        "ratio": float(np.median(a) / np.median(b)),
        "per_round_q1": float(np.percentile(per_round, 25)),
        "per_round_q3": float(np.percentile(per_round, 75)),
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
            text=True, timeout=10, check=False,
        )
        commit = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
        return (commit + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(command, device):
    """Facts a reader needs to judge the numbers: machine, versions, date, command."""
    import keras
    import sklearn

    import kreg

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        backend_version = jax.__version__
    elif backend == "torch":
        import torch

        backend_version = torch.__version__
    else:
        import tensorflow as tf

        backend_version = tf.__version__

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "device": device,
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backend": backend,
        "backend_version": backend_version,
        # TensorFlow's version where it is the backend (not imported under JAX or PyTorch)
        "tensorflow": backend_version if backend == "tensorflow" else None,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "kreg": kreg.__version__,
        "git": _git_commit(),
    }


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False, allow_nan=False)
        f.write("\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_section(path, begin, end, text, after=None):
    """Puts `text` (which starts with `begin` and ends with `end`) into the markdown file
    `path`: in place of the old text between the two markers, else right after the line
    `after` (when given and present), else at the end."""
    with open(path) as f:
        current = f.read()
    if begin in current and end in current:
        new = current[:current.index(begin)] + text + current[current.index(end) + len(end):]
    elif after is not None and after in current:
        at = current.index(after) + len(after)
        new = current[:at] + "\n\n" + text + current[at:]
    else:
        new = current.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(new)


def log(*args):
    print(*args, file=sys.stderr, flush=True)
