"""Renders the tables of BENCHMARKS.md from the JSON results.

Only the text between the two marker lines is generated; everything outside them
(the discussion of what limits a missed goal) is kept as written.
"""

import os

from bench import common

BEGIN = "<!-- BEGIN GENERATED: python -m bench rewrites everything down to END GENERATED -->"
END = "<!-- END GENERATED -->"

PARTS = ("overhead", "prox_throughput", "sparsity", "lasso_path")

HEADER = """# Benchmarks

What kreg costs per training step, and what it buys in sparsity for the accuracy,
measured against the baselines a Keras user would pick. Produced by the suite in
`bench/` (see `bench/__init__.py` for how each number is measured); the raw numbers
are in `bench/results/*.json`.

"""


def _load(directory):
    results = {}
    for part in PARTS:
        path = os.path.join(directory, f"{part}.json")
        if os.path.exists(path):
            results[part] = common.read_json(path)
    return results


def _mark(met):
    return "met" if met else "**missed**"


def _pct(x, digits=1):
    return f"{100 * x:.{digits}f}%"


def _acc(stat):
    return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"


def _meta(meta):
    return (f"{meta['date']}, `{meta['command']}`, {meta['device']}: {meta['cpu']}, "
            f"{meta['cores']} cores, {meta['memory_gib']} GiB; TensorFlow "
            f"{meta['tensorflow']}, Keras {meta['keras']}, NumPy {meta['numpy']}, "
            f"scikit-learn {meta['scikit-learn']}, kreg {meta['kreg']} (git {meta['git']}), "
            f"Python {meta['python']}, {meta['platform']}; this part took "
            f"{meta['seconds']:.0f} s.")


def _pool_label(pool):
    return f"{pool['model'].upper()} jit {'on' if pool['jit_compile'] else 'off'}"


def _overhead(res, goals):
    pools = res["pools"]
    cfg = res["config"]
    lines = ["## 1. Overhead per training step", "",
             f"Random data, the same batch every step; {cfg['rounds']} interleaved rounds, each a "
             f"block of {cfg['block_steps']} steps run as one compiled execution "
             f"(`steps_per_execution={cfg['block_steps']}`) and timed inside `fit` after a "
             f"warm-up of {cfg['warm_steps']} steps. MLP {cfg['mlp']['inputs']}-"
             + "-".join(map(str, cfg["mlp"]["units"])) + f"-{cfg['mlp']['classes']} (batch "
             f"{cfg['mlp']['batch']}), CNN "
             f"conv{cfg['cnn']['filters'][0]}-pool-conv{cfg['cnn']['filters'][1]}-pool-"
             f"dense{cfg['cnn']['dense']} on {'x'.join(map(str, cfg['cnn']['input']))} inputs "
             f"(batch {cfg['cnn']['batch']}) "
             f"(parameters: " + ", ".join(
                 f"{_pool_label(p).split()[0]} {p['params']:,}" for p in pools
                 if not p["jit_compile"]) + f"). Strength {cfg['strength']:g} on "
             f"{cfg['regularized']}; {cfg['optimizers']}.", "",
             "Median milliseconds per step (quartiles of the rounds in brackets):", "",
             "| variant | " + " | ".join(_pool_label(p) for p in pools) + " |",
             "|---" * (len(pools) + 1) + "|"]
    names = list(pools[0]["step_seconds"]) + [
        n for p in pools for n in p["skipped"] if n not in pools[0]["step_seconds"]]
    for name in dict.fromkeys(names):
        cells = []
        for p in pools:
            s = p["step_seconds"].get(name)
            cells.append(f"{1e3 * s['median']:.2f} [{1e3 * s['q1']:.2f}–{1e3 * s['q3']:.2f}]"
                         if s else "not measured")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios of the medians (quartiles of the per-round ratios in brackets):", "",
              "| comparison | goal | " + " | ".join(_pool_label(p) for p in pools)
              + " | status |", "|---" * (len(pools) + 3) + "|"]
    for i, comp in enumerate(pools[0]["comparisons"]):
        cases = [p["comparisons"][i] for p in pools if "ratio" in p["comparisons"][i]]
        cells = [f"{c['ratio']:.3f} [{c['per_round_q1']:.3f}–{c['per_round_q3']:.3f}]"
                 if "ratio" in c else "not measured"
                 for c in (p["comparisons"][i] for p in pools)]
        label = f"{comp['numerator']} / {comp['denominator']}"
        if comp["goal"] is None:
            lines.append(f"| {label} | (diagnostic) | " + " | ".join(cells) + " | – |")
            continue
        status = _overhead_status(cases)
        if cases and len(cases) < len(pools):
            status += f" ({len(cases)} of {len(pools)} cases)"
        lines.append(f"| {label} | <= {comp['goal']:.2f}x | " + " | ".join(cells)
                     + f" | {status} |")
        measured = (f"{max(c['ratio'] for c in cases):.3f}x (worst of {len(cases)} "
                    "model/jit cases)" if cases else "not measured")
        goals.append((f"Step time {label}", f"<= {comp['goal']:.2f}x", measured, status))
    lines += ["", "A ratio above its goal whose per-round quartiles still reach down to the "
              "goal is marked *within noise*: the rounds disagree about which side it is on. "
              "`none (twin) / none` compares two identical models: how far it strays from 1 "
              "is the noise floor of this machine. `[spe=1]`: one step per execution "
              "(Keras's default), where Keras's Python work between steps is part of every "
              "step.", ""]
    mon = res["sparsity_monitor"]
    other = mon["steps_per_execution_1"]
    lines.append(
        f"SparsityMonitor: {1e3 * mon['call_seconds']['median']:.2f} ms per call "
        f"(once per epoch) against {1e3 * mon['epoch_seconds']['median']:.1f} ms per "
        f"epoch of the {mon['model']}: **{_pct(mon['ratio'], 2)}** of an epoch "
        f"(goal <= 2%, {_mark(mon['met'])}). With `steps_per_execution=1` (Keras's default) "
        f"the epoch takes {1e3 * other['epoch_seconds']['median']:.1f} ms and a call "
        f"{1e3 * other['call_seconds']['median']:.2f} ms: {_pct(other['ratio'], 2)}.")
    goals.append(("SparsityMonitor per epoch, relative to a digits MLP epoch "
                   f"(steps_per_execution {mon['steps_per_execution']}; 1)", "<= 2%",
                   f"{_pct(mon['ratio'], 2)}; {_pct(other['ratio'], 2)}", _mark(mon["met"])))
    return lines


