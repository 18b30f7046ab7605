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
    assert (first.c, first.class_weight, first.validation, first.temperature) == (
        second.c, second.class_weight, second.validation, second.temperature)
    assert first.c in linear_probe.C_GRID and first.class_weight in ("none", "balanced")


def validation_log_loss(probe, features) -> float:
    probabilities = probe.probabilities(features.x["val"])
    return float(-np.log(probabilities[np.arange(len(features.y["val"])), features.y["val"]]).mean())


def overlapping(num_classes: int, width: int, sizes, spread: float, seed: int) -> Features:
    """Unit-variance blobs whose centres lie `spread` apart per feature: they overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (num_classes, width))
    x, y = {}, {}
    for name, size in zip(("train", "val", "test"), sizes):
        y[name] = np.arange(size) % num_classes
        x[name] = (centres[y[name]] + rng.normal(0, 1, (size, width))).astype(np.float32)
    return Features(x, y)


@pytest.mark.parametrize("c, cooler", [(10.0, True), (0.01, False)])
def test_temperature_calibrates_the_probe_without_changing_its_predictions(c, cooler):
    """Many classes, 8 training examples each, 60 features. Weakly regularised (C=10) the
    probe separates its training set and is overconfident on validation: its temperature is
    above 1. Strongly regularised (C=0.01) it is underconfident: below 1. Either way no nearby
    temperature gives a lower validation log-loss, and the predictions stay."""
    features = overlapping(20, 60, (160, 400, 40), spread=0.3, seed=3)
    probe = linear_probe.fit(features, 20, "none", seed=0, c_grid=(c,))
    if cooler:
        assert probe.classifier.score((features.x["train"] - probe.mean) / probe.scale,
                                      features.y["train"]) == 1.0
    assert (probe.temperature > 1.5) if cooler else (probe.temperature < 0.7)
    calibrated = validation_log_loss(probe, features)
    predicted = probe.probabilities(features.x["val"]).argmax(axis=1)
    fitted = probe.temperature
    for other in (1.0, fitted * 0.8, fitted * 1.25):
        probe.temperature = other
        assert validation_log_loss(probe, features) > calibrated
        np.testing.assert_array_equal(probe.probabilities(features.x["val"]).argmax(axis=1), predicted)


def test_an_untrained_backbone_gives_a_small_head():
    """Near-constant features (an untrained backbone's are ~1e-13) are not blown up."""
    features = blobs(3, seed=2)
    for name in features.x:
        features.x[name] = features.x[name] * 1e-13
    kernel, _ = linear_probe.fit(features, 3, "none", seed=0).head_weights()
    assert np.abs(kernel).max() < 10


def test_a_probe_perfect_on_validation_is_kept_without_training(command, tmp_path):
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
    result = command(["--recipe", "effnet_defects", "--out", str(tmp_path / "runs"),
                  *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "latest" / "effnet_defects"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["linear_probe"]["validation"]["accuracy"] == 1.0
    assert (metrics["kept_stage"], metrics["train_seconds"]) == ("probe", {})
    assert not (run / "history.csv").exists()
    assert metrics["model"]["accuracy"] == metrics["baselines"]["linear_probe"]["accuracy"]
