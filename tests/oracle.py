"""NumPy oracles shared by the tests, written from the docstrings' definitions."""

import numpy as np


def np_groups(w, groups):
    """The blocks w_g of a kernel `w` (..., inputs, units), one array per group.

    `"units"`: one block per index of the last axis; `"inputs"`: one per index of
    the second-to-last axis; integer ids: the inputs sharing an id, across all units.
    """
    if groups == "units":
        return [w[..., j] for j in range(w.shape[-1])]
    if groups == "inputs":
        return [w[..., i, :] for i in range(w.shape[-2])]
    ids = np.asarray(groups)
    return [w[..., ids == g, :] for g in np.unique(ids)]
