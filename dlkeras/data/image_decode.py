"""One image decoder for training (inside tf.data) and for inference (one file at a time).

Both paths go through `decode_image`, so a file reaches the model with the same pixels whether
the training pipeline or predict/export read it: decoded to `channels` channels, resized with
antialiasing to `size` (aspect ratio not kept), rounded and stored as uint8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkeras.errors import DataError


def decode_image(contents, channels: int, size: tuple[int, int]):
    """Encoded image bytes (a string tensor) -> a (height, width, channels) uint8 tensor.

    Resizing an image to its own size returns it unchanged, so every image is resized: the
    same ops run eagerly and inside a tf.data graph, where the decoded size is unknown.
    """
    import tensorflow as tf

    image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def load_image_file(path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image file decoded with `decode_image` (uint8 array).

    Raises:
        DataError: the file does not exist or is not a readable image.
    """
    import tensorflow as tf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist")
    try:
        image = decode_image(tf.io.read_file(str(path)), channels, tuple(size))
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise DataError(f"{path} is not a readable image ({str(error)[:120]})") from None
    return image.numpy()
