"""python -m dlkeras.export --run RUN_DIR | --recipe NAME [--formats ...] [--out saved_models]

Without --run/--recipe: the latest run of every recipe that has one (runs/latest/*).
Exits 1 when any artifact fails the parity gate (the report says which and by how much).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dlkeras.cli import add_verbose_argument, exit_process, report_errors
from dlkeras.errors import RunError
from dlkeras.export.formats import FORMATS, check_formats
from dlkeras.quiet import quiet_start


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dlkeras.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a finished run directory")
    parser.add_argument("--recipe", help="export the latest run of this recipe")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where runs live")
    parser.add_argument("--formats", help="comma-separated formats (default: the recipe's "
                        f"export.formats): {','.join(FORMATS)}")
    parser.add_argument("--out", type=Path, default=Path("saved_models"))
    parser.add_argument("--parity-examples", type=int, default=0,
                        help="limit the parity check to N test examples spread over the split (0: all)")
    parser.add_argument("--latency-seconds", type=float, default=3.0,
                        help="time spent per latency measurement (median of the repeats)")
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def runs_to_export(args) -> list[Path]:
    if args.run:
        return [args.run]
    latest = args.runs / "latest"
    if args.recipe:
        return [latest / args.recipe]
    found = sorted(p for p in latest.glob("*") if (p / "model.keras").is_file()) if latest.is_dir() else []
    if not found:
        raise RunError(f"no finished runs under {latest}; train one first (make train RECIPE=...)")
    return found


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_start(args.verbose)  # before anything loads TensorFlow
    os.environ["KERAS_BACKEND"] = "tensorflow"  # conversions run on a TensorFlow reload
    return report_errors(lambda: run(args))


def run(args) -> int:
    """Export each chosen run; 1 when any artifact failed the parity gate."""
    from dlkeras import progress
    from dlkeras.export.run import export_run

    progress.reset_steps()
    formats = None
    if args.formats:
        formats = check_formats([f.strip() for f in args.formats.split(",") if f.strip()])
    failed = 0
    for run_path in runs_to_export(args):
        report = export_run(run_path, formats, args.out, args.parity_examples, args.latency_seconds)
        print(Path(report["folder"], "export_summary.md").read_text())
        print(f"written: {report['folder']}")
        failed += not report["passed"]
    progress.print_step_table()
    return 1 if failed else 0


if __name__ == "__main__":
    exit_process(main())
