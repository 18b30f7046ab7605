"""effnet_defects end to end: freezing per stage and the image reports (on the session's smoke
run), and the augmented pipeline and Grad-CAM under JAX and PyTorch."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import prestart
import pytest

from dlkeras.runs import RunDir, read_history


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_stage_one_freezes_the_backbone_and_stage_two_unfreezes_the_top(smoke_run):
    run_dir, report = RunDir(smoke_run("effnet_defects")), smoke_run.report("effnet_defects")
    built = smoke_run.built("effnet_defects")
    model, initial = built["model"], built["initial"]

    def weights_after(stage):
        model.load_weights(run_dir.stage_weights(stage))
        return {w.path: np.copy(w) for w in model.weights}

    head, finetune = weights_after("head"), weights_after("finetune")
    unchanged = [p for p in initial if p.startswith("head_output") and np.array_equal(initial[p], head[p])]
    assert not unchanged, "the head did not learn in stage 1"
    for path in initial:  # every backbone weight, BatchNorm statistics included, stays frozen
        if not path.startswith("head"):
            assert np.array_equal(initial[path], head[path]), f"{path} moved while frozen"
    # the smoke run's Lite0 has one block per stage (model.depth=0.25); its top:20 is the head's
    # layer, the top conv, blocks 7a and 6a, and block 5a but for its expand conv
    top = ("top_conv/kernel", "top_bn/gamma", "block7a_project_conv/kernel", "block6a_dwconv/kernel",
           "block5a_expand_bn/gamma")
    for path in top:
        assert not np.array_equal(head[path], finetune[path]), f"{path} did not fine-tune"
    for path in ("stem_conv/kernel", "block1a_dwconv/kernel", "block4a_project_conv/kernel",
                 "block5a_expand_conv/kernel"):
        assert np.array_equal(head[path], finetune[path]), f"{path} is below top:20 but moved"
    stages = [row["stage"] for row in read_history(run_dir.history_csv)]
    assert list(dict.fromkeys(stages)) == ["head", "finetune"]

    metrics = json.loads(run_dir.metrics_json.read_text())
    extra = metrics["extra"]
    assert (run_dir.path / extra["gradcam_png"]).is_file()
    if extra["misclassified"]:
        assert (run_dir.path / extra["misclassified_png"]).is_file()
    assert set(metrics["model"]["per_class"]) == set(report["class_names"])


def test_top_20_of_the_full_lite0_is_the_top_conv_and_the_last_three_blocks():
    """What the recipe's fine-tuning stage (trainable="top:20") unfreezes at model.depth=1.0."""
    from dlkeras import config, models
    from dlkeras.data import DataInfo
    from dlkeras.engine.stages import set_trainable
    from dlkeras.models.structure import leaf_layers

    recipe = config.apply_overrides(config.load_recipe("effnet_defects"), ["model.weights=random"])
    info = DataInfo(task="classification", input_shape=(32, 32, 3), num_classes=6,
                    class_names=tuple("abcdef"))
    model = models.build(recipe.model, info)
    (stage,) = [s for s in recipe.train.stages if s.name == "finetune"]
    set_trainable(model, stage.trainable)
    trained = [layer.name for layer in leaf_layers(model) if layer.trainable]
    blocks = sorted({name.split("_")[0] for name in trained if name.startswith("block")})
    assert blocks == ["block6c", "block6d", "block7a"], trained
    assert {"top_conv", "top_bn", "head_output"} <= set(trained) and len(trained) == 20


OTHER_BACKEND = """
import keras
import numpy as np
from dlkeras import config, data
keras.utils.set_random_seed(0)
from dlkeras.tasks.image_report import grad_cam
from dlkeras.models import image_classifier
recipe = config.apply_overrides(config.load_recipe("effnet_defects"), [
    "data.max_examples=12", "data.image_size=32", "data.batch_size=6", "data.augment=true",
    "data.mixup=0.2", "data.cutmix=1.0", "model.weights=random"])
datasets = data.build(recipe.data, 0)
images, targets = next(iter(datasets.train))
assert tuple(images.shape) == (6, 32, 32, 3) and np.isfinite(np.asarray(images)).all()
inputs = keras.Input((32, 32, 3), name="pixels")  # a small backbone: JAX runs Lite0 eagerly op by op
features = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv")(inputs)
pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
backbone = keras.Model(inputs, pooled, name="backbone")
model = image_classifier.assemble(backbone, recipe.model, datasets.info)
maps = grad_cam(model, np.asarray(images)[:2], np.array([0, 2]))
assert maps.shape == (2, 15, 15) and np.isfinite(maps).all() and 0 <= maps.min() <= maps.max() <= 1
print("ok", keras.backend.backend())
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_augmented_pipeline_and_grad_cam_under_other_backends(backend):
    """Augmentation must stay in tf.data and Grad-CAM must use the backend's own autodiff. The
    generated images are the session's (in its DLKERAS_CACHE), not made again per backend."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = prestart.run([sys.executable, "-c", OTHER_BACKEND], env=env,
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith(f"ok {backend}")
