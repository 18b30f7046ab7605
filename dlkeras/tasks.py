"""What differs between tasks: loss, compile metrics and the evaluation report.

Imported by the commands after argument parsing (it imports Keras).
"""

from __future__ import annotations

import importlib

import keras

from dlkeras.errors import ConfigError

# Evaluation report per task: module exposing `report(model, datasets, recipe, run_dir, seconds)`.
REPORTS = {
    "classification": "dlkeras.evaluate",
    "forecast": "dlkeras.forecast",
}

FORECAST_LOSSES = {
    "auto": lambda: keras.losses.MeanSquaredError(name="mse"),
    "mse": lambda: keras.losses.MeanSquaredError(name="mse"),
    "mae": lambda: keras.losses.MeanAbsoluteError(name="mae"),
    "huber": lambda: keras.losses.Huber(name="huber"),
}


def check_task(task: str) -> None:
    if task not in REPORTS:
        raise ConfigError(f"task={task!r} is not supported; choose one of {sorted(REPORTS)}")


def build_loss(recipe):
    """The training loss for the recipe's task and `train.loss`."""
    check_task(recipe.task)
    if recipe.task == "classification":
        if recipe.train.loss not in ("auto", "crossentropy"):
            raise ConfigError(
                f"train.loss={recipe.train.loss!r}; classification uses 'auto' (cross-entropy)"
            )
        return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.train.label_smoothing)
    if recipe.train.loss not in FORECAST_LOSSES:
        raise ConfigError(f"train.loss={recipe.train.loss!r}; choose one of {sorted(FORECAST_LOSSES)}")
    return FORECAST_LOSSES[recipe.train.loss]()


def build_metrics(recipe) -> list:
    if recipe.task == "classification":
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return [keras.metrics.MeanAbsoluteError(name="mae")]


def report(model, datasets, recipe, run_dir, seconds) -> dict:
    """Runs the task's evaluation and returns its report (with a printable `summary`)."""
    check_task(recipe.task)
    return importlib.import_module(REPORTS[recipe.task]).report(
        model, datasets, recipe, run_dir, seconds
    )
