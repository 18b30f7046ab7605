"""Sanity checks for every registered model factory on tiny shapes."""

import numpy as np
import pytest

from dlkeras import config, models
from dlkeras.data import DataInfo

TINY = {
    "cnn": (config.ModelConfig(name="cnn", filters=(4, 8), units=(8,), dropout=0.0), (8, 8, 1)),
    "mlp": (config.ModelConfig(name="mlp", units=(16, 8), dropout=0.0), (6,)),
}


def test_every_factory_has_a_tiny_variant():
    assert set(TINY) == set(models.MODELS)


def tiny(name):
    import keras

    keras.utils.set_random_seed(0)
    model_config, shape = TINY[name]
    info = DataInfo(task="classification", input_shape=shape, num_classes=3,
                    class_names=("a", "b", "c"))
    x = np.random.default_rng(0).normal(size=(4, *shape)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    return models.build(model_config, info), x, y


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_shape_and_named_layers(name):
    model, x, _ = tiny(name)
    probabilities = np.asarray(model(x, training=False))
    assert probabilities.shape == (4, 3)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert model.layers[-1].name == "head_output"
    assert all(not layer.name.startswith(("dense", "conv2d", "batch_normalization"))
               for layer in model.layers)


@pytest.mark.parametrize("name", sorted(TINY))
def test_gradients_reach_every_trainable_weight(name):
    import tensorflow as tf

    model, x, y = tiny(name)
    with tf.GradientTape() as tape:
        loss = tf.keras.losses.categorical_crossentropy(y, model(x, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    for weight, gradient in zip(model.trainable_weights, gradients):
        assert gradient is not None, weight.path
        assert float(tf.reduce_max(tf.abs(gradient))) > 0, weight.path


@pytest.mark.parametrize("name", sorted(TINY))
def test_overfits_one_small_batch(name):
    import keras

    model, x, y = tiny(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=150, batch_size=4, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.05 < first


def test_unknown_model_name():
    from dlkeras.errors import ConfigError

    with pytest.raises(ConfigError, match="model.name='resnet9'.*cnn"):
        models.build(config.ModelConfig(name="resnet9"), None)
