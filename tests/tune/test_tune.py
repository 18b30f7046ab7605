"""python -m dlkeras.tune: two-trial searches per tuner, resume, and the best recipe re-run."""

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

from dlkeras import config, train, tune, validate
from dlkeras.recipes import RECIPES
from dlkeras.runs import RunDir, SearchDir, read_history
from dlkeras.tuning import worker as trial_worker


def search_args(csv, out, tuner="random", trials=2, *extra):
    """A tiny search; trials run in the test's process unless `extra` sets trials_per_process."""
    sets = [f"data.path={csv}", "model.units=(8,)", "tune.max_epochs=2",
            "tune.space.3.values=('(8,)', '(16,)')", "tune.trials_per_process=0", *extra]
    return ["--recipe", "mlp_churn", "--tuner", tuner, "--trials", str(trials), "--out", str(out),
            *[a for s in sets for a in ("--set", s)]]


def latest_search(out) -> SearchDir:
    return SearchDir((out / "latest" / "mlp_churn-tune").resolve())


@pytest.fixture(scope="module")
def random_search(tmp_path_factory):
    """A finished 2-trial random search with trials in a worker process (shared by two tests)."""
    from support import write_customers_csv

    folder = tmp_path_factory.mktemp("search")
    csv = write_customers_csv(folder / "customers.csv", seed=1)
    assert tune.main(search_args(csv, folder / "runs", "random", 2,
                                 "tune.trials_per_process=10")) == 0
    return csv, latest_search(folder / "runs")


def check_search_outputs(search_dir: SearchDir, trials: int) -> list[dict]:
    for path in (search_dir.trials_csv, search_dir.trials_markdown, search_dir.trials_plot,
                 search_dir.best_recipe_toml, search_dir.best_json, search_dir.recipe_json,
                 search_dir.report_html):
        assert path.is_file(), path
    rows = read_history(search_dir.trials_csv)
    assert [row["trial"] for row in rows] == [str(i) for i in range(trials)]
    assert all(row["status"] == "COMPLETED" for row in rows)
    best = json.loads(search_dir.best_json.read_text())
    scores = [float(row["val_macro_f1"]) for row in rows]
    assert best["score"] == pytest.approx(max(scores)) and 0.0 <= best["score"] <= 1.0
    record = json.loads(search_dir.trial_json(rows[0]["trial"]).read_text())
    assert all(0.0 <= v <= 1.0 for v in record["history"]["val_macro_f1"])
    assert record["rss_mb"] > 0 and record["seconds"] > 0
    return rows


def test_random_search_two_trials_in_workers(random_search):
    _, search_dir = random_search
    rows = check_search_outputs(search_dir, 2)
    assert {row["epochs"] for row in rows} <= {"0-1", "0-2"}  # tune.max_epochs caps each trial
    workers = {json.loads(search_dir.trial_json(row["trial"]).read_text())["pid"] for row in rows}
    assert len(workers) == 1 and os.getpid() not in workers


@pytest.mark.parametrize("tuner, trials", [("bayesian", 2), ("hyperband", 4)])
def test_other_tuners(tuner, trials, churn_like_csv, tmp_path):
    # Hyperband with 3 epochs, factor 3: three 1-epoch trials, then the best continues to 3.
    extra = ["tune.max_epochs=3"] if tuner == "hyperband" else []
    assert tune.main(search_args(churn_like_csv, tmp_path, tuner, trials, *extra)) == 0
    rows = check_search_outputs(latest_search(tmp_path), trials)
    if tuner == "hyperband":
        assert [row["epochs"] for row in rows] == ["0-1", "0-1", "0-1", "1-3"]
        parent = next(r for r in rows[:3] if r["trial"] == rows[3]["continues"])
        assert parent["model.units"] == rows[3]["model.units"]


def test_interrupted_search_resumes_without_rerunning(churn_like_csv, tmp_path, monkeypatch):
    original, calls = trial_worker.fit_trial, []

    def interrupted_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of trial 1
        return original(*args, **kwargs)

    monkeypatch.setattr(trial_worker, "fit_trial", interrupted_second_trial)
    with pytest.raises(KeyboardInterrupt):
        tune.main(search_args(churn_like_csv, tmp_path))
    search_dir = latest_search(tmp_path)
    first = search_dir.trial_json("0")
    written = first.stat().st_mtime_ns
    assert not search_dir.trial_json("1").exists()
    interrupted = json.loads((search_dir.tuner_dir / "trial_1" / "trial.json").read_text())
    monkeypatch.setattr(trial_worker, "fit_trial", original)

    assert tune.main([*search_args(churn_like_csv, tmp_path), "--resume"]) == 0
    assert first.stat().st_mtime_ns == written  # trial 0 was not trained again
    rows = check_search_outputs(search_dir, 2)
    retried = json.loads((search_dir.tuner_dir / "trial_1" / "trial.json").read_text())
    assert retried["hyperparameters"]["values"] == interrupted["hyperparameters"]["values"]
    assert rows[1]["status"] == "COMPLETED"