def _overhead_status(cases):
    """met / missed over the model and jit cases, flagging misses inside the round spread."""
    if not cases:
        return "not measured"
    missed = [c for c in cases if not c["met"]]
    if not missed:
        return "met"
    if all(c["per_round_q1"] <= c["goal"] for c in missed):
        return "**missed** (within noise)"
    return "**missed**"


def _prox(res, goals):
    lines = ["## 2. Proximal step throughput", "",
             "`kreg.proximal_step(model, 1.0)` on one float32 kernel of N weights against "
             "`v.assign(v * c)` on the same kernel in one `tf.function` (traced by TensorFlow, "
             "and compiled by XLA); GB/s counts 8 bytes per weight (read + write). Ratio = "
             "prox throughput / throughput of the faster copy (medians of "
             f"{res['config']['rounds']} interleaved rounds). The last columns are not kreg: "
             "the least a units group prox must do (column norms, then a scale of every "
             "weight) written directly in TensorFlow and compiled by XLA, for reference.", ""]
    sizes = res["sizes"]
    copies = [k for k in sizes[0]["variants"] if k.startswith("fused copy")]
    proxes = [c["throughput_of"] for c in sizes[0]["comparisons"]]
    lines += ["| N weights | " + " | ".join(f"{c} GB/s" for c in copies) + " | " + " | ".join(
        f"{p.removeprefix('proximal_step ').removeprefix('reference: ')} GB/s | ratio"
        for p in proxes) + " |",
        "|---" * (1 + len(copies) + 2 * len(proxes)) + "|"]
    worst = {}
    for s in sizes:
        n = s["weights"]
        cells = [f"{n // 2**20}M" if n >= 2**20 else str(n)]
        cells += [f"{s['variants'][c]['gb_per_s']:.2f}" for c in copies]
        for c in s["comparisons"]:
            v = s["variants"][c["throughput_of"]]
            cells += [f"{v['gb_per_s']:.2f}", f"{c['ratio']:.2f}"]
            worst[c["throughput_of"]] = min(worst.get(c["throughput_of"], float("inf")),
                                            c["ratio"])
        lines.append("| " + " | ".join(cells) + " |")
    for name, value in worst.items():
        if not name.startswith("proximal_step"):
            continue  # the diagnostic reference has no goal
        goals.append((f"{name} throughput / fused copy (worst N)", ">= 0.5x",
                      f"{value:.2f}x", _mark(value >= 0.5)))
    return lines


def _gl_goal_text(x):
    if "strength" not in x:
        return x["note"]
    return (f"{_pct(x['units_removed_fraction'])} removed at strength {x['strength']:g}, "
            f"{100 * x['accuracy']:.2f} vs dense {100 * x['dense_accuracy']:.2f}")


