"""engine.backend: JAX's compiled programs kept on disk between runs."""

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
