"""Image classification from in-memory arrays: bundled digit sets or a user `.npz`.

Pixels are scaled to [0, 1] in the pipeline; augmentation (small rotations, shifts and zooms,
scaled by `data.augment_strength`) runs on training batches only.
"""

from __future__ import annotations

import numpy as np

from dlkeras.data import (
    DataInfo,
    Datasets,
    Split,
    balanced_class_weights,
    checks,
    fingerprint,
    pipeline,
    sources,
    splits,
)


def build_augment(strength: float, seed: int):
    """A batch -> batch function applying Keras random-transform layers inside tf.data.

    The layers are called one after another (not wrapped in a Sequential) so that Keras runs
    them with TensorFlow ops inside tf.data under every backend.
    """
    import keras

    layers = [
        keras.layers.RandomRotation(strength / 2, fill_mode="constant", seed=seed, name="rotate"),
        keras.layers.RandomTranslation(
            strength, strength, fill_mode="constant", seed=seed + 1, name="translate"
        ),
        keras.layers.RandomZoom(strength, fill_mode="constant", seed=seed + 2, name="zoom"),
    ]

    def augment(images):
        for layer in layers:
            images = layer(images, training=True)
        return images

    return augment


def build(config, seed: int, preset: str = "") -> Datasets:
    """Loads, checks, splits (stratified) and batches image arrays."""
    images, raw_labels = sources.load_image_arrays(config.source, config.path)
    where = config.path or f"bundled image set {config.source!r}"
    if config.max_examples:
        keep = np.random.default_rng(0).permutation(len(images))[: config.max_examples]
        images, raw_labels = images[np.sort(keep)], raw_labels[np.sort(keep)]
    checks.check_not_empty(len(images), where)
    pixels = images.astype(np.float32)
    checks.check_finite(pixels, f"{where} images")
    scale = 255.0 if pixels.max() > 1.0 else 1.0
    pixels /= scale

    labels_text = np.array([str(v) for v in raw_labels])
    train_index, val_index, test_index = splits.stratified_split(
        labels_text, config.val_fraction, config.test_fraction, seed
    )
    class_names = sorted(set(labels_text[train_index]), key=_natural)
    checks.check_min_classes(class_names, f"{where} (training split)")
    lookup = {name: i for i, name in enumerate(class_names)}
    labels = np.array([lookup[v] for v in labels_text], dtype=np.int64)

    split_index = {"train": train_index, "val": val_index, "test": test_index}
    split_arrays = {name: Split(pixels[i], labels[i], images[i]) for name, i in split_index.items()}
    for name, split in split_arrays.items():
        checks.check_not_empty(len(split.y), f"{where} {name} split")
    num_classes = len(class_names)
    info = DataInfo(
        task="classification",
        input_shape=tuple(int(d) for d in pixels.shape[1:]),
        num_classes=num_classes,
        class_names=tuple(class_names),
        class_weights=balanced_class_weights(labels[train_index], num_classes),
        split_sizes={name: len(index) for name, index in split_index.items()},
        preprocessing={"kind": "images", "scale": scale, "input_shape": list(pixels.shape[1:])},
        fingerprint=fingerprint(images, labels_text.astype("U")),
    )
    augment = build_augment(config.augment_strength, seed) if config.augment else None
    datasets = {
        name: pipeline.make_dataset(
            split.x,
            pipeline.one_hot(split.y, num_classes),
            config.batch_size,
            training=name == "train",
            seed=seed,
            shuffle_buffer=config.shuffle_buffer,
            augment=augment,
        )
        for name, split in split_arrays.items()
    }
    return Datasets(**datasets, info=info, splits=split_arrays)


def _natural(name: str):
    """Sorts "2" before "10" when class names are numbers."""
    return (0, int(name), name) if name.lstrip("-").isdigit() else (1, 0, name)
