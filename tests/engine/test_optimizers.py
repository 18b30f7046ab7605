"""Optimizer, schedule and freezing settings reach Keras as the recipe says."""

import numpy as np
import pytest

from dlkeras import config
from dlkeras.engine import optimizers, stages
from dlkeras.errors import ConfigError


def train_config(*overrides):
    recipe = config.apply_overrides(config.load_recipe("mlp_churn"), list(overrides))
    return recipe.train


def test_optimizer_settings_are_applied():
    optimizer = optimizers.build_optimizer(
        train_config("train.clipnorm=1.0", "train.gradient_accumulation_steps=4",
                     "train.weight_decay=0.05", "train.schedule=warmup_cosine",
                     "train.warmup_fraction=0.1"),
        learning_rate=1e-3, total_steps=100,
    )
    assert type(optimizer).__name__ == "FusedAdamW"
    assert optimizer.clipnorm == 1.0 and optimizer.gradient_accumulation_steps == 4
    assert optimizer.weight_decay == pytest.approx(0.05)
    schedule = optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(5e-4)  # linear warmup over 10 steps
    assert rates[2] == pytest.approx(1e-3) and rates[3] == pytest.approx(5e-4, rel=1e-3)
    assert rates[4] == pytest.approx(0.0, abs=1e-9)  # cosine to zero at the end


@pytest.mark.parametrize("override, message", [
    ("train.optimizer=lion", "train.optimizer='lion'"),
    ("train.schedule=step", "train.schedule='step'"),
    ("train.gradient_accumulation_steps=0", "gradient_accumulation_steps must be 1 or more"),
])
def test_bad_optimizer_settings(override, message):
    with pytest.raises(ConfigError, match=message):
        optimizers.build_optimizer(train_config(override), 1e-3, 10)


def test_gradient_accumulation_trains_like_a_bigger_batch():
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32"))[:, None]

    def fit(batch_size, accumulation):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, name="dense")])
        train = train_config("train.optimizer=sgd", "train.schedule=constant",
                             f"train.gradient_accumulation_steps={accumulation}")
        model.compile(optimizer=optimizers.build_optimizer(train, 0.01, 10), loss="mse")
        model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        return model.get_weights()[0]

    big = fit(32, 1)
    accumulated = fit(16, 2)
    small = fit(16, 1)
    assert np.allclose(big, accumulated, atol=1e-5)
    assert not np.allclose(big, small, atol=1e-3)


def test_set_trainable_head_and_top_layers():
    import keras

    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, name="block1_dense")(inputs)
    x = keras.layers.Dense(8, name="block2_dense")(x)
    x = keras.layers.Dense(8, name="block3_dense")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head_output")(x))
    stages.set_trainable(model, "head")
    assert [w.path for w in model.trainable_weights] == ["head_output/kernel", "head_output/bias"]
    stages.set_trainable(model, "top:2")
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"block3_dense", "head_output"}
    stages.set_trainable(model, "all")
    assert len(model.trainable_weights) == 8
    with pytest.raises(ConfigError, match="use 'all', 'head' or 'top:N'"):
        stages.set_trainable(model, "bottom")


def test_tensorflow_and_torch_get_the_fused_adam_and_jax_keeps_keras_adam(monkeypatch):
    import keras

    from dlkeras.engine import fused_adam

    assert type(optimizers.build_optimizer(train_config(), 1e-3, 10)) is fused_adam.FusedAdamW
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    assert type(optimizers.build_optimizer(train_config(), 1e-3, 10)) is fused_adam.FusedAdamW
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")  # XLA fuses Keras' update
    assert type(optimizers.build_optimizer(train_config(), 1e-3, 10)) is keras.optimizers.AdamW
