"""The image-file pipeline on folders of tiny generated images, including broken files."""

import numpy as np
import pytest
from PIL import Image

from dlkeras import config, data
from dlkeras.data import defects, image_files
from dlkeras.errors import DataError

CLASSES = ("dent", "ok", "rust")


def write_images(folder, per_class=8, size=12):
    rng = np.random.default_rng(0)
    for index, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True)
        for number in range(per_class):
            pixels = rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)
            pixels[..., index] = 255  # a class colour, so the classes differ
            Image.fromarray(pixels).save(folder / name / f"{number}.png")


def recipe(*overrides):
    base = config.load_recipe("effnet_defects")
    return config.apply_overrides(base, ["data.image_size=16", "data.batch_size=4",
                                         "data.augment=false", *overrides])


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "parts"
    write_images(root)
    Image.fromarray(np.full((10, 10), 90, np.uint8), mode="L").save(root / "ok" / "gray.png")
    Image.fromarray(np.full((10, 10, 4), 200, np.uint8), mode="RGBA").save(root / "dent" / "alpha.png")
    Image.fromarray(np.full((10, 10, 3), 30, np.uint8)).save(root / "rust" / "scan.tiff")
    (root / "rust" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(200)))
    (root / "ok" / "empty.png").write_bytes(b"")
    (root / "dent" / "notes.txt").write_text("not an image")
    good = (root / "ok" / "0.png").read_bytes()
    (root / "ok" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "ok" / ".DS_Store").write_bytes(b"\x00")
    return root


def test_folder_with_bad_files_is_read_skipping_and_reporting_them(folder, tmp_path):
    settings = recipe(f"data.path={folder}", f"data.cache_dir={tmp_path / 'cache'}")
    datasets = data.build(settings.data, 0)
    info = datasets.info
    assert info.class_names == CLASSES and info.input_shape == (16, 16, 3)
    skipped = {item["path"].split("/")[-1]: item["reason"] for item in info.preprocessing["skipped_files"]}
    assert set(skipped) == {"corrupt.jpg", "empty.png", "notes.txt", "truncated.png"}
    assert skipped["empty.png"] == "empty file" and skipped["notes.txt"].startswith("not an image")
    assert all(name in info.notes[0] for name in skipped)  # every skipped path is reported
    assert any("2 grayscale/RGBA" in note for note in info.notes)
    assert any("1 image(s) in formats" in note for note in info.notes)  # the TIFF, as a PNG copy
    assert sum(info.split_sizes.values()) == 3 * 8 + 3
    for split in (datasets.train, datasets.val, datasets.test):  # whole epochs, no error
        batches = list(split)
        assert all(x.shape[1:] == (16, 16, 3) and x.dtype == "float32" for x, _ in batches)
        assert all(0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0 for x, _ in batches)
    labels = np.concatenate([np.asarray(y) for _, y in datasets.test]).argmax(axis=1)
    assert np.array_equal(labels, datasets.splits["test"].y)  # evaluation order is kept


def test_csv_of_paths_and_labels(tmp_path):
    write_images(tmp_path / "images", per_class=6)
    rows = [f"images/{name}/{i}.png,{name}" for name in CLASSES for i in range(6)]
    (tmp_path / "labels.csv").write_text("file,kind\n" + "\n".join(rows) + "\n")
    settings = recipe(f"data.path={tmp_path / 'labels.csv'}", "data.image_column=file",
                      "data.label_column=kind", f"data.cache_dir={tmp_path / 'cache'}")
    datasets = data.build(settings.data, 0)
    assert datasets.info.class_names == CLASSES and sum(datasets.info.split_sizes.values()) == 18
    with pytest.raises(DataError, match="column.*'path'.*not found.*'file', 'kind'"):
        data.build(recipe(f"data.path={tmp_path / 'labels.csv'}").data, 0)


def test_augmentation_mixup_and_cutmix_change_training_batches_only(tmp_path):
    write_images(tmp_path / "parts", per_class=8)
    settings = recipe(f"data.path={tmp_path / 'parts'}", "data.augment=true", "data.mixup=0.4",
                      "data.cutmix=1.0", "data.batch_size=16", f"data.cache_dir={tmp_path}")
    datasets = data.build(settings.data, 0)
    images, targets = next(iter(datasets.train))
    targets = np.asarray(targets)
    assert images.shape == (16, 16, 16, 3) and np.isfinite(np.asarray(images)).all()
    assert np.allclose(targets.sum(axis=1), 1, atol=1e-5)
    assert (targets.max(axis=1) < 1).any()  # mixed labels
    clean, clean_targets = next(iter(datasets.test))
    assert set(np.unique(np.asarray(clean_targets))) <= {0.0, 1.0}


def test_user_mistakes_are_explained(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.build(recipe(f"data.path={tmp_path / 'nowhere'}").data, 0)
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="no sub-folders.*sub-folder named after the class"):
        data.build(recipe(f"data.path={tmp_path / 'flat'}").data, 0)
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match="readable images.*empty"):
        data.build(recipe(f"data.path={tmp_path / 'bad'}", f"data.cache_dir={tmp_path}").data, 0)
    with pytest.raises(DataError, match="unknown bundled image source 'defects'"):
        data.build(recipe("data.source=defects").data, 0)


def test_generated_defect_set_is_written_once_atomically(tmp_path):
    folder = defects.ensure_dataset(tmp_path, per_class=2)
    files = sorted(folder.rglob("*.jpg"))
    assert [p.parent.name for p in files] == sorted(c for c in defects.CLASSES for _ in range(2))
    stamps = [p.stat().st_mtime_ns for p in files]
    assert defects.ensure_dataset(tmp_path, per_class=2) == folder
    assert [p.stat().st_mtime_ns for p in files] == stamps  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folder left
    assert "Synthetic" in (folder / "README.txt").read_text()
    paths, labels = image_files.list_folder(folder)
    assert len(paths) == 12 and set(labels) == set(defects.CLASSES)
    with Image.open(files[0]) as image:
        assert image.size == (defects.IMAGE_SIZE, defects.IMAGE_SIZE) and image.mode == "RGB"
