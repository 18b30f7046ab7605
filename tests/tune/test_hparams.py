"""Searches in TensorBoard's HParams view: a session per finished trial, one experiment, on
TensorFlow in one process and on JAX in a distributed search, never twice after --resume."""

import json
from collections import defaultdict

import pytest
from support import run_cli, write_customers_csv  # plain functions, for module fixtures

from dlkeras import config, tune
from dlkeras.runs import SearchDir, read_history

OBJECTIVE = "val_macro_f1"  # mlp_churn's tune.objective


def search_args(csv, out, trials, *extra):
    """A tiny random search of mlp_churn: 1- or 2-epoch trials in the calling process."""
    sets = [f"data.path={csv}", "model.units=(8,)", "tune.max_epochs=2",
            "tune.space.3.values=('(8,)', '(16,)')", "tune.trials_per_process=0"]
    return ["--recipe", "mlp_churn", "--tuner", "random", "--trials", str(trials),
            "--out", str(out), *[a for s in sets for a in ("--set", s)], *extra]


def read_events(folder) -> dict:
    """Tag -> [(step, value)] of the event files directly in `folder`: scalars as floats, the
    HParams plugin's messages parsed (experiment, session start and end)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import metadata

    parsers = {metadata.EXPERIMENT_TAG: metadata.parse_experiment_plugin_data,
               metadata.SESSION_START_INFO_TAG: metadata.parse_session_start_info_plugin_data,
               metadata.SESSION_END_INFO_TAG: metadata.parse_session_end_info_plugin_data}
    found = defaultdict(list)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag in parsers:
                    content = value.metadata.plugin_data.content
                    found[value.tag].append((event.step, parsers[value.tag](content)))
                else:
                    found[value.tag].append((event.step, float(tf.make_ndarray(value.tensor))))
    return found


def hparams_of(session_start) -> dict:
    """{key: value} of a SessionStartInfo, each value as the Python type it was written as."""
    def plain(value):
        kind = value.WhichOneof("kind")
        return {"number_value": value.number_value, "string_value": value.string_value,
                "bool_value": value.bool_value}[kind]
    return {key: plain(value) for key, value in session_start.hparams.items()}


def check_trials(search_dir: SearchDir, trials: int) -> None:
    """Each finished trial's folder: one event file holding its values, score and metrics."""
    from tensorboard.plugins.hparams import api_pb2, metadata

    rows = read_history(search_dir.trials_csv)
    assert [row["trial"] for row in rows] == [str(i) for i in range(trials)]
    for row in rows:
        folder = search_dir.trial_tensorboard_dir(row["trial"])
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1, folder
        events = read_events(folder)
        ((_, start),) = events[metadata.SESSION_START_INFO_TAG]
        assert start.group_name == row["trial"]
        record = json.loads(search_dir.trial_json(row["trial"]).read_text())
        values = hparams_of(start)
        assert set(values) == set(record["values"])
        for key in ("train.learning_rate", "train.weight_decay", "model.dropout"):
            assert values[key] == pytest.approx(record["values"][key], rel=1e-6)
        assert json.dumps(record["values"]["model.units"]) in ("[8]", "[16]")
        assert values["model.units"] == f"({record['values']['model.units'][0]},)"
        assert values["data.batch_size"] == record["values"]["data.batch_size"]
        ((_, score),) = events[f"score/{OBJECTIVE}"]
        assert score == pytest.approx(float(row[OBJECTIVE]), rel=1e-6)
        for name, history in record["history"].items():  # every metric, epoch by epoch
            assert [v for _, v in events[name]] == pytest.approx(history, rel=1e-6, nan_ok=True)
        assert events["epochs"][0][1] == record["epochs"]
        ((_, end),) = events[metadata.SESSION_END_INFO_TAG]
        assert end.status == api_pb2.STATUS_SUCCESS


