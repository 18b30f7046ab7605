import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from prestart import freeze_survivors
from support import (
    FAMILIES,
    LONGEST_GROUPS,
    SHARED_CACHE,
    SmokeRuns,
    recording,
    run_cli,
    share_cores,
    xdist_group,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
share_cores()  # before anything here imports TensorFlow or starts a command

ROOT = Path(__file__).resolve().parents[1]


CACHE_KEY = pytest.StashKey[str]()


def pytest_configure(config):
    """Under pytest-xdist, the controller starts the prestarted interpreters' servers once for
    all its workers (tests/prestart.py), before the workers start, and makes the one folder of
    generated assets they share (`isolated_cache`)."""
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 0 and not hasattr(config, "workerinput"):
        import tempfile

        import prestart

        environ = dict(os.environ)
        share_cores(environ, workers=workers)  # the workers' thread settings, for the servers
        prestart.start_shared(environ)
        if not os.environ.get(SHARED_CACHE):  # else the enclosing run's (a pytest run in a test)
            os.environ[SHARED_CACHE] = config.stash[CACHE_KEY] = tempfile.mkdtemp(prefix="dlkeras-cache-")


def pytest_unconfigure(config):
    if CACHE_KEY in config.stash:
        import shutil

        shutil.rmtree(config.stash[CACHE_KEY], ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under `pytest -n N --dist loadgroup --no-loadscope-reorder` (make test), tests that share
    an expensive fixture run in one worker, and the longest groups are handed out first."""
    of_file = {path: xdist_group(path) for path in {item.path for item in items}}
    groups = {item: of_file[item.path] for item in items}
    sizes = Counter(groups.values())
    rank = {group: index for index, group in enumerate(LONGEST_GROUPS)}
    items.sort(key=lambda item: (rank.get(groups[item], len(rank)), -sizes[groups[item]], groups[item]))
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[item]))


def pytest_collection_finish(session):
    freeze_survivors()  # the imports of every test module


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    freeze_survivors()  # after the test's own teardown and its fixtures'


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Generated assets (tiny presets, synthetic data, JAX's compiled programs, the precision
    probe) go to a folder of this run: under pytest-xdist one the controller made for all its
    workers, which dlkeras writes to as concurrent runs on one machine do (each asset complete
    or absent, JAX's cache under its lock); else one of this session's."""
    shared = os.environ.get(SHARED_CACHE)
    os.environ["DLKERAS_CACHE"] = shared or str(tmp_path_factory.mktemp("dlkeras-cache"))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """recipe name -> the folder of its tiny finished run (support.SmokeRuns), trained once per
    session; its users are one xdist group (support.SMOKE_RUN_USERS)."""
    return SmokeRuns(tmp_path_factory.mktemp("smoke-runs"))


@pytest.fixture(scope="session")
def trained(smoke_run):
    """recipe -> the folder of its smoke run, for one recipe of each family."""
    return {name: smoke_run(name) for name in FAMILIES}


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory):
    """recipe -> the export report of its smoke run in every format of its recipe (the export
    tests check it; the serving tests serve its ONNX artifacts)."""
    from dlkeras import export

    out = tmp_path_factory.mktemp("saved_models")
    return {name: export.export_run(run, None, out, parity_limit=48, latency_seconds=0.02)
            for name, run in trained.items()}


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def command(capsys):
    """Runs a command's `main(args)` in this process and returns what `cli` returns (exit
    status, stdout, stderr): for tests of what a command does on the TensorFlow backend, where a
    fresh interpreter (seconds to import TensorFlow) is not what is tested."""
    import importlib
    import subprocess

    def run(args, module="dlkeras.train"):
        capsys.readouterr()  # what the test printed before is not the command's
        try:
            status = importlib.import_module(module).main(list(args))
        except SystemExit as exit_:  # argparse's own exits
            status = exit_.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess([module, *args], status, out, err)

    return run


@pytest.fixture
def model_spy(monkeypatch):
    """Wraps the model factory so a test sees the model and its initial weights."""
    from dlkeras import models

    built = {}
    monkeypatch.setattr(models, "build", recording(models.build, built))
    return built


@pytest.fixture
def churn_like_csv(tmp_path):
    """A small table shaped like a churn file: numeric, categorical and a yes/no label."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 120
    tenure = rng.integers(0, 72, n)
    contract = rng.choice(["monthly", "yearly", "two-year"], n)
    churn = np.where((tenure < 20) & (contract == "monthly"), "yes", "no")
    churn[:10] = "yes"
    frame = pd.DataFrame({
        "tenure": tenure,
        "charges": rng.normal(60, 20, n).round(2),
        "contract": contract,
        "churn": churn,
    })
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def daily_sales_csv(tmp_path):
    """120 days of sales with a weekly pattern, a trend, noise and a promotion covariate."""
    import pandas as pd

    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=120, freq="D")
    promotion = (rng.random(len(dates)) < 0.15).astype(int)
    weekly = np.array([0.0, 5, 5, 10, 20, 30, -10])[dates.dayofweek]
    sales = 100 + 0.2 * np.arange(len(dates)) + weekly + 15 * promotion + rng.normal(0, 2, len(dates))
    frame = pd.DataFrame({"day": dates.strftime("%Y-%m-%d"), "sales": sales.round(2),
                          "promotion": promotion})
    path = tmp_path / "sales.csv"
    frame.to_csv(path, index=False)
    return path
