"""Tiny finished runs shared by the export tests: each recipe trained once per session, and
exported once (`exported`)."""

import pytest
from support import FAMILIES


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


@pytest.fixture(scope="session")
def trained(smoke_run):
    """One tiny finished run per recipe family (SMOKE settings, TensorFlow backend)."""
    return {name: smoke_run(name) for name in FAMILIES}


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory):
    """recipe -> the export report of its run in every format of its recipe."""
    from dlkeras import export

    out = tmp_path_factory.mktemp("saved_models")
    return {name: export.export_run(run, None, out, parity_limit=48, latency_seconds=0.02)
            for name, run in trained.items()}
