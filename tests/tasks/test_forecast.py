"""Forecast report: baselines and metrics on hand-made series, and a smoke run per model type."""

import json
import math

import numpy as np
import pytest

from dlkeras import config
from dlkeras.data import timeseries
from dlkeras.engine.run import train_recipe
from dlkeras.errors import ConfigError
from dlkeras.runs import read_history
from dlkeras.tasks import forecast, forecast_baselines


def test_baselines_on_a_hand_made_series():
    # two windows of 14 input days; values = day numbers, so each forecast names its source day
    history = np.array([np.arange(1, 15), np.arange(101, 115)], dtype=float)
    np.testing.assert_array_equal(forecast_baselines.last_value(history, 3), [[14, 14, 14], [114, 114, 114]])
    # day 15 is the weekday of day 8, day 16 of day 9, ...; day 22 wraps to day 8 again
    seasonal = forecast_baselines.seasonal_naive(history, 9)
    np.testing.assert_array_equal(seasonal[0], [8, 9, 10, 11, 12, 13, 14, 8, 9])
    np.testing.assert_array_equal(seasonal[1], [108, 109, 110, 111, 112, 113, 114, 108, 109])
    weekly = np.tile([5.0, 1, 1, 1, 1, 1, 9], 3)[None]  # a perfectly weekly series
    np.testing.assert_array_equal(forecast_baselines.seasonal_naive(weekly[:, :14], 7), weekly[:, 14:])
    with pytest.raises(ConfigError, match="needs at least 7 input days"):
        forecast_baselines.seasonal_naive(history[:, :5], 3)


def test_metrics_by_hand_and_mape_is_safe_with_zero_actuals():
    actual = np.array([[100.0, 0.0], [200.0, 50.0]])
    predicted = np.array([[110.0, 5.0], [180.0, 50.0]])
    metrics = forecast.forecast_metrics(actual, predicted)
    assert metrics["mae"] == pytest.approx((10 + 5 + 20 + 0) / 4)
    assert metrics["rmse"] == pytest.approx(math.sqrt((100 + 25 + 400 + 0) / 4))
    assert metrics["mape"] == pytest.approx(100 * (0.1 + 0.1 + 0.0) / 3)  # the zero is skipped
    assert metrics["mape_skipped_zero_actuals"] == 1
    assert metrics["per_horizon"]["mae"] == pytest.approx([15.0, 2.5])
    assert metrics["per_horizon"]["mape"] == pytest.approx([10.0, 0.0])
    only_zeros = forecast.forecast_metrics(np.zeros((2, 1)), np.ones((2, 1)))
    assert only_zeros["mape"] is None and only_zeros["per_horizon"]["mape"] == [None]
    json.dumps(only_zeros, allow_nan=False)  # metrics.json stays strict JSON


def test_verdict_says_plainly_who_won():
    baselines = {"last_value": {"mae": 10.0}, "seasonal_naive": {"mae": 6.0}}
    assert "beat every baseline" in forecast.verdict("lstm", {"mae": 5.0}, baselines)
    mixed = forecast.verdict("gru", {"mae": 8.0}, baselines)
    assert "beat last_value but NOT seasonal_naive" in mixed and "8.00 vs 10.00" in mixed
    assert "did NOT beat any baseline" in forecast.verdict("lstm", {"mae": 11.0}, baselines)


def csv_recipe(path, model_name):
    module = config.load_recipe_module("lstm_sales")
    return config.apply_overrides(module.RECIPE, [
        *module.SMOKE, f"data.path={path}", "data.date_column=day", "data.target_column=sales",
        "data.covariate_columns=('promotion',)", "data.input_days=10", f"model.name={model_name}",
        "callbacks.tensorboard=false", "callbacks.checkpoints=false", "train.epochs=2",
    ])


@pytest.mark.parametrize("model_name", ["gru", "temporal_cnn", "transformer_encoder"])
def test_smoke_run_of_each_model_type(model_name, daily_sales_csv, tmp_path):
    recipe = csv_recipe(daily_sales_csv, model_name)
    run_dir, report = train_recipe(recipe, tmp_path / "runs")
    for name in ("predictions.png", "residuals.png", "curves.png", "summary.md",
                 "test_forecasts.csv"):
        assert (run_dir.report_dir / name).is_file(), name
    losses = [float(row["loss"]) for row in read_history(run_dir.history_csv)]
    assert losses and all(math.isfinite(v) for v in losses)
    metrics = json.loads(run_dir.metrics_json.read_text())
    assert metrics["model"]["name"] == model_name and math.isfinite(metrics["model"]["mae"])
    assert len(metrics["model"]["per_horizon"]["mae"]) == 7
    assert report["verdict"] in report["summary"]
    # the baselines were scored on exactly the windows the network was scored on
    test = timeseries.build(recipe.data, recipe.train.seed).splits["test"].raw
    assert metrics["model"]["examples"] == len(test.actual)
    expected = np.abs(test.actual - test.history[:, -1:]).mean()
    assert metrics["baselines"]["last_value"]["mae"] == pytest.approx(expected)


