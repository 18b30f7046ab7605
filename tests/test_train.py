"""End-to-end: every recipe trains on its SMOKE overrides and leaves a complete run."""

import io
import json
import math
import shutil
import time
import zipfile

import h5py
import numpy as np
import pytest

from dlkeras import config
from dlkeras.engine.run import train_recipe
from dlkeras.recipes import RECIPES
from dlkeras.runs import RunDir, read_history

RUN_FILES = ("recipe.json", "env.json", "history.csv", "model.keras", "metrics.json",
             "preprocessing.json", "report/curves.png", "report/index.html")
TASK_FILES = {
    "classification": ("report/confusion_matrix.png", "report/confusion_matrix.json"),
    "forecast": ("report/predictions.png", "report/residuals.png", "report/summary.md",
                 "report/test_forecasts.csv"),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_smoke_run(name, smoke_run):
    # the session's smoke run keeps its stage weights, for the check that training moved them
    run_dir, report = RunDir(smoke_run(name)), smoke_run.report(name)
    recipe = config.from_dict(json.loads(run_dir.recipe_json.read_text()))
    assert recipe == config.apply_overrides(config.load_recipe(name), [
        *config.load_recipe_module(name).SMOKE, "train.keep_resume_state=True"])
    assert report["summary"].startswith(f"Test split of {name}")

    for relative in RUN_FILES + TASK_FILES[recipe.task]:
        assert (run_dir.path / relative).is_file(), relative
    assert any((run_dir.logs_dir).rglob("events.out.tfevents.*"))
    assert (run_dir.path.parent / "latest" / name).resolve() == run_dir.path
    losses = [float(row["loss"]) for row in read_history(run_dir.history_csv)]
    assert all(math.isfinite(v) for v in losses)
    metrics = json.loads(run_dir.metrics_json.read_text())
    if "probe" in metrics.get("candidates", []):
        # the head started at the linear probe's optimum, so the first epoch's loss is already
        # low; what must hold is that the kept weights are the best candidate on validation
        scores = metrics["stage_validation"]
        best = max(scores.values(), key=lambda m: (m["macro_f1"], m["accuracy"]))
        assert scores[metrics["kept_stage"]] == best
    else:
        assert losses[-1] < losses[0]
    built = smoke_run.built(name)  # the last stage trained every weight it left trainable
    model = built["model"]
    if "kept_stage" in metrics:  # model.keras holds the weights of the stage kept, exactly
        model.load_weights(run_dir.model_file)
        final = [np.copy(weight) for weight in model.weights]
        model.load_weights(run_dir.stage_weights(metrics["kept_stage"]))
        assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(final, model.weights, strict=True))
    model.load_weights(run_dir.stage_weights(config.stage_plan(recipe.train)[-1].name))
    for weight in model.trainable_weights:
        assert not np.array_equal(built["initial"][weight.path], np.asarray(weight)), weight.path
    assert metrics["model"]["examples"] == report["model"]["examples"] > 0
    if recipe.task == "classification":
        assert 0.0 <= metrics["model"]["accuracy"] <= 1.0
    else:
        assert 0.0 <= metrics["model"]["mae"] <= metrics["model"]["rmse"] < math.inf
        assert len(metrics["model"]["per_horizon"]["mae"]) == recipe.data.horizon_days
        assert set(metrics["beats_baselines"]) == set(recipe.evaluate.baselines)
    # a pretrained backbone (a nested "backbone" model) adds the linear probe on its features
    probe = {"linear_probe"} if "backbone" in [layer.name for layer in model.layers] else set()
    assert set(metrics["baselines"]) == set(recipe.evaluate.baselines) | probe
    recorded = json.loads(run_dir.env_json.read_text())
    assert recorded["seed"] == recipe.train.seed and recorded["backend"]


def weight_groups(path) -> set[str]:
    """Every group and dataset name in the archive's weights, e.g. "layers/head/optimizer"."""
    with zipfile.ZipFile(path) as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            names = []
            weights.visit(names.append)
            return set(names)


