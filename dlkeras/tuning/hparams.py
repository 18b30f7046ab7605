"""A search in TensorBoard's HParams view: one session per finished trial, one experiment.

    tensorboard --logdir SEARCH/tensorboard      (tab "HParams"; "Scalars" for the curves)

Each finished trial gets SEARCH/tensorboard/trial_<id>/ (`SearchDir.trial_tensorboard_dir`),
written by the process that ran it (a worker, in a distributed search): its values of the
searched keys, the tuner's score (`score/<objective>`: the objective at the trial's best
epoch), each metric per epoch under its own name (the view shows the last epoch's), and the
epochs and seconds it took. The experiment (the searched keys with their ranges, the metrics)
lies in SEARCH/tensorboard itself and is written by the search's own process or its chief.

Everything goes through `tf.summary`, which works whatever the Keras backend. A folder or
experiment written again (a resumed search, a trial run again after an interruption) replaces
the earlier one, so no trial appears twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from dlkeras import config
from dlkeras.runs import SearchDir
from dlkeras.tuning import space as search_space

SCORE_PREFIX = "score/"
COST_METRICS = {"epochs": "epochs trained (Hyperband: up to this one)",
                "seconds": "seconds the trial took"}


def write_trial(search_dir: SearchDir, tune: config.TuneConfig, trial_id: str,
                hp_values: dict, record: dict, score: float) -> Path:
    """Writes one finished trial's folder; returns it.

    Args:
        hp_values: KerasTuner's values of the trial (`trial.hyperparameters.values`).
        record: the trial's record (trials/<id>.json): history, epochs, seconds.
        score: what the tuner scored the trial by (the objective at its best epoch).
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hparams_summary

    folder = search_dir.trial_tensorboard_dir(trial_id)
    with _temp_folder(folder.parent, folder.name) as temp:
        writer = tf.summary.create_file_writer(str(temp))
        with writer.as_default():
            hp.hparams(hparam_values(tune.space, hp_values), trial_id=trial_id,
                       start_time_secs=time.time() - record["seconds"])
            tf.summary.scalar(SCORE_PREFIX + tune.objective, score, step=record["epochs"])
            for name, values in record["history"].items():
                for index, value in enumerate(values):
                    tf.summary.scalar(name, value, step=record["initial_epoch"] + index + 1)
            tf.summary.scalar("epochs", record["epochs"], step=record["epochs"])
            tf.summary.scalar("seconds", record["seconds"], step=record["epochs"])
            ended = hparams_summary.session_end_pb(api_pb2.STATUS_SUCCESS)
            tf.summary.experimental.write_raw_pb(ended.SerializeToString(), step=record["epochs"])
        writer.close()
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temp, folder)
    return folder


def write_experiment(search_dir: SearchDir, tune: config.TuneConfig) -> Path:
    """Writes (or replaces) the experiment: searched keys with their ranges, and the metrics.

    The metrics are the score, the cost and every metric the trials recorded so far (the
    objective, loss and val_loss before any trial has ended).
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    metrics = [hp.Metric(SCORE_PREFIX + tune.objective,
                         display_name=f"{tune.objective} (best epoch: the score)",
                         description=f"what the tuner ranks trials by "
                         f"({search_space.direction(tune)})")]
    metrics += [hp.Metric(name, display_name=f"{name} (last epoch)")
                for name in recorded_metrics(search_dir, tune)]
    metrics += [hp.Metric(name, description=text) for name, text in COST_METRICS.items()]
    root = search_dir.tensorboard_dir
    with _temp_folder(root, "experiment") as temp:
        writer = tf.summary.create_file_writer(str(temp))
        with writer.as_default():
            hp.hparams_config(hparams=domains(tune.space), metrics=metrics)
        writer.close()
        (event,) = temp.glob("events.out.tfevents.*")
        earlier = [path for path in root.glob("events.out.tfevents.*") if path.name != event.name]
        os.replace(event, root / event.name)
        for path in earlier:
            path.unlink(missing_ok=True)
    return root


def write_search(search_dir: SearchDir, tune: config.TuneConfig, trials) -> None:
    """The experiment, and the folder of every finished trial that has none yet.

    A trial's own process writes its folder as it ends; a search started before these views
    existed, or a process stopped between a trial's record and its folder, leaves some out.

    Args:
        trials: KerasTuner's trials (`tuner.oracle.trials.values()`).
    """
    for trial in trials:
        record_path = search_dir.trial_json(trial.trial_id)
        if (trial.status == "COMPLETED" and record_path.is_file()
                and not search_dir.trial_tensorboard_dir(trial.trial_id).is_dir()):
            write_trial(search_dir, tune, trial.trial_id, trial.hyperparameters.values,
                        json.loads(record_path.read_text()), trial.score)
    write_experiment(search_dir, tune)


def hparam_values(space, hp_values: dict) -> dict:
    """The trial's value of each searched key, in its domain's type (see `domains`).

    Numbers as the recipe trains them (3 significant digits); a choice as KerasTuner holds it
    (numbers, booleans, or the text a recipe value is parsed from, e.g. "(64,)").
    """
    values = {}
    for param in space:
        if param.key in hp_values:
            value = hp_values[param.key]
            values[param.key] = (value if param.kind == "choice"
                                 else search_space.to_recipe_value(param, value))
    return values


def domains(space) -> list:
    """One HParam per searched key: its choices, or its interval."""
    from tensorboard.plugins.hparams import api as hp

    result = []
    for param in space:
        if param.kind == "choice":
            domain = hp.Discrete(search_space.choice_options(param.values))
        elif param.kind == "int":
            domain = hp.IntInterval(int(param.low), int(param.high))
        else:
            domain = hp.RealInterval(float(param.low), float(param.high))
        result.append(hp.HParam(param.key, domain))
    return result


def recorded_metrics(search_dir: SearchDir, tune: config.TuneConfig) -> list[str]:
    """Metric names in the trial records so far, in order of first appearance."""
    names = {tune.objective: None, "loss": None, "val_loss": None}
    for path in sorted((search_dir.path / "trials").glob("*.json")):
        try:
            history = json.loads(path.read_text())["history"]
        except (OSError, ValueError, KeyError):  # a record being replaced right now
            continue
        names.update(dict.fromkeys(history))
    return list(names)


@contextlib.contextmanager
def _temp_folder(parent: Path, name: str):
    """A fresh folder `parent/.name.tmp-<pid>` to write into, removed at the end if still there."""
    temp = parent / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)
