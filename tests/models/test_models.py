"""Sanity checks for every registered model factory on tiny shapes."""

import numpy as np
import pytest

from dlkeras import config, models
from dlkeras.data import DataInfo

TINY = {
    "bert_classifier": (
        config.ModelConfig(name="bert_classifier", preset="tiny_bert_random", dropout=0.0), (6,)
    ),
    "cnn": (config.ModelConfig(name="cnn", filters=(4, 8), units=(8,), dropout=0.0), (8, 8, 1)),
    "efficientnet_lite0": (  # one block per stage (its full depth: test_efficientnet_lite.py)
        config.ModelConfig(name="efficientnet_lite0", weights="random", depth=0.25, units=(),
                           dropout=0.0),
        (32, 32, 3),
    ),
    "gru": (config.ModelConfig(name="gru", units=(8, 8), dropout=0.0), (8, 4)),
    "keras_application": (
        config.ModelConfig(name="keras_application", preset="mobilenet_v3_small", weights="random",
                           units=(), dropout=0.0),
        (32, 32, 3),
    ),
    "lstm": (config.ModelConfig(name="lstm", units=(8, 8), dropout=0.0), (8, 4)),
    "mlp": (config.ModelConfig(name="mlp", units=(16, 8), dropout=0.0), (6,)),
    "temporal_cnn": (config.ModelConfig(name="temporal_cnn", filters=(4, 4, 4), dropout=0.0), (8, 4)),
    "transformer_encoder": (
        config.ModelConfig(name="transformer_encoder", units=(8,), attention_heads=2, dropout=0.0),
        (8, 4),
    ),
}
# Factories that forecast HORIZON_DAYS values (trained with mean squared error); every other
# factory classifies into 3 classes (softmax, cross-entropy).
FORECASTERS = {"gru", "lstm", "temporal_cnn", "transformer_encoder"}
HORIZON_DAYS = 2
TEXT = {"bert_classifier"}  # inputs are token ids, not floats


def test_every_factory_has_a_tiny_variant():
    assert set(TINY) == set(models.MODELS)


def tiny(name):
    import keras

    keras.utils.set_random_seed(0)
    model_config, shape = TINY[name]
    x = np.random.default_rng(0).normal(size=(4, *shape)).astype("float32")
    if name in TEXT:  # token ids: [CLS] words [SEP] and padding
        ids = np.random.default_rng(0).integers(1000, 2000, size=(4, *shape)).astype("int32")
        ids[:, 0], ids[:, -2], ids[1:, -1] = 101, 102, 0
        x = {"token_ids": ids, "padding_mask": (ids > 0).astype("int32"),
             "segment_ids": np.zeros_like(ids)}
    if name in FORECASTERS:
        info = DataInfo(task="forecast", input_shape=shape,
                        preprocessing={"horizon_days": HORIZON_DAYS})
        y = np.random.default_rng(1).normal(size=(4, HORIZON_DAYS)).astype("float32")
    else:
        info = DataInfo(task="classification", input_shape=shape, num_classes=3,
                        class_names=("a", "b", "c"))
        y = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    return models.build(model_config, info), x, y


def loss_name(name) -> str:
    return "mse" if name in FORECASTERS else "categorical_crossentropy"


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_shape_and_named_layers(name):
    model, x, y = tiny(name)
    outputs = np.asarray(model(x, training=False))
    assert outputs.shape == y.shape == ((4, HORIZON_DAYS) if name in FORECASTERS else (4, 3))
    if name in FORECASTERS:
        assert np.isfinite(outputs).all()
    else:
        assert np.allclose(outputs.sum(axis=1), 1, atol=1e-5)
    last = model.layers[-1]
    last = last.layers[-1] if last.name == "head" else last  # backbone/head models nest the head
    assert last.name == "head_output"
    assert all(not layer.name.startswith(("dense", "conv2d", "batch_normalization"))
               for layer in model.layers)


@pytest.mark.parametrize("name", sorted(TINY))
def test_gradients_reach_every_trainable_weight(name):
    import tensorflow as tf

    model, x, y = tiny(name)
    with tf.GradientTape() as tape:
        loss = getattr(tf.keras.losses, loss_name(name))(y, model(x, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    for weight, gradient in zip(model.trainable_weights, gradients):
        assert gradient is not None, weight.path
        assert float(tf.reduce_max(tf.abs(gradient))) > 0, weight.path


@pytest.mark.parametrize("name", sorted(TINY))
def test_overfits_one_small_batch(name):
    import keras
    import tensorflow as tf

    from dlkeras.engine.backend import build_training_state

    model, x, y = tiny(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss_name(name))
    build_training_state(model, tf.data.Dataset.from_tensors((x, y)))  # one trace of the step
    first = model.evaluate(x, y, verbose=0)
    # up to 150 steps on the same batch, in epochs of 30 copies of it, until the loss is low
    def tile(array):
        return np.tile(array, (30,) + (1,) * (array.ndim - 1))

    copies = {k: tile(v) for k, v in x.items()} if isinstance(x, dict) else tile(x), tile(y)
    losses = []
    while len(losses) < 5 and (not losses or losses[-1] >= 0.05):
        model.fit(*copies, epochs=1, batch_size=len(y), shuffle=False, verbose=0)
        losses.append(model.evaluate(x, y, verbose=0))
    assert losses[-1] < 0.05 < first, losses


def test_unknown_model_name():
    from dlkeras.errors import ConfigError

    with pytest.raises(ConfigError, match="model.name='resnet9'.*cnn"):
        models.build(config.ModelConfig(name="resnet9"), None)


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_last_value_residual_starts_from_the_last_input_day(name, tmp_path):
    import dataclasses

    import keras

    model_config, shape = TINY[name]
    info = DataInfo(task="forecast", input_shape=shape, preprocessing={"horizon_days": 3})
    model = models.build(dataclasses.replace(model_config, last_value_residual=True), info)
    head = model.get_layer("head_output")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = np.random.default_rng(0).normal(size=(5, *shape)).astype("float32")
    expected = np.repeat(x[:, -1, :1], 3, axis=1)  # feature 0 of the last day, every day
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, atol=1e-6)
