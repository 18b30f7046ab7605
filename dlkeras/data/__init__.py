"""Data pipelines: `build(recipe) -> Datasets` picks the pipeline named by `data.kind`."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import numpy as np

from dlkeras.errors import ConfigError


@dataclass
class DataInfo:
    """What a model factory and the reports need to know about the data."""

    task: str
    input_shape: tuple[int, ...]
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    class_weights: dict[int, float] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    preprocessing: dict = field(default_factory=dict)
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class Split:
    """One split as arrays: model-ready features `x`, integer labels `y`, and `raw` inputs."""

    x: object
    y: np.ndarray
    raw: object = None


@dataclass
class Datasets:
    """tf.data pipelines for train/val/test plus the arrays behind them (for baselines)."""

    train: object
    val: object
    test: object
    info: DataInfo
    splits: dict[str, Split]


def build(data_config, seed: int, preset: str = "") -> Datasets:
    """Builds the datasets for a recipe's `data` (statistics are fit on the training split only).

    Args:
        preset: the recipe's `model.preset`; text pipelines tokenize with its vocabulary.

    Raises:
        DataError: the data is missing or malformed (message says what to fix).
        ConfigError: `data.kind` names no pipeline.
    """
    from dlkeras.data import image_files, images, tabular, text, timeseries

    builders = {
        "tabular": tabular.build,
        "images": images.build,
        "image_folder": image_files.build,
        "text": functools.partial(text.build, preset=preset),
        "timeseries": timeseries.build,
    }
    kind = data_config.kind
    if kind not in builders:
        raise ConfigError(f"data.kind={kind!r} is not a pipeline; choose one of {sorted(builders)}")
    return builders[kind](data_config, seed)


def fingerprint(*parts) -> str:
    """A short sha256 over arrays/bytes/strings, so a resumed run can tell the data changed."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, bytes):
            digest.update(part)
        else:
            digest.update(str(part).encode())
    return digest.hexdigest()[:16]


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """n / (k * count) per class, computed from the training labels."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}
