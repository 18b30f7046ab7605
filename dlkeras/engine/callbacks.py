"""build_callbacks(recipe, run, stage) -> the Keras callbacks of one training stage.

Imported by the commands after argument parsing, so the Keras import here stays off the
`--help` path.
"""

from __future__ import annotations

import csv
import io
import math
import time

import keras

from dlkeras import tasks
from dlkeras.engine.distribution import predict_batch
from dlkeras.io import save_model_atomic, write_text_atomic
from dlkeras.runs import RunDir, read_history


def build_callbacks(recipe, run: RunDir, stage, best_so_far: float | None, model,
                    prepared=None):
    """Backup (for --resume), NaN guard, gradient norm, early stopping, LR plateau,
    checkpoints, history, logs.

    Args:
        best_so_far: best monitored value of earlier stages, so best.keras spans all stages.
        model: the complete model checkpoints save (a cached-feature stage fits only its head).
        prepared: what the stage fits (`stages.PreparedStage`): the first batch of its
            training pipeline (backbone features for a head on cached features) is the one
            `GradientNorm` measures. None: no gradient norm in the logs.
    """
    from dlkeras.engine.backup import StageBackup

    settings = recipe.callbacks
    stateful = build_stopping_callbacks(recipe)
    if settings.checkpoints:
        stateful.append(AtomicCheckpoints(run, settings.monitor, best_so_far, model))
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if prepared is not None:  # before the history and TensorBoard, which record its value
        callbacks.append(GradientNorm(prepared.train_data, epoch_offset(stage.name, recipe.train.seed),
                                      read_to_end=recipe.data.augment and not prepared.cached))
    callbacks += [
        # history first, then the callbacks whose state carries over, then the backup of it
        # all: a kill in between leaves a row or a checkpoint that the resumed epoch
        # rewrites, never a backed-up epoch without them
        HistoryCSV(run, stage.name),
        *stateful,
        StageBackup(run.backup_dir(stage.name), stateful),
    ]
    if settings.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run.logs_dir / stage.name)))
    return callbacks


class EpochStart(keras.callbacks.Callback):
    """Makes each epoch's randomness a function of seed, stage and epoch alone.

    At the start of every epoch it tells the training pipelines which epoch starts
    (`data.pipeline.set_epoch`: the order of the examples) and re-seeds the model's random
    layers (dropout, noise) from the epoch. A resumed stage then sees the batches and draws
    the masks that the uninterrupted stage did at that epoch, whatever ran before it.
    """

    def __init__(self, stage: str, seed: int = 0):
        super().__init__()
        self.offset = epoch_offset(stage, seed)

    def on_epoch_begin(self, epoch, logs=None):
        import numpy as np

        from dlkeras.data import pipeline

        pipeline.set_epoch(self.offset + epoch)
        generators = [generator for layer in self.model._flatten_layers()  # noqa: SLF001
                      for generator in getattr(layer, "_seed_generators", ())]
        for index, generator in enumerate(generators):
            start = (self.offset + epoch) * 1_009 + index
            generator.state.assign(np.array([start % 2**31, 0], dtype=generator.state.dtype))


def epoch_offset(stage: str, seed: int) -> int:
    """The pipeline epoch (`data.pipeline.set_epoch`) of a stage's first epoch: each stage and
    seed draws its own sequence of epoch orders."""
    import zlib

    return zlib.crc32(stage.encode()) % 1_000_000 * 1_000 + seed * 7_919


class GradientNorm(keras.callbacks.Callback):
    """Adds `gradient_norm` to the logs at epoch end: the global L2 norm of the gradient of
    the training loss on one fixed training batch.

    The batch is the first one of the stage's first epoch, drawn once when the fit starts;
    the pipelines draw their order from (seed, epoch) alone, so drawing it changes the order
    of no epoch, and a resumed stage measures the same batch. The loss is the fit model's
    compiled loss (a `keras.losses.Loss`, as `stages.compile_stage` gives it; class weights
    left out), computed in inference mode (`engine.gradients`): no weight, statistic or
    random state of the model moves. The same batch every epoch makes the values comparable
    from epoch to epoch: a norm that grows by orders of magnitude warns of divergence before
    the loss shows it.

    Place it before the callbacks that record the logs (`HistoryCSV`, TensorBoard).

    Args:
        train_data: batches of `(inputs, targets)` the fit model trains on.
        epoch: the pipeline epoch whose order the batch is taken from (`epoch_offset`).
        read_to_end: the pipeline augments. Its random layers advance with every batch made,
            and a pipeline left after one batch has made as many as its prefetching got to
            (a race: runs would differ); read to its end, it advances by one epoch's batches
            in every run (runs stay reproducible; their augmentations are those a run without
            this callback draws an epoch later).
    """

    def __init__(self, train_data, epoch: int = 0, read_to_end: bool = False):
        super().__init__()
        self.train_data = train_data
        self.epoch = epoch
        self.read_to_end = read_to_end
        self.batch = None

    def on_train_begin(self, logs=None):
        from dlkeras.data import pipeline

        if self.batch is None:
            pipeline.set_epoch(self.epoch)  # EpochStart sets each epoch's own before it starts
            batches = self.train_data.as_numpy_iterator() if self.read_to_end else \
                self.train_data.take(1).as_numpy_iterator()
            for inputs, targets, *_ in batches:
                if self.batch is None:
                    self.batch = (inputs, targets)

    def on_epoch_end(self, epoch, logs=None):
        from dlkeras.engine import gradients

        if logs is not None and self.batch is not None:
            logs["gradient_norm"] = gradients.batch_gradient_norm(self.model, self.model.loss,
                                                                  *self.batch)


