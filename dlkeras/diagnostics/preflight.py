"""Runs the checks on a recipe's real data and model (pretrained weights included).

Order: the data (every data check runs while it is built) and its summary, labels vs inputs,
overfit one batch and gradient flow (the fast checks, which `train --preflight` runs), then
the learning-rate range test and the bottleneck. The model's weights are put back before
each check, so no check sees another's training. Overfitting and gradient flow use the
stages as the recipe trains them: the first stage for the one-batch fit, every distinct
trainable setting for gradient flow; the range test and the bottleneck use the last stage,
the one the recipe's learning rate and most of its compute go to.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from dlkeras import config
from dlkeras.diagnostics import Result

CHECKS = ("data", "labels", "overfit", "gradients", "lr_range", "bottleneck")
FAST = ("data", "labels", "overfit", "gradients")


def run_checks(recipe: config.Recipe, folder: Path | None, names=CHECKS) -> list[Result]:
    """The results of the checks in `names`, in `CHECKS` order; plots go to `folder`.

    The data are always built (their checks run then); the labels-vs-inputs check also runs
    for the one-batch fit, which names a label/input mismatch as its cause when it fails.
    """
    import keras

    from dlkeras import data, models
    from dlkeras.diagnostics import data_summary, learnability
    from dlkeras.engine import precision

    wanted = [name for name in CHECKS if name in names]
    keras.utils.set_random_seed(recipe.train.seed)
    started = time.perf_counter()
    datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
    summary = data_summary.summarize(datasets)
    summary.seconds = time.perf_counter() - started
    labels = (_timed(learnability.check, recipe, datasets)
              if {"labels", "overfit"} & set(wanted) else None)
    results = [r for r, name in ((summary, "data"), (labels, "labels")) if name in wanted]
    model = precision.build_fitted(lambda: models.build(recipe.model, datasets.info),
                                   recipe.train.precision)
    session = _Session(recipe, model, datasets, folder)
    unrelated = labels is not None and labels.status == "fail"
    for name in wanted:
        if name in STEPS:
            results.extend(STEPS[name](session, labels_unrelated=unrelated))
    return results


@dataclasses.dataclass
class _Session:
    """What the model checks share: the recipe, the model and its initial weights, a batch."""

    recipe: config.Recipe
    model: object
    datasets: object
    folder: Path | None

    def __post_init__(self):
        from dlkeras import tasks

        self.initial = self.model.get_weights()
        self.stages = config.stage_plan(self.recipe.train)
        self.batch = first_batch(self.datasets.train)
        self.loss = tasks.get(self.recipe.task).build_loss(self.recipe)

    def prepare(self, stage, steps: int, recipe: config.Recipe | None = None):
        """The model with its initial weights, stage's trainable layers, compiled."""
        from dlkeras.engine import stages

        self.model.set_weights(self.initial)
        stages.set_trainable(self.model, stage.trainable)
        stages.compile_stage(self.model, recipe or self.recipe, stage, steps, self.datasets.train)
        return self.model


def first_batch(dataset) -> tuple:
    """The first (inputs, targets) batch of `dataset`, as numpy."""
    import keras

    inputs, targets = next(iter(dataset))
    return (keras.tree.map_structure(np.asarray, inputs), np.asarray(targets))


def loss_floor(recipe: config.Recipe, targets: np.ndarray) -> float:
    """The smallest loss the targets allow: label smoothing's entropy; zero otherwise."""
    smoothing = recipe.train.label_smoothing if recipe.task == "classification" else 0.0
    if not smoothing:
        return 0.0
    smoothed = targets * (1 - smoothing) + smoothing / targets.shape[-1]
    return float(np.mean(-np.sum(smoothed * np.log(np.clip(smoothed, 1e-12, 1)), axis=-1)))


def _timed(check, *args, **kwargs) -> Result:
    started = time.perf_counter()
    result = check(*args, **kwargs)
    result.seconds = time.perf_counter() - started
    return result


def _overfit(session: _Session, labels_unrelated: bool) -> list[Result]:
    from dlkeras.diagnostics import one_batch

    stage = session.stages[0]
    model = session.prepare(stage, one_batch.MAX_STEPS)
    return [_timed(one_batch.check, model, session.batch, stage.learning_rate,
                   loss_floor(session.recipe, session.batch[1]), labels_unrelated)]


def _gradients(session: _Session, labels_unrelated: bool) -> list[Result]:
    from dlkeras.diagnostics import gradient_flow

    results, seen = [], set()
    for stage in session.stages:
        if stage.trainable in seen:
            continue
        seen.add(stage.trainable)
        model = session.prepare(stage, 1)
        results.append(_timed(gradient_flow.check, model, session.loss, session.batch, stage.name))
    return results


def _lr_range(session: _Session, labels_unrelated: bool) -> list[Result]:
    from dlkeras.diagnostics import lr_range

    stage = session.stages[-1]
    constant = dataclasses.replace(session.recipe, train=dataclasses.replace(
        session.recipe.train, schedule="constant"))
    model = session.prepare(stage, lr_range.STEPS, constant)
    folder = session.folder or Path(".")
    return [_timed(lr_range.check, model, _batches(session.datasets.train),
                   stage.learning_rate, folder / "lr_range.png", stage.name)]


def _bottleneck(session: _Session, labels_unrelated: bool) -> list[Result]:
    from dlkeras.diagnostics import bottleneck

    stage = session.stages[-1]
    model = session.prepare(stage, 1000)
    return [_timed(bottleneck.check, model, session.datasets.train, session.batch)]


def _batches(dataset):
    """Endless numpy batches of `dataset` (epoch after epoch)."""
    while True:
        yield from dataset.as_numpy_iterator()


STEPS = {"overfit": _overfit, "gradients": _gradients, "lr_range": _lr_range,
         "bottleneck": _bottleneck}
