"""The forecast task: loss and metrics, the test report, parity (raw days: `forecast_predict`).

Report on the test split: MAE, RMSE and MAPE per horizon day, beside baselines.

The network's forecasts are turned back into the target's original units and scored on the
test windows; the baselines of `evaluate.baselines` (see `forecast_baselines`), fit on the
training split, forecast the very same windows from the same input days. metrics.json also
records the seasonality found on the training and validation days and the calendar features
the network was given, and the validation MAE of the network and every baseline: the summary
names the best forecaster that can serve, and with `train.keep_best_of_baselines` a baseline
that beats the network on validation becomes the run's served model.

MAPE skips forecasts whose actual value is zero (a closed day has no percentage error) and the
report says how many it skipped. Files: metrics.json, report/summary.md,
report/test_forecasts.csv, report/predictions.png, report/residuals.png, report/curves.png,
and report/index.html with all of them on one page.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from dlkeras.io import write_json_atomic, write_text_atomic
from dlkeras.runs import RunDir, read_history
from dlkeras.tasks import diagnoses, forecast_choice, html_report
from dlkeras.tasks.forecast_baselines import fit_baselines
from dlkeras.tasks.forecast_features import BaselineInputs

ZERO_TOLERANCE = 1e-9
# `train.loss` -> Keras loss class and the name it logs under ("auto" is mean squared error)
LOSSES = {"auto": ("MeanSquaredError", "mse"), "mse": ("MeanSquaredError", "mse"),
          "mae": ("MeanAbsoluteError", "mae"), "huber": ("Huber", "huber")}
DIRECTIONS = {"loss": "min", "mae": "min", "rmse": "min", "mape": "min", "mse": "min"}
QUANTIZED_MAX_MAE_INCREASE = 0.05  # 5% relative MAE increase for quantized exports


def build_loss(recipe):
    """The loss of `train.loss` on scaled targets."""
    import keras

    class_name, name = LOSSES[recipe.train.loss]
    return getattr(keras.losses, class_name)(name=name)


def build_metrics() -> list:
    import keras

    return [keras.metrics.MeanAbsoluteError(name="mae")]


# === Metrics ===


def forecast_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict:
    """MAE, RMSE and MAPE (percent, zero actuals skipped), overall and per horizon day."""
    error = predicted - actual
    nonzero = np.abs(actual) > ZERO_TOLERANCE
    ratio = np.abs(error) / np.where(nonzero, np.abs(actual), 1.0)

    def mape(axis=None):
        counts = nonzero.sum(axis=axis)
        values = 100 * np.where(nonzero, ratio, 0.0).sum(axis=axis) / np.maximum(counts, 1)
        return np.where(counts > 0, values, np.nan)

    def plain(values) -> list:
        return [None if np.isnan(v) else float(v) for v in np.atleast_1d(values)]

    return {
        "examples": int(len(actual)),
        "forecasts": int(actual.size),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "mape": plain(mape())[0],
        "mape_skipped_zero_actuals": int((~nonzero).sum()),
        "per_horizon": {
            "mae": plain(np.abs(error).mean(axis=0)),
            "rmse": plain(np.sqrt((error**2).mean(axis=0))),
            "mape": plain(mape(axis=0)),
        },
    }


def verdict(model_name: str, model: dict, baselines: dict[str, dict]) -> str:
    """One plain sentence: did the network's test MAE beat each baseline's?"""
    if not baselines:
        return f"The network ({model_name}) was not compared with any baseline."
    beaten = [name for name, metrics in baselines.items() if model["mae"] < metrics["mae"]]
    scores = ", ".join(f"{baselines[name]['mae']:.2f} ({name})" for name in baselines)
    if len(beaten) == len(baselines):
        outcome = "beat every baseline" if len(baselines) > 1 else "beat the baseline"
    elif beaten:
        missed = [name for name in baselines if name not in beaten]
        outcome = f"beat {', '.join(beaten)} but NOT {', '.join(missed)}"
    else:
        outcome = "did NOT beat " + ("any baseline" if len(baselines) > 1 else "the baseline")
    return f"The network ({model_name}) {outcome} on test MAE: {model['mae']:.2f} vs {scores}."


# === Report ===


def report(model, datasets, recipe, run_dir: RunDir, training: dict) -> dict:
    """Scores the network and the baselines on the test windows and writes the report files."""
    info = datasets.info
    windows = datasets.splits["test"].raw
    target = info.preprocessing["target_column"]
    horizon_days = info.preprocessing["horizon_days"]
    mean, std = info.preprocessing["scaler"][target]
    scaled = model.predict(datasets.splits["test"].x, batch_size=recipe.data.batch_size, verbose=0)
    forecasts = {"network": np.asarray(scaled, dtype=np.float64) * std + mean}
    inputs = BaselineInputs.from_run(datasets.splits, info.preprocessing, recipe.train.seed)
    fitted = fit_baselines(recipe.evaluate.baselines, inputs)
    forecasts.update({name: f.forecast(windows) for name, f in fitted.items()})
    val = datasets.splits["val"].raw
    scaled_val = model.predict(datasets.splits["val"].x, batch_size=recipe.data.batch_size, verbose=0)
    val_forecasts = {"network": np.asarray(scaled_val, dtype=np.float64) * std + mean,
                     **{name: f.forecast(val) for name, f in fitted.items()}}
    choice = forecast_choice.choose(
        val.actual, val_forecasts, fitted,
        run_dir.kept_baseline_json if recipe.train.keep_best_of_baselines else None)
    served = choice["kept"]
    interval = forecast_choice.intervals(val.actual, val_forecasts[served], windows.actual,
                                         forecasts[served])
    write_json_atomic(run_dir.intervals_json, {"model": served, **interval})
    baselines = {name: forecast_metrics(windows.actual, forecasts[name])
                 for name in recipe.evaluate.baselines}
    result = {
        "recipe": recipe.name,
        "task": "forecast",
        "target": target,
        "horizon_days": horizon_days,
        "forecast_dates": [str(windows.first_dates[0]),
                           str(windows.first_dates[-1] + np.timedelta64(horizon_days - 1, "D"))],
        "model": {"name": recipe.model.name, **forecast_metrics(windows.actual, forecasts["network"])},
        "baselines": baselines,
        "baseline_settings": {name: f.settings for name, f in fitted.items()},
        "validation": choice,
        "interval": {"model": served, **interval},
        "calendar_features": info.preprocessing["calendar_features"],
        "seasonality": info.preprocessing.get("seasonality"),
        "split_sizes": info.split_sizes,
        **training,
        "diagnoses": diagnoses.diagnose_run(run_dir, recipe),
        "notes": info.notes,
    }
    result["beats_baselines"] = {name: result["model"]["mae"] < b["mae"] for name, b in baselines.items()}
    result["verdict"] = verdict(recipe.model.name, result["model"], baselines)
    write_json_atomic(run_dir.metrics_json, result)
    write_text_atomic(run_dir.report_dir / "test_forecasts.csv", forecasts_csv(windows, forecasts))
    if recipe.evaluate.plots:
        from dlkeras.tasks import forecast_plots
        from dlkeras.tasks.plots import plot_history

        forecast_plots.plot_predictions(windows, forecasts, target, run_dir.report_dir / "predictions.png")
        forecast_plots.plot_residuals(windows, forecasts["network"], target,
                                      run_dir.report_dir / "residuals.png")
        plot_history(read_history(run_dir.history_csv), run_dir.report_dir / "curves.png")
    result["summary"] = summary_table(result) + diagnoses.render(result["diagnoses"])
    write_text_atomic(run_dir.report_dir / "summary.md", result["summary"])
    html_report.write_html_report(run_dir)  # last: it reads every file written above
    return result


def forecasts_csv(windows, forecasts: dict[str, np.ndarray]) -> str:
    """One row per (window, horizon day): dates, the actual value and every forecast."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["window_start", "horizon_day", "date", "actual", *forecasts])
    for row, first in enumerate(windows.first_dates):
        for day in range(windows.actual.shape[1]):
            values = [f"{forecasts[name][row, day]:.4f}" for name in forecasts]
            writer.writerow([first, day + 1, first + np.timedelta64(day, "D"),
                             f"{windows.actual[row, day]:.4f}", *values])
    return buffer.getvalue()


