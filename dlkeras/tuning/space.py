"""A recipe's search space (`tune.space`) as data: checks, trial values, and the best recipe.

A trial is the recipe with the trial's values applied by dotted key (`config.apply_settings`),
so a search trains exactly what `python -m dlkeras.train --set key=value` would. Nothing here
imports Keras or KerasTuner; `declare` receives KerasTuner's `HyperParameters` object.
"""

from __future__ import annotations

import json
import math
import shlex

from dlkeras import config, tasks, validate
from dlkeras.errors import ConfigError

TUNERS = ("random", "bayesian", "hyperband")


# === Checks ===


def check_tune(recipe: config.Recipe, tuner: str) -> None:
    """Raises ConfigError, naming the fix, when the recipe's `tune` section cannot be searched."""
    tune = recipe.tune
    if tuner not in TUNERS:
        raise ConfigError(f"--tuner {tuner!r}; choose one of {', '.join(TUNERS)}")
    if not tune.space:
        raise ConfigError(
            f"recipe {recipe.name!r} declares no search space; add tune.space, e.g. --set "
            "\"tune.space=[{'key': 'train.learning_rate', 'kind': 'log_float', "
            "'low': 1e-4, 'high': 1e-2}]\""
        )
    validate.check_recipe(recipe)  # the objective, the direction and every other choice
    if tune.max_epochs < 0 or tune.trials_per_process < 0 or tune.hyperband_factor < 2:
        raise ConfigError("tune.max_epochs and tune.trials_per_process must be >= 0 "
                          "and tune.hyperband_factor >= 2")
    if len(recipe.train.stages) != 1:
        raise ConfigError(f"a search trains one stage, recipe {recipe.name!r} has "
                          f"{len(recipe.train.stages)}; search with --set \"train.stages=[{{}}]\" "
                          "or tune each stage in a recipe of its own")
    keys = [param.key for param in tune.space]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"tune.space names a key twice: {keys}")
    for index, param in enumerate(tune.space):
        check_param(recipe, param, f"tune.space.{index}")
    if tuner == "hyperband" and "train.epochs" in keys:
        raise ConfigError("Hyperband sets the epochs of each trial itself; remove train.epochs "
                          "from tune.space (tune.max_epochs is its budget)")


def check_param(recipe: config.Recipe, param: config.SearchParam, where: str) -> None:
    """Checks one SearchParam: its kind, bounds, and that every value fits the recipe field."""
    if param.key.split(".")[0] in ("name", "tune") or not param.key:
        raise ConfigError(f"{where}.key={param.key!r} must name a data, model, train, callbacks "
                          "or evaluate field, e.g. train.learning_rate")
    if param.kind == "choice":
        if not param.values:
            raise ConfigError(f"{where} ({param.key}) is a choice without values; "
                              "set values, e.g. ['32', '64']")
        samples = [config.parse_value(v) for v in param.values]
    else:
        if not param.low < param.high or (param.kind == "log_float" and param.low <= 0):
            raise ConfigError(f"{where} ({param.key}): need low < high (and low > 0 for "
                              f"log_float), got low={param.low}, high={param.high}")
        samples = [to_recipe_value(param, param.low), to_recipe_value(param, param.high)]
    for value in samples:
        try:
            validate.check_recipe(config.apply_settings(recipe, {param.key: value}))
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None


def direction(tune: config.TuneConfig) -> str:
    """"min" or "max": `tune.direction`, or for "auto" the one rule of `tasks.direction`."""
    if tune.direction != "auto":
        return tune.direction
    return tasks.direction(tune.objective)


def max_epochs(recipe: config.Recipe) -> int:
    """The most epochs a trial trains: `tune.max_epochs`, or `train.epochs` when it is 0."""
    return recipe.tune.max_epochs or recipe.train.epochs


def hyperband_brackets(epochs: int, factor: int) -> list[int]:
    """Trials in each bracket of one Hyperband iteration (KerasTuner's sizes, largest first)."""
    brackets, budget = 0, float(epochs)
    while budget >= 1:
        budget, brackets = budget / factor, brackets + 1
    end_size = math.ceil(1 + math.log(epochs, factor))
    return [
        sum(math.ceil(end_size / (bracket + 1) * factor ** (bracket - round_))
            for round_ in range(bracket + 1))
        for bracket in reversed(range(brackets))
    ]


