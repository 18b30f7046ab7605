"""keras.applications backbones (ResNet50, EfficientNetB0, MobileNetV3) under the shared head.

`model.preset` picks the network. Their ImageNet weights are downloaded by Keras on first use,
which needs the network, so `model.weights="imagenet"` uses them only when the file is already
in the Keras cache (~/.keras/models) and otherwise starts from random weights, saying so;
`model.weights` may also name a local `.h5` / `.weights.h5` file of the notop network.

Each backbone takes RGB pixels in [0, 1] and normalises them the way its ImageNet weights
expect, inside the model, so the data pipeline stays the same for every backbone.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from dlkeras.errors import ConfigError
from dlkeras.models import image_classifier
from dlkeras.models.structure import BN_MOMENTUM

# preset -> (keras.applications constructor, notop weights file name in the Keras cache)
APPLICATIONS = {
    "resnet50": ("ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnetb0_notop.h5"),
    "mobilenet_v3_small": ("MobileNetV3Small", "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
    "mobilenet_v3_large": ("MobileNetV3Large", "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"),
}
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="dlkeras")
class CaffeNormalize(keras.layers.Layer):
    """[0, 1] RGB -> BGR minus the ImageNet channel means on the 0..255 scale (ResNet50's input)."""

    def call(self, images):
        bgr = keras.ops.flip(images * 255.0, axis=-1)
        return bgr - keras.ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=images.dtype)


def build(config, info):
    """The application named by `config.preset` (weights per `config.weights`) plus the head."""
    if config.preset not in APPLICATIONS:
        raise ConfigError(f"model.preset={config.preset!r} is not a keras.applications backbone; "
                          f"choose one of {sorted(APPLICATIONS)}")
    backbone = build_backbone(config.preset, tuple(info.input_shape), resolve_weights(config))
    return image_classifier.assemble(backbone, config, info)


def resolve_weights(config) -> str | None:
    """A weights file to load, or None for random initialisation."""
    _, cached_name = APPLICATIONS[config.preset]
    if config.weights == "random":
        return None
    if config.weights == "imagenet":
        home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
        cached = Path(home).expanduser() / "models" / cached_name
        if cached.is_file():
            return str(cached)
        print(f"model: no ImageNet weights for {config.preset} on this machine ({cached} is "
              "missing); starting from random weights. Pass --set model.weights=FILE.h5 to use "
              "a local copy.")
        return None
    if not Path(config.weights).expanduser().is_file():
        raise ConfigError(f"model.weights={config.weights!r}: no such file; use 'imagenet', "
                          "'random' or a path to the notop .h5 weights of "
                          f"{APPLICATIONS[config.preset][0]}")
    return str(Path(config.weights).expanduser())


def build_backbone(preset: str, input_shape: tuple[int, ...], weights: str | None):
    """[0, 1] pixels -> normalisation -> application (no top, average pooled) as "backbone"."""
    from keras import layers

    constructor, _ = APPLICATIONS[preset]

    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="pixels")
    if preset == "resnet50":
        x = CaffeNormalize(name="normalize")(inputs)
    elif preset.startswith("mobilenet"):
        x = layers.Rescaling(2.0, offset=-1.0, name="normalize")(inputs)
    else:  # EfficientNetB0 rescales 0..255 and applies ImageNet mean/std itself
        x = layers.Rescaling(255.0, name="normalize")(inputs)
    extra = {"include_preprocessing": False} if preset.startswith("mobilenet") else {}
    try:
        application = getattr(keras.applications, constructor)(
            include_top=False, weights=weights, input_tensor=x, pooling="avg", **extra
        )
    except ValueError as error:
        raise ConfigError(f"model.weights={weights!r} does not fit {constructor}: {error}") from None
    for layer in application.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM

    # === Functional Model ===
    return keras.Model(inputs, application.output, name="backbone")
