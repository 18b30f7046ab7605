"""The Python API for notebooks and scripts: recipes in; runs, exports and predictions out.

Each function calls the code the commands run (`validate`, `engine.run.train_recipe`,
`export.export_run`, `export.artifacts` and the task's predictor), so a notebook and the command
line give the same runs and answers. Tables come back as pandas DataFrames. Keras loads only when
a function needs it, so `import dlkeras` stays fast. The README's "Python API" has an example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dlkeras import config
from dlkeras.errors import ConfigError, RunError
from dlkeras.runs import RunDir


def list_recipes() -> dict[str, str]:
    """The bundled recipes: name -> one-line description."""
    from dlkeras.recipes import RECIPES

    return {name: config.load_recipe(name).description for name in RECIPES}


def load_recipe(name_or_path: str, *overrides: str, smoke: bool = False, **fields) -> config.Recipe:
    """A bundled recipe (by name) or a TOML recipe (by path), with overrides, checked.

    Overrides come as `key=value` strings, exactly as `--set` takes them on the command line
    ("train.epochs=3", "model.units=(64, 32)"), and/or as keyword fields, where a double
    underscore stands for the dot and the value is a Python value (`train__epochs=3`,
    `model__units=(64, 32)`, `train__stages__0__epochs=5`). Strings apply first, then keywords.

    Args:
        smoke: also apply the bundled recipe's `SMOKE` overrides, last, so they win: a tiny
            variant that trains in seconds (what the tests and the notebooks' small mode run).

    Raises:
        ConfigError: unknown recipe or key (with close matches), a wrong type, a value outside
            its choices, or `smoke` for a recipe that is not bundled.
    """
    from dlkeras import validate

    loose = [item for item in overrides if not isinstance(item, str)]
    if loose:
        raise ConfigError(f"overrides are 'key=value' strings, got {loose[0]!r}; pass each one as "
                          "its own argument: load_recipe(name, *overrides)")
    recipe = config.apply_overrides(config.load_recipe(str(name_or_path)), overrides)
    recipe = config.apply_settings(recipe, {key.replace("__", "."): value
                                            for key, value in fields.items()})
    if smoke:
        recipe = config.apply_overrides(recipe, smoke_overrides(str(name_or_path)))
    validate.check_recipe(recipe)
    return recipe


def smoke_overrides(name: str) -> list[str]:
    """The `SMOKE` overrides of a bundled recipe (a tiny variant for tests and quick looks)."""
    from dlkeras.recipes import RECIPES

    if name not in RECIPES:
        raise ConfigError(f"{name!r} is not a bundled recipe, so it has no SMOKE overrides; "
                          f"bundled: {', '.join(sorted(RECIPES))}")
    return list(config.load_recipe_module(name).SMOKE)


def recipe_changes(recipe: config.Recipe, base: config.Recipe | str | None = None) -> list[str]:
    """`key: old -> new` lines for every field of `recipe` that differs from `base` (by default
    the bundled recipe of the same name)."""
    if not isinstance(base, config.Recipe):
        base = config.load_recipe(base or recipe.name)
    return config.differences(base, recipe)


def example_data(recipe: config.Recipe | str):
    """The raw examples a recipe trains on, before any split: its `data.path` or bundled source.

    Tables, texts and series: a DataFrame. Image arrays: (images (N, H, W, C), labels). Image
    folders: a DataFrame of `path` and `label` (the bundled defects are generated on first use).

    Raises:
        DataError: the file or bundled set cannot be read (the message says what to fix).
    """
    recipe = _recipe(recipe)
    return EXAMPLES[recipe.data.kind](recipe.data)


def _table(data_config):
    from dlkeras.data import sources

    return sources.load_frame(data_config)[0]


def _image_arrays(data_config):
    from dlkeras.data import sources

    return sources.load_image_arrays(data_config.source, data_config.path)


def _image_files(data_config):
    import pandas as pd

    from dlkeras.data import image_files

    paths, labels, _ = image_files.list_examples(data_config)
    return pd.DataFrame({"path": paths, "label": labels})


EXAMPLES = {"tabular": _table, "text": _table, "timeseries": _table,  # by data.kind
            "images": _image_arrays, "image_folder": _image_files}


def fit(recipe: config.Recipe | str, out: str | Path = "runs", resume: str | None = None) -> Run:
    """Trains and evaluates a recipe exactly as `python -m dlkeras.train` does; returns the run.

    The backend is KERAS_BACKEND when set, else the recipe's own (`recipe.backend`); Keras fixes
    it when first imported, so set KERAS_BACKEND before anything imports Keras.

    Args:
        recipe: a recipe from `load_recipe`, or a bundled name or TOML path.
        out: the parent folder of run directories (`out/latest/<recipe>` is the newest run).
        resume: None for a new run; "latest" or a run directory to continue an interrupted one.
    """
    from dlkeras.engine.backend import select_backend
    from dlkeras.engine.distribution import check_supported

    recipe = _recipe(recipe)
    check_supported(recipe.train.distribution, select_backend(recipe, announce=False))
    from dlkeras.engine.run import train_recipe

    run_dir, _ = train_recipe(recipe, Path(out), resume)
    return Run(run_dir.path, recipe)  # recipe.json holds this same recipe


def _recipe(recipe: config.Recipe | str) -> config.Recipe:
    if isinstance(recipe, config.Recipe):
        from dlkeras import validate

        validate.check_recipe(recipe)  # one built by hand has not been checked
        return recipe
    return load_recipe(recipe)


@dataclass
class Run:
    """A finished run directory: its recipe, metrics and report, predictions and exports.

    Attributes:
        path: the run directory (e.g. runs/mlp_churn-20260101-120000).
        recipe: the fully resolved recipe it trained (its recipe.json).
    """

    path: Path
    recipe: config.Recipe
    _predictor: Predictor | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """An existing finished run, e.g. "runs/latest/mlp_churn".

        Raises:
            RunError: not a finished run (recipe.json, preprocessing.json or model.keras missing).
        """
        run_dir, recipe = RunDir.load_finished(Path(path))
        return cls(run_dir.path, recipe)

    @property
    def report_dir(self) -> Path:
        """The report folder: summary.md, curves.png, confusion_matrix.png and the task's plots."""
        return RunDir(self.path).report_dir

    @property
    def metrics(self) -> dict:
        """metrics.json as a dict: test metrics, baselines, what validation decided, diagnoses."""
        return json.loads(self._finished_file(RunDir(self.path).metrics_json).read_text())

    @property
    def summary(self) -> str:
        """report/summary.md: the metrics table, the verdict on the baselines and diagnoses."""
        return self._finished_file(self.report_dir / "summary.md").read_text(encoding="utf-8")

    def evaluate(self) -> dict:
        """Test metrics of the model and of the baselines: {"model": {...}, "baselines": {...}}.

        They were computed at the end of training on the test split (and saved in metrics.json);
        nothing is scored again here.
        """
        metrics = self.metrics
        return {"model": metrics["model"], "baselines": metrics.get("baselines", {})}

    def history(self):
        """history.csv as a DataFrame: one row per epoch of every stage (empty if none ran)."""
        import pandas as pd

        path = RunDir(self.path).history_csv
        return pd.read_csv(path) if path.is_file() else pd.DataFrame()

    def predict(self, inputs=None):
        """Predictions of the run's model.keras for raw inputs (see `Predictor.predict`)."""
        if self._predictor is None:
            self._predictor = load_predictor(self.path)
        return self._predictor.predict(inputs)

    def export(self, formats=None, out: str | Path = "saved_models", parity_limit: int = 0,
               latency_seconds: float = 3.0) -> dict:
        """Exports the run as `python -m dlkeras.export` does; returns the export report.

        Conversions run in this process on the TensorFlow backend (KERAS_BACKEND=tensorflow
        before Keras is imported). The report's "passed" says whether every artifact passed the
        parity gate, "folder" where they are (`<n>-failed` when one did not).

        Args:
            formats: format names (a list or one comma-separated string); None: the recipe's.
            out: the parent of the `<recipe>/<version>/` folders.
            parity_limit: test examples compared per format (0: the whole test split).
            latency_seconds: time spent per latency measurement.
        """
        from dlkeras.export import export_run

        if isinstance(formats, str):
            formats = [name.strip() for name in formats.split(",") if name.strip()]
        return export_run(self.path, formats, Path(out), parity_limit, latency_seconds)

    def _finished_file(self, path: Path) -> Path:
        if not path.is_file():  # killed between saving model.keras and writing its report
            raise RunError(f"{self.path} has no {path.relative_to(self.path)}: its report was not "
                           "written; resume the run (dlkeras.fit(recipe, resume=...)) or train again")
        return path


@dataclass
class Predictor:
    """A model that answers raw inputs: a run's model.keras or an exported artifact.

    Attributes:
        model: the loaded model with its preprocessing (`export.artifacts.LoadedModel`).
    """

    model: object

    def predict(self, inputs=None):
        """Predictions for raw inputs, as a DataFrame of the `python -m dlkeras.predict` CSV columns.

        Classifiers take texts or image files (one string is one input), image arrays, or table
        rows (a DataFrame, or a list of dicts of column: value); they answer `input`, `label` and
        `probability` per input, then the probability of every class. Forecasters take recent
        days (a DataFrame or a CSV/Parquet file with the training data's columns; None: the
        latest days the model saw) and answer `date`, the target and, where the run measured
        them, interval bounds; `frame.attrs["model"]` names what answered.

        Raises:
            DataError: inputs this model cannot read (the message says what it reads).
        """
        from dlkeras import tasks

        return tasks.get(self.model.task).predictions(self.model, inputs)


def load_predictor(path: str | Path) -> Predictor:
    """A predictor for a run directory, an export folder (its fastest format that passed the
    parity gate) or one artifact (model.keras, saved_model/, *.tflite, *.onnx).

    Raises:
        RunError: nothing loadable at `path`.
        DataError: no preprocessing.json beside the model, or an export folder without a
            format that passed the gate.
    """
    from dlkeras.export import artifacts

    return Predictor(artifacts.load_path(Path(path)))