def _sparsity(res, goals):
    lines = ["## 3. Sparsity for accuracy", ""]
    for name, d in res["datasets"].items():
        cfg = d["config"]
        v = d["variants"]
        lines += [f"### {name} ({cfg['train_size']} training samples, MLP hidden "
                  f"{'-'.join(map(str, cfg['hidden']))}, {cfg['epochs']} epochs, batch "
                  f"{cfg['batch']}, seeds {', '.join(map(str, cfg['seeds']))})", "",
                  f"Test accuracy in % (mean ± standard deviation over seeds). L1 strength "
                  f"{cfg['l1_strength']:g} on every kernel; learning rates "
                  f"Adam {cfg['learning_rates']['adam']:g}, SGD {cfg['learning_rates']['sgd']:g}"
                  " (momentum 0.9).", "",
                  "| variant | accuracy | exact zeros | abs(w) < 1e-3 |", "|---|---|---|---|"]
        for key in ("dense/sgd", "keras.L1/sgd", "Proximal+kreg.L1/sgd", "dense/adam",
                    "keras.L1/adam", "Proximal+kreg.L1/adam"):
            row = v[key]
            zeros = _pct(row["exact_zeros"]["mean"]) if "exact_zeros" in row else "–"
            small = _pct(row["below_1e-3"]["mean"]) if "below_1e-3" in row else "–"
            lines.append(f"| {key} | {_acc(row['accuracy'])} | {zeros} | {small} |")
        lines += ["", "Group lasso on the hidden units (`kreg.Proximal(optimizer)` + "
                  "`GroupLasso(groups=\"units\")`), as trained and after fine-tuning its "
                  f"compacted network without regularizer ({cfg['finetune_epochs']} epochs); "
                  "and the two baselines with the same number of units per layer and the "
                  f"same optimizer: a dense model of that size from scratch ({cfg['epochs']} "
                  "epochs), and the dense model magnitude-pruned to that size (L2 norm of a "
                  f"unit's incoming weights) then fine-tuned ({cfg['finetune_epochs']} epochs). "
                  "Compacted: the largest difference between the logits of the full model and "
                  "of the NumPy network without the removed units.", "",
                  "| optimizer | strength | accuracy | hidden units removed | units kept per "
                  "layer | group lasso + fine-tuned | from scratch | pruned + fine-tuned | "
                  "compacted |", "|---|---|---|---|---|---|---|---|---|"]
        for opt in cfg["group_grid"]:
            lines.append(f"| {opt} | 0 (dense) | {_acc(v[f'dense/{opt}']['accuracy'])} | 0% | "
                         + " + ".join(map(str, cfg["hidden"])) + " | | | | |")
            for key, row in v.items():
                if not key.startswith(f"Proximal+kreg.GroupLasso/{opt}/"):
                    continue
                kept = " + ".join(f"{k['mean']:.1f}" for k in row["units_kept"])
                cells = [_acc(row[k]) if k in row else "–" for k in
                         ("finetuned_accuracy", "scratch_accuracy", "pruned_finetuned_accuracy")]
                removed = row["units_removed_fraction"]
                lines.append(
                    f"| {opt} | {key.rsplit('/', 1)[1]} | {_acc(row['accuracy'])} | "
                    f"{_pct(removed['mean'])} ± {_pct(removed['std'])} | {kept} | "
                    + " | ".join(cells)
                    + f" | {row['compacted_max_logit_diff']['mean']:.1e} |")
        lines.append("")
        g = d["goals"]
        for opt in cfg["group_grid"]:
            raw = g[f"group_lasso/{opt}/within_1_point"]
            tuned = g[f"group_lasso/{opt}+finetune/within_1_point"]
            goals.append((f"{name}, Proximal({opt}) + GroupLasso: hidden units removed within "
                          "1 point of dense", ">= 50%",
                          f"as trained: {_gl_goal_text(raw)}; fine-tuned: "
                          f"{_gl_goal_text(tuned)}",
                          _mark(raw["met"]) + ("" if raw["met"] or not tuned["met"]
                                               else " (met after fine-tuning)")))
            for suffix, label in (("", "as trained"), ("+finetune", "fine-tuned")):
                x = g.get(f"group_lasso/{opt}{suffix}/vs_baselines")
                if x is None:
                    continue
                ds, dp = x["paired_minus_scratch"], x["paired_minus_pruned"]
                goals.append((f"{name}, Proximal({opt}) + GroupLasso {label} vs baselines at "
                              f"the same unit count (strength {x['strength']:g})", ">= both",
                              f"{100 * x['accuracy']:.2f} vs from scratch "
                              f"{100 * x['scratch_accuracy']:.2f}, pruned + fine-tuned "
                              f"{100 * x['pruned_finetuned_accuracy']:.2f} (paired by seed: "
                              f"{100 * ds['mean']:+.2f} ± {100 * ds['std']:.2f} and "
                              f"{100 * dp['mean']:+.2f} ± {100 * dp['std']:.2f} points); "
                              f">= both at {x['grid_points_at_least_both']} of "
                              f"{x['grid_points']} grid points", _mark(x["met"])))
        for opt in ("sgd", "adam"):
            x = g[f"proximal_l1_zeros/{opt}"]
            goals.append((f"{name}, Proximal({opt}) + L1: exact zeros, accuracy within 1 point "
                          "of Keras L1", ">= 40%",
                          f"{_pct(x['exact_zeros'])} (Keras L1 "
                          f"{_pct(x['subgradient_exact_zeros'])}); accuracy "
                          f"{100 * x['accuracy']:.2f} vs {100 * x['subgradient_accuracy']:.2f}",
                          _mark(x["met"])))
    return lines


