"""Forecast baselines: what a user would try before a network, on the very same windows.

- "last_value": every day of the horizon repeats the last input day.
- "seasonal_naive": each day repeats the same weekday of the last input week.
"""

from __future__ import annotations

import numpy as np

from dlkeras.errors import ConfigError

SEASON_DAYS = 7


def last_value(history: np.ndarray, horizon_days: int) -> np.ndarray:
    """(windows, horizon_days): the last input day, repeated."""
    return np.repeat(history[:, -1:], horizon_days, axis=1)


def seasonal_naive(history: np.ndarray, horizon_days: int, season_days: int = SEASON_DAYS):
    """(windows, horizon_days): day h of the horizon repeats day h - 7k of the last input week."""
    if history.shape[1] < season_days:
        raise ConfigError(f"seasonal_naive needs at least {season_days} input days")
    index = history.shape[1] - season_days + np.arange(horizon_days) % season_days
    return history[:, index]


FORECAST_BASELINES = {"last_value": last_value, "seasonal_naive": seasonal_naive}


def run_baselines(names, history: np.ndarray, horizon_days: int) -> dict[str, np.ndarray]:
    """Forecasts of each named baseline for the windows whose input days are `history`."""
    unknown = [name for name in names if name not in FORECAST_BASELINES]
    if unknown:
        raise ConfigError(
            f"evaluate.baselines {unknown} are not forecast baselines; choose from "
            f"{sorted(FORECAST_BASELINES)}"
        )
    return {name: FORECAST_BASELINES[name](history, horizon_days) for name in names}
