"""Recipes as frozen dataclasses, command-line overrides and TOML recipes.

A recipe is plain data: which data to read, which model factory to call, how to train and what
to report. Nothing here imports TensorFlow or Keras, so `--help`, `--list` and
`--print-config` stay fast.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from dlkeras.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """Where the examples come from and how they are split and batched.

    `kind` picks the pipeline (tabular, images, text, ...). `source` names a bundled data set;
    a non-empty `path` (a user file) wins over it. Column fields apply to table-like files;
    unused fields are ignored by other pipelines. `missing` says what to do with rows that have
    empty feature values: "error" (default) or "drop" (reported with a count). `test_path`
    gives a separate test file instead of a test split. Text: `sequence_length` 0 picks the
    99th percentile of training token counts, capped at `max_sequence_length`;
    `group_by_length` puts training texts of similar length in the same batch (each batch is
    padded only to its longest text, so this trains on fewer padding tokens).

    Time series (`kind="timeseries"`): one row per day with `date_column`, `target_column` and
    optional `covariate_columns`; each example is `input_days` days of inputs and the
    `horizon_days` days that follow as targets. `gap_fill` is the rule for missing dates:
    "interpolate" (linear), "zero" (e.g. a closed shop sold nothing), "previous" (carry the
    last value forward) or "error". `calendar_features` picks from "day_of_week" (one-hot),
    "month" and "day_of_year" (sine and cosine), or is ("auto",): the training and validation
    days choose (see `data.seasonality`); `holidays` lists "YYYY-MM-DD" dates or yearly "MM-DD"
    dates that set a holiday flag feature.

    Image files (`kind="image_folder"`): `path` is a folder with one sub-folder of images per
    class, or a CSV with `image_column` (paths, relative to the CSV) and `label_column`; an
    empty `path` uses the bundled `source` (generated once under `cache_dir`, default
    $DLKERAS_CACHE or ~/.cache/dlkeras). Images are resized to `image_size` squared.
    With `augment`, training batches get flips, rotations, colour jitter and cutout scaled by
    `augment_strength`, plus MixUp when `mixup` (its Beta alpha) and CutMix when `cutmix`
    (its Beta factor) are above 0.

    Training splits are shuffled every epoch from the seed and the epoch alone: in-memory
    arrays whole, streamed ones (image files, forecast windows) in blocks of `shuffle_buffer`.
    """

    kind: str = "tabular"
    source: str = ""
    path: str = ""
    test_path: str = ""
    text_column: str = "text"
    label_column: str = "label"
    feature_columns: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    missing: str = "error"
    max_examples: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    batch_size: int = 32
    augment: bool = False
    augment_strength: float = 0.1
    shuffle_buffer: int = 4096
    sequence_length: int = 0
    max_sequence_length: int = 128
    group_by_length: bool = True
    date_column: str = "date"
    target_column: str = "value"
    covariate_columns: tuple[str, ...] = ()
    input_days: int = 30
    horizon_days: int = 7
    gap_fill: str = "interpolate"
    calendar_features: tuple[str, ...] = ("day_of_week", "month")
    holidays: tuple[str, ...] = ()
    image_size: int = 224
    image_column: str = "path"
    cache_dir: str = ""
    mixup: float = 0.0
    cutmix: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """Which factory builds the network, and its size.

    `attention_heads` is the number of heads of each attention layer (transformer_encoder).
    `last_value_residual` (forecasting networks): the head predicts each horizon day's change
    from the last input day, so an untrained network starts as the last-value forecast.
    `weights` (image backbones): "imagenet" (the pretrained weights installed locally),
    "random", or a path to a weights file.
    `depth` (efficientnet_lite0): EfficientNet's depth coefficient, the share of each stage's
    blocks that is built (rounded up, at least one per stage); 1.0 is Lite0 itself, which the
    ImageNet weights need. A smaller value is a shallower network with the same layer types,
    for quick checks of a pipeline from random weights.
    """

    name: str = "mlp"
    preset: str = ""
    filters: tuple[int, ...] = (32, 64, 128)
    units: tuple[int, ...] = (128, 64)
    dropout: float = 0.2
    l2: float = 0.0
    attention_heads: int = 4
    last_value_residual: bool = False
    weights: str = "imagenet"
    depth: float = 1.0


@dataclass(frozen=True)
class StageConfig:
    """One pass of `fit` over the data with its own trainable set and learning rate.

    `epochs` / `learning_rate` of None take the values of `TrainConfig`; `trainable` is
    "all", "head" (only layers whose name starts with "head") or "top:N" (last N layers).
    `backbone_learning_rate`, when set, is the rate of every trainable layer outside the head
    (discriminative fine-tuning: e.g. 1e-5 for the backbone beside a head's 1e-3).
    """

    name: str = "train"
    epochs: int | None = None
    learning_rate: float | None = None
    trainable: str = "all"
    backbone_learning_rate: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: optimizer, schedule, regularisation and the list of stages.

    `loss` "auto" is the task's natural loss (cross-entropy with `label_smoothing` for
    classification, mean squared error for forecasting); "mae" and "huber" are alternatives
    for forecasting. `class_weight`: "none", "balanced" (n / (k * count) per class) or "auto"
    (balanced only when it raises the validation macro-F1 of a linear probe, see
    `tasks.linear_probe`). `keep_stage`: "best" keeps, after the last stage, the stage whose
    weights score best on the validation split (macro-F1 for classification); "last" keeps
    the last stage's. `time_budget_minutes` (0: none) caps the stages that run the whole model so
    that training ends within that many minutes of the run's start (see `engine.budget`).
    `keep_best_of_baselines` (forecasting): when a storable baseline scores a lower validation
    MAE than the network, the run keeps it and `predict` serves it (exports hold the network).
    `distribution`: "none", "data_parallel" (every local device) or "multi_worker" (several
    processes); `data.batch_size` is then the global batch (see `engine.distribution`).
    `precision`: "auto" (the fastest policy this machine runs natively, see `engine.precision`),
    "float32", "mixed_bfloat16" or "mixed_float16".
    `keep_resume_state`: keep the stage weights and feature cache of a finished run (by
    default they are removed when it finishes; see `RunDir.finish`).
    """

    epochs: int = 10
    learning_rate: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    loss: str = "auto"
    schedule: str = "warmup_cosine"
    warmup_fraction: float = 0.05
    clipnorm: float = 0.0
    label_smoothing: float = 0.0
    class_weight: str = "none"
    keep_stage: str = "best"
    time_budget_minutes: float = 0.0
    keep_best_of_baselines: bool = False
    precision: str = "auto"
    distribution: str = "none"
    keep_resume_state: bool = False
    gradient_accumulation_steps: int = 1
    seed: int = 42
    stages: tuple[StageConfig, ...] = (StageConfig(),)


@dataclass(frozen=True)
class CallbacksConfig:
    """Which Keras callbacks run, and their patience."""

    monitor: str = "val_loss"
    early_stopping_patience: int = 5
    reduce_lr_patience: int = 2
    reduce_lr_factor: float = 0.5
    checkpoints: bool = True
    tensorboard: bool = True


@dataclass(frozen=True)
class EvaluateConfig:
    """What is reported on the test split."""

    baselines: tuple[str, ...] = ()
    plots: bool = True


@dataclass(frozen=True)
class ExportConfig:
    """Which artifacts `make export` writes for this recipe."""

    formats: tuple[str, ...] = ("saved_model", "tflite", "tflite_dynamic", "tflite_int8", "onnx")


SEARCH_KINDS = ("float", "log_float", "int", "choice")


@dataclass(frozen=True)
class SearchParam:
    """One searched hyperparameter: a dotted recipe key and the values it may take.

    `kind` is "float" (uniform in [`low`, `high`]), "log_float" (log-uniform: rates, decays),
    "int" (`low` to `high` in steps of `step`, default 1) or "choice" (one of `values`, each
    written as on the command line: "64", "0.5", "(64, 32)", "adamw").
    """

    key: str = ""
    kind: str = "float"
    low: float = 0.0
    high: float = 1.0
    step: float = 0.0
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class TuneConfig:
    """The hyperparameter search of `python -m dlkeras.tune`; training ignores it.

    `space` lists the searched fields. `objective` judges a trial by its best epoch:
    "val_loss", "val_macro_f1" (classification; scikit-learn on the validation split at each
    epoch end), "val_accuracy" or "val_mae" (forecast). `direction` "auto" minimises losses and
    errors and maximises the rest. `max_epochs` caps every trial (Hyperband: the budget of its
    longest trials; 0 keeps `train.epochs`) and becomes `train.epochs` of the best recipe.
    Hyperband keeps the best 1/`hyperband_factor` of the trials at each round. Trials run in a
    worker process that a fresh one replaces every `trials_per_process` trials (Keras on
    TensorFlow keeps memory after every fit); 0 runs them in the search's own process.
    """

    space: tuple[SearchParam, ...] = ()
    objective: str = "val_loss"
    direction: str = "auto"
    max_epochs: int = 0
    hyperband_factor: int = 3
    trials_per_process: int = 10


@dataclass(frozen=True)
class Recipe:
    """A complete, named training plan for one task.

    `backend` is the Keras backend used when KERAS_BACKEND is not set (the fastest one for this
    recipe's model on a CPU); an explicit KERAS_BACKEND always wins.
    """

    name: str
    task: str = "classification"
    description: str = ""
    backend: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)


