"""python -m dlkeras.predict: forecasts the days after the latest input, with dates."""

import subprocess
import sys

import numpy as np
import pandas as pd

from dlkeras import config, predict
from dlkeras.engine.run import train_recipe


def forecast_lines(output: str) -> pd.Series:
    rows = [line.split() for line in output.splitlines() if line[:4].isdigit()]
    return pd.Series([float(r[2]) for r in rows], index=[r[0] for r in rows])


def test_forecast_from_the_run_and_from_a_file(daily_sales_csv, tmp_path, capsys):
    module = config.load_recipe_module("lstm_sales")
    recipe = config.apply_overrides(module.RECIPE, [
        *module.SMOKE, f"data.path={daily_sales_csv}", "data.date_column=day",
        "data.target_column=sales", "data.covariate_columns=('promotion',)", "data.input_days=10",
        "train.epochs=1", "callbacks.tensorboard=false",
    ])
    run_dir, _ = train_recipe(recipe, tmp_path / "runs")
    capsys.readouterr()

    assert predict.main(["--run", str(run_dir.path)]) == 0
    from_run = forecast_lines(capsys.readouterr().out)
    assert list(from_run.index) == [str(d.date()) for d in pd.date_range("2024-04-30", periods=7)]
    assert np.isfinite(from_run).all()

    frame = pd.read_csv(daily_sales_csv).drop(index=[110])  # a gap the run's rule fills
    recent = tmp_path / "recent.csv"
    frame.iloc[-40:].to_csv(recent, index=False)
    output = tmp_path / "forecast.csv"
    assert predict.main(["--run", str(run_dir.path), "--input", str(recent),
                         "--output", str(output)]) == 0
    captured = capsys.readouterr()
    assert "filled 1 missing date(s)" in captured.err
    from_file = forecast_lines(captured.out)
    assert list(from_file.index) == list(from_run.index)
    written = pd.read_csv(output)
    assert list(written.columns) == ["date", "sales", "low_80%", "high_80%"] and len(written) == 7
    assert (written["low_80%"] < written["high_80%"]).all()
    np.testing.assert_allclose(written["sales"], from_file.to_numpy(), atol=0.006)

    frame.iloc[-5:].to_csv(recent, index=False)
    assert predict.main(["--run", str(run_dir.path), "--input", str(recent)]) == 2
    assert "provide at least 10 days" in capsys.readouterr().err
    frame.drop(columns=["promotion"]).to_csv(recent, index=False)
    assert predict.main(["--run", str(run_dir.path), "--input", str(recent)]) == 2
    assert "'promotion' not found" in capsys.readouterr().err
    assert predict.main(["--run", str(tmp_path)]) == 2
    assert "is not a finished run" in capsys.readouterr().err


def test_help_skips_heavy_imports():
    code = ("import sys\nfrom dlkeras import predict\ntry:\n    predict.main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--input" in result.stdout
