"""ONNX export (TensorFlow backend, through tf2onnx).

TensorFlow computes the exact GELU with `erfc`, which tf2onnx cannot convert; the model is
rebuilt with the same function written with `erf` (identical values) before conversion.
"""

from __future__ import annotations

import os
from pathlib import Path


def lower_for_onnx(model):
    """The model, or a copy with erf-based exact GELU when it uses exact GELU."""
    import keras

    from dlkeras.models.layers import gelu_erf

    config = model.get_config()
    lowered, count = _replace_gelu(config, keras.saving.serialize_keras_object(gelu_erf))
    if count:
        copy = model.__class__.from_config(lowered)
        copy.set_weights(model.get_weights())
        model = copy
    model(keras.tree.map_structure(_zeros_like_input, model.input))  # exporters want a called model
    return model


def _zeros_like_input(tensor):
    import numpy as np

    return np.zeros([dimension or 2 for dimension in tensor.shape], dtype=tensor.dtype)


def _replace_gelu(node, replacement):
    if isinstance(node, dict):
        if node.get("class_name") == "function" and node.get("config") == "gelu":
            return replacement, 1
        total, out = 0, {}
        for key, value in node.items():
            if key == "activation" and value == "gelu":
                out[key], found = replacement, 1
            else:
                out[key], found = _replace_gelu(value, replacement)
            total += found
        return out, total
    if isinstance(node, list):
        pairs = [_replace_gelu(value, replacement) for value in node]
        return [p[0] for p in pairs], sum(p[1] for p in pairs)
    return node, 0


def export_onnx(model, target: Path) -> Path:
    """Writes `target` (.onnx) through a temp file and a rename."""
    temp = target.with_name(f".{target.stem}.tmp.onnx")
    lower_for_onnx(model).export(str(temp), format="onnx", verbose=False)
    os.replace(temp, target)
    return target


def convert(job) -> dict:
    """The FORMATS converter: `job` is a `formats.Conversion`."""
    export_onnx(job.model, job.target)
    return {}
