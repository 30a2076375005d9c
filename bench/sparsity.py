"""Part 3: how much smaller a model gets for its accuracy, against the baselines a user would try.

Per dataset and seed (the seed picks the stratified 75/25 split, the initial
weights and the shuffling), every variant trains an MLP with the same schedule:

* dense baselines (Adam and SGD);
* Keras's subgradient L1 (`keras.regularizers.L1`) on every kernel, and
  `kreg.Proximal` + `kreg.L1` at the same strength, each with SGD and with Adam;
* `kreg.Proximal` + `kreg.GroupLasso(groups="units")` on the hidden kernels, over
  a grid of strengths for SGD and one for Adam (the prox's threshold scales with
  the optimizer's step, so the two need different strengths);
* the group lasso model compacted (removed units dropped) and fine-tuned
  without regularizer for `finetune_epochs`;
* at each grid point and seed, two baselines with the surviving number of units
  per hidden layer, trained with the same optimizer: a dense model of that size
  trained from scratch, and the dense baseline with its smallest units (L2 norm
  of the incoming weights) cut away, then fine-tuned for `finetune_epochs`
  (plain Keras).

Every model is compiled with `steps_per_execution` (no effect on the numbers, less
Python per step). The goals compare with the dense model of the same optimizer.

A hidden unit counts as removed when its incoming weights are all exactly zero
(it outputs the constant relu(bias), folded into the next layer's bias) or its
outgoing weights are all exactly zero. Every group lasso model is compacted that
way in NumPy and its test logits compared with the full model's, so "removed"
means removable without changing a prediction.
"""

import keras
import numpy as np
import tensorflow as tf

import kreg
from bench import common

CONFIGS = {
    "full": {
        "seeds": (0, 1, 2, 3, 4),
        "batch": 32,
        "steps_per_execution": 16,
        "datasets": {
            "digits": {
                "hidden": (128, 128),
                "epochs": 40,
                "finetune_epochs": 20,
                "l1_strength": 1e-3,
                "group_grid": {"sgd": (2e-4, 4e-4, 8e-4), "adam": (1e-3, 2e-3)},
            },
            "breast_cancer": {
                "hidden": (64, 64),
                "epochs": 40,
                "finetune_epochs": 20,
                "l1_strength": 1e-3,
                "group_grid": {"sgd": (5e-4, 1e-3, 3e-3), "adam": (3e-3, 1e-2)},
            },
        },
    },
    "quick": {
        "seeds": (0,),
        "batch": 64,
        "steps_per_execution": 4,
        "datasets": {
            "digits": {
                "hidden": (16, 16),
                "epochs": 2,
                "finetune_epochs": 1,
                "l1_strength": 1e-3,
                "group_grid": {"sgd": (1e-3,), "adam": (1e-3,)},
            },
        },
    },
}

LEARNING_RATES = {"adam": 1e-3, "sgd": 0.05}  # SGD with momentum 0.9
ZERO_TOLERANCE = 1e-3  # the "|w| < 1e-3" column for Keras's L1


