"""Forecast baselines fit on the training split: seasonal naive, climatology, ridge, boosting."""

import numpy as np
import pandas as pd
import pytest

from dlkeras import config
from dlkeras.data import timeseries
from dlkeras.errors import ConfigError
from dlkeras.tasks import forecast_baselines
from dlkeras.tasks.forecast import forecast_metrics
from dlkeras.tasks.forecast_features import BaselineInputs


def baseline_inputs(values, tmp_path, start="2016-01-01", **fields):
    dates = pd.date_range(start, periods=len(values), freq="D")
    path = tmp_path / "series.csv"
    pd.DataFrame({"day": dates.strftime("%Y-%m-%d"), "value": values}).to_csv(path, index=False)
    data = config.DataConfig(kind="timeseries", path=str(path), date_column="day",
                             target_column="value", calendar_features=("auto",), **fields)
    datasets = timeseries.build(data, seed=0)
    return BaselineInputs.from_run(datasets.splits, datasets.info.preprocessing, seed=0)


def test_ridge_beats_last_value_on_a_strong_yearly_sine(tmp_path):
    days = np.arange(4 * 365)
    rng = np.random.default_rng(0)
    values = 15 + 10 * np.sin(2 * np.pi * days / 365.25) + rng.normal(0, 2, len(days))
    inputs = baseline_inputs(values, tmp_path)
    assert inputs.calendar == ["day_of_year"] and not inputs.weekly
    fitted = forecast_baselines.fit_baselines(
        ["last_value", "seasonal_naive", "ridge", "climatology", "gradient_boosting"], inputs)
    forecasts = {name: f.forecast(inputs.splits["test"]) for name, f in fitted.items()}
    settings = {name: f.settings for name, f in fitted.items()}
    actual = inputs.splits["test"].actual
    mae = {name: forecast_metrics(actual, f)["mae"] for name, f in forecasts.items()}
    assert mae["ridge"] < 0.8 * mae["last_value"], mae
    assert mae["climatology"] < mae["last_value"] and mae["gradient_boosting"] < mae["last_value"]
    assert settings["ridge"]["alpha"] in forecast_baselines.RIDGE_ALPHAS
    assert settings["seasonal_naive"] == {"period_days": 1}  # no weekly pattern: last value
    np.testing.assert_array_equal(forecasts["seasonal_naive"], forecasts["last_value"])
    assert settings["climatology"] == {"by": "day_of_year"}
    assert len(settings["gradient_boosting"]["iterations"]) == 7


def test_climatology_by_day_of_year_or_weekday(tmp_path):
    dates = pd.date_range("2017-01-01", periods=3 * 365, freq="D")  # 2017-2019, no leap year
    inputs = baseline_inputs(dates.day_of_year.to_numpy().astype(float), tmp_path, start="2017-01-01")
    test = inputs.splits["test"]
    fitted = forecast_baselines.fit_climatology(inputs)
    forecast, setting = fitted.forecast(test), fitted.settings
    # away from the turn of the year the pooled mean of days d-3 .. d+3 is d itself
    assert setting == {"by": "day_of_year"}
    inside = (test.actual > 5) & (test.actual < 360)
    np.testing.assert_allclose(forecast[inside], test.actual[inside])
    weekday = np.tile(np.arange(7.0), 40)  # 280 days starting on a Monday: value = weekday
    short = baseline_inputs(weekday, tmp_path, start="2024-01-01")
    fitted = forecast_baselines.fit_climatology(short)
    assert fitted.settings == {"by": "day_of_week"}
    np.testing.assert_allclose(fitted.forecast(short.splits["test"]), short.splits["test"].actual)
    assert forecast_baselines.fit_seasonal_naive(short).settings == {"period_days": 7}


def test_unknown_baseline_is_a_config_error(tmp_path):
    inputs = baseline_inputs(np.arange(300.0), tmp_path)
    with pytest.raises(ConfigError, match="not forecast baselines.*climatology"):
        forecast_baselines.fit_baselines(["logistic_regression"], inputs)


def test_stored_baselines_forecast_exactly_as_fitted(tmp_path):
    """A JSON round trip of each storable baseline gives the same test forecasts."""
    import json

    days = np.arange(3 * 365)
    rng = np.random.default_rng(2)
    values = 50 + 10 * np.sin(2 * np.pi * days / 365.25) + 5 * (days % 7 == 5) + rng.normal(0, 1, len(days))
    inputs = baseline_inputs(values, tmp_path, holidays=("12-25",))
    fitted = forecast_baselines.fit_baselines(list(forecast_baselines.FORECAST_BASELINES), inputs)
    test = inputs.splits["test"]
    stored = {name: f for name, f in fitted.items() if f.state is not None}
    assert set(stored) == {"last_value", "seasonal_naive", "climatology", "ridge"}
    for name, f in stored.items():
        restored = forecast_baselines.restore(json.loads(json.dumps(f.state)))
        np.testing.assert_allclose(restored(test), f.forecast(test), rtol=1e-9, atol=1e-9,
                                   err_msg=name)
    # the stored ridge is one folded linear map: it must equal scikit-learn's pipeline
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dlkeras.tasks.forecast_features import window_features

    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=fitted["ridge"].settings["alpha"]))
    pipeline.fit(window_features(inputs.splits["train"], inputs), inputs.splits["train"].actual)
    np.testing.assert_allclose(stored["ridge"].forecast(test),
                               pipeline.predict(window_features(test, inputs)), rtol=1e-6, atol=1e-6)
