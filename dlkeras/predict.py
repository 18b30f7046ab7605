"""python -m dlkeras.predict --run RUN_DIR | --artifact PATH [INPUT ...] [--input FILE] [--output FILE.csv]

Answers raw inputs with a finished run or with any exported artifact (model.keras, a
SavedModel folder, .tflite, .onnx): it reads the preprocessing.json beside the model, applies
the same preprocessing as training, and prints the predictions. What "raw input" means depends
on the task (`tasks.TASKS`, its `predict_raw`); the model is loaded by `dlkeras.export.artifacts` in
the runtime of its format.

Classification: texts as arguments (or --input FILE with one per line, or a CSV/JSONL with a
--column), image files as arguments, or table rows in --input FILE.CSV. Prints the label and
its probability per input, plus the top classes.

Forecast runs: `--input` is a CSV/Parquet file with the date, target and covariate columns of
the training data; its latest `input_days` days (after the run's gap rule) are the input.
Without `--input` the run's own latest days (saved in preprocessing.json) are used. The next
`horizon_days` days are printed with their dates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlkeras import tasks
from dlkeras.cli import add_verbose_argument, exit_process, report_errors
from dlkeras.io import write_text_atomic
from dlkeras.quiet import quiet_start


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dlkeras.predict",
        description="Predict with a finished dlkeras run from raw inputs.",
        epilog="Example: python -m dlkeras.predict --run runs/latest/lstm_sales --input sales.csv",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run directory (holds model.keras)")
    source.add_argument("--artifact", type=Path,
                        help="exported model: model.keras, saved_model/, *.tflite or model.onnx")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="texts or image files")
    parser.add_argument("--input", type=Path, help="raw input file (default: the run's latest data)")
    parser.add_argument("--column", default="text", help="text column of a CSV/JSONL --input")
    parser.add_argument("--top", type=int, default=3, help="classes shown per input")
    parser.add_argument("--output", type=Path, help="also write the predictions to this CSV")
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_start(args.verbose)  # before anything loads TensorFlow
    return report_errors(lambda: run(args))


def run(args) -> int:
    """Load the run's model or the artifact, answer the raw inputs with the task's predictor."""
    from dlkeras.export import artifacts

    model = artifacts.load_run(args.run) if args.run else artifacts.load_artifact(args.artifact)
    text, table = tasks.get(model.task).predict_raw(model, args)
    print(text)
    if args.output:
        write_text_atomic(args.output, table)
        print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    exit_process(main())
