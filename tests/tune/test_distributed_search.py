"""python -m dlkeras.tune --workers N: a chief and N worker processes share one search."""

import json

import pytest
from support import run_cli, write_customers_csv  # plain functions, for module fixtures

from dlkeras import tune
from dlkeras.runs import SearchDir, read_history
from dlkeras.tuning import cluster

TRIALS = 4


def search_args(csv, out, trials, workers, *extra):
    """A tiny random search: 1-epoch trials, each in its worker's own process."""
    sets = [f"data.path={csv}", "model.units=(8,)", "tune.max_epochs=1",
            "tune.space.3.values=('(8,)', '(16,)')", "tune.trials_per_process=0", *extra]
    return ["--recipe", "mlp_churn", "--tuner", "random", "--trials", str(trials),
            "--workers", str(workers), "--out", str(out),
            *[a for s in sets for a in ("--set", s)]]


def trial_records(search_dir: SearchDir) -> dict[str, dict]:
    paths = sorted((search_dir.path / "trials").glob("*.json"))
    return {path.stem: json.loads(path.read_text()) for path in paths}


def check_trials(search_dir: SearchDir, trials: int) -> dict[str, dict]:
    """Every trial once, COMPLETED, with one record of its own and values no other trial had."""
    rows = read_history(search_dir.trials_csv)
    assert [row["trial"] for row in rows] == [str(i) for i in range(trials)]
    assert all(row["status"] == "COMPLETED" for row in rows)
    records = trial_records(search_dir)
    assert sorted(records, key=int) == [row["trial"] for row in rows]
    assert all(record["trial"] == trial_id for trial_id, record in records.items())
    values = [json.dumps(record["values"], sort_keys=True) for record in records.values()]
    assert len(set(values)) == len(values)
    assert search_dir.best_recipe_toml.is_file() and search_dir.best_json.is_file()
    return records


@pytest.fixture(scope="module")
def distributed_search(tmp_path_factory):
    """A finished 4-trial random search run by a chief and 2 workers (shared by two tests)."""
    folder = tmp_path_factory.mktemp("distributed")
    csv = write_customers_csv(folder / "customers.csv", seed=2)
    result = run_cli(search_args(csv, folder / "runs", TRIALS, 2), module="dlkeras.tune",
                     timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return csv, folder / "runs", SearchDir((folder / "runs" / "latest" / "mlp_churn-tune").resolve()), result


def test_two_workers_share_the_trials(distributed_search):
    _, _, search_dir, result = distributed_search
    records = check_trials(search_dir, TRIALS)
    # Trials ran only in the processes started as workers (never in the launcher or the
    # chief, which have no tuner id or "chief"), and in both of them.
    tuners = {record["tuner"]: set() for record in records.values()}
    for record in records.values():
        tuners[record["tuner"]].add(record["pid"])
    assert set(tuners) == {"tuner0", "tuner1"}, tuners
    assert all(len(pids) == 1 for pids in tuners.values())
    assert len(set.union(*tuners.values())) == 2
    oracle = json.loads(cluster.oracle_file(search_dir).read_text())
    assert oracle["ongoing_trials"] == {} and sorted(oracle["end_order"]) == sorted(records)
    # The chief's output passes through: each trial as it ended, then the report.
    assert all(f"trial {i}: " in result.stdout for i in range(TRIALS))
    assert "best trial" in result.stdout and str(search_dir.best_recipe_toml) in result.stdout


def test_resumed_distributed_search_keeps_finished_trials(distributed_search):
    csv, out, search_dir, _ = distributed_search
    written = {path.name: path.stat().st_mtime_ns for path in (search_dir.path / "trials").iterdir()}
    # As a chief stopped right after trial 3 ended leaves the oracle: KerasTuner saves its
    # state before it lets go of an ended trial. And no chief.json, as after a search in one
    # process (whose tuner file is tuner0.json): the chief must reload the oracle anyway.
    oracle_path = cluster.oracle_file(search_dir)
    oracle = json.loads(oracle_path.read_text())
    oracle_path.write_text(json.dumps({**oracle, "ongoing_trials": {"tuner1": str(TRIALS - 1)}}))
    (search_dir.tuner_dir / "chief.json").unlink()
    result = run_cli([*search_args(csv, out, TRIALS + 1, 1), "--resume", str(search_dir.path)],
                     module="dlkeras.tune", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = check_trials(search_dir, TRIALS + 1)
    # No finished trial ran again, not even the one still counted as running: only 4 is new.
    assert {name: (search_dir.path / "trials" / name).stat().st_mtime_ns
            for name in written} == written
    assert records[str(TRIALS)]["tuner"] == "tuner0"


@pytest.mark.parametrize("args, env, message", [
    (["--workers", "-1"], {}, "--workers -1: pass 0 to search in this process"),
    (["--workers", "2"], {cluster.TUNER_ID: "tuner0", cluster.ORACLE_IP: "127.0.0.1",
                          cluster.ORACLE_PORT: "8000"}, "--workers 2 starts its own chief"),
    ([], {cluster.TUNER_ID: "tuner1"}, "KERASTUNER_TUNER_ID set but not KERASTUNER_ORACLE_IP"),
    ([], {cluster.TUNER_ID: "tuner1", cluster.ORACLE_IP: "127.0.0.1",
          cluster.ORACLE_PORT: "eighty"}, "KERASTUNER_ORACLE_PORT='eighty' is not a port"),
    ([], {cluster.TUNER_ID: "tuner1", cluster.ORACLE_IP: "127.0.0.1",
          cluster.ORACLE_PORT: "8000"}, "is a worker: it joins the chief's search, so pass --resume"),
])
def test_impossible_combinations_exit_cleanly(args, env, message, monkeypatch, capsys):
    for name in (cluster.TUNER_ID, cluster.ORACLE_IP, cluster.ORACLE_PORT):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tune.main(["--recipe", "mlp_churn", *args]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_search_finished_counts_ended_trials_only():
    # The oracle saves its state before it lets go of an ended trial: "1" is still running.
    state = {"start_order": ["0", "1"], "end_order": ["0", "1"], "ongoing_trials": {"t0": "1"}}
    assert cluster.search_finished(state, 2)
    assert not cluster.search_finished(state, 3)
    assert not cluster.search_finished({**state, "end_order": ["0"]}, 2)


def test_the_chief_checks_every_second_whether_the_last_workers_are_done(monkeypatch):
    """Once one worker was told that the search is over, the chief waits for the others in
    sleeps of `CHIEF_CHECK_SECONDS`, not KerasTuner's 20 s."""
    from types import SimpleNamespace

    from keras_tuner.src.distribute import oracle_chief

    from dlkeras.engine.workers import free_port

    slept, checks = [], iter([False, False, True])  # two workers still busy, then none

    class StoppedServicer(oracle_chief.OracleServicer):  # one worker was told "no trial left"
        def __init__(self, oracle):
            super().__init__(oracle)
            self.stop_triggered = True

    monkeypatch.setattr(cluster, "time", SimpleNamespace(sleep=slept.append))  # records only
    monkeypatch.setattr(oracle_chief, "OracleServicer", StoppedServicer)
    monkeypatch.setattr(oracle_chief, "exit_chief", lambda oracle: next(checks))
    tuner = SimpleNamespace(oracle=SimpleNamespace(verbose=1), save=lambda: None)
    cluster.serve_trials(tuner, f"{cluster.LOOPBACK}:{free_port()}")
    assert len(slept) == 3 and max(slept) == cluster.CHIEF_CHECK_SECONDS, slept
