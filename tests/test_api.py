"""dlkeras's Python API: a tiny run trained, read back, asked for predictions and exported."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlkeras
from dlkeras import config


@pytest.fixture(scope="module")
def churn_run(tmp_path_factory):
    """mlp_churn with its SMOKE overrides, trained through the API (TensorFlow backend)."""
    recipe = dlkeras.load_recipe("mlp_churn", "callbacks.tensorboard=false", smoke=True)
    return dlkeras.fit(recipe, out=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def customers():
    """Five customers of the bundled table, without the label column."""
    return dlkeras.example_data("mlp_churn").dropna().drop(columns=["churn"]).tail(5)


def test_load_recipe_applies_strings_then_fields_then_smoke():
    module = config.load_recipe_module("mlp_churn")
    recipe = dlkeras.load_recipe("mlp_churn", "train.epochs=7", "model.dropout=0.1",
                                 model__units=(8, 4))
    assert (recipe.train.epochs, recipe.model.dropout, recipe.model.units) == (7, 0.1, (8, 4))
    small = dlkeras.load_recipe("mlp_churn", "train.epochs=7", smoke=True)
    assert small == config.apply_overrides(module.RECIPE, ["train.epochs=7", *module.SMOKE])
    assert dlkeras.smoke_overrides("mlp_churn") == module.SMOKE
    assert "train.epochs: 40 -> 3" in dlkeras.recipe_changes(small)


@pytest.mark.parametrize("overrides, fields, message", [
    (["train.epoch=1"], {}, "unknown key 'train.epoch'; did you mean 'train.epochs'"),
    ([], {"train__epoch": 1}, "unknown key 'train.epoch'; did you mean 'train.epochs'"),
    (["train.epochs=many"], {}, "train.epochs expects int"),
    ([], {"train__optimizer": "adamm"}, "train.optimizer='adamm' is not one of"),
    (["epochs"], {}, "must look like key=value"),
    ([["train.epochs=1"]], {}, "pass each one as its own argument"),
])
def test_a_bad_override_is_a_config_error(overrides, fields, message):
    with pytest.raises(dlkeras.ConfigError, match=message):
        dlkeras.load_recipe("mlp_churn", *overrides, **fields)


def test_unknown_recipes_and_smoke_of_a_toml_recipe_are_config_errors(tmp_path):
    with pytest.raises(dlkeras.ConfigError, match="unknown recipe 'mlp_chrun'; did you mean"):
        dlkeras.load_recipe("mlp_chrun")
    toml = tmp_path / "my_churn.toml"
    toml.write_text('extends = "mlp_churn"\n[train]\nepochs = 2\n')
    assert dlkeras.load_recipe(str(toml)).train.epochs == 2
    with pytest.raises(dlkeras.ConfigError, match="not a bundled recipe, so it has no SMOKE"):
        dlkeras.load_recipe(str(toml), smoke=True)


def test_import_dlkeras_loads_no_deep_learning_library():
    code = ("import sys, dlkeras\n"
            "recipe = dlkeras.load_recipe('mlp_churn', train__epochs=1)\n"
            "assert callable(dlkeras.fit) and 'fit' in dlkeras.__all__\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_fit_leaves_a_run_that_opens_with_its_metrics(churn_run):
    evaluation = churn_run.evaluate()
    assert 0.0 <= evaluation["model"]["accuracy"] <= 1.0
    assert set(evaluation["baselines"]) == {"logistic_regression", "gradient_boosting"}
    reopened = dlkeras.Run.open(churn_run.path)
    assert reopened.evaluate() == evaluation and reopened.recipe == churn_run.recipe
    assert reopened.metrics["recipe"] == "mlp_churn"
    assert "logistic_regression" in reopened.summary
    history = reopened.history()
    assert len(history) >= 1 and np.isfinite(history["loss"]).all()
    assert (reopened.report_dir / "confusion_matrix.png").is_file()


def test_run_open_refuses_a_folder_that_is_not_a_finished_run(tmp_path):
    with pytest.raises(dlkeras.RunError, match="is not a finished run"):
        dlkeras.Run.open(tmp_path)


def test_run_predicts_one_label_per_row(churn_run, customers):
    predictions = churn_run.predict(customers)
    classes = churn_run.metrics["class_names"]
    assert list(predictions.columns) == ["input", "label", "probability", *classes]
    assert len(predictions) == 5 and set(predictions["label"]) <= set(classes)
    np.testing.assert_allclose(predictions[classes].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(predictions["probability"], predictions[classes].max(axis=1))
    as_dicts = churn_run.predict(customers.to_dict("records"))
    assert list(as_dicts["label"]) == list(predictions["label"])
    with pytest.raises(dlkeras.DataError, match="table models read rows"):
        churn_run.predict(["not a row"])


def test_export_passes_the_gate_and_the_artifact_predicts_the_same_labels(churn_run, customers,
                                                                           tmp_path):
    report = churn_run.export(["onnx"], out=tmp_path, parity_limit=32, latency_seconds=0.05)
    assert report["passed"], report["formats"]
    folder = Path(report["folder"])
    expected = list(churn_run.predict(customers)["label"])
    onnx = dlkeras.load_predictor(folder / "model.onnx")
    assert list(onnx.predict(customers)["label"]) == expected
    assert list(dlkeras.load_predictor(folder).predict(customers)["label"]) == expected
    assert list(dlkeras.load_predictor(churn_run.path).predict(customers)["label"]) == expected


def test_forecast_from_the_model_own_days_and_from_recent_days(daily_sales_csv, tmp_path):
    recipe = dlkeras.load_recipe(
        "lstm_sales", *dlkeras.smoke_overrides("lstm_sales"), f"data.path={daily_sales_csv}",
        "data.date_column=day", "data.target_column=sales", "data.covariate_columns=('promotion',)",
        "data.input_days=10", "train.epochs=1", "callbacks.tensorboard=false",
        backend="tensorflow")  # the backend this session's Keras runs
    run = dlkeras.fit(recipe, out=tmp_path / "runs")
    own = run.predict()
    assert list(own.columns) == ["date", "sales", "low_80%", "high_80%"] and len(own) == 7
    assert own["date"].iloc[0] == pd.Timestamp("2024-04-30") and np.isfinite(own["sales"]).all()
    recent = pd.read_csv(daily_sales_csv).iloc[-40:-10]
    from_frame = run.predict(recent)
    assert from_frame["date"].iloc[0] == pd.Timestamp("2024-04-20")
    recent.to_csv(tmp_path / "recent.csv", index=False)
    pd.testing.assert_frame_equal(run.predict(tmp_path / "recent.csv"), from_frame)
    with pytest.raises(dlkeras.DataError, match="provide at least 10 days"):
        run.predict(recent.iloc[-5:])
