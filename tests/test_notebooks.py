"""The notebooks in notebooks/: committed without outputs, and each runs top to bottom.

Each notebook is executed in a Jupyter kernel of its own on this interpreter (TensorFlow backend)
with DLKERAS_NOTEBOOK_SMALL=1, which makes it train its recipe's SMOKE variant and export
quickly. Runs and exports land in a temporary working folder, generated assets in a temporary
cache. The kernel is a fork of the suite's prestarted TensorFlow interpreter (tests/prestart.py)
when one takes it, else a fresh interpreter: in a fork the notebook's own imports find
TensorFlow and Keras loaded, as in a kernel that has run a cell before. The kernel is shut down
when its notebook ends.
"""

import os
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FAMILIES = ("quickstart", "text", "image", "timeseries", "tabular")
CELL_TIMEOUT_SECONDS = 600


def test_a_notebook_per_recipe_family():
    names = [path.stem for path in NOTEBOOKS]
    missing = [family for family in FAMILIES if not any(family in name for name in names)]
    assert not missing, f"no notebook for {missing} in {ROOT / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [index for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (
        f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them before "
        "committing (Jupyter: Edit > Clear Outputs of All Cells, then save)"
    )


@pytest.fixture
def forked_kernels(monkeypatch):
    """Jupyter launches `python -m ipykernel_launcher ...` kernels as forks of a prestarted
    interpreter (tests/prestart.py), or as it would when no server takes them; returns the
    processes launched."""
    import prestart
    from jupyter_client.provisioning import local_provisioner

    launched, launch = [], local_provisioner.launch_kernel

    def fork_or_launch(cmd, **options):
        # JPY_PARENT_PID, as Jupyter's launcher sets it: a kernel whose parent (the server) is
        # gone exits (ipykernel's parent poller), so none outlives this process
        env = {**(options.get("env") or os.environ), "JPY_PARENT_PID": str(os.getpid())}
        process = prestart.fork(cmd, env, options.get("cwd"), options.get("stdout"),
                                options.get("stderr")) or launch(cmd, **options)
        launched.append(process)
        return process

    monkeypatch.setattr(local_provisioner, "launch_kernel", fork_or_launch)
    return launched


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path, tmp_path, capsys, forked_kernels):
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    work = tmp_path / "work"
    work.mkdir()
    cache = os.environ.get("DLKERAS_CACHE") or str(tmp_path / "cache")
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "DLKERAS_NOTEBOOK_SMALL": "1",
        "DLKERAS_CACHE": cache,  # generated presets (tiny encoders)
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    # No kernel folders: "python3" is then ipykernel's own kernel on this interpreter
    # (sys.executable), whatever kernelspecs the user's Jupyter folders hold.
    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(notebook, km=kernel, timeout=CELL_TIMEOUT_SECONDS,
                            resources={"metadata": {"path": str(work)}})
    started = time.perf_counter()
    # cleanup_kc: shut the kernel down at the end (nbclient leaves alone a kernel it did not
    # start, until this process exits)
    client.execute(env=env, cleanup_kc=True)
    seconds = time.perf_counter() - started
    with capsys.disabled():
        kind = type(forked_kernels[0]).__name__ if forked_kernels else "?"
        print(f"\n{path.name}: executed in {seconds:.1f} s (small mode, kernel: {kind})")

    assert forked_kernels and all(process.poll() is not None for process in forked_kernels), \
        "the kernel outlived its notebook"
    assert (work / "runs").is_dir() and (work / "saved_models").is_dir()
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 2, f"{path.name}: expected the curves and a report plot inline"
