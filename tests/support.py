"""Plain helpers the tests share (fixtures live in conftest.py; these can be imported)."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

# Groups that take minutes (seconds summed from `pytest --durations`): under xdist they are
# handed out first, so that no worker is left alone with one of them at the end.
SMOKE_RUNS = "smoke runs"
LONGEST_GROUPS = (SMOKE_RUNS, "tests/test_workers.py", "tests/test_notebooks.py",
                  "tests/test_resume_exact.py", "tests/test_bert_tickets.py")
# The test files and folders that read the session's smoke runs (the `smoke_run`, `trained` and
# `exported` fixtures in conftest.py): one group, so that each recipe trains and exports once per
# session, not once per worker.
SMOKE_RUN_USERS = ("tests/export", "tests/serving", "tests/test_train.py",
                   "tests/recipes/test_effnet_defects.py", "tests/test_html_report.py")
# the folder of generated assets (DLKERAS_CACHE) that make test's workers share, made by the
# xdist controller (tests/conftest.py)
SHARED_CACHE = "DLKERAS_TEST_CACHE"


def run_cli(args, env=None, timeout=600, module="dlkeras.train", **kwargs):
    """Runs `python -m MODULE ARGS` in its own process (own backend): a fork of a prestarted
    interpreter (tests/prestart.py) where one takes it, else a fresh one."""
    import prestart

    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return prestart.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs,
    )


def share_cores(environ=os.environ, cores: int | None = None, workers: int | None = None) -> None:
    """Under `make test`'s N workers (pytest-xdist), each worker's TensorFlow and torch, and the
    commands it starts (they inherit the variables), compute with cores // N threads within an
    op instead of one per core: N workers on N cores otherwise run N threads per core
    (`bench/test_threads.py`: two test files under two workers took 1.08x the wall time and 1.10x
    the CPU time that way). Variables already set are kept; a single-process run is left alone.
    `workers`: N, where `environ` is not a worker's (the xdist controller's); default: the
    worker's PYTEST_XDIST_WORKER_COUNT."""
    workers = workers if workers is not None else int(environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 2:
        return
    threads = str(max(1, (cores or os.cpu_count() or 1) // workers))
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        environ.setdefault(name, threads)


def xdist_group(path: Path) -> str:
    """The xdist group of the test file at `path`: the files and folders of `SMOKE_RUN_USERS`
    are one group; a folder with its own conftest.py (session fixtures) is one; any other test
    file is one (module fixtures)."""
    path = Path(path).resolve()
    relative = path.relative_to(ROOT).as_posix()
    if any(relative == user or relative.startswith(f"{user}/") for user in SMOKE_RUN_USERS):
        return SMOKE_RUNS
    shared = path.parent != TESTS and (path.parent / "conftest.py").exists()
    return (path.parent if shared else path).relative_to(ROOT).as_posix()


class SmokeRuns:
    """recipe name -> the folder of a tiny finished run of it, trained on first use: the recipe's
    SMOKE settings with its stage weights kept, on the TensorFlow backend, all under `out`.
    `built(name)` gives the model the run's factory built last and that model's initial weights."""

    def __init__(self, out: Path):
        self.out, self.runs, self.models = out, {}, {}

    def __call__(self, name: str) -> Path:
        if name not in self.runs:
            self._train(name)
        return self.runs[name][0].path

    def report(self, name: str) -> dict:
        self(name)
        return self.runs[name][1]

    def built(self, name: str) -> dict:
        self(name)
        return self.models[name]

    def _train(self, name: str) -> None:
        from dlkeras import config, models
        from dlkeras.engine.run import train_recipe

        module = config.load_recipe_module(name)
        recipe = config.apply_overrides(module.RECIPE, [*module.SMOKE, "train.keep_resume_state=True"])
        built = {}
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(models, "build", recording(models.build, built))
            self.runs[name] = train_recipe(recipe, self.out)
        self.models[name] = built


def recording(build, built: dict):
    """`build` (models.build) that also records in `built` the model it returned last and that
    model's initial weights ({weight path: array})."""
    def spy(model_config, info):
        model = build(model_config, info)
        built.update(model=model, initial={w.path: np.copy(w) for w in model.weights})
        return model

    return spy


def write_customers_csv(path, rows: int = 120, seed: int = 0, noise: float = 0.0):
    """Customers with tenure, charges and contract; churn is "yes" when tenure (plus `noise`
    standard deviations of Gaussian noise) is under 25. Returns `path`."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    pd.DataFrame({"tenure": tenure, "charges": rng.normal(60, 20, rows).round(2),
                  "contract": rng.choice(["monthly", "yearly"], rows),
                  "churn": np.where(tenure + rng.normal(0, noise, rows) < 25, "yes", "no")}
                 ).to_csv(path, index=False)
    return path


FAMILIES = {  # recipe -> what its raw inputs are
    "mlp_churn": "table rows",
    "cnn_digits": "image arrays",
    "bert_tickets": "texts",
    "lstm_sales": "day windows",
    "effnet_defects": "image files",
}


def op_counts(model) -> dict:
    """{op type: how many nodes} of an onnx.ModelProto's main graph."""
    counts = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
