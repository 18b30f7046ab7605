"""The session's smoke runs (tests/conftest.py `smoke_run`) by recipe family, each exported once
(`exported`)."""

import pytest
from support import FAMILIES


@pytest.fixture(scope="session")
def trained(smoke_run):
    """recipe -> the folder of its smoke run, for one recipe of each family."""
    return {name: smoke_run(name) for name in FAMILIES}


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory):
    """recipe -> the export report of its run in every format of its recipe."""
    from dlkeras import export

    out = tmp_path_factory.mktemp("saved_models")
    return {name: export.export_run(run, None, out, parity_limit=48, latency_seconds=0.02)
            for name, run in trained.items()}
