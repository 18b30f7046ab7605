"""Forecast baselines: what a user would try before a network, on the very same windows.

Every baseline is fit on the training split only (validation picks a setting where one has
to be picked) and forecasts the test windows from the same input days as the network:

- "last_value": every day of the horizon repeats the last input day.
- "seasonal_naive": each day repeats the same weekday of the last input week when the fitting
  days show a weekly pattern, else the last input day (period 1).
- "climatology": the training mean of the forecast day's day of year (two training years or
  more), else of its weekday.
- "ridge": scikit-learn Ridge on the input days and the calendar features of the forecast
  days; alpha chosen by validation MAE.
- "gradient_boosting": one scikit-learn HistGradientBoostingRegressor per forecast day on the
  input days (relative to the last one), the last day and that day's calendar; the number of
  boosting iterations chosen by validation MAE.

The calendar features are those the fitting days call for (`data.seasonality`), whatever the
network was given, so a baseline can show what a missing feature costs.
"""

from __future__ import annotations

import numpy as np

from dlkeras.errors import ConfigError
from dlkeras.tasks import forecast_features
from dlkeras.tasks.forecast_features import BaselineInputs

SEASON_DAYS = 7
RIDGE_ALPHAS = tuple(10.0**k for k in range(-3, 4))
BOOSTING = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 20}


def last_value(history: np.ndarray, horizon_days: int) -> np.ndarray:
    """(windows, horizon_days): the last input day, repeated."""
    return np.repeat(history[:, -1:], horizon_days, axis=1)


def seasonal_naive(history: np.ndarray, horizon_days: int, season_days: int = SEASON_DAYS):
    """(windows, horizon_days): day h of the horizon repeats day h - k * season_days."""
    if history.shape[1] < season_days:
        raise ConfigError(f"seasonal_naive needs at least {season_days} input days")
    index = history.shape[1] - season_days + np.arange(horizon_days) % season_days
    return history[:, index]


def _mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.abs(actual - forecast).mean())


def run_last_value(inputs: BaselineInputs) -> tuple[np.ndarray, dict]:
    return last_value(inputs.splits["test"].history, inputs.horizon_days), {}


def run_seasonal_naive(inputs: BaselineInputs) -> tuple[np.ndarray, dict]:
    period = SEASON_DAYS if inputs.weekly else 1
    return seasonal_naive(inputs.splits["test"].history, inputs.horizon_days, period), {
        "period_days": period}


def run_ridge(inputs: BaselineInputs) -> tuple[np.ndarray, dict]:
    """Ridge with the alpha of `RIDGE_ALPHAS` that scores best on validation, fit on train."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = {name: forecast_features.window_features(w, inputs) for name, w in inputs.splits.items()}
    train, val = inputs.splits["train"], inputs.splits["val"]
    fitted = {alpha: make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x["train"], train.actual)
              for alpha in RIDGE_ALPHAS}
    scores = {alpha: _mae(val.actual, model.predict(x["val"])) for alpha, model in fitted.items()}
    alpha = min(scores, key=scores.get)
    return fitted[alpha].predict(x["test"]), {"alpha": alpha}


def run_gradient_boosting(inputs: BaselineInputs) -> tuple[np.ndarray, dict]:
    """One boosted tree model per forecast day, stopped at its best validation iteration."""
    from threadpoolctl import threadpool_limits

    # one thread: OpenMP's spinning threads took 100x longer on a busy 2-core machine
    with threadpool_limits(limits=1, user_api="openmp"):
        return _boost_each_day(inputs)


def _boost_each_day(inputs: BaselineInputs) -> tuple[np.ndarray, dict]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    forecasts, iterations = [], []
    splits = inputs.splits
    for step in range(inputs.horizon_days):
        x = {name: forecast_features.step_features(w, inputs, step) for name, w in splits.items()}
        y = {name: w.actual[:, step] - w.history[:, -1] for name, w in splits.items()}
        model = HistGradientBoostingRegressor(**BOOSTING, early_stopping=False,
                                              random_state=inputs.seed).fit(x["train"], y["train"])
        errors = [np.abs(y["val"] - p).mean() for p in model.staged_predict(x["val"])]
        best = int(np.argmin(errors))
        staged = model.staged_predict(x["test"])
        forecasts.append(next(p for i, p in enumerate(staged) if i == best))
        iterations.append(best + 1)
    forecast = np.stack(forecasts, axis=1) + splits["test"].history[:, -1:]
    return forecast, {"iterations": iterations}


def run_climatology(inputs: BaselineInputs) -> tuple[np.ndarray, dict]:
    return forecast_features.climatology(inputs)


FORECAST_BASELINES = {
    "last_value": run_last_value,
    "seasonal_naive": run_seasonal_naive,
    "climatology": run_climatology,
    "ridge": run_ridge,
    "gradient_boosting": run_gradient_boosting,
}


def run_baselines(names, inputs: BaselineInputs) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Test forecasts of each named baseline, and what each one chose on train/validation.

    Raises:
        ConfigError: a name that is not a forecast baseline.
    """
    unknown = [name for name in names if name not in FORECAST_BASELINES]
    if unknown:
        raise ConfigError(
            f"evaluate.baselines {unknown} are not forecast baselines; choose from "
            f"{sorted(FORECAST_BASELINES)}"
        )
    forecasts, settings = {}, {}
    for name in names:
        forecasts[name], settings[name] = FORECAST_BASELINES[name](inputs)
    return forecasts, settings
