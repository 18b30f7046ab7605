"""python -m dlkeras.check --recipe NAME|FILE.toml [--set key=value ...] [--only CHECK ...]

Checks a recipe before a long run, on its real data and model: the data summary, labels vs
inputs, overfit one batch, gradient flow, a learning-rate range test and the input pipeline
against the training step. Prints a verdict table and leaves check.json, check.md and
lr_range.png in a folder under --out. Exit status: 0 when no check fails, 1 when one does,
2 for a mistake in the command or the recipe.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dlkeras.cli import add_verbose_argument, exit_process, report_errors
from dlkeras.quiet import quiet_start


def parse_args(argv=None) -> argparse.Namespace:
    from dlkeras.diagnostics.preflight import CHECKS

    parser = argparse.ArgumentParser(
        prog="python -m dlkeras.check",
        description="Check a recipe's data and model before training: overfit one batch, "
        "gradient flow, learning-rate range, bottleneck.",
        epilog="Example: python -m dlkeras.check --recipe mlp_churn --set data.path=my.csv",
    )
    parser.add_argument("--recipe", required=True, help="bundled recipe name or .toml path")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a recipe field (repeatable)")
    parser.add_argument("--only", nargs="+", choices=CHECKS, metavar="CHECK",
                        help=f"run only these checks ({', '.join(CHECKS)})")
    parser.add_argument("--out", default="checks", type=Path,
                        help="parent folder of check folders")
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_start(args.verbose)  # before anything loads TensorFlow
    return report_errors(lambda: run(args))


def run(args) -> int:
    from dlkeras import validate
    from dlkeras.diagnostics import table
    from dlkeras.diagnostics.preflight import CHECKS
    from dlkeras.engine.backend import precision_scope, select_backend

    recipe = validate.resolve_recipe(args.recipe, args.overrides)
    select_backend(recipe)
    with precision_scope(recipe.train):
        folder = args.out / f"{recipe.name}-check-{time.strftime('%Y%m%d-%H%M%S')}"
        folder.mkdir(parents=True, exist_ok=True)
        results = check_recipe(recipe, folder, args.only or CHECKS)
    print(table(results))
    print(f"check folder: {folder}")
    return 1 if any(r.status == "fail" for r in results) else 0


def check_recipe(recipe, folder: Path, names) -> list:
    """Runs the checks and writes check.json and check.md into `folder`."""
    from dlkeras.diagnostics import table
    from dlkeras.diagnostics.preflight import run_checks
    from dlkeras.io import write_json_atomic, write_text_atomic

    started = time.perf_counter()
    results = run_checks(recipe, folder, names)
    seconds = time.perf_counter() - started
    write_json_atomic(folder / "check.json", {
        "recipe": recipe.name, "seconds": round(seconds, 1),
        "failed": [r.name for r in results if r.status == "fail"],
        "checks": [r.to_json() for r in results]})
    write_text_atomic(folder / "check.md", f"# Checks of {recipe.name}\n\n{table(results)}\n")
    return results


if __name__ == "__main__":
    exit_process(main())
