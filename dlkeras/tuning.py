"""KerasTuner around the training engine: a trial builds, compiles and fits as training does.

A trial is the recipe with the trial's values (`search_space.trial_recipe`). Its data come from
`data.build` (once per distinct data section, see `DataCache`), its model from `models.build`,
and its compile-and-fit from `train.fit_stage` with the recipe's own early stopping and
learning-rate plateau. KerasTuner clears the Keras session before each trial; each trial's
epochs, seconds, history and the process's memory go to trials/<id>.json.

Imported by `python -m dlkeras.tune` after argument parsing (it imports Keras).
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
import time

import keras
import keras_tuner
from keras_tuner.src import config as keras_tuner_config

from dlkeras import callbacks, config, data, models, optim, search_space, train
from dlkeras.errors import DlkerasError, RunError
from dlkeras.runs import SearchDir, write_json_atomic

DATA_CACHE_SIZE = 3  # distinct data sections kept in memory (e.g. one per searched batch size)


class DataCache:
    """Datasets per distinct (data section, seed, preset): the data are built once per search.

    A trial that changes a data field (`data.batch_size`, `data.augment_strength`) gets its
    own build, with statistics again fit on the training split only; the oldest of more than
    `DATA_CACHE_SIZE` builds is dropped.
    """

    def __init__(self):
        self._built: dict = {}

    def get(self, recipe: config.Recipe):
        key = (recipe.data, recipe.train.seed, recipe.model.preset)
        if key not in self._built:
            if len(self._built) >= DATA_CACHE_SIZE:
                self._built.pop(next(iter(self._built)))
            self._built[key] = data.build(recipe.data, recipe.train.seed,
                                          preset=recipe.model.preset)
        return self._built[key]


def fit_trial(model, recipe: config.Recipe, datasets, tuner_callbacks=(), **fit_options):
    """Fits `model` on the recipe's single stage, with the objective added to the epoch logs.

    Raises:
        keras_tuner.errors.FailedTrialError: the loss diverged (the search goes on).
    """
    stage = config.stage_plan(recipe.train)[0]
    optim.set_trainable(model, stage.trainable)
    trial_callbacks = [keras.callbacks.TerminateOnNaN(), *callbacks.build_stopping_callbacks(recipe)]
    if recipe.tune.objective == "val_macro_f1":
        trial_callbacks.insert(0, callbacks.ValMacroF1(model, datasets.val))
    fit_options.setdefault("verbose", 0)
    history = train.fit_stage(model, recipe, datasets, stage,
                              [*trial_callbacks, *tuner_callbacks], **fit_options)
    try:
        train.check_finite_loss(history.history.get("loss", []), stage.name)
    except RunError as error:
        raise keras_tuner.errors.FailedTrialError(str(error)) from None
    return history


@contextlib.contextmanager
def user_errors_stop_search():
    """Inside a trial, a user's mistake (DlkerasError) ends the whole search, not one trial."""
    try:
        yield
    except DlkerasError as error:
        raise keras_tuner.errors.FatalError(str(error)) from error


class RecipeHyperModel(keras_tuner.HyperModel):
    """Builds and fits the model of `search_space.trial_recipe(recipe, trial values)`."""

    def __init__(self, recipe: config.Recipe, cache: DataCache):
        super().__init__(name=recipe.name)
        self.recipe = recipe
        self.cache = cache

    def declare_hyperparameters(self, hp):
        search_space.declare(hp, self.recipe.tune.space)

    def trial_recipe(self, hp) -> config.Recipe:
        return search_space.trial_recipe(self.recipe, search_space.declare(hp, self.recipe.tune.space))

    def build(self, hp):
        with user_errors_stop_search():
            recipe = self.trial_recipe(hp)
            keras.utils.set_random_seed(recipe.train.seed)
            return models.build(recipe.model, self.cache.get(recipe).info)

    def fit(self, hp, model, *args, **fit_options):
        tuner_callbacks = fit_options.pop("callbacks", ())
        with user_errors_stop_search():
            recipe = self.trial_recipe(hp)
            return fit_trial(model, recipe, self.cache.get(recipe), tuner_callbacks, **fit_options)


class TrialRecords:
    """Tuner mixin: writes trials/<id>.json (values, epochs, seconds, memory, history) per trial."""

    def __init__(self, *args, search_dir: SearchDir, recipe: config.Recipe, **kwargs):
        self.search_dir = search_dir
        self.recipe = recipe
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        started = time.perf_counter()
        try:
            histories = super().run_trial(trial, *args, **kwargs)
        except Exception as error:
            print(f"trial {trial.trial_id} failed: {type(error).__name__}: {error}", flush=True)
            raise
        hp = trial.hyperparameters.values
        values = search_space.recipe_values(self.recipe.tune.space, hp)
        record = trial_record(trial.trial_id, values, histories[-1], started,
                              continues=hp.get("tuner/trial_id"))
        write_json_atomic(self.search_dir.trial_json(trial.trial_id), record)
        print(describe_trial(record, self.recipe.tune), flush=True)
        return histories


