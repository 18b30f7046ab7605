"""train.precision: what `auto` chooses on which machine, the probe's cache, float32 copies."""

import json
import zipfile

import numpy as np
import pytest

from dlkeras.engine import precision
from dlkeras.errors import ConfigError


def never_probed():
    raise AssertionError("the probe must not run here")


def test_auto_is_float32_on_a_cpu_without_bfloat16_units():
    choice = precision.choose("auto", "tensorflow", accelerator=False, flags={"avx2", "fma"},
                              measure=never_probed)
    assert choice.policy == "float32" and "no native bfloat16" in choice.reason


@pytest.mark.parametrize("bf16_gflops, expected", [(400.0, "mixed_bfloat16"), (210.0, "float32")])
def test_auto_takes_bfloat16_only_where_the_probe_shows_it_faster(bf16_gflops, expected):
    choice = precision.choose("auto", "tensorflow", accelerator=False, flags={"avx512_bf16"},
                              measure=lambda: {"float32_gflops": 200.0, "bfloat16_gflops": bf16_gflops})
    assert choice.policy == expected
    assert choice.probe["speedup"] == pytest.approx(bf16_gflops / 200.0, abs=0.01)
    assert choice.to_json()["probe"]["float32_gflops"] == 200.0


def test_auto_on_a_gpu_and_in_multi_worker_runs_needs_no_probe():
    assert precision.choose("auto", "jax", accelerator=True, measure=never_probed).policy == "mixed_float16"
    several = precision.choose("auto", "jax", accelerator=False, several_processes=True,
                               flags={"amx_bf16"}, measure=never_probed)
    assert several.policy == "float32" and "must agree" in several.reason


def test_a_named_policy_is_kept_and_its_cost_on_this_cpu_said():
    choice = precision.choose("mixed_bfloat16", "torch", accelerator=False, flags={"avx2"},
                              measure=never_probed)
    assert choice.policy == "mixed_bfloat16" and "emulated" in choice.reason
    assert "emulated" in precision.choose("mixed_float16", "torch", accelerator=False).reason
    assert precision.choose("float32", "torch", accelerator=False).reason == "set in the recipe"


