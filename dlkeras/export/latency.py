"""Batch-1 and batch-32 latency of every artifact, measured side by side in one process."""

from __future__ import annotations

import statistics
import time

import numpy as np

BUDGET_SECONDS = 3.0  # default per measurement: repeats stop when it is spent (at least 5 runs)


def take(inputs, count: int):
    """The first `count` rows of an input batch (array or dict of arrays), repeated if short."""
    def rows(array):
        array = np.asarray(array)
        reps = int(np.ceil(count / len(array)))
        return np.concatenate([array] * reps)[:count]

    if isinstance(inputs, dict):
        return {k: rows(v) for k, v in inputs.items()}
    return rows(inputs)


def median_ms(predict, inputs, budget: float = BUDGET_SECONDS, warmup: int = 2,
              max_repeats: int = 50) -> float:
    """Median wall time of `predict(inputs)` in milliseconds after warm-up calls."""
    for _ in range(warmup):
        predict(inputs)
    times, spent = [], 0.0
    while len(times) < 5 or (spent < budget and len(times) < max_repeats):
        started = time.perf_counter()
        predict(inputs)
        times.append(time.perf_counter() - started)
        spent += times[-1]
    return 1000 * statistics.median(times)


def keras_contenders(model) -> dict:
    """`model.predict` (with its per-call overhead) and a compiled call of the same model."""
    import tensorflow as tf

    compiled = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return {
        "keras predict": lambda x: model.predict(x, verbose=0),
        "keras compiled call": lambda x: compiled(x).numpy(),
    }


def measure(contenders: dict, sample, budget: float = BUDGET_SECONDS) -> dict[str, dict[str, float]]:
    """{name: {"batch_1_ms": ..., "batch_32_ms": ...}} for every contender."""
    return {
        name: {f"batch_{n}_ms": round(median_ms(predict, take(sample, n), budget), 3) for n in (1, 32)}
        for name, predict in contenders.items()
    }
