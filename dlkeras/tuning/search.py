"""KerasTuner around the training engine: the tuner proposes values, a trial task trains them.

A trial is the recipe with the trial's values (`space.trial_recipe`), trained by
`worker.run_task` exactly as training would (same data, model and compile-and-fit). The
tuner (random search, Bayesian optimisation or Hyperband) only proposes values and keeps its
state in search_dir/tuner; each trial's epochs, seconds, history and memory go to
trials/<id>.json.

Imported by `python -m dlkeras.tune` after argument parsing (it imports Keras).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import keras_tuner

from dlkeras import config
from dlkeras.errors import DlkerasError, RunError
from dlkeras.io import write_json_atomic
from dlkeras.runs import SearchDir
from dlkeras.tuning import space as search_space
from dlkeras.tuning import worker as trial_worker


class TrialRunner:
    """Runs trial tasks in a worker process replaced every `trials_per_process` tasks.

    With `trials_per_process` 0 the tasks run in this process instead (faster to start, but
    Keras on TensorFlow then keeps ~9 MB per trial). The worker is spawned, not forked: a fork
    of a process that has started TensorFlow's threads is not safe.
    """

    def __init__(self, trials_per_process: int):
        self.trials_per_process = trials_per_process
        self._executor = None

    def run(self, task: trial_worker.TrialTask) -> dict:
        if not self.trials_per_process:
            return trial_worker.run_task(task)
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=self.trials_per_process)
        try:
            return self._executor.submit(trial_worker.run_task, task).result()
        except BrokenProcessPool:
            self.close()
            raise RuntimeError("the trial's worker process died (out of memory?)") from None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class RecipeTrials:
    """Tuner mixin: a trial is a TrialTask run by the TrialRunner, recorded in trials/<id>.json."""

    def __init__(self, *args, search_dir: SearchDir, recipe: config.Recipe, runner: TrialRunner,
                 **kwargs):
        self.search_dir = search_dir
        self.recipe = recipe
        self.runner = runner
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters.values
        values = search_space.recipe_values(self.recipe.tune.space, hp)
        parent = hp.get("tuner/trial_id")
        task = trial_worker.TrialTask(
            recipe=search_space.trial_recipe(self.recipe, values),
            direction=search_space.direction(self.recipe.tune),
            epochs=int(hp.get("tuner/epochs", 0)),
            initial_epoch=int(hp.get("tuner/initial_epoch", 0)),
            load_weights=str(self.search_dir.trial_weights(parent)) if parent else "",
            save_weights=str(self.search_dir.trial_weights(trial.trial_id)),
        )
        started = time.perf_counter()
        try:
            result = self.runner.run(task)
        except DlkerasError as error:  # a user's mistake ends the search, not just this trial
            raise keras_tuner.errors.FatalError(str(error)) from error
        except Exception as error:
            print(f"trial {trial.trial_id} failed: {type(error).__name__}: {error}", flush=True)
            raise
        record = trial_record(trial.trial_id, values, result, started, continues=parent)
        write_json_atomic(self.search_dir.trial_json(trial.trial_id), record)
        print(describe_trial(record, self.recipe.tune), flush=True)
        return best_epoch_metrics(result["history"], self.recipe.tune)


class RandomSearch(RecipeTrials, keras_tuner.RandomSearch):
    """Random search over the recipe's space."""


class BayesianOptimization(RecipeTrials, keras_tuner.BayesianOptimization):
    """Gaussian-process Bayesian optimisation over the recipe's space."""


class Hyperband(RecipeTrials, keras_tuner.Hyperband):
    """Hyperband: many short trials, the best continued for longer (successive halving)."""


def trial_record(trial_id: str, values: dict, result: dict, started: float,
                 continues: str | None = None) -> dict:
    """What trials/<id>.json holds: values, epochs run, seconds, memory and the history."""
    epochs = result["epoch"]
    return {
        "trial": trial_id,
        "values": values,
        "continues": continues,
        "initial_epoch": epochs[0] if epochs else 0,
        "epochs": epochs[-1] + 1 if epochs else 0,
        "seconds": round(time.perf_counter() - started, 2),
        "pid": result["pid"],
        "rss_mb": result["rss_mb"],
        "peak_rss_mb": result["peak_rss_mb"],
        "tuner_rss_mb": trial_worker.current_rss_mb(),
        "history": result["history"],
    }


def best_epoch_metrics(history: dict, tune: config.TuneConfig) -> dict:
    """Every metric at the epoch with the best objective (what the tuner scores a trial by)."""
    scores = history.get(tune.objective, [])
    sign = 1.0 if search_space.direction(tune) == "min" else -1.0
    finite = [i for i, v in enumerate(scores) if math.isfinite(v)]
    if not finite:
        return {tune.objective: math.nan}
    best = min(finite, key=lambda i: sign * scores[i])
    return {name: values[best] for name, values in history.items() if len(values) > best}


