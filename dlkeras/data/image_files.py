"""Image classification from image files: a folder of class folders, or a CSV of path,label.

Every file is checked once before training: empty, corrupt, truncated and non-image files,
and decompression bombs (images declaring more than `image_decode.MAX_PIXELS` pixels, never
decoded), are skipped and each skipped path is reported (printed, and listed in metrics.json
and preprocessing.json); a folder without a single readable image is an error. Symbolic links
are followed, and files read from outside the folder through them are reported (`list_folder`);
grayscale and RGBA files are converted to RGB as they are decoded; images in formats tf.data
cannot decode (TIFF, WebP, CMYK JPEG, ...) are converted once to PNG copies under the cache
folder. So no file can stop an epoch half-way.

In tf.data each file is read, decoded, resized to `image_size` squared (aspect ratio not kept,
so no defect at an edge is cropped away), cached in memory as uint8, shuffled, batched,
augmented (training only) and prefetched. Pixels reach the model as float32 RGB in [0, 1];
each backbone applies the normalisation its pretrained weights expect. At inference
`build_raw_converter` decodes files with the same decoder (`image_decode`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from dlkeras import progress
from dlkeras.data import (
    Datasets,
    checks,
    classification,
    defects,
    fingerprint,
    image_decode,
    pipeline,
    shares,
    sources,
)
from dlkeras.errors import DataError


def build(config, seed: int, preset: str = "") -> Datasets:
    """Lists, checks, splits (stratified) and streams the images of `config`."""
    paths, labels, where = list_examples(config)
    if config.max_examples and config.path and len(paths) > config.max_examples:
        keep = classification.subsample(len(paths), config.max_examples)
        paths, labels = paths[keep], labels[keep]
    cache = Path(config.cache_dir).expanduser() if config.cache_dir else defects.default_cache_dir()
    listed = paths
    paths, labels, skipped, converted = scan(paths, labels, cache / "converted")
    if not len(paths):
        raise DataError(f"{where} has no readable images (the data set is empty): "
                        f"{describe(skipped, converted)[0] if skipped else 'no files found'}; "
                        "put JPEG, PNG, BMP, GIF, TIFF or WebP files in its class folders")
    split_index = classification.stratified_indices(labels, config, seed)
    encoded = classification.label_splits(labels, split_index, where)
    info = classification.classification_info(
        encoded,
        input_shape=(config.image_size, config.image_size, 3),
        preprocessing={"kind": "image_folder", "image_size": config.image_size,
                       "pixel_range": [0.0, 1.0], "resize": "bilinear, aspect ratio not kept",
                       "skipped_files": [{"path": p, "reason": r} for p, r in skipped]},
        fingerprint=fingerprint(*[f"{p}:{Path(p).stat().st_size}" for p in paths], labels.astype("U")),
        notes=outside_links(config.path, listed, skipped) + describe(skipped, converted),
    )
    augment = None
    if config.augment:
        from dlkeras.data.augment import build_photo_augment

        augment = build_photo_augment(config.augment_strength, config.mixup, config.cutmix, seed)

    def make(split_paths, one_hot, training: bool):
        return make_image_dataset(split_paths, one_hot, config, training=training, seed=seed,
                                  augment=augment)

    split_paths = {name: paths[index] for name, index in split_index.items()}
    return classification.assemble(split_paths, split_paths, encoded, info, make)


def build_raw_converter(preprocessing: dict, folder: Path | None = None):
    """A function from image file paths to float32 RGB in [0, 1], decoded like training.

    Args:
        preprocessing: the run's `preprocessing.json` (`image_size`).
        folder: unused; decoding needs only the image size.
    """
    size = preprocessing["image_size"]

    def convert(paths):
        images = [image_decode.load_image_file(p, 3, (size, size)) for p in paths]
        return np.stack(images).astype(np.float32) / 255.0

    return convert


def list_examples(config) -> tuple[np.ndarray, np.ndarray, str]:
    """(paths, label names, description) from `data.path` or the bundled generated set."""
    if not config.path:
        if config.source not in sources.BUNDLED_IMAGE_FOLDERS:
            raise DataError(f"unknown bundled image source {config.source!r}; choose one of "
                            f"{list(sources.BUNDLED_IMAGE_FOLDERS)} or --set data.path=FOLDER "
                            "(one sub-folder per class)")
        per_class = -(-config.max_examples // len(defects.CLASSES)) if config.max_examples else None
        folder = defects.ensure_dataset(config.cache_dir, per_class or defects.DEFAULT_PER_CLASS)
        return (*list_folder(folder), f"generated set {folder}")
    path = checks.check_file(config.path, "image folder or CSV")
    if path.is_dir():
        return (*list_folder(path), str(path))
    frame = sources.load_table(path)
    checks.check_columns(frame, [config.image_column, config.label_column], str(path),
                         "data.image_column / data.label_column")
    checks.check_no_missing_labels(frame, config.label_column, str(path))
    files = [str((path.parent / str(p)).expanduser()) for p in frame[config.image_column]]
    return np.array(files), frame[config.label_column].astype(str).to_numpy(), str(path)


def list_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every non-hidden file under each class sub-folder of `folder`, with the folder name.

    Symbolic links are followed wherever they point: class folders, folders inside them and
    files may be links, since data sets are often assembled from links into a shared store (a
    CSV of paths may name any file, too). Each real folder is visited once per class, so a
    link loop ends. Every listed path is checked before use (`check_image`: only regular
    image files are read, so a link to a device, a pipe or nowhere is skipped with a note),
    and `outside_links` reports the files read from outside `folder`.
    """
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder} has no sub-folders; put each class's images in a sub-folder "
                        "named after the class (e.g. scratch/001.jpg, clean/002.jpg)")
    paths, labels = [], []
    for class_dir in classes:
        for file in files_under(class_dir):
            paths.append(str(file))
            labels.append(class_dir.name)
    return np.array(paths, dtype=str), np.array(labels, dtype=str)


