"""Unsafe (Lambda) and corrupt model files: one `error:` line and exit 2 in every command."""

import json
import zipfile

import numpy as np
import pytest

from dlkeras import config, predict
from dlkeras.errors import RunError
from dlkeras.models import load_inference_model

CASES = {  # model.keras content -> what the error line says
    "lambda": "dlkeras never loads code from model files",
    "corrupt": "is corrupt, truncated or not a dlkeras model",
}


def double(values):
    return values * 2


def save_lambda_model(path, function=None):
    """A tiny functional model with a Lambda layer (refused by safe mode)."""
    import keras

    inputs = keras.Input((3,), name="features")
    doubled = keras.layers.Lambda(function or (lambda x: x * 2), name="doubled")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(doubled)
    keras.Model(inputs, outputs, name="with_lambda").save(path)


def write_finished_run(folder, model_bytes: bytes):
    """The files `RunDir.load_finished` needs, with `model_bytes` as model.keras."""
    folder.mkdir(parents=True)
    (folder / "recipe.json").write_text(json.dumps(config.to_dict(config.load_recipe("mlp_churn"))))
    (folder / "env.json").write_text(json.dumps({"backend": "tensorflow"}))
    (folder / "preprocessing.json").write_text(json.dumps(
        {"kind": "tabular", "task": "classification", "class_names": ["No", "Yes"]}))
    (folder / "model.keras").write_bytes(model_bytes)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One fake finished run per case: a Lambda model, and random bytes as model.keras."""
    root = tmp_path_factory.mktemp("runs")
    save_lambda_model(root / "lambda.keras")
    contents = {"lambda": (root / "lambda.keras").read_bytes(),
                "corrupt": np.random.default_rng(0).bytes(2000)}
    return {case: write_finished_run(root / case, data) for case, data in contents.items()}


def assert_one_error_line(result, case, path):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert str(path) in errors[0] and CASES[case] in errors[0], errors[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_refuses_with_one_error_line_and_writes_nothing(case, runs, tmp_path, cli):
    out = tmp_path / "saved_models"
    result = cli(["--run", str(runs[case]), "--out", str(out)], module="dlkeras.export")
    assert_one_error_line(result, case, runs[case] / "model.keras")
    assert not out.exists() or not any(out.rglob("*"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_artifact_refuses_with_one_error_line(case, runs, cli):
    model_file = runs[case] / "model.keras"
    result = cli(["--artifact", str(model_file), "x"], module="dlkeras.predict",
                 env={"KERAS_BACKEND": "tensorflow"})
    assert_one_error_line(result, case, model_file)


@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_run_refuses_with_one_error_line(case, runs, capsys):
    assert predict.main(["--run", str(runs[case]), "x"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert str(runs[case] / "model.keras") in error and CASES[case] in error


def test_a_lambda_of_a_named_function_is_refused_too(tmp_path):
    save_lambda_model(tmp_path / "named.keras", double)
    with pytest.raises(RunError, match=r"named\.keras holds Lambda layer\(s\) doubled.*never loads code"):
        load_inference_model(tmp_path / "named.keras")


def test_truncated_and_damaged_archives_are_corrupt(runs, tmp_path):
    import keras

    inputs = keras.Input((3,), name="features")
    keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs)).save(tmp_path / "good.keras")
    whole = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(whole[: len(whole) // 2])
    with zipfile.ZipFile(tmp_path / "good.keras") as source, \
            zipfile.ZipFile(tmp_path / "no_weights.keras", "w") as damaged:
        damaged.writestr("config.json", source.read("config.json"))
    for name in ("truncated.keras", "no_weights.keras"):
        with pytest.raises(RunError, match=f"{name} is corrupt, truncated or not a dlkeras model"):
            load_inference_model(tmp_path / name)
    with pytest.raises(RunError, match="missing.keras does not exist"):
        load_inference_model(tmp_path / "missing.keras")
