"""TFLite/LiteRT export: float, dynamic-range and int8 quantized.

Conversion starts from the SavedModel's `model_inputs` signature (its raw-input signature
converts texts and images with ops TFLite lacks). Recurrent layers (LSTM/GRU) cannot be lowered with a
dynamic batch dimension; for them the model is converted from a concrete function with batch
size 1, and the interpreter resizes its input for larger batches at run time. Their int8
calibration fails inside the converter (it cannot read the recurrent state variables), so
`int8_unsupported` rules that combination out before any work.

int8 is full integer quantization calibrated on a representative sample of the training
split. When some op has no int8 kernel (e.g. the exact GELU of BERT) the converter keeps that
op in float and the export report says so.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


def _from_saved_model(saved_model: Path, shared: dict | None):
    """The converter of the SavedModel's `model_inputs` signature. Creating one loads the
    SavedModel (seconds for EfficientNet-Lite0), so the conversions of one export share it
    through `shared`; each conversion sets every option it uses (the bytes are those of a new
    converter's)."""
    import tensorflow as tf

    from dlkeras.export.saved_model import MODEL_INPUTS

    key = ("tflite converter", str(saved_model))
    if shared is not None and key in shared:
        return shared[key]
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[MODEL_INPUTS])
    if shared is not None:
        shared[key] = converter
    return converter


def _converter(saved_model: Path, model, static_batch: bool, mode: str, representative,
               integer_only: bool, shared: dict | None = None):
    import tensorflow as tf

    if static_batch:
        spec = tf.TensorSpec([1, *model.inputs[0].shape[1:]], model.inputs[0].dtype)
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        frozen = convert_variables_to_constants_v2(function)  # weights as constants, not resources
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    else:
        converter = _from_saved_model(saved_model, shared)
    converter.optimizations = [tf.lite.Optimize.DEFAULT] if mode in ("dynamic", "int8") else []
    converter.representative_dataset = representative if mode == "int8" else None
    integer = mode == "int8" and integer_only
    converter.target_spec.supported_ops = {tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if integer
                                           else tf.lite.OpsSet.TFLITE_BUILTINS}
    return converter


def _convert(saved_model, model, mode, representative, integer_only, shared=None) -> tuple[bytes, bool]:
    """Flatbuffer bytes, and whether the batch dimension had to be fixed to 1."""
    try:
        converter = _converter(saved_model, model, False, mode, representative, integer_only, shared)
        return converter.convert(), False
    except Exception as dynamic_error:  # the converter raises ConverterError and others
        if len(model.inputs) != 1:
            raise dynamic_error
        converter = _converter(saved_model, model, True, mode, representative, integer_only)
        return converter.convert(), True


def export_tflite(saved_model: Path, model, target: Path, mode: str, representative=None,
                  shared: dict | None = None) -> dict:
    """Converts to `target` (.tflite); returns what was done, for the export report.

    Args:
        model: the Keras model behind `saved_model` (for the static-batch fallback).
        mode: "float", "dynamic" (int8 weights, float activations) or "int8".
        representative: for "int8", a callable yielding inputs from the training split.
        shared: a dict the conversions of one export share (the converter of `saved_model`).
    """
    details = {"mode": mode}
    convert = functools.partial(_convert, saved_model, model, mode, representative, shared=shared)
    if mode == "int8":
        try:
            flatbuffer, static = convert(integer_only=True)
            details["integer_only"] = True
        except Exception as error:  # some op has no int8 kernel: keep it in float
            flatbuffer, static = convert(integer_only=False)
            details["integer_only"] = False
            details["float_fallback_reason"] = str(error).strip().splitlines()[-1][:200]
    else:
        flatbuffer, static = convert(integer_only=False)
    if static:
        details["static_batch"] = "converted with batch 1; the interpreter resizes for larger batches"
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_bytes(flatbuffer)
    os.replace(temp, target)
    return details


def convert(job, mode: str) -> dict:
    """The FORMATS converter for `mode` ("float", "dynamic", "int8"); `job` is a
    `formats.Conversion` whose source is the SavedModel."""
    representative = job.calibration() if mode == "int8" else None
    return export_tflite(job.source, job.model, job.target, mode, representative, job.shared)


def int8_unsupported(model) -> str:
    """Why full-integer TFLite cannot have this model ("" when it can)."""
    from dlkeras.models.structure import recurrent_layer_types

    recurrent = recurrent_layer_types(model)
    if recurrent:
        return (f"full-integer TFLite cannot calibrate recurrent layers ({', '.join(recurrent)}); "
                "use tflite_dynamic (int8 weights) instead")
    return ""
