import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Generated assets (tiny presets, synthetic data) go to a per-session folder."""
    os.environ["DLKERAS_CACHE"] = str(tmp_path_factory.mktemp("dlkeras-cache"))


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def model_spy(monkeypatch):
    """Wraps the model factory so a test sees the model and its initial weights."""
    from dlkeras import models

    built = {}
    original = models.build

    def spy(model_config, info):
        model = original(model_config, info)
        built["model"] = model
        built["initial"] = {w.path: np.copy(w) for w in model.weights}
        return model

    monkeypatch.setattr(models, "build", spy)
    return built


def run_cli(args, env=None, timeout=600, module="dlkeras.train", **kwargs):
    """Runs `python -m MODULE ARGS` in a fresh interpreter (own backend, own process)."""
    import subprocess

    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, **kwargs,
    )


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
