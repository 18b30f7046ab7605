"""Recipe checks before any work: every fixed-choice field against the registry that owns it.

`config` parses and types a recipe but cannot know the registries (tasks, data kinds, model
factories, optimizers, export formats) without importing everything above it; this module
sits above those registries and checks each fixed-choice field, with close-match suggestions,
before any data is read or any folder is written. `CHOICES` lists the fields; each entry
returns the allowed values for a recipe (some depend on its task or data kind).

`dry_run` goes one step further: it reads and checks the data source and builds the model,
still writing no run directory.
"""

from __future__ import annotations

from collections.abc import Callable

from dlkeras import config, data, models, tasks
from dlkeras.data import timeseries
from dlkeras.engine import distribution, optimizers, precision
from dlkeras.engine.stages import check_trainable
from dlkeras.errors import ConfigError
from dlkeras.export.formats import FORMATS


def _task(recipe: config.Recipe) -> tasks.Task:
    return tasks.get(recipe.task)


def _data_sources(recipe: config.Recipe) -> tuple[str, ...]:
    if recipe.data.path:  # a user file wins over the bundled source
        return (recipe.data.source,)
    return data.KINDS[recipe.data.kind].sources


# dotted field -> allowed values for this recipe. Tuple fields are checked item by item.
CHOICES: dict[str, Callable[[config.Recipe], tuple[str, ...]]] = {
    "task": lambda recipe: tuple(tasks.TASKS),
    "data.kind": lambda recipe: tuple(data.KINDS),
    "data.source": _data_sources,
    "data.missing": lambda recipe: data.MISSING_RULES,
    "data.gap_fill": lambda recipe: timeseries.GAP_FILLS,
    "data.calendar_features": lambda recipe: timeseries.CALENDAR_CHOICES,
    "model.name": lambda recipe: tuple(models.MODELS),
    "train.optimizer": lambda recipe: tuple(optimizers.OPTIMIZERS),
    "train.schedule": lambda recipe: optimizers.SCHEDULES,
    "train.loss": lambda recipe: _task(recipe).losses,
    "train.class_weight": lambda recipe: _task(recipe).class_weights,
    "train.keep_stage": lambda recipe: ("best", "last"),
    "train.distribution": lambda recipe: distribution.MODES,
    "train.precision": lambda recipe: precision.POLICIES,
    "callbacks.monitor": lambda recipe: _task(recipe).monitors,
    "evaluate.baselines": lambda recipe: _task(recipe).baselines,
    "export.formats": lambda recipe: tuple(FORMATS),
    "tune.objective": lambda recipe: _task(recipe).objectives,
    "tune.direction": lambda recipe: ("auto", "min", "max"),
    "tune.space.*.kind": lambda recipe: config.SEARCH_KINDS,
}
# fields whose value is a pattern rather than a name from a list
PATTERNS = {"train.stages.*.trainable": check_trainable}


def resolve_recipe(name_or_path: str, overrides=()) -> config.Recipe:
    """The bundled or TOML recipe with the command line's overrides, checked.

    Raises:
        ConfigError: unknown recipe or key, a wrong type, or a value outside its choices.
    """
    recipe = config.apply_overrides(config.load_recipe(name_or_path), overrides)
    check_recipe(recipe)
    return recipe


def check_recipe(recipe: config.Recipe) -> None:
    """Raises ConfigError naming the first fixed-choice field whose value is not allowed.

    The task comes first (other fields' choices depend on it), then the data kind's tasks.
    """
    _check_field(recipe, "task")
    _check_field(recipe, "data.kind")
    kind = data.KINDS[recipe.data.kind]
    if recipe.task not in kind.tasks:
        raise ConfigError(
            f"task={recipe.task!r} does not fit data.kind={recipe.data.kind!r}, which serves "
            f"{' or '.join(map(repr, kind.tasks))}; set task to one of those or pick a data kind "
            f"that serves {recipe.task!r}"
        )
    for key in CHOICES:
        if key not in ("task", "data.kind"):
            _check_field(recipe, key)
    for key, check in PATTERNS.items():
        for where, value in _values(recipe, key):
            try:
                check(value)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
    models.check(recipe.model)
    if recipe.train.time_budget_minutes < 0:
        raise ConfigError(f"train.time_budget_minutes={recipe.train.time_budget_minutes:g}; "
                          "use a number of minutes, or 0 for no budget")


def _check_field(recipe: config.Recipe, key: str) -> None:
    allowed = CHOICES[key](recipe)
    for where, value in _values(recipe, key):
        if value not in allowed:
            hint = config.suggest(str(value), allowed)
            raise ConfigError(f"{where}={value!r} is not one of "
                              f"{', '.join(map(repr, allowed)) or 'the allowed values'}{hint}")


def _values(recipe: config.Recipe, key: str):
    """(dotted location, value) for every value `key` names ("*" matches every index)."""
    items = [("", recipe)]
    for part in key.split("."):
        expanded = []
        for where, obj in items:
            if part == "*":
                expanded += [(f"{where}.{i}", item) for i, item in enumerate(obj)]
            else:
                expanded.append((f"{where}.{part}".lstrip("."), getattr(obj, part)))
        items = expanded
    for where, value in items:
        if isinstance(value, tuple):
            yield from ((f"{where}.{i}", item) for i, item in enumerate(value))
        else:
            yield where, value


def dry_run(recipe: config.Recipe) -> str:
    """Builds the data (every check runs) and the model, and describes them; writes no run.

    Returns:
        A few lines: the data summary, the model's size, and that nothing was written.
    """
    import keras

    from dlkeras.engine.run import describe_data

    keras.utils.set_random_seed(recipe.train.seed)
    datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
    describe_data(datasets.info)
    model = models.build(recipe.model, datasets.info)
    stages = ", ".join(f"{s.name} ({s.epochs} epochs, trainable={s.trainable})"
                       for s in config.stage_plan(recipe.train))
    return (f"model {recipe.model.name}: {model.count_params():,} parameters; stages: {stages}\n"
            f"recipe {recipe.name} and its data check out; nothing was trained or written")
