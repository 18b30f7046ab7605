"""Frozen-backbone stages train the head on backbone features computed once.

A model built as `inputs -> backbone (nested Model) -> head (nested Model)` with the backbone
frozen gives the same head gradients whether features are recomputed every epoch or cached,
as long as no random augmentation changes the inputs. Caching turns each epoch of such a
stage from a full forward pass of the backbone into a few matrix products.
"""

from __future__ import annotations

import time

import numpy as np

from dlkeras.data import pipeline
from dlkeras.models.structure import BACKBONE, HEAD, has_backbone_and_head


def can_cache(model, stage, augment: bool) -> bool:
    """True when `stage` trains only the head of a backbone/head model on un-augmented data."""
    return stage.trainable == "head" and has_backbone_and_head(model) and not augment


def extract(backbone, dataset) -> tuple[np.ndarray, np.ndarray]:
    """One pass over `dataset`: backbone features (inference mode) and the aligned labels."""
    features, labels = [], []
    for x, y in dataset.as_numpy_iterator():  # numpy feeds every backend
        features.append(np.asarray(backbone.predict_on_batch(x)))
        labels.append(y)
    return np.concatenate(features), np.concatenate(labels)


def build(model, datasets, batch_size: int, seed: int):
    """The head model and tf.data pipelines of cached (features, labels) for train and val.

    Returns:
        (head_model, train_dataset, val_dataset, seconds spent extracting features)
    """
    started = time.perf_counter()
    backbone, head = model.get_layer(BACKBONE), model.get_layer(HEAD)
    train_x, train_y = extract(backbone, datasets.train)
    val_x, val_y = extract(backbone, datasets.val)
    seconds = time.perf_counter() - started
    print(f"cached {len(train_x) + len(val_x)} backbone features of width {train_x.shape[1:]} "
          f"in {seconds:.1f} s; the head trains on them")
    train = pipeline.make_dataset(train_x, train_y, batch_size, training=True, seed=seed)
    val = pipeline.make_dataset(val_x, val_y, batch_size, training=False, seed=seed)
    return head, train, val, seconds
