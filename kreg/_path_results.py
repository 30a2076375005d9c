"""`RegularizationPath`: what `kreg.regularization_path` returns."""

import keras
import numpy as np

from kreg import _validation
from kreg.regularizers import kreg_regularizer


class RegularizationPath:
    """The result of `kreg.regularization_path`: one row per strength.

    Attributes:
        strengths: 1-D float64 array, descending.
        metrics: dict metric name -> `(n_strengths,)` array, as Keras names them
            (`"loss"`, `"mae"`, ... on the training data at the strength's final
            weights, the penalty included in `"loss"`; `"val_..."` on
            `validation_data`).
        sparsity: fraction of exactly zero penalised weights, per strength.
        epochs: full-batch steps trained at each strength.
        converged: bool per strength (see the module docstring for the criterion).
        criterion: the value of the convergence criterion at the last check.
        names: the variable paths that `weights(name)` accepts (the model's own).
        strength_max: the gradient bound when the grid was made from it, else None.
    """

    def __init__(self, model, compile_config, names, layer_names, penalised, strengths,
                 snapshots, metrics, sparsity, epochs, converged, criterion, strength_max,
                 tol, max_epochs, regularizer_indices):
        self._source = model
        self._compile_config = compile_config
        self.names = list(names)
        self._layer_names = layer_names
        self._penalised = list(penalised)
        self.strengths = np.asarray(strengths, "float64")
        self._snapshots = snapshots
        self.metrics = {k: np.asarray(v, "float64") for k, v in metrics.items()}
        self.sparsity = np.asarray(sparsity, "float64")
        self.epochs = np.asarray(epochs, "int64")
        self.converged = np.asarray(converged, bool)
        self.criterion = np.asarray(criterion, "float64")
        self.strength_max = strength_max
        self.tol = tol
        self.max_epochs = max_epochs
        self._regularizer_indices = regularizer_indices

    def __len__(self):
        return len(self.strengths)

    def _index(self, name):
        if isinstance(name, str):
            if name in self.names:
                return self.names.index(name)
            if name in self._layer_names:
                candidates = self._layer_names[name]
                penalised = [i for i in candidates if i in self._penalised]
                pick = penalised or candidates
                return pick[0]
        raise ValueError(
            "Invalid value for argument `name`: expected a variable path or a layer name of "
            f"the model, one of {self.names + sorted(self._layer_names)}. Received: name={name!r}")

    def weights(self, name=None):
        """`(n_strengths, *shape)` array of one variable along the path.

        Args:
            name: a variable path (`"sequential/dense/kernel"`, see `path.names`) or a
                layer name (its first penalised variable, else its first variable);
                None: the first penalised variable.
        """
        index = self._penalised[0] if name is None else self._index(name)
        if self._snapshots[0] is None:
            raise ValueError(
                "This path kept no weights (the per-fold paths of kreg.cross_validate keep "
                "only epochs, convergence and sparsity, so that memory stays flat over the "
                "folds); use cv.path or kreg.regularization_path for weights")
        return np.stack([snap[index] for snap in self._snapshots])

    def _strength_index(self, strength):
        if _validation._is_real(strength):
            hits = np.flatnonzero(np.isclose(self.strengths, float(strength), rtol=1e-6, atol=0))
            if hits.size:
                return int(hits[0])
        raise _validation.invalid(
            "strength", f"one of the path's strengths {np.round(self.strengths, 6).tolist()}",
            strength)

    def model_at(self, strength):
        """A new model (a clone of the input model) with the weights trained at `strength`.

        Its regularizers hold `strength`, and it is compiled as the input model was
        (a fresh copy of its optimizer). The input model is never changed.
        """
        index = self._strength_index(strength)
        if self._snapshots[index] is None:
            self.weights()  # raises: no weights kept
        model = keras.models.clone_model(self._source)
        for variable, value in zip(model.variables, self._snapshots[index]):
            variable.assign(value)
        for i in self._regularizer_indices:
            reg = kreg_regularizer(model.variables[i])
            reg.strength.assign(self.strengths[index])
        config = dict(self._compile_config)
        optimizer = config["optimizer"]
        config["optimizer"] = type(optimizer).from_config(optimizer.get_config())
        model.compile(**config)
        return model

    def rows(self):
        """One dict per strength: `strength`, `epochs`, `converged`, `sparsity` and the metrics."""
        return [_row(self, k) for k in range(len(self))]

    def __iter__(self):
        return iter(self.rows())

    def plot(self, name=None, metric=None, **kwargs):
        """Coefficient paths of variable `name` (`kreg.plot.coefficient_paths`), or, with
        `metric="loss"` (any key of `metrics` without `val_`), train and validation score
        against the strength (`kreg.plot.score_vs_strength`). Needs matplotlib."""
        from kreg import plot

        if metric is None:
            coefs = self.weights(name).reshape(len(self), -1)
            return plot.coefficient_paths(self.strengths, coefs, **kwargs)
        train = self.metrics.get(metric)
        val = self.metrics.get("val_" + metric)
        if train is None and val is None:
            raise _validation.invalid("metric", f"one of {sorted(self.metrics)}", metric)
        if val is None:
            return plot.score_vs_strength(self.strengths, None, train, val_label="train",
                                          ylabel=metric, **kwargs)
        return plot.score_vs_strength(self.strengths, train, val, ylabel=metric, **kwargs)

    def __repr__(self):
        return (f"RegularizationPath({len(self)} strengths from {self.strengths[0]:.4g} to "
                f"{self.strengths[-1]:.4g}, {int(self.converged.sum())} converged, "
                f"{int(self.epochs.sum())} epochs)")


def _row(path, k):
    row = {"strength": float(path.strengths[k]), "epochs": int(path.epochs[k]),
           "converged": bool(path.converged[k]), "sparsity": float(path.sparsity[k])}
    row.update({name: float(values[k]) for name, values in path.metrics.items()})
    return row
