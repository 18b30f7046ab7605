"""tf.data construction shared by every pipeline: shuffle, batch, augment, prefetch."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

GROUP_BATCHES = 50  # batches' worth of examples sorted by length together

def dataset_options():
    """tf.data options for the active Keras backend.

    tf.data autotuning throttles the JAX and torch backends (their epochs snap to multiples of
    its ~5 s tuning period), so it is switched off there and fixed parallelism is used.
    """
    import tensorflow as tf

    options = tf.data.Options()
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        options.autotune.enabled = False
    options.deterministic = True
    return options


def parallelism() -> int:
    import tensorflow as tf

    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        return tf.data.AUTOTUNE
    return 2


def make_dataset(
    features,
    labels: np.ndarray,
    batch_size: int,
    training: bool,
    seed: int,
    shuffle_buffer: int = 4096,
    augment: Callable | None = None,
    transform: Callable | None = None,
    lengths: np.ndarray | None = None,
):
    """A batched, prefetched tf.data.Dataset of `(features, labels)`.

    Args:
        features: an array (or dict of arrays) with one row per example.
        labels: labels aligned with the rows of `features`.
        training: shuffle each epoch and apply `augment` (a batch -> batch function).
        transform: a batch -> batch function for every split (e.g. tokenization).
        lengths: one length per example (training only): batches group examples of similar
            length (`length_grouped_batches`).
    """
    import tensorflow as tf

    if training and lengths is not None:
        dataset = tf.data.Dataset.from_tensor_slices((features, labels, lengths))
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        dataset = length_grouped_batches(dataset, batch_size, seed, len(labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((features, labels))
        if training:
            size = len(labels)
            dataset = dataset.shuffle(min(size, shuffle_buffer), seed=seed,
                                      reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    if transform is not None:
        dataset = dataset.map(
            lambda x, y: (transform(x), y), num_parallel_calls=parallelism(), deterministic=True
        )
    if training and augment is not None:
        dataset = dataset.map(
            lambda x, y: (augment(x), y), num_parallel_calls=parallelism(), deterministic=True
        )
    return dataset.prefetch(parallelism()).with_options(dataset_options())


def length_grouped_batches(dataset, batch_size: int, seed: int, count: int):
    """Batches of `(features, labels)` from shuffled `(features, labels, length)` examples,
    grouped by length: each run of `GROUP_BATCHES` batches' worth of examples is sorted by
    length and cut into batches, and the batches are shuffled again, so every epoch still sees
    every example once, in a new order, with far less padding per batch.
    """
    import tensorflow as tf

    def sort_group(features, labels, lengths):
        order = tf.argsort(lengths, stable=True)
        return (tf.nest.map_structure(lambda part: tf.gather(part, order), features),
                tf.gather(labels, order))

    dataset = dataset.batch(batch_size * GROUP_BATCHES).map(sort_group).unbatch()
    dataset = dataset.batch(batch_size).shuffle(GROUP_BATCHES, seed=seed,
                                                reshuffle_each_iteration=True)
    return dataset.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))


def one_hot(indices: np.ndarray, num_classes: int) -> np.ndarray:
    """Float32 one-hot rows (label smoothing in the loss needs dense targets)."""
    return np.eye(num_classes, dtype=np.float32)[indices]
