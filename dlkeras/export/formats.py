"""FORMATS: one entry per export format (placeholder names until the table lands)."""

from __future__ import annotations

FORMATS = ("saved_model", "tflite", "tflite_dynamic", "tflite_int8", "onnx")
