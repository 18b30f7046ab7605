"""Optimizers and learning-rate schedules for one training stage."""

from __future__ import annotations

from dlkeras.errors import ConfigError

# name -> (keras.optimizers class, its settings from the recipe's `train` section)
OPTIMIZERS = {
    "adamw": ("AdamW", lambda train: {"weight_decay": train.weight_decay}),
    "adam": ("Adam", lambda train: {}),
    "sgd": ("SGD", lambda train: {"momentum": 0.9, "nesterov": True}),
}
SCHEDULES = ("constant", "warmup_cosine", "plateau")


def build_schedule(train, learning_rate: float, total_steps: int):
    """The learning rate (a float or a Keras schedule) for a stage of `total_steps` batches.

    "warmup_cosine" ramps linearly from 0 over `warmup_fraction` of the steps, then follows a
    cosine to 0; "plateau" is a constant rate that ReduceLROnPlateau lowers; "constant" stays.
    """
    import keras

    if train.schedule not in SCHEDULES:
        raise ConfigError(f"train.schedule={train.schedule!r}; choose one of {list(SCHEDULES)}")
    if train.schedule != "warmup_cosine":
        return learning_rate
    warmup_steps = int(round(total_steps * train.warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
        name="warmup_cosine",
    )


def build_optimizer(train, learning_rate: float, total_steps: int,
                    backbone_learning_rate: float | None = None):
    """AdamW (default), Adam or SGD with clipping, accumulation and the stage's schedule.

    On TensorFlow and PyTorch, Adam and AdamW update, clip and decay with fused kernels
    (`dlkeras.engine.fused_adam`); JAX keeps Keras' classes (XLA fuses their element-wise ops).

    Args:
        backbone_learning_rate: the stage's rate for layers outside the head (discriminative
            fine-tuning, see `dlkeras.engine.discriminative`); None trains every layer at
            `learning_rate`.
    """
    import keras

    if train.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer={train.optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if train.gradient_accumulation_steps < 1:
        raise ConfigError("train.gradient_accumulation_steps must be 1 or more")
    class_name, settings = OPTIMIZERS[train.optimizer]
    options = {
        "learning_rate": build_schedule(train, learning_rate, total_steps),
        "clipnorm": train.clipnorm or None,
        "gradient_accumulation_steps": (
            train.gradient_accumulation_steps if train.gradient_accumulation_steps > 1 else None
        ),
        **settings(train),
    }
    if backbone_learning_rate is None:
        from dlkeras.engine import fused_adam

        classes = fused_adam.CLASSES if keras.backend.backend() in fused_adam.BACKENDS else {}
        return classes.get(class_name, getattr(keras.optimizers, class_name))(**options)
    from dlkeras.engine import discriminative

    if learning_rate <= 0 or backbone_learning_rate < 0:
        raise ConfigError(f"stage backbone_learning_rate={backbone_learning_rate} needs a "
                          f"positive stage learning_rate (got {learning_rate}) and must be >= 0")
    scaled = discriminative.CLASSES[train.optimizer]
    return scaled(backbone_scale=backbone_learning_rate / learning_rate, **options)
