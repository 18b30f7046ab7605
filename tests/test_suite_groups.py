"""How make test splits the suite across xdist workers (tests/conftest.py, tests/support.py)."""

import os
from pathlib import Path

import pytest
from support import (
    LONGEST_GROUPS,
    ROOT,
    SHARED_CACHE,
    SMOKE_RUN_USERS,
    SMOKE_RUNS,
    TESTS,
    share_cores,
    xdist_group,
)


def test_every_longest_group_names_a_test_folder_or_file():
    for group in [g for g in LONGEST_GROUPS if g != SMOKE_RUNS] + list(SMOKE_RUN_USERS):
        path = ROOT / group
        assert path.exists(), f"{group} in LONGEST_GROUPS no longer exists: update the list"
        assert path.is_dir() or path.name.startswith("test_"), group


def test_a_test_file_outside_a_fixture_folder_is_its_own_group():
    assert xdist_group(TESTS / "engine" / "test_budget.py") == "tests/engine/test_budget.py"
    assert xdist_group(TESTS / "test_workers.py") == "tests/test_workers.py"


def test_session_fixtures_live_only_where_their_tests_share_a_worker():
    """A session-scoped fixture outside such a folder would be built once per worker."""
    for conftest in TESTS.rglob("conftest.py"):
        if "scope=\"session\"" not in conftest.read_text():
            continue
        if conftest.parent == TESTS:  # its costly session fixtures: see the smoke-runs test below
            continue
        folder = conftest.parent.relative_to(ROOT).as_posix()
        groups = {xdist_group(sibling) for sibling in conftest.parent.glob("test_*.py")}
        assert groups == {SMOKE_RUNS if folder in SMOKE_RUN_USERS else folder}, folder
    for module in TESTS.rglob("test_*.py"):
        assert "scope=\"session\"" not in module.read_text(), (
            f"{module.relative_to(ROOT)} defines a session fixture: move it to a conftest.py")


def test_every_reader_of_the_smoke_runs_shares_their_group():
    """`smoke_run`, `trained` and `exported` train and export each recipe once per worker that
    asks: the functions that take them share one worker."""
    import re

    takes = re.compile(r"def \w+\([^)]*\b(smoke_run|trained|exported)\b")
    readers = [path for path in TESTS.rglob("*.py")
               if path.parent != TESTS or path.name.startswith("test_")
               if takes.search(path.read_text()) and path.name != "test_suite_groups.py"]
    assert readers, "no test reads the smoke runs: drop the group"
    for path in readers:
        assert xdist_group(path) == SMOKE_RUNS, \
            f"{path.relative_to(ROOT)} reads smoke_run: add it to SMOKE_RUN_USERS"
    examples = [TESTS / "export" / "test_export.py", TESTS / "serving" / "test_server.py",
                TESTS / "test_train.py"]
    assert {xdist_group(path) for path in examples} == {SMOKE_RUNS}


def test_under_xdist_each_group_runs_in_one_worker():
    """What make test relies on: the groups reach xdist's scheduler (a pytest release once broke
    that silently, and every worker then built every shared fixture)."""
    import re
    import subprocess
    import sys

    files = ["tests/test_config.py", "tests/data/test_splits.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "2", "--dist", "loadgroup",
         "--no-loadscope-reorder", *files], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    workers = {}
    for worker, nodeid in re.findall(r"^\[(gw\d+)\].*?PASSED (\S+)", result.stdout, re.MULTILINE):
        workers.setdefault(nodeid.split("::")[0], set()).add(worker)
    assert sorted(workers) == sorted(files)
    assert all(len(names) == 1 for names in workers.values()), workers


def test_workers_split_the_cores_between_them_and_keep_what_is_set():
    two_on_two = {"PYTEST_XDIST_WORKER_COUNT": "2"}
    share_cores(two_on_two, cores=2)
    assert two_on_two["TF_NUM_INTRAOP_THREADS"] == two_on_two["OMP_NUM_THREADS"] == "1"
    three_on_eight = {"PYTEST_XDIST_WORKER_COUNT": "3", "OMP_NUM_THREADS": "5"}
    share_cores(three_on_eight, cores=8)
    assert three_on_eight["TF_NUM_INTRAOP_THREADS"] == "2" and three_on_eight["OMP_NUM_THREADS"] == "5"
    four_on_two = {"PYTEST_XDIST_WORKER_COUNT": "4"}
    share_cores(four_on_two, cores=2)
    assert four_on_two["TF_NUM_INTRAOP_THREADS"] == "1"
    alone = {}
    share_cores(alone, cores=2)
    assert alone == {}
    controller = {}  # the xdist controller names its workers' count (its servers' settings)
    share_cores(controller, cores=8, workers=2)
    assert controller == {"TF_NUM_INTRAOP_THREADS": "4", "OMP_NUM_THREADS": "4"}


@pytest.mark.skipif(not os.environ.get(SHARED_CACHE), reason="only under make test's workers")
def test_under_xdist_every_worker_uses_the_folder_of_assets_the_controller_made():
    assert os.environ["DLKERAS_CACHE"] == os.environ[SHARED_CACHE]
    assert Path(os.environ[SHARED_CACHE]).is_dir()