def test_resume_refuses_another_tuner_recipe_or_data(churn_like_csv, tmp_path, capsys):
    recipe = config.apply_overrides(config.load_recipe("mlp_churn"), [f"data.path={churn_like_csv}"])
    search_dir = SearchDir.create(tmp_path, recipe, "not-this-data", label="tune")
    search_dir.search_json.write_text(json.dumps({"tuner": "hyperband"}))
    resume = ["--recipe", "mlp_churn", "--out", str(tmp_path), "--resume",
              "--set", f"data.path={churn_like_csv}"]
    for extra, message in [(["--tuner", "random"], "it is a hyperband search"),
                           (["--set", "model.dropout=0.1"], "model.dropout: 0.3 -> 0.1"),
                           ([], "the data changed")]:
        assert tune.main([*resume, *extra]) == 2
        assert message in capsys.readouterr().err


def test_best_recipe_reruns_through_train(random_search, tmp_path, command):
    csv, search_dir = random_search
    best = json.loads(search_dir.best_json.read_text())
    recipe = config.load_recipe(str(search_dir.best_recipe_toml))
    assert recipe.data.path == str(csv) and recipe.train.epochs == 2
    for key, value in best["values"].items():
        section, field = key.split(".")
        assert json.loads(json.dumps(config.to_dict(recipe)))[section][field] == value, key

    # The printed command resolves to the same recipe as the TOML file.
    printed = shlex.split(best["command"])
    assert printed[:3] == ["python", "-m", "dlkeras.train"]
    args = train.parse_args(printed[3:])
    assert validate.resolve_recipe(args.recipe, args.overrides) == config.apply_settings(
        recipe, {"name": "mlp_churn"})

    result = command(["--recipe", str(search_dir.best_recipe_toml), "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = RunDir((tmp_path / "latest" / "mlp_churn_tuned").resolve())
    assert config.from_dict(json.loads(run_dir.recipe_json.read_text())) == recipe
    assert run_dir.metrics_json.is_file()


@pytest.mark.parametrize("override, message", [
    ("tune.space.0.key=train.learnin_rate", "did you mean 'train.learning_rate'"),
    ("tune.space.0.low=0", "low > 0 for log_float"),
    ("tune.space.3.values=('wide',)", "model.units"),
    ("tune.objective=val_mae", "tune.objective='val_mae' is not one of 'val_loss'"),
    ("tune.space=()", "declares no search space"),
    ("train.stages=[{'name': 'a'}, {'name': 'b'}]", "a search trains one stage"),
])
def test_search_space_errors_exit_cleanly(override, message, capsys):
    assert tune.main(["--recipe", "mlp_churn", "--set", override]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_declared_search_space_is_valid(name):
    from dlkeras.tuning import space as search_space

    recipe = config.load_recipe(name)
    if recipe.tune.space:
        for tuner in search_space.TUNERS:
            search_space.check_tune(recipe, tuner)


def test_help_skips_heavy_imports():
    code = ("import sys; from dlkeras import tune; "
            "tune.parse_args(['--recipe', 'mlp_churn']);"
            "heavy = [m for m in ('tensorflow', 'keras', 'keras_tuner', 'jax', 'torch')"
            " if m in sys.modules]; assert not heavy, heavy")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    help_result = subprocess.run([sys.executable, "-m", "dlkeras.tune", "--help"],
                                 capture_output=True, text=True)
    assert help_result.returncode == 0 and "--resume" in help_result.stdout
    assert time.perf_counter() - started < 10  # generous: two interpreters, loaded machine


@pytest.mark.parametrize("raised, message", [
    ("diverged", "several trials in a row failed, the last with: keras_tuner.src.errors."
                 "FailedTrialError: loss became nan"),
    ("user", "column 'x' is missing"),
])
def test_failures_inside_trials_stop_cleanly(raised, message, churn_like_csv, tmp_path,
                                             monkeypatch, capsys):
    import keras_tuner

    from dlkeras.errors import DataError

    def failing_fit(*args, **kwargs):
        if raised == "diverged":
            raise keras_tuner.errors.FailedTrialError("loss became nan")
        raise DataError("column 'x' is missing")

    monkeypatch.setattr(trial_worker, "fit_trial", failing_fit)
    assert tune.main(search_args(churn_like_csv, tmp_path, "random", 5)) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
