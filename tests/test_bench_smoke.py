"""Smoke test of the benchmark suite: it runs on tiny sizes and its JSON is consistent.

No timing is asserted. The numbers are checked against the raw samples the JSON
also holds (medians recomputed with NumPy, ratios recomputed from the medians),
so a report whose tables disagree with its own measurements fails here.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("device")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the bench package lives next to tests/, not inside kreg
    sys.path.insert(0, ROOT)


def test_compact_keeps_the_function(rng):
    """Dropping dead units (incoming or outgoing all zero) leaves the logits unchanged."""
    from bench.sparsity import compact, forward

    k1 = rng.standard_normal((5, 6))
    k1[:, [1, 4]] = 0  # dead inputs: these units output relu(bias), a constant
    k2 = rng.standard_normal((6, 4))
    k2[2, :] = 0  # a unit whose output goes nowhere
    k2[:, 3] = 0
    k3 = rng.standard_normal((4, 3))
    weights = [(k1, rng.standard_normal(6)), (k2, rng.standard_normal(4)),
               (k3, rng.standard_normal(3))]
    x = rng.standard_normal((7, 5))
    small, kept = compact(weights)
    assert kept == [3, 3]
    # the reference: the same network written out without any unit removed
    h = np.maximum(x @ k1 + weights[0][1], 0)
    h = np.maximum(h @ k2 + weights[1][1], 0)
    np.testing.assert_allclose(forward(small, x), h @ k3 + weights[2][1], rtol=1e-12, atol=1e-12)


def _median(values):
    return float(np.median(np.asarray(values, dtype="float64")))


def _check_ratio(comparison, samples):
    expected = _median(samples[comparison["numerator"]]) / _median(
        samples[comparison["denominator"]])
    assert comparison["ratio"] == pytest.approx(expected, rel=1e-12)
    per_round = np.asarray(samples[comparison["numerator"]]) / np.asarray(
        samples[comparison["denominator"]])
    assert comparison["per_round_q1"] == pytest.approx(np.percentile(per_round, 25))
    assert comparison["per_round_q3"] == pytest.approx(np.percentile(per_round, 75))


def _check_summary(summary, samples):
    assert summary["n"] == len(samples)
    assert all(s > 0 for s in samples)
    assert summary["median"] == pytest.approx(_median(samples), rel=1e-12)
    assert summary["q1"] <= summary["median"] <= summary["q3"]


BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="`python -m bench` is the TensorFlow suite "
                    "(it refuses another KERAS_BACKEND); JAX and PyTorch run "
                    "test_overhead_backend_quick_run")
def test_quick_run_writes_consistent_json(tmp_path, device):
    out = tmp_path / "results"
    markdown = tmp_path / "BENCHMARKS.md"
    command = [sys.executable, "-m", "bench", "--quick", "--out", str(out),
               "--markdown", str(markdown)]
    if "GPU" in device:
        command.append("--gpu")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {p: json.loads((out / f"{p}.json").read_text())
               for p in ("overhead", "prox_throughput", "sparsity", "lasso_path")}
    for part in results.values():
        assert part["meta"]["seconds"] > 0
        assert part["meta"]["device"].startswith("GPU" if "GPU" in device else "CPU")

    # 1. overhead: medians of the raw samples, ratios of the medians, goals judged right
    overhead = results["overhead"]
    measured = 0
    for pool in overhead["pools"]:
        for name, summary in pool["step_seconds"].items():
            _check_summary(summary, pool["samples"][name])
        for comparison in pool["comparisons"]:
            if "ratio" in comparison:
                measured += 1
                _check_ratio(comparison, pool["samples"])
                if comparison["goal"] is None:  # a diagnostic ratio, no goal
                    assert comparison["met"] is None
                else:
                    assert comparison["met"] == (comparison["ratio"] <= comparison["goal"])
    assert measured >= 8
    monitor = overhead["sparsity_monitor"]
    for m in (monitor, monitor["steps_per_execution_1"]):
        assert m["ratio"] == pytest.approx(
            m["call_seconds"]["median"] / m["epoch_seconds"]["median"])
        assert m["met"] == (m["ratio"] <= 0.02)

    # 2. prox throughput: GB/s from bytes and medians, ratio against the faster copy
    for size in results["prox_throughput"]["sizes"]:
        for name, row in size["variants"].items():
            _check_summary(row["seconds"], size["samples"][name])
            assert row["gb_per_s"] == pytest.approx(
                size["bytes_per_call"] / row["seconds"]["median"] / 1e9)
        copies = {k: v for k, v in size["variants"].items() if k.startswith("fused copy")}
        fastest = min(copies, key=lambda k: copies[k]["seconds"]["median"])
        for comparison in size["comparisons"]:
            assert comparison["numerator"] == fastest
            assert comparison["denominator"] == comparison["throughput_of"]
            _check_ratio(comparison, size["samples"])
            if comparison["goal"] is None:  # the diagnostic reference
                assert comparison["met"] is None
            else:
                assert comparison["met"] == (comparison["ratio"] >= 0.5)

    # 3. sparsity: fractions in range, removed units consistent with the kept counts
    for data in results["sparsity"]["datasets"].values():
        total = sum(data["config"]["hidden"])
        for name, row in data["variants"].items():
            for value in row["accuracy"]["values"]:
                assert 0 <= value <= 1
            assert row["accuracy"]["mean"] == pytest.approx(np.mean(row["accuracy"]["values"]))
            if "exact_zeros" in row:
                assert row["exact_zeros"]["mean"] <= row["below_1e-3"]["mean"]
            if name.startswith("Proximal+kreg.GroupLasso/"):
                kept = sum(k["mean"] for k in row["units_kept"])
                if "scratch_accuracy" in row:  # paired differences are differences of the rows
                    assert row["minus_scratch"]["mean"] == pytest.approx(
                        row["accuracy"]["mean"] - row["scratch_accuracy"]["mean"], abs=1e-12)
                    assert row["finetuned_minus_pruned"]["mean"] == pytest.approx(
                        row["finetuned_accuracy"]["mean"]
                        - row["pruned_finetuned_accuracy"]["mean"], abs=1e-12)
                assert row["units_removed_fraction"]["mean"] == pytest.approx(1 - kept / total)
                assert row["compacted_accuracy"]["values"] == row["accuracy"]["values"]
                assert row["compacted_max_logit_diff"]["mean"] < 1e-3

    # 4. lasso path: the time ratio and the step count follow from the rows
    for row in results["lasso_path"]["rows"]:
        assert row["time_ratio"] == pytest.approx(
            row["kreg_seconds"]["median"] / row["sklearn_seconds"]["median"])
        assert row["kreg_steps"] == sum(row["kreg_steps_per_alpha"])
        assert row["kreg_vs_reference"]["max_coef_diff_relative"] >= 0

    text = markdown.read_text()
    assert text.count("<!-- BEGIN GENERATED") == 1 and text.count("<!-- END GENERATED -->") == 1
    for heading in ("## Goals", "## 1. Overhead", "## 2. Proximal", "## 3. Sparsity",
                    "## 4. Lasso path"):
        assert heading in text


def test_warm_newton_experiment_is_exact():
    """`python -m bench.warm_newton --quick` in-process: every variant is timed, and the
    warm-started group prox it measures (not kreg's) takes the shipped solve's step."""
    from bench import warm_newton

    for jit in warm_newton.JIT_COMPILE[BACKEND]:
        samples, gap = warm_newton.pool(jit, rounds=1, quick=True)
        assert set(samples) == set(warm_newton.VARIANTS)
        assert all(len(v) == 1 and v[0] > 0 for v in samples.values())
        assert gap < 1e-5
    # The solve itself, from starts near and far, on groups chosen to be hard: the
    # threshold crossed both ways, steps of 0, a zero group, steps over 1e-8..1e4.
    from keras import ops
    from kreg import _math, layouts

    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 8))
    d = 10 ** rng.uniform(-1, 0, size=(6, 8))
    lam = 0.5 * np.sqrt(6)
    for j, factor in ((0, 1 + 1e-3), (1, 1 - 1e-3)):
        w[:, j] *= factor * lam / np.linalg.norm(w[:, j] / d[:, j])
    d[:3, 2] = 0.0
    w[:, 3] = 0.0
    d[:, 4] = 10 ** rng.uniform(-8, 4, size=6)
    grouping = _math.Grouping(layouts.generic((6, 8)), "units")
    w, d = (ops.convert_to_tensor(a.astype("float32")) for a in (w, d))
    lams = ops.convert_to_tensor(np.full(8, lam, "float32"))
    cold = np.asarray(_math._group_prox_metric(w, d, lams, grouping))
    norms = np.linalg.norm(cold, axis=0)
    assert norms[0] > 0 and norms[1] == 0
    for start in (norms, 100 * norms + 1, 1e-3 * norms, np.zeros(8), np.full(8, np.nan)):
        warm = np.asarray(warm_newton.warm_group_prox(
            w, d, lams, grouping, ops.convert_to_tensor(start.astype("float32")), True))
        np.testing.assert_allclose(warm, cold, rtol=1e-5, atol=1e-5 * np.abs(cold).max())


@pytest.mark.slow
@pytest.mark.skipif(BACKEND == "tensorflow", reason="`python -m bench.overhead` runs on JAX and "
                    "PyTorch; TensorFlow's part 1 runs in test_quick_run_writes_consistent_json")
def test_overhead_backend_quick_run(tmp_path):
    """`python -m bench.overhead --quick` on this backend: medians and ratios are those of the
    raw samples, and every variant or pool left out says why."""
    out = tmp_path / f"overhead_{BACKEND}.json"
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n")
    done = subprocess.run([sys.executable, "-m", "bench.overhead", "--quick", "--out", str(out),
                           "--markdown", str(markdown)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == BACKEND == result["meta"]["backend"]
    measured_pools = [p for p in result["pools"] if "not_measured" not in p]
    assert measured_pools
    for pool in result["pools"]:
        if "not_measured" in pool:
            assert pool["not_measured"].startswith("not measured: ")
            continue
        assert pool["steps_per_execution"] == (1 if BACKEND == "torch" else 3)
        for name, summary in pool["step_seconds"].items():
            _check_summary(summary, pool["samples"][name])
        for reason in pool["skipped"].values():
            assert reason.startswith("not measured: ")
        for comparison in pool["comparisons"]:
            if "ratio" in comparison:
                _check_ratio(comparison, pool["samples"])
                assert comparison["met"] == (None if comparison["goal"] is None
                                             else comparison["ratio"] <= comparison["goal"])
            else:
                assert comparison["not_measured"].startswith("not measured: ")
    assert sum("ratio" in c for p in measured_pools for c in p["comparisons"]) >= 2
    text = markdown.read_text()
    assert text.startswith("# Benchmarks\n") and "## 9. Proximal training" in text


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="`python -m bench.compact` measures "
                    "TensorFlow's SavedModel sizes and tf.function latency; kreg.compact itself "
                    "runs on every backend in tests/test_compact.py")
def test_compact_quick_run_is_consistent(tmp_path):
    """`python -m bench.compact --quick`: the compact model predicts the sparse one's, the
    ratios are those of the raw numbers, and the markdown section is written."""
    out = tmp_path / "compact.json"
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n")
    done = subprocess.run([sys.executable, "-m", "bench.compact", "--quick", "--out", str(out),
                           "--markdown", str(markdown)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["models"]) == {"mlp", "cnn", "resnet"}
    for model in result["models"].values():
        assert model["agreement"]["test_max_abs_over_scale"] <= 1e-5
        assert model["agreement"]["random_max_abs_over_scale"] <= 1e-5
        assert model["accuracy"]["compact"] == model["accuracy"]["sparse"]
        size = model["size"]
        assert size["compact"]["params"] <= size["sparse"]["params"]
        for timing in model["latency"].values():
            medians = {k: v["median"] for k, v in timing["seconds"].items()}
            assert timing["speedup"]["ratio"] == pytest.approx(
                medians["sparse"] / medians["compact"])
            assert timing["noise_floor"]["ratio"] == pytest.approx(
                medians["sparse_twin"] / medians["sparse"])
    text = markdown.read_text()
    assert text.startswith("# Benchmarks\n") and "## 5. Compaction (`kreg.compact`)" in text


@pytest.mark.slow
def test_paths_quick_run_is_consistent(tmp_path):
    """`python -m bench.paths --quick`: ratios are those of the raw samples, the kreg path is
    accurate, and the markdown section is written."""
    out = tmp_path / "paths.json"
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n")
    done = subprocess.run([sys.executable, "-m", "bench.paths", "--quick", "--out", str(out),
                           "--markdown", str(markdown)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    lasso = result["lasso_path"]
    for name, summary in lasso["seconds"].items():
        _check_summary(summary, lasso["samples"][name])
    for comparison in lasso["ratios"].values():
        _check_ratio(comparison, lasso["samples"])
    assert lasso["accuracy"]["kreg"]["max_coef_diff_relative"] < 1e-4
    _check_ratio(result["cross_validation"]["ratio"], result["cross_validation"]["samples"])
    mlp = result["mlp"]
    assert mlp["epoch_ratio"] == pytest.approx(
        sum(mlp["independent"]["epochs"]) / sum(mlp["warm"]["epochs"]))
    assert "## 7. Regularization paths" in markdown.read_text()


@pytest.mark.slow
def test_cv_costs_quick_run_is_consistent(tmp_path):
    """`python -m bench.cv_costs --quick` on this backend: the ratios are those of the raw
    samples, the clocked parts (outermost calls only) do not exceed the clocked call, every
    fold and strength was scored, the reusing, twin and new-callable calls scored the same,
    and kreg picks LassoCV's strength."""
    out = tmp_path / "cv_costs.json"
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\n<!-- END PATHS -->\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "bench.cv_costs", "--quick", "--backends",
                           BACKEND, "--out", str(out), "--markdown", str(markdown)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(out.read_text())["backends"][BACKEND]
    for name, summary in row["seconds"].items():
        _check_summary(summary, row["samples"][name])
    _check_ratio(row["ratio"], row["samples"])
    _check_ratio(row["noise_floor"], row["samples"])
    _check_ratio(row["new_builder_ratio"], row["samples"])
    assert row["same_scores_every_variant"] is True
    assert 0 < row["first_cv_seconds"]
    parts = row["parts_seconds"]
    clocked = sum(v for k, v in parts.items() if k != "rest")
    assert 0 < clocked <= row["clocked_total_seconds"]
    assert parts["rest"] == pytest.approx(row["clocked_total_seconds"] - clocked)
    # 5 folds x 5 strengths scored (plus the refit model's build), 7 build_model() calls
    assert row["scoring_calls"] >= 25 and row["build_calls"] == 7
    best = row["best_strength"]
    assert best["kreg"] == pytest.approx(best["LassoCV_times_2"], rel=1e-6)
    text = markdown.read_text()
    assert text.index("<!-- END PATHS -->") < text.index("### Cross-validation on each backend")
    assert text.rstrip().endswith("after")
