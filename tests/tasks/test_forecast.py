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
    with pytest.raises(ConfigError, match="not forecast baselines.*last_value"):
        forecast_baselines.run_baselines(["logistic_regression"], history, 3)


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