def files_under(root: Path) -> list[Path]:
    """Non-hidden entries that are not folders, under `root`, links followed, sorted."""
    found, seen, pending = [], set(), [root]
    while pending:
        directory = pending.pop()
        real = directory.resolve()
        if real in seen:  # a link loop, or two links to one folder
            continue
        seen.add(real)
        for entry in directory.iterdir():
            if not entry.name.startswith("."):
                (pending if entry.is_dir() else found).append(entry)
    return sorted(found)


def outside_links(data_path: str, listed, skipped) -> list[str]:
    """A note on the usable files of an image folder that links lead outside of (none for a
    CSV of paths, whose paths may name any file)."""
    folder = Path(data_path).expanduser() if data_path else None
    if not (folder and folder.is_dir()):
        return []
    root, unusable = folder.resolve(), {path for path, _ in skipped}
    outside = [p for p in listed if p not in unusable and not Path(p).resolve().is_relative_to(root)]
    if not outside:
        return []
    shown = "; ".join(f"{p} -> {Path(p).resolve()}" for p in outside[:3])
    return [f"{len(outside)} file(s) are symbolic links to files outside {folder}, read as "
            f"their targets ({shown}{' ...' if len(outside) > 3 else ''})"]


def scan(paths, labels, converted_dir: Path):
    """Checks every file once; returns usable (paths, labels), skipped and converted lists.

    In a multi-worker run each process checks its share of the files (`shares.share`); a
    converted copy another process made is made again here when this host lacks it.

    Returns:
        (paths, labels, [(path, reason)] skipped, {"rgb": n, "copies": n} converted).
    """
    def check_share(share: list[str]) -> list:
        return [list(check_image(Path(path), converted_dir))
                for path in progress.track(share, len(share), "checking image files")]

    results = shares.share(check_share, [str(path) for path in paths], "checking image files")
    usable_paths, keep, skipped, converted = [], [], [], {"rgb": 0, "copies": 0}
    for index, (path, (usable, reason, change)) in enumerate(zip(paths, results, strict=True)):
        if usable is None:
            skipped.append((str(path), reason))
            continue
        if change == "copy" and not Path(usable).is_file():
            usable = check_image(Path(path), converted_dir)[0] or usable
        converted["rgb"] += change == "rgb"
        converted["copies"] += change == "copy"
        usable_paths.append(usable)
        keep.append(index)
    return np.array(usable_paths, dtype=str), labels[keep], skipped, converted


