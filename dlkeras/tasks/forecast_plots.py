"""PNG plots of a forecast report: predictions vs actuals and residuals on the test span."""

from __future__ import annotations

import numpy as np

from dlkeras.io import pyplot, save_figure_atomic

STYLES = {
    "actual": {"color": "black", "linewidth": 2.0},
    "network": {"color": "tab:red", "linewidth": 1.6, "marker": "o", "markersize": 3},
    "last_value": {"color": "tab:blue", "linewidth": 1.0, "linestyle": "--"},
    "seasonal_naive": {"color": "tab:green", "linewidth": 1.0, "linestyle": ":"},
}


def _save(figure, path) -> None:
    figure.tight_layout()
    save_figure_atomic(figure, path)


def forecast_dates(windows, day: int) -> np.ndarray:
    """The date that horizon day `day` (0-based) of every window forecasts."""
    return windows.first_dates + np.timedelta64(day, "D")


def plot_predictions(windows, forecasts: dict[str, np.ndarray], target: str, path) -> None:
    """Actuals and each forecaster's 1-day-ahead and last-day-ahead forecasts over the test span."""
    plt = pyplot()
    horizon_days = windows.actual.shape[1]
    shown = [0] if horizon_days == 1 else [0, horizon_days - 1]
    figure, axes = plt.subplots(len(shown), 1, figsize=(10, 3.4 * len(shown)), squeeze=False)
    # consecutive windows start one day apart: day 1 of each, then the rest of the last one
    every_actual = np.concatenate([windows.actual[:, 0], windows.actual[-1, 1:]])
    every_date = windows.first_dates[0] + np.arange(len(every_actual)).astype("timedelta64[D]")
    for axis, day in zip(axes[:, 0], shown):
        axis.plot(every_date, every_actual, label="actual", **STYLES["actual"])
        for name, values in forecasts.items():
            axis.plot(forecast_dates(windows, day), values[:, day], label=name,
                      **STYLES.get(name, {}))
        axis.set_title(f"{target}: forecasts {day + 1} day(s) ahead vs actuals (test span)")
        axis.set_ylabel(target)
        axis.legend(loc="best", fontsize=8)
        axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    _save(figure, path)


def plot_residuals(windows, predicted: np.ndarray, target: str, path) -> None:
    """Network residuals (actual - forecast): over the test span, and per horizon day."""
    plt = pyplot()
    residuals = windows.actual - predicted
    horizon_days = residuals.shape[1]
    figure, (over_time, per_day) = plt.subplots(1, 2, figsize=(12, 3.8),
                                                gridspec_kw={"width_ratios": [3, 2]})
    for day in sorted({0, horizon_days - 1}):
        over_time.plot(forecast_dates(windows, day), residuals[:, day], marker="o", markersize=3,
                       label=f"{day + 1} day(s) ahead")
    over_time.axhline(0, color="grey", linewidth=1)
    over_time.set_title(f"network residuals on the test span ({target})")
    over_time.legend(fontsize=8)
    over_time.grid(alpha=0.3)
    for label in over_time.get_xticklabels():
        label.set_rotation(30)
    per_day.boxplot([residuals[:, day] for day in range(horizon_days)],
                    tick_labels=[str(d + 1) for d in range(horizon_days)])
    per_day.axhline(0, color="grey", linewidth=1)
    per_day.set_xlabel("horizon day")
    per_day.set_title("residuals per horizon day")
    _save(figure, path)
