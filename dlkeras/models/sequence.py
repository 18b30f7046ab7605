"""Forecasting networks over a window of days: stacked LSTM or GRU, temporal CNN, Transformer.

One factory for the four `model.name`s, so they share the input and the head and differ only
in the body:

- "lstm" / "gru": one recurrent layer per entry of `units` (e.g. (128, 64)), each followed by
  dropout; the last layer returns only its final state.
- "temporal_cnn": one causal Conv1D per entry of `filters`, kernel 3, dilation doubling
  (1, 2, 4, ...), so four layers see 31 days.
- "transformer_encoder": a projection to `units[0]` channels, a learned position embedding,
  then `len(units)` post-norm encoder blocks (multi-head self-attention with
  `attention_heads` heads, and a feed-forward of twice the width).

The head is one Dense layer with `horizon_days` linear outputs (direct multi-step): every day of
the horizon is predicted at once, in the scaled units of the target. With
`model.last_value_residual` those outputs are changes added to the last input day's target
(feature 0 of the window), so training starts from the last-value forecast and learns
departures from it.
"""

from __future__ import annotations

import keras
from keras import layers

from dlkeras.errors import ConfigError
from dlkeras.models.layers import LastValue

KERNEL_SIZE = 3
FEED_FORWARD_RATIO = 2


@keras.saving.register_keras_serializable(package="dlkeras")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per time step (self-attention alone does not see order)."""

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(input_shape[-2], input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="embeddings",
        )

    def call(self, inputs):
        return inputs + keras.ops.cast(self.embeddings, inputs.dtype)


def recurrent_body(x, config):
    """Stacked LSTM or GRU layers, dropout after each."""
    recurrent = layers.LSTM if config.name == "lstm" else layers.GRU
    for index, units in enumerate(config.units, start=1):
        last = index == len(config.units)
        x = recurrent(units, return_sequences=not last, name=f"{config.name}{index}")(x)
        x = layers.Dropout(config.dropout, name=f"{config.name}{index}_dropout")(x)
    return x


def temporal_cnn_body(x, config):
    """Causal dilated Conv1D layers (dilation 1, 2, 4, ...), then every step flattened."""
    for index, filters in enumerate(config.filters, start=1):
        x = layers.Conv1D(filters, KERNEL_SIZE, padding="causal", dilation_rate=2 ** (index - 1),
                          activation="relu", name=f"conv{index}")(x)
        x = layers.Dropout(config.dropout, name=f"conv{index}_dropout")(x)
    return layers.Flatten(name="flatten")(x)


def transformer_body(x, config):
    """Projection, position embedding and post-norm self-attention blocks, then flattened."""
    width, heads = config.units[0], config.attention_heads
    if heads < 1 or width % heads:
        raise ConfigError(
            f"model.units[0]={width} must be a multiple of model.attention_heads={heads} "
            "for transformer_encoder (e.g. units=(64, 64) with 4 heads)"
        )
    x = layers.Dense(width, name="input_projection")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    for index in range(1, len(config.units) + 1):
        block = f"block{index}"
        attended = layers.MultiHeadAttention(heads, width // heads, dropout=config.dropout,
                                             name=f"{block}_attention")(x, x)
        x = layers.Add(name=f"{block}_attention_add")([x, attended])
        x = layers.LayerNormalization(name=f"{block}_attention_norm")(x)
        inner = layers.Dense(FEED_FORWARD_RATIO * width, activation="relu",
                             name=f"{block}_feed_forward_inner")(x)
        outer = layers.Dense(width, name=f"{block}_feed_forward_outer")(inner)
        outer = layers.Dropout(config.dropout, name=f"{block}_feed_forward_dropout")(outer)
        x = layers.Add(name=f"{block}_feed_forward_add")([x, outer])
        x = layers.LayerNormalization(name=f"{block}_feed_forward_norm")(x)
    return layers.Flatten(name="flatten")(x)


BODIES = {
    "lstm": recurrent_body,
    "gru": recurrent_body,
    "temporal_cnn": temporal_cnn_body,
    "transformer_encoder": transformer_body,
}


def build(config, info):
    """Builds `config.name` for (input_days, features) windows and `horizon_days` outputs.

    Args:
        config: the recipe's `model` (name, units, filters, dropout, attention_heads).
        info: DataInfo with `input_shape` and `preprocessing["horizon_days"]`.
    """
    if config.name not in BODIES:
        raise ConfigError(f"model.name={config.name!r}; sequence models are {sorted(BODIES)}")
    horizon_days = int(info.preprocessing["horizon_days"])

    # === Layers ===
    inputs = keras.Input(shape=info.input_shape, name="window")
    x = BODIES[config.name](inputs, config)
    outputs = layers.Dense(horizon_days, dtype="float32", name="head_output")(x)
    if config.last_value_residual:
        last = LastValue(index=0, name="last_value")(inputs)  # the target is feature 0
        outputs = layers.Add(dtype="float32", name="head_from_last_value")([outputs, last])

    # === Functional Model ===
    return keras.Model(inputs, outputs, name=config.name)
