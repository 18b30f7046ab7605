"""Exports a finished run to every deployment format and proves each one with the parity gate.

    saved_models/<recipe>/<version>/
        model.keras, saved_model/, model.tflite, model_dynamic.tflite, model_int8.tflite,
        model.onnx, model_int8.onnx, labels.json, preprocessing.json (+ tokenizer/ for text models),
        export_report.json, export_summary.md, index.html (the summary as a page)
    saved_models/<recipe>/<version>-failed/   the same, when an artifact failed the parity gate

Conversions run under the TensorFlow backend on a reload of the run's `model.keras`, so every
recipe gets every format whichever backend trained it. Exporting never trains.

    formats.py      FORMATS: per format its file, converter, runtime loader, quantized, source
    run.py          export_run: load, convert, check parity, write the version folder
    versions.py     version numbers claimed atomically; folders published only when complete
    saved_model.py, tflite.py, onnx.py, onnx_int8.py   the converters
    onnx_graph.py   rewrites of the tf2onnx graph for onnx_int8 (Gemm as MatMul, fusions)
    loaders.py, runtimes.py              each artifact in its own runtime
    parity.py, latency.py, summary.py    the gate, the timings (and the fastest), the report page
    artifacts.py    a run's model or any artifact with its preprocessing (predict); fastest_format
"""

from __future__ import annotations

from dlkeras.export.formats import FORMATS, check_formats
from dlkeras.export.run import export_run

__all__ = ["FORMATS", "check_formats", "export_run"]