def check_image(path: Path, converted_dir: Path) -> tuple[str | None, str, str]:
    """(the path tf.data should read for `path`, "", what changes), or (None, why not, "").

    What changes: "rgb" (decoded to RGB from grayscale, RGBA or a palette), "copy" (read from
    a PNG copy under `converted_dir`) or "". `image_decode.open_image` reads the header
    first, so a decompression bomb is skipped without being decoded.
    """
    image, reason = image_decode.open_image(path)
    if image is None:
        return None, reason, ""
    with image:
        if not image_decode.needs_conversion(path, image):
            return str(path), "", "rgb" if image.mode != "RGB" else ""
        return convert_copy(path, image, converted_dir), "", "copy"


def convert_copy(path: Path, image, converted_dir: Path) -> str:
    """Writes `image` as an RGB PNG under `converted_dir` (once, atomically); returns its path."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    target = converted_dir / f"{key[:20]}.png"
    if not target.is_file():
        converted_dir.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        image.convert("RGB").save(temp, format="PNG")
        temp.replace(target)
    return str(target)


def describe(skipped, converted) -> list[str]:
    """Human-readable notes: every skipped path with its reason, and the conversions."""
    notes = []
    if skipped:
        listed = "; ".join(f"{path} ({reason})" for path, reason in skipped)
        notes.append(f"skipped {len(skipped)} unreadable file(s): {listed}")
    if converted["rgb"]:
        notes.append(f"{converted['rgb']} grayscale/RGBA/palette image(s) are converted to RGB")
    if converted["copies"]:
        notes.append(f"{converted['copies']} image(s) in formats tf.data cannot decode were "
                     "converted to PNG copies in the cache folder")
    return notes


def make_image_dataset(paths, labels, config, training: bool, seed: int, augment=None):
    """Read -> decode -> resize -> cache (uint8) -> shuffle -> batch -> augment -> prefetch.

    In a multi-process run a training dataset keeps this process's slice of each global batch,
    cut before scaling and augmenting (`pipeline.process_share`); decoding is cached per process.
    """
    import tensorflow as tf

    size = config.image_size

    def load(path, label):
        return image_decode.decode_image(tf.io.read_file(path), 3, (size, size)), label

    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(paths, dtype=str), labels))
    dataset = dataset.map(pipeline.as_written(load), num_parallel_calls=pipeline.parallelism(),
                          deterministic=True)
    dataset = dataset.cache()
    if training:
        dataset = pipeline.epoch_shuffle(dataset, seed, len(labels), config.shuffle_buffer)
    dataset, sliced = pipeline.process_share(dataset.batch(config.batch_size), training)
    dataset = dataset.map(pipeline.as_written(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y)),
                          num_parallel_calls=pipeline.parallelism(), deterministic=True)
    if training and augment is not None:
        dataset = dataset.map(pipeline.as_written(augment), num_parallel_calls=pipeline.parallelism(),
                              deterministic=True)
    dataset = dataset.prefetch(pipeline.PREFETCH_BATCHES).with_options(pipeline.dataset_options())
    setattr(dataset, pipeline.SLICED, sliced)
    return dataset


def build_raw_signature(preprocessing: dict, folder: Path | None = None):
    """The SavedModel's raw-input signature: encoded image files (`image_bytes`) in, decoded and
    resized in the graph as in training, scaled to [0, 1] (`image_decode.build_bytes_signature`).

    Args:
        preprocessing: the run's `preprocessing.json` (`image_size`, class names).
        folder: unused.
    """
    size = preprocessing["image_size"]
    return image_decode.build_bytes_signature(preprocessing, 3, (size, size), 255.0,
                                              image_decode.encoded_image_file)
