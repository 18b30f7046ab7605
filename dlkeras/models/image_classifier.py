"""The classification head shared by the image backbones: inputs -> backbone -> head.

Both parts are nested Models named "backbone" and "head", so a stage with trainable="head"
freezes the backbone, feature caching can train the head on pooled backbone features, and
trainable="top:N" unfreezes the last N backbone layers with weights. Every head layer is named
head_*; the last one, "head_output", is the softmax.
"""

from __future__ import annotations


def assemble(backbone, config, info):
    """Wraps a pooled-feature `backbone` with a dropout + dense head for `info.num_classes`.

    Args:
        backbone: a functional Model named "backbone" mapping [0, 1] RGB pixels to features.
        config: ModelConfig; `units` adds hidden Dense-ReLU layers, `dropout` precedes each.
        info: DataInfo with `input_shape` and `num_classes`.
    """
    import keras
    from keras import layers

    regularizer = keras.regularizers.L2(config.l2) if config.l2 else None

    # === Layers ===
    features = keras.Input(shape=backbone.output.shape[1:], name="head_features")
    x = features
    for index, units in enumerate(config.units, start=1):
        x = layers.Dropout(config.dropout, name=f"head_dropout{index}")(x)
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer,
                         name=f"head_dense{index}")(x)
    x = layers.Dropout(config.dropout, name="head_dropout")(x)
    outputs = layers.Dense(info.num_classes, activation="softmax", kernel_regularizer=regularizer,
                           dtype="float32", name="head_output")(x)
    head = keras.Model(features, outputs, name="head")

    # === Functional Model ===
    inputs = keras.Input(shape=tuple(info.input_shape), name="images")
    return keras.Model(inputs, head(backbone(inputs)), name=f"{config.name}_classifier")
