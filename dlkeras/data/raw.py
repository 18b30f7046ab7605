"""Raw inputs -> model inputs, from the `preprocessing.json` a run (or an export) carries.

Predict and the export parity gate use this, so every artifact is fed exactly the way the
training pipeline fed the model: the same tokenizer and length rule for texts, the same
scalers and vocabularies for tables, the same decoding and resizing for images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlkeras.errors import DataError


def load_preprocessing(folder: Path) -> dict:
    """`preprocessing.json` of a run directory or an export folder."""
    path = Path(folder) / "preprocessing.json"
    if not path.is_file():
        raise DataError(f"{folder} has no preprocessing.json; pass a run directory or an export folder")
    return json.loads(path.read_text())


class RawInputs:
    """Turns batches of raw inputs into model inputs for one run's preprocessing."""

    def __init__(self, preprocessing: dict, folder: Path | None = None):
        self.preprocessing = preprocessing
        self.kind = preprocessing["kind"]
        self.folder = Path(folder) if folder else None
        self._text = None

    def __call__(self, raw):
        """Model inputs for a batch of raw inputs (list/array, or DataFrame for tables)."""
        converters = {
            "text": self.texts,
            "tabular": self.table,
            "images": self.image_arrays,
            "image_folder": self.image_files,
        }
        if self.kind not in converters:
            raise DataError(f"raw inputs of kind {self.kind!r} are not supported here")
        return converters[self.kind](raw)

    # === Kinds ===
    def texts(self, texts):
        if self._text is None:
            from dlkeras.data import tokenize

            source = self.preprocessing["preset"]
            if self.folder and (self.folder / "tokenizer").is_dir():
                source = str(self.folder / "tokenizer")
            tokenizer = tokenize.load_tokenizer(source)
            self._text = tokenize.build_preprocessor(tokenizer, self.preprocessing["sequence_length"])
        texts = [str(t) for t in texts]
        if not texts or not all(t.strip() for t in texts):
            raise DataError("every text to classify must be non-empty")
        batch = self._text(np.array(texts, dtype=object))
        return {name: np.asarray(value) for name, value in batch.items()}

    def table(self, frame):
        from dlkeras.data.tabular import TabularPreprocessor

        preprocessor = TabularPreprocessor.from_dict(self.preprocessing)
        missing = [c for c in [*preprocessor.numeric, *preprocessor.categorical] if c not in frame.columns]
        if missing:
            raise DataError(f"input rows lack column(s) {missing}; the model was trained with "
                            f"{[*preprocessor.numeric, *preprocessor.categorical]}")
        features = preprocessor.transform(frame)
        if not np.isfinite(features).all():
            raise DataError("input rows hold empty or non-numeric values in numeric columns")
        return features

    def image_arrays(self, images):
        """In-memory arrays (N, H, W[, C]) or image file paths, scaled like training."""
        height, width, channels = self.preprocessing["input_shape"]
        if len(images) and isinstance(images[0], (str, Path)):
            images = np.stack([decode_file(p, channels, (height, width)) for p in images])
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.shape[1:] != (height, width, channels):
            raise DataError(f"images must be {height}x{width}x{channels}; got {images.shape[1:]}")
        return images / float(self.preprocessing["scale"])

    def image_files(self, paths):
        size = self.preprocessing["image_size"]
        return np.stack([decode_file(p, 3, (size, size)) for p in paths]).astype(np.float32) / 255.0


def decode_file(path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """Decodes and resizes one image file the way the tf.data pipelines do (uint8 values)."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist")
    try:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise DataError(f"{path} is not a readable image ({str(error)[:120]})") from None
    if tuple(image.shape[:2]) != tuple(size):
        image = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(image, tf.float32)), 0, 255), tf.uint8).numpy()
