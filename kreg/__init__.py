"""kreg: regularization for Keras 3 that you can steer, watch and ship.

Public names (pinned by tests/test_public_api.py):

* regularizers: `L1`, `L2`, `ElasticNet`, `GroupLasso`, `SparseGroupLasso`
  (also in `kreg.regularizers`);
* submodules: `kreg.regularizers`.
"""

from kreg import regularizers
from kreg.regularizers import L1, L2, ElasticNet, GroupLasso, SparseGroupLasso

__version__ = "0.1.0"

__all__ = [
    "ElasticNet",
    "GroupLasso",
    "L1",
    "L2",
    "SparseGroupLasso",
    "regularizers",
]
