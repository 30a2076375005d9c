"""Callbacks that steer and watch regularization during `fit` (issue 4; in progress)."""

import keras

__all__ = ["SparsityMonitor", "StrengthScheduler", "measure_sparsity"]


class StrengthScheduler(keras.callbacks.Callback):  # placeholder
    def __init__(self, schedule, regularizers=None, update="epoch"):
        raise NotImplementedError("kreg.callbacks.StrengthScheduler is being written")


class SparsityMonitor(keras.callbacks.Callback):  # placeholder
    def __init__(self, tolerance=0.0):
        raise NotImplementedError("kreg.callbacks.SparsityMonitor is being written")


def measure_sparsity(model_or_variables, tolerance=0.0):  # placeholder
    raise NotImplementedError("kreg.callbacks.measure_sparsity is being written")
