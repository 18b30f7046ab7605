"""Discriminative learning rates: the backbone moves at backbone_learning_rate, the head at the stage rate."""

import keras
import numpy as np
import pytest

from dlkeras import config
from dlkeras.engine import discriminative, fused_adam, optimizers
from dlkeras.errors import ConfigError


def two_part_model():
    inputs = keras.Input((3,), name="features")
    hidden = keras.layers.Dense(4, name="body_dense")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="head_output")(hidden)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_backbone_updates_are_scaled(optimizer):
    train = config.TrainConfig(optimizer=optimizer, schedule="constant", weight_decay=0.0)
    keras.utils.set_random_seed(0)
    model = two_part_model()
    model.compile(optimizers.build_optimizer(train, 1e-2, 10, backbone_learning_rate=1e-4),
                  "categorical_crossentropy")
    before = [np.copy(w) for w in model.trainable_weights]
    x, y = np.ones((4, 3), "float32"), np.eye(2, dtype="float32")[[0, 1, 0, 0]]
    model.train_on_batch(x, y)
    moved = {w.path: float(np.abs(np.asarray(w) - b).max()) for w, b in zip(model.trainable_weights, before)}
    if optimizer != "sgd":  # Adam's first step moves each weight by about the learning rate
        assert moved["head_output/kernel"] == pytest.approx(1e-2, rel=0.05)
        assert moved["body_dense/kernel"] == pytest.approx(1e-4, rel=0.05)
    assert 0 < moved["body_dense/kernel"] < moved["head_output/kernel"] / 10


def test_optimizer_round_trips_through_its_config_and_rejects_bad_rates():
    optimizer = discriminative.DiscriminativeAdamW(backbone_scale=0.01, learning_rate=1e-3)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is discriminative.DiscriminativeAdamW and restored.backbone_scale == 0.01
    with pytest.raises(ConfigError, match="backbone_learning_rate"):
        optimizers.build_optimizer(config.TrainConfig(), 0.0, 10, backbone_learning_rate=1e-5)
    assert type(optimizers.build_optimizer(config.TrainConfig(), 1e-3, 10)) is fused_adam.FusedAdamW
