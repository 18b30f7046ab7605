"""Overfit one batch: a few dozen steps on one batch must drive its training loss near zero.

A model that cannot memorise 16-64 examples will not learn the whole set, and the reason is
cheaper to find now than after an hour of training. When the loss does not get there, the
likely cause is named with the numbers that point to it: a learning rate that makes the loss
rise, weights that are frozen, inputs on a scale the first layers cannot take, or labels
that do not belong to their inputs (from the labels-vs-inputs check).
"""

from __future__ import annotations

import math

import numpy as np

from dlkeras.diagnostics import Result

MAX_STEPS = 300  # enough at a recipe's own rate for a healthy model to memorise the batch
EXAMPLES = 16  # a small batch: memorising it tests wiring and capacity, not the data
CHECK_EVERY = 5  # steps between looks at the loss (stops early once fitted)
FITTED_FRACTION = 0.15  # fitted: the loss above its floor fell below 15% of where it started
DIVERGED_RATIO = 3.0  # the loss jumped past 3x its start: the step is too large, even if it
# lands low again by chance
FROZEN_FRACTION = 0.001  # fewer trainable weights than this share of all: "frozen"
INPUT_SCALE_LIMIT = 50.0  # largest |input| a model without a rescaling layer takes well


def overfit(model, batch, floor: float = 0.0, steps: int = MAX_STEPS) -> list[float]:
    """Training losses of `model` (compiled) over up to `steps` steps on one `batch`.

    Stops once the mean of the last `CHECK_EVERY` losses is fitted (`is_fitted`). The batch
    is cut to its first `EXAMPLES` examples.
    """
    import keras

    x, y = keras.tree.map_structure(lambda part: part[:EXAMPLES], batch)
    losses = []
    for step in range(steps):
        logs = model.train_on_batch(x, y, return_dict=True)
        losses.append(float(logs["loss"]))
        if not math.isfinite(losses[-1]):
            break
        if (step + 1) % CHECK_EVERY == 0 and is_fitted(losses, floor):
            break
    return losses


def is_fitted(losses: list[float], floor: float) -> bool:
    """True when the recent losses sit within `FITTED_FRACTION` of the start's excess over
    `floor` (the smallest loss the targets allow, e.g. with label smoothing)."""
    recent = float(np.mean(losses[-CHECK_EVERY:]))
    return math.isfinite(recent) and recent - floor <= FITTED_FRACTION * (losses[0] - floor)


def diverged(losses: list[float]) -> bool:
    """True when a loss was NaN/inf or jumped past `DIVERGED_RATIO` times the first."""
    return not all(map(math.isfinite, losses)) or max(losses) > DIVERGED_RATIO * losses[0]


def check(model, batch, learning_rate: float, floor: float = 0.0,
          labels_unrelated: bool = False) -> Result:
    """The overfit-one-batch verdict for a compiled `model`, with the likely cause if it fails.

    Args:
        learning_rate: the stage's rate (for the message).
        floor: the loss of perfect predictions (label smoothing keeps it above zero).
        labels_unrelated: the labels-vs-inputs check found no relation between them.
    """
    losses = overfit(model, batch, floor)
    numbers = {"steps": len(losses), "batch_size": min(_batch_size(batch), EXAMPLES), "first_loss": losses[0],
               "last_loss": losses[-1], "loss_floor": floor, "learning_rate": learning_rate,
               "losses": [round(v, 6) for v in losses]}
    trend = f"loss {losses[0]:.4g} -> {losses[-1]:.4g} in {len(losses)} steps"
    if not diverged(losses) and is_fitted(losses, floor):
        return Result("overfit one batch", "pass", f"{trend} on {numbers['batch_size']} examples",
                      numbers=numbers)
    cause, advice = likely_cause(model, batch, losses, learning_rate, floor, labels_unrelated)
    numbers["likely_cause"] = cause
    return Result("overfit one batch", "fail", f"cannot overfit one batch ({trend}): {cause}",
                  advice=advice, numbers=numbers)


def likely_cause(model, batch, losses, learning_rate, floor, labels_unrelated):
    """(cause, advice): the checklist's most likely reason a batch was not memorised."""
    if diverged(losses):
        return (f"learning rate too high (the loss jumped to {max(losses):.4g} from "
                f"{losses[0]:.4g})",
                f"lower the stage's learning rate (now {learning_rate:g}) by 10x, or set "
                "train.clipnorm=1.0; the range test suggests a rate")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = max(sum(int(np.prod(w.shape)) for w in model.weights), 1)
    if trainable == 0 or trainable / total < FROZEN_FRACTION:
        return (f"frozen weights (only {trainable:,} of {total:,} weights train)",
                "unfreeze more layers for this stage (train.stages.N.trainable='top:20' or 'all')")
    scale = _input_scale(batch[0])
    if scale > INPUT_SCALE_LIMIT and not _has_rescaling(model):
        return (f"a normalisation problem (inputs reach |x| = {scale:.3g} and the model does "
                "not rescale them)", "standardise the inputs, or add a Rescaling/Normalization "
                "layer at the model's input")
    if labels_unrelated:
        return ("label/input mismatch (a quick linear model finds no relation between inputs "
                "and labels)", "check that labels are aligned with their inputs (row order, "
                "joins, the label column)")
    return (f"learning rate too low or too few steps (the loss fell {losses[0] - losses[-1]:.3g} "
            f"of {losses[0] - floor:.3g} possible at {learning_rate:g})",
            "raise the stage's learning rate toward the range test's suggestion")


def _batch_size(batch) -> int:
    import keras

    return int(np.shape(keras.tree.flatten(batch[0])[0])[0])


def _input_scale(inputs) -> float:
    import keras

    floats = [np.asarray(a) for a in keras.tree.flatten(inputs)
              if np.issubdtype(np.asarray(a).dtype, np.floating)]
    return max((float(np.nanmax(np.abs(a))) for a in floats if a.size), default=0.0)


def _has_rescaling(model) -> bool:
    import keras

    kinds = (keras.layers.Rescaling, keras.layers.Normalization)
    return any(isinstance(layer, kinds) for layer in model._flatten_layers())  # noqa: SLF001
