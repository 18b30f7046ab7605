"""The embedding map of the test split and its TensorBoard projector export."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from dlkeras.runs import RunDir
from dlkeras.tasks import embedding_map


def separable(per_class: int, width: int, classes: int = 3, seed: int = 0):
    """Gaussian blobs far apart: (embeddings, labels)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    centres = rng.normal(0, 8, (classes, width))
    return (centres[labels] + rng.normal(0, 1, (len(labels), width))).astype(np.float32), labels


def neighbours_agree(points: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose nearest other point has the same label."""
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return float((labels[distances.argmin(axis=1)] == labels).mean())


def pixel_spread(path) -> float:
    from PIL import Image

    return float(np.asarray(Image.open(path).convert("L"), dtype=np.float32).std())


@pytest.mark.parametrize("per_class, method", [(60, "PCA to 50 + t-SNE"), (10, "PCA")])
def test_separable_classes_stay_apart_on_the_map(per_class, method, tmp_path):
    embeddings, labels = separable(per_class, width=64)
    points, used = embedding_map.project_2d(embeddings)
    assert used == method and points.shape == (len(labels), 2)
    assert neighbours_agree(points, labels) > 0.95
    predicted = labels.copy()
    predicted[:3] = (labels[:3] + 1) % 3
    path = tmp_path / "embeddings.png"
    embedding_map.plot_map(points, labels, predicted, ["bag", "bill", "late"], path, used)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pixel_spread(path) > 10  # drawn points and legend, not a blank canvas


def test_constant_embeddings_map_to_one_point():
    points, method = embedding_map.project_2d(np.ones((5, 4), np.float32))
    assert method == "no spread" and not points.any()


def test_sample_is_seeded_and_capped():
    chosen = embedding_map.sample(5000, 2000)
    assert len(chosen) == len(set(chosen)) == 2000 and np.all(np.diff(chosen) > 0)
    assert np.array_equal(chosen, embedding_map.sample(5000, 2000))
    assert np.array_equal(embedding_map.sample(7, 2000), np.arange(7))


def read_projector(folder):
    """(config, metadata rows with header, checkpointed embeddings) of a projector export."""
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorboard.plugins import projector

    config = text_format.Parse((folder / "projector_config.pbtxt").read_text(),
                               projector.ProjectorConfig())
    (entry,) = config.embeddings
    rows = (folder / entry.metadata_path).read_text().splitlines()
    stored = tf.train.load_checkpoint(str(folder)).get_tensor(entry.tensor_name)
    return config, rows, stored


def test_projector_export_loads_back(tmp_path):
    embeddings, labels = separable(4, width=6)
    texts = [f"ticket {i}\twith a tab\nand a line break" for i in range(len(labels))]
    metadata = {"label": [str(v) for v in labels], "predicted": [str(v) for v in labels[::-1]],
                "text": texts}
    folder = tmp_path / "logs" / "projector"
    embedding_map.export_projector(embeddings, metadata, folder)
    embedding_map.export_projector(embeddings, metadata, folder)  # replaces, never duplicates

    _, rows, stored = read_projector(folder)
    assert np.array_equal(stored, embeddings)
    assert rows[0] == "label\tpredicted\ttext" and len(rows) - 1 == len(embeddings)
    assert rows[1].split("\t") == ["0", "2", "ticket 0 with a tab and a line break"]
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in folder.parent.iterdir()) == ["projector"]  # no temp folder left


def tiny_classifier(backbone_and_head: bool):
    """inputs(6) -> 4 features -> 3 classes, as one model or as nested backbone and head."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="x")
    dense = keras.layers.Dense(4, activation="tanh", name="features")
    output = keras.layers.Dense(3, activation="softmax", name="head_output")
    if not backbone_and_head:
        return keras.Model(inputs, output(dense(inputs)), name="plain"), keras.Model(inputs, dense(inputs))
    backbone = keras.Model(inputs, dense(inputs), name="backbone")
    head_input = keras.Input((4,), name="head_features")
    head = keras.Model(head_input, output(head_input), name="head")
    return keras.Model(inputs, head(backbone(inputs)), name="nested"), backbone


@pytest.mark.parametrize("backbone_and_head", [True, False])
def test_write_maps_the_input_of_the_classifying_layer(backbone_and_head, tmp_path):
    import tensorflow as tf

    model, features = tiny_classifier(backbone_and_head)
    x = np.random.default_rng(1).normal(size=(11, 6)).astype(np.float32)
    y = np.array([0, 1, 2] * 3 + [0, 1])
    datasets = SimpleNamespace(
        test=tf.data.Dataset.from_tensor_slices((x, np.eye(3)[y])).batch(4),
        splits={"test": SimpleNamespace(y=y)},
        info=SimpleNamespace(class_names=("bag", "bill", "late")),
    )
    probabilities = model.predict(x, verbose=0)
    run_dir = RunDir(tmp_path)
    written = embedding_map.write(model, datasets, probabilities, run_dir,
                                  columns={"id": [f"#{i}" for i in range(11)]})

    assert written["embeddings_png"] == "report/embeddings.png" and written["embedding_points"] == 11
    assert pixel_spread(run_dir.report_dir / "embeddings.png") > 10
    _, rows, stored = read_projector(run_dir.projector_dir)
    np.testing.assert_allclose(stored, features.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    names = ["bag", "bill", "late"]
    assert rows[1:] == [f"{names[t]}\t{names[p]}\t#{i}"
                        for i, (t, p) in enumerate(zip(y, probabilities.argmax(axis=1)))]


def test_text_report_puts_each_text_beside_its_point(tmp_path):
    import tensorflow as tf

    from dlkeras.tasks import text_report

    model, _ = tiny_classifier(backbone_and_head=True)
    x = np.random.default_rng(2).normal(size=(6, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    texts = np.array([f"ticket {i}:\tlost bag" for i in range(6)], dtype=object)
    datasets = SimpleNamespace(
        test=tf.data.Dataset.from_tensor_slices((x, np.eye(3)[y])).batch(4),
        splits={"test": SimpleNamespace(y=y, raw=texts)},
        info=SimpleNamespace(class_names=("bag", "bill", "late")),
    )
    extra = text_report.extra_report(model, datasets, model.predict(x, verbose=0), RunDir(tmp_path))

    assert "confidently_wrong" in extra and extra["embedding_points"] == 6
    _, rows, _ = read_projector(tmp_path / extra["projector"])
    assert rows[0] == "label\tpredicted\ttext"
    assert [row.split("\t")[2] for row in rows[1:]] == [f"ticket {i}: lost bag" for i in range(6)]


def test_image_run_reports_its_embedding_map(tmp_path):
    """cnn_digits end to end on its SMOKE settings, shortened to one epoch."""
    from dlkeras import config
    from dlkeras.engine.run import train_recipe

    module = config.load_recipe_module("cnn_digits")
    recipe = config.apply_overrides(module.RECIPE, [*module.SMOKE, "data.max_examples=200",
                                                    "train.epochs=1"])
    run_dir, _ = train_recipe(recipe, tmp_path)

    metrics = json.loads(run_dir.metrics_json.read_text())
    extra, test = metrics["extra"], metrics["model"]["examples"]
    assert extra["embeddings_png"] == "report/embeddings.png" and extra["embedding_points"] == test
    assert pixel_spread(run_dir.path / extra["embeddings_png"]) > 10
    _, metadata, stored = read_projector(run_dir.path / extra["projector"])
    assert stored.shape == (test, 16) and len(metadata) == test + 1  # model.units=(16,) in SMOKE
    assert run_dir.projector_dir == run_dir.path / extra["projector"]
