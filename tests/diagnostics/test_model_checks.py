"""The model-level checks on small Keras models: each failure provoked and named."""

import time

import keras
import numpy as np
import pytest

from dlkeras.diagnostics import bottleneck, gradient_flow, lr_range, one_batch


def tiny_model(trainable=True):
    inputs = keras.Input((4,), name="inputs")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(hidden)
    model = keras.Model(inputs, outputs)
    model.trainable = trainable
    return model


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 4)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]


def test_a_fully_frozen_model_fails_gradient_flow(batch):
    result = gradient_flow.check(tiny_model(trainable=False), keras.losses.CategoricalCrossentropy(),
                                 batch)
    assert result.status == "fail"
    assert "no trainable weights" in result.summary


def test_a_dead_layer_is_listed_with_a_zero_gradient(batch):
    inputs = keras.Input((4,))
    dead = keras.layers.Dense(8, activation="relu", name="dead", kernel_initializer="zeros",
                              bias_initializer=keras.initializers.Constant(-1.0))(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(dead)
    result = gradient_flow.check(keras.Model(inputs, outputs),
                                 keras.losses.CategoricalCrossentropy(), batch)
    assert result.status == "fail"
    assert result.numbers["zero_gradient"] == ["dead/kernel", "dead/bias", "head/kernel"]


def test_a_healthy_model_passes_gradient_flow(batch):
    result = gradient_flow.check(tiny_model(), keras.losses.CategoricalCrossentropy(), batch)
    assert result.status == "pass", result.summary
    assert result.numbers["global_gradient_norm"] > 0


def test_a_healthy_model_overfits_one_batch(batch):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    result = one_batch.check(model, batch, 0.05)
    assert result.status == "pass", result.summary
    assert result.numbers["last_loss"] < 0.15 * result.numbers["first_loss"]


def test_frozen_weights_are_named_when_one_batch_cannot_be_fit(batch):
    model = tiny_model()
    model.get_layer("hidden").trainable = False
    model.get_layer("head").trainable = False
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    result = one_batch.check(model, batch, 0.01)
    assert result.status == "fail"
    assert "frozen weights (only 0 of" in result.summary


def test_unscaled_inputs_are_named_a_normalisation_problem(batch):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(1e-9), loss="categorical_crossentropy")
    result = one_batch.check(model, (batch[0] * 1000, batch[1]), 1e-9)
    assert result.status == "fail"
    assert "normalisation problem" in result.summary


def test_a_slow_input_pipeline_is_named_the_bottleneck(batch):
    import tensorflow as tf

    def slow(x, y):
        time.sleep(0.05)
        return x, y

    data = tf.data.Dataset.from_tensor_slices(batch).repeat().batch(8).map(
        lambda x, y: tf.numpy_function(slow, [x, y], (tf.float32, tf.float32)))
    model = tiny_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    result = bottleneck.check(model, data, (batch[0][:8], batch[1][:8]))
    assert result.status == "warn"
    assert "the input pipeline limits training" in result.summary
    assert result.numbers["pipeline_examples_per_second"] < 200


def test_range_test_suggests_where_the_loss_falls_fastest():
    rates = np.geomspace(lr_range.START, lr_range.END, lr_range.STEPS)
    logs = np.log10(rates)
    falling = 1.0 / (1.0 + np.exp(2.5 * (logs + 3.0)))  # steepest at 1e-3
    losses = 0.2 + falling + np.where(logs > -1.5, (logs + 1.5) ** 2, 0.0)
    noisy = losses + np.random.default_rng(0).normal(0, 0.01, len(losses))
    suggestion = lr_range.suggest(rates, noisy)
    assert 10 ** -3.3 < suggestion < 10 ** -2.7


def test_range_test_suggests_nothing_when_the_loss_never_falls():
    rates = np.geomspace(lr_range.START, lr_range.END, lr_range.STEPS)
    flat = 1.0 + np.random.default_rng(0).normal(0, 0.05, len(rates))
    assert lr_range.suggest(rates, flat) is None
