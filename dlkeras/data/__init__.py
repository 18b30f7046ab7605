"""Data pipelines: `build(recipe) -> Datasets` picks the pipeline named by `data.kind`.

KINDS holds one entry per data kind: the module that owns its training pipeline and its
inference-time conversion of raw inputs (`build_raw_converter`, reached through
`raw.RawInputs`), the tasks it serves and its bundled sources. Shared by the kinds:
`classification` (class names, label ids, class weights, splits and datasets of every
classification pipeline), `splits`, `checks`, `sources`, `pipeline` (tf.data), `augment`
(training-batch augmentation) and `image_decode` (one image decoder for training and inference).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from dlkeras.data import sources
from dlkeras.errors import ConfigError

MISSING_RULES = ("error", "drop")  # data.missing: rows with empty values fail, or are dropped


@dataclass(frozen=True)
class DataKind:
    """One data kind: its pipeline module, the tasks it serves, its bundled sources.

    Attributes:
        module: defines `build(data_config, seed, preset) -> Datasets` and, when `raw_inputs`,
            `build_raw_converter(preprocessing, folder) -> (raw batch -> model inputs)`.
        tasks: the tasks this kind of data serves.
        sources: the bundled data sets `data.source` may name.
        raw_inputs: whether `raw.RawInputs` converts raw inputs of this kind (forecasts read
            raw days through their task instead).
        signature_module: defines `build_raw_signature(preprocessing, folder)`, the exported
            SavedModel's raw-input signature (`raw_graph`); "" when `module` does.
    """

    module: str
    tasks: tuple[str, ...]
    sources: tuple[str, ...]
    raw_inputs: bool = True
    signature_module: str = ""


TABLES = tuple(sources.BUNDLED_TABLES)
KINDS = {
    "tabular": DataKind("dlkeras.data.tabular", ("classification",), TABLES),
    "images": DataKind("dlkeras.data.images", ("classification",), tuple(sources.BUNDLED_IMAGES)),
    "image_folder": DataKind("dlkeras.data.image_files", ("classification",),
                             sources.BUNDLED_IMAGE_FOLDERS),
    "text": DataKind("dlkeras.data.text", ("classification",), TABLES),
    "timeseries": DataKind("dlkeras.data.timeseries", ("forecast",), TABLES, raw_inputs=False,
                           signature_module="dlkeras.data.timeseries_graph"),
}


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
    import importlib

    if data_config.kind not in KINDS:
        raise ConfigError(f"data.kind={data_config.kind!r} is not a pipeline; choose one of {sorted(KINDS)}")
    module = importlib.import_module(KINDS[data_config.kind].module)
    return module.build(data_config, seed, preset=preset)


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
