"""Forecasts from raw days for the predict command and the Python API: the run's network, or
the baseline it kept.

A run trained with `train.keep_best_of_baselines` whose best validation forecaster was a
baseline keeps that baseline's parameters in `kept_baseline.json`; `predict --run` serves it.
Exported artifacts hold the network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlkeras.errors import DataError
from dlkeras.runs import RunDir


def kept_baseline(model) -> dict | None:
    """The baseline a run kept (`kept_baseline.json` beside its model.keras), if any."""
    path = RunDir(model.folder).kept_baseline_json
    return json.loads(path.read_text()) if path.is_file() else None


def forecast_with(kept: dict, window, target: str) -> np.ndarray:
    """The kept baseline's forecast of the days after `window` (original units)."""
    from dlkeras.data.timeseries import ForecastWindows
    from dlkeras.tasks.forecast_baselines import restore

    last = np.datetime64(window.index[-1].date(), "D")
    windows = ForecastWindows(history=window[target].to_numpy(dtype=np.float64)[None],
                              actual=np.empty((1, 0)), first_dates=np.array([last + 1]))
    return restore(kept["state"])(windows)[0]


def latest_days(preprocessing: dict, source):
    """The latest `input_days` days (original units) of `source`, or of the run itself.

    Args:
        source: a CSV/Parquet file or a DataFrame of recent days with the training data's date,
            target and covariate columns; None for the days saved in the preprocessing.
    """
    import sys

    import pandas as pd

    from dlkeras.data import sources, timeseries

    days = preprocessing["input_days"]
    columns = list(preprocessing["scaler"])
    if source is None:
        latest = preprocessing["latest"]
        index = pd.DatetimeIndex(pd.to_datetime(latest["dates"]), name="date")
        return pd.DataFrame({c: latest[c] for c in columns}, index=index)
    if isinstance(source, pd.DataFrame):
        frame, where = source, "the recent days"
    elif isinstance(source, (str, Path)):
        frame, where = sources.load_table(source), str(source)
    else:
        raise DataError(f"recent days come as a DataFrame or a CSV/Parquet file, not a "
                        f"{type(source).__name__}; pass None for the model's own latest days")
    notes: list[str] = []
    series = timeseries.prepare_series(frame, preprocessing, where, notes)
    for note in notes:
        print(f"input: {note}", file=sys.stderr)
    if len(series) < days:
        raise DataError(
            f"{where}: the model forecasts from {days} consecutive days but the input "
            f"covers {len(series)}; provide at least {days} days"
        )
    return series.iloc[-days:]


def forecast(model, window):
    """The `horizon_days` after `window` as a DataFrame: the predict command's CSV columns (date,
    the target, and the interval bounds where the run measured them).

    The run's kept baseline answers when it has one; `frame.attrs["model"]` names what answered.
    """
    import pandas as pd

    from dlkeras.data import timeseries

    preprocessing = model.preprocessing
    target = preprocessing["target_column"]
    kept = kept_baseline(model)
    if kept:
        name, values = f"{kept['name']} baseline (kept on validation)", forecast_with(kept, window, target)
    else:
        features = timeseries.model_inputs(window, preprocessing)[None]
        mean, std = preprocessing["scaler"][target]
        name, values = model.name, model.predict(features)[0] * std + mean
    dates = pd.date_range(window.index[-1] + pd.Timedelta(days=1), periods=len(values), freq="D")
    frame = pd.DataFrame({"date": dates, target: np.asarray(values, dtype=np.float64)})
    bounds = interval_bounds(model, values)
    if bounds is not None:
        low, high, label = bounds
        frame[f"low_{label}"], frame[f"high_{label}"] = low, high
    frame.attrs["model"] = name
    return frame


def predictions(model, source=None):
    """The forecast after the latest days of `source` (see `latest_days`), as in `forecast`."""
    return forecast(model, latest_days(model.preprocessing, source))


def predict_raw(model, request) -> tuple[str, str]:
    """Forecasts the `horizon_days` after the latest input day; returns (printed text, CSV).

    Args:
        model: a loaded model (`predict`, `preprocessing`, `name`).
        request: `input`, a CSV/Parquet of recent days, or None for the run's own latest days.
    """
    window = latest_days(model.preprocessing, request.input)
    frame = forecast(model, window)
    target = model.preprocessing["target_column"]
    header = f"{'date':<12}{'weekday':<9}{target:>12}"
    header += "".join(f"{column.replace('_', ' ', 1):>12}" for column in frame.columns[2:])
    dates, rows = frame["date"], frame.iloc[:, 1:].to_numpy()
    lines = [
        f"{frame.attrs['model']}: {target} for the {len(frame)} days after "
        f"{window.index[-1].date()}, from the {len(window)} days "
        f"{window.index[0].date()} .. {window.index[-1].date()}",
        header,
        *[f"{str(d.date()):<12}{d.strftime('%a'):<9}" + "".join(f"{v:>12.2f}" for v in row)
          for d, row in zip(dates, rows)],
    ]
    table = ",".join(frame.columns) + "\n" + "".join(
        f"{d.date()}," + ",".join(f"{v:.4f}" for v in row) + "\n" for d, row in zip(dates, rows))
    return "\n".join(lines), table


def interval_bounds(model, values: np.ndarray):
    """(low, high, label such as "80%") from the run's `intervals.json`, or None."""
    path = RunDir(model.folder).intervals_json
    if not path.is_file():
        return None
    interval = json.loads(path.read_text())
    low_q, high_q = interval["quantiles"]
    return (values + np.asarray(interval["lower_offsets"]),
            values + np.asarray(interval["upper_offsets"]), f"{high_q - low_q:.0%}")
