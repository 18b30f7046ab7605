"""Grad-CAM under JAX and PyTorch (each in its own interpreter; TensorFlow runs in
tests/recipes/test_effnet_defects.py) and the overlay helpers."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import keras
import numpy as np
from dlkeras import config
from dlkeras.data import DataInfo
from dlkeras.image_report import grad_cam
from dlkeras.models import image_classifier
inputs = keras.Input((16, 16, 3), name="pixels")
features = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
backbone = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="avg_pool")(features),
                       name="backbone")
info = DataInfo(task="classification", input_shape=(16, 16, 3), num_classes=3, class_names=("a", "b", "c"))
model = image_classifier.assemble(backbone, config.ModelConfig(name="tiny", units=()), info)
maps = grad_cam(model, np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32), np.array([0, 2]))
assert maps.shape == (2, 14, 14) and np.isfinite(maps).all() and maps.min() >= 0 and maps.max() == 1
print("ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_grad_cam_runs_under_every_backend(backend):
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_overlay_and_one_per_class():
    from dlkeras.image_report import _one_per_class, overlay

    image = np.zeros((8, 8, 3), np.float32)
    blended = overlay(image, np.array([[0.0, 1.0], [0.5, 0.0]]))
    assert blended.shape == (8, 8, 3) and 0 <= blended.min() and blended.max() <= 1
    assert _one_per_class(np.array([0, 0, 1, 2, 2, 1]), 4).tolist() == [0, 2, 3, 1]
