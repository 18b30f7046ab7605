"""The Keras backend and the precision policy: chosen once, before Keras is imported."""

from __future__ import annotations

import os
import sys


def select_backend(recipe, announce: bool = True) -> str:
    """Uses the recipe's preferred backend unless KERAS_BACKEND is set (before Keras loads).

    Also applies `DLKERAS_CPU_DEVICES` for JAX, which must happen before JAX starts.

    Returns:
        The backend Keras will use.
    """
    if "KERAS_BACKEND" not in os.environ and recipe.backend and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = recipe.backend
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    from dlkeras.engine.distribution import prepare_devices

    prepare_devices(backend)
    if announce:
        print(f"backend: {backend}")
    return backend


def configure_precision(mixed_precision: bool) -> None:
    """Mixed precision on an accelerator only: on CPUs it makes training 2-9x slower."""
    import keras

    if not mixed_precision:
        return
    if accelerator_present():
        keras.mixed_precision.set_global_policy("mixed_float16")
        print("mixed precision: mixed_float16")
    else:
        print("mixed precision requested but no GPU found; training in float32 (faster on CPUs)")


def accelerator_present() -> bool:
    """True when the active backend sees a GPU."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
