"""A small CNN trained from scratch: blocks of (Conv-BN-ReLU) x2, max-pool, dropout."""

from __future__ import annotations

from dlkeras.models.structure import BN_MOMENTUM


def build(config, info):
    """Builds the CNN for `info.input_shape` images and `info.num_classes` classes.

    `config.filters` gives one block per entry; `config.units` the dense layers of the head.
    """
    import keras
    from keras import layers

    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None

    # === Layers ===
    inputs = keras.Input(shape=info.input_shape, name="images")
    x = inputs
    for block, filters in enumerate(config.filters, start=1):
        for conv in (1, 2):
            x = layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=False,
                kernel_regularizer=regularizer,
                name=f"block{block}_conv{conv}",
            )(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{block}_bn{conv}")(x)
            x = layers.ReLU(name=f"block{block}_relu{conv}")(x)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = layers.Dropout(config.dropout, name=f"block{block}_dropout")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    for index, units in enumerate(config.units, start=1):
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer,
                         name=f"head_dense{index}")(x)
        x = layers.Dropout(config.dropout, name=f"head_dropout{index}")(x)
    outputs = layers.Dense(info.num_classes, activation="softmax", dtype="float32",
                             name="head_output")(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name="cnn")
