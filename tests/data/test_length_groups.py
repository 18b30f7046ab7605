"""Training batches grouped by length: every example once per epoch, far less padding."""

import numpy as np

from dlkeras.data import pipeline


def batches(lengths, grouped: bool, epochs: int = 2):
    count = len(lengths)
    dataset = pipeline.make_dataset(np.arange(count), np.arange(count), batch_size=8,
                                    training=True, seed=0,
                                    lengths=lengths if grouped else None)
    assert int(dataset.cardinality()) == -(-count // 8)
    orders = []
    for epoch in range(epochs):
        pipeline.set_epoch(epoch)  # as engine.callbacks.EpochStart does
        orders.append([y for _, y in dataset.as_numpy_iterator()])
    pipeline.set_epoch(0)
    return orders


def test_grouped_epochs_see_every_example_once_in_a_new_order():
    lengths = np.random.default_rng(0).integers(5, 120, size=1003)
    first, second = batches(lengths, grouped=True)
    for epoch in (first, second):
        assert sorted(np.concatenate(epoch).tolist()) == list(range(1003))
        assert len(epoch) == 126
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    again, = batches(lengths, grouped=True, epochs=1)  # epoch 0 again, e.g. after a resume
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_grouped_batches_pad_to_far_fewer_tokens_than_random_ones():
    lengths = np.random.default_rng(1).integers(5, 120, size=1600)

    def padded_tokens(epoch):  # each batch is padded to its longest example
        return sum(lengths[ids].max() * len(ids) for ids in epoch)

    grouped, = batches(lengths, grouped=True, epochs=1)
    shuffled, = batches(lengths, grouped=False, epochs=1)
    assert padded_tokens(grouped) < 0.75 * padded_tokens(shuffled)
    assert padded_tokens(grouped) >= lengths.sum()
