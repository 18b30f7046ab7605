"""Backbone features computed once: for frozen-backbone stages and for the linear probe.

A model built as `inputs -> backbone (nested Model) -> head (nested Model)` with the backbone
frozen gives the same head gradients whether features are recomputed every epoch or cached,
as long as no random augmentation changes the inputs. Caching turns each epoch of such a
stage from a full forward pass of the backbone into a few matrix products.

The features of every split are computed once with the pretrained backbone, before any stage
moves it, from un-augmented examples, and kept in the run directory (`RunDir.backbone_features`),
so a resumed run and the report's linear probe reuse them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlkeras import progress
from dlkeras.data import pipeline
from dlkeras.engine import distribution
from dlkeras.engine.distribution import predict_batches
from dlkeras.models.structure import BACKBONE, HEAD, has_backbone_and_head

SPLITS = ("train", "val", "test")


@dataclass
class Features:
    """Backbone features and integer labels per split, in the order of `datasets.splits`."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]

    @property
    def width(self) -> int:
        return int(self.x["train"].shape[1])


def can_cache(model, stage, augment: bool) -> bool:
    """True when `stage` trains only the head of a backbone/head model on un-augmented data."""
    return stage.trainable == "head" and has_backbone_and_head(model) and not augment


def extract(model, datasets, batch_size: int, augment: bool) -> Features:
    """The backbone's features (inference mode) of every split, with aligned integer labels.

    Each split streams through its own tf.data pipeline, except an augmented training split:
    it is converted from its raw examples instead, so the features are of the real images.
    In a multi-process run every split is converted from its raw examples, each process
    converting (tokenizing, decoding) and computing its own share of the rows only
    (`distribution.own_rows`); the shares are then gathered on every process.
    """
    backbone = model.get_layer(BACKBONE)
    total = sum(len(datasets.splits[name].y) for name in SPLITS)
    print(f"computing backbone features of {total} examples (once; kept in the run)", flush=True)
    started = time.perf_counter()
    x, y = {}, {}
    for name in SPLITS:
        if (name == "train" and augment) or distribution.processes() > 1:
            x[name], y[name] = _from_raw(backbone, datasets, name, batch_size)
        else:
            x[name], y[name] = _from_pipeline(backbone, getattr(datasets, name),
                                              len(datasets.splits[name].y), f"backbone features of {name}")
    print(f"backbone features of width {x['train'].shape[1]} in {time.perf_counter() - started:.1f} s",
          flush=True)
    return Features(x, y)


def _from_pipeline(backbone, dataset, total: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    labels = []

    def inputs():
        for batch_inputs, targets in dataset.as_numpy_iterator():  # numpy feeds every backend
            labels.append(np.argmax(targets, axis=-1) if np.ndim(targets) > 1 else targets)
            yield batch_inputs

    features = predict_batches(backbone, progress.track(inputs(), total, what, size=progress.rows_in))
    return (np.concatenate(features).astype(np.float32, copy=False),
            np.concatenate(labels).astype(np.int64))


def _from_raw(backbone, datasets, name: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    from dlkeras.data.raw import RawInputs, pick

    convert = RawInputs(datasets.info.preprocessing)
    raw = datasets.splits[name].raw
    mine = distribution.own_rows(len(raw))
    predict = distribution.local_predictor(backbone)
    batches = [slice(start, min(start + batch_size, mine.stop))
               for start in range(mine.start, mine.stop, batch_size)]
    features = [np.asarray(predict(convert(pick(raw, rows))),
                           dtype=np.float32)
                for rows in progress.track(batches, mine.stop - mine.start, f"backbone features of {name}",
                                           size=lambda rows: rows.stop - rows.start)]
    local = np.concatenate(features) if features else \
        np.zeros((0, *[d or 0 for d in backbone.output_shape[1:]]), np.float32)
    return (distribution.gather_rows(local, len(raw)),
            np.asarray(datasets.splits[name].y, dtype=np.int64))


def load_or_extract(model, datasets, path: Path, batch_size: int, augment: bool = False) -> Features:
    """The features kept at `path` (a resumed run), else extracted and saved there atomically."""
    if path.is_file():
        return load(path)
    features = extract(model, datasets, batch_size, augment)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp.npz")
    arrays = {f"{n}_{part}": getattr(features, part)[n] for n in SPLITS for part in ("x", "y")}
    np.savez(temp, **arrays)
    temp.replace(path)
    return features


def load(path: Path) -> Features:
    """Features saved by `load_or_extract`."""
    with np.load(path) as stored:
        return Features({n: stored[f"{n}_x"] for n in SPLITS}, {n: stored[f"{n}_y"] for n in SPLITS})


def build(model, datasets, batch_size: int, seed: int, features: Features | None = None):
    """The head model and tf.data pipelines of cached (features, labels) for train and val.

    Args:
        features: computed earlier in this run; None extracts them now.

    Returns:
        (head_model, train_dataset, val_dataset)
    """
    if features is None:
        features = extract(model, datasets, batch_size, augment=False)
    num_classes = datasets.info.num_classes
    train = pipeline.make_dataset(features.x["train"], pipeline.one_hot(features.y["train"], num_classes),
                                  batch_size, training=True, seed=seed)
    val = pipeline.make_dataset(features.x["val"], pipeline.one_hot(features.y["val"], num_classes),
                                batch_size, training=False, seed=seed)
    print("the head trains on the cached backbone features", flush=True)
    return model.get_layer(HEAD), train, val
