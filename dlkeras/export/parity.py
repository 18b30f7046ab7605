"""The parity gate: every artifact must answer the test split like the trained Keras model.

Test examples go in raw (texts, table rows, image arrays or files) and are turned into model
inputs by `dlkeras.data.raw` from the exported preprocessing, batch by batch. An artifact with
a raw-input signature (`Format.raw_loader`: the SavedModel) is also fed the same examples raw
(`raw_feeds`), converted by its own graph, and must match the same way. Float artifacts
must match the Keras outputs within `FLOAT_TOLERANCE`; quantized ones (`Format.quantized` in
`formats.FORMATS`) must keep the task metric within their task's rule (`tasks.Task.quantized_rule`)
and report how often their top-1 label agrees (reported, not gated: a quantized artifact is
judged on the task metrics alone).

The float limit includes its value: a largest difference of exactly `FLOAT_TOLERANCE` passes
(compared as computed, since it measures float outputs) and one float step above it fails. How
a quantized limit treats a change of exactly its value is up to the task's `quantized_rule`.
"""

from __future__ import annotations

import numpy as np

from dlkeras import progress, tasks
from dlkeras.export.formats import FORMATS

FLOAT_TOLERANCE = 1e-5  # max |difference| of output probabilities / forecasts


def test_batches(datasets, preprocessing: dict, folder, batch_size: int, limit: int = 0,
                 what: str = "preparing test examples"):
    """(model inputs, true labels) per batch of the test split, built from raw inputs."""
    from dlkeras.data.raw import RawInputs, pick

    convert = RawInputs(preprocessing, folder)
    test = datasets.splits["test"]
    chosen = chosen_examples(len(test.y), limit)
    batches = []
    starts = range(0, len(chosen), batch_size)
    for start in progress.track(starts, len(chosen), what,
                                size=lambda start: min(batch_size, len(chosen) - start)):
        index = chosen[start : start + batch_size]
        if preprocessing["kind"] == "timeseries":  # windows are already model inputs
            inputs = test.x[index]
        else:
            inputs = convert(pick(test.raw, index))
        batches.append((inputs, test.y[index]))
    return batches


def chosen_examples(count: int, limit: int) -> np.ndarray:
    """Indices of the test examples the gate reads: all, or `limit` evenly spread (so every
    class keeps its share)."""
    chosen = np.arange(count)
    if limit and limit < count:
        chosen = np.unique(np.linspace(0, count - 1, limit).round().astype(int))
    return chosen


def raw_feeds(datasets, signature, batch_size: int, limit: int = 0) -> list[dict]:
    """The same test examples as `test_batches`, in the same batches, as the feeds of a
    raw-input signature (`data.raw_graph.RawSignature.feed`)."""
    test = datasets.splits["test"]
    chosen = chosen_examples(len(test.y), limit)
    return [signature.feed(test, chosen[start : start + batch_size])
            for start in range(0, len(chosen), batch_size)]


def run_raw(predict, feeds: list[dict], comparable, what: str) -> np.ndarray:
    """The outputs of a raw-input signature for every feed of `raw_feeds`, made comparable with
    the model's own outputs by `comparable`."""
    examples = sum(len(next(iter(feed.values()))) for feed in feeds)
    return np.concatenate([comparable(predict(feed)) for feed in progress.track(
        feeds, examples, what, size=lambda feed: len(next(iter(feed.values()))))])


def run(predict, batches, what: str = "parity check") -> np.ndarray:
    """The outputs of `predict` for every batch of `test_batches`, in order."""
    examples = sum(len(y) for _, y in batches)
    return np.concatenate([np.asarray(predict(x), dtype=np.float64)
                           for x, _ in progress.track(batches, examples, what, size=lambda b: len(b[1]))])


def task_metrics(task: str, outputs: np.ndarray, truth: np.ndarray) -> dict:
    """The task's parity metrics (accuracy and macro-F1, or MAE) of `outputs`."""
    return tasks.get(task).parity_metrics(outputs, truth)


def check(format_name: str, task: str, outputs, reference, truth) -> dict:
    """Numbers and verdict for one artifact against the Keras reference outputs."""
    difference = float(np.abs(outputs - reference).max())
    result = {"max_abs_difference": difference, "metrics": task_metrics(task, outputs, truth)}
    if task == "classification":
        result["top1_agreement"] = float((outputs.argmax(1) == reference.argmax(1)).mean())
    if not FORMATS[format_name].quantized:
        result["rule"] = f"max abs diff <= {FLOAT_TOLERANCE:g}"
        result["passed"] = difference <= FLOAT_TOLERANCE
        return result
    base = task_metrics(task, reference, truth)
    result["rule"], result["passed"] = tasks.get(task).quantized_rule(base, result["metrics"])
    return result
