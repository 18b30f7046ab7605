"""The global gradient norm per epoch: right on every backend, recorded, and harmless to training.

Run as a script (`python test_gradient_norm.py`), this file fits two tiny models under the
backend of KERAS_BACKEND and prints what the tests compare as JSON.
"""

import glob
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest


def fit_tiny_models(mode: str = "none") -> dict:
    """Fits a linear model and a Dense-BN-Dropout model with GradientNorm on tf.data batches.

    Args:
        mode: `train.distribution` of the linear model's fit ("data_parallel": on the CPU
            devices of DLKERAS_CPU_DEVICES, as training sets it up).

    Returns:
        per epoch of the linear model: the logged norm and the closed-form norm of its mean
        squared error on the fixed batch at the same weights; and (mode "none") whether the
        deeper model's weights after two epochs are identical with and without the callback.
    """
    from dlkeras import config
    from dlkeras.engine import distribution

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    distribution.prepare_devices(backend)  # before JAX starts
    recipe = config.apply_overrides(config.load_recipe_module("mlp_churn").RECIPE,
                                    [f"train.distribution={mode}", "data.batch_size=8"])
    replicas = distribution.start(recipe)

    import keras
    import tensorflow as tf

    from dlkeras.engine.callbacks import GradientNorm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    logged, expected = [], []

    def record(epoch, logs):
        kernel, bias = (np.asarray(w, dtype=np.float64) for w in linear.get_layer("dense").weights)
        residual = x[:8] @ kernel + bias - y[:8]  # the first batch; d mean(r^2) = 2/N X^T r
        gradient = np.concatenate([(2 / 8 * x[:8].T @ residual).ravel(), 2 / 8 * residual.sum(0)])
        logged.append(logs["gradient_norm"])
        expected.append(float(np.linalg.norm(gradient)))

    keras.utils.set_random_seed(0)
    with distribution.run_scope():
        with distribution.replica_scope():
            linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="dense")])
        with distribution.fitting(linear):
            linear.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.MeanSquaredError())
            linear.fit(distribution.fit_batches(batches), epochs=3, verbose=0, shuffle=False,
                       callbacks=[GradientNorm(batches),
                                  keras.callbacks.LambdaCallback(on_epoch_end=record)])
    found = {"backend": backend, "replicas": replicas.replicas, "logged": logged,
             "expected": expected}
    if mode != "none":
        return found

    def deeper_weights(with_norm: bool) -> list:
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((3,)), keras.layers.Dense(8, name="dense"),
            keras.layers.BatchNormalization(name="bn"), keras.layers.Dropout(0.5, seed=3, name="drop"),
            keras.layers.Dense(1, name="out")])
        model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
        model.fit(batches, epochs=2, verbose=0, shuffle=False,
                  callbacks=[GradientNorm(batches)] if with_norm else [])
        return [np.asarray(w) for w in model.weights]

    found["identical"] = all(np.array_equal(a, b) for a, b in
                             zip(deeper_weights(True), deeper_weights(False), strict=True))
    return found


def fit_in_subprocess(backend: str, mode: str = "none", devices: int = 0) -> dict:
    import prestart  # tests/, not on the path when this file runs as a script

    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "DLKERAS_CPU_DEVICES": str(devices)}
    result = prestart.run([sys.executable, __file__, mode], env=env, capture_output=True,
                          text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["backend"] == backend
    assert len(found["logged"]) == 3 and all(v > 0 for v in found["logged"])
    np.testing.assert_allclose(found["logged"], found["expected"], rtol=1e-5)
    assert found["logged"][-1] < found["logged"][0]  # the linear model fits its batch ever better
    return found


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_norm_is_the_gradient_norm_on_every_backend(backend):
    found = fit_in_subprocess(backend)
    assert found["identical"], "the callback changed what training computed"


# Keras divides the loss by the replicas of a TensorFlow strategy; the norm must not be
@pytest.mark.parametrize("backend,devices", [("tensorflow", 2), ("jax", 4)])
def test_the_norm_is_one_devices_under_data_parallel(backend, devices):
    assert fit_in_subprocess(backend, "data_parallel", devices)["replicas"] == devices


def test_an_augmenting_pipeline_is_read_to_its_end_for_its_first_batch():
    """A pipeline left after one batch has augmented as many as its prefetching reached (a
    race that would make runs differ); read to its end, it augments each batch exactly once."""
    import tensorflow as tf

    from dlkeras.data import pipeline
    from dlkeras.engine.callbacks import GradientNorm

    made = []

    def count(images):
        made.append(len(images))
        return images

    def augment(images):
        return tf.py_function(count, [images], tf.float32)

    x = np.arange(80, dtype="float32").reshape(40, 2)
    batches = pipeline.make_dataset(x, np.zeros(40, "float32"), 4, training=True, seed=0,
                                    augment=augment)
    first = [GradientNorm(batches, epoch=7, read_to_end=True) for _ in range(2)]
    for callback in first:
        pipeline.set_epoch(3)  # the epoch before does not matter
        callback.on_train_begin()
    assert made == [4] * 20  # ten batches each time, never more
    pipeline.set_epoch(7)
    expected = next(iter(batches.as_numpy_iterator()))
    for callback in first:  # the first batch of epoch 7
        np.testing.assert_array_equal(callback.batch[0], expected[0])


def tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    """epoch_* scalars of the TensorBoard event files under `folder`, in step order."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    scalars = {}
    for path in sorted(glob.glob(str(folder / "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    scalars.setdefault(value.tag, []).append(
                        (event.step, float(tf.make_ndarray(value.tensor))))
    return {tag: [v for _, v in sorted(steps)] for tag, steps in scalars.items()}


def test_history_and_tensorboard_record_the_norm_and_the_learning_rate(tmp_path):
    from support import write_customers_csv

    from dlkeras import config
    from dlkeras.engine.run import train_recipe
    from dlkeras.runs import read_history

    path = write_customers_csv(tmp_path / "customers.csv", rows=120)
    module = config.load_recipe_module("mlp_churn")
    recipe = config.apply_overrides(module.RECIPE, [
        f"data.path={path}", "data.batch_size=16", "model.units=(16,)", "train.epochs=3",
        "train.class_weight='none'", "callbacks.checkpoints=False", "evaluate.baselines=()",
        "evaluate.plots=False"])
    run_dir, _ = train_recipe(recipe, tmp_path / "runs")
    rows = read_history(run_dir.history_csv)
    assert len(rows) == 3
    norms = [float(row["gradient_norm"]) for row in rows]
    assert all(math.isfinite(v) and v > 0 for v in norms)
    logged = tensorboard_scalars(run_dir.logs_dir / "train" / "train")
    np.testing.assert_allclose(logged["epoch_gradient_norm"], norms, rtol=1e-6)
    np.testing.assert_allclose(logged["epoch_learning_rate"],
                               [float(row["learning_rate"]) for row in rows], rtol=1e-6)


if __name__ == "__main__":
    print(json.dumps(fit_tiny_models(*sys.argv[1:])))
