"""What the validation windows decide for a forecast run: the model to serve, and intervals.

Validation MAE compares the network with every baseline; the best of those that can serve
(the network, or a baseline stored as numbers, see `forecast_baselines.Fitted.state`) is
named in the report and, with `train.keep_best_of_baselines`, kept in `kept_baseline.json`
for `predict`. Prediction intervals are split-conformal: per horizon day, the 10th and 90th
percentiles of the served model's validation errors are added to its forecasts, so about 80%
of actual values should fall inside; the report gives the coverage measured on the test
windows.
"""

from __future__ import annotations

import numpy as np

from dlkeras.io import write_json_atomic
from dlkeras.tasks.forecast_baselines import mae

INTERVAL_QUANTILES = (0.1, 0.9)


def choose(actual: np.ndarray, forecasts: dict, fitted: dict, kept_file=None) -> dict:
    """Validation MAE of each forecaster, the best that can serve, and the one served.

    Args:
        actual: validation targets; forecasts: name -> validation forecasts ("network" first).
        fitted: the baselines (`forecast_baselines.Fitted`).
        kept_file: where to keep the best when it is a baseline; None only compares.

    Returns:
        {"mae": {name: MAE}, "best": name, "kept": the served model, "not_servable": [names]}
    """
    scores = {name: mae(actual, forecast) for name, forecast in forecasts.items()}
    servable = ["network", *(name for name, f in fitted.items() if f.state is not None)]
    best = min(servable, key=scores.get)
    kept = best if kept_file is not None else "network"
    if kept != "network":
        write_json_atomic(kept_file, {"name": kept, "state": fitted[kept].state,
                                      "validation_mae": scores})
    return {"mae": scores, "best": best, "kept": kept,
            "not_servable": [name for name in fitted if name not in servable]}


def advice(choice: dict) -> str:
    """One sentence: which forecaster validation favours and which one `predict` serves."""
    scores = ", ".join(f"{name} {value:.2f}" for name, value in choice["mae"].items())
    if choice["kept"] != "network":
        return (f"Validation MAE: {scores}. The run keeps the {choice['kept']} baseline: "
                f"`predict` serves it (exports hold the network).")
    if choice["best"] != "network":
        return (f"Validation MAE: {scores}. The {choice['best']} baseline forecasts better than "
                f"the network on validation: use it instead (--set "
                f"train.keep_best_of_baselines=true keeps it and `predict` serves it).")
    return f"Validation MAE: {scores}. The network is the best servable forecaster on validation."


def intervals(val_actual, val_forecast, test_actual, test_forecast) -> dict:
    """Split-conformal intervals from validation errors, and their coverage on test.

    Returns:
        {"quantiles", "lower_offsets", "upper_offsets" (per horizon day), "test_coverage",
        "per_horizon_coverage", "mean_width"}
    """
    errors = np.asarray(val_actual) - np.asarray(val_forecast)
    lower, upper = (np.quantile(errors, q, axis=0) for q in INTERVAL_QUANTILES)
    inside = (test_actual >= test_forecast + lower) & (test_actual <= test_forecast + upper)
    return {
        "quantiles": list(INTERVAL_QUANTILES),
        "lower_offsets": lower.tolist(),
        "upper_offsets": upper.tolist(),
        "test_coverage": float(inside.mean()),
        "per_horizon_coverage": inside.mean(axis=0).tolist(),
        "mean_width": float((upper - lower).mean()),
    }


def describe_intervals(interval: dict, model: str) -> str:
    low, high = interval["quantiles"]
    return (f"{high - low:.0%} intervals of the {model} (its {low:.0%}/{high:.0%} validation "
            f"error percentiles per horizon day): test coverage {interval['test_coverage']:.1%}, "
            f"mean width {interval['mean_width']:.2f}.")
