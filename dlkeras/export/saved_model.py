"""SavedModel export (TensorFlow backend) with two signatures.

- `serving_default` takes raw inputs (texts, encoded images, named table columns, recent days
  with their dates) and converts them in the graph (`data.raw_graph`), then answers named
  outputs: `probabilities` and `label`, or `forecast` and `date`. TF Serving and any program
  with only TensorFlow can call it (text models use TensorFlow Text's ops:
  `import tensorflow_text` registers them).
- `model_inputs` takes what the Keras model takes (token ids, scaled features) and answers its
  `output`: TFLite converts from it, and `predict --artifact` feeds it after converting raw
  inputs in Python.
"""

from __future__ import annotations

import shutil
from pathlib import Path

RAW_SIGNATURE = "serving_default"
MODEL_INPUTS = "model_inputs"


def export_saved_model(model, target: Path, raw) -> Path:
    """Writes `target/` (a SavedModel folder) through a temp folder and a rename.

    Args:
        raw: the data kind's `raw_graph.RawSignature`.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    for layer in raw.trackables:
        archive.track(layer)

    def from_raw(inputs):
        return raw.outputs(inputs, model(raw.model_inputs(inputs), training=False))

    def from_model_inputs(inputs):
        return {"output": model(inputs, training=False)}

    archive.add_endpoint(RAW_SIGNATURE, from_raw, input_signature=[raw.spec])
    archive.add_endpoint(MODEL_INPUTS, from_model_inputs, input_signature=[model_input_spec(model)])
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    archive.write_out(str(staging), verbose=False)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def model_input_spec(model):
    """TensorSpecs of the model's inputs, a batch of any size: one, or a dict of named ones."""
    import tensorflow as tf

    specs = {tensor.name: tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=tensor.name)
             for tensor in model.inputs}
    return specs if len(specs) > 1 else next(iter(specs.values()))


def convert(job) -> dict:
    """The FORMATS converter: `job` is a `formats.Conversion`."""
    raw = job.raw_signature()
    export_saved_model(job.model, job.target, raw)
    return {"signatures": {RAW_SIGNATURE: sorted(raw.spec), MODEL_INPUTS: "the model's own inputs"}}