def test_lstm_sales_smoke_run_scores_every_baseline_and_chooses_its_calendar(command, tmp_path):
    import pandas as pd

    dates = pd.date_range("2016-01-01", periods=3 * 365, freq="D")
    rng = np.random.default_rng(0)
    weekly = np.array([0.0, 1, 2, 3, 6, 8, -4])[dates.day_of_week]
    values = 50 + 10 * np.sin(2 * np.pi * dates.day_of_year / 365.25) + weekly + rng.normal(0, 1, len(dates))
    path = tmp_path / "daily.csv"
    pd.DataFrame({"when": dates.strftime("%Y-%m-%d"), "level": values}).to_csv(path, index=False)
    module = config.load_recipe_module("lstm_sales")
    sets = [*module.SMOKE, f"data.path={path}", "data.date_column=when",
            "data.target_column=level", "data.holidays=()", "callbacks.tensorboard=false"]
    result = command(["--recipe", "lstm_sales", "--out", str(tmp_path / "runs"),
                  *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "calendar features (auto" in result.stdout and "['day_of_week', 'day_of_year']" in result.stdout
    run = tmp_path / "runs" / "latest" / "lstm_sales"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["baselines"]) == set(forecast_baselines.FORECAST_BASELINES)
    assert set(module.RECIPE.evaluate.baselines) == set(forecast_baselines.FORECAST_BASELINES)
    for name, scores in metrics["baselines"].items():
        assert math.isfinite(scores["mae"]) and scores["examples"] == metrics["model"]["examples"], name
    assert metrics["calendar_features"] == ["day_of_week", "day_of_year"]
    assert metrics["seasonality"]["requested"] == ["auto"]
    summary = (run / "report" / "summary.md").read_text()
    assert metrics["verdict"] in summary and "gradient_boosting" in metrics["verdict"]
    preprocessing = json.loads((run / "preprocessing.json").read_text())
    assert preprocessing["calendar_features"] == ["day_of_week", "day_of_year"]
    forecast_run = command(["--run", str(run)], module="dlkeras.predict")
    assert forecast_run.returncode == 0, forecast_run.stderr[-3000:]
    assert "2019-01-06" in forecast_run.stdout  # the 7th day after the last one, 2018-12-30


@pytest.mark.parametrize("keep", [True, False])
def test_a_baseline_better_on_validation_is_kept_and_served_only_when_asked(keep, command, tmp_path):
    """A random walk: the last value is the best forecast, a 3-epoch network is worse."""
    import pandas as pd

    from dlkeras.runs import RunDir
    from dlkeras.tasks.forecast_baselines import restore

    dates = pd.date_range("2020-01-01", periods=400, freq="D")
    values = 100 + np.cumsum(np.random.default_rng(3).normal(0, 5, len(dates)))
    path = tmp_path / "walk.csv"
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": values}).to_csv(path, index=False)
    module = config.load_recipe_module("lstm_sales")
    sets = [*module.SMOKE, f"data.path={path}", "data.target_column=value", "data.holidays=()",
            "callbacks.tensorboard=false", f"train.keep_best_of_baselines={keep}"]
    out = tmp_path / "runs"
    result = command(["--recipe", "lstm_sales", "--out", str(out), *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    run = RunDir((out / "latest" / "lstm_sales").resolve())
    choice = json.loads(run.metrics_json.read_text())["validation"]
    assert choice["best"] != "network" and choice["mae"][choice["best"]] < choice["mae"]["network"]
    assert "gradient_boosting" in choice["not_servable"]
    predicted = command(["--run", str(run.path)], module="dlkeras.predict")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    summary = (run.report_dir / "summary.md").read_text()
    metrics = json.loads(run.metrics_json.read_text())
    assert metrics["interval"]["model"] == choice["kept"] and "test coverage" in summary
    assert "low 80%" in predicted.stdout
    for line in predicted.stdout.splitlines()[-7:]:
        value, low, high = map(float, line.split()[2:5])  # a biased model's interval may
        assert low < high                                 # lie wholly on one side of it
    if not keep:
        assert choice["kept"] == "network" and not run.kept_baseline_json.exists()
        assert f"The {choice['best']} baseline forecasts better than the network" in summary
        assert "kept on validation" not in predicted.stdout
        return
    kept = json.loads(run.kept_baseline_json.read_text())
    assert kept["name"] == choice["kept"] == choice["best"]
    assert f"keeps the {kept['name']} baseline" in summary
    assert f"{kept['name']} baseline (kept on validation)" in predicted.stdout
    # the served forecast is the stored baseline's forecast of the days after the data
    from dlkeras.data.timeseries import ForecastWindows

    latest = json.loads(run.preprocessing_json.read_text())["latest"]
    history = np.asarray(latest["value"], dtype=np.float64)[None]
    first = np.array([np.datetime64(latest["dates"][-1][:10], "D") + 1])
    expected = restore(kept["state"])(ForecastWindows(history, np.empty((1, 0)), first))[0]
    shown = [float(line.split()[2]) for line in predicted.stdout.splitlines()[-7:]]
    np.testing.assert_allclose(shown, expected, atol=0.006)


def test_intervals_take_validation_error_percentiles_and_measure_test_coverage():
    from dlkeras.tasks import forecast_choice

    rng = np.random.default_rng(0)
    errors = rng.normal(0, [1.0, 3.0], size=(4000, 2))  # day 2 is three times as uncertain
    val_forecast = rng.normal(size=(4000, 2))
    test_forecast = rng.normal(size=(5000, 2))
    test_actual = test_forecast + rng.normal(0, [1.0, 3.0], size=(5000, 2))
    interval = forecast_choice.intervals(val_forecast + errors, val_forecast, test_actual,
                                         test_forecast)
    np.testing.assert_allclose(interval["upper_offsets"], [1.2816, 3 * 1.2816], rtol=0.08)
    np.testing.assert_allclose(interval["lower_offsets"], [-1.2816, -3 * 1.2816], rtol=0.08)
    assert interval["test_coverage"] == pytest.approx(0.8, abs=0.02)
    shifted = forecast_choice.intervals(val_forecast + errors, val_forecast, test_actual + 100,
                                        test_forecast)
    assert shifted["test_coverage"] == 0.0
