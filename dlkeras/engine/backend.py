"""The Keras backend and the precision policy: chosen once, before Keras is imported."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


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
    cache_jax_compilations(backend)
    if announce:
        print(f"backend: {backend}")
    return backend


JAX_CACHE_MAX_BYTES = 2 * 1024**3  # least recently used programs are evicted past this
JAX_CACHE_OPTIONS = {  # JAX reads each from its upper-case variable when it loads; the user's wins
    "jax_persistent_cache_min_compile_time_secs": 0,  # also a model build's many small compiles
    "jax_compilation_cache_max_size": JAX_CACHE_MAX_BYTES,  # with eviction, under a file lock
}


def cache_jax_compilations(backend: str) -> Path | None:
    """Keeps JAX's compiled programs on disk, in <cache>/jax (`presets.cache_dir`), where a later
    run, resume, worker process or search trial on this machine loads them instead of compiling
    again (an effnet_defects smoke run: 46 s, then 21 s). JAX keys each program by its
    computation, the machine and the library versions. A JAX_COMPILATION_CACHE_DIR of the user's
    is kept; DLKERAS_JAX_CACHE=0 turns it off. Returns the folder in use, None when off."""
    if backend != "jax" or os.environ.get("DLKERAS_JAX_CACHE") == "0":
        return None
    from dlkeras.presets import cache_dir

    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir() / "jax"))
    for option, value in JAX_CACHE_OPTIONS.items():
        os.environ.setdefault(option.upper(), str(value))
    if "jax" in sys.modules:  # loaded already (a notebook): its options, unless the user set them
        import jax

        if jax.config.jax_compilation_cache_dir is None:
            jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
            for option, value in JAX_CACHE_OPTIONS.items():
                jax.config.update(option, value)
    return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])


def configure_precision(train_config, announce: bool = True, recorded: str | None = None):
    """Chooses and sets the precision policy of `train.precision` (`engine.precision`).

    Args:
        recorded: the policy a resumed run recorded in its env.json, kept as it was.

    Returns:
        The `precision.Choice`, with the reason it was made (for env.json).
    """
    from dlkeras.engine import precision

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if recorded in precision.POLICIES and recorded != "auto":
        choice = precision.Choice(recorded, train_config.precision, "the policy of the run resumed")
    else:
        several = train_config.distribution == "multi_worker"  # JAX must not start before they connect
        choice = precision.choose(train_config.precision, backend,
                                  accelerator=None if several else accelerator_present(),
                                  several_processes=several)
    precision.apply(choice)
    if announce:
        print(f"precision: {choice.policy} ({choice.reason})")
    return choice


@contextlib.contextmanager
def precision_scope(train_config, announce: bool = True, recorded: str | None = None):
    """`configure_precision` for the duration of the block, which gets its `precision.Choice`;
    Keras' global policy is restored afterwards, so that the next model a notebook (or any caller
    in the same process) builds has the policy it had."""
    import keras

    previous = keras.mixed_precision.global_policy()
    try:
        yield configure_precision(train_config, announce, recorded)
    finally:
        keras.mixed_precision.set_global_policy(previous)


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


def build_training_state(model, train_data) -> None:
    """Creates the optimizer's and the compiled metrics' variables of a compiled `model` before
    `fit` traces its training step.

    With no tf.distribute strategy, Keras' TensorFlow trainer (3.15) leaves them to the first
    trace of the step, and a `tf.function` that creates variables is traced a second time
    without them: every stage paid for two traces of its step. Built here from the training
    data's element spec (no batch is read), the step is traced once. JAX and torch build them
    before fitting already, as Keras does under a strategy.
    """
    import keras

    build = getattr(model, "_symbolic_build", None)  # Keras' own build, as `fit` runs it
    spec = getattr(train_data, "element_spec", None)
    if (keras.backend.backend() != "tensorflow" or build is None or spec is None
            or getattr(model, "_distribute_strategy", None) is not None):
        return
    batch = keras.tree.map_structure(
        lambda item: keras.KerasTensor(item.shape, item.dtype.name), spec)
    build(data_batch=batch)
