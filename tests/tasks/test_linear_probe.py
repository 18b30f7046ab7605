"""The linear probe: settings chosen on validation, and a head that computes it exactly."""

import numpy as np
import pytest

from dlkeras.engine.feature_cache import Features
from dlkeras.tasks import linear_probe


def blobs(num_classes: int, seed: int, sizes=(120, 40, 40), width: int = 6) -> Features:
    """Gaussian blobs, one per class, with features on very different scales."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2, (num_classes, width))
    scales = np.geomspace(0.01, 100, width)
    x, y = {}, {}
    for name, size in zip(("train", "val", "test"), sizes):
        labels = np.arange(size) % num_classes
        x[name] = ((centres[labels] + rng.normal(0, 1.0, (size, width))) * scales).astype(np.float32)
        y[name] = labels
    return Features(x, y)


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("num_classes", [2, 4])
def test_head_weights_compute_the_probe(num_classes):
    features = blobs(num_classes, seed=0)
    probe = linear_probe.fit(features, num_classes, "none", seed=0)
    kernel, bias = probe.head_weights()
    assert kernel.shape == (6, num_classes) and bias.shape == (num_classes,)
    head = softmax(features.x["test"].astype(np.float64) @ kernel + bias)
    np.testing.assert_allclose(head, probe.probabilities(features.x["test"]), atol=1e-4)
    assert probe.validation["accuracy"] > 1 / num_classes + 0.2  # it learned the blobs


def test_settings_are_chosen_without_the_test_split():
    features = blobs(3, seed=1)
    first = linear_probe.fit(features, 3, "auto", seed=0)
    rng = np.random.default_rng(5)
    features.x["test"] = rng.normal(0, 50, features.x["test"].shape).astype(np.float32)
    features.y["test"] = rng.permutation(features.y["test"])
    second = linear_probe.fit(features, 3, "auto", seed=0)
    assert (first.c, first.class_weight, first.validation) == (second.c, second.class_weight,
                                                               second.validation)
    assert first.c in linear_probe.C_GRID and first.class_weight in ("none", "balanced")


def test_an_untrained_backbone_gives_a_small_head():
    """Near-constant features (an untrained backbone's are ~1e-13) are not blown up."""
    features = blobs(3, seed=2)
    for name in features.x:
        features.x[name] = features.x[name] * 1e-13
    kernel, _ = linear_probe.fit(features, 3, "none", seed=0).head_weights()
    assert np.abs(kernel).max() < 10


def test_a_probe_perfect_on_validation_is_kept_without_training(cli, tmp_path):
    """Solid-colour classes: the probe classifies all of validation right, so no stage runs."""
    import json

    from PIL import Image

    for index, name in enumerate(("red", "green", "blue")):
        (tmp_path / "parts" / name).mkdir(parents=True)
        for number in range(120):  # 54 validation images: enough for the shortcut
            pixels = np.full((16, 16, 3), 40 + number % 50, np.uint8)
            pixels[..., index] = 250
            Image.fromarray(pixels).save(tmp_path / "parts" / name / f"{number}.png")
    sets = [f"data.path={tmp_path / 'parts'}", "data.image_size=32", "data.batch_size=8",
            "data.augment=false"]
    result = cli(["--recipe", "effnet_defects", "--out", str(tmp_path / "runs"),
                  *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "latest" / "effnet_defects"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["linear_probe"]["validation"]["accuracy"] == 1.0
    assert (metrics["kept_stage"], metrics["train_seconds"]) == ("probe", {})
    assert not (run / "history.csv").exists()
    assert metrics["model"]["accuracy"] == metrics["baselines"]["linear_probe"]["accuracy"]