def build_stopping_callbacks(recipe) -> list:
    """Early stopping (best weights restored) and, for the plateau schedule, ReduceLROnPlateau."""
    settings = recipe.callbacks
    callbacks = []
    if settings.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=settings.monitor,
                mode=tasks.direction(settings.monitor),
                patience=settings.early_stopping_patience,
                restore_best_weights=True,
                verbose=1,
            )
        )
    if recipe.train.schedule == "plateau" and settings.reduce_lr_patience > 0:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=settings.monitor,
                mode=tasks.direction(settings.monitor),
                factor=settings.reduce_lr_factor,
                patience=settings.reduce_lr_patience,
                verbose=1,
            )
        )
    return callbacks


def current_learning_rate(model) -> float:
    """The optimizer's learning rate at its current step, as a float."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class HistoryCSV(keras.callbacks.Callback):
    """history.csv with one row per epoch: stage, epoch, learning rate, seconds and metrics.

    Rows of earlier stages (and of the run before a --resume) are kept; the file is rewritten
    atomically each epoch so a kill never leaves half a row.
    """

    def __init__(self, run: RunDir, stage: str):
        super().__init__()
        self.path = run.history_csv
        self.stage = stage
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        rows = read_history(self.path)
        rows = [r for r in rows if not (r["stage"] == self.stage and int(r["epoch"]) >= epoch + 1)]
        row = {
            "stage": self.stage,
            "epoch": epoch + 1,
            "learning_rate": current_learning_rate(self.model),
            "seconds": round(time.perf_counter() - self.started, 3),
        }
        row.update({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})
        rows.append(row)
        columns = list(dict.fromkeys(key for r in rows for key in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path, buffer.getvalue())


class AtomicCheckpoints(keras.callbacks.Callback):
    """Saves checkpoints/best.keras (without optimizer state) when `monitor` improves.

    The file is written to a temp name and renamed, so a killed run never leaves a truncated
    checkpoint behind. Resuming needs no checkpoint of the last epoch: BackupAndRestore keeps
    that state (optimizer included) until its stage ends.
    """

    def __init__(self, run: RunDir, monitor: str, best_so_far: float | None, model):
        super().__init__()
        self.run = run
        self.complete_model = model
        self.monitor = monitor
        self.mode_max = tasks.direction(monitor) == "max"
        self.best = best_so_far if best_so_far is not None else (-math.inf if self.mode_max else math.inf)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        improved = value > self.best if self.mode_max else value < self.best
        if improved:
            self.best = float(value)
            save_model_atomic(self.complete_model, self.run.best_checkpoint)


class ValMacroF1(keras.callbacks.Callback):
    """Adds `val_macro_f1` (scikit-learn, classes weighted equally) to the logs at epoch end.

    Place it before the callbacks that read the value (early stopping, a tuner): they see the
    same logs dict afterwards.

    Args:
        model: the complete model to predict with (a cached-feature stage fits only its head).
        dataset: the validation split, `(features, one-hot labels)` batches.
    """

    def __init__(self, model, dataset):
        super().__init__()
        self.complete_model = model
        self.dataset = dataset

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np
        from sklearn.metrics import f1_score

        predicted, true = [], []
        for x, y in self.dataset.as_numpy_iterator():  # numpy feeds every backend
            predicted.append(np.argmax(predict_batch(self.complete_model, x), axis=-1))
            true.append(np.argmax(y, axis=-1) if np.ndim(y) > 1 else y)
        if logs is not None and predicted:
            logs["val_macro_f1"] = float(f1_score(
                np.concatenate(true), np.concatenate(predicted), average="macro", zero_division=0
            ))


class BudgetGuard(keras.callbacks.Callback):
    """Stops training after the batch during which the run's time budget ran out.

    Args:
        clock: the run's `engine.budget.Clock`.
    """

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch, logs=None):
        if self.clock.seconds_left() <= 0 and not self.model.stop_training:
            print(f"\ntime budget of {self.clock.minutes:g} min spent: training stops after "
                  f"batch {batch + 1}", flush=True)
            self.model.stop_training = True
