"""Every exporter on a tiny trained model of each recipe family, with the parity gate."""

import json
from pathlib import Path

import numpy as np
import pytest
from support import FAMILIES

from dlkeras import config, export
from dlkeras.errors import ConfigError, RunError
from dlkeras.export import artifacts, parity, runtimes
from dlkeras.export.formats import ARTIFACTS, FORMATS


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_format_passes_parity(name, exported):
    report = exported[name]
    folder = Path(report["folder"])
    details = json.dumps(report["formats"], indent=1)[:3000]
    floats = {k: v for k, v in report["formats"].items() if not FORMATS[k].quantized}
    assert all(check["passed"] for check in floats.values()), details
    # Quantized verdicts on a random tiny model over a few dozen examples are noise (one
    # flipped near-tie moves accuracy by 4 points); their outputs must still agree closely.
    assert folder.name == (str(report["version"]) if report["passed"] else f"{report['version']}-failed")
    recipe = config.load_recipe(name)
    assert list(report["formats"]) == list(recipe.export.formats)
    for format_name in recipe.export.formats:
        check = report["formats"][format_name]
        assert (folder / FORMATS[format_name].file_name).exists()
        assert check["size_bytes"] > 0
        if FORMATS[format_name].quantized:
            # top-1 agreement is no measure here: a barely trained model's probabilities are
            # near-ties that int8 rounding may flip all at once (seen: agreement 0.0 at a
            # largest difference of 0.002); the outputs themselves must stay close
            limit = 0.1 if "accuracy" in check["metrics"] else 0.5  # probabilities; scaled units
            assert check["max_abs_difference"] < limit, details
        else:
            assert check["max_abs_difference"] <= parity.FLOAT_TOLERANCE
    for file_name in ("model.keras", "labels.json", "preprocessing.json", "export_report.json",
                      "export_summary.md"):
        assert (folder / file_name).is_file()
    assert set(report["latency_ms"]) >= {"keras predict", "keras compiled call", *recipe.export.formats}
    for format_name in recipe.export.formats:  # per example at each batch size, for the server
        timing = report["latency_ms"][format_name]
        assert set(timing["ms_per_example"]) == {"4", "8", "16", "32"}
        assert timing["best_batch_size"] in (None, 4, 8, 16)
        assert artifacts.recorded_batch_size(folder, format_name) == timing["best_batch_size"]
    float_size = (folder / "model.tflite").stat().st_size
    if float_size > 2**16:  # tiny layers stay float: dynamic range skips small weight tensors
        assert (folder / "model_dynamic.tflite").stat().st_size < 0.6 * float_size
    if name == "bert_tickets":
        assert (folder / "tokenizer" / "tokenizer.json").is_file()
        # the tiny BERT's 2 attentions (zero biases, left out by tf2onnx), checked on its
        # calibration texts and fused
        assert report["formats"]["onnx_int8"]["fused"]["attention"] == 2


def test_a_single_format_exports_on_its_own(trained, tmp_path):
    report = export.export_run(trained["mlp_churn"], ["onnx"], tmp_path, parity_limit=16,
                               latency_seconds=0.01)
    assert report["passed"] and list(report["formats"]) == ["onnx"]


def test_recurrent_models_refuse_int8_before_any_work(trained, tmp_path):
    with pytest.raises(ConfigError, match="tflite_int8: full-integer TFLite cannot calibrate recurrent"):
        export.export_run(trained["lstm_sales"], ["onnx", "tflite_int8"], tmp_path)
    assert not any(tmp_path.iterdir())


def test_unknown_format_and_unfinished_run_fail_before_work(tmp_path):
    with pytest.raises(ConfigError, match="unknown export format"):
        export.check_formats(["saved_model", "coreml"])
    with pytest.raises(RunError, match="not a finished run"):
        export.export_run(tmp_path, ["onnx"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("file_name, format_name", [("model.onnx", "onnx"), ("model.tflite", "tflite"),
                                                    ("model.keras", "keras")])
def test_corrupted_artifact_gives_a_clear_error(exported, tmp_path, file_name, format_name):
    broken = tmp_path / file_name
    source = Path(exported["mlp_churn"]["folder"]) / file_name
    broken.write_bytes(source.read_bytes()[: len(source.read_bytes()) // 3])
    with pytest.raises(RunError, match=f"{file_name}.*corrupt"):
        runtimes.load(format_name, broken)


def test_predict_takes_raw_inputs_for_every_format(exported, tmp_path, capsys):
    text_folder = Path(exported["bert_tickets"]["folder"])
    table_folder = Path(exported["mlp_churn"]["folder"])
    rows = tmp_path / "rows.csv"
    from dlkeras.data.sources import load_wa_churn

    load_wa_churn().head(4).to_csv(rows, index=False)
    for format_name in ("keras", *exported["bert_tickets"]["formats"]):
        text = predict_here(capsys, text_folder / file_of(format_name), "lost my bag", "great crew")
        assert "2 input(s)" in text and text.count("[") == 2
    for format_name in ("keras", *exported["mlp_churn"]["formats"]):
        table = predict_here(capsys, table_folder / file_of(format_name), "--input", str(rows))
        assert "4 input(s)" in table and ("Yes" in table or "No" in table)
    assert {"tflite_int8", "onnx", "saved_model"} <= set(exported["mlp_churn"]["formats"])


def test_predict_classifies_image_files(exported, tmp_path, cli):
    import tensorflow as tf

    folder = Path(exported["cnn_digits"]["folder"])
    image = (np.random.default_rng(0).random((28, 28, 1)) * 255).astype("uint8")
    tf.io.write_file(str(tmp_path / "digit.png"), tf.io.encode_png(image))
    output = predict(cli, folder / "model.onnx", str(tmp_path / "digit.png"))
    assert "1 input(s)" in output and "digit.png" in output
    missing = cli_predict(cli, folder / "model.onnx", str(tmp_path / "none.png"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def predict_here(capsys, artifact: Path, *inputs) -> str:
    """`python -m dlkeras.predict --artifact ...` in this process (TensorFlow is loaded already)."""
    from dlkeras import predict

    assert predict.main(["--artifact", str(artifact), *inputs]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def file_of(format_name: str) -> str:
    return ARTIFACTS[format_name].file_name


def cli_predict(cli, artifact: Path, *inputs):
    return cli(["--artifact", str(artifact), *inputs], module="dlkeras.predict",
               env={"KERAS_BACKEND": "tensorflow"})


def predict(cli, artifact: Path, *inputs) -> str:
    result = cli_predict(cli, artifact, *inputs)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
