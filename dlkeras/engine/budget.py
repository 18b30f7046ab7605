"""Stage lengths that fit `train.time_budget_minutes`.

The budget counts from the start of the run (data preparation and feature caching included)
to the end of the last stage; evaluation and the report come after it. Before each stage that
runs the whole model (every stage but a head trained on cached features), a few training
steps are timed on the real model and data, and the model and its optimizer are restored to
their state before them; a stage that keeps its length then fits on the step its timing
compiled. When the stage's epochs do not fit in the time left, the stage gets the whole
epochs that fit, or one partial epoch of the steps that fit; its learning-rate schedule is
built for that length, so a cut stage still warms up and decays to the end instead of
stopping mid-schedule. Timing a few steps can misjudge a stage (other jobs on the machine,
batches of other lengths), so a guard also stops training at the end of any batch once the
run's budget is spent. Stages on cached features take seconds and are never cut. The
decision is kept in the run directory, so a resumed stage trains the same length.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

TIMED_STEPS = 8  # the first includes tracing/compilation and is not counted
MIN_STEPS = 10  # a stage with fewer steps left than this is skipped
FORWARD_SHARE = 1 / 3  # a validation batch costs about a third of a training step


@dataclass(frozen=True)
class StagePlan:
    """How long one stage trains, and why."""

    epochs: int
    steps_per_epoch: int | None  # None: the whole training split each epoch
    step_seconds: float | None
    estimated_seconds: float | None
    reason: str


class Clock:
    """Seconds left of the run's budget; an unlimited clock when `minutes` is 0."""

    def __init__(self, minutes: float, started: float | None = None):
        self.minutes = minutes
        self.started = time.perf_counter() if started is None else started

    @property
    def limited(self) -> bool:
        return self.minutes > 0

    def seconds_left(self) -> float:
        return self.minutes * 60 - (time.perf_counter() - self.started)


def plan_stage(stage, train_steps: int, val_steps: int, step_seconds: float | None,
               seconds_left: float) -> StagePlan:
    """The epochs (and steps per epoch) of `stage` that fit in `seconds_left`.

    Args:
        train_steps, val_steps: batches per epoch of the training and validation splits.
        step_seconds: measured seconds per training step; None when not measured (the stage
            is cheap, or there is no budget): the stage keeps its epochs.
    """
    if step_seconds is None:
        return StagePlan(stage.epochs, None, None, None, "as in the recipe")
    epoch_seconds = train_steps * step_seconds + val_steps * step_seconds * FORWARD_SHARE
    wanted = stage.epochs * epoch_seconds
    if wanted <= seconds_left:
        return StagePlan(stage.epochs, None, step_seconds, wanted, "fits the time budget")
    whole = int(seconds_left / epoch_seconds + 1e-9)
    if whole >= 1:
        return StagePlan(whole, None, step_seconds, whole * epoch_seconds,
                         f"{stage.epochs} epochs would take ~{wanted:.0f} s; {whole} fit")
    steps = int((seconds_left - val_steps * step_seconds * FORWARD_SHARE) / step_seconds + 1e-9)
    if steps < MIN_STEPS:
        return StagePlan(0, 0, step_seconds, 0.0,
                         f"~{max(seconds_left, 0):.0f} s left: fewer than {MIN_STEPS} steps fit")
    return StagePlan(1, steps, step_seconds, seconds_left,
                     f"{stage.epochs} epochs would take ~{wanted:.0f} s; "
                     f"{steps} of {train_steps} steps fit")


def time_steps(fit_model, train_data, compile_model, **fit_options) -> float:
    """Mean seconds per training step over a few steps, on the model `compile_model` compiles.

    The model's variables and its optimizer's are put back as they were before the steps, so
    the stage can go on with the same compiled training step, or compile again (for
    bert_tickets' fine-tuning on 2,000 tweets, going on saved 18 s of a 106 s stage).

    The slowest gap is dropped (a retrace for a new batch shape); the mean, not the median,
    because batches grouped by length differ in cost and an epoch pays for all of them.

    Args:
        compile_model: compiles `fit_model` with the stage's optimizer, loss and metrics.
        fit_options: `fit` arguments the stage passes too (class_weight), so that the timed
            step is the stage's.
    """
    import keras

    variables = list(fit_model.variables)  # the same objects are restored, whatever compiles adds
    saved = [variable.numpy() for variable in variables]
    compile_model()
    fit_model.optimizer.build(fit_model.trainable_variables)  # its state before any step
    variables += fit_model.optimizer.variables
    saved += [variable.numpy() for variable in fit_model.optimizer.variables]
    stamps = []
    stamper = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: stamps.append(time.perf_counter())
    )
    fit_model.fit(train_data.take(TIMED_STEPS), epochs=1, verbose=0, shuffle=False,
                  callbacks=[stamper], **fit_options)
    for variable, value in zip(variables, saved):
        variable.assign(value)
    gaps = sorted(later - earlier for earlier, later in zip(stamps, stamps[1:]))
    return statistics.mean(gaps[:-1] or gaps) if gaps else 0.0


def to_json(plan: StagePlan) -> dict:
    return asdict(plan)


def from_json(data: dict) -> StagePlan:
    return StagePlan(**data)

