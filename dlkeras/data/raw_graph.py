"""Raw inputs -> model inputs in TensorFlow ops: the raw-input signature of an exported SavedModel.

`raw.RawInputs` converts raw inputs in Python for predict and the parity gate; a SavedModel
client (TF Serving, or any program with only TensorFlow) has no dlkeras to do that, so the
SavedModel carries the same conversion as a graph. Each data kind's module builds its own
(`build_raw_signature(preprocessing, folder) -> RawSignature`), from the same preprocessing
and, where it can, the same TensorFlow functions its training pipeline runs (the tokenizer and
packer for texts, `image_decode.decode_image` for images), so the graph feeds the model exactly
what training and predict fed it. The parity gate checks that: it feeds the test split through
the signature (`RawSignature.feed`) and compares the answers with the Keras model's.

Inputs are named after what they hold (`text`, `image_bytes`, a table's columns, `date` and
the series' columns); TF Serving's REST API decodes `{"b64": ...}` for inputs whose name ends
in `_bytes`. Classifiers answer `probabilities` and `label` (the class name), forecasters
`forecast` (original units) and `date` (the forecast days).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RawSignature:
    """One data kind's raw-input signature, built from a run's preprocessing.

    Attributes:
        spec: input name -> `tf.TensorSpec` of the signature's raw inputs.
        model_inputs: (dict of raw input tensors) -> the model's inputs, in TensorFlow ops.
        outputs: (raw input tensors, model output tensor) -> the named outputs.
        feed: (a split, example indices) -> the signature's inputs for those examples as numpy
            arrays (the parity gate's raw feed, built from the split's raw inputs).
        comparable: named outputs (numpy) -> an array comparable with the model's own outputs.
        trackables: Keras layers whose state the graph reads (the tokenizer), saved with it.
    """

    spec: dict
    model_inputs: Callable
    outputs: Callable
    feed: Callable
    comparable: Callable
    trackables: list = field(default_factory=list)


def build_raw_signature(preprocessing: dict, folder=None) -> RawSignature:
    """The raw-input signature of the data kind named in `preprocessing`.

    Args:
        preprocessing: the run's (or export's) checked `preprocessing.json`.
        folder: the export folder (a text model's tokenizer is read from it), or None.
    """
    from dlkeras.data import KINDS

    kind = KINDS[preprocessing["kind"]]
    module = importlib.import_module(kind.signature_module or kind.module)
    return module.build_raw_signature(preprocessing, folder)


def input_name(column: str, taken: set[str]) -> str:
    """A SavedModel input name for a column: letters, digits and "_" only, not starting with a
    digit, and unlike every name in `taken` (which it joins)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(column)) or "column"
    if not name[0].isalpha():
        name = "c_" + name
    base, number = name, 2
    while name.lower() in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name.lower())
    return name


def input_names(columns) -> dict[str, str]:
    """column -> its SavedModel input name (`input_name`), for every column in order."""
    taken: set[str] = set()
    return {column: input_name(column, taken) for column in columns}


def classification_outputs(class_names) -> Callable:
    """(raw inputs, probabilities) -> {"probabilities", "label"}: the class name of the highest."""
    import tensorflow as tf

    names = tf.constant([str(name) for name in class_names])

    def outputs(raw, probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"probabilities": probabilities,
                "label": tf.gather(names, tf.argmax(probabilities, axis=1))}

    return outputs


def probabilities(outputs: dict) -> np.ndarray:
    """A classifier signature's outputs, comparable with the model's: its probabilities."""
    return np.asarray(outputs["probabilities"], dtype=np.float64)
