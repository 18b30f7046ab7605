"""What the forecast baselines see: the windows of each split, their dates and calendar.

`BaselineInputs` gathers the original-unit windows of the three splits with what the data
pipeline decided on the training and validation days (weekly pattern, calendar features).
The learned baselines read the input days of a window plus the calendar features of its
target days; climatology reads the training days by day of year or weekday.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlkeras.data import timeseries

MIN_CLIMATE_DAYS = 730  # two training years before a day of year has more than one value
CLIMATE_HALF_WIDTH = 3  # a day of year's mean pools the days within 3 days of it


@dataclass
class BaselineInputs:
    """The windows of each split and the seasonality found on the fitting days.

    Attributes:
        splits: "train", "val", "test" -> `timeseries.ForecastWindows` (original units).
        horizon_days: days forecast per window.
        calendar: the calendar features the fitting days call for (e.g. ["day_of_week"]).
        holidays: `data.holidays` entries.
        weekly: whether the fitting days show a weekly pattern.
        seed: seeds the gradient-boosting models.
    """

    splits: dict
    horizon_days: int
    calendar: list
    holidays: list
    weekly: bool
    seed: int = 0

    @classmethod
    def from_run(cls, splits: dict, preprocessing: dict, seed: int) -> BaselineInputs:
        """From the splits' raw windows and the run's preprocessing record."""
        found = preprocessing.get("seasonality") or {}
        return cls({name: split.raw for name, split in splits.items()},
                   preprocessing["horizon_days"], list(found.get("calendar_features", [])),
                   list(preprocessing.get("holidays", [])), "day_of_week" in
                   found.get("calendar_features", []), seed)


def target_dates(windows, horizon_days: int) -> np.ndarray:
    """(windows, horizon_days) datetime64[D] of every forecast day."""
    return windows.first_dates[:, None] + np.arange(horizon_days).astype("timedelta64[D]")


def target_calendar(windows, inputs: BaselineInputs) -> np.ndarray:
    """(windows, horizon_days, features): the calendar features of every forecast day."""
    import pandas as pd

    dates = target_dates(windows, inputs.horizon_days)
    flat, _ = timeseries.calendar_features(pd.DatetimeIndex(dates.ravel()), inputs.calendar,
                                           inputs.holidays)
    return flat.reshape(*dates.shape, flat.shape[1])


def window_features(windows, inputs: BaselineInputs) -> np.ndarray:
    """(windows, features): the input days, then the calendar of every forecast day."""
    calendar = target_calendar(windows, inputs)
    return np.concatenate([windows.history, calendar.reshape(len(calendar), -1)], axis=1)


def step_features(windows, inputs: BaselineInputs, step: int) -> np.ndarray:
    """(windows, features) for forecast day `step`: input days minus the last, the last, calendar.

    Input days relative to the last one let a tree model forecast a level it never saw.
    """
    last = windows.history[:, -1:]
    calendar = target_calendar(windows, inputs)[:, step]
    return np.concatenate([windows.history - last, last, calendar], axis=1)


def climatology_means(inputs: BaselineInputs) -> tuple[list[float], str]:
    """The training mean of each day of year, or of each weekday, and which of the two.

    Day of year needs at least two training years (days within `CLIMATE_HALF_WIDTH` of it are
    pooled); a shorter training span falls back to the mean of the same weekday.
    """
    import pandas as pd

    train = inputs.splits["train"]
    days = pd.DatetimeIndex(train.dates)
    if len(days) >= MIN_CLIMATE_DAYS:
        sums = np.bincount(_day_of_year(days), weights=train.days, minlength=365)
        counts = np.bincount(_day_of_year(days), minlength=365).astype(np.float64)
        kernel = np.ones(2 * CLIMATE_HALF_WIDTH + 1)
        pooled = [np.convolve(np.concatenate([a[-CLIMATE_HALF_WIDTH:], a, a[:CLIMATE_HALF_WIDTH]]),
                              kernel, mode="valid") for a in (sums, counts)]
        return (pooled[0] / np.maximum(pooled[1], 1)).tolist(), "day_of_year"
    weekday = days.day_of_week.to_numpy()
    return [float(train.days[weekday == d].mean()) for d in range(7)], "day_of_week"


def climatology_forecast(means, by: str, windows, horizon_days: int) -> np.ndarray:
    """(windows, horizon_days): each forecast day's mean from `climatology_means`."""
    import pandas as pd

    wanted = pd.DatetimeIndex(target_dates(windows, horizon_days).ravel())
    index = _day_of_year(wanted) if by == "day_of_year" else wanted.day_of_week.to_numpy()
    return np.asarray(means)[index].reshape(-1, horizon_days)


def _day_of_year(dates) -> np.ndarray:
    """0 .. 364; 31 December of a leap year shares the index of 30 December."""
    return np.minimum(dates.day_of_year.to_numpy() - 1, 364)
