import json

import pytest

from dlkeras import config
from dlkeras.errors import ConfigError
from dlkeras.recipes import RECIPES


def test_overrides_are_typed():
    recipe = config.apply_overrides(
        config.load_recipe("cnn_digits"),
        ["train.epochs=3", "train.learning_rate=1e-4", "model.units=(64, 32)",
         "data.augment=false", "data.path=/tmp/x.npz", "train.learning_rate=2"],
    )
    assert recipe.train.epochs == 3
    assert recipe.train.learning_rate == 2.0 and isinstance(recipe.train.learning_rate, float)
    assert recipe.model.units == (64, 32)
    assert recipe.data.augment is False
    assert recipe.data.path == "/tmp/x.npz"


def test_unknown_key_suggests_close_match():
    with pytest.raises(ConfigError, match=r"did you mean 'train\.epochs'"):
        config.apply_overrides(config.load_recipe("mlp_churn"), ["train.epoch=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'dta\.path'.*'data'"):
        config.apply_overrides(config.load_recipe("mlp_churn"), ["dta.path=x.csv"])


@pytest.mark.parametrize("override, message", [
    ("train.epochs=three", "train.epochs expects int"),
    ("train.epochs=2.5", "train.epochs expects int"),
    ("data.augment=maybe", "data.augment expects bool"),
    ("train.epochs", "must look like key=value"),
    ("train.stages.3.epochs=1", "out of range"),
])
def test_bad_overrides_fail_clearly(override, message):
    with pytest.raises(ConfigError, match=message):
        config.apply_overrides(config.load_recipe("cnn_digits"), [override])


def test_stage_fields_are_reachable_by_index():
    recipe = config.apply_overrides(
        config.load_recipe("cnn_digits"),
        ["train.stages=[{'name': 'head', 'epochs': 1, 'trainable': 'head'}, {'name': 'all'}]",
         "train.stages.1.learning_rate=1e-5", "train.epochs=4"],
    )
    plan = config.stage_plan(recipe.train)
    assert [(s.name, s.epochs, s.learning_rate, s.trainable) for s in plan] == [
        ("head", 1, recipe.train.learning_rate, "head"),
        ("all", 4, 1e-5, "all"),
    ]


def test_toml_recipe_extends_a_bundled_one(tmp_path):
    path = tmp_path / "my_digits.toml"
    path.write_text(
        'extends = "cnn_digits"\n'
        '[data]\nsource = "sklearn_digits"\n'
        '[train]\nepochs = 2\n'
        '[[train.stages]]\nname = "only"\nlearning_rate = 0.01\n'
    )
    recipe = config.load_recipe(str(path))
    base = config.load_recipe("cnn_digits")
    assert recipe.name == "my_digits"
    assert recipe.data.source == "sklearn_digits" and recipe.train.epochs == 2
    assert recipe.train.stages[0].name == "only" and recipe.train.stages[0].learning_rate == 0.01
    assert recipe.model == base.model


def test_toml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "cnn_digits"\n[train]\nepoch = 2\n')
    with pytest.raises(ConfigError, match=r"bad\.toml.*did you mean 'train\.epochs'"):
        config.load_recipe(str(bad))
    no_base = tmp_path / "no_base.toml"
    no_base.write_text("[train]\nepochs = 2\n")
    with pytest.raises(ConfigError, match="extends"):
        config.load_recipe(str(no_base))
    with pytest.raises(ConfigError, match="does not exist"):
        config.load_recipe(str(tmp_path / "missing.toml"))


def test_unknown_recipe_lists_the_bundled_ones():
    with pytest.raises(ConfigError, match="did you mean 'cnn_digits'.*mlp_churn"):
        config.load_recipe("cnn_digit")


def test_recipe_round_trips_through_json():
    recipe = config.apply_overrides(config.load_recipe("mlp_churn"), ["model.units=(8,)"])
    again = config.from_dict(json.loads(json.dumps(config.to_dict(recipe))))
    assert again == recipe
    assert config.differences(recipe, again) == []
    changed = config.apply_overrides(again, ["train.learning_rate=0.5"])
    assert config.differences(recipe, changed) == ["train.learning_rate: 0.001 -> 0.5"]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_module_name_matches_recipe(name):
    module = config.load_recipe_module(name)
    assert module.__name__.rsplit(".", 1)[-1] == name == module.RECIPE.name
    config.apply_overrides(module.RECIPE, module.SMOKE)  # smoke overrides stay valid
