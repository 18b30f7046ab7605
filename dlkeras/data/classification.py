"""The classification skeleton every classification pipeline shares, written once.

A pipeline reads and checks its own inputs, then hands its per-split label texts here:
`encode_labels` names the classes (from the training split only), turns labels into ids, and
computes the class weights and split sizes; `classification_info` fills `DataInfo`; `assemble`
builds the `Split` arrays and the train/val/test datasets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlkeras.data import DataInfo, Datasets, Split, balanced_class_weights, checks, pipeline, splits

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Labels:
    """Class names (training split only) and, per split, the integer label of every example."""

    class_names: tuple[str, ...]
    ids: dict[str, np.ndarray]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_weights(self) -> dict[int, float]:
        return balanced_class_weights(self.ids["train"], self.num_classes)

    @property
    def split_sizes(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in self.ids.items()}


def stratified_indices(labels: np.ndarray, config, seed: int) -> dict[str, np.ndarray]:
    """{"train", "val", "test"} -> sorted row indices of a stratified split of `labels`."""
    index = splits.stratified_split(labels, config.val_fraction, config.test_fraction, seed)
    return dict(zip(SPLITS, index))


def subsample(count: int, max_examples: int) -> np.ndarray:
    """Sorted indices of `max_examples` of `count` examples, the same draw every run."""
    return np.sort(np.random.default_rng(0).permutation(count)[:max_examples])


def class_names_of(train_labels, where: str, natural: bool = False) -> tuple[str, ...]:
    """The sorted label values of the training split; at least two.

    Args:
        train_labels: label texts of the training examples.
        where: the data's description, for the error message.
        natural: sort numbers as numbers ("2" before "10").

    Raises:
        DataError: fewer than two classes.
    """
    class_names = sorted(set(train_labels), key=natural_key if natural else None)
    checks.check_min_classes(class_names, f"{where} (training split)")
    return tuple(class_names)


def encode_labels(split_labels: dict, class_names, where: str) -> Labels:
    """Integer ids for the label texts of every split, each split checked to be non-empty.

    Args:
        split_labels: {"train", "val", "test"} -> label texts, all among `class_names`.
        class_names: from `class_names_of`.
        where: the data's description, for the error message.

    Raises:
        DataError: a split is empty.
    """
    lookup = {name: i for i, name in enumerate(class_names)}
    ids = {}
    for name, labels in split_labels.items():
        checks.check_not_empty(len(labels), f"{where} {name} split")
        ids[name] = np.array([lookup[v] for v in labels], dtype=np.int64)
    return Labels(tuple(class_names), ids)


def label_splits(labels: np.ndarray, split_index: dict, where: str, natural: bool = False) -> Labels:
    """`class_names_of` then `encode_labels` for label texts split by row indices."""
    split_labels = {name: labels[index] for name, index in split_index.items()}
    return encode_labels(split_labels, class_names_of(split_labels["train"], where, natural), where)


def classification_info(labels: Labels, input_shape, preprocessing: dict, fingerprint: str,
                        notes: list[str] | None = None) -> DataInfo:
    """The `DataInfo` of a classification data set."""
    return DataInfo(
        task="classification",
        input_shape=tuple(input_shape),
        num_classes=labels.num_classes,
        class_names=labels.class_names,
        class_weights=labels.class_weights,
        split_sizes=labels.split_sizes,
        preprocessing=preprocessing,
        fingerprint=fingerprint,
        notes=list(notes or []),
    )


def assemble(features: dict, raw: dict, labels: Labels, info: DataInfo,
             make_dataset: Callable) -> Datasets:
    """Splits and train/val/test datasets.

    Args:
        features: split name -> model-ready features (`Split.x`).
        raw: split name -> raw inputs (`Split.raw`).
        labels: from `encode_labels` or `label_splits`.
        make_dataset: (features, one-hot labels, training) -> tf.data.Dataset.
    """
    split_arrays = {name: Split(features[name], labels.ids[name], raw[name]) for name in SPLITS}
    datasets = {
        name: make_dataset(split.x, pipeline.one_hot(split.y, labels.num_classes), name == "train")
        for name, split in split_arrays.items()
    }
    return Datasets(**datasets, info=info, splits=split_arrays)


def array_datasets(config, seed: int, augment: Callable | None = None,
                   transform: Callable | None = None, train_lengths=None,
                   whole_batch: Callable | None = None) -> Callable:
    """A `make_dataset` for `assemble` that batches in-memory arrays (`pipeline.make_dataset`).

    Args:
        train_lengths: one length per training example: training batches group examples of
            similar length (`pipeline.make_dataset`'s `lengths`).
        whole_batch: `pipeline.make_dataset`'s, for training batches.
    """

    def make(features, one_hot, training: bool):
        return pipeline.make_dataset(
            features, one_hot, config.batch_size, training=training, seed=seed,
            augment=augment, transform=transform,
            lengths=train_lengths if training else None,
            whole_batch=whole_batch,
        )

    return make


def natural_key(name: str):
    """Sorts "2" before "10" when class names are numbers."""
    return (0, int(name), name) if name.lstrip("-").isdigit() else (1, 0, name)
