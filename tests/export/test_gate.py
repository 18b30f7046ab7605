"""The parity gate against artifacts whose weights were changed after conversion.

Each converter is wrapped (a FORMATS entry replaced for the test) so that the real converter
writes the artifact and the file is then altered on disk; the real loader reads the altered file
and the real gate compares it with the Keras model. Nothing about the gate itself is changed.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from dlkeras import export
from dlkeras.export import parity
from dlkeras.export.__main__ import main as export_main
from dlkeras.export.formats import FORMATS

RECIPE = "mlp_churn"


def scale_largest_onnx_initializer(path: Path, factor: float = 1.01) -> None:
    """Multiplies the largest float weight tensor stored in an .onnx file by `factor`."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    floats = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    largest = max(floats, key=lambda t: int(np.prod(t.dims)))
    largest.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(largest) * np.float32(factor),
                                             largest.name))
    onnx.save(model, str(path))


def change_tflite_buffer(path: Path, choose, change) -> None:
    """Rewrites one float32 constant of a .tflite flatbuffer: `change(values) -> values`.

    Args:
        choose: (name, shape) of every float32 constant -> the chosen one's index.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    constants = [t for t in model.subgraphs[0].tensors
                 if t.type == 0 and model.buffers[t.buffer].data is not None]  # 0: FLOAT32
    tensor = constants[choose([(t.name.decode(), tuple(t.shape)) for t in constants])]
    buffer = model.buffers[tensor.buffer]
    values = np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), np.float32)
    buffer.data = np.frombuffer(change(values).astype(np.float32).tobytes(), np.uint8)
    flatbuffer_utils.write_model(model, str(path))


def scale_largest_tflite_weights(path: Path) -> None:
    change_tflite_buffer(path, lambda found: int(np.argmax([np.prod(shape) for _, shape in found])),
                         lambda values: values * 1.01)


def always_answer_churn(path: Path) -> None:
    """The output layer's bias set so that class 1 ("Yes") wins for every input."""
    def output_bias(found):
        return next(i for i, (name, shape) in enumerate(found) if "head_output" in name and len(shape) == 1)

    change_tflite_buffer(path, output_bias, lambda values: np.array([-50.0, 50.0]))


def always_answer_churn_onnx(path: Path) -> None:
    """The output layer's bias in an .onnx file set so that class 1 ("Yes") wins for every input."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    bias = next(t for t in model.graph.initializer if "head_output" in t.name and list(t.dims) == [2])
    bias.CopyFrom(numpy_helper.from_array(np.array([-50.0, 50.0], np.float32), bias.name))
    onnx.save(model, str(path))


@pytest.fixture
def tampered(monkeypatch):
    """tampered(format, change): the format's real converter, then `change(artifact path)`."""
    def replace(format_name, change):
        entry = FORMATS[format_name]

        def convert_then_change(job):
            details = entry.converter(job)
            change(job.target)
            return details

        monkeypatch.setitem(FORMATS, format_name, dataclasses.replace(entry, converter=convert_then_change))

    return replace


def only_entry(root: Path) -> str:
    """The one thing under `root` (a failed export leaves no partial or passing folder behind)."""
    names = sorted(p.name for p in root.iterdir())
    assert len(names) == 1, names
    return names[0]


