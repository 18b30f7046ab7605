"""Grad-CAM overlay helpers (Grad-CAM itself runs in tests/recipes/test_effnet_defects.py,
under TensorFlow in-process and under JAX and PyTorch in their own interpreters)."""

import numpy as np


def test_overlay_and_one_per_class():
    from dlkeras.tasks.image_report import _one_per_class, overlay

    image = np.zeros((8, 8, 3), np.float32)
    blended = overlay(image, np.array([[0.0, 1.0], [0.5, 0.0]]))
    assert blended.shape == (8, 8, 3) and 0 <= blended.min() and blended.max() <= 1
    assert _one_per_class(np.array([0, 0, 1, 2, 2, 1]), 4).tolist() == [0, 2, 3, 1]
