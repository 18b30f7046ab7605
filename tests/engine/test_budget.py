"""train.time_budget_minutes: stage lengths that fit the time left, timed on the real model."""

import json

import numpy as np
import pytest

from dlkeras.config import StageConfig
from dlkeras.engine import budget

STAGE = StageConfig(name="finetune", epochs=3)


def test_stage_that_fits_keeps_its_epochs():
    plan = budget.plan_stage(STAGE, train_steps=100, val_steps=30, step_seconds=0.1,
                             seconds_left=100.0)
    assert (plan.epochs, plan.steps_per_epoch) == (3, None)
    assert plan.estimated_seconds == pytest.approx(3 * (100 * 0.1 + 30 * 0.1 / 3))


def test_stage_gets_the_whole_epochs_that_fit():
    plan = budget.plan_stage(STAGE, train_steps=100, val_steps=30, step_seconds=0.1,
                             seconds_left=25.0)  # an epoch costs 11 s
    assert (plan.epochs, plan.steps_per_epoch) == (2, None)


def test_stage_shorter_than_an_epoch_gets_the_steps_that_fit():
    plan = budget.plan_stage(STAGE, train_steps=100, val_steps=30, step_seconds=0.1,
                             seconds_left=6.0)  # 1 s of validation, then 50 steps
    assert (plan.epochs, plan.steps_per_epoch) == (1, 50)
    assert "50 of 100 steps" in plan.reason


def test_stage_with_too_little_time_left_is_skipped():
    plan = budget.plan_stage(STAGE, train_steps=100, val_steps=30, step_seconds=1.0,
                             seconds_left=5.0)
    assert plan.epochs == 0


def test_unmeasured_stage_keeps_its_epochs():
    plan = budget.plan_stage(STAGE, train_steps=100, val_steps=30, step_seconds=None,
                             seconds_left=-10.0)
    assert (plan.epochs, plan.steps_per_epoch) == (3, None)


def test_timing_steps_leaves_the_model_as_it_was():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="hidden"),
                              keras.layers.Dropout(0.5, name="drop"),
                              keras.layers.BatchNormalization(name="norm"),
                              keras.layers.Dense(2, name="out")])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.eye(2)[np.arange(64) % 2])).batch(8)
    before = [np.copy(v.numpy()) for v in model.variables]

    seconds = budget.time_steps(
        model, data, lambda: model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    )

    assert seconds > 0
    for variable, value in zip(model.variables, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    # the optimizer is as a fresh one: no step counted, no moments, so the stage can fit on
    assert int(model.optimizer.iterations.numpy()) == 0
    moments = [v for v in model.optimizer.variables if v is not model.optimizer.iterations]
    assert moments and not any(np.any(v.numpy()) for v in moments if "learning_rate" not in v.path)


def test_a_stage_that_fits_its_budget_fits_the_model_its_timing_compiled(command, tmp_path,
                                                                          monkeypatch):
    from dlkeras.engine import stages
    from dlkeras.recipes import mlp_churn

    compiled, original = [], stages.compile_stage
    monkeypatch.setattr(stages, "compile_stage",
                        lambda *args, **kwargs: compiled.append(args[2].name) or original(*args, **kwargs))
    sets = [*mlp_churn.SMOKE, "train.time_budget_minutes=30"]
    result = command(["--recipe", "mlp_churn", "--out", str(tmp_path),
                      *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fits the time budget" in result.stdout
    plans = json.loads((tmp_path / "latest" / "mlp_churn" / "budget.json").read_text())
    assert compiled == list(plans) and len(compiled) >= 1  # one compile per stage, not two


def test_budgeted_run_cuts_the_stage_and_records_why(command, tmp_path, monkeypatch):
    import time

    from dlkeras.recipes import cnn_digits
    from dlkeras.runs import read_history

    # The 6 s budget counts from the end of the step timing, not from the run's start: loading
    # the data and compiling took all 6 s on a loaded machine, leaving no epoch to plan.
    clocks, time_steps = [], budget.time_steps

    class Clock(budget.Clock):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            clocks.append(self)

    def timed_then_started(*args, **kwargs):
        seconds = time_steps(*args, **kwargs)
        for clock in clocks:
            clock.started = time.perf_counter()
        return seconds

    monkeypatch.setattr(budget, "Clock", Clock)
    monkeypatch.setattr(budget, "time_steps", timed_then_started)
    sets = [*cnn_digits.SMOKE, "train.epochs=5000", "callbacks.early_stopping_patience=0",
            "train.time_budget_minutes=0.1"]
    result = command(["--recipe", "cnn_digits", "--out", str(tmp_path),
                  *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "latest" / "cnn_digits"
    plans = json.loads((run / "budget.json").read_text())
    (plan,) = plans.values()
    assert clocks and plan["step_seconds"] > 0
    assert 1 <= plan["epochs"] < 5000, plan
    rows = read_history(run / "history.csv")
    # the plan caps the epochs; the guard may stop earlier (per-epoch costs are not timed)
    assert 1 <= len(rows) <= plan["epochs"]
    assert json.loads((run / "metrics.json").read_text())["stage_lengths"] == plans
    assert "time budget:" in result.stdout
    # the schedule was built for the planned length: its warmup (5%) is far shorter than a
    # 5000-epoch warmup, so the rate at the last epoch is far above what 5000 epochs give
    peak = json.loads((run / "recipe.json").read_text())["train"]["learning_rate"]
    epoch = int(rows[-1]["epoch"])
    unbudgeted_rate = peak * epoch / (0.05 * 5000)
    assert float(rows[-1]["learning_rate"]) > 5 * unbudgeted_rate


def test_guard_stops_training_once_the_budget_is_spent():
    import keras

    from dlkeras.engine.callbacks import BudgetGuard

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")])
    model.compile(optimizer="sgd", loss="mse")
    batches = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    spent = budget.Clock(minutes=0.001, started=0.0)  # started long ago
    x = np.zeros((80, 4), "float32")
    model.fit(x, np.zeros((80, 2)), batch_size=4, epochs=3, verbose=0,
              callbacks=[counter, BudgetGuard(spent)])
    assert batches == [0]
