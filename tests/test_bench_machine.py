"""bench/machine.py: the machine description every bench records, its atomic results file, the
median of a bench's runs and its timed runs (a fresh interpreter, a pytest run)."""

import importlib.util
import json
import math
import os
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def machine():
    # bench/ is a folder of scripts, not a package: load the module from its file
    spec = importlib.util.spec_from_file_location("bench_machine", ROOT / "bench" / "machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_describe_gives_every_field_with_sane_types(machine):
    described = machine.describe()
    assert isinstance(described["cpu"], str) and described["cpu"]
    assert isinstance(described["logical_cores"], int) and described["logical_cores"] >= 1
    physical = described["physical_cores"]
    assert physical is None or 1 <= physical <= described["logical_cores"]
    assert set(described["flags"]) <= set(machine.FLAGS)
    assert described["memory_gib"] is None or described["memory_gib"] > 0
    assert isinstance(described["os"], str) and isinstance(described["python"], str)
    assert set(described["packages"]) == set(machine.PACKAGES)
    for name, version in described["packages"].items():
        try:
            assert version == metadata.version(name)
        except metadata.PackageNotFoundError:
            assert version is None
    assert described["packages"]["numpy"]  # a dependency of every bench: installed here
    assert described["date"].endswith("+00:00")
    assert described["git_commit"] is None or len(described["git_commit"]) == 40
    load = described["load_average"]
    assert load is None or (len(load) == 3 and all(value >= 0 for value in load))
    json.dumps(described)


def test_summary_is_one_line_naming_cpu_cores_and_date(machine):
    described = machine.describe()
    line = machine.summary(described)
    assert "\n" not in line
    assert line.startswith(described["cpu"])
    assert f"{described['logical_cores']} cores" in line and described["date"][:10] in line


def test_write_results_writes_the_machine_command_and_results(machine, tmp_path):
    described = machine.describe()
    path = machine.write_results("demo", {"tensorflow": {"seconds": [1.0, 1.5], "ratio": math.nan}},
                                 path=tmp_path / "demo.json", machine=described,
                                 command=["bench/demo.py", "--rounds", "1"])
    written = json.loads(path.read_text())
    assert written["machine"] == described and written["date"] == described["date"]
    assert written["command"] == ["bench/demo.py", "--rounds", "1"]
    assert written["results"] == {"tensorflow": {"seconds": [1.0, 1.5], "ratio": None}}
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]


def test_a_table_that_is_not_json_keeps_the_previous_file_and_leaves_no_temp(machine, tmp_path):
    path = tmp_path / "demo.json"
    machine.write_results("demo", {"first": 1}, path=path)
    before = path.read_text()
    with pytest.raises(TypeError):
        machine.write_results("demo", {"second": object()}, path=path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]


def test_the_median_leaves_out_runs_that_failed(machine):
    runs = [{"wall": 1.0}, "Traceback (most recent call last): ...", {"wall": 4.0}, {"wall": 2.26}]
    assert machine.median_of(runs, "wall") == 2.26
    assert machine.median_of(runs, "wall", 1) == 2.3
    assert machine.median_of(["failed", "failed"], "wall") is None


def test_a_fresh_interpreter_gives_its_last_json_line_or_its_error(machine):
    printed = ("import json, os, sys; print('noise'); "
               "print(json.dumps([sys.argv[1], os.environ['KERAS_BACKEND']]))")
    assert machine.fresh_json(printed, "x", backend="jax") == ["x", "jax"]
    failed = machine.fresh_json("raise SystemExit('no such model: tiny')")
    assert isinstance(failed, str) and "no such model: tiny" in failed


def test_a_pytest_run_gives_its_seconds_or_the_end_of_its_output(machine, tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import os\n\ndef test_reads_its_environment():\n    assert os.environ['SAMPLE'] == 'set'\n")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    found = machine.timed_pytest([str(tmp_path / "test_sample.py")], {**environment, "SAMPLE": "set"})
    assert found["wall"] > 0 and found["cpu"] > 0
    failed = machine.timed_pytest([str(tmp_path / "test_sample.py")], {**environment, "SAMPLE": "no"})
    assert isinstance(failed, str) and "1 failed" in failed


def test_two_kinds_of_pytest_run_alternate_and_a_failed_kind_gets_no_ratio(machine, tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text("import os\n\n"
                      "def test_reads_its_environment():\n    assert os.environ['SAMPLE'] == 'a'\n")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    out = tmp_path / "pair.json"
    machine.compare_pytest_runs("pair", ("a", "b"), lambda kind: {**environment, "SAMPLE": kind}, [],
                                [str(sample)], 2, out)
    results = json.loads(out.read_text())["results"]
    assert [isinstance(run, dict) for run in results["runs"]["a"]] == [True, True]
    assert [isinstance(run, str) and "1 failed" in run for run in results["runs"]["b"]] == [True, True]
    assert results["medians"]["a"]["wall"] > 0 and results["medians"]["b"]["wall"] is None
    assert results["b_over_a"] == {"wall": None, "cpu": None}


def test_each_name_goes_first_in_turn_and_two_alternate(machine):
    assert [machine.in_turn(("a", "b"), index) for index in range(3)] == [["a", "b"], ["b", "a"], ["a", "b"]]
    assert [machine.in_turn(["a", "b", "c"], index)[0] for index in range(4)] == ["a", "b", "c", "a"]
    assert machine.in_turn([], 3) == []
