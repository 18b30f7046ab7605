"""Discriminative learning rates: optimizers that update the backbone slower than the head.

`DiscriminativeAdamW` (and the Adam / SGD variants) multiply the learning rate of every
variable outside the head (layers named head*) by `backbone_scale`, e.g. 0.01 for a 1e-5
backbone beside a 1e-3 head. The scale is applied per variable inside `update_step` (in the
fused PyTorch update, per group of variables that share a scale), so it works the same on
TensorFlow, JAX and PyTorch, composes with any schedule, and is part of the
optimizer's config (checkpoints reload in safe mode). AdamW's decoupled weight decay still
uses the head's rate: at the recipe's 1e-4 decay that is a 1e-7 shrink per step, negligible.
"""

from __future__ import annotations

import keras

from dlkeras.engine.fused_adam import FusedAdamUpdate
from dlkeras.models.structure import is_head_variable


class _BackboneScale:
    """Mixin: learning rate x `backbone_scale` for variables whose path does not start with head."""

    def __init__(self, backbone_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone_scale = float(backbone_scale)
        self._scales: list[float] = []

    def build(self, variables):
        super().build(variables)
        self._scales = [1.0 if is_head_variable(v) else self.backbone_scale for v in variables]

    def _variable_learning_rate_scale(self, variable) -> float:
        return self._scales[self._get_variable_index(variable)] if self._scales else 1.0

    def update_step(self, gradient, variable, learning_rate):
        scale = self._variable_learning_rate_scale(variable)
        if scale != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, scale)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "backbone_scale": self.backbone_scale}


@keras.saving.register_keras_serializable(package="dlkeras")
class DiscriminativeAdamW(_BackboneScale, FusedAdamUpdate, keras.optimizers.AdamW):
    """AdamW (fused on TensorFlow and PyTorch) whose non-head variables learn at
    `backbone_scale` times the rate."""


@keras.saving.register_keras_serializable(package="dlkeras")
class DiscriminativeAdam(_BackboneScale, FusedAdamUpdate, keras.optimizers.Adam):
    """Adam (fused on TensorFlow and PyTorch) whose non-head variables learn at `backbone_scale`
    times the rate."""


@keras.saving.register_keras_serializable(package="dlkeras")
class DiscriminativeSGD(_BackboneScale, keras.optimizers.SGD):
    """SGD whose non-head variables learn at `backbone_scale` times the rate."""


CLASSES = {"adamw": DiscriminativeAdamW, "adam": DiscriminativeAdam, "sgd": DiscriminativeSGD}
