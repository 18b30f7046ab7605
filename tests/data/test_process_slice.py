"""Training pipelines of a multi-process run: each process prepares only its slice of a batch."""

import numpy as np
import pytest

from dlkeras.data import pipeline


@pytest.fixture
def two_processes():
    yield
    pipeline.set_process_slice(0, 1, 1)


def batches(index: int) -> list:
    import tensorflow as tf

    pipeline.set_process_slice(index, 2, 4)  # 2 processes with 2 devices each

    def transform(x):  # appends the size of the batch the transform was given
        seen = tf.cast(tf.fill([tf.shape(x)[0], 1], tf.shape(x)[0]), x.dtype)
        return tf.concat([x, seen], axis=1)

    features = np.arange(22, dtype=np.float32).reshape(22, 1)
    dataset = pipeline.make_dataset(features, np.zeros(22, np.float32), batch_size=10,
                                    training=True, seed=3, transform=transform)
    assert getattr(dataset, pipeline.SLICED)
    found = list(dataset.as_numpy_iterator())
    assert all((x[:, 1] == len(x)).all() for x, _ in found), "the transform saw whole batches"
    return [x[:, 0].astype(int).tolist() for x, _ in found]


def test_processes_slice_each_global_batch_before_the_transform(two_processes):
    first, second = batches(0), batches(1)
    pipeline.set_process_slice(0, 1, 1)
    whole = [x[:, 0].astype(int).tolist() for x, _ in pipeline.make_dataset(
        np.arange(22, dtype=np.float32).reshape(22, 1), np.zeros(22, np.float32),
        batch_size=10, training=True, seed=3).as_numpy_iterator()]
    # global batches of 10, 10 and 2: cut to multiples of 4 devices (8, 8, 0), halved per process
    assert [len(b) for b in first] == [len(b) for b in second] == [4, 4]
    for mine, theirs, batch in zip(first, second, whole):
        assert mine + theirs == batch[:8]


def test_a_validation_pipeline_is_not_sliced(two_processes):
    pipeline.set_process_slice(1, 2, 4)
    dataset = pipeline.make_dataset(np.zeros((6, 1), np.float32), np.zeros(6, np.float32),
                                    batch_size=4, training=False, seed=0)
    assert not getattr(dataset, pipeline.SLICED)
    assert [len(x) for x, _ in dataset.as_numpy_iterator()] == [4, 2]


def test_image_folder_training_batches_are_sliced_before_augmenting(two_processes, tmp_path):
    import tensorflow as tf
    from PIL import Image

    from dlkeras import config
    from dlkeras.data.image_files import make_image_dataset

    paths = []
    for i in range(12):  # image i is filled with the value 10 * i, so it can be told apart
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(path)
        paths.append(str(path))
    data_config = config.apply_overrides(config.load_recipe("effnet_defects"),
                                         ["data.image_size=8", "data.batch_size=8"]).data
    def augment(x, y):  # adds the size of the batch augmentation was given to every pixel
        return x + tf.cast(tf.shape(x)[0], x.dtype) / 255.0, y

    labels = np.eye(2, dtype=np.float32)[np.arange(12) % 2]

    def ids(index):
        pipeline.set_process_slice(index, 2, 2)
        dataset = make_image_dataset(paths, labels, data_config, training=True, seed=1,
                                     augment=augment)
        assert getattr(dataset, pipeline.SLICED)
        found = [np.round(x[:, 0, 0, 0] * 255).astype(int) for x, _ in dataset.as_numpy_iterator()]
        assert all((values % 10 == len(values)).all() for values in found), "augmented whole batches"
        return [(values // 10).tolist() for values in found]

    first, second = ids(0), ids(1)
    pipeline.set_process_slice(0, 1, 1)
    whole = [np.round(x[:, 0, 0, 0] * 255 / 10).astype(int).tolist() for x, _ in make_image_dataset(
        paths, labels, data_config, training=True, seed=1).as_numpy_iterator()]
    assert [len(b) for b in first] == [len(b) for b in second] == [4, 2]  # batches of 8 and 4
    for mine, theirs, batch in zip(first, second, whole):
        assert sorted(mine + theirs) == sorted(batch) and not set(mine) & set(theirs)
    validation = make_image_dataset(paths, labels, data_config, training=False, seed=1)
    assert not getattr(validation, pipeline.SLICED)


def test_text_training_slices_are_padded_alike_on_every_process(two_processes, tmp_path):
    """Each process tokenizes only its slice, padded to the whole batch's longest text: the
    processes compute one step together, so their inputs must agree in shape."""
    import pandas as pd

    from dlkeras import config, data

    rng = np.random.default_rng(0)
    bodies = [" ".join(["late bag"] * int(rng.integers(1, 30))) + f" ticket {i}" for i in range(64)]
    path = tmp_path / "tickets.csv"
    pd.DataFrame({"body": bodies, "queue": ["a", "b"] * 32}).to_csv(path, index=False)
    recipe = config.apply_overrides(config.load_recipe("bert_tickets"), [
        f"data.path={path}", "data.text_column=body", "data.label_column=queue",
        "model.preset=tiny_bert_random", "data.batch_size=8", "data.group_by_length=False"])

    def batches(index: int, processes: int) -> list:
        pipeline.set_process_slice(index, processes, processes)
        train = data.build(recipe.data, 0, preset=recipe.model.preset).train
        return [(x["token_ids"].shape[1], int(np.asarray(x["padding_mask"]).sum(1).max()))
                for x, _ in train.as_numpy_iterator()]

    whole, first, second = batches(0, 1), batches(0, 2), batches(1, 2)
    assert [w for w, _ in first] == [w for w, _ in second] == [w for w, _ in whole]
    # the slices differ in their own longest text, so trimming each alone would disagree
    assert any(-(-a // 8) != -(-b // 8) for (_, a), (_, b) in zip(first, second))