def test_finished_run_keeps_resume_state_only_when_asked_and_the_final_weights_once(
        smoke_run, tmp_path):
    """bert_tickets (backbone: feature cache, probe, two stages), finished with its resume
    state kept (the smoke run) and tidied as a run that keeps none (the default)."""
    from dlkeras.engine.run import finish

    run_dir = RunDir(smoke_run("bert_tickets"))
    recipe = config.from_dict(json.loads(run_dir.recipe_json.read_text()))
    assert recipe.train.keep_resume_state and run_dir.backbone_features.is_file()
    assert [p for p in run_dir.checkpoints_dir.iterdir() if p.name.endswith(".weights.h5")]
    assert not [name for name in weight_groups(run_dir.model_file) if "optimizer" in name]
    # keep_stage="best" weighed every stage's best epoch on validation: best.keras is one of them
    assert not run_dir.best_checkpoint.exists()
    assert not list(run_dir.path.rglob(".tmp-*"))

    copy = RunDir(tmp_path / run_dir.path.name)
    shutil.copytree(run_dir.path, copy.path)
    finish(copy, config.apply_overrides(recipe, ["train.keep_resume_state=False"]))
    left = sorted(p.name for p in copy.checkpoints_dir.iterdir())
    assert not [name for name in left if name.endswith(".weights.h5")], left
    assert "backbone_features.npz" not in left and copy.model_file.is_file()


def test_two_stage_training_freezes_then_unfreezes(tmp_path, model_spy):
    module = config.load_recipe_module("cnn_digits")
    recipe = config.apply_overrides(module.RECIPE, [
        *module.SMOKE, "train.epochs=1", "train.keep_resume_state=True",
        "train.stages=[{'name': 'head', 'trainable': 'head'}, "
        "{'name': 'all', 'learning_rate': 1e-4}]",
    ])
    run_dir, _ = train_recipe(recipe, tmp_path)
    model, initial = model_spy["model"], model_spy["initial"]

    def weights_after(stage):
        model.load_weights(run_dir.stage_weights(stage))
        return {w.path: np.copy(w) for w in model.weights}

    head, everything = weights_after("head"), weights_after("all")
    for path in initial:
        if path.startswith("head_output"):
            assert not np.array_equal(initial[path], head[path]), path
        elif "block1_conv1" in path or "block2_bn1/gamma" in path or "moving" in path:
            assert np.array_equal(initial[path], head[path]), f"{path} moved while frozen"
    assert not np.array_equal(head["block1_conv1/kernel"], everything["block1_conv1/kernel"])
    stages = [row["stage"] for row in read_history(run_dir.history_csv)]
    assert stages == ["head", "all"]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_smoke_under_other_backends(backend, tmp_path, cli):
    module = config.load_recipe_module("mlp_churn")
    sets = [arg for item in module.SMOKE for arg in ("--set", item)]
    cache = tmp_path / "cache"
    result = cli(["--recipe", "mlp_churn", "--out", str(tmp_path / "runs"), *sets],
                 env={"KERAS_BACKEND": backend, "DLKERAS_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = RunDir((tmp_path / "runs" / "latest" / "mlp_churn").resolve())
    # JAX keeps its compiled programs for the next run (engine.backend.cache_jax_compilations)
    kept = list((cache / "jax").iterdir()) if (cache / "jax").is_dir() else []
    assert bool(kept) == (backend == "jax"), kept[:3]
    assert json.loads(run_dir.env_json.read_text())["backend"] == backend
    losses = [float(row["loss"]) for row in read_history(run_dir.history_csv)]
    assert losses[-1] < losses[0]
    assert json.loads(run_dir.metrics_json.read_text())["model"]["roc_auc"] > 0.6


def test_help_and_list_skip_heavy_imports(cli):
    import subprocess
    import sys

    code = ("import sys; from dlkeras.train import main; main(['--list']);"
            "heavy = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules];"
            "assert not heavy, heavy")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "cnn_digits" in result.stdout and "mlp_churn" in result.stdout
    help_result = cli(["--help"])
    assert help_result.returncode == 0 and "--resume" in help_result.stdout
    assert time.perf_counter() - started < 10  # generous: both interpreters, loaded machine


def test_user_errors_exit_cleanly_without_traceback(tmp_path, command):
    result = command(["--recipe", "mlp_churn", "--set", f"data.path={tmp_path}/none.csv",
                      "--out", str(tmp_path)])
    assert result.returncode == 2
    assert "error:" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "latest").exists()
    result = command(["--recipe", "mlp_churn", "--set", "train.epoch=1"])
    assert result.returncode == 2 and "did you mean 'train.epochs'" in result.stderr