def build_tuner(kind: str, recipe: config.Recipe, search_dir: SearchDir, trials: int,
                runner: TrialRunner):
    """A KerasTuner tuner whose state lives in search_dir/tuner (reloaded when it exists)."""
    tune = recipe.tune
    space = keras_tuner.HyperParameters()
    search_space.declare(space, tune.space)
    common = {
        "hyperparameters": space,
        "objective": keras_tuner.Objective(tune.objective, search_space.direction(tune)),
        "seed": recipe.train.seed,
        "directory": str(search_dir.path),
        "project_name": search_dir.tuner_dir.name,
        "overwrite": False,
        "search_dir": search_dir,
        "recipe": recipe,
        "runner": runner,
    }
    if kind == "hyperband":
        tuner = Hyperband(max_epochs=search_space.max_epochs(recipe),
                          factor=tune.hyperband_factor, hyperband_iterations=None, **common)
        tuner.oracle.max_trials = trials  # Hyperband itself counts brackets, not trials
        return tuner
    if kind == "bayesian":
        initial = max(2, min(3 * len(tune.space), trials // 2))
        return BayesianOptimization(max_trials=trials, num_initial_points=initial, **common)
    return RandomSearch(max_trials=trials, **common)


def search(kind: str, recipe: config.Recipe, search_dir: SearchDir, trials: int,
           runner: TrialRunner):
    """Builds the tuner (reloading search_dir/tuner when it exists), runs it, returns it.

    Raises:
        DlkerasError: a user's mistake met inside a trial, unreadable tuner state, or trials
            that kept failing.
    """
    resuming = search_dir.tuner_dir.exists()
    # KerasTuner prints the whole traceback of every failed trial to stderr; those go to
    # tuner.log (and each trial's message to its trial.json), RecipeTrials prints one line.
    try:
        try:
            tuner = build_tuner(kind, recipe, search_dir, trials, runner)
        except (ValueError, KeyError, RuntimeError) as error:
            if not resuming:
                raise
            raise RunError(f"cannot load the KerasTuner state in {search_dir.tuner_dir} "
                           f"({error}); start a new search without --resume") from None
        with open(search_dir.tuner_log, "a", encoding="utf-8") as log, \
                contextlib.redirect_stderr(log):
            tuner.search(verbose=0)
    except keras_tuner.errors.FatalError as error:
        if isinstance(error.__cause__, DlkerasError):
            raise error.__cause__ from None
        raise
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        last = str(error).strip().splitlines()[-1]
        raise RunError(
            f"the search stopped: several trials in a row failed, the last with: {last}. "
            "Narrow tune.space (e.g. lower the high bound of train.learning_rate); each "
            f"trial's message is in {search_dir.tuner_dir}/trial_*/trial.json, their tracebacks "
            f"in {search_dir.tuner_log}") from None
    return tuner


def run_defaults(recipe: config.Recipe, search_dir: SearchDir, runner: TrialRunner) -> dict:
    """Trains the searched recipe's own settings once, as a trial is trained, for comparison.

    The record is kept as trials/defaults.json, so a resumed search does not train it again.
    """
    path = search_dir.trial_json("defaults")
    if path.is_file():
        return json.loads(path.read_text())
    print(f"training the recipe's own settings for comparison ({recipe.train.epochs} epochs "
          "at most)", flush=True)
    started = time.perf_counter()
    task = trial_worker.TrialTask(recipe=recipe, direction=search_space.direction(recipe.tune))
    try:
        result = runner.run(task)
    except keras_tuner.errors.FailedTrialError as error:
        raise RunError(f"training the recipe's own settings failed: {error}") from None
    record = trial_record("defaults", {}, result, started)
    write_json_atomic(path, record)
    print(describe_trial(record, recipe.tune), flush=True)
    return record


def trial_rows(tuner, search_dir: SearchDir, recipe: config.Recipe) -> list[dict]:
    """One row per trial, in the order they started: status, values, epochs, score, cost."""
    rows = []
    for trial_id in sorted(tuner.oracle.trials, key=int):
        trial = tuner.oracle.trials[trial_id]
        path = search_dir.trial_json(trial_id)
        record = json.loads(path.read_text()) if path.is_file() else {}
        rows.append({
            "trial": trial_id,
            "status": trial.status,
            **search_space.recipe_values(recipe.tune.space, trial.hyperparameters.values),
            "epochs": f"{record['initial_epoch']}-{record['epochs']}" if record else "",
            "continues": record.get("continues") or "",
            recipe.tune.objective: trial.score if trial.status == "COMPLETED" else None,
            "seconds": record.get("seconds"),
            "rss_mb": record.get("rss_mb"),
        })
    return rows


def describe_trial(record: dict, tune: config.TuneConfig) -> str:
    """One line per trial: id, values, epochs, best objective, seconds, memory."""
    values = " ".join(f"{key}={value!r}" for key, value in record["values"].items())
    values = values or "the recipe's own settings"
    scores = [v for v in record["history"].get(tune.objective, []) if math.isfinite(v)]
    best = (min if search_space.direction(tune) == "min" else max)(scores) if scores else None
    score = f"{best:.4f}" if best is not None else "n/a"
    where = "" if record["pid"] == os.getpid() else f" (worker {record['pid']})"
    return (f"trial {record['trial']}: {values} | epochs {record['initial_epoch']}-"
            f"{record['epochs']} | {tune.objective} {score} | {record['seconds']:.1f} s | "
            f"RSS {record['rss_mb']:.0f} MB{where}")
