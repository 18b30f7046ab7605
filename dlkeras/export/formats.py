"""FORMATS: the export formats, one entry each; KERAS: the model.keras copied beside them.

An entry holds everything that differs by format: its file (or folder) in the export folder,
the converter that writes it, the runtime loader that answers with it, whether it is quantized
(the parity gate then compares task metrics, not outputs), the format it converts from (written
first: TFLite converts from the SavedModel) and what models it refuses. Adding a format means
adding one entry here; the export command, the parity gate, `predict --artifact` and the recipe
checks all read this table.

Importing this module imports neither TensorFlow nor Keras: converters and loaders import their
libraries inside their bodies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlkeras.errors import ConfigError
from dlkeras.export import loaders, onnx, onnx_int8, saved_model, tflite


@dataclass(frozen=True)
class Conversion:
    """What a converter is given.

    Attributes:
        model: the Keras model, reloaded under the TensorFlow backend.
        target: where the artifact goes (`Format.file_name` in the export folder).
        source: the artifact of `Format.converts_from`, already written; None without one.
        calibration: builds representative training inputs (int8 calibration) when called.
        raw_signature: builds the data kind's `data.raw_graph.RawSignature` when called.
        shared: what the conversions of one export share (a dict each converter keys its own
            entries in, e.g. the TFLite converter loaded from the SavedModel once).
    """

    model: object
    target: Path
    source: Path | None
    calibration: Callable[[], Callable]
    raw_signature: Callable[[], object]
    shared: dict


@dataclass(frozen=True)
class Format:
    """One kind of artifact.

    Attributes:
        name: the name in `--formats`, `export.formats` and the export report.
        file_name: its file (or folder, see `directory`) in the export folder.
        loader: path -> `predict(inputs)` in the artifact's own runtime.
        converter: Conversion -> details for the report; None: copied, never converted.
        quantized: compared on task metrics by the parity gate instead of outputs.
        converts_from: the format written first and handed to the converter as its source.
        unsupported: model -> why this model cannot have the format ("" when it can).
        directory: the artifact is a folder.
        raw_loader: path -> `predict(raw feed) -> named outputs` of the artifact's raw-input
            signature, which the parity gate checks too; None when it has none.
    """

    name: str
    file_name: str
    loader: Callable[[Path], Callable]
    converter: Callable[[Conversion], dict] | None = None
    quantized: bool = False
    converts_from: str | None = None
    unsupported: Callable[[object], str] | None = None
    directory: bool = False
    raw_loader: Callable[[Path], Callable] | None = None
    threaded: bool = False  # the loader takes `threads`; the export times the thread counts


KERAS = Format("keras", "model.keras", loaders.load_keras)  # copied from the run, not an export choice

FORMATS: dict[str, Format] = {entry.name: entry for entry in (  # export order: sources first
    Format("saved_model", "saved_model", loaders.load_saved_model, saved_model.convert,
           directory=True, raw_loader=loaders.load_saved_model_raw),
    Format("tflite", "model.tflite", loaders.load_tflite,
           functools.partial(tflite.convert, mode="float"), converts_from="saved_model",
           threaded=True),
    Format("tflite_dynamic", "model_dynamic.tflite", loaders.load_tflite,
           functools.partial(tflite.convert, mode="dynamic"), quantized=True,
           converts_from="saved_model", threaded=True),
    Format("tflite_int8", "model_int8.tflite", loaders.load_tflite,
           functools.partial(tflite.convert, mode="int8"), quantized=True,
           converts_from="saved_model", unsupported=tflite.int8_unsupported, threaded=True),
    Format("onnx", "model.onnx", loaders.load_onnx, onnx.convert, threaded=True),
    Format("onnx_int8", "model_int8.onnx", loaders.load_onnx, onnx_int8.convert, quantized=True,
           converts_from="onnx", threaded=True),
)}

ARTIFACTS: dict[str, Format] = {KERAS.name: KERAS, **FORMATS}  # every kind predict can load


def check_formats(formats) -> list[str]:
    """The requested formats in export order, with the formats they convert from.

    Raises:
        ConfigError: unknown names (before any work).
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        note = f" ({KERAS.file_name} is always written beside them)" if KERAS.name in unknown else ""
        raise ConfigError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}{note}")
    wanted = set(formats)
    for name in reversed(FORMATS):  # a source comes before the formats converted from it
        if name in wanted and FORMATS[name].converts_from:
            wanted.add(FORMATS[name].converts_from)
    return [name for name in FORMATS if name in wanted]
