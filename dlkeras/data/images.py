"""Image classification from in-memory arrays: bundled digit sets or a user `.npz`.

Pixels are scaled to [0, 1] in the pipeline; augmentation (small rotations, shifts and zooms,
scaled by `data.augment_strength`) runs on training batches only. At inference
`build_raw_converter` takes arrays or image files and scales them the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkeras.data import Datasets, checks, classification, fingerprint, sources
from dlkeras.errors import DataError


def build(config, seed: int, preset: str = "") -> Datasets:
    """Loads, checks, splits (stratified) and batches image arrays."""
    images, raw_labels = sources.load_image_arrays(config.source, config.path)
    where = config.path or f"bundled image set {config.source!r}"
    if config.max_examples:
        keep = classification.subsample(len(images), config.max_examples)
        images, raw_labels = images[keep], raw_labels[keep]
    checks.check_not_empty(len(images), where)
    pixels = images.astype(np.float32)
    checks.check_finite(pixels, f"{where} images")
    scale = 255.0 if pixels.max() > 1.0 else 1.0
    pixels /= scale

    labels_text = np.array([str(v) for v in raw_labels])
    split_index = classification.stratified_indices(labels_text, config, seed)
    labels = classification.label_splits(labels_text, split_index, where, natural=True)
    info = classification.classification_info(
        labels,
        input_shape=(int(d) for d in pixels.shape[1:]),
        preprocessing={"kind": "images", "scale": scale, "input_shape": list(pixels.shape[1:])},
        fingerprint=fingerprint(images, labels_text.astype("U")),
    )
    augment = None
    if config.augment:
        from dlkeras.data.augment import build_geometric_augment

        augment = build_geometric_augment(config.augment_strength, seed)
    return classification.assemble(
        {name: pixels[index] for name, index in split_index.items()},
        {name: images[index] for name, index in split_index.items()},
        labels, info, classification.array_datasets(config, seed, augment=augment),
    )


def build_raw_converter(preprocessing: dict, folder: Path | None = None):
    """A function from image arrays (N, H, W[, C]) or image file paths to model inputs.

    Args:
        preprocessing: the run's `preprocessing.json` (`input_shape`, `scale`).
        folder: unused; image arrays need nothing beside the preprocessing.
    """
    height, width, channels = preprocessing["input_shape"]
    scale = float(preprocessing["scale"])

    def convert(images):
        if len(images) and isinstance(images[0], (str, Path)):
            from dlkeras.data.image_decode import load_image_file

            images = np.stack([load_image_file(p, channels, (height, width)) for p in images])
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.shape[1:] != (height, width, channels):
            raise DataError(f"images must be {height}x{width}x{channels}; got {images.shape[1:]}")
        return images / scale

    return convert


def build_raw_signature(preprocessing: dict, folder: Path | None = None):
    """The SavedModel's raw-input signature: encoded images (`image_bytes`) in, decoded and
    resized in the graph like image files at predict time, divided by the training scale.

    The parity gate feeds each test image array as a lossless PNG; arrays that are not 8-bit
    pixel values (fractions, values above 255) have no such encoding and are refused.

    Args:
        preprocessing: the run's `preprocessing.json` (`input_shape`, `scale`, class names).
        folder: unused.
    """
    from dlkeras.data import image_decode

    height, width, channels = preprocessing["input_shape"]
    return image_decode.build_bytes_signature(preprocessing, channels, (height, width),
                                              float(preprocessing["scale"]), encode_png)


def encode_png(image) -> bytes:
    """An image array of 8-bit pixel values (H, W[, C]) as PNG bytes, or a file's bytes.

    Raises:
        DataError: the values are not whole numbers from 0 to 255.
    """
    if isinstance(image, (str, Path)):
        from dlkeras.data.image_decode import encoded_image_file

        return encoded_image_file(image)
    import tensorflow as tf

    pixels = np.asarray(image)
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255 or not np.all(pixels == np.round(pixels))):
        raise DataError("image arrays fed as encoded images must hold whole pixel values from 0 "
                        "to 255")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return tf.io.encode_png(pixels.astype(np.uint8)).numpy()
