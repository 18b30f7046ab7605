"""Calendar features chosen from the data: weekly and yearly patterns, never the test days."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from dlkeras import config
from dlkeras.data import seasonality, timeseries


def daily(days, yearly=0.0, weekly=0.0, noise=1.0, seed=0, start="2015-01-01") -> pd.Series:
    """A daily series: a yearly sine, a weekday pattern and Gaussian noise of the given sizes."""
    dates = pd.date_range(start, periods=days, freq="D")
    rng = np.random.default_rng(seed)
    season = yearly * np.sin(2 * np.pi * dates.day_of_year.to_numpy() / 365.25)
    week = weekly * np.array([0.0, 0.2, 0.4, 0.5, 1.0, -0.8, -1.3])[dates.day_of_week]
    return pd.Series(20 + season + week + rng.normal(0, noise, days), index=dates)


def choice(series: pd.Series) -> list[str]:
    return seasonality.choose_calendar(series.index, series.to_numpy())["calendar_features"]


def test_day_of_year_needs_two_years_of_a_yearly_pattern():
    assert choice(daily(4 * 365, yearly=8)) == ["day_of_year"]
    assert choice(daily(365, yearly=8)) == []  # one year: a season looks like a trend
    assert choice(daily(4 * 365, yearly=0)) == []


@pytest.mark.parametrize("seed", range(3))
def test_day_of_week_only_for_a_weekly_pattern(seed):
    assert choice(daily(200, weekly=3, seed=seed)) == ["day_of_week"]
    assert choice(daily(200, seed=seed)) == []  # white noise
    # a strong yearly season alone is no weekly pattern; both together are both
    assert choice(daily(3 * 365, yearly=10, seed=seed)) == ["day_of_year"]
    assert choice(daily(3 * 365, yearly=10, weekly=3, seed=seed)) == ["day_of_week", "day_of_year"]


def write_csv(series: pd.Series, path) -> str:
    pd.DataFrame({"day": series.index.strftime("%Y-%m-%d"), "value": series.to_numpy()}).to_csv(
        path, index=False)
    return str(path)


def test_the_choice_ignores_the_test_split(tmp_path):
    series = daily(3 * 365, yearly=8, seed=1)
    data = config.DataConfig(kind="timeseries", path=write_csv(series, tmp_path / "a.csv"),
                             date_column="day", target_column="value", calendar_features=("auto",))
    first = timeseries.build(data, seed=0).info.preprocessing
    changed = series.copy()
    test_days = int(round(len(series) * data.test_fraction))
    week = np.array([0.0, 0, 0, 0, 30, -30, 10])[changed.index.day_of_week]
    changed.iloc[-test_days:] = 5 + week[-test_days:] + np.random.default_rng(9).normal(0, 1, test_days)
    assert "day_of_week" in choice(changed)  # what reading the test days would have chosen
    second = timeseries.build(
        dataclasses.replace(data, path=write_csv(changed, tmp_path / "b.csv")), seed=0
    ).info.preprocessing
    assert first["calendar_features"] == second["calendar_features"] == ["day_of_year"]
    assert first["seasonality"] == second["seasonality"]
    assert first["seasonality"]["requested"] == ["auto"]
    assert first["feature_names"][-2:] == ["day_of_year_sin", "day_of_year_cos"]
