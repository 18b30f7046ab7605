"""Training-batch augmentation for image files: flips, rotation, colour jitter, cutout, MixUp, CutMix.

Keras preprocessing layers run with TensorFlow ops inside tf.data under every backend, so the
same pipeline feeds TensorFlow, JAX and PyTorch. Pixels are float32 in [0, 1]; labels one-hot
(MixUp and CutMix blend them).
"""

from __future__ import annotations


def build_augment(strength: float, mixup: float, cutmix: float, seed: int):
    """A (images, labels) -> (images, labels) batch function.

    Args:
        strength: scales every geometric and colour change (0.1: rotations up to 36 degrees,
            brightness/contrast +-20%, cutout of up to 10% of the image on half the images).
        mixup: MixUp's Beta alpha; 0 leaves it out.
        cutmix: CutMix's Beta factor; 0 leaves it out.
        seed: base seed of the random layers.
    """
    import keras
    from keras import layers

    image_layers = [
        # Surface defects have no preferred orientation: every flip and rotation is a real view.
        layers.RandomFlip("horizontal_and_vertical", seed=seed, name="flip"),
        layers.RandomRotation(strength, fill_mode="reflect", seed=seed + 1, name="rotate"),
        layers.RandomColorJitter(
            value_range=(0, 1),
            brightness_factor=2 * strength,
            contrast_factor=2 * strength,
            saturation_factor=(0.5 - 2 * strength, 0.5 + 2 * strength),
            hue_factor=(0.0, strength / 2),
            seed=seed + 2,
            name="colour_jitter",
        ),
        layers.RandomErasing(
            factor=(0.5, 0.5), scale=(0.02, min(1.0, strength)), fill_value=0.5,
            value_range=(0, 1), seed=seed + 3, name="cutout",
        ),
    ]
    mixers = []
    if mixup > 0:
        mixers.append(layers.MixUp(alpha=mixup, seed=seed + 4, name="mixup"))
    if cutmix > 0:
        mixers.append(layers.CutMix(factor=cutmix, seed=seed + 5, name="cutmix"))

    def augment(images, labels):
        for layer in image_layers:
            images = layer(images, training=True)
        images = keras.ops.clip(images, 0.0, 1.0)
        for layer in mixers:
            mixed = layer({"images": images, "labels": labels}, training=True)
            images, labels = mixed["images"], mixed["labels"]
        return images, labels

    return augment
