"""Forecasts from raw days for the predict command: the run's network, or the baseline it kept.

A run trained with `train.keep_best_of_baselines` whose best validation forecaster was a
baseline keeps that baseline's parameters in `kept_baseline.json`; `predict --run` serves it.
Exported artifacts hold the network.
"""

from __future__ import annotations

import json

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


def latest_days(preprocessing: dict, input_path):
    """The latest `input_days` days (original units), from `input_path` or the run itself."""
    import sys

    import pandas as pd

    from dlkeras.data import sources, timeseries

    days = preprocessing["input_days"]
    columns = list(preprocessing["scaler"])
    if input_path is None:
        latest = preprocessing["latest"]
        index = pd.DatetimeIndex(pd.to_datetime(latest["dates"]), name="date")
        return pd.DataFrame({c: latest[c] for c in columns}, index=index)
    notes: list[str] = []
    series = timeseries.prepare_series(sources.load_table(input_path), preprocessing,
                                       str(input_path), notes)
    for note in notes:
        print(f"input: {note}", file=sys.stderr)
    if len(series) < days:
        raise DataError(
            f"{input_path}: the model forecasts from {days} consecutive days but the file "
            f"covers {len(series)}; provide at least {days} days"
        )
    return series.iloc[-days:]


def predict_raw(model, request) -> tuple[str, str]:
    """Forecasts the `horizon_days` after the latest input day; returns (printed text, CSV).

    Args:
        model: a loaded model (`predict`, `preprocessing`, `name`).
        request: `input`, a CSV/Parquet of recent days, or None for the run's own latest days.
    """
    import pandas as pd

    from dlkeras.data import timeseries

    preprocessing = model.preprocessing
    window = latest_days(preprocessing, request.input)
    target = preprocessing["target_column"]
    kept = kept_baseline(model)
    if kept:
        name, values = f"{kept['name']} baseline (kept on validation)", forecast_with(kept, window, target)
    else:
        features = timeseries.model_inputs(window, preprocessing)[None]
        mean, std = preprocessing["scaler"][target]
        name, values = model.name, model.predict(features)[0] * std + mean
    dates = pd.date_range(window.index[-1] + pd.Timedelta(days=1), periods=len(values), freq="D")
    bounds = interval_bounds(model, values)
    header, columns = f"{'date':<12}{'weekday':<9}{target:>12}", ["date", target]
    rows = [[v] for v in values]
    if bounds is not None:
        low, high, label = bounds
        header += f"{'low ' + label:>12}{'high ' + label:>12}"
        columns += [f"low_{label}", f"high_{label}"]
        rows = [[v, lo, hi] for v, lo, hi in zip(values, low, high)]
    lines = [
        f"{name}: {target} for the {len(values)} days after "
        f"{window.index[-1].date()}, from the {len(window)} days "
        f"{window.index[0].date()} .. {window.index[-1].date()}",
        header,
        *[f"{str(d.date()):<12}{d.strftime('%a'):<9}" + "".join(f"{v:>12.2f}" for v in row)
          for d, row in zip(dates, rows)],
    ]
    table = ",".join(columns) + "\n" + "".join(
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
