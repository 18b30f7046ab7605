"""Image-classification extras for the test split: misclassified images and Grad-CAM heat-maps.

Registered in `tasks.classification.EXTRA_REPORTS` for `data.kind="image_folder"`. Writes
report/misclassified.png (a grid of wrongly classified test images, true -> predicted) and
report/gradcam.png (test images beside the Grad-CAM map of their predicted class), and
report/embeddings.png with the projector export (`tasks.embedding_map`). Grad-CAM
weights the last convolutional feature map of the backbone by the gradient of the class score
(Selvaraju et al., 2017); the gradient is taken with each backend's own autodiff (TensorFlow,
JAX, PyTorch), so the maps are the same whichever backend trained the model.
"""

from __future__ import annotations

import os

import numpy as np

from dlkeras.io import pyplot, save_figure_atomic
from dlkeras.models.structure import BACKBONE, HEAD
from dlkeras.tasks import embedding_map

MAX_MISCLASSIFIED = 16
GRADCAM_IMAGES = 8


def extra_report(model, datasets, probabilities, run_dir,
                 embeddings=None) -> dict:
    """Writes the misclassified grid, Grad-CAM and embedding-map PNGs; returns what was written."""
    images = np.concatenate([np.asarray(x) for x, _ in datasets.test])
    truth = datasets.splits["test"].y
    predicted = probabilities.argmax(axis=1)
    names = datasets.info.class_names
    wrong = np.flatnonzero(predicted != truth)
    result = {"misclassified": int(len(wrong))}
    if len(wrong):
        chosen = wrong[:MAX_MISCLASSIFIED]
        titles = [f"{names[truth[i]]} -> {names[predicted[i]]} ({probabilities[i, predicted[i]]:.2f})"
                  for i in chosen]
        path = run_dir.report_dir / "misclassified.png"
        save_grid([images[i] for i in chosen], titles, path, "Misclassified test images (true -> predicted)")
        result["misclassified_png"] = str(path.relative_to(run_dir.path))
    chosen = _one_per_class(truth, GRADCAM_IMAGES)
    heatmaps = grad_cam(model, images[chosen], predicted[chosen])
    panels, titles = [], []
    for index, heatmap in zip(chosen, heatmaps):
        panels += [images[index], overlay(images[index], heatmap)]
        titles += [f"true {names[truth[index]]}", f"Grad-CAM: {names[predicted[index]]}"]
    path = run_dir.report_dir / "gradcam.png"
    save_grid(panels, titles, path, "Grad-CAM of the predicted class", columns=4)
    result["gradcam_png"] = str(path.relative_to(run_dir.path))
    files = [os.path.basename(str(path)) for path in datasets.splits["test"].raw]
    return {**result, **embedding_map.write(model, datasets, probabilities, run_dir,
                                            columns={"file": files}, embeddings=embeddings)}


def grad_cam(model, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Heat-maps in [0, 1], one (h, w) map per image on the backbone's last feature grid.

    Args:
        model: inputs -> nested "backbone" (ending in global average pooling) -> nested "head".
        images: a batch of model inputs.
        classes: the class index to explain for each image.
    """
    import keras

    backbone, head = model.get_layer(BACKBONE), model.get_layer(HEAD)
    pool = [layer for layer in backbone.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)][-1]
    feature_model = keras.Model(backbone.input, pool.input, name="gradcam_features")
    # eager JAX compiles op by op (~5 s for Lite0); predict compiles once, but it would shard
    # this small batch over the devices of a distribution, which may not divide it
    if keras.backend.backend() == "jax" and keras.distribution.distribution() is None:
        maps = feature_model.predict(images, batch_size=len(images), verbose=0)
    else:
        maps = keras.ops.convert_to_numpy(feature_model(images, training=False))
    one_hot = np.eye(head.output.shape[-1], dtype="float32")[classes]

    def score(feature_maps):
        mask = keras.ops.convert_to_tensor(one_hot)
        return keras.ops.sum(keras.ops.multiply(head(pool(feature_maps), training=False), mask))

    gradients = _gradient(score, maps)
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    cams = np.maximum((weights * maps).sum(axis=-1), 0)
    peak = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
    return cams / np.where(peak > 0, peak, 1)


def _gradient(function, inputs: np.ndarray) -> np.ndarray:
    """d function(inputs) / d inputs with the active backend's autodiff, as NumPy."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(function)(jax.numpy.asarray(inputs)))
    if backend == "torch":
        import torch

        tensor = torch.tensor(inputs, requires_grad=True)
        (gradient,) = torch.autograd.grad(function(tensor), tensor)
        return gradient.detach().cpu().numpy()
    import tensorflow as tf

    tensor = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        value = function(tensor)
    return tape.gradient(value, tensor).numpy()


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat-map upsampled to the image (bilinear), coloured with 'jet', blended on top."""
    from matplotlib import colormaps
    from PIL import Image

    height, width = image.shape[:2]
    resized = Image.fromarray(np.uint8(heatmap * 255)).resize((width, height), Image.BILINEAR)
    colour = colormaps["jet"](np.asarray(resized) / 255.0)[..., :3]
    return np.clip((1 - alpha) * image[..., :3] + alpha * colour, 0, 1)


def save_grid(images, titles, path, title: str, columns: int = 4) -> None:
    """A titled grid of images as a PNG, written atomically."""
    plt = pyplot()
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, caption in zip(axes.ravel(), images, titles):
        axis.imshow(np.clip(image, 0, 1))
        axis.set_title(caption, fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure_atomic(figure, path, dpi=100)


def _one_per_class(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to `count` examples, cycling through the classes in order."""
    order = [np.flatnonzero(labels == c).tolist() for c in np.unique(labels)]
    chosen = []
    while len(chosen) < min(count, len(labels)):
        for members in order:
            if members and len(chosen) < count:
                chosen.append(members.pop(0))
    return np.array(chosen, dtype=np.int64)
