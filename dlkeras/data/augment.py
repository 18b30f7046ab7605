"""Training-batch augmentation, run with TensorFlow ops inside tf.data under every backend.

Two recipes of augmentation, both scaled by `data.augment_strength`:

- `build_geometric_augment` (image arrays such as digits): small rotations, shifts and zooms
  with constant fill; images only.
- `build_photo_augment` (image files such as surface photographs): flips, rotation, colour
  jitter and cutout, plus MixUp and CutMix, which blend the one-hot labels too.

Keras preprocessing layers are called one after another (not wrapped in a Sequential) so that
Keras runs them with TensorFlow ops inside tf.data, and the same pipeline feeds TensorFlow, JAX
and PyTorch. Pixels are float32 in [0, 1].
"""

from __future__ import annotations

# The layers run in the tf.data pipeline on float32 images, whatever precision policy the model
# trains under (a mixed policy would make them compute in bfloat16 or float16).
F32 = "float32"


def build_geometric_augment(strength: float, seed: int):
    """An images -> images batch function: random rotation, translation and zoom.

    Args:
        strength: the largest shift and zoom as a fraction of the image (rotations up to half
            of it, as a fraction of a full turn).
        seed: base seed of the random layers.
    """
    from keras import layers

    transforms = [
        layers.RandomRotation(strength / 2, fill_mode="constant", seed=seed, name="rotate", dtype=F32),
        layers.RandomTranslation(strength, strength, fill_mode="constant", seed=seed + 1,
                                 name="translate", dtype=F32),
        layers.RandomZoom(strength, fill_mode="constant", seed=seed + 2, name="zoom", dtype=F32),
    ]

    def augment(images):
        for layer in transforms:
            images = layer(images, training=True)
        return images

    return augment


def build_photo_augment(strength: float, mixup: float, cutmix: float, seed: int):
    """An (images, labels) -> (images, labels) batch function for photographs.

    Args:
        strength: scales every geometric and colour change (0.1: rotations up to 36 degrees,
            brightness, contrast and saturation +-20%, cutout of up to 10% of the image on half
            the images).
        mixup: MixUp's Beta alpha; 0 leaves it out.
        cutmix: CutMix's Beta factor; 0 leaves it out.
        seed: base seed of the random layers.
    """
    from keras import layers

    # Surface defects have no preferred orientation: every flip and rotation is a real view.
    flip = layers.RandomFlip("horizontal_and_vertical", seed=seed, name="flip", dtype=F32)
    rotate = layers.RandomRotation(strength, fill_mode="reflect", seed=seed + 1, name="rotate",
                                   dtype=F32)
    cutout = layers.RandomErasing(factor=(0.5, 0.5), scale=(0.02, min(1.0, strength)),
                                  fill_value=0.5, value_range=(0, 1), seed=seed + 3, name="cutout",
                                  dtype=F32)
    mixers = []
    if mixup > 0:
        mixers.append(layers.MixUp(alpha=mixup, seed=seed + 4, name="mixup", dtype=F32))
    if cutmix > 0:
        mixers.append(layers.CutMix(factor=cutmix, seed=seed + 5, name="cutmix", dtype=F32))

    def augment(images, labels):
        images = rotate(flip(images, training=True), training=True)
        images = cutout(colour_jitter(images, strength, seed + 2), training=True)
        for layer in mixers:
            mixed = layer({"images": images, "labels": labels}, training=True)
            images, labels = mixed["images"], mixed["labels"]
        return images, labels

    return augment


def colour_jitter(images, strength: float, seed: int):
    """Per-image brightness (+-2 x strength), contrast and saturation (x 1 +- 2 x strength).

    Plain element-wise TensorFlow ops: keras' RandomColorJitter converts every image to HSV and
    back, which made it the slowest step of the whole input pipeline (about 240 images/s on two
    CPU cores, below what training consumes); this is about ten times faster.
    """
    import tensorflow as tf

    shape = tf.stack([tf.shape(images)[0], 1, 1, 1])
    brightness = tf.random.uniform(shape, -2 * strength, 2 * strength, seed=seed)
    contrast = tf.random.uniform(shape, 1 - 2 * strength, 1 + 2 * strength, seed=seed + 1)
    saturation = tf.random.uniform(shape, 1 - 2 * strength, 1 + 2 * strength, seed=seed + 2)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = (images - mean) * contrast + mean + brightness
    grey = tf.reduce_mean(images, axis=-1, keepdims=True)
    return tf.clip_by_value(grey + (images - grey) * saturation, 0.0, 1.0)