def _number(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_table(result: dict) -> str:
    """Markdown: the network vs each baseline (MAE, RMSE, MAPE), MAE per day, the verdict."""
    model = result["model"]
    rows = {f"network ({model['name']})": model, **result["baselines"]}
    days = range(1, result["horizon_days"] + 1)
    first, last = result["forecast_dates"]
    lines = [
        f"Test split of {result['recipe']} ({model['examples']} windows x "
        f"{result['horizon_days']} days, forecasts for {first} .. {last}; "
        f"{result['target']} in its original units)",
        "",
        "| forecaster | MAE | RMSE | MAPE % |",
        "|---|---|---|---|",
        *[f"| {name} | {_number(m['mae'])} | {_number(m['rmse'])} | {_number(m['mape'])} |"
          for name, m in rows.items()],
        "",
        "| MAE by horizon day | " + " | ".join(f"day {d}" for d in days) + " |",
        "|---|" + "---|" * len(days),
        *[f"| {name} | " + " | ".join(_number(v, 1) for v in m["per_horizon"]["mae"]) + " |"
          for name, m in rows.items()],
        "",
        result["verdict"],
    ]
    if result.get("validation"):
        lines.append(forecast_choice.advice(result["validation"]))
    if result.get("interval"):
        lines.append(forecast_choice.describe_intervals(result["interval"],
                                                        result["interval"]["model"]))
    found = result.get("seasonality")
    if found:
        lines.append(f"Calendar features of the network: {', '.join(result['calendar_features']) or 'none'} "
                     f"(requested {', '.join(found['requested']) or 'none'}; training and validation "
                     f"days: {found['reason']}).")
    if model["mape_skipped_zero_actuals"]:
        lines.append(f"MAPE skips the {model['mape_skipped_zero_actuals']} forecast(s) whose "
                     "actual value is zero.")
    return "\n".join(lines) + "\n"


# === Export parity ===


def parity_metrics(outputs: np.ndarray, truth: np.ndarray) -> dict:
    """Mean absolute error of forecasts (scaled units) against the targets."""
    return {"mae": float(np.abs(outputs - truth).mean())}


def quantized_rule(reference: dict, artifact: dict) -> tuple[str, bool]:
    """A quantized artifact may raise the MAE by at most 5%.

    An increase of exactly 5% passes: it is rounded to 9 decimals before the `<=`, so float
    rounding (1.05 / 1.0 - 1 is 0.050000000000000044) cannot fail it.
    """
    increase = round(artifact["mae"] / max(reference["mae"], 1e-12) - 1, 9)
    return f"MAE increase <= {QUANTIZED_MAX_MAE_INCREASE:.0%}", increase <= QUANTIZED_MAX_MAE_INCREASE
