"""effnet_defects end to end on a tiny generated set: freezing per stage and the image reports."""

import json

import numpy as np
import pytest

from dlkeras import config, train
from dlkeras.runs import read_history


@pytest.fixture
def tiny_recipe(tmp_path):
    module = config.load_recipe_module("effnet_defects")
    return config.apply_overrides(module.RECIPE, [
        *module.SMOKE, "data.image_size=32", "train.stages.0.epochs=1",
        "train.stages.1.epochs=1", f"data.cache_dir={tmp_path / 'cache'}",
        "callbacks.tensorboard=false",
    ])


def test_stage_one_freezes_the_backbone_and_stage_two_unfreezes_the_top(tiny_recipe, tmp_path, model_spy):
    run_dir, report = train.train(tiny_recipe, tmp_path / "runs")
    model, initial = model_spy["model"], model_spy["initial"]

    def weights_after(stage):
        model.load_weights(run_dir.stage_weights(stage))
        return {w.path: np.copy(w) for w in model.weights}

    head, finetune = weights_after("head"), weights_after("finetune")
    unchanged = [p for p in initial if p.startswith("head_output") and np.array_equal(initial[p], head[p])]
    assert not unchanged, "the head did not learn in stage 1"
    for path in initial:  # every backbone weight, BatchNorm statistics included, stays frozen
        if not path.startswith("head"):
            assert np.array_equal(initial[path], head[path]), f"{path} moved while frozen"
    top = ("top_conv/kernel", "top_bn/gamma", "block7a_project_conv/kernel", "block6c_dwconv/kernel")
    for path in top:
        assert not np.array_equal(head[path], finetune[path]), f"{path} did not fine-tune"
    for path in ("stem_conv/kernel", "block1a_dwconv/kernel", "block5c_project_conv/kernel"):
        assert np.array_equal(head[path], finetune[path]), f"{path} is below top:20 but moved"
    assert [row["stage"] for row in read_history(run_dir.history_csv)] == ["head", "finetune"]

    metrics = json.loads(run_dir.metrics_json.read_text())
    extra = metrics["extra"]
    assert (run_dir.path / extra["gradcam_png"]).is_file()
    if extra["misclassified"]:
        assert (run_dir.path / extra["misclassified_png"]).is_file()
    assert set(metrics["model"]["per_class"]) == set(report["class_names"])
