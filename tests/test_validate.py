"""Recipes are checked against the registries before any data is read or any folder written."""

import pytest

from dlkeras import config, validate
from dlkeras.errors import ConfigError


def bad_override(recipe: config.Recipe, key: str) -> str:
    """`key=<a value no registry knows>`, indexed fields at index 0, tuple fields as tuples."""
    dotted = key.replace("*", "0")
    current = dict(validate._values(recipe, key))
    is_tuple = any(where != dotted for where in current) or not current
    return f"{dotted}=('no_such_choice',)" if is_tuple else f"{dotted}=no_such_choice"


@pytest.mark.parametrize("key", sorted([*validate.CHOICES, *validate.PATTERNS]))
def test_bad_fixed_choice_exits_2_before_any_folder(key, tmp_path, cli):
    override = bad_override(config.load_recipe("mlp_churn"), key)
    out = tmp_path / "runs"
    result = cli(["--recipe", "mlp_churn", "--set", override, "--out", str(out)])
    assert result.returncode == 2, (override, result.stdout[-500:], result.stderr[-2000:])
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "no_such_choice" in result.stderr and key.split(".")[-1] in result.stderr
    assert not out.exists()  # no run directory, no runs/latest link


def test_print_config_refuses_a_bad_choice_with_a_suggestion(cli):
    result = cli(["--recipe", "mlp_churn", "--set", "train.optimizer=adamz", "--print-config"])
    assert result.returncode == 2 and "did you mean 'adam'" in result.stderr
    assert "{" not in result.stdout


def test_task_must_fit_the_data_kind():
    recipe = config.apply_overrides(config.load_recipe("mlp_churn"), ["task=forecast"])
    with pytest.raises(ConfigError, match="does not fit data.kind='tabular'"):
        validate.check_recipe(recipe)


def test_choices_that_depend_on_the_task():
    forecast = config.load_recipe("lstm_sales")
    validate.check_recipe(forecast)
    for override, field in [("evaluate.baselines=('logistic_regression',)", "evaluate.baselines.0"),
                            ("train.class_weight=balanced", "train.class_weight"),
                            ("tune.objective=val_accuracy", "tune.objective"),
                            ("callbacks.monitor=val_accuracy", "callbacks.monitor")]:
        with pytest.raises(ConfigError, match=field):
            validate.check_recipe(config.apply_overrides(forecast, [override]))


def test_text_recipes_refuse_a_misspelt_missing_rule():
    recipe = config.apply_overrides(config.load_recipe("bert_tickets"), ["data.missing=dorp"])
    with pytest.raises(ConfigError, match="did you mean 'drop'"):
        validate.check_recipe(recipe)


def test_every_bundled_recipe_passes_its_checks():
    from dlkeras.recipes import RECIPES

    for name in RECIPES:
        module = config.load_recipe_module(name)
        validate.check_recipe(module.RECIPE)
        validate.check_recipe(config.apply_overrides(module.RECIPE, module.SMOKE))


def test_dry_run_checks_the_data_and_writes_nothing(tmp_path, command, churn_like_csv):
    out = tmp_path / "runs"
    result = command(["--recipe", "mlp_churn", "--set", f"data.path={churn_like_csv}",
                  "--set", "data.label_column=churn", "--out", str(out), "--dry-run"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nothing was trained or written" in result.stdout and "parameters" in result.stdout
    assert not out.exists()
    missing = command(["--recipe", "mlp_churn", "--set", f"data.path={churn_like_csv}",
                   "--set", "data.label_column=chrun", "--out", str(out), "--dry-run"])
    assert missing.returncode == 2 and "'chrun' not found" in missing.stderr
    assert not out.exists()