def test_perturbed_onnx_fails_the_gate_and_the_command_exits_1(smoke_run, tampered, tmp_path,
                                                               monkeypatch, capsys):
    tampered("onnx", scale_largest_onnx_initializer)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # the command sets it; restored afterwards
    status = export_main(["--run", str(smoke_run(RECIPE)), "--formats", "onnx", "--out", str(tmp_path),
                          "--parity-examples", "32", "--latency-seconds", "0.01"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert only_entry(tmp_path / RECIPE) == "1-failed"
    folder = tmp_path / RECIPE / "1-failed"
    assert "SOME FORMATS FAILED" in out and f"written: {folder}" in out
    check = json.loads((folder / "export_report.json").read_text())["formats"]["onnx"]
    assert not check["passed"] and check["max_abs_difference"] > parity.FLOAT_TOLERANCE
    assert (folder / "model.onnx").is_file() and (folder / "export_summary.md").is_file()


def test_perturbed_float_tflite_fails_while_its_source_passes(smoke_run, tampered, tmp_path):
    tampered("tflite", scale_largest_tflite_weights)
    report = export.export_run(smoke_run(RECIPE), ["tflite"], tmp_path, parity_limit=32,
                               latency_seconds=0.01)
    checks = report["formats"]
    assert list(checks) == ["saved_model", "tflite"]
    assert checks["saved_model"]["passed"], checks  # converted from the same model, untouched
    assert not checks["tflite"]["passed"] and checks["tflite"]["max_abs_difference"] > parity.FLOAT_TOLERANCE
    assert not report["passed"] and only_entry(tmp_path / RECIPE) == "1-failed"
    assert Path(report["folder"]) == tmp_path / RECIPE / "1-failed"


def test_perturbed_quantized_tflite_fails_on_task_metrics(smoke_run, tampered, tmp_path):
    tampered("tflite_dynamic", always_answer_churn)
    report = export.export_run(smoke_run(RECIPE), ["tflite_dynamic"], tmp_path, parity_limit=48,
                               latency_seconds=0.01)
    check, reference = report["formats"]["tflite_dynamic"], report["keras_metrics"]
    drops = {name: reference[name] - check["metrics"][name] for name in reference}
    assert check["rule"] == "accuracy and macro-F1 drop <= 0.01"
    assert max(drops.values()) > 0.01, (reference, check["metrics"])  # the change made it worse
    assert not check["passed"] and not report["passed"]
    assert only_entry(tmp_path / RECIPE) == "1-failed"
    assert "SOME FORMATS FAILED" in (Path(report["folder"]) / "export_summary.md").read_text()


def test_perturbed_int8_onnx_fails_on_task_metrics_and_is_never_the_fastest(smoke_run, tampered,
                                                                            tmp_path):
    tampered("onnx_int8", always_answer_churn_onnx)
    report = export.export_run(smoke_run(RECIPE), ["onnx_int8"], tmp_path, parity_limit=48,
                               latency_seconds=0.01)
    checks, reference = report["formats"], report["keras_metrics"]
    assert checks["onnx"]["passed"], checks  # its source, untouched
    check = checks["onnx_int8"]
    drops = {name: reference[name] - check["metrics"][name] for name in reference}
    assert max(drops.values()) > 0.01, (reference, check["metrics"])
    assert not check["passed"] and not report["passed"]
    assert only_entry(tmp_path / RECIPE) == "1-failed"
    assert report["fastest"]["format"] == "onnx"  # the only format that passed


def test_a_raw_signature_that_converts_differently_fails_while_the_model_inputs_pass(smoke_run, monkeypatch,
                                                                                     tmp_path):
    entry = FORMATS["saved_model"]

    def convert_with_scaled_features(job):  # the graph's conversion 1% off the Python one
        real = job.raw_signature()
        wrong = dataclasses.replace(real, model_inputs=lambda raw: real.model_inputs(raw) * 1.01)
        return entry.converter(dataclasses.replace(job, raw_signature=lambda: wrong))

    monkeypatch.setitem(FORMATS, "saved_model",
                        dataclasses.replace(entry, converter=convert_with_scaled_features))
    report = export.export_run(smoke_run(RECIPE), ["saved_model"], tmp_path, parity_limit=32,
                               latency_seconds=0.01)
    check = report["formats"]["saved_model"]
    assert check["raw_signature"]["max_abs_difference"] > parity.FLOAT_TOLERANCE
    assert not check["raw_signature"]["passed"] and not check["passed"] and not report["passed"]
    assert check["max_abs_difference"] >= check["raw_signature"]["max_abs_difference"]
    summary = (tmp_path / RECIPE / "1-failed" / "export_summary.md").read_text()
    assert "raw-input signature `serving_default`" in summary and "FAILED" in summary