def test_the_probe_runs_once_per_machine_and_backend(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setenv("DLKERAS_CACHE", str(tmp_path))
    monkeypatch.setattr(precision, "measure_matmul",
                        lambda: calls.append(1) or {"float32_gflops": 1.0, "bfloat16_gflops": 2.0})
    first = precision.cached_probe("tensorflow")
    second = precision.cached_probe("tensorflow")
    assert calls == [1] and "cached" not in first and second["cached"] is True
    assert list(json.loads((tmp_path / "precision_probe.json").read_text()).values()) == [
        {"float32_gflops": 1.0, "bfloat16_gflops": 2.0}]
    (tmp_path / "precision_probe.json").write_text("{damaged")
    precision.cached_probe("tensorflow")  # a damaged cache is measured again, not an error
    assert calls == [1, 1]


def test_the_probe_measures_both_dtypes():
    result = precision.measure_matmul(size=64, repeats=2)
    assert set(result) == {"float32_gflops", "bfloat16_gflops"} and min(result.values()) > 0


def test_an_unknown_policy_is_refused_with_the_choices():
    from dlkeras import validate

    with pytest.raises(ConfigError, match="train.precision.*mixed_bfloat16"):
        validate.resolve_recipe("mlp_churn", ["train.precision=bf16"])


def test_a_mixed_model_is_copied_to_float32_with_the_same_weights():
    import keras

    from dlkeras import config, models
    from dlkeras.data import DataInfo

    info = DataInfo("classification", (6,), num_classes=3, class_names=("a", "b", "c"))
    recipe_model = config.load_recipe("mlp_churn").model
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = models.build(recipe_model, info)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.layers[1].compute_dtype == "bfloat16"
    assert mixed.get_layer("head_output").compute_dtype == "float32"  # softmax stays float32
    copy = precision.as_float32(mixed)
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    for a, b in zip(mixed.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).standard_normal((8, 6)).astype("float32")
    np.testing.assert_allclose(copy.predict(x, verbose=0), mixed.predict(x, verbose=0), atol=0.02)
    assert precision.as_float32(copy) is copy


def test_a_bfloat16_run_saves_float32_and_its_exports_pass_the_gate(tmp_path):
    import keras

    from dlkeras import config, export
    from dlkeras.engine.run import train_recipe
    from dlkeras.models import load_inference_model

    module = config.load_recipe_module("mlp_churn")
    recipe = config.apply_overrides(module.RECIPE, [*module.SMOKE, "callbacks.tensorboard=false",
                                                    "train.precision=mixed_bfloat16"])
    run_dir, _ = train_recipe(recipe, tmp_path / "runs")
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run
    recorded = json.loads(run_dir.env_json.read_text())["precision"]
    assert recorded["policy"] == "mixed_bfloat16" and recorded["requested"] == "mixed_bfloat16"
    with zipfile.ZipFile(run_dir.model_file) as archive:
        assert "mixed_" not in archive.read("config.json").decode()
    assert {layer.compute_dtype for layer in load_inference_model(run_dir.model_file).layers} == {"float32"}
    report = export.export_run(run_dir.path, ["onnx", "tflite"], tmp_path / "saved", parity_limit=64,
                               latency_seconds=0.2)
    assert report["passed"] and all(check["passed"] for check in report["formats"].values())


def test_a_resumed_run_keeps_the_policy_it_recorded(tmp_path, capsys):
    from dlkeras import config
    from dlkeras.engine.backend import configure_precision
    from dlkeras.engine.run import recorded_policy

    recipe = config.load_recipe("mlp_churn")
    run = tmp_path / "mlp_churn-1"
    run.mkdir()
    (run / "recipe.json").write_text("{}")
    (run / "env.json").write_text(json.dumps({"precision": {"policy": "mixed_bfloat16"}}))
    assert recorded_policy(tmp_path, recipe, str(run)) == "mixed_bfloat16"
    assert recorded_policy(tmp_path, recipe, None) is None
    assert recorded_policy(tmp_path, recipe, str(tmp_path / "absent")) is None
    try:
        choice = configure_precision(recipe.train, recorded="mixed_bfloat16")
        assert choice.policy == "mixed_bfloat16" and "resumed" in choice.reason
        assert "precision: mixed_bfloat16" in capsys.readouterr().out
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")


def test_auto_rebuilds_a_model_too_small_for_bfloat16_in_float32():
    import keras

    def build():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    probe = {"float32_gflops": 100.0, "bfloat16_gflops": 300.0, "speedup": 3.0}
    auto = precision.Choice("mixed_bfloat16", "auto", "auto: ...", probe)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        small = build()
        model, choice = precision.fit_to_model(small, auto, build)
        assert choice.policy == "float32" and "too small" in choice.reason and choice.probe == probe
        assert model is not small and model.layers[0].compute_dtype == "float32"
        assert keras.mixed_precision.global_policy().name == "float32"
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        named = precision.Choice("mixed_bfloat16", "mixed_bfloat16", "set in the recipe")
        assert precision.fit_to_model(small, named, build) == (small, named)  # asked for: kept
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_augmentation_stays_float32_under_a_mixed_policy():
    import keras
    import tensorflow as tf

    from dlkeras.data.augment import build_geometric_augment, build_photo_augment

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        photo = build_photo_augment(0.1, mixup=0.2, cutmix=1.0, seed=0)
        geometric = build_geometric_augment(0.1, seed=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = tf.random.uniform((4, 16, 16, 3), seed=1)
    labels = tf.one_hot([0, 1, 2, 0], 3)
    augmented, mixed = tf.function(photo)(images, labels)  # as the tf.data pipeline traces it
    assert augmented.dtype == tf.float32 and mixed.dtype == tf.float32
    assert tf.function(geometric)(images).dtype == tf.float32


def test_a_search_trial_too_small_for_bfloat16_is_built_in_float32_and_the_policy_stays():
    import keras

    def small():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    def large():
        return keras.Sequential([keras.Input((400,)), keras.layers.Dense(400)])

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert precision.build_fitted(small, "auto").layers[0].compute_dtype == "float32"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # for the next trial
        assert precision.build_fitted(large, "auto").layers[0].compute_dtype == "bfloat16"
        assert precision.build_fitted(small, "mixed_bfloat16").layers[0].compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_check_run_in_this_process_leaves_the_global_policy_as_it_found_it(command, churn_like_csv,
                                                                             tmp_path):
    """A notebook (or a test) that runs a command's main goes on building float32 models."""
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"
    result = command(["--recipe", "mlp_churn", "--out", str(tmp_path), "--only", "data",
                      "--set", f"data.path={churn_like_csv}", "--set", "train.precision=mixed_bfloat16"],
                     module="dlkeras.check")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "precision: mixed_bfloat16" in result.stdout
    assert keras.mixed_precision.global_policy().name == "float32"
