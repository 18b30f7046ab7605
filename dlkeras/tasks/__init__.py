"""TASKS: what differs between tasks, one entry each.

A task supplies its loss and compile metrics, the directions of the metrics it can be judged
by, its baselines, the evaluation report, the predictor that answers raw inputs, and the
parity metrics and quantized-format rule of the export gate. Adding a task means adding one
entry here (and the module that implements it). Nothing here imports Keras at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlkeras.errors import ConfigError
from dlkeras.tasks import (
    classification,
    classification_baselines,
    forecast,
    forecast_baselines,
    forecast_predict,
)


@dataclass(frozen=True)
class Task:
    """One task's entry.

    Attributes:
        losses: the accepted values of `train.loss` ("auto" is the task's natural loss).
        directions: every metric a run can monitor or a search can optimise (without the
            "val_" prefix) and whether lower ("min") or higher ("max") is better.
        objectives: the `tune.objective` values a search can use.
        monitors: the `callbacks.monitor` values training logs (loss and compile metrics).
        baselines: the accepted names in `evaluate.baselines`.
        class_weights: the accepted values of `train.class_weight`.
        build_loss: recipe -> Keras loss.
        build_metrics: () -> compile metrics.
        report: (model, datasets, recipe, run_dir, training) -> report dict with a `summary`;
            `training` holds what the run decided (seconds per stage, kept stage, probe).
        selection: validation metrics -> a rank, higher is better (which stage to keep).
        predict_raw: (loaded model, request) -> (printed text, CSV) for the predict command.
        predictions: (loaded model, raw inputs) -> DataFrame of the predict command's CSV
            columns, for the Python API (`dlkeras.api`).
        parity_metrics: (outputs, truth) -> the metrics the export gate compares.
        quantized_rule: (reference metrics, artifact metrics) -> (rule text, passed).
    """

    name: str
    losses: tuple[str, ...]
    directions: dict[str, str]
    objectives: tuple[str, ...]
    monitors: tuple[str, ...]
    baselines: tuple[str, ...]
    build_loss: Callable
    build_metrics: Callable
    report: Callable
    predict_raw: Callable
    predictions: Callable
    parity_metrics: Callable
    quantized_rule: Callable
    selection: Callable
    class_weights: tuple[str, ...] = ("none",)


TASKS = {
    "classification": Task(
        name="classification",
        losses=classification.LOSSES,
        directions=classification.DIRECTIONS,
        objectives=("val_loss", "val_macro_f1", "val_accuracy"),
        monitors=("val_loss", "val_accuracy", "loss", "accuracy"),
        baselines=tuple(classification_baselines.BASELINES),
        class_weights=("none", "balanced", "auto"),
        build_loss=classification.build_loss,
        build_metrics=classification.build_metrics,
        report=classification.report,
        predict_raw=classification.predict_raw,
        predictions=classification.predictions,
        parity_metrics=classification.parity_metrics,
        quantized_rule=classification.quantized_rule,
        selection=lambda metrics: (metrics["macro_f1"], metrics["accuracy"]),
    ),
    "forecast": Task(
        name="forecast",
        losses=tuple(forecast.LOSSES),
        directions=forecast.DIRECTIONS,
        objectives=("val_loss", "val_mae"),
        monitors=("val_loss", "val_mae", "loss", "mae"),
        baselines=tuple(forecast_baselines.FORECAST_BASELINES),
        build_loss=forecast.build_loss,
        build_metrics=forecast.build_metrics,
        report=forecast.report,
        predict_raw=forecast_predict.predict_raw,
        predictions=forecast_predict.predictions,
        parity_metrics=forecast.parity_metrics,
        quantized_rule=forecast.quantized_rule,
        selection=lambda metrics: (-metrics["mae"],),
    ),
}

# Keras' own rule for a metric no task declares: higher is better for these words.
HIGHER_IS_BETTER = ("acc", "auc", "f1", "precision", "recall")


def get(name: str) -> Task:
    """The task entry; ConfigError naming the known tasks."""
    if name not in TASKS:
        raise ConfigError(f"task={name!r} is not supported; choose one of {sorted(TASKS)}")
    return TASKS[name]


def direction(metric: str) -> str:
    """"min" or "max": whether lower or higher values of `metric` (e.g. "val_mae") are better.

    The one rule every component uses (checkpoints, early stopping, searches): the tasks'
    metric tables, else Keras' rule (accuracy-like names are maximised, the rest minimised).
    """
    name = metric.removeprefix("val_")
    for task in TASKS.values():
        if name in task.directions:
            return task.directions[name]
    return "max" if any(word in name for word in HIGHER_IS_BETTER) else "min"
