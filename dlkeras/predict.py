"""python -m dlkeras.predict --run RUN_DIR | --artifact PATH [INPUT ...] [--input FILE] [--output FILE.csv]

Answers raw inputs with a finished run or with any exported artifact (model.keras, a
SavedModel folder, .tflite, .onnx): it reads the preprocessing.json beside the model, applies
the same preprocessing as training, and prints the predictions. What "raw input" means depends
on the task (`PREDICTORS`); how the model is loaded depends on the artifact format.

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
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlkeras import config
from dlkeras.errors import ConfigError, DataError, DlkerasError, RunError
from dlkeras.runs import RunDir, write_text_atomic


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
        if model.task not in PREDICTORS:
            raise ConfigError(
                f"{model.path}: predict does not handle task {model.task!r} yet; "
                f"it handles {sorted(PREDICTORS)}"
            )
        text, table = PREDICTORS[model.task](model, args)
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


def load_run(path: Path) -> tuple[RunDir, config.Recipe]:
    """The run directory and its resolved recipe; RunError when it is not a finished run."""
    run_dir = RunDir(path.resolve())
    missing = [p.name for p in (run_dir.recipe_json, run_dir.preprocessing_json, run_dir.model_file)
               if not p.is_file()]
    if missing:
        raise RunError(
            f"{path} is not a finished run (missing {', '.join(missing)}); pass --run with a "
            "directory written by python -m dlkeras.train, e.g. runs/latest/<recipe>"
        )
    return run_dir, config.from_dict(json.loads(run_dir.recipe_json.read_text()))


def load_model_source(args) -> LoadedModel:
    """The run's model.keras (--run) or any exported artifact (--artifact)."""
    from dlkeras.data.raw import load_preprocessing

    if args.run:
        run_dir, recipe = load_run(args.run)
        select_backend(recipe)
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
    from dlkeras.export import runtimes

    task = "forecast" if preprocessing.get("kind") == "timeseries" else "classification"
    return LoadedModel(path, name, task, folder, preprocessing, runtimes.load(format_name, path))


def select_backend(recipe: config.Recipe) -> None:
    """The recipe's preferred backend unless KERAS_BACKEND is set (before Keras loads)."""
    if "KERAS_BACKEND" not in os.environ and recipe.backend and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = recipe.backend


# === Tasks ===


def latest_days(preprocessing: dict, input_path: Path | None):
    """The latest `input_days` days (original units), from `input_path` or the run itself."""
    import pandas as pd

    from dlkeras.data import sources, timeseries

    days = preprocessing["input_days"]
    columns = list(preprocessing["scaler"])
    if input_path is None:
        latest = preprocessing["latest"]
        index = pd.DatetimeIndex(pd.to_datetime(latest["dates"]), name="date")
        return pd.DataFrame({c: latest[c] for c in columns}, index=index)
    notes: list[str] = []
    series = timeseries.prepare_series(sources.load_table(input_path), preprocessing,
                                       str(input_path), notes)
    for note in notes:
        print(f"input: {note}", file=sys.stderr)
    if len(series) < days:
        raise DataError(
            f"{input_path}: the model forecasts from {days} consecutive days but the file "
            f"covers {len(series)}; provide at least {days} days"
        )
    return series.iloc[-days:]


def predict_forecast(model: LoadedModel, args) -> tuple[str, str]:
    """Forecasts the `horizon_days` after the latest input day; returns (text, CSV)."""
    import pandas as pd

    from dlkeras.data import timeseries

    preprocessing = model.preprocessing
    window = latest_days(preprocessing, args.input)
    features = timeseries.model_inputs(window, preprocessing)[None]
    target = preprocessing["target_column"]
    mean, std = preprocessing["scaler"][target]
    values = model.predict(features)[0] * std + mean
    dates = pd.date_range(window.index[-1] + pd.Timedelta(days=1), periods=len(values), freq="D")
    lines = [
        f"{model.name}: {target} for the {len(values)} days after "
        f"{window.index[-1].date()}, from the {len(window)} days "
        f"{window.index[0].date()} .. {window.index[-1].date()}",
        f"{'date':<12}{'weekday':<9}{target:>12}",
        *[f"{str(d.date()):<12}{d.strftime('%a'):<9}{v:>12.2f}" for d, v in zip(dates, values)],
    ]
    table = "date," + target + "\n" + "".join(f"{d.date()},{v:.4f}\n" for d, v in zip(dates, values))
    return "\n".join(lines), table


def classification_inputs(model: LoadedModel, args) -> tuple[list[str], object]:
    """(display names, raw inputs) from the arguments or --input, by the model's input kind."""
    kind = model.preprocessing["kind"]
    if args.input is not None:
        from dlkeras.data import sources

        if kind == "text" and args.input.suffix.lower() in (".txt", ""):
            texts = [line for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
            return texts, texts
        frame = sources.load_table(args.input)
        if kind == "text":
            if args.column not in frame.columns:
                raise DataError(f"{args.input}: no column {args.column!r}; pass --column NAME "
                                f"(the file has {list(frame.columns)})")
            texts = frame[args.column].astype(str).tolist()
            return texts, texts
        if kind == "tabular":
            return [f"row {i + 2}" for i in range(len(frame))], frame
        paths = frame.iloc[:, 0].astype(str).tolist()
        return paths, paths
    if not args.inputs:
        raise DataError("give inputs to classify: texts or image files as arguments, or --input FILE")
    if kind == "tabular":
        raise DataError("table models read rows from a file: pass --input rows.csv")
    return list(args.inputs), list(args.inputs)


def predict_classification(model: LoadedModel, args) -> tuple[str, str]:
    """Top classes per input from raw inputs, batch by batch; returns (text, CSV)."""
    import numpy as np

    from dlkeras.data.raw import RawInputs

    names, raw = classification_inputs(model, args)
    convert = RawInputs(model.preprocessing, model.folder)
    batches = []
    for start in range(0, len(names), 32):
        chunk = raw.iloc[start : start + 32] if hasattr(raw, "iloc") else raw[start : start + 32]
        batches.append(np.asarray(model.predict(convert(chunk)), dtype=np.float64))
    probabilities = np.concatenate(batches)
    classes = model.preprocessing["class_names"]
    lines, rows = [f"{model.name}: {len(names)} input(s)"], ["input,label,probability"]
    for name, row in zip(names, probabilities):
        order = np.argsort(-row)[: max(1, args.top)]
        shown = ", ".join(f"{classes[i]} {row[i]:.3f}" for i in order)
        shown_name = name if len(name) <= 70 else "..." + name[-67:]
        lines.append(f"{classes[order[0]]:>14s}  {row[order[0]]:.3f}  {shown_name!r}  [{shown}]")
        rows.append(f"{json.dumps(name)},{classes[order[0]]},{row[order[0]]:.6f}")
    return "\n".join(lines), "\n".join(rows) + "\n"


PREDICTORS = {"forecast": predict_forecast, "classification": predict_classification}


if __name__ == "__main__":
    sys.exit(main())
