"""python -m dlkeras.predict --run RUN_DIR | --artifact PATH [INPUT ...] [--input FILE] [--output FILE.csv]

Answers raw inputs with a finished run or with any exported artifact (model.keras, a
SavedModel folder, .tflite, .onnx): it reads the preprocessing.json beside the model, applies
the same preprocessing as training, and prints the predictions. What "raw input" means depends
on the task (`tasks.TASKS`, its `predict_raw`); how the model is loaded depends on the artifact format.

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
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlkeras import tasks
from dlkeras.engine.backend import select_backend
from dlkeras.errors import DlkerasError, RunError
from dlkeras.io import write_text_atomic
from dlkeras.runs import RunDir


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
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        model = load_model_source(args)
        text, table = tasks.get(model.task).predict_raw(model, args)
    except DlkerasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    if args.output:
        write_text_atomic(args.output, table)
        print(f"written: {args.output}")
    return 0


@dataclass
class LoadedModel:
    """A model ready to answer raw inputs: its predict function and the preprocessing beside it."""

    path: Path
    name: str
    task: str
    folder: Path
    preprocessing: dict
    predict: Callable


def load_model_source(args) -> LoadedModel:
    """The run's model.keras (--run) or any exported artifact (--artifact)."""
    from dlkeras.data.raw import load_preprocessing

    if args.run:
        run_dir, recipe = RunDir.load_finished(args.run)
        select_backend(recipe, announce=False)
        path, folder, name = run_dir.model_file, run_dir.path, f"{recipe.name} ({recipe.model.name})"
        format_name = "keras"
    else:
        from dlkeras.export.runtimes import format_of

        path = args.artifact.resolve()
        if not path.exists():
            raise RunError(f"artifact {args.artifact} does not exist; run `make export` first")
        format_name = format_of(path)
        folder = path.parent
        name = f"{folder.parent.name} {format_name} v{folder.name}"
    preprocessing = load_preprocessing(folder)
    from dlkeras.data import KINDS
    from dlkeras.export import runtimes

    task = preprocessing.get("task") or KINDS[preprocessing["kind"]].tasks[0]
    return LoadedModel(path, name, task, folder, preprocessing, runtimes.load(format_name, path))


if __name__ == "__main__":
    sys.exit(main())
