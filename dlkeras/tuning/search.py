"""KerasTuner around the training engine: the tuner proposes values, a trial task trains them.

A trial is the recipe with the trial's values (`space.trial_recipe`), trained by
`worker.run_task` exactly as training would (same data, model and compile-and-fit). The
tuner (random search, Bayesian optimisation or Hyperband) only proposes values and keeps its
state in search_dir/tuner; each trial's epochs, seconds, history and memory go to
trials/<id>.json, its values and scores to TensorBoard's HParams view (`hparams`). A search
spread over processes (`cluster`) builds the same tuner in each: in the chief, KerasTuner's
`search` serves the oracle; in a worker, it runs trials.

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

import grpc
import keras_tuner

from dlkeras import config, progress
from dlkeras.errors import DlkerasError, RunError
from dlkeras.io import write_json_atomic
from dlkeras.runs import SearchDir
from dlkeras.tuning import cluster, hparams
from dlkeras.tuning import space as search_space
from dlkeras.tuning import worker as trial_worker

IDLE_SECONDS = 0.5  # between a worker's asks for a trial while the chief has none to give


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
                 trials_planned: int = 0, **kwargs):
        self.search_dir = search_dir
        self.trials_planned = trials_planned
        self.recipe = recipe
        self.runner = runner
        self.last_failure = ""  # a worker's: the chief's oracle does not keep trials' messages
        self._asked_in_vain = False
        super().__init__(*args, **kwargs)
        if not self._is_worker():  # a worker's oracle is the chief's, over gRPC
            self.reload_oracle()

    def reload_oracle(self) -> None:
        """Reloads the oracle of any earlier search here, without repeating an ended trial.

        KerasTuner reloads the oracle only when this tuner id's own file exists (tuner0.json
        after a one-process search, chief.json after a distributed one): reloading whenever
        the oracle's file exists lets either kind of search resume the other. It queues the
        trials that were running to run again, but saves its state before it lets go of a
        trial that ended (a chief saves again only when it hands out the next trial), so
        the trial that ended last would run twice: trials in `end_order` have ended for good.
        """
        if (cluster.oracle_file(self.search_dir).is_file()
                and not os.path.exists(self._get_tuner_fname())):
            self.oracle.reload()
        ended = set(self.oracle.end_order)
        self.oracle._retry_queue = [i for i in self.oracle._retry_queue if i not in ended]

    def pre_create_trial(self):
        # A worker asks again at once when the chief has no trial yet (Hyperband waits for a
        # round's running trials): wait a little between such asks.
        if self._asked_in_vain:
            time.sleep(IDLE_SECONDS)
        self._asked_in_vain = True

    def on_trial_begin(self, trial):
        self._asked_in_vain = False
        super().on_trial_begin(trial)

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
            self.last_failure = f"{type(error).__name__}: {error}"
            print(f"trial {trial.trial_id} failed: {self.last_failure}", flush=True)
            raise
        record = trial_record(trial.trial_id, values, result, started, continues=parent)
        write_json_atomic(self.search_dir.trial_json(trial.trial_id), record)
        scores = best_epoch_metrics(result["history"], self.recipe.tune)
        hparams.write_trial(self.search_dir, self.recipe.tune, trial.trial_id, hp, record,
                            scores[self.recipe.tune.objective])
        print(describe_trial(record, self.recipe.tune), flush=True)
        print(trials_progress(self.search_dir, self.trials_planned), flush=True)
        return scores


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
        "tuner": os.environ.get(cluster.TUNER_ID),  # which worker of a distributed search
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
        "trials_planned": trials,
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
           runner: TrialRunner, role: str = cluster.ONE_PROCESS):
    """Builds the tuner (reloading search_dir/tuner when it exists), runs it, returns it.

    Args:
        role: this process's part in the search (`cluster.role`); a chief serves the oracle
            until every trial has ended, a worker runs trials until the chief has none left.

    Raises:
        DlkerasError: a user's mistake met inside a trial, unreadable tuner state, trials
            that kept failing, or a chief that failed.
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
            cluster.run_search(tuner, role, search_dir, trials,
                               trial_announcer(search_dir, recipe, trials))
    except keras_tuner.errors.FatalError as error:
        if isinstance(error.__cause__, DlkerasError):
            raise error.__cause__ from None
        raise
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        raise failures_error(str(error), search_dir) from None
    except grpc.RpcError as error:  # a worker: the chief's oracle raised, or the chief is gone
        call = isinstance(error, grpc.Call)
        details = (error.details() if call else "") or str(error)
        if "consecutive failures" in details:
            raise failures_error(tuner.last_failure or details, search_dir, worker=True) from None
        raise RunError(f"the chief of {search_dir.path} failed or stopped answering "
                       f"({error.code().name if call else 'gRPC'}: {details}); see the chief's "
                       "output") from None
    return tuner


def failures_error(message: str, search_dir: SearchDir, worker: bool = False) -> RunError:
    """The error for KerasTuner's "consecutive failures" stop, with the last trial's message.

    Args:
        worker: raised in a worker, whose chief keeps no trial's message (KerasTuner sends it
            none); every worker adds its trials' tracebacks to tuner.log.
    """
    last = message.strip().splitlines()[-1]
    where = (f"trial's message is in {search_dir.tuner_dir}/trial_*/trial.json, their "
             f"tracebacks in {search_dir.tuner_log}")
    if worker:
        where = f"failed trial's traceback is in {search_dir.tuner_log}"
    return RunError(
        f"the search stopped: several trials in a row failed, the last with: {last}. "
        f"Narrow tune.space (e.g. lower the high bound of train.learning_rate); each {where}")


def trial_announcer(search_dir: SearchDir, recipe: config.Recipe, trials: int = 0):
    """For a chief: prints an ended trial's line from the record its worker wrote."""
    def announce(trial_id: str) -> None:
        path = search_dir.trial_json(trial_id)
        if path.is_file():
            print(describe_trial(json.loads(path.read_text()), recipe.tune), flush=True)
            print(trials_progress(search_dir, trials), flush=True)
        else:
            print(f"trial {trial_id} failed; its traceback is in {search_dir.tuner_log}", flush=True)
    return announce


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


def trials_progress(search_dir: SearchDir, planned: int) -> str:
    """Trials ended of those planned, and the time left at their mean length so far.

    Counted from the trials' records, so trials of earlier runs of a resumed search and those
    of other workers count too.
    """
    records = [path for path in search_dir.trial_json("0").parent.glob("*.json") if path.stem.isdigit()]
    seconds = sum(json.loads(path.read_text()).get("seconds", 0.0) for path in records)
    return progress.describe("trials ended", len(records), planned, seconds)


def describe_trial(record: dict, tune: config.TuneConfig) -> str:
    """One line per trial: id, values, epochs, best objective, seconds, memory."""
    values = " ".join(f"{key}={value!r}" for key, value in record["values"].items())
    values = values or "the recipe's own settings"
    scores = [v for v in record["history"].get(tune.objective, []) if math.isfinite(v)]
    best = (min if search_space.direction(tune) == "min" else max)(scores) if scores else None
    score = f"{best:.4f}" if best is not None else "n/a"
    where = "" if record["pid"] == os.getpid() else f" (worker {record['pid']})"
    if record.get("tuner"):
        where = f" ({record['tuner']}, process {record['pid']})"
    return (f"trial {record['trial']}: {values} | epochs {record['initial_epoch']}-"
            f"{record['epochs']} | {tune.objective} {score} | {record['seconds']:.1f} s | "
            f"RSS {record['rss_mb']:.0f} MB{where}")
