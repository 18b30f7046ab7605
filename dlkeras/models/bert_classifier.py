"""Text classifier on a pretrained BERT-family encoder: encoder -> masked mean pooling -> head.

The encoder comes from a keras-hub preset (bundled, local folder or hub name, see
`dlkeras.presets`). keras-hub's BERT uses the tanh approximation of GELU while the original
checkpoints were trained with the exact (erf) GELU; the encoder graph is rebuilt with exact
GELU so that hidden states match the original model (~2e-6 instead of ~3e-3).
"""

from __future__ import annotations

APPROXIMATE_GELU = "keras_hub>gelu_approximate"


def build(config, info):
    """Builds inputs -> backbone (encoder + pooling) -> head for `info.num_classes` classes.

    The nested "backbone" and "head" models let a frozen-encoder stage train the head on
    cached sentence features.
    """
    import keras

    from dlkeras.models.layers import MaskedMeanPooling

    encoder = load_encoder(config.preset)

    # === Layers ===
    inputs = {
        name: keras.Input(shape=(None,), dtype="int32", name=name)
        for name in sorted(encoder.input)
    }
    sequence = encoder(inputs)
    pooled = MaskedMeanPooling(name="mean_pooling")(sequence, inputs["padding_mask"])
    backbone = keras.Model(inputs, pooled, name="backbone")
    head = keras.Sequential(
        [
            keras.Input(shape=(pooled.shape[-1],), name="sentence_embedding"),
            keras.layers.Dropout(config.dropout, name="head_dropout"),
            keras.layers.Dense(info.num_classes, activation="softmax", dtype="float32", name="head_output"),
        ],
        name="head",
    )

    # === Functional Model ===
    return keras.Model(inputs, head(backbone(inputs)), name="text_classifier")


def load_encoder(preset: str):
    """The preset's pretrained encoder as a functional model named "encoder", exact GELU.

    Raises:
        ConfigError: the preset cannot be found or loaded (offline hub name, bad folder).
    """
    import keras
    import keras_hub

    from dlkeras import presets

    handle = presets.resolve(preset)
    try:
        backbone = keras_hub.models.Backbone.from_preset(handle)
    except Exception as error:  # keras-hub raises many types for missing/unreachable presets
        raise presets.load_failure(preset, error) from None
    output = backbone.output
    # token vectors only: the [CLS] pooler is not used by mean pooling, so it is left out
    sequence = output["sequence_output"] if isinstance(output, dict) else output
    graph = keras.Model(backbone.input, sequence)
    encoder = keras.Model.from_config({**with_exact_gelu(graph.get_config()), "name": "encoder"})
    for layer in encoder.layers:
        layer.set_weights(graph.get_layer(layer.name).get_weights())
    return encoder


def with_exact_gelu(node):
    """A copy of a serialized model config with approximate-GELU activations made exact
    (`dlkeras.models.layers.gelu_erf`: float32 inside a 16-bit policy, faster than Keras' own
    exact GELU on TensorFlow)."""
    if isinstance(node, dict):
        if node.get("config") == APPROXIMATE_GELU and node.get("class_name") == "function":
            import keras

            from dlkeras.models.layers import gelu_erf

            return keras.saving.serialize_keras_object(gelu_erf)
        return {key: with_exact_gelu(value) for key, value in node.items()}
    if isinstance(node, list):
        return [with_exact_gelu(value) for value in node]
    return node
