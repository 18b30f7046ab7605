"""Which limits training: the input pipeline or the training step?

The pipeline's rate is timed by iterating the training dataset alone (decoding, tokenising,
augmenting); the step's rate by repeating `train_on_batch` on one batch already in memory.
Training runs no faster than the slower of the two.
"""

from __future__ import annotations

import time

import numpy as np

from dlkeras.diagnostics import Result

BATCHES = 10  # timed batches of each side, after warm-up
MARGIN = 1.0  # the pipeline limits when it delivers fewer examples/s than steps consume


def pipeline_rate(dataset, batches: int = BATCHES) -> float:
    """Examples per second delivered by iterating `dataset` (one warm-up batch first)."""
    import keras

    iterator = iter(dataset)
    next(iterator)
    count, started = 0, time.perf_counter()
    for _ in range(batches):
        try:
            inputs, _ = next(iterator)
        except StopIteration:
            break
        count += int(np.shape(keras.tree.flatten(inputs)[0])[0])
    return count / max(time.perf_counter() - started, 1e-9)


def step_rate(model, batch, steps: int = BATCHES) -> float:
    """Examples per second of `model.train_on_batch` on one in-memory `batch`."""
    import keras

    size = int(np.shape(keras.tree.flatten(batch[0])[0])[0])
    for _ in range(2):  # compile and warm up
        model.train_on_batch(*batch)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(*batch)
    return size * steps / max(time.perf_counter() - started, 1e-9)


def check(model, dataset, batch) -> Result:
    """The bottleneck verdict: pipeline examples/s against training-step examples/s."""
    data_rate = pipeline_rate(dataset)
    train_rate = step_rate(model, batch)
    numbers = {"pipeline_examples_per_second": round(data_rate, 1),
               "step_examples_per_second": round(train_rate, 1),
               "ratio": round(data_rate / train_rate, 3)}
    rates = f"input pipeline {data_rate:,.0f} examples/s, training step {train_rate:,.0f} examples/s"
    if data_rate < MARGIN * train_rate:
        return Result("bottleneck", "warn", f"the input pipeline limits training ({rates})",
                      advice="cache decoded data, raise the pipeline's parallelism, or simplify "
                      "augmentation; the step waits for data", numbers=numbers)
    return Result("bottleneck", "pass", f"the training step limits training ({rates}); the "
                  "input pipeline keeps up", numbers=numbers)
