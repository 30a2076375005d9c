"""kreg: regularization for Keras 3 that you can steer, watch and ship.

Public names (pinned by tests/test_public_api.py):

* regularizers: `L1`, `L2`, `ElasticNet`, `GroupLasso`, `SparseGroupLasso`
  (also in `kreg.regularizers`); beyond the lasso: `MCP`, `SCAD`, `GroupMCP`,
  `GroupSCAD`, `L0` (also in `kreg.nonconvex`);
* proximal training: `Proximal`, `proximal_step` (also in `kreg.proximal`);
* paths and cross-validation: `regularization_path`, `cross_validate`,
  `strength_max` (also in `kreg.paths`);
* compaction: `compact`, `unit_counts` (also in `kreg.compaction`): a smaller
  model without the units, filters and channels that structured sparsity zeroed;
* submodules: `kreg.regularizers`, `kreg.nonconvex`, `kreg.compaction`, `kreg.proximal`,
  `kreg.paths`,
  `kreg.callbacks`, `kreg.layouts`
  (which axes of a layer's weight are its units and inputs); `kreg.plot`
  (needs matplotlib) and `kreg.demo` are imported on demand.
"""

from kreg import callbacks, compaction, layouts, nonconvex, paths, proximal, regularizers
from kreg.compaction import compact, unit_counts
from kreg.nonconvex import L0, MCP, SCAD, GroupMCP, GroupSCAD
from kreg.paths import cross_validate, regularization_path, strength_max
from kreg.proximal import Proximal, proximal_step
from kreg.regularizers import L1, L2, ElasticNet, GroupLasso, SparseGroupLasso

__version__ = "0.1.0"

__all__ = [
    "ElasticNet",
    "GroupLasso",
    "GroupMCP",
    "GroupSCAD",
    "L0",
    "L1",
    "L2",
    "MCP",
    "Proximal",
    "SCAD",
    "SparseGroupLasso",
    "callbacks",
    "compact",
    "compaction",
    "cross_validate",
    "layouts",
    "nonconvex",
    "paths",
    "proximal",
    "proximal_step",
    "regularization_path",
    "regularizers",
    "strength_max",
    "unit_counts",
]
