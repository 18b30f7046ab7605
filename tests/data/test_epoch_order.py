"""Training order drawn from (seed, epoch) alone: repeatable per epoch, new each epoch."""

import numpy as np
import pytest
import tensorflow as tf

from dlkeras.data import pipeline


def order(dataset, epoch):
    pipeline.set_epoch(epoch)
    try:
        return np.concatenate([np.atleast_1d(x) for x, _ in dataset.as_numpy_iterator()])
    finally:
        pipeline.set_epoch(0)


@pytest.mark.parametrize("global_seed", [0, 42])  # TF's own seed handling once broke on 0
def test_arrays_and_streams_repeat_an_epoch_and_change_between_epochs(global_seed):
    tf.random.set_seed(global_seed)
    rows = np.arange(50)
    arrays = pipeline.make_dataset(rows, rows, batch_size=8, training=True, seed=3)
    decoded = []

    def decode(index):  # counts how often the cached stream is read from its source
        decoded.append(int(index))
        return index

    source = tf.data.Dataset.range(50).map(lambda i: tf.py_function(decode, [i], tf.int64))
    stream = pipeline.epoch_shuffle(source.cache().map(lambda i: (i, i)), seed=3, count=50,
                                    buffer_size=16)
    for dataset in (arrays, stream):
        first, again, second = order(dataset, 0), order(dataset, 0), order(dataset, 1)
        assert sorted(first.tolist()) == list(range(50))
        assert np.array_equal(first, again) and not np.array_equal(first, second)
    assert len(decoded) == 50  # the cache still serves every later epoch
    assert int(stream.cardinality()) == 50 and int(arrays.cardinality()) == 7