def check_experiment(search_dir: SearchDir) -> None:
    """One experiment at the root: the searched keys with their domains, and the metrics."""
    from tensorboard.plugins.hparams import metadata

    root = search_dir.tensorboard_dir
    assert len(list(root.glob("events.out.tfevents.*"))) == 1
    ((_, experiment),) = read_events(root)[metadata.EXPERIMENT_TAG]
    infos = {info.name: info for info in experiment.hparam_infos}
    assert list(infos) == ["train.learning_rate", "train.weight_decay", "model.dropout",
                           "model.units", "data.batch_size"]
    assert (infos["train.learning_rate"].domain_interval.min_value,
            infos["train.learning_rate"].domain_interval.max_value) == (3e-4, 1e-2)
    assert {v.string_value for v in infos["model.units"].domain_discrete.values} == {"(8,)", "(16,)"}
    assert [v.number_value for v in infos["data.batch_size"].domain_discrete.values] == [32, 64, 128]
    tags = [info.name.tag for info in experiment.metric_infos]
    assert tags[0] == f"score/{OBJECTIVE}"
    assert {OBJECTIVE, "loss", "val_loss", "accuracy", "val_accuracy", "epochs"} <= set(tags)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(
        f"trial_{i}" for i in range(len(read_history(search_dir.trials_csv))))  # no temp left


@pytest.fixture(scope="module")
def resumed_search(tmp_path_factory):
    """A 2-trial search in this process (TensorFlow), then resumed to 3 trials; the trial
    folders' files as they were before the resume."""
    folder = tmp_path_factory.mktemp("hparams")
    csv = write_customers_csv(folder / "customers.csv", seed=3)
    assert tune.main(search_args(csv, folder / "runs", 2)) == 0
    search_dir = SearchDir((folder / "runs" / "latest" / "mlp_churn-tune").resolve())
    check_trials(search_dir, 2)
    check_experiment(search_dir)
    before = {path.relative_to(search_dir.path): path.stat().st_mtime_ns
              for path in search_dir.tensorboard_dir.rglob("events.out.tfevents.*")}
    assert tune.main(search_args(csv, folder / "runs", 3, "--resume")) == 0
    return search_dir, before


def test_every_trial_is_a_session_of_one_experiment(resumed_search):
    search_dir, _ = resumed_search
    check_trials(search_dir, 3)
    check_experiment(search_dir)


def test_resume_writes_no_trial_twice(resumed_search):
    search_dir, before = resumed_search
    trial_files = {path: mtime for path, mtime in before.items() if path.parent.name != "tensorboard"}
    assert len(trial_files) == 2
    for path, mtime in trial_files.items():  # the finished trials were left as they were
        assert (search_dir.path / path).stat().st_mtime_ns == mtime


def test_a_lost_trial_folder_is_written_again_at_the_end(resumed_search, tmp_path):
    """A worker stopped between a trial's record and its folder: the report fills it in."""
    import shutil

    from keras_tuner.engine.trial import Trial

    from dlkeras.tuning import hparams

    search_dir, _ = resumed_search
    copy = SearchDir(tmp_path / search_dir.path.name)
    shutil.copytree(search_dir.path, copy.path)
    shutil.rmtree(copy.trial_tensorboard_dir("1"))
    trial = Trial.from_state(json.loads((copy.tuner_dir / "trial_1" / "trial.json").read_text()))
    hparams.write_search(copy, config.load_recipe("mlp_churn").tune, [trial])
    check_trials(copy, 3)


def test_distributed_search_under_jax(tmp_path):
    """Under JAX, a chief and a worker: the worker writes each trial, the chief the experiment."""
    csv = write_customers_csv(tmp_path / "customers.csv", seed=4)
    args = search_args(csv, tmp_path / "runs", 2, "--workers", "1", "--set", "tune.max_epochs=1")
    result = run_cli(args, module="dlkeras.tune", env={"KERAS_BACKEND": "jax"}, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    search_dir = SearchDir((tmp_path / "runs" / "latest" / "mlp_churn-tune").resolve())
    assert json.loads(search_dir.env_json.read_text())["backend"] == "jax"
    records = [json.loads(path.read_text()) for path in (search_dir.path / "trials").glob("*.json")]
    assert {record["tuner"] for record in records} == {"tuner0"}
    check_trials(search_dir, 2)
    for record in records:  # written by the worker as the trial ended (the file names its pid)
        (event,) = search_dir.trial_tensorboard_dir(record["trial"]).glob("events.out.tfevents.*")
        assert event.name.split(".")[-3] == str(record["pid"])  # ...<host>.<pid>.<n>.v2
    check_experiment(search_dir)
