"""engine.backend: JAX's compiled programs kept on disk between runs; a training step traced
once on TensorFlow."""

import os

from dlkeras.engine import backend

CACHE_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", *map(str.upper, backend.JAX_CACHE_OPTIONS))


def test_jax_runs_keep_their_compilations_in_the_dlkeras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLKERAS_CACHE", str(tmp_path))
    for name in [*CACHE_VARIABLES, "DLKERAS_JAX_CACHE"]:
        monkeypatch.delenv(name, raising=False)
    assert backend.cache_jax_compilations("tensorflow") is None
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert backend.cache_jax_compilations("jax") == tmp_path / "jax"
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "jax")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]) == backend.JAX_CACHE_MAX_BYTES


def test_the_users_own_cache_folder_wins_and_zero_turns_it_off(tmp_path, monkeypatch):
    for name in CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert backend.cache_jax_compilations("jax") == tmp_path / "mine"
    monkeypatch.setenv("DLKERAS_JAX_CACHE", "0")
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    assert backend.cache_jax_compilations("jax") is None
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_each_stage_traces_its_training_step_once_on_tensorflow(tmp_path, monkeypatch):
    """Keras (3.15, TensorFlow, no strategy) creates the optimizer's and metrics' variables in
    the first trace of the step and then traces it again; built beforehand, it is traced once."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    from dlkeras import config
    from dlkeras.engine.run import train_recipe
    from dlkeras.runs import read_history

    traced, original = [], TensorFlowTrainer.train_step
    monkeypatch.setattr(TensorFlowTrainer, "train_step",
                        lambda self, data: traced.append(self.name) or original(self, data))
    module = config.load_recipe_module("cnn_digits")
    recipe = config.apply_overrides(module.RECIPE, [
        *module.SMOKE, "train.epochs=2", "callbacks.tensorboard=false", "evaluate.plots=false",
        "train.stages=[{'name': 'head', 'trainable': 'head'}, {'name': 'all'}]",
    ])
    run_dir, _ = train_recipe(recipe, tmp_path)
    history = read_history(run_dir.history_csv)
    assert [row["stage"] for row in history] == ["head", "head", "all", "all"]
    assert len(traced) == 2 and len(set(traced)) == 1, traced  # one trace per stage's compile