# === Trials ===


def to_recipe_value(param: config.SearchParam, value):
    """A tuner's value as the recipe takes it: floats to 3 significant digits, choices parsed."""
    if param.kind == "choice":
        return config.parse_value(value) if isinstance(value, str) else value
    if param.kind == "int":
        return int(value)
    return float(f"{float(value):.3g}")


def declare(hp, space) -> dict[str, object]:
    """Declares each SearchParam on KerasTuner's `hp`; returns this trial's recipe values."""
    values = {}
    for param in space:
        if param.kind == "choice":
            value = hp.Choice(param.key, choice_options(param.values))
        elif param.kind == "int":
            value = hp.Int(param.key, int(param.low), int(param.high), step=int(param.step or 1))
        else:
            value = hp.Float(param.key, param.low, param.high, step=param.step or None,
                             sampling="log" if param.kind == "log_float" else "linear")
        values[param.key] = to_recipe_value(param, value)
    return values


def choice_options(values: tuple[str, ...]) -> list:
    """KerasTuner options of one type: numbers and booleans as such (ordered), else the text."""
    parsed = [config.parse_value(v) for v in values]
    if all(type(v) is bool for v in parsed) or all(type(v) is int for v in parsed):
        return parsed
    if all(type(v) in (int, float) for v in parsed):
        return [float(v) for v in parsed]
    return list(values)


def recipe_values(space, hp_values: dict) -> dict[str, object]:
    """The recipe values of a finished trial's hyperparameter values (tuner/* keys dropped)."""
    return {p.key: to_recipe_value(p, hp_values[p.key]) for p in space if p.key in hp_values}


def trial_recipe(recipe: config.Recipe, values: dict[str, object]) -> config.Recipe:
    """The recipe a trial trains: `values` applied, `train.epochs` capped at `max_epochs`."""
    recipe = config.apply_settings(recipe, values)
    if "train.epochs" in values:
        return recipe
    return config.apply_settings(recipe, {"train.epochs": max_epochs(recipe)})


# === The best recipe, as a command and as TOML ===


def changed_settings(base: config.Recipe, recipe: config.Recipe) -> dict[str, object]:
    """Training fields of `recipe` that differ from `base` (not `name`, not `tune.*`)."""
    before = dict(config.flatten(config.to_dict(base)))
    after = dict(config.flatten(config.to_dict(recipe)))
    return {key: value for key, value in after.items()
            if before.get(key) != value and key != "name" and not key.startswith("tune.")}


def rerun_command(recipe_ref: str, settings: dict[str, object]) -> str:
    """`python -m dlkeras.train --recipe ... --set key=value ...`, quoted for a POSIX shell."""
    parts = ["python", "-m", "dlkeras.train", "--recipe", shlex.quote(recipe_ref)]
    for key, value in settings.items():
        text = value if isinstance(value, str) and config.parse_value(value) == value else repr(value)
        parts += ["--set", shlex.quote(f"{key}={text}")]
    return " ".join(parts)


def recipe_toml(extends: str, name: str, settings: dict[str, object], header: str) -> str:
    """A TOML recipe: `extends` plus one table per section of `settings` (dotted keys)."""
    top = {k: v for k, v in settings.items() if "." not in k}
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"extends = {_toml(extends)}", f"name = {_toml(name)}"]
    lines += [f"{key} = {_toml(value)}" for key, value in top.items()]
    sections: dict[str, list[str]] = {}
    for key, value in settings.items():
        if "." in key:
            section, rest = key.split(".", 1)
            sections.setdefault(section, []).append(f"{rest} = {_toml(value)}")
    for section, entries in sections.items():
        lines += ["", f"[{section}]", *entries]
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # a stage or search parameter; None means "the default"
        items = [f"{k} = {_toml(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }"
    raise ConfigError(f"cannot write {value!r} to TOML")
