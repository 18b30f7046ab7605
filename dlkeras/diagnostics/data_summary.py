"""The data checks' summary: split sizes, classes and imbalance, lengths, leakage.

The data pipelines already refuse malformed data (missing columns, NaN, unknown labels, ...):
whatever reaches here passed those checks. This summary adds what a user should look at
before training: how imbalanced the classes are, how long the inputs are, and whether test or
validation examples also appear, verbatim, in the training split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from dlkeras.diagnostics import Result

IMBALANCE_WARNING = 10.0  # largest / smallest class count from which metrics need care
MAX_HASHED_FILES = 50_000  # image files read for the leakage count (seconds, not minutes)


def summarize(datasets) -> Result:
    """The summary of `datasets` (a `data.Datasets`); warns on imbalance or leakage."""
    info = datasets.info
    numbers: dict = {"split_sizes": dict(info.split_sizes)}
    parts = [" / ".join(f"{n} {name}" for name, n in info.split_sizes.items())]
    warnings = []
    if info.task == "classification":
        counts = np.bincount(datasets.splits["train"].y, minlength=info.num_classes)
        ratio = float(counts.max() / max(counts.min(), 1))
        numbers.update(class_counts=dict(zip(info.class_names, map(int, counts))),
                       imbalance=round(ratio, 2))
        parts.append(f"{info.num_classes} classes, largest/smallest {ratio:.1f}x")
        if counts.min() == 0:
            warnings.append("a class has no training example: it cannot be learned")
        elif ratio >= IMBALANCE_WARNING:
            warnings.append(f"classes are imbalanced {ratio:.0f}:1: judge by macro-F1, and "
                            "consider train.class_weight='balanced'")
    if info.preprocessing.get("kind") == "text":
        lengths = np.array([len(str(text).split()) for text in datasets.splits["train"].raw])
        numbers["words"] = {"median": float(np.median(lengths)),
                            "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}
        length = info.preprocessing.get("sequence_length")
        parts.append(f"words per text: median {numbers['words']['median']:.0f}, "
                     f"95th percentile {numbers['words']['p95']:.0f}"
                     + (f"; sequence_length {length} tokens" if length else ""))
    leaked = _leakage(datasets)
    if leaked is not None:
        numbers["in_train_too"] = leaked
        shared = {name: n for name, n in leaked.items() if n}
        parts.append("no val/test example repeats a training one" if not shared else
                     "repeated from train: " + ", ".join(f"{n} {s}" for s, n in shared.items()))
        if shared:
            warnings.append("validation/test examples that also appear in training inflate the "
                            "scores (leakage): remove them from the data")
    return Result("data", "warn" if warnings else "pass", "; ".join(parts),
                  advice="; ".join(warnings), numbers=numbers)


def _leakage(datasets) -> dict | None:
    """How many val and test examples equal a training example; None when not comparable."""
    if datasets.info.task != "classification":
        return None  # forecast windows of one series overlap by construction
    text = datasets.info.preprocessing.get("kind") == "text"
    keys = {name: _keys(split, text) for name, split in datasets.splits.items()}
    if any(k is None for k in keys.values()):
        return None
    train = set(keys["train"])
    return {name: sum(k in train for k in keys[name]) for name in ("val", "test")}


def _keys(split, text: bool) -> list | None:
    """One hashable key per example: its text, table row, file's bytes or array bytes."""
    raw = split.raw if split.raw is not None else split.x
    if raw is None or isinstance(raw, dict):
        return None
    if hasattr(raw, "columns"):
        return [hash(tuple(row)) for row in raw.itertuples(index=False)]
    if text:
        return [" ".join(str(item).lower().split()) for item in raw]
    if len(raw) and isinstance(raw[0], str):  # image files: the same photo under two names
        if len(raw) > MAX_HASHED_FILES:
            return None
        return [hashlib.sha1(Path(path).read_bytes()).hexdigest() for path in raw]
    array = np.asarray(raw)
    if array.dtype == object:
        return None
    return [hashlib.sha1(np.ascontiguousarray(row).tobytes()).hexdigest() for row in array]
