"""Tiny finished runs shared by the export tests: each recipe trained once per session."""

import pytest


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """recipe name -> the path of a tiny finished run (SMOKE settings, TensorFlow backend)."""
    from dlkeras import config
    from dlkeras.engine.run import train_recipe

    out = tmp_path_factory.mktemp("runs")
    runs = {}

    def run_of(name: str):
        if name not in runs:
            module = config.load_recipe_module(name)
            recipe = config.apply_overrides(module.RECIPE, [*module.SMOKE, "callbacks.tensorboard=false"])
            runs[name] = train_recipe(recipe, out)[0].path
        return runs[name]

    return run_of
