"""The runtime of each artifact kind, wrapped as `predict(inputs) -> np.ndarray`.

`inputs` are model inputs: an array, or a dict of arrays for multi-input models (texts).
Every runtime is called batch by batch; shapes may change between batches (text batches are
trimmed to their longest text), which the TFLite interpreter handles by resizing its inputs.
The loaders are referenced by `formats.FORMATS`; `runtimes.load` calls them with clear errors.
Each imports its runtime library inside its body.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np


def _as_dict(inputs, names: list[str]) -> dict:
    if isinstance(inputs, dict):
        return inputs
    return {names[0]: inputs}


def load_keras(path: Path):
    from dlkeras.models import load_inference_model

    model = load_inference_model(path)
    return lambda inputs: np.asarray(model.predict_on_batch(inputs))


def saved_model_object(path: Path):
    """`tf.saved_model.load(path)`, loaded once while the folder's files stay as they were (an
    export's gate reads both signatures of its SavedModel: an EfficientNet's load takes 3 s)."""
    path = Path(path).resolve()
    stats = {file: file.stat() for file in path.rglob("*") if file.is_file()}
    files = tuple(sorted((str(file.relative_to(path)), stat.st_size, stat.st_mtime_ns)
                         for file, stat in stats.items()))
    return _load_saved_model(str(path), files)


@functools.lru_cache(maxsize=1)
def _load_saved_model(path: str, files: tuple):
    import tensorflow as tf

    return tf.saved_model.load(path)


def load_saved_model(path: Path):
    """The SavedModel's model-input signature (`serving_default` in exports that had no other)."""
    import tensorflow as tf

    from dlkeras.export.saved_model import MODEL_INPUTS, RAW_SIGNATURE

    loaded = saved_model_object(path)
    function = loaded.signatures.get(MODEL_INPUTS) or loaded.signatures[RAW_SIGNATURE]
    names = sorted(function.structured_input_signature[1])

    def predict(inputs):
        feed = {k: tf.constant(v) for k, v in _as_dict(inputs, names).items()}
        outputs = function(**feed)
        return np.asarray(next(iter(outputs.values())))

    return predict


def load_saved_model_raw(path: Path):
    """The SavedModel's raw-input signature: `predict(feed) -> {output name: array}`."""
    import tensorflow as tf

    from dlkeras.export.saved_model import RAW_SIGNATURE

    function = saved_model_object(path).signatures[RAW_SIGNATURE]
    specs = function.structured_input_signature[1]

    def predict(feed):
        outputs = function(**{name: tf.constant(feed[name], dtype=specs[name].dtype) for name in specs})
        return {name: value.numpy() for name, value in outputs.items()}

    return predict


def load_tflite(path: Path, threads: int = 2):
    """`predict(inputs)` of a .tflite file on `threads` interpreter threads."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    details = interpreter.get_input_details()
    names = [_input_name(d["name"]) for d in details]
    output = interpreter.get_output_details()[0]
    # converted with batch 1 (recurrent models): fed one example at a time
    row_by_row = all(d["shape_signature"][0] == 1 for d in details)
    state = {"shapes": None}

    def invoke(feed):
        shapes = [tuple(np.shape(feed[name])) for name in names]
        if shapes != state["shapes"]:
            for detail, shape in zip(details, shapes):
                interpreter.resize_tensor_input(detail["index"], shape, strict=False)
            interpreter.allocate_tensors()
            state["shapes"] = shapes
        for detail, name in zip(details, names):
            interpreter.set_tensor(detail["index"], _quantize(feed[name], detail))
        interpreter.invoke()
        return _dequantize(interpreter.get_tensor(output["index"]), output)

    def predict(inputs):
        feed = _as_dict(inputs, names)
        if not row_by_row:
            return invoke(feed)
        rows = len(next(iter(feed.values())))
        return np.concatenate([invoke({k: v[i : i + 1] for k, v in feed.items()}) for i in range(rows)])

    return predict


def _input_name(name: str) -> str:
    """TFLite names inputs after their signature, like "model_inputs_token_ids:0"."""
    return name.split(":")[0].removeprefix("serving_default_").removeprefix("model_inputs_")


def _quantize(values, detail):
    scale, zero = detail["quantization"]
    if detail["dtype"] in (np.int8, np.uint8) and scale:
        return np.round(np.asarray(values) / scale + zero).astype(detail["dtype"])
    return np.asarray(values).astype(detail["dtype"])


def _dequantize(values, detail):
    scale, zero = detail["quantization"]
    if detail["dtype"] in (np.int8, np.uint8) and scale:
        return (values.astype(np.float32) - zero) * scale
    return np.asarray(values, dtype=np.float32)


def load_onnx(path: Path, threads: int = 1):
    """`predict(inputs)` of a .onnx file on `threads` onnxruntime intra-op threads.

    One by default: on one 2-core machine a second thread made bert_tickets twice as slow
    (batch 1 int8: 4.5 -> 8.7 ms), on another it made it 1.3x faster (3.80 -> 2.84 ms). An
    export times both and records the faster in its report (`latency_ms.<format>.threads`),
    which `artifacts.load_artifact` then uses.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    types = {i.name: i.type for i in session.get_inputs()}

    def predict(inputs):
        feed = _as_dict(inputs, names)
        cast = {n: np.asarray(feed[n]).astype(np.int32 if "int32" in types[n] else
                                              np.int64 if "int64" in types[n] else np.float32)
                for n in names}
        return np.asarray(session.run(None, cast)[0])

    return predict