def _path(res, goals):
    lines = ["## 4. Lasso path on diabetes", ""]
    cfg = res["config"]
    lines += [
        f"{cfg['alphas']} alphas from {cfg['alpha_max']:.3g} down to {cfg['alpha_min']:.3g} "
        f"(scikit-learn's default grid), {cfg['samples']} x {cfg['features']} standardised. "
        f"kreg: `Proximal(SGD({cfg['step_size']:.4g}))` full batch, `steps_per_execution="
        f"{cfg['steps_per_execution']}`, `jit_compile=True`, {cfg['dtype']}, warm starts by "
        f"assigning the strength; first `fit` (tracing) {res['kreg_first_fit_seconds']:.2f} s, "
        "not counted. Both stop when the duality gap (n-scaled) is below tol * ||y||^2; "
        "coefficient differences are against `lasso_path(tol=1e-12)`, relative to the "
        "largest coefficient.", "",
        "| tol | kreg s | scikit-learn s | kreg / sklearn time | kreg steps | converged | "
        "kreg max diff | sklearn max diff | same zero pattern (kreg) | largest coef where the "
        "zero patterns differ |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(
            f"| {r['tol']:g} | {r['kreg_seconds']['median']:.3f} | "
            f"{r['sklearn_seconds']['median']:.4f} | {r['time_ratio']:.0f}x | "
            f"{r['kreg_steps']} | {r['kreg_converged_alphas']}/{cfg['alphas']} | "
            f"{r['kreg_vs_reference']['max_coef_diff_relative']:.1e} | "
            f"{r['sklearn_vs_reference']['max_coef_diff_relative']:.1e} | "
            f"{r['kreg_vs_reference']['same_zero_pattern_alphas']}/{cfg['alphas']} | "
            f"{r['kreg_vs_reference']['largest_coef_where_zero_patterns_differ']:.1e} "
            f"(of {r['kreg_vs_reference']['largest_reference_coef']:.3g}) |")
        goals.append((f"Lasso path, tol {r['tol']:g}: time vs scikit-learn (report only)",
                      "report", f"{r['time_ratio']:.0f}x slower, max coef diff "
                      f"{r['kreg_vs_reference']['max_coef_diff_relative']:.1e}", "reported"))
    return lines + [""]


def render(directory, gpu_directory=None):
    """The generated part of BENCHMARKS.md from the JSON files in `directory`."""
    results = _load(directory)
    goals = []
    body = []
    renderers = {"overhead": _overhead, "prox_throughput": _prox, "sparsity": _sparsity,
                 "lasso_path": _path}
    metas = []
    for part in PARTS:
        if part not in results:
            body += [f"## {part}", "", "Not run yet.", ""]
            continue
        res = results[part]
        body += renderers[part](res, goals)
        body += ["", f"Measured {_meta(res['meta'])}", ""]
        metas.append(res["meta"])
    out = [BEGIN, ""]
    if metas:
        m = metas[0]
        total = sum(x["seconds"] for x in metas)
        out += ["Reproduce with `python -m bench` (CPU; `--quick` for a smoke run, `--gpu` on a "
                "GPU machine, `--only PART` for one part, `--report` to re-render this file "
                "from the JSON).", "",
                f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
                f"{m['platform']}; TensorFlow {m['tensorflow']}, Keras {m['keras']}; "
                f"date {m['date']}; the parts took {total / 60:.1f} min in all.", ""]
    out += ["## Goals", "", "| goal | target | measured | status |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in goals]
    out += [""] + body
    if gpu_directory and os.path.isdir(gpu_directory) and _load(gpu_directory):
        gpu_goals = []
        out += ["# On a GPU (absolute times)", ""]
        gres = _load(gpu_directory)
        for part in PARTS:
            if part in gres:
                out += renderers[part](gres[part], gpu_goals)
                out += ["", f"Measured {_meta(gres[part]['meta'])}", ""]
    out.append(END)
    return "\n".join(out) + "\n"


def update_markdown(path, directory, gpu_directory=None):
    generated = render(directory, gpu_directory)
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            text = head + generated.rstrip("\n") + tail
        else:
            text = text.rstrip("\n") + "\n\n" + generated
    else:
        text = HEADER + generated
    with open(path, "w") as f:
        f.write(text)
