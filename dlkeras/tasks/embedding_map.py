"""Where the model puts the test examples: a 2-D map of their embeddings and a projector export.

The embedding of an example is what the classifier's last step sees: the backbone's output
for a backbone/head model (see `models.structure`), else the input of the model's last layer.
It is computed with the final, trained weights (the feature cache holds the pretrained
backbone's features, which show what the model started from, not what it learned).

report/embeddings.png maps them to 2-D (PCA to 50 dimensions, then t-SNE; PCA alone for few
examples), coloured by true class, misclassified examples marked with a cross. The same
embeddings, with true and predicted label per row, go to TensorBoard's projector in
logs/projector/ (`RunDir.projector_dir`): `tensorboard --logdir RUN/logs`, tab "Projector".
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from dlkeras.io import pyplot, save_figure_atomic, write_text_atomic
from dlkeras.models.structure import BACKBONE, HEAD, has_backbone_and_head

SEED = 0  # the same points and layout for the same model, run after run
MAX_POINTS = 2000  # t-SNE's cost grows faster than the points, and more would hide each other
MAX_PROJECTOR_ROWS = 10000  # the projector samples 10000 points for t-SNE itself
TSNE_MIN_POINTS = 100  # t-SNE needs a neighbourhood (perplexity 30) well inside the data
PCA_DIMENSIONS = 50  # t-SNE on 50 principal components: faster, and less noise
# Barnes-Hut t-SNE's steps slow down as the map spreads out: on 1000 points of width 384, steps
# 500-1000 took 6x the CPU time of steps 0-500 and lowered the KL divergence by 2% only
TSNE_STEPS = 500
TENSOR_NAME = "embedding/.ATTRIBUTES/VARIABLE_VALUE"  # the variable's key in the checkpoint
MAX_COLUMN_CHARACTERS = 200
HEAD_BATCH = 1024  # the head on embeddings: a few matrix products per batch


def write(model, datasets, probabilities: np.ndarray, run_dir, columns: dict | None = None,
          embeddings: np.ndarray | None = None) -> dict:
    """Writes report/embeddings.png and the projector export of the test split.

    Args:
        model: the trained classifier.
        datasets: `data.Datasets`; `datasets.test` is streamed through the embedding model.
        probabilities: the model's test probabilities, in the order of `datasets.test`.
        run_dir: the run's `RunDir`.
        columns: extra projector metadata per test example (e.g. {"text": [...]}).
        embeddings: the test embeddings when the report computed them already (`test_outputs`);
            None computes them here.

    Returns:
        What was written (paths relative to the run), for metrics.json.
    """
    names = [str(name) for name in datasets.info.class_names]
    truth = np.asarray(datasets.splits["test"].y, dtype=np.int64)
    predicted = np.asarray(probabilities).argmax(axis=1)
    if embeddings is None:
        embeddings = compute_embeddings(model, datasets.test)
    chosen = sample(len(embeddings), MAX_POINTS)
    points, method = project_2d(embeddings[chosen])
    path = run_dir.report_dir / "embeddings.png"
    title = (f"Test embeddings, {method} of {len(chosen)}"
             f"{'' if len(chosen) == len(embeddings) else f' of {len(embeddings)}'} examples "
             f"(width {embeddings.shape[1]})")
    plot_map(points, truth[chosen], predicted[chosen], names, path, title)
    rows = sample(len(embeddings), MAX_PROJECTOR_ROWS)
    metadata = {"label": [names[i] for i in truth[rows]],
                "predicted": [names[i] for i in predicted[rows]]}
    metadata.update({key: [str(values[i]) for i in rows] for key, values in (columns or {}).items()})
    export_projector(embeddings[rows], metadata, run_dir.projector_dir)
    return {"embeddings_png": str(path.relative_to(run_dir.path)), "embedding_method": method,
            "embedding_points": int(len(chosen)), "embedding_width": int(embeddings.shape[1]),
            "projector": str(run_dir.projector_dir.relative_to(run_dir.path))}


def extra_report(model, datasets, probabilities, run_dir, embeddings=None) -> dict:
    """The map and projector export alone: the report extra of input kinds with no other."""
    return write(model, datasets, probabilities, run_dir, embeddings=embeddings)


# === Embeddings ===


def embedding_model(model):
    """The model from the classifier's inputs to the input of its classifying step."""
    import keras

    if has_backbone_and_head(model):
        return model.get_layer(BACKBONE)
    return keras.Model(model.inputs, model.layers[-1].input, name="embeddings")


def test_outputs(model, dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities, embeddings) of every example of `dataset`.

    A backbone/head model runs its backbone once: the embeddings are the backbone's outputs
    and the head turns them into the probabilities, as the whole model would. Other models
    predict as usual; their embeddings (None here) are cheap to compute when a map needs them.
    """
    if not has_backbone_and_head(model):
        return np.asarray(model.predict(dataset, verbose=0), dtype=np.float64), None
    embeddings = compute_embeddings(model, dataset)
    head = model.get_layer(HEAD)
    probabilities = head.predict(embeddings, batch_size=HEAD_BATCH, verbose=0)
    return np.asarray(probabilities, dtype=np.float64), embeddings


def compute_embeddings(model, dataset) -> np.ndarray:
    """(examples, width) float32 embeddings of every example of a batched (inputs, labels) set."""
    from dlkeras.engine.distribution import predict_batches

    def inputs():
        for batch_inputs, _ in dataset.as_numpy_iterator():  # numpy feeds every backend
            yield batch_inputs

    outputs = predict_batches(embedding_model(model), inputs())
    embeddings = np.concatenate([np.asarray(batch, dtype=np.float32) for batch in outputs])
    return embeddings.reshape(len(embeddings), -1)


def sample(count: int, limit: int) -> np.ndarray:
    """Sorted indices of a seeded sample of at most `limit` of `count` examples."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(SEED).choice(count, limit, replace=False))


