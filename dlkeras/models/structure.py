"""Conventions every factory follows, and helpers that read them from a built model.

A model's task head is every layer whose name starts with `HEAD_PREFIX` (or a nested model
named so); backbone/head models nest a model named `BACKBONE` and one named `HEAD`. Stages,
discriminative rates, the feature cache, Grad-CAM and the exporters rely on these names.
"""

from __future__ import annotations

HEAD_PREFIX = "head"
BACKBONE, HEAD = "backbone", "head"
RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional")

# Keras' default 0.99 needs ~500 steps before the moving statistics forget their initial
# variance of 1; small data sets and fine-tuning runs train for fewer steps than that, so
# inference-mode outputs would be wrong for the first epochs. Every factory uses this value.
BN_MOMENTUM = 0.9


def containers(model) -> list:
    """Nested models (e.g. "backbone", "head") inside `model`, depth first."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found += [layer, *containers(layer)]
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


def in_head(model, layer) -> bool:
    """A layer named head*, or any layer inside a nested model named head*."""
    if layer.name.startswith(HEAD_PREFIX):
        return True
    return any(
        container.name.startswith(HEAD_PREFIX) and any(inner is layer for inner in leaf_layers(container))
        for container in containers(model)
    )


def is_head_variable(variable) -> bool:
    """A variable of a layer named head* (its path is "<layer name>/<variable name>")."""
    return variable.path.split("/")[-2].startswith(HEAD_PREFIX) if "/" in variable.path else False


def has_backbone_and_head(model) -> bool:
    """True for models built as inputs -> nested BACKBONE model -> nested HEAD model."""
    return {BACKBONE, HEAD} <= {layer.name for layer in model.layers}


def recurrent_layer_types(model) -> list[str]:
    """Sorted names of the recurrent layer types inside `model` (LSTM, GRU, ...)."""
    return sorted({type(layer).__name__ for layer in leaf_layers(model)
                   if type(layer).__name__ in RECURRENT_LAYERS})