# === Loading ===


def load_recipe(name_or_path: str) -> Recipe:
    """Returns a bundled recipe by name, or a user recipe from a TOML file.

    Raises:
        ConfigError: unknown name, unreadable TOML, or a key the recipe does not have.
    """
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        return load_toml_recipe(Path(name_or_path))
    from dlkeras.recipes import RECIPES

    if name_or_path not in RECIPES:
        raise ConfigError(
            f"unknown recipe {name_or_path!r}{suggest(name_or_path, RECIPES)}; "
            f"bundled recipes: {', '.join(sorted(RECIPES))}, or pass a path to a .toml recipe"
        )
    return load_recipe_module(name_or_path).RECIPE


def load_recipe_module(name: str) -> types.ModuleType:
    """Imports `dlkeras.recipes.<name>` (holding RECIPE and SMOKE)."""
    from dlkeras.recipes import RECIPES

    return importlib.import_module(RECIPES[name])


def load_toml_recipe(path: Path) -> Recipe:
    """Reads a user recipe: `extends = "<bundled recipe>"` plus the tables that differ."""
    if not path.is_file():
        raise ConfigError(f"recipe file {path} does not exist; check the path")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    base_name = document.pop("extends", None)
    if base_name is None:
        raise ConfigError(
            f'{path} needs `extends = "<recipe>"` naming the bundled recipe it starts from'
        )
    base = load_recipe(str(base_name))
    document.setdefault("name", path.stem)
    try:
        return apply_settings(base, dict(flatten(document)))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def flatten(table: dict, prefix: str = ""):
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, dotted + ".")
        else:
            yield dotted, value


