"""python -m dlkeras.tune --recipe NAME|FILE.toml --tuner random|bayesian|hyperband --trials N

Searches the hyperparameters a recipe declares in `tune.space` (dotted recipe keys) with
KerasTuner. Each trial trains the recipe with its values through the same data, model and
compile-and-fit path as `python -m dlkeras.train`. The search lives in
runs/<recipe>-tune-<stamp>/ (see `runs.SearchDir`) and continues with `--resume`; it ends with
a trials table and plot, the best trial as a re-runnable train command and best_recipe.toml.
Every finished trial also appears in TensorBoard's HParams view, on any Keras backend:
tensorboard --logdir runs/<recipe>-tune-<stamp>/tensorboard (see `tuning.hparams`).

With `--workers N` the trials run in N worker processes to which a chief process hands them
out (KerasTuner's distributed search); `tuning.cluster` says how the processes share the work
and how to spread a search over several hosts.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from dlkeras import config, validate
from dlkeras.cli import add_recipe_arguments, exit_process, report_errors
from dlkeras.engine.backend import precision_scope, select_backend
from dlkeras.errors import ConfigError, RunError
from dlkeras.io import write_json_atomic
from dlkeras.quiet import quiet_start
from dlkeras.runs import SearchDir
from dlkeras.tuning import cluster
from dlkeras.tuning import space as search_space


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dlkeras.tune",
        description="Search a recipe's hyperparameters (its tune.space) with KerasTuner.",
        epilog="Example: python -m dlkeras.tune --recipe mlp_churn --tuner hyperband --trials 20 "
        "--set tune.objective=val_loss. On several hosts, set KERASTUNER_TUNER_ID (chief, tuner0, "
        "tuner1, ...), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT on each and share the "
        "search directory: see python -m pydoc dlkeras.tuning.cluster",
    )
    add_recipe_arguments(parser, "search", "tune.max_epochs=9 (tune.* included)")
    parser.add_argument("--tuner", choices=search_space.TUNERS, default="hyperband",
                        help="search strategy (default: hyperband, which stops bad trials early)")
    parser.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="run the trials in N worker processes on this machine, handed out by "
                        "a chief process (default 0: in this process)")
    parser.add_argument("--compare-defaults", action="store_true",
                        help="also train the recipe's own settings once and report its objective")
    args = parser.parse_args(argv)
    if not args.recipe:
        parser.error("--recipe is required")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_start(args.verbose)  # before anything loads TensorFlow
    return report_errors(lambda: run(args))


def run(args) -> int:
    """Check the recipe and its search space, pick the backend, search (or launch), report."""
    if args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: a search needs at least 1 trial")
    role = cluster.role(args.workers, args.resume)
    recipe = validate.resolve_recipe(args.recipe, args.overrides)
    search_space.check_tune(recipe, args.tuner)
    select_backend(recipe)
    with precision_scope(recipe.train):
        if role == cluster.LAUNCHER:
            return launch(recipe, args)
        print("\n" + tune(recipe, args, role))
    return 0


def tune(recipe: config.Recipe, args, role: str = cluster.ONE_PROCESS) -> str:
    """Runs (or resumes) this process's part of the search; the report where it ends.

    Args:
        role: `cluster.role`: in one process (or the chief) the search ends with its report;
            a worker only runs trials.
    """
    from dlkeras.tuning import hparams
    from dlkeras.tuning import report as tune_report
    from dlkeras.tuning import search as tuning
    from dlkeras.tuning import worker as trial_worker

    search_dir = prepare(recipe, args, role)
    if recipe.tune.trials_per_process or role == cluster.CHIEF:
        trial_worker.CACHE.clear()  # the trials' processes build their own
    print(describe_plan(recipe, args.tuner, args.trials), flush=True)
    if role != cluster.WORKER:  # the trials' processes add a folder each to this experiment
        hparams.write_experiment(search_dir, recipe.tune)
    runner = tuning.TrialRunner(recipe.tune.trials_per_process)
    try:
        tuner = tuning.search(args.tuner, recipe, search_dir, args.trials, runner, role)
        if role == cluster.WORKER:
            return f"{os.environ[cluster.TUNER_ID]} is done; the chief writes the report"
        best = tuner.oracle.get_best_trials(1)
        if not best:
            raise RunError(f"no trial of {search_dir.path} finished; see the messages in "
                           f"{search_dir.tuner_dir}/trial_*/trial.json")
        defaults = tuning.run_defaults(recipe, search_dir, runner) if args.compare_defaults else None
    finally:
        runner.close()
    hparams.write_search(search_dir, recipe.tune, tuner.oracle.trials.values())
    rows = tuning.trial_rows(tuner, search_dir, recipe)
    return tune_report.write(search_dir, recipe, config.load_recipe(args.recipe),
                             recipe_reference(args.recipe), rows, best[0].trial_id, defaults)


def launch(recipe: config.Recipe, args) -> int:
    """Opens the search directory here, then runs a chief and `--workers` workers on it."""
    from dlkeras.tuning import worker as trial_worker

    search_dir = prepare(recipe, args, cluster.LAUNCHER)
    trial_worker.CACHE.clear()  # the workers build their own
    return cluster.launch_search(process_arguments(args, search_dir), args.workers)


def prepare(recipe: config.Recipe, args, role: str) -> SearchDir:
    """Builds the data once (for the data's fingerprint and the trials run here), opens the search."""
    import keras

    from dlkeras.engine.run import describe_data
    from dlkeras.tuning import worker as trial_worker

    keras.utils.set_random_seed(recipe.train.seed)
    datasets = trial_worker.CACHE.get(recipe)  # reused by trials that run in this process
    describe_data(datasets.info)
    return open_search_dir(recipe, args, datasets.info.fingerprint, role)


def process_arguments(args, search_dir: SearchDir) -> list[str]:
    """The chief's and workers' arguments: this search, resuming its directory, no --workers."""
    arguments = ["--recipe", args.recipe, "--tuner", args.tuner, "--trials", str(args.trials),
                 "--out", str(args.out), "--resume", str(search_dir.path.resolve())]
    arguments += [item for override in args.overrides for item in ("--set", override)]
    return arguments + (["--compare-defaults"] if args.compare_defaults else [])


def open_search_dir(recipe: config.Recipe, args, data_fingerprint: str,
                    role: str = cluster.ONE_PROCESS) -> SearchDir:
    """A new search directory, or with --resume the one to continue (checked to match).

    A worker only joins it: search.json is the launcher's or the chief's to write.
    """
    if not args.resume:
        search_dir = SearchDir.create(args.out, recipe, data_fingerprint, label="tune")
        print(f"search directory: {search_dir.path}")
    else:
        search_dir = SearchDir.find(args.out, f"{recipe.name}-tune", args.resume)
        if not search_dir.search_json.is_file():
            raise RunError(f"{search_dir.path} holds no search.json, so it is not a search to "
                           "resume; start a new search without --resume")
        started = json.loads(search_dir.search_json.read_text())["tuner"]
        if started != args.tuner:
            raise RunError(f"cannot resume {search_dir.path}: it is a {started} search; "
                           f"pass --tuner {started}, or start a new search without --resume")
        # trials neither evaluate on the test split nor export: those fields may change
        search_dir.check_resumable(recipe, data_fingerprint, ignored=("evaluate.", "export."))
        joining = role in (cluster.CHIEF, cluster.WORKER)
        print(f"{'search directory:' if joining else 'resuming'} {search_dir.path}")
    if role == cluster.WORKER:
        return search_dir
    write_json_atomic(search_dir.search_json, {
        "tuner": args.tuner, "trials": args.trials,
        "recipe": recipe_reference(args.recipe), "overrides": args.overrides,
    })
    return search_dir


def recipe_reference(name_or_path: str) -> str:
    """How best_recipe.toml and the re-run command name the recipe: its name or an absolute path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        return str(path.resolve())
    return name_or_path


def describe_plan(recipe: config.Recipe, tuner: str, trials: int) -> str:
    """One line on what the search will do."""
    epochs = search_space.max_epochs(recipe)
    keys = ", ".join(param.key for param in recipe.tune.space)
    line = (f"{tuner} search of {keys}: {trials} trials, objective {recipe.tune.objective} "
            f"({search_space.direction(recipe.tune)})")
    if tuner != "hyperband":
        return f"{line}, up to {epochs} epochs each"
    brackets = search_space.hyperband_brackets(epochs, recipe.tune.hyperband_factor)
    return (f"{line}; Hyperband up to {epochs} epochs, factor {recipe.tune.hyperband_factor}: "
            f"brackets of {' + '.join(map(str, brackets))} = {sum(brackets)} trials per iteration")


if __name__ == "__main__":
    exit_process(main())