def load(name, seed):
    """A stratified 75/25 split of a dataset that ships inside scikit-learn (no download)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
        x = x / 16.0
    elif name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
    else:
        raise ValueError(f"Unknown dataset {name!r}")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=seed
    )
    if name == "breast_cancer":
        mean, std = x_train.mean(0), x_train.std(0)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return {
        "name": name,
        "x_train": x_train.astype("float32"),
        "y_train": y_train.astype("int32"),
        "x_test": x_test.astype("float32"),
        "y_test": y_test.astype("int32"),
        "classes": int(y.max()) + 1,
    }


def build(data, hidden, hidden_reg=None, output_reg=None):
    layers = [keras.Input((data["x_train"].shape[1],))]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation="relu", kernel_regularizer=hidden_reg))
    layers.append(keras.layers.Dense(data["classes"], kernel_regularizer=output_reg))
    return keras.Sequential(layers)


def compile_model(model, optimizer, proximal=False, steps_per_execution=1):
    lr = LEARNING_RATES[optimizer]
    if optimizer == "adam":
        opt = keras.optimizers.Adam(lr)
    else:
        opt = keras.optimizers.SGD(lr, momentum=0.9)
    if proximal:
        opt = kreg.Proximal(opt)
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)


def train_dataset(data, batch):
    """Shuffled (anew each epoch) batches; a tf.data pipeline saves `fit` ~40 ms per epoch
    of re-wrapping NumPy arrays, which on these small models is a third of the time."""
    n = data["x_train"].shape[0]
    return (tf.data.Dataset.from_tensor_slices((data["x_train"], data["y_train"]))
            .shuffle(n, reshuffle_each_iteration=True).batch(batch))


def fit(model, data, epochs, batch):
    model.fit(train_dataset(data, batch), epochs=epochs, verbose=0, shuffle=False)


def dense_weights(model):
    return [(np.asarray(l.kernel), np.asarray(l.bias)) for l in model.layers
            if isinstance(l, keras.layers.Dense)]


def forward(weights, x):
    """NumPy forward pass of a ReLU MLP given [(kernel, bias), ...]; returns logits."""
    h = x.astype("float64")
    for i, (k, b) in enumerate(weights):
        h = h @ k + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
    return h


def accuracy(model, data):
    logits = np.asarray(model(data["x_test"], training=False))
    return float(np.mean(logits.argmax(-1) == data["y_test"]))


def compact(weights):
    """Drops removable hidden units; returns (compacted weights, units kept per hidden layer).

    A unit with all-zero incoming weights outputs relu(bias): that constant is folded
    into the next layer's bias. A unit with all-zero outgoing weights contributes
    nothing. Both are dropped.
    """
    weights = [(k.astype("float64"), b.astype("float64")) for k, b in weights]
    kept = []
    for i in range(len(weights) - 1):
        k, b = weights[i]
        k_next, b_next = weights[i + 1]
        dead_in = np.all(k == 0, axis=0)
        dead_out = np.all(k_next == 0, axis=1)
        constant = np.where(dead_in, np.maximum(b, 0), 0.0)
        b_next = b_next + constant @ k_next
        keep = ~(dead_in | dead_out)
        weights[i] = (k[:, keep], b[keep])
        weights[i + 1] = (k_next[keep, :], b_next)
        kept.append(int(keep.sum()))
    return weights, kept


def kernel_sparsity(model):
    kernels = np.concatenate([np.asarray(l.kernel).ravel() for l in model.layers
                              if isinstance(l, keras.layers.Dense)])
    return {
        "exact_zeros": float(np.mean(kernels == 0)),
        "below_1e-3": float(np.mean(np.abs(kernels) < ZERO_TOLERANCE)),
    }


def magnitude_prune(dense_model, data, kept, hidden):
    """The trained dense model with only its `kept` largest units per hidden layer (plain Keras)."""
    weights = dense_weights(dense_model)
    keep_prev = np.arange(weights[0][0].shape[0])
    new = []
    for i, count in enumerate(kept):
        k, b = weights[i]
        k = k[keep_prev, :]
        order = np.argsort(-np.linalg.norm(k, axis=0), kind="stable")
        keep = np.sort(order[:count])
        new.append((k[:, keep], b[keep]))
        keep_prev = keep
    k, b = weights[-1]
    new.append((k[keep_prev, :], b))
    return model_from_weights(data, new)


def model_from_weights(data, weights):
    """A fresh (unregularized) MLP holding the given [(kernel, bias), ...]."""
    model = build(data, [k.shape[1] for k, _ in weights[:-1]])
    for layer, (k, b) in zip([l for l in model.layers if isinstance(l, keras.layers.Dense)],
                             weights):
        layer.set_weights([k.astype("float32"), b.astype("float32")])
    return model


def finetune(model, data, dcfg, tcfg, seed, optimizer):
    """Plain Keras: the optimizer at its base learning rate, no regularizer, `finetune_epochs`."""
    compile_model(model, optimizer, steps_per_execution=tcfg["steps_per_execution"])
    keras.utils.set_random_seed(1000 * seed + 2)
    fit(model, data, dcfg["finetune_epochs"], tcfg["batch"])
    return accuracy(model, data)


def _train(data, hidden, optimizer, seed, salt, epochs, tcfg, hidden_reg=None,
           output_reg=None, proximal=False):
    keras.utils.set_random_seed(1000 * seed + salt)
    model = build(data, hidden, hidden_reg, output_reg)
    compile_model(model, optimizer, proximal, tcfg["steps_per_execution"])
    fit(model, data, epochs, tcfg["batch"])
    return model


def _one_seed(name, dcfg, tcfg, seed):
    data = load(name, seed)
    hidden, epochs = dcfg["hidden"], dcfg["epochs"]
    out = {}
    dense = {}
    for opt in ("adam", "sgd"):
        dense[opt] = _train(data, hidden, opt, seed, 0, epochs, tcfg)
        out[f"dense/{opt}"] = {"accuracy": accuracy(dense[opt], data)}
    s = dcfg["l1_strength"]
    for opt in ("sgd", "adam"):
        reg = keras.regularizers.L1(s)
        model = _train(data, hidden, opt, seed, 0, epochs, tcfg, reg, reg)
        out[f"keras.L1/{opt}"] = {"accuracy": accuracy(model, data), **kernel_sparsity(model)}
        reg = kreg.L1(s)
        model = _train(data, hidden, opt, seed, 0, epochs, tcfg, reg, reg, proximal=True)
        out[f"Proximal+kreg.L1/{opt}"] = {"accuracy": accuracy(model, data),
                                         **kernel_sparsity(model)}
    total_units = int(sum(hidden))
    for opt, strengths in dcfg["group_grid"].items():
        for strength in strengths:
            reg = kreg.GroupLasso(strength, "units")
            model = _train(data, hidden, opt, seed, 0, epochs, tcfg, reg, proximal=True)
            compacted, kept = compact(dense_weights(model))
            full_logits = np.asarray(model(data["x_test"], training=False), dtype="float64")
            small_logits = forward(compacted, data["x_test"])
            row = {
                "accuracy": accuracy(model, data),
                "units_kept": kept,
                "units_removed_fraction": 1 - sum(kept) / total_units,
                "compacted_accuracy": float(np.mean(small_logits.argmax(-1) == data["y_test"])),
                "compacted_max_logit_diff": float(np.max(np.abs(small_logits - full_logits))),
            }
            if min(kept) > 0:
                row["finetuned_accuracy"] = finetune(
                    model_from_weights(data, compacted), data, dcfg, tcfg, seed, opt)
                scratch = _train(data, tuple(kept), opt, seed, 1, epochs, tcfg)
                row["scratch_accuracy"] = accuracy(scratch, data)
                pruned = magnitude_prune(dense[opt], data, kept, hidden)
                row["pruned_finetuned_accuracy"] = finetune(pruned, data, dcfg, tcfg, seed, opt)
                # paired by seed (same split): group lasso minus baseline
                for prefix, key in (("", "accuracy"), ("finetuned_", "finetuned_accuracy")):
                    row[f"{prefix}minus_scratch"] = row[key] - row["scratch_accuracy"]
                    row[f"{prefix}minus_pruned"] = row[key] - row["pruned_finetuned_accuracy"]
            out[group_key(opt, strength)] = row
    return out


def group_key(optimizer, strength):
    return f"Proximal+kreg.GroupLasso/{optimizer}/{strength:g}"


def _aggregate(per_seed):
    """Mean and spread over seeds of every number of every variant."""
    variants = {}
    for seed_result in per_seed:
        for variant, row in seed_result.items():
            for key, value in row.items():
                variants.setdefault(variant, {}).setdefault(key, []).append(value)
    agg = {}
    for variant, columns in variants.items():
        agg[variant] = {}
        for key, values in columns.items():
            if key == "units_kept":
                agg[variant][key] = [common.mean_std(v) for v in zip(*values)]
            else:
                agg[variant][key] = common.mean_std(values)
    return agg


def _goals(agg, dcfg):
    """The issue's goals per optimizer, for group lasso as trained and after fine-tuning.

    The grid point judged is the one removing the most units among those whose mean
    accuracy is within 1 point of the dense model with the same optimizer.
    """
    goals = {}
    for opt, strengths in dcfg["group_grid"].items():
        dense = agg[f"dense/{opt}"]["accuracy"]["mean"]
        for suffix, acc_key in (("", "accuracy"), ("+finetune", "finetuned_accuracy")):
            name = f"group_lasso/{opt}{suffix}"
            candidates = []
            for strength in strengths:
                row = agg.get(group_key(opt, strength))
                if row is not None and acc_key in row and row[acc_key]["mean"] >= dense - 0.01:
                    candidates.append((row["units_removed_fraction"]["mean"], strength, row))
            within = {"goal": "accuracy within 1 point of dense while removing >= 50% of "
                              "hidden units", "dense_accuracy": dense}
            if not candidates:
                goals[f"{name}/within_1_point"] = {
                    **within, "met": False,
                    "note": "no strength of the grid kept accuracy within 1 point of dense"}
                continue
            removed, strength, row = max(candidates)
            acc = row[acc_key]["mean"]
            goals[f"{name}/within_1_point"] = {
                **within, "strength": strength, "accuracy": acc,
                "accuracy_drop_points": 100 * (dense - acc),
                "units_removed_fraction": removed, "met": bool(removed >= 0.5)}
            if "scratch_accuracy" in row:
                scratch = row["scratch_accuracy"]["mean"]
                pruned = row["pruned_finetuned_accuracy"]["mean"]
                prefix = "finetuned_" if suffix else ""
                at_least_both = [
                    r[acc_key]["mean"] >= max(r["scratch_accuracy"]["mean"],
                                              r["pruned_finetuned_accuracy"]["mean"])
                    for r in (agg.get(group_key(opt, s)) for s in strengths)
                    if r is not None and "scratch_accuracy" in r]
                goals[f"{name}/vs_baselines"] = {
                    "goal": "at least as accurate as both baselines at the same unit count",
                    "strength": strength, "accuracy": acc, "scratch_accuracy": scratch,
                    "pruned_finetuned_accuracy": pruned,
                    "paired_minus_scratch": row[f"{prefix}minus_scratch"],
                    "paired_minus_pruned": row[f"{prefix}minus_pruned"],
                    "grid_points_at_least_both": int(sum(at_least_both)),
                    "grid_points": len(at_least_both),
                    "met": bool(acc >= scratch and acc >= pruned)}
    for opt in ("sgd", "adam"):
        prox = agg.get(f"Proximal+kreg.L1/{opt}")
        sub = agg.get(f"keras.L1/{opt}")
        if prox is None or sub is None:
            continue
        goals[f"proximal_l1_zeros/{opt}"] = {
            "exact_zeros": prox["exact_zeros"]["mean"],
            "subgradient_exact_zeros": sub["exact_zeros"]["mean"],
            "accuracy": prox["accuracy"]["mean"],
            "subgradient_accuracy": sub["accuracy"]["mean"],
            "goal": ">= 40% exact zeros where the subgradient gives ~0%, at comparable "
                    "accuracy (within 1 point)",
            "met": bool(prox["exact_zeros"]["mean"] >= 0.4
                        and prox["accuracy"]["mean"] >= sub["accuracy"]["mean"] - 0.01),
        }
    return goals


def run(quick):
    cfg = CONFIGS["quick" if quick else "full"]
    results = {}
    for name, dcfg in cfg["datasets"].items():
        per_seed = []
        for seed in cfg["seeds"]:
            common.log(f"  sparsity {name} seed {seed}")
            per_seed.append(_one_seed(name, dcfg, cfg, seed))
        agg = _aggregate(per_seed)
        results[name] = {
            "config": {**dcfg, "batch": cfg["batch"], "seeds": list(cfg["seeds"]),
                       "steps_per_execution": cfg["steps_per_execution"],
                       "learning_rates": LEARNING_RATES,
                       "train_size": None},
            "variants": agg,
            "goals": _goals(agg, dcfg),
        }
        results[name]["config"]["train_size"] = int(load(name, 0)["x_train"].shape[0])
    return {"datasets": results}
