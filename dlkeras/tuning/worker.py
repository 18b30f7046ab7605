"""One trial of a search: build the trial recipe's data and model, fit, return plain data.

Keras on TensorFlow keeps about 9 MB per compile-and-fit even after `clear_session` (a loop
of fits grows linearly; JAX about 3 MB, PyTorch none), so a search runs its trials in a worker
process that a fresh one replaces every `tune.trials_per_process` trials (`search.TrialRunner`),
or here in the search's own process when that is 0. `run_task` is all such a worker does; its
data, model and compile-and-fit come from `data.build`, `models.build` and `engine.stages.fit_stage`,
as in training.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner

from dlkeras import config, data, models
from dlkeras.engine import callbacks, precision, run, stages
from dlkeras.errors import RunError
from dlkeras.io import save_model_atomic

DATA_CACHE_SIZE = 3  # distinct data sections kept in memory (e.g. one per searched batch size)


class DataCache:
    """Datasets per distinct (data section, seed, preset): data are built once per process.

    A trial that changes a data field (`data.batch_size`, `data.augment_strength`) gets its
    own build, with statistics again fit on the training split only; the oldest of more than
    `DATA_CACHE_SIZE` builds is dropped.
    """

    def __init__(self):
        self._built: dict = {}

    def get(self, recipe: config.Recipe):
        key = (recipe.data, recipe.train.seed, recipe.model.preset)
        if key not in self._built:
            if len(self._built) >= DATA_CACHE_SIZE:
                self._built.pop(next(iter(self._built)))
            self._built[key] = data.build(recipe.data, recipe.train.seed,
                                          preset=recipe.model.preset)
        return self._built[key]

    def clear(self) -> None:
        self._built.clear()


CACHE = DataCache()  # this process's: the search's own, or a worker's


@dataclass(frozen=True)
class TrialTask:
    """What one trial trains (picklable, so a worker process can receive it).

    `epochs`/`initial_epoch` (Hyperband) replace the stage's epochs; `load_weights` holds the
    best epoch of the trial this one continues; the best epoch's weights go to `save_weights`.
    """

    recipe: config.Recipe
    direction: str = "min"
    epochs: int = 0
    initial_epoch: int = 0
    load_weights: str = ""
    save_weights: str = ""


def run_task(task: TrialTask) -> dict:
    """Builds and fits the trial's model in a fresh Keras session.

    Returns:
        epochs run, per-epoch history, seconds, this process's id and memory (MB).

    Raises:
        keras_tuner.errors.FailedTrialError: the loss diverged.
        DlkerasError: the trial recipe cannot be built (a user's mistake).
    """
    keras.backend.clear_session()  # and a full garbage collection (free_memory=True)
    started = time.perf_counter()
    recipe = task.recipe
    keras.utils.set_random_seed(recipe.train.seed)
    datasets = CACHE.get(recipe)
    model = precision.build_fitted(lambda: models.build(recipe.model, datasets.info),
                                   recipe.train.precision)
    if task.load_weights:
        try:
            model.load_weights(task.load_weights)
        except Exception as error:  # h5py raises OSError, Keras ValueError, for bad files
            cause = " ".join(str(error).split())[:200]
            raise RunError(
                f"cannot load {task.load_weights} (the best epoch of the trial this Hyperband "
                f"trial continues from): {type(error).__name__}: {cause}. The file is corrupt or "
                "truncated; start a new search (without --resume)"
            ) from None
    extra = []
    if task.save_weights:
        extra.append(BestEpochWeights(model, recipe.tune.objective, task.direction,
                                      Path(task.save_weights)))
    if recipe.train.class_weight == "auto":  # chosen on validation, as training does
        _, _, recipe = run.resolve_class_weight(recipe, run.choose_class_weight(recipe, datasets), {})
    options = {"epochs": task.epochs, "initial_epoch": task.initial_epoch} if task.epochs else {}
    history = fit_trial(model, recipe, datasets, extra, **options)
    return {
        "epoch": [int(e) for e in history.epoch],
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "seconds": round(time.perf_counter() - started, 2),
        "pid": os.getpid(),
        "rss_mb": current_rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }


def fit_trial(model, recipe: config.Recipe, datasets, extra_callbacks=(), **fit_options):
    """Fits `model` on the recipe's single stage, with the objective added to the epoch logs.

    Raises:
        keras_tuner.errors.FailedTrialError: the loss diverged (the search goes on).
    """
    stage = config.stage_plan(recipe.train)[0]
    stages.set_trainable(model, stage.trainable)
    trial_callbacks = [keras.callbacks.TerminateOnNaN(), *callbacks.build_stopping_callbacks(recipe)]
    if recipe.tune.objective == "val_macro_f1":
        trial_callbacks.insert(0, callbacks.ValMacroF1(model, datasets.val))
    fit_options.setdefault("verbose", 0)
    history = stages.fit_stage(model, recipe, datasets, stage,
                              [*trial_callbacks, *extra_callbacks], **fit_options)
    try:
        stages.check_finite_loss(history.history.get("loss", []), stage.name)
    except RunError as error:
        raise keras_tuner.errors.FailedTrialError(str(error)) from None
    return history


class BestEpochWeights(keras.callbacks.Callback):
    """Saves the complete model's weights (atomically) whenever the objective improves."""

    def __init__(self, model, objective: str, direction: str, path: Path):
        super().__init__()
        self.complete_model = model
        self.objective = objective
        self.sign = 1.0 if direction == "min" else -1.0
        self.path = path
        self.best = math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is not None and math.isfinite(value) and self.sign * value < self.best:
            self.best = self.sign * value
            save_model_atomic(self.complete_model, self.path, weights_only=True)


def current_rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), else its peak."""
    try:
        with open("/proc/self/statm", encoding="ascii") as stream:
            pages = int(stream.read().split()[1])
        return round(pages * resource.getpagesize() / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process (kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
