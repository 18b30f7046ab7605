"""Frozen-backbone stages that lead the plan are skipped only when a later stage trains more."""

import dataclasses

import pytest

from dlkeras import config
from dlkeras.engine.run import skip_head_stages


def with_stages(*stages: tuple[str, str]) -> config.Recipe:
    recipe = config.load_recipe("bert_tickets")
    plan = tuple(config.StageConfig(name=name, trainable=trainable) for name, trainable in stages)
    return dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, stages=plan))


@pytest.mark.parametrize("stages, kept, skipped", [
    ([("head", "head"), ("finetune", "all")], ["finetune"], ["head"]),
    ([("warm", "head"), ("head", "head"), ("top", "top:20"), ("last", "head")],
     ["top", "last"], ["warm", "head"]),
    ([("head", "head")], ["head"], None),  # nothing after it: the plan is the user's to keep
    ([("finetune", "all"), ("head", "head")], ["finetune", "head"], None),  # not leading
])
def test_only_leading_head_stages_before_a_deeper_one_are_skipped(stages, kept, skipped):
    training = {}
    recipe = skip_head_stages(with_stages(*stages), training)
    assert [stage.name for stage in recipe.train.stages] == kept
    assert training.get("skipped_stages") == skipped
