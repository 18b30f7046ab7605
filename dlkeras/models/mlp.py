"""A feed-forward network for tabular features: (Dense-BN-ReLU-Dropout) blocks."""

from __future__ import annotations

from dlkeras.models.structure import BN_MOMENTUM


def build(config, info):
    """Builds the MLP for a `info.input_shape` feature vector and `info.num_classes` classes.

    `config.units` gives one block per entry.
    """
    import keras
    from keras import layers

    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None

    # === Layers ===
    inputs = keras.Input(shape=info.input_shape, name="features")
    x = inputs
    for block, units in enumerate(config.units, start=1):
        x = layers.Dense(units, use_bias=False, kernel_regularizer=regularizer,
                         name=f"block{block}_dense")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
        x = layers.Dropout(config.dropout, name=f"block{block}_dropout")(x)
    outputs = layers.Dense(info.num_classes, activation="softmax", dtype="float32", name="head_output")(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name="mlp")
