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

A fitted baseline (`Fitted`) forecasts any windows. All but gradient boosting are also a small
JSON state (`Fitted.state`) that `restore` turns back into the same forecaster, so a run can
keep a baseline as its model (`train.keep_best_of_baselines`) and `predict` can serve it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error over every window and horizon day."""
    return float(np.abs(actual - forecast).mean())


@dataclass
class Fitted:
    """A baseline fit on the training split.

    Attributes:
        forecast: windows (`timeseries.ForecastWindows`: history, first_dates) ->
            (windows, horizon_days) forecasts in original units.
        settings: what training and validation chose, for the report.
        state: JSON parameters `restore` rebuilds `forecast` from; None when the fitted model
            cannot be stored as plain numbers.
    """

    forecast: Callable
    settings: dict
    state: dict | None


def restore(state: dict) -> Callable:
    """The forecast function of a stored baseline state (`Fitted.state`)."""
    kind, horizon_days = state["kind"], state["horizon_days"]
    if kind == "last_value":
        return lambda windows: last_value(windows.history, horizon_days)
    if kind == "seasonal_naive":
        return lambda windows: seasonal_naive(windows.history, horizon_days, state["period_days"])
    if kind == "climatology":
        return lambda windows: forecast_features.climatology_forecast(
            state["means"], state["by"], windows, horizon_days)
    if kind == "ridge":
        calendar = BaselineInputs({}, horizon_days, state["calendar"], state["holidays"], False)
        coef, intercept = np.asarray(state["coef"]), np.asarray(state["intercept"])
        return lambda windows: (forecast_features.window_features(windows, calendar) @ coef.T
                                + intercept)
    raise ConfigError(f"a stored baseline of kind {kind!r} is unknown to this version")


def _stored(state: dict, settings: dict) -> Fitted:
    return Fitted(restore(state), settings, state)


def fit_last_value(inputs: BaselineInputs) -> Fitted:
    return _stored({"kind": "last_value", "horizon_days": inputs.horizon_days}, {})


def fit_seasonal_naive(inputs: BaselineInputs) -> Fitted:
    period = SEASON_DAYS if inputs.weekly else 1
    return _stored({"kind": "seasonal_naive", "horizon_days": inputs.horizon_days,
                    "period_days": period}, {"period_days": period})


def fit_climatology(inputs: BaselineInputs) -> Fitted:
    means, by = forecast_features.climatology_means(inputs)
    return _stored({"kind": "climatology", "horizon_days": inputs.horizon_days, "by": by,
                    "means": means}, {"by": by})


def fit_ridge(inputs: BaselineInputs) -> Fitted:
    """Ridge with the alpha of `RIDGE_ALPHAS` that scores best on validation, fit on train.

    The standardisation and the ridge fold into one linear map, stored as numbers.
    """
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = {name: forecast_features.window_features(inputs.splits[name], inputs)
         for name in ("train", "val")}
    train, val = inputs.splits["train"], inputs.splits["val"]
    fitted = {alpha: make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x["train"], train.actual)
              for alpha in RIDGE_ALPHAS}
    scores = {alpha: mae(val.actual, model.predict(x["val"])) for alpha, model in fitted.items()}
    alpha = min(scores, key=scores.get)
    scaler, ridge = fitted[alpha][0], fitted[alpha][1]
    coef = ridge.coef_ / scaler.scale_
    intercept = ridge.intercept_ - coef @ scaler.mean_
    return _stored({"kind": "ridge", "horizon_days": inputs.horizon_days,
                    "calendar": list(inputs.calendar), "holidays": list(inputs.holidays),
                    "coef": coef.tolist(), "intercept": np.atleast_1d(intercept).tolist()},
                   {"alpha": alpha})


def fit_gradient_boosting(inputs: BaselineInputs) -> Fitted:
    """One boosted tree model per forecast day, stopped at its best validation iteration."""
    from threadpoolctl import threadpool_limits

    # one thread: OpenMP's spinning threads took 100x longer on a busy 2-core machine
    with threadpool_limits(limits=1, user_api="openmp"):
        models, iterations = _boost_each_day(inputs)

    def forecast(windows):
        with threadpool_limits(limits=1, user_api="openmp"):
            days = [_staged(model, forecast_features.step_features(windows, inputs, step), best)
                    for step, (model, best) in enumerate(zip(models, iterations))]
        return np.stack(days, axis=1) + windows.history[:, -1:]

    return Fitted(forecast, {"iterations": iterations}, None)


def _staged(model, x: np.ndarray, iterations: int) -> np.ndarray:
    """The model's predictions after its first `iterations` boosting iterations."""
    return next(p for i, p in enumerate(model.staged_predict(x)) if i == iterations - 1)


def _boost_each_day(inputs: BaselineInputs) -> tuple[list, list[int]]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    models, iterations = [], []
    splits = {name: inputs.splits[name] for name in ("train", "val")}
    for step in range(inputs.horizon_days):
        x = {name: forecast_features.step_features(w, inputs, step) for name, w in splits.items()}
        y = {name: w.actual[:, step] - w.history[:, -1] for name, w in splits.items()}
        model = HistGradientBoostingRegressor(**BOOSTING, early_stopping=False,
                                              random_state=inputs.seed).fit(x["train"], y["train"])
        errors = [np.abs(y["val"] - p).mean() for p in model.staged_predict(x["val"])]
        models.append(model)
        iterations.append(int(np.argmin(errors)) + 1)
    return models, iterations


FORECAST_BASELINES = {
    "last_value": fit_last_value,
    "seasonal_naive": fit_seasonal_naive,
    "climatology": fit_climatology,
    "ridge": fit_ridge,
    "gradient_boosting": fit_gradient_boosting,
}


def fit_baselines(names, inputs: BaselineInputs) -> dict[str, Fitted]:
    """Each named baseline, fit on the training split (validation picks its settings).

    Raises:
        ConfigError: a name that is not a forecast baseline.
    """
    unknown = [name for name in names if name not in FORECAST_BASELINES]
    if unknown:
        raise ConfigError(
            f"evaluate.baselines {unknown} are not forecast baselines; choose from "
            f"{sorted(FORECAST_BASELINES)}"
        )
    return {name: FORECAST_BASELINES[name](inputs) for name in names}