# === Overrides ===


def apply_overrides(recipe: Recipe, overrides: typing.Iterable[str]) -> Recipe:
    """Applies `key=value` strings such as "train.epochs=3" or "model.units=(64, 32)".

    Values are read with `ast.literal_eval` (a bare word stays a string) and checked against
    the field's type.

    Raises:
        ConfigError: malformed text, unknown key (with close matches) or a wrong type.
    """
    settings = {}
    for text in overrides:
        key, separator, raw = text.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"override {text!r} must look like key=value, e.g. train.epochs=3")
        settings[key.strip()] = parse_value(raw.strip())
    return apply_settings(recipe, settings)


def apply_settings(recipe: Recipe, settings: dict[str, object]) -> Recipe:
    """Applies already-parsed values by dotted key (see `apply_overrides`)."""
    for key, value in settings.items():
        recipe = _set_path(recipe, key.split("."), value, key)
    return recipe


def parse_value(raw: str) -> object:
    """A value as `--set` reads it: a Python literal, else the bare string."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _set_path(obj, parts: list[str], value, key: str):
    head, rest = parts[0], parts[1:]
    if isinstance(obj, tuple) and head.isdigit():
        index = int(head)
        if index >= len(obj):
            raise ConfigError(f"{key}: index {index} is out of range (there are {len(obj)})")
        items = list(obj)
        items[index] = _set_path(obj[index], rest, value, key) if rest else value
        return tuple(items)
    if not dataclasses.is_dataclass(obj):
        raise ConfigError(f"unknown key {key!r}: {type(obj).__name__} has no field {head!r}")
    names = [f.name for f in dataclasses.fields(obj)]
    if head not in names:
        raise ConfigError(f"unknown key {key!r}{suggest(head, names, key, parts)}")
    hint = typing.get_type_hints(type(obj))[head]
    current = getattr(obj, head)
    new = _set_path(current, rest, value, key) if rest else coerce(value, hint, key)
    return dataclasses.replace(obj, **{head: new})


def suggest(word: str, options, key: str | None = None, parts: list[str] | None = None) -> str:
    matches = difflib.get_close_matches(word, list(options), n=3, cutoff=0.5)
    if not matches:
        return ""
    if key is not None and parts is not None:
        stem = key[: len(key) - len(".".join(parts))]
        matches = [stem + m for m in matches]
    return "; did you mean " + " or ".join(repr(m) for m in matches) + "?"


def coerce(value, hint, key: str):
    """Checks `value` against a type hint, converting where it is lossless.

    Raises:
        ConfigError: the value cannot be that type.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            value = (value,)
        item = args[0]
        return tuple(coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key} expects a table of {hint.__name__} fields, got {value!r}")
        base = hint()
        return apply_settings(base, {k: v for k, v in flatten(value)})
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{key} expects {getattr(hint, '__name__', hint)}, got {value!r}")


# === Serialisation ===


def to_dict(recipe: Recipe) -> dict:
    """The recipe as plain JSON-ready data."""
    return dataclasses.asdict(recipe)


def from_dict(data: dict) -> Recipe:
    """Rebuilds a recipe written by `to_dict` (e.g. a run's recipe.json)."""
    name = data["name"]
    settings = {k: v for k, v in flatten({k: v for k, v in data.items() if k != "name"})}
    return apply_settings(Recipe(name=name), settings)


def differences(old: Recipe, new: Recipe) -> list[str]:
    """Human-readable `key: old -> new` lines for every field that differs."""
    before = dict(flatten(to_dict(old)))
    after = dict(flatten(to_dict(new)))
    return [
        f"{key}: {before.get(key)!r} -> {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def stage_plan(train: TrainConfig) -> list[StageConfig]:
    """Stages with their epochs and learning rate filled in from `train`."""
    return [
        dataclasses.replace(
            stage,
            epochs=train.epochs if stage.epochs is None else stage.epochs,
            learning_rate=train.learning_rate
            if stage.learning_rate is None
            else stage.learning_rate,
        )
        for stage in train.stages
    ]
