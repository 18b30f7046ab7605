"""Gradient flow: every trainable weight of the real model gets a finite, non-zero gradient.

A weight with no gradient is disconnected from the loss (an unused branch, a layer left out
of the graph); an all-zero gradient means dead units or a saturated path; a NaN or infinite
one breaks training at its first step. Each is listed by name.
"""

from __future__ import annotations

import numpy as np

from dlkeras.diagnostics import Result
from dlkeras.engine.gradients import global_norm, loss_and_gradients

MAX_LISTED = 8


def check(model, loss_fn, batch, stage: str = "") -> Result:
    """The gradient-flow verdict for `model`'s trainable weights on one batch."""
    where = f" (stage {stage!r})" if stage else ""
    weights = model.trainable_variables
    if not weights:
        return Result("gradient flow", "fail", f"no trainable weights{where}: nothing can learn",
                      advice="unfreeze layers (train.stages.N.trainable='head', 'top:N' or "
                      "'all')", numbers={"trainable_weights": 0})
    loss, gradients = loss_and_gradients(model, loss_fn, *batch)
    missing, zero, broken = [], [], []
    for weight, gradient in zip(weights, gradients):
        if gradient is None:
            missing.append(weight.path)
        elif not np.all(np.isfinite(gradient)):
            broken.append(weight.path)
        elif not np.any(gradient):
            zero.append(weight.path)
    numbers = {"trainable_weights": len(weights), "loss": loss,
               "global_gradient_norm": global_norm(gradients), "no_gradient": missing,
               "zero_gradient": zero, "non_finite_gradient": broken}
    if not (missing or zero or broken):
        return Result("gradient flow", "pass", f"all {len(weights)} trainable weights get a "
                      f"finite, non-zero gradient{where}; norm {numbers['global_gradient_norm']:.3g}",
                      numbers=numbers)
    parts = [f"{len(names)} {what}: {_names(names)}" for what, names in
             (("without gradient", missing), ("with zero gradient", zero),
              ("with NaN/inf gradient", broken)) if names]
    return Result("gradient flow", "fail", f"of {len(weights)} trainable weights{where}, "
                  + "; ".join(parts),
                  advice="connect or remove weights without gradient; zero gradients point to "
                  "dead ReLUs or saturation; NaN gradients to the inputs or the loss",
                  numbers=numbers)


def _names(names: list[str]) -> str:
    more = len(names) - MAX_LISTED
    return ", ".join(names[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")
