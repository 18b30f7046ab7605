"""python -m dlkeras.train --recipe NAME|FILE.toml [--set key=value ...] [--resume [RUN_DIR]]

Reads a recipe, builds the data and the model, trains every stage, evaluates on the test split
and leaves everything in a run directory (see `dlkeras.runs`).
"""

from __future__ import annotations

import argparse
import json

from dlkeras import config
from dlkeras.cli import add_recipe_arguments, exit_process, report_errors
from dlkeras.quiet import quiet_start


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dlkeras.train",
        description="Train a dlkeras recipe and evaluate it on its test split.",
        epilog="Backend: set KERAS_BACKEND=tensorflow|jax|torch before running. "
        "Example: python -m dlkeras.train --recipe cnn_digits --set train.epochs=3",
    )
    add_recipe_arguments(parser, "run", "train.learning_rate=3e-4")
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the recipe, its data and its model, then stop: nothing is "
                        "trained and no run directory is written")
    parser.add_argument("--preflight", action="store_true",
                        help="first run the fast checks of python -m dlkeras.check (data, labels "
                        "vs inputs, overfit one batch, gradient flow); train only if none fails")
    parser.add_argument("--list", action="store_true", help="list the bundled recipes")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="train on N local processes that share one model "
                        "(train.distribution=multi_worker, JAX backend); process 0 writes the run")
    args = parser.parse_args(argv)
    if not (args.list or args.recipe):
        parser.error("--recipe is required (see --list)")
    return args


def list_recipes() -> str:
    from dlkeras.recipes import RECIPES

    lines = []
    for name in RECIPES:
        recipe = config.load_recipe(name)
        lines.append(f"{name:16s} {recipe.description}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_start(args.verbose)  # before anything loads TensorFlow
    return report_errors(lambda: run(args))


def run(args) -> int:
    """The training path: resolve and check the recipe, pick the backend, train, report."""
    if args.list:
        print(list_recipes())
        return 0
    from dlkeras import validate

    recipe = validate.resolve_recipe(args.recipe, args.overrides)
    if args.print_config:
        print(json.dumps(config.to_dict(recipe), indent=2))
        return 0
    if args.workers:  # each worker checks what it resumes (its recipe says multi_worker)
        return launch_workers(args)
    if args.resume:  # a missing run or a changed recipe fails in a second, before any backend loads
        from dlkeras.runs import RunDir

        RunDir.find(args.out, recipe.name, args.resume).check_recipe(recipe)
    from dlkeras.engine.backend import select_backend
    from dlkeras.engine.distribution import check_supported

    check_supported(recipe.train.distribution, select_backend(recipe))
    if args.dry_run:
        print(validate.dry_run(recipe))
        return 0
    if args.preflight and not preflight(recipe):
        return 1
    from dlkeras import progress
    from dlkeras.engine.run import train_recipe

    progress.reset_steps()
    run_dir, report = train_recipe(recipe, args.out, args.resume)
    print("\n" + report["summary"])
    print(f"run directory: {run_dir.path}")
    if run_dir.report_html.is_file():  # a run finished by an older dlkeras may have none
        print(f"report: {run_dir.report_html}")
    progress.print_step_table()
    return 0


def preflight(recipe) -> bool:
    """Runs the fast checks and prints their table; False when one of them fails."""
    from dlkeras.diagnostics import table
    from dlkeras.diagnostics.preflight import FAST, run_checks
    from dlkeras.engine.backend import precision_scope

    with precision_scope(recipe.train, announce=False):  # training announces it
        results = run_checks(recipe, None, FAST)
    print(table(results))
    if any(r.status == "fail" for r in results):
        print("preflight failed: nothing was trained (python -m dlkeras.check runs every check)")
        return False
    return True


def launch_workers(args) -> int:
    """`--workers N`: N local processes on a loopback coordinator train one multi-worker run.

    Each is this command with train.distribution=multi_worker and its place in the cluster in
    the KERAS_DISTRIBUTION_* variables (as on real hosts, see the README); the backend is JAX
    unless KERAS_BACKEND names another, which is then refused.
    """
    import os

    from dlkeras.engine import workers
    from dlkeras.engine.distribution import check_supported
    from dlkeras.errors import ConfigError

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give a number of processes, 1 or more")
    backend = os.environ.get("KERAS_BACKEND", "jax")
    check_supported("multi_worker", backend)
    argv = ["--recipe", args.recipe, "--out", str(args.out),
            *[a for item in [*args.overrides, "train.distribution=multi_worker"]
              for a in ("--set", item)]]
    if args.resume:
        argv += ["--resume", args.resume]
    address = f"127.0.0.1:{workers.free_port()}"
    print(f"starting {args.workers} worker processes on {address} ({backend}); the output is "
          "process 0's", flush=True)
    return workers.launch([
        workers.Worker(f"process {index}", workers.module_command("dlkeras.train", argv), {
            "KERAS_BACKEND": backend,
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": address,
            "KERAS_DISTRIBUTION_NUM_PROCESSES": str(args.workers),
            "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
        }) for index in range(args.workers)
    ])


if __name__ == "__main__":
    exit_process(main())
