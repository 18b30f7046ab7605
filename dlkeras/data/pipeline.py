"""tf.data construction shared by every pipeline: shuffle, batch, augment, prefetch.

Training pipelines draw each epoch's order from the seed and the epoch number alone
(`epoch_order`, `set_epoch`), not from how many times the pipeline was iterated before: a run
resumed at epoch k sees the batches the uninterrupted run saw at epoch k, whatever iterated
the pipeline in between (feature caching, step timing, an earlier process).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

GROUP_BATCHES = 50  # batches' worth of examples sorted by length together
_EPOCH = [0]  # the epoch whose order training pipelines draw (see set_epoch)
_PROCESS_SLICE = [None]  # (index, processes, devices) of a multi-process run (set_process_slice)
SLICED = "dlkeras_process_slice"  # attribute of a dataset that holds this process's slice only


def as_written(function):
    """`function` for tf.data to trace as written, without AutoGraph's rewrite. dlkeras' dataset
    functions are plain TensorFlow ops (no Python branching on tensors); rewriting them parsed
    their source on first use in each process, 0.1-0.2 s of a run's pipeline building (a
    training, an evaluation and a length-grouped pipeline built in a fresh process: 0.31-0.35 s
    with the rewrite, 0.14 s without)."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(function)


def set_epoch(epoch: int) -> None:
    """Training pipelines iterated from now on draw epoch `epoch`'s order.

    Called at the start of every epoch (`engine.callbacks.DataEpoch`), before Keras creates
    the epoch's iterator.
    """
    _EPOCH[0] = int(epoch)


def set_process_slice(index: int, processes: int, devices: int) -> None:
    """Training pipelines built from now on keep only process `index`'s slice of every global
    batch, cut before any transform (tokenization, augmentation): in a multi-process run each
    process prepares its own examples only. `devices`: all processes' devices together."""
    _PROCESS_SLICE[0] = (index, processes, devices) if processes > 1 else None


def slice_batches(dataset, index: int, processes: int, devices: int):
    """Each batch of `dataset` cut to a multiple of `devices`, then to process `index`'s
    contiguous share of it (every process runs the same seeded pipeline, so the shares
    partition the batch); emptied batches are dropped."""
    import tensorflow as tf

    def cut(*batch):
        size = tf.shape(tf.nest.flatten(batch)[0])[0]
        share = (size - size % devices) // processes
        return tf.nest.map_structure(lambda part: part[index * share:(index + 1) * share], batch)

    def not_empty(*batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0] > 0

    return dataset.map(as_written(cut)).filter(as_written(not_empty))


def process_share(dataset, training: bool):
    """(dataset, sliced): a batched training dataset cut to this process's slice of every
    global batch in a multi-process run (`set_process_slice`); any other dataset unchanged."""
    if not (training and _PROCESS_SLICE[0] is not None):
        return dataset, False
    return slice_batches(dataset, *_PROCESS_SLICE[0]), True


def epoch_order(count: int, seed: int):
    """A dataset of the indices 0..count-1 in the order of the current epoch (`set_epoch`).

    The permutation is a stateless function of (seed, epoch), read when an iterator starts.
    """
    import tensorflow as tf

    order = tf.data.Dataset.range(1).map(as_written(lambda _: _permutation(count, seed))).unbatch()
    return order.apply(tf.data.experimental.assert_cardinality(count))


def epoch_shuffle(dataset, seed: int, count: int, buffer_size: int):
    """`dataset` (a stream of `count` elements) in an order drawn from (seed, epoch) alone.

    For streams without random access (decoded and cached images, windows): blocks of
    `buffer_size` elements (the whole stream when it is smaller) are gathered, permuted by a
    stateless (seed, block, epoch) permutation and streamed again, so at most one block is
    held in memory, as a shuffle buffer of that size would.
    """
    import tensorflow as tf

    def permuted(block_index, block):
        size = tf.shape(tf.nest.flatten(block)[0])[0]
        order = _permutation(size, seed, offset=block_index)
        return tf.data.Dataset.from_tensor_slices(
            tf.nest.map_structure(lambda part: tf.gather(part, order), block))

    blocks = dataset.batch(max(1, min(count, buffer_size))).enumerate()
    return blocks.flat_map(as_written(permuted)).apply(tf.data.experimental.assert_cardinality(count))


def _permutation(count, seed: int, offset=0):
    """The permutation of range(count) for (seed + offset, current epoch), as a tensor."""
    import tensorflow as tf

    epoch = tf.reshape(tf.py_function(lambda: _EPOCH[0], [], tf.int64), [])
    key = tf.stack([tf.constant(seed, tf.int64) + tf.cast(offset, tf.int64), epoch])
    return tf.random.experimental.stateless_shuffle(
        tf.range(tf.cast(count, tf.int64), dtype=tf.int64), seed=key)


