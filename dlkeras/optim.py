"""Optimizers, learning-rate schedules and layer freezing for one training stage."""

from __future__ import annotations

from dlkeras.errors import ConfigError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "warmup_cosine", "plateau")
HEAD_PREFIX = "head"


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

    Args:
        backbone_learning_rate: the stage's rate for layers outside the head (discriminative
            fine-tuning, see `dlkeras.discriminative`); None trains every layer at
            `learning_rate`.
    """
    import keras

    if train.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer={train.optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if train.gradient_accumulation_steps < 1:
        raise ConfigError("train.gradient_accumulation_steps must be 1 or more")
    common = {
        "learning_rate": build_schedule(train, learning_rate, total_steps),
        "clipnorm": train.clipnorm or None,
        "gradient_accumulation_steps": (
            train.gradient_accumulation_steps if train.gradient_accumulation_steps > 1 else None
        ),
    }
    if backbone_learning_rate is not None:
        from dlkeras import discriminative

        if learning_rate <= 0 or backbone_learning_rate < 0:
            raise ConfigError(f"stage backbone_learning_rate={backbone_learning_rate} needs a "
                              f"positive stage learning_rate (got {learning_rate}) and must be >= 0")
        scaled = discriminative.CLASSES[train.optimizer]
        decay = {"weight_decay": train.weight_decay} if train.optimizer == "adamw" else {}
        momentum = {"momentum": 0.9, "nesterov": True} if train.optimizer == "sgd" else {}
        return scaled(backbone_scale=backbone_learning_rate / learning_rate, **decay, **momentum,
                      **common)
    if train.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=train.weight_decay, **common)
    if train.optimizer == "adam":
        return keras.optimizers.Adam(**common)
    return keras.optimizers.SGD(momentum=0.9, nesterov=True, **common)


def set_trainable(model, trainable: str) -> int:
    """Freezes layers for a stage and returns the number of trainable weights left.

    Args:
        trainable: "all"; "head" (layers named head*); "top:N" (the last N layers with weights,
            plus the head). Frozen BatchNormalization layers run in inference mode.
    """
    layers = leaf_layers(model)
    if trainable == "all":
        chosen = set(map(id, layers))
    elif trainable == "head":
        chosen = {id(layer) for layer in layers if _in_head(model, layer)}
    elif trainable.startswith("top:") and trainable[4:].isdigit():
        count = int(trainable[4:])
        chosen = {id(layer) for layer in layers[len(layers) - count :]}
        chosen |= {id(layer) for layer in layers if _in_head(model, layer)}
    else:
        raise ConfigError(
            f"stage trainable={trainable!r}; use 'all', 'head' or 'top:N' (e.g. 'top:20')"
        )
    for container in _containers(model):
        container.trainable = True
    for layer in layers:
        layer.trainable = id(layer) in chosen
    if not model.trainable_weights:
        raise ConfigError(
            f"stage trainable={trainable!r} leaves nothing to train in model {model.name!r}"
        )
    return len(model.trainable_weights)


def _containers(model) -> list:
    """Nested models (e.g. "backbone", "head") inside `model`."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found += [layer, *_containers(layer)]
    return found


def leaf_layers(model) -> list:
    """Layers holding weights, looking inside nested models, in order."""
    leaves = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            leaves += leaf_layers(layer)
        elif layer.weights:
            leaves.append(layer)
    return leaves


def _in_head(model, layer) -> bool:
    """A layer named head*, or any layer inside a nested model named head*."""
    if layer.name.startswith(HEAD_PREFIX):
        return True
    return any(
        container.name.startswith(HEAD_PREFIX) and any(inner is layer for inner in leaf_layers(container))
        for container in _containers(model)
    )
