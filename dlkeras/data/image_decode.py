"""One image decoder for training (inside tf.data) and for inference (one file at a time).

Both paths go through `decode_image`, so a file reaches the model with the same pixels whether
the training pipeline or predict/export read it: decoded to `channels` channels, resized with
antialiasing to `size` (aspect ratio not kept), rounded and stored as uint8.

Before either path decodes a file, `open_image` opens it with Pillow, which reads only the
header first: an image declaring more than `MAX_PIXELS` pixels (a decompression bomb: a small
file that would decode to gigabytes) is refused before a single pixel is decoded; then Pillow
decodes it fully, which finds truncated and corrupt files. Files tf.data cannot decode
(`needs_conversion`: TIFF, WebP, CMYK JPEG, ...) are converted to RGB PNG first, on disk for
training (`image_files`) and in memory at inference.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import Path

import numpy as np

from dlkeras.errors import DataError

# Pillow's own warning threshold (about 9459 x 9459): 268 MB as RGB once decoded, 1 GB as float32
MAX_PIXELS = 89_478_485
NATIVE_FORMATS = ("JPEG", "PNG", "GIF", "BMP")  # what tf.io.decode_image reads
NATIVE_MODES = ("RGB", "L", "RGBA", "LA", "P")


def decode_image(contents, channels: int, size: tuple[int, int]):
    """Encoded image bytes (a string tensor) -> a (height, width, channels) uint8 tensor.

    Resizing an image to its own size returns it unchanged, so every image is resized: the
    same ops run eagerly and inside a tf.data graph, where the decoded size is unknown.
    """
    import tensorflow as tf

    image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def open_image(path: Path):
    """`path` opened and fully decoded by Pillow, unless it is unusable.

    Symbolic links are followed; only regular files are read (a link to a device or a pipe is
    refused, never read).

    Returns:
        (the Pillow image, "") or (None, why the file cannot be used). Close the image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        return None, "file does not exist"
    if not path.is_file():
        return None, "not a regular file"
    if path.stat().st_size == 0:
        return None, "empty file"
    try:
        with warnings.catch_warnings():  # the size is checked below, with a clearer message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
    except Image.DecompressionBombError as error:  # Pillow's own limit: twice MAX_PIXELS
        found = re.search(r"\((\d+) pixels\)", str(error))
        return None, _bomb(f"{int(found.group(1)):,}" if found else "too many")
    except UnidentifiedImageError as error:
        return None, f"not an image ({_first_line(error)})"
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as error:
        return None, f"corrupt image ({_first_line(error)})"
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        return None, _bomb(f"{width * height:,} ({width}x{height})")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as error:
        image.close()
        return None, f"corrupt or truncated image ({_first_line(error)})"
    return image, ""


def needs_conversion(path: Path, image) -> bool:
    """True when tf.data cannot decode the file itself, so it must be converted to an RGB PNG
    first: a format or mode TensorFlow lacks, or a file its decoder (stricter than Pillow's on
    some JPEGs) refuses."""
    import tensorflow as tf

    if image.format not in NATIVE_FORMATS or image.mode not in NATIVE_MODES:
        return True
    try:
        tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        return True
    return False


def load_image_file(path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image file decoded with `decode_image` (uint8 array), checked like training files.

    Raises:
        DataError: the file does not exist or is not a readable image (corrupt, truncated, a
            decompression bomb); the message names it.
    """
    return decode_image(encoded_image_file(path), channels, tuple(size)).numpy()


def encoded_image_file(path) -> bytes:
    """The bytes of one image file that `decode_image` reads: the file itself, or an RGB PNG of
    it when TensorFlow cannot decode it (`needs_conversion`), after checking it like training.

    Raises:
        DataError: the file does not exist or is not a readable image; the message names it.
    """
    path = Path(path)
    image, reason = open_image(path)
    if image is None:
        raise DataError(f"image file {path}: {reason}; pass a readable image file (JPEG, PNG, "
                        "BMP, GIF, TIFF, WebP, ...)")
    with image:
        if needs_conversion(path, image):
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
            return buffer.getvalue()
    return path.read_bytes()


def build_bytes_signature(preprocessing: dict, channels: int, size: tuple[int, int], scale: float,
                          encode):
    """The raw-input signature of image classifiers: encoded images (`image_bytes`: what
    `tf.io.decode_image` reads, such as JPEG, PNG, GIF, BMP) decoded and resized in the graph
    by `decode_image`, as training did, then divided by `scale`.

    Args:
        preprocessing: the run's `preprocessing.json` (its class names).
        encode: one raw test input (a file path or an image array) -> its encoded bytes, for the
            parity gate's feed.
    """
    import tensorflow as tf

    from dlkeras.data import raw_graph
    from dlkeras.data.raw import pick

    def decode_one(contents):
        return decode_image(contents, channels, size)

    def model_inputs(raw):
        images = tf.map_fn(decode_one, raw["image_bytes"],
                           fn_output_signature=tf.TensorSpec([*size, channels], tf.uint8))
        return tf.cast(images, tf.float32) / scale

    def feed(split, index):
        return {"image_bytes": np.array([encode(item) for item in pick(split.raw, index)],
                                        dtype=object)}

    return raw_graph.RawSignature(
        spec={"image_bytes": tf.TensorSpec([None], tf.string, name="image_bytes")},
        model_inputs=model_inputs,
        outputs=raw_graph.classification_outputs(preprocessing["class_names"]),
        feed=feed,
        comparable=raw_graph.probabilities,
    )


def _bomb(pixels: str) -> str:
    return (f"decompression bomb: declares {pixels} pixels, more than {MAX_PIXELS:,}; never "
            "decoded (downscale it first)")


def _first_line(error: Exception) -> str:
    lines = str(error).splitlines() or [type(error).__name__]
    return lines[0][:120]
