"""How make test splits the suite across xdist workers (tests/conftest.py, tests/support.py)."""

from support import LONGEST_GROUPS, ROOT, TESTS, xdist_group


def test_every_longest_group_names_a_test_folder_or_file():
    for group in LONGEST_GROUPS:
        path = ROOT / group
        assert path.exists(), f"{group} in LONGEST_GROUPS no longer exists: update the list"
        assert path.is_dir() or path.name.startswith("test_"), group


def test_a_folder_with_session_fixtures_is_one_group_and_other_files_are_their_own():
    assert xdist_group(TESTS / "export" / "test_export.py") == "tests/export"
    assert xdist_group(TESTS / "serving" / "test_server.py") == "tests/serving"
    assert xdist_group(TESTS / "engine" / "test_budget.py") == "tests/engine/test_budget.py"
    assert xdist_group(TESTS / "test_workers.py") == "tests/test_workers.py"


def test_session_fixtures_live_only_where_their_tests_share_a_worker():
    """A session-scoped fixture outside such a folder would be built once per worker."""
    for conftest in TESTS.rglob("conftest.py"):
        if "scope=\"session\"" not in conftest.read_text():
            continue
        if conftest.parent == TESTS:  # the top conftest's session fixtures are cheap (a temp folder)
            continue
        sibling = next(conftest.parent.glob("test_*.py"))
        assert xdist_group(sibling) == conftest.parent.relative_to(ROOT).as_posix()
    for module in TESTS.rglob("test_*.py"):
        assert "scope=\"session\"" not in module.read_text(), (
            f"{module.relative_to(ROOT)} defines a session fixture: move it to a conftest.py")


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
