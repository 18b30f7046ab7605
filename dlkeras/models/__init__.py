"""Model factories: `build(model_config, data_info) -> keras.Model` (uncompiled).

Layers whose name starts with "head" form the task head; stage `trainable="head"` freezes the
rest.
"""

from __future__ import annotations

import importlib

from dlkeras.errors import ConfigError

MODELS = {
    "bert_classifier": "dlkeras.models.bert_classifier",
    "cnn": "dlkeras.models.cnn",
    "efficientnet_lite0": "dlkeras.models.efficientnet_lite",
    "gru": "dlkeras.models.sequence",
    "keras_application": "dlkeras.models.keras_application",
    "lstm": "dlkeras.models.sequence",
    "mlp": "dlkeras.models.mlp",
    "temporal_cnn": "dlkeras.models.sequence",
    "transformer_encoder": "dlkeras.models.sequence",
}


def build(model_config, data_info):
    """Calls the factory named by `model.name`.

    Raises:
        ConfigError: no factory has that name.
    """
    if model_config.name not in MODELS:
        raise ConfigError(
            f"model.name={model_config.name!r} is not a model factory; choose one of "
            f"{sorted(MODELS)}"
        )
    return importlib.import_module(MODELS[model_config.name]).build(model_config, data_info)


def load_inference_model(path):
    """A saved `.keras` model for inference: safe mode, no optimizer, every factory's custom
    layers registered first."""
    import keras

    for module in sorted(set(MODELS.values())) + ["dlkeras.models.layers"]:
        importlib.import_module(module)
    return keras.saving.load_model(path, compile=False, safe_mode=True)
