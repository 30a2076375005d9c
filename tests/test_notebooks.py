"""The notebooks run top to bottom on a fresh kernel (their own asserts check their claims).

Each notebook is executed with nbclient on a kernel started from this interpreter
(`sys.executable`), so it sees the same installed kreg, Keras and TensorFlow as the
tests, whatever kernelspecs the machine has. The committed files must carry no
outputs and be exactly what notebooks/_build.py writes.
"""

import json
import pathlib
import sys
import time

import keras
import pytest

nbformat = pytest.importorskip("nbformat", reason="needs nbformat (the `test` extra)")
nbclient = pytest.importorskip("nbclient", reason="needs nbclient (the `test` extra)")
pytest.importorskip("ipykernel", reason="needs ipykernel (the `test` extra)")
pytest.importorskip("matplotlib", reason="the notebooks need matplotlib")
pytest.importorskip("sklearn", reason="the notebooks need scikit-learn")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_the_six_notebooks_exist_and_match_their_generator():
    assert NAMES == [
        "01_l1_vs_l2_paths",
        "02_group_lasso_pruning",
        "03_grouped_feature_selection",
        "04_choosing_lambda",
        "05_beyond_the_lasso",
        "06_mlp_path_and_cv",
    ]
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import _build
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for name in NAMES:
        text = (NOTEBOOKS / f"{name}.ipynb").read_text()
        assert text == nbformat.writes(_build.build(name)) + "\n", (
            f"{name}.ipynb differs from notebooks/_build.py: run `python notebooks/_build.py`"
        )
        nb = nbformat.reads(text, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
        assert nb.cells[0].cell_type == "markdown" and "**What this shows.**" in nb.cells[0].source


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory):
    """A kernelspec `python3` that runs ipykernel with this very interpreter."""
    kernels = tmp_path_factory.mktemp("kernels")
    (kernels / "python3").mkdir()
    (kernels / "python3" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (kreg tests)",
        "language": "python",
    }))
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name, device, kernel_spec_manager, tmp_path, monkeypatch):
    if keras.backend.backend() == "torch":
        pytest.skip("the notebooks train with steps_per_execution > 1 and jit_compile=True, "
                    "which Keras's PyTorch trainer refuses or compiles with Inductor; they run "
                    "under TensorFlow and JAX (README, Notebooks)")
    # The kernel is another process: the `device` fixture cannot place its ops, so the
    # device kind is passed through the environment (no GPU visible for the CPU case).
    if "gpu" not in device.lower() and "cuda" not in device:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    km = KernelManager(kernel_name="python3", kernel_spec_manager=kernel_spec_manager)
    client = nbclient.NotebookClient(
        nb, km=km, timeout=240, resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on failure
    print(f"{name}: {time.perf_counter() - start:.1f} s")
    # The kernel really was this interpreter.
    assert km.kernel_spec.argv[0] == sys.executable
    # A notebook leaves nothing in the directory it runs in (a user's working tree).
    assert sorted(p.name for p in tmp_path.iterdir()) == []
