"""Batch-1 and batch-32 latency of every artifact, measured side by side in one process.

Batch 1 is timed the way one request arrives: a few test examples spread over the split, each
converted on its own (a text is then trimmed to its own length, not to the longest text of a
batch), taken in turn. Batch 32 is the first test batch. `fastest` names the artifact with the
lowest batch-1 latency among those that passed the parity gate.

Each exported artifact is also timed per example at batch sizes 4, 8, 16 and 32 on the rows of
the first test batch, interleaved call by call (`per_example_ms`): on some machines a batch of 32
runs slower per example than a batch of 4 (its activations outgrow the caches). The report
records the best size when a smaller one wins (`best_batch_size`), and the server forms batches
no larger than that.

Runtimes with a thread setting (ONNX, TFLite) are first timed at batch 1 on one thread and on
every core this process may use, interleaved call by call (`choose_threads`): which is faster
depends on the machine, and the export records the winner for whoever loads the artifact.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

BUDGET_SECONDS = 3.0  # default per measurement: repeats stop when it is spent (at least 5 runs)
SINGLE_EXAMPLES = 8  # test examples timed in turn at batch 1
BATCH_SIZES = (4, 8, 16, 32)  # timed per example (`per_example_ms`)
TOLERANCE = 0.05  # a larger batch size within 5% of the best time per example is preferred


def take(inputs, count: int):
    """The first `count` rows of an input batch (array or dict of arrays), repeated if short."""
    def rows(array):
        array = np.asarray(array)
        reps = int(np.ceil(count / len(array)))
        return np.concatenate([array] * reps)[:count]

    if isinstance(inputs, dict):
        return {k: rows(v) for k, v in inputs.items()}
    return rows(inputs)


def interleaved_ms(predicts: dict, inputs: list, budget: float = BUDGET_SECONDS, warmup: int = 2,
                   max_repeats: int = 50) -> dict:
    """{key: median wall time in ms} of each `predicts[key](input)`, timed call by call in turn.

    Each round calls every contender once on the same input (`inputs` taken in turn), so load
    from other jobs on a shared machine falls on all of them alike. Rounds stop when `budget`
    seconds per contender are spent (at least 5, at most `max_repeats`), after `warmup` calls
    of each (at least one per input shape: a new shape may trace the model again). With one
    contender, it is timed alone.
    """
    firsts = {}  # shape -> the first input of that shape
    for x in inputs:
        firsts.setdefault(shape_key(x), x)
    warm = [*firsts.values(), *(inputs[index % len(inputs)] for index in range(max(0, warmup - len(firsts))))]
    for predict in predicts.values():
        for x in warm:
            predict(x)
    times = {key: [] for key in predicts}
    spent, rounds = 0.0, 0
    while rounds < 5 or (spent < budget * len(predicts) and rounds < max_repeats):
        for key, predict in predicts.items():
            started = time.perf_counter()
            predict(inputs[rounds % len(inputs)])
            times[key].append(time.perf_counter() - started)
            spent += times[key][-1]
        rounds += 1
    return {key: 1000 * statistics.median(values) for key, values in times.items()}


def shape_key(inputs) -> tuple:
    """The shapes of an input (array or dict of arrays; None has none), as a hashable key."""
    if isinstance(inputs, dict):
        return tuple(sorted((name, np.shape(value)) for name, value in inputs.items()))
    return () if inputs is None else np.shape(inputs)


def thread_counts() -> list[int]:
    """1 and the number of cores this process may run on (just [1] on one core)."""
    from dlkeras.data.pipeline import usable_cores

    return sorted({1, usable_cores()})


def choose_threads(load, singles: list, budget: float = BUDGET_SECONDS,
                   counts: list[int] | None = None, max_repeats: int = 50):
    """(predict, threads, {threads: batch-1 median ms}) of the faster thread count.

    The counts are timed call by call in turn on the same inputs, so load from other jobs on a
    shared machine falls on all of them alike; ties go to fewer threads.

    Args:
        load: `load(threads) -> predict`.
        singles: batch-1 inputs, called in turn.
    """
    counts = counts or thread_counts()
    predicts = {n: load(n) for n in counts}
    if len(counts) == 1:
        return predicts[counts[0]], counts[0], {}
    timed = interleaved_ms(predicts, singles, budget, max_repeats=max_repeats)
    medians = {n: round(ms, 3) for n, ms in timed.items()}
    best = min(counts, key=lambda n: (medians[n], n))
    return predicts[best], best, medians


def compiled_call(model, sample):
    """`model(x, training=False)` as one tf.function, returning numpy: traced once, before the
    first call, for batches of any size shaped like `sample` (a batch of model inputs). The
    parity gate's reference and the latency measurement share it, so an export traces the
    model once for them, not once per batch size (seconds each for an EfficientNet). Inputs
    shaped otherwise (texts trimmed to another width) trace it again, for any width."""
    import tensorflow as tf

    function = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    function.get_concrete_function(tf.nest.map_structure(
        lambda array: tf.TensorSpec((None, *np.shape(array)[1:]), np.asarray(array).dtype), sample))
    return lambda x: function(x).numpy()


def keras_contenders(model, compiled) -> dict:
    """`model.predict` (with its per-call overhead) and `compiled` (`compiled_call` of the model)."""
    return {
        "keras predict": lambda x: model.predict(x, verbose=0),
        "keras compiled call": compiled,
    }


def measure(contenders: dict, sample, budget: float = BUDGET_SECONDS,
            singles: list | None = None) -> dict[str, dict[str, float]]:
    """{name: {"batch_1_ms": ..., "batch_32_ms": ...}} for every contender, each timed alone.

    Contenders are not interleaved: the runtimes' thread pools keep spinning for a while after
    a call (onnxruntime, TFLite's XNNPACK, TensorFlow), so a call right after another runtime's
    competes with its spinning threads; measured so, int8 ONNX on 2 threads took 6.7 ms at
    batch 1 instead of 3.3.

    Args:
        sample: a batch of model inputs; batch 32 repeats its rows if it is shorter.
        singles: batch-1 inputs timed in turn; None: the first row of `sample`.
    """
    inputs = {1: singles or [take(sample, 1)], 32: [take(sample, 32)]}
    return {
        name: {f"batch_{size}_ms": round(interleaved_ms({name: predict}, inputs[size], budget)[name], 3)
               for size in inputs}
        for name, predict in contenders.items()
    }


def per_example_ms(predict, sample, budget: float = BUDGET_SECONDS) -> dict[int, float]:
    """{batch size: median ms per example} of `predict` at each of `BATCH_SIZES`, on the first
    rows of `sample` (repeated if short), the sizes timed call by call in turn; `budget` seconds
    in all."""
    batches = {size: take(sample, size) for size in BATCH_SIZES}
    timed = interleaved_ms({size: (lambda _, x=x: predict(x)) for size, x in batches.items()}, [None],
                           budget / len(batches))
    return {size: float(f"{ms / size:.4g}") for size, ms in timed.items()}


def best_batch_size(per_example: dict[int, float], tolerance: float = TOLERANCE) -> int | None:
    """The largest batch size whose time per example is within `tolerance` of the best; None
    when that is the largest size timed (larger batches may be faster still: no limit)."""
    best = min(per_example.values())
    size = max(n for n, ms in per_example.items() if ms <= best * (1 + tolerance))
    return None if size == max(per_example) else size


def fastest(checks: dict, timings: dict) -> dict | None:
    """{"format", "batch_1_ms"} of the gated format with the lowest batch-1 latency, else None.

    Args:
        checks: the report's `formats` (name -> its parity check, with "passed").
        timings: the report's `latency_ms` (name -> {"batch_1_ms", "batch_32_ms"}).
    """
    timed = [name for name, check in checks.items()
             if bool(check.get("passed")) and "batch_1_ms" in timings.get(name, {})]
    if not timed:
        return None
    best = min(timed, key=lambda name: (timings[name]["batch_1_ms"], timings[name].get("batch_32_ms", 0)))
    return {"format": best, "batch_1_ms": timings[best]["batch_1_ms"]}


def highest_throughput(checks: dict, timings: dict) -> dict | None:
    """{"format", "ms_per_example", "batch_size"} of the gated format with the lowest time per
    example at its best batch size (`per_example_ms`): the one a loaded server answers most
    requests with. None when no gated format was timed per example.
    """
    best = None
    for name, check in checks.items():
        per_example = timings.get(name, {}).get("ms_per_example")
        if not check.get("passed") or not per_example:
            continue
        size, ms = min(per_example.items(), key=lambda item: (item[1], -int(item[0])))
        if best is None or ms < best["ms_per_example"]:
            best = {"format": name, "ms_per_example": ms, "batch_size": int(size)}
    return best