def _shuffled_examples(arrays, count: int, seed: int):
    """The examples of `arrays` (a structure of arrays with `count` rows) in epoch order."""
    import tensorflow as tf

    constants = tf.nest.map_structure(tf.constant, arrays)
    return epoch_order(count, seed).map(
        as_written(lambda index: tf.nest.map_structure(lambda part: tf.gather(part, index), constants)),
        num_parallel_calls=parallelism(), deterministic=True)


PREFETCH_BATCHES = 2  # batches each pipeline prepares ahead of the training step


def dataset_options():
    """tf.data options of every pipeline: deterministic, with autotuning switched off.

    Autotuning throttles the JAX and torch backends (their epochs snap to multiples of its
    ~5 s tuning period). On every backend, releasing an autotuned iterator waits for its
    tuning thread, whose sleeps grow while the iterator idles (22 s of waiting after a minute
    idle): an iterator left to the garbage collector (held in a reference cycle) stalled
    whatever the process was doing when it was freed (`bench/data_autotune.py`). Fixed
    parallelism (`parallelism`) and prefetch depth (`PREFETCH_BATCHES`) are used instead.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return options


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the platform has one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def parallelism() -> int:
    """Parallel calls of the pipelines' maps: one per usable core, at least 2."""
    return max(2, usable_cores())


def make_dataset(
    features,
    labels: np.ndarray,
    batch_size: int,
    training: bool,
    seed: int,
    augment: Callable | None = None,
    transform: Callable | None = None,
    lengths: np.ndarray | None = None,
    whole_batch: Callable | None = None,
):
    """A batched, prefetched tf.data.Dataset of `(features, labels)`.

    Args:
        features: an array (or dict of arrays) with one row per example.
        labels: labels aligned with the rows of `features`.
        training: shuffle each epoch (whole, `epoch_order`) and apply `augment` (a batch -> batch
            function).
        transform: a batch -> batch function for every split (e.g. tokenization).
        lengths: one length per example (training only): batches group examples of similar
            length (`length_grouped_batches`).
        whole_batch: a features -> features function for every whole batch before a
            multi-process run slices it (e.g. to agree on a padded width; training only).

    In a multi-process run (`set_process_slice`) a training dataset yields this process's
    slice of each global batch, cut before `transform` and `augment`, and is marked `SLICED`.
    """
    import tensorflow as tf

    if training and lengths is not None:
        dataset = _shuffled_examples((features, labels, np.asarray(lengths)), len(labels), seed)
        dataset = length_grouped_batches(dataset, batch_size, seed, len(labels))
    elif training:
        dataset = _shuffled_examples((features, labels), len(labels), seed).batch(batch_size)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)
    if training and whole_batch is not None:
        dataset = dataset.map(as_written(lambda x, y: (whole_batch(x), y)))
    dataset, sliced = process_share(dataset, training)
    if transform is not None:
        dataset = dataset.map(
            as_written(lambda x, y: (transform(x), y)), num_parallel_calls=parallelism(),
            deterministic=True
        )
    if training and augment is not None:
        dataset = dataset.map(
            as_written(lambda x, y: (augment(x), y)), num_parallel_calls=parallelism(),
            deterministic=True
        )
    dataset = dataset.prefetch(PREFETCH_BATCHES).with_options(dataset_options())
    setattr(dataset, SLICED, sliced)
    return dataset


def length_grouped_batches(dataset, batch_size: int, seed: int, count: int):
    """Batches of `(features, labels)` from shuffled `(features, labels, length)` examples,
    grouped by length: each run of `GROUP_BATCHES` batches' worth of examples is sorted by
    length and cut into batches, whose order within the run is then shuffled too (from seed,
    run and epoch), so every epoch still sees every example once, in a new order, with far
    less padding per batch.
    """
    import tensorflow as tf

    def sort_group(index, example):
        features, labels, lengths = example
        order = tf.argsort(lengths, stable=True)
        full = tf.shape(order)[0] // batch_size  # whole batches; a short last one stays last
        epoch = tf.reshape(tf.py_function(lambda: _EPOCH[0], [], tf.int64), [])
        key = tf.stack([tf.constant(seed, tf.int64) + index, epoch])
        batches = tf.random.experimental.stateless_shuffle(tf.range(full), seed=key)
        whole = tf.reshape(tf.gather(tf.reshape(order[:full * batch_size], [full, batch_size]),
                                     batches), [-1])
        order = tf.concat([whole, order[full * batch_size:]], axis=0)
        return (tf.nest.map_structure(lambda part: tf.gather(part, order), features),
                tf.gather(labels, order))

    dataset = dataset.batch(batch_size * GROUP_BATCHES).enumerate().map(as_written(sort_group)).unbatch()
    dataset = dataset.batch(batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))


def one_hot(indices: np.ndarray, num_classes: int) -> np.ndarray:
    """Float32 one-hot rows (label smoothing in the loss needs dense targets)."""
    return np.eye(num_classes, dtype=np.float32)[indices]