def project_2d(embeddings: np.ndarray) -> tuple[np.ndarray, str]:
    """2-D coordinates and the method's name: PCA to 50 dimensions then t-SNE, else PCA alone.

    Fewer than `TSNE_MIN_POINTS` examples get PCA alone: t-SNE's neighbourhoods would span
    most of the data. Constant embeddings (nothing to project) map to the origin.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    count, width = embeddings.shape
    if count < 2 or not np.ptp(embeddings, axis=0).any():
        return np.zeros((count, 2), np.float32), "no spread"
    if count < TSNE_MIN_POINTS:
        points = PCA(min(2, width), random_state=SEED).fit_transform(embeddings)
        return np.pad(points, ((0, 0), (0, 2 - points.shape[1]))), "PCA"
    reduced = embeddings
    if width > PCA_DIMENSIONS:
        reduced = PCA(PCA_DIMENSIONS, random_state=SEED).fit_transform(embeddings)
    tsne = TSNE(2, perplexity=min(30.0, (count - 1) / 3), init="pca", learning_rate="auto",
                max_iter=TSNE_STEPS, random_state=SEED)
    method = "t-SNE" if width <= PCA_DIMENSIONS else f"PCA to {PCA_DIMENSIONS} + t-SNE"
    # one thread: its OpenMP steps wait on each other, and on 2 busy cores 2 threads took
    # 3.5x the time of one (1000 points); on idle cores one thread costs about a second more
    with threadpool_limits(1):
        return tsne.fit_transform(reduced), method


def plot_map(points, truth, predicted, class_names, path: Path, title: str) -> None:
    """Points coloured by true class, misclassified ones as crosses, one legend entry per class."""
    plt = pyplot()
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    figure, axis = plt.subplots(figsize=(8.5, 6.5))
    for index, name in enumerate(class_names):
        members = truth == index
        if not members.any():
            continue
        colour = colours(index % colours.N)
        right, wrong = members & (predicted == truth), members & (predicted != truth)
        axis.scatter(points[right, 0], points[right, 1], s=10, color=colour, alpha=0.75,
                     label=f"{name} ({members.sum()})")
        axis.scatter(points[wrong, 0], points[wrong, 1], s=28, color=colour, marker="x",
                     linewidths=1.2)
    if (predicted != truth).any():
        axis.scatter([], [], marker="x", color="black", label="misclassified")
    axis.set(title=title, xticks=[], yticks=[])
    if len(class_names) <= 30:
        axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, markerscale=1.5,
                    title="true class")
    figure.tight_layout()
    save_figure_atomic(figure, path, dpi=100)


# === TensorBoard projector ===


def export_projector(embeddings: np.ndarray, metadata: dict[str, list[str]], folder: Path) -> None:
    """Writes embeddings (a checkpoint), metadata.tsv and projector_config.pbtxt to `folder`.

    TensorFlow writes the checkpoint whatever the Keras backend. The folder also gets an
    event file, so TensorBoard lists it as a run when pointed at a parent folder. It is
    written beside `folder` and renamed into place, replacing an earlier export.

    Args:
        metadata: columns of one string per embedding row (label, predicted, ...).
    """
    import tensorflow as tf
    from tensorboard.plugins import projector

    temp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        with tf.device("/CPU:0"):
            variable = tf.Variable(np.asarray(embeddings, np.float32), trainable=False,
                                   name="embedding")
        tf.train.Checkpoint(embedding=variable).save(str(temp / "embedding.ckpt"))
        write_text_atomic(temp / "metadata.tsv", metadata_tsv(metadata))
        config = projector.ProjectorConfig()
        entry = config.embeddings.add()
        entry.tensor_name, entry.metadata_path = TENSOR_NAME, "metadata.tsv"
        projector.visualize_embeddings(str(temp), config)
        writer = tf.summary.create_file_writer(str(temp))
        with writer.as_default():
            tf.summary.text("embeddings", f"{len(embeddings)} test examples of width "
                            f"{embeddings.shape[1]}: {', '.join(metadata)} per row", step=0)
        writer.close()
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temp, folder)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def metadata_tsv(columns: dict[str, list[str]]) -> str:
    """The projector's metadata: a header row (two or more columns), then one row per point."""
    def clean(text: str) -> str:  # a tab or line break would split the row
        text = " ".join(str(text).split())
        return text if len(text) <= MAX_COLUMN_CHARACTERS else text[: MAX_COLUMN_CHARACTERS - 3] + "..."

    names = list(columns)
    lines = ["\t".join(names)] if len(names) > 1 else []
    lines += ["\t".join(clean(value) for value in row) for row in zip(*columns.values())]
    return "\n".join(lines) + "\n"
