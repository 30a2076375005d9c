"""kreg's benchmark suite: what kreg costs per training step, and what it buys.

Run everything on the CPU (about 15 minutes on 2 shared cores) and re-render the tables of
BENCHMARKS.md from the JSON it writes to bench/results/:

    python -m bench              # full suite, CPU only (GPUs hidden)
    python -m bench --quick      # tiny sizes, a smoke run of every code path
    python -m bench --gpu        # on a GPU machine: absolute times, bench/results/gpu/
    python -m bench --only overhead,prox_throughput
    python -m bench --report     # re-render BENCHMARKS.md from the JSON, run nothing

`python -m bench` is TensorFlow's suite. The per-step part (1) also runs on JAX and
PyTorch, one backend per process (BENCHMARKS.md section 9):

    KERAS_BACKEND=jax python -m bench.overhead     # bench/results/overhead_jax.json
    KERAS_BACKEND=torch python -m bench.overhead   # bench/results/overhead_torch.json
    python -m bench.overhead --report              # re-render section 9 only

Parts (one module each): `overhead` (1. time per training step against the same
model with Keras's built-ins or without regularization, plus SparsityMonitor's
cost), `prox_throughput` (2. `proximal_step` GB/s against a fused copy),
`sparsity` (3. exact zeros and removed units for the accuracy, against the
baselines), `lasso_path` (4. a Lasso path against scikit-learn's `lasso_path`).

Standalone modules, each measuring what one section of BENCHMARKS.md reports
(`bench.compact`, `bench.paths` and `bench.cv_costs` also rewrite their part of it):
`bench.compact` (5), `bench.memory` (6), `bench.paths` (7), `bench.cv_costs` (7:
cross-validation on every backend, one process each, and where its time goes),
`bench.backends` (8, one backend per process), `bench.warm_newton` (1, an experiment
kreg does not ship).

Ratios come from variants measured interleaved in one process (A, B, C, A, B, C,
...), compared by their medians, so machine noise hits all variants alike. No
number in here is a pass/fail test; tests/test_bench_smoke.py only checks that
the suite runs and that its JSON is consistent.
"""
