"""Pins kreg's public surface: a change here must be deliberate."""

import types

import kreg


def test_top_level_names():
    # Every public attribute that is not a submodule (kreg.demo, kreg.plot, ...
    # appear once imported) is in __all__, and __all__ is exactly this list.
    public = {n for n in dir(kreg) if not n.startswith("_")}
    not_modules = {n for n in public if not isinstance(getattr(kreg, n), types.ModuleType)}
    assert not_modules <= set(kreg.__all__)
    assert all(hasattr(kreg, n) for n in kreg.__all__)
    assert sorted(kreg.__all__) == [
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


def test_nonconvex_module_names():
    assert sorted(kreg.nonconvex.__all__) == ["GroupMCP", "GroupSCAD", "L0", "MCP", "SCAD"]
    for name in kreg.nonconvex.__all__:
        assert getattr(kreg, name) is getattr(kreg.nonconvex, name)
        assert issubclass(getattr(kreg, name), kreg.regularizers.Regularizer)


def test_compaction_module_names():
    assert sorted(kreg.compaction.__all__) == ["CompactionReport", "compact", "unit_counts"]


def test_paths_module_names():
    assert sorted(kreg.paths.__all__) == [
        "CrossValidation", "RegularizationPath", "cross_validate", "regularization_path",
        "strength_max"]
    for name in ("cross_validate", "regularization_path", "strength_max"):
        assert getattr(kreg, name) is getattr(kreg.paths, name)


def test_proximal_module_names():
    assert sorted(kreg.proximal.__all__) == ["Proximal", "proximal_step"]


def test_callbacks_module_names():
    assert sorted(kreg.callbacks.__all__) == [
        "PenaltyMonitor",
        "SparsityMonitor",
        "StrengthScheduler",
        "measure_sparsity",
    ]


def test_layouts_module_names():
    assert sorted(kreg.layouts.__all__) == [
        "Layout", "alive_units", "bind", "layout_of", "register"
    ]


def test_regularizers_module_names():
    assert sorted(kreg.regularizers.__all__) == [
        "ElasticNet",
        "GroupLasso",
        "L1",
        "L2",
        "Regularizer",
        "SparseGroupLasso",
    ]


def test_plot_and_demo_module_names():
    import kreg.demo
    import kreg.plot

    assert sorted(kreg.plot.__all__) == [
        "coefficient_paths",
        "score_vs_strength",
        "surviving_units",
        "training_curves",
    ]
    assert kreg.demo.__all__ == ["main"]