def trial_record(trial_id: str, values: dict, history, started: float,
                 continues: str | None = None) -> dict:
    """What trials/<id>.json holds: values, epochs run, seconds, memory and the history."""
    return {
        "trial": trial_id,
        "values": values,
        "continues": continues,
        "initial_epoch": int(history.epoch[0]) if history.epoch else 0,
        "epochs": int(history.epoch[-1]) + 1 if history.epoch else 0,
        "seconds": round(time.perf_counter() - started, 2),
        "rss_mb": current_rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
    }


def run_defaults(recipe: config.Recipe, cache: DataCache, search_dir: SearchDir) -> dict:
    """Trains the searched recipe's own settings once, as a trial is trained, for comparison.

    The record is kept as trials/defaults.json, so a resumed search does not train it again.
    """
    path = search_dir.trial_json("defaults")
    if path.is_file():
        return json.loads(path.read_text())
    print(f"training the recipe's own settings for comparison ({recipe.train.epochs} epochs "
          "at most)", flush=True)
    keras.backend.clear_session()
    keras.utils.set_random_seed(recipe.train.seed)
    started = time.perf_counter()
    datasets = cache.get(recipe)
    try:
        history = fit_trial(models.build(recipe.model, datasets.info), recipe, datasets)
    except keras_tuner.errors.FailedTrialError as error:
        raise RunError(f"training the recipe's own settings failed: {error}") from None
    record = trial_record("defaults", {}, history, started)
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


class RandomSearch(TrialRecords, keras_tuner.RandomSearch):
    """Random search with trial records."""


class BayesianOptimization(TrialRecords, keras_tuner.BayesianOptimization):
    """Gaussian-process Bayesian optimisation with trial records."""


class Hyperband(TrialRecords, keras_tuner.Hyperband):
    """Hyperband (successive halving of many short trials) with trial records."""


def search(kind: str, recipe: config.Recipe, search_dir: SearchDir, trials: int,
           cache: DataCache):
    """Builds the tuner (reloading search_dir/tuner when it exists), runs it, returns it.

    Raises:
        DlkerasError: a user's mistake met inside a trial, unreadable tuner state, or trials
            that kept failing.
    """
    resuming = search_dir.tuner_dir.exists()
    # KerasTuner prints the traceback of every failed trial while this flag is on; the trial's
    # message stays in its trial.json and TrialRecords prints one line instead.
    debug, keras_tuner_config.DEBUG = keras_tuner_config.DEBUG, False
    try:
        try:
            tuner = build_tuner(kind, recipe, search_dir, trials, cache)
        except (ValueError, KeyError, RuntimeError) as error:
            if not resuming:
                raise
            raise RunError(f"cannot load the KerasTuner state in {search_dir.tuner_dir} "
                           f"({error}); start a new search without --resume") from None
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
            f"trial's message is in {search_dir.tuner_dir}/trial_*/trial.json") from None
    finally:
        keras_tuner_config.DEBUG = debug
    return tuner


def build_tuner(kind: str, recipe: config.Recipe, search_dir: SearchDir, trials: int,
                cache: DataCache):
    """A KerasTuner tuner whose state lives in search_dir/tuner (reloaded when it exists)."""
    tune = recipe.tune
    common = {
        "hypermodel": RecipeHyperModel(recipe, cache),
        "objective": keras_tuner.Objective(tune.objective, search_space.direction(tune)),
        "seed": recipe.train.seed,
        "directory": str(search_dir.path),
        "project_name": search_dir.tuner_dir.name,
        "overwrite": False,
        "search_dir": search_dir,
        "recipe": recipe,
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


def describe_trial(record: dict, tune: config.TuneConfig) -> str:
    """One line per trial: id, values, epochs, best objective, seconds, memory."""
    values = " ".join(f"{key}={value!r}" for key, value in record["values"].items())
    values = values or "the recipe's own settings"
    scores = record["history"].get(tune.objective, [])
    best = (min if search_space.direction(tune) == "min" else max)(scores) if scores else None
    score = f"{best:.4f}" if best is not None else "n/a"
    return (f"trial {record['trial']}: {values} | epochs {record['initial_epoch']}-"
            f"{record['epochs']} | {tune.objective} {score} | {record['seconds']:.1f} s | "
            f"RSS {record['rss_mb']:.0f} MB")


def current_rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), else its peak."""
    try:
        with open("/proc/self/statm", encoding="ascii") as stream:
            pages = int(stream.read().split()[1])
        return round(pages * resource.getpagesize() / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident memory of this process (kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
