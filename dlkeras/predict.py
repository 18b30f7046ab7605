"""python -m dlkeras.predict --run RUN_DIR [--input FILE] [--output FILE.csv]

Answers raw inputs with a finished run: it reads the run's recipe.json, preprocessing.json and
model, applies the same preprocessing as training, and prints the predictions. What "raw
input" means depends on the task (`PREDICTORS`); how the model is loaded depends on the
artifact format (`LOADERS`).

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
    parser.add_argument("--run", required=True, type=Path, help="run directory (holds model.keras)")
    parser.add_argument("--input", type=Path, help="raw input file (default: the run's latest data)")
    parser.add_argument("--output", type=Path, help="also write the predictions to this CSV")
    parser.add_argument("--format", default="keras", choices=sorted(LOADERS),
                        help="which artifact of the run to load (default: keras)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run_dir, recipe = load_run(args.run)
        if recipe.task not in PREDICTORS:
            raise ConfigError(
                f"{run_dir.path}: predict does not handle task {recipe.task!r} yet; "
                f"it handles {sorted(PREDICTORS)}"
            )
        select_backend(recipe)
        text, table = PREDICTORS[recipe.task](run_dir, recipe, args)
    except DlkerasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    if args.output:
        write_text_atomic(args.output, table)
        print(f"written: {args.output}")
    return 0


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


def select_backend(recipe: config.Recipe) -> None:
    """The recipe's preferred backend unless KERAS_BACKEND is set (before Keras loads)."""
    if "KERAS_BACKEND" not in os.environ and recipe.backend and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = recipe.backend


# === Artifact formats ===


def load_keras_model(run_dir: RunDir, recipe: config.Recipe):
    """model.keras in safe mode; returns a function from an input batch to an output array."""
    import importlib

    import keras
    import numpy as np

    from dlkeras.models import MODELS

    if recipe.model.name in MODELS:
        importlib.import_module(MODELS[recipe.model.name])  # registers the factory's own layers
    model = keras.saving.load_model(run_dir.model_file, safe_mode=True)
    return lambda batch: np.asarray(model.predict(batch, verbose=0))


LOADERS = {"keras": load_keras_model}


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


def predict_forecast(run_dir: RunDir, recipe: config.Recipe, args) -> tuple[str, str]:
    """Forecasts the `horizon_days` after the latest input day; returns (text, CSV)."""
    import pandas as pd

    from dlkeras.data import timeseries

    preprocessing = json.loads(run_dir.preprocessing_json.read_text())
    window = latest_days(preprocessing, args.input)
    features = timeseries.model_inputs(window, preprocessing)[None]
    target = preprocessing["target_column"]
    mean, std = preprocessing["scaler"][target]
    values = LOADERS[args.format](run_dir, recipe)(features)[0] * std + mean
    dates = pd.date_range(window.index[-1] + pd.Timedelta(days=1), periods=len(values), freq="D")
    lines = [
        f"{recipe.name} ({recipe.model.name}): {target} for the {len(values)} days after "
        f"{window.index[-1].date()}, from the {len(window)} days "
        f"{window.index[0].date()} .. {window.index[-1].date()}",
        f"{'date':<12}{'weekday':<9}{target:>12}",
        *[f"{str(d.date()):<12}{d.strftime('%a'):<9}{v:>12.2f}" for d, v in zip(dates, values)],
    ]
    table = "date," + target + "\n" + "".join(f"{d.date()},{v:.4f}\n" for d, v in zip(dates, values))
    return "\n".join(lines), table


PREDICTORS = {"forecast": predict_forecast}


if __name__ == "__main__":
    sys.exit(main())
