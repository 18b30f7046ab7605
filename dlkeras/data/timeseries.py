"""Daily time series: checked dates, filled gaps, calendar features and sliding windows.

A table with a date column, a target column and optional covariate columns becomes a regular
daily series (duplicated dates are an error, missing dates are filled by `data.gap_fill` and
reported). The series is split in time: the oldest days train, the newest test, and every
window (`input_days` of inputs followed by `horizon_days` of targets) lies inside one split.
Scaling statistics come from the training days only.

Model inputs per day: the scaled target, the scaled covariates, the `data.calendar_features`
(day of week one-hot, month sine/cosine, day of year sine/cosine; "auto" lets the training and
validation days choose, see `seasonality`) and, when `data.holidays` is set, a holiday flag.
Split `y` holds the targets in scaled units (what the network learns); `Split.raw` holds them
in original units with the input days' values, for baselines and the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dlkeras.data import (
    DataInfo,
    Datasets,
    Split,
    checks,
    fingerprint,
    pipeline,
    seasonality,
    sources,
    splits,
)
from dlkeras.errors import ConfigError, DataError

GAP_FILLS = ("interpolate", "zero", "previous", "error")
CALENDAR_FEATURES = ("day_of_week", "month", "day_of_year")
AUTO = seasonality.AUTO
CALENDAR_CHOICES = (*CALENDAR_FEATURES, AUTO)
OLD_CALENDAR = ("day_of_week", "month")  # runs saved before the setting was recorded
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIN_INPUT_DAYS = 7  # one week: the weekly pattern and the seasonal-naive baseline need it
SETTINGS = ("date_column", "target_column", "covariate_columns", "gap_fill", "calendar_features",
            "holidays", "input_days", "horizon_days")


@dataclass
class ForecastWindows:
    """The original-unit values behind each window of a split."""

    history: np.ndarray  # (windows, input_days) target over the input days
    actual: np.ndarray  # (windows, horizon_days) target over the forecast days
    first_dates: np.ndarray  # (windows,) datetime64[D] of the first forecast day
    days: np.ndarray | None = None  # (days,) target over every day of the split
    dates: np.ndarray | None = None  # (days,) datetime64[D] of those days


# === Reading and checking ===


def series_settings(config) -> dict:
    """The `data` fields that define the series, checked; saved with the run for predict."""
    settings = {name: getattr(config, name) for name in SETTINGS}
    settings["covariate_columns"] = list(config.covariate_columns)
    settings["holidays"] = list(config.holidays)
    settings["calendar_features"] = list(config.calendar_features)
    if config.gap_fill not in GAP_FILLS:
        raise ConfigError(f"data.gap_fill={config.gap_fill!r}; choose one of {list(GAP_FILLS)}")
    unknown = sorted(set(config.calendar_features) - set(CALENDAR_CHOICES))
    if unknown:
        raise ConfigError(
            f"data.calendar_features {unknown} unknown; choose from {list(CALENDAR_CHOICES)}"
        )
    if AUTO in config.calendar_features and len(config.calendar_features) > 1:
        raise ConfigError(f"data.calendar_features={config.calendar_features}: 'auto' chooses "
                          "every feature itself; give ('auto',) alone or an explicit list")
    if config.input_days < MIN_INPUT_DAYS or config.horizon_days < 1:
        raise ConfigError(
            f"data.input_days={config.input_days} and data.horizon_days={config.horizon_days}: "
            f"inputs need at least {MIN_INPUT_DAYS} days (a week) and the horizon at least 1"
        )
    parse_holidays(config.holidays)
    return settings


def prepare_series(frame, settings: dict, where: str, notes: list[str]):
    """A regular daily DataFrame (DatetimeIndex) of the target then the covariates, as floats.

    Raises:
        DataError: missing columns, unreadable or repeated dates, a non-daily series, empty or
            non-numeric values, or gaps when `gap_fill` is "error".
    """
    import pandas as pd

    date_column, target = settings["date_column"], settings["target_column"]
    covariates = list(settings["covariate_columns"])
    checks.check_columns(frame, [date_column], where, "data.date_column")
    checks.check_columns(frame, [target], where, "data.target_column")
    checks.check_columns(frame, covariates, where, "data.covariate_columns")
    raw_dates = frame[date_column]
    dates = pd.to_datetime(raw_dates, errors="coerce")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    checks.check_parsed_dates(raw_dates, dates, where, date_column)
    checks.check_unique_dates(dates, where, date_column)
    checks.check_daily_dates(dates, where, date_column)
    columns = [target, *covariates]
    checks.check_numeric(frame, columns, where)
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    checks.check_no_empty_values(
        values, columns, where,
        "fill them, or remove those rows and let data.gap_fill fill their dates",
    )
    series = values.set_axis(pd.DatetimeIndex(dates, name="date")).sort_index().astype(np.float64)
    return fill_gaps(series, settings["gap_fill"], where, notes)


def fill_gaps(series, rule: str, where: str, notes: list[str]):
    """Reindexes to every calendar day and fills the missing ones by `rule` (reported)."""
    import pandas as pd

    every_day = pd.date_range(series.index[0], series.index[-1], freq="D", name="date")
    missing = every_day.difference(series.index)
    if not len(missing):
        return series
    shown = ", ".join(str(d.date()) for d in missing[: checks.MAX_LISTED])
    shown += f" and {len(missing) - checks.MAX_LISTED} more" if len(missing) > checks.MAX_LISTED else ""
    if rule == "error":
        raise DataError(
            f"{where}: {len(missing)} date(s) are missing from the daily series ({shown}); "
            "add them, or --set data.gap_fill=interpolate|zero|previous to fill them"
        )
    series = series.reindex(every_day)
    if rule == "zero":
        series = series.fillna(0.0)
    elif rule == "previous":
        series = series.ffill()
    else:
        series = series.interpolate(method="linear")
    notes.append(f"filled {len(missing)} missing date(s) by data.gap_fill={rule!r}: {shown}")
    return series


# === Features ===


def parse_holidays(holidays) -> tuple[set[str], set[str]]:
    """Splits `data.holidays` into exact "YYYY-MM-DD" dates and yearly "MM-DD" dates.

    Raises:
        ConfigError: an entry is neither form.
    """
    exact, yearly = set(), set()
    for text in holidays:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            exact.add(text)
        elif re.fullmatch(r"\d{2}-\d{2}", text):
            yearly.add(text)
        else:
            raise ConfigError(
                f"data.holidays entry {text!r} is not a date; write 'YYYY-MM-DD' for one day "
                "or 'MM-DD' for the same day every year"
            )
    return exact, yearly


def calendar_features(dates, kinds, holidays) -> tuple[np.ndarray, list[str]]:
    """The `kinds` of calendar feature of each date, then a holiday flag when `holidays` is set.

    Returns:
        (days, features) floats and the feature names.
    """
    blocks, names = [np.zeros((len(dates), 0))], []
    if "day_of_week" in kinds:
        blocks.append(np.eye(7)[dates.day_of_week.to_numpy()])
        names += [f"weekday_{day}" for day in WEEKDAYS]
    if "month" in kinds:
        angle = 2 * np.pi * (dates.month.to_numpy() - 1) / 12
        blocks += [np.sin(angle)[:, None], np.cos(angle)[:, None]]
        names += ["month_sin", "month_cos"]
    if "day_of_year" in kinds:
        angle = 2 * np.pi * (dates.day_of_year.to_numpy() - 1) / 365.25
        blocks += [np.sin(angle)[:, None], np.cos(angle)[:, None]]
        names += ["day_of_year_sin", "day_of_year_cos"]
    if holidays:
        exact, yearly = parse_holidays(holidays)
        flag = [d.strftime("%Y-%m-%d") in exact or d.strftime("%m-%d") in yearly for d in dates]
        blocks.append(np.asarray(flag, dtype=np.float64)[:, None])
        names.append("holiday")
    return np.concatenate(blocks, axis=1), names


def fit_scaler(series) -> dict[str, list[float]]:
    """Mean and standard deviation of every column of `series` (call it on training days)."""
    scaler = {}
    for column in series.columns:
        values = series[column].to_numpy(dtype=np.float64)
        std = float(values.std())
        scaler[column] = [float(values.mean()), std if std > 0 else 1.0]
    return scaler


def model_inputs(series, preprocessing: dict) -> np.ndarray:
    """Float32 (days, features): scaled target and covariates, then the calendar."""
    scaled = [
        (series[column].to_numpy(dtype=np.float64) - mean) / std
        for column, (mean, std) in preprocessing["scaler"].items()
    ]
    calendar, _ = calendar_features(series.index, preprocessing.get("calendar_features", OLD_CALENDAR),
                                    preprocessing["holidays"])
    return np.concatenate([np.stack(scaled, axis=1), calendar], axis=1).astype(np.float32)


# === Windows ===


def sliding_windows(array: np.ndarray, length: int) -> np.ndarray:
    """Every run of `length` consecutive rows: (rows - length + 1, length, ...)."""
    windows = np.lib.stride_tricks.sliding_window_view(array, length, axis=0)
    return np.moveaxis(windows, -1, 1).copy()


def window_dataset(features, target, input_days: int, horizon_days: int, batch_size: int,
                   training: bool, seed: int, shuffle_buffer: int = 4096):
    """tf.data of (input window, next `horizon_days` targets), windowed inside tf.data.

    Args:
        features: (days, features) model inputs of one split's days.
        target: (days,) scaled target of the same days.
    """
    import tensorflow as tf

    total = input_days + horizon_days
    days = tf.data.Dataset.from_tensor_slices((features, target))
    windows = days.window(total, shift=1, drop_remainder=True).flat_map(
        pipeline.as_written(lambda x, y: tf.data.Dataset.zip((x.batch(total), y.batch(total))))
    )
    count = len(target) - total + 1
    # flat_map hides the size; stating it lets Keras and the schedules count steps per epoch
    windows = windows.map(pipeline.as_written(lambda x, y: (x[:input_days], y[input_days:]))).apply(
        tf.data.experimental.assert_cardinality(count)
    )
    if training:
        windows = pipeline.epoch_shuffle(windows, seed, count, shuffle_buffer)
    windows = windows.batch(batch_size)
    return windows.prefetch(pipeline.PREFETCH_BATCHES).with_options(pipeline.dataset_options())


def check_span_length(name: str, span: tuple[int, int], series, settings: dict, where: str):
    """Raises DataError when a split is too short to hold one whole window."""
    total = settings["input_days"] + settings["horizon_days"]
    days = span[1] - span[0]
    if days < total:
        raise DataError(
            f"{where}: the {name} split has {days} day(s) of {len(series)}, but one window needs "
            f"{total} ({settings['input_days']} input + {settings['horizon_days']} horizon); use "
            "a longer series, or lower data.input_days / data.horizon_days, or change "
            "data.val_fraction / data.test_fraction"
        )


def split_windows(series, features, span, settings: dict) -> Split:
    """Numpy windows of one span: scaled x and y, plus the original-unit values."""
    input_days, total = settings["input_days"], settings["input_days"] + settings["horizon_days"]
    start, stop = span
    x = sliding_windows(features[start:stop], total)[:, :input_days]
    scaled = sliding_windows(features[start:stop, 0], total)[:, input_days:]
    original = sliding_windows(series.iloc[start:stop, 0].to_numpy(), total)
    first = series.index[start + input_days : stop - settings["horizon_days"] + 1]
    raw = ForecastWindows(original[:, :input_days], original[:, input_days:],
                          first.to_numpy().astype("datetime64[D]"),
                          series.iloc[start:stop, 0].to_numpy(),
                          series.index[start:stop].to_numpy().astype("datetime64[D]"))
    return Split(x, scaled.astype(np.float32), raw)


# === Pipeline ===


def build(config, seed: int, preset: str = "") -> Datasets:
    """Reads and checks the series, splits it in time, scales on train and windows each split."""
    settings = series_settings(config)
    frame, where = sources.load_frame(config)
    notes: list[str] = []
    series = prepare_series(frame, settings, where, notes)
    spans = dict(zip(("train", "val", "test"),
                     splits.chronological_split(len(series), config.val_fraction, config.test_fraction)))
    for name, span in spans.items():
        check_span_length(name, span, series, settings, where)
    train_start, train_stop = spans["train"]
    seasonality.resolve_calendar(series.iloc[: spans["val"][1]], settings, notes)
    preprocessing = {"kind": "timeseries", **settings,
                     "scaler": fit_scaler(series.iloc[train_start:train_stop])}
    features = model_inputs(series, preprocessing)
    preprocessing.update(describe(series, spans, settings))
    preprocessing["feature_names"] = list(series.columns) + calendar_features(
        series.index[:1], settings["calendar_features"], settings["holidays"])[1]
    split_arrays = {name: split_windows(series, features, span, settings) for name, span in spans.items()}
    datasets = {
        name: window_dataset(features[start:stop], features[start:stop, 0], settings["input_days"],
                             settings["horizon_days"], config.batch_size, training=name == "train",
                             seed=seed, shuffle_buffer=config.shuffle_buffer)
        for name, (start, stop) in spans.items()
    }
    for name, span in spans.items():
        first, last = series.index[span[0]].date(), series.index[span[1] - 1].date()
        notes.append(f"{name}: {first} .. {last} ({span[1] - span[0]} days, "
                     f"{len(split_arrays[name].y)} windows)")
    info = DataInfo(
        task="forecast",
        input_shape=(settings["input_days"], features.shape[1]),
        split_sizes={name: len(split.y) for name, split in split_arrays.items()},
        preprocessing=preprocessing,
        fingerprint=fingerprint(series.to_csv(), sorted(settings.items())),
        notes=notes,
    )
    return Datasets(**datasets, info=info, splits=split_arrays)


def describe(series, spans: dict, settings: dict) -> dict:
    """Split dates and the latest `input_days` days (original units): what predict starts from."""
    latest = series.iloc[-settings["input_days"]:]
    return {
        "spans": {name: [str(series.index[a].date()), str(series.index[b - 1].date())]
                  for name, (a, b) in spans.items()},
        "last_date": str(series.index[-1].date()),
        "latest": {"dates": [str(d.date()) for d in latest.index],
                   **{column: latest[column].tolist() for column in series.columns}},
    }
