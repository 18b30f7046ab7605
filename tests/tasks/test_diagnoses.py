"""Diagnoses of training curves: each rule on hand-made histories, and in real reports."""

import json
import math

import pytest
from support import write_customers_csv

from dlkeras import config
from dlkeras.engine.run import train_recipe
from dlkeras.runs import read_history
from dlkeras.tasks import diagnoses


def history(stage="train", learning_rate=1e-3, **columns) -> list[dict]:
    """history.csv rows as `read_history` returns them (strings) from per-epoch columns."""
    epochs = len(next(iter(columns.values())))
    return [{"stage": stage, "epoch": str(epoch + 1), "learning_rate": str(learning_rate),
             "seconds": "0.1", **{key: str(values[epoch]) for key, values in columns.items()}}
            for epoch in range(epochs)]


HEALTHY = {"loss": [0.90, 0.70, 0.55, 0.45, 0.40, 0.36, 0.33, 0.31],
           "val_loss": [0.85, 0.70, 0.60, 0.52, 0.48, 0.45, 0.43, 0.42],
           "val_accuracy": [0.60, 0.70, 0.75, 0.78, 0.80, 0.81, 0.82, 0.83],
           "gradient_norm": [1.8, 1.4, 1.1, 0.9, 0.8, 0.7, 0.7, 0.6]}


def rules(findings) -> list[str]:
    return [f["rule"] for f in findings]


def test_a_healthy_history_yields_no_finding():
    found = diagnoses.diagnose(history(**HEALTHY), planned_epochs={"train": 8}, patience=3)
    assert found == []
    assert "No problem found" in diagnoses.render(found)


def test_loss_not_decreasing_is_found_with_its_numbers():
    flat = {**HEALTHY, "loss": [0.693, 0.690, 0.692, 0.689, 0.691, 0.690, 0.692, 0.691]}
    (found,) = diagnoses.diagnose(history(**flat), planned_epochs={"train": 8})
    assert found["rule"] == "loss_not_decreasing" and found["name"] == "loss not decreasing"
    assert "0.693" in found["detail"] and "0.689" in found["detail"] and "-0.6%" in found["detail"]
    assert "overfit one small batch" in found["advice"]
    # a drop of 3% (more than LOSS_DROP_MIN) is learning
    slow = {**flat, "loss": [0.70, 0.69, 0.68, 0.679, 0.68, 0.68, 0.68, 0.68]}
    assert diagnoses.diagnose(history(**slow)) == []


def test_divergence_from_a_rising_loss():
    rising = {**HEALTHY, "loss": [0.70, 0.60, 0.90, 1.20, 1.60, 2.10, 2.80, 3.50]}
    found = diagnoses.diagnose(history(learning_rate=0.3, **rising))
    assert rules(found) == ["divergence"]  # the loss did not fall either: said once
    assert "from 0.7 (epoch 1) to 3.5 (epoch 8), 5.0x its start at learning rate 0.3" in \
        found[0]["detail"]
    assert "train.clipnorm" in found[0]["advice"] and "learning rate" in found[0]["advice"]


def test_divergence_from_a_nan_loss_is_not_called_early_stopping():
    broken = {key: values[:3] for key, values in HEALTHY.items()}
    broken["loss"] = [0.9, 0.7, math.nan]
    found = diagnoses.diagnose(history(**broken), planned_epochs={"train": 20}, patience=2)
    assert rules(found) == ["divergence"]
    assert "became nan at epoch 3" in found[0]["detail"]


def test_divergence_from_an_exploding_gradient_norm():
    exploding = {**HEALTHY, "gradient_norm": [1.5, 2.0, 4.0, 9.0, 40.0, 30.0, 20.0, 10.0]}
    (found,) = diagnoses.diagnose(history(**exploding))
    assert found["rule"] == "divergence"
    assert "gradient norm on a fixed training batch grew from 1.5 (epoch 1) to 40 (epoch 5), 27x" \
        in found["detail"]
    infinite = {**HEALTHY, "gradient_norm": [1.5, 2.0, math.inf, 9.0, 4.0, 3.0, 2.0, 1.0]}
    assert "gradient norm became inf at epoch 3" in diagnoses.diagnose(history(**infinite))[0]["detail"]


def test_overfitting_gap():
    overfit = {**HEALTHY, "loss": [0.90, 0.60, 0.40, 0.25, 0.15, 0.09, 0.05, 0.03],
               "val_loss": [0.85, 0.62, 0.55, 0.58, 0.66, 0.75, 0.86, 0.98]}
    (found,) = diagnoses.diagnose(history(**overfit), planned_epochs={"train": 8})
    assert found["rule"] == "overfitting_gap"
    detail = found["detail"]
    assert "training loss was 0.03 and the validation loss 0.98 (32.7x)" in detail
    assert "best at epoch 3 (0.55) and has risen 78% since" in detail
    assert "augment" in found["advice"] and "regularise" in found["advice"]
    # validation loss above training loss but still falling: no finding
    assert diagnoses.diagnose(history(**{**overfit, "val_loss": [0.9, 0.8, 0.7, 0.65, 0.6, 0.58,
                                                                 0.57, 0.56]})) == []


def test_validation_plateau_on_the_monitored_value():
    stalled = {"loss": [0.90, 0.70, 0.55, 0.50, 0.48, 0.47, 0.46, 0.45, 0.44, 0.44, 0.43],
               "val_loss": [0.85, 0.70, 0.60, 0.60, 0.61, 0.60, 0.61, 0.60, 0.61, 0.60, 0.60],
               "val_accuracy": [0.60, 0.70, 0.80, 0.80, 0.79, 0.80, 0.78, 0.80, 0.79, 0.80, 0.80]}
    (found,) = diagnoses.diagnose(history(**stalled), monitor="val_accuracy",
                                  planned_epochs={"train": 11})
    assert found["rule"] == "validation_plateau"
    assert found["detail"] == ("val_accuracy was best at epoch 3 (0.8) and did not improve on it in "
                               "the last 5 epochs (7-11).")
    assert "train.schedule='plateau'" in found["advice"]
    # a higher accuracy in the last epochs is no plateau
    improved = {**stalled, "val_accuracy": [*stalled["val_accuracy"][:-1], 0.85]}
    assert diagnoses.diagnose(history(**improved), monitor="val_accuracy") == []


def test_early_stopping_names_the_epoch_and_the_best_one():
    stopped = {key: values[:6] for key, values in HEALTHY.items()}
    stopped["val_loss"] = [0.85, 0.70, 0.60, 0.62, 0.61, 0.63]
    (found,) = diagnoses.diagnose(history(**stopped), planned_epochs={"train": 30}, patience=3)
    assert found["rule"] == "early_stopping"
    assert found["name"] == "stopped by early stopping at epoch 6"
    assert "planned 30 epochs; val_loss was best at epoch 3 (0.6)" in found["detail"]
    assert "best epoch were restored" in found["advice"]


def test_a_time_budget_cut_is_said_instead_of_early_stopping():
    short = {key: values[:2] for key, values in HEALTHY.items()}
    plan = {"epochs": 2, "steps_per_epoch": None, "reason": "10 epochs would take ~95 s; 2 fit"}
    (found,) = diagnoses.diagnose(history(**short), planned_epochs={"train": 10}, patience=1,
                                  budget_plans={"train": plan}, time_budget=True)
    assert found["rule"] == "time_budget" and found["name"] == "cut by the time budget"
    assert "planned 10 epoch(s); the time budget allowed 2 epoch(s) (10 epochs would take" in \
        found["detail"]
    # the guard stopped it mid-plan while validation still improved: the budget ran out
    improving = {key: values[:4] for key, values in HEALTHY.items()}
    plan = {"epochs": 10, "steps_per_epoch": None, "reason": "fits the time budget"}
    (found,) = diagnoses.diagnose(history(**improving), planned_epochs={"train": 10}, patience=3,
                                  budget_plans={"train": plan}, time_budget=True)
    assert found["rule"] == "time_budget" and "ran out during epoch 4" in found["detail"]
    # a stage the budget left no time for
    skipped = {"epochs": 0, "steps_per_epoch": 0, "reason": "~3 s left: fewer than 10 steps fit"}
    found = diagnoses.diagnose(history(**HEALTHY), planned_epochs={"train": 8, "tune": 5},
                               budget_plans={"tune": skipped})
    assert [(f["rule"], f["stage"]) for f in found] == [("time_budget", "tune")]
    assert "allowed none" in found[0]["detail"]


def test_stages_are_judged_each_on_their_own_epochs():
    # the second stage starts where the first ended: its loss is judged from its own start
    first = history("head", **HEALTHY)
    rising = {**HEALTHY, "loss": [0.30, 0.35, 0.50, 0.70, 0.90, 1.00, 1.10, 1.20]}
    found = diagnoses.diagnose(first + history("all", **rising),
                               planned_epochs={"head": 8, "all": 8})
    assert [(f["rule"], f["stage"]) for f in found] == [("divergence", "all")]


def test_render_writes_one_bullet_per_finding():
    overfit = {**HEALTHY, "loss": [0.90, 0.60, 0.40, 0.25, 0.15, 0.09, 0.05, 0.03],
               "val_loss": [0.85, 0.62, 0.55, 0.58, 0.66, 0.75, 0.86, 0.98]}
    rising = {**HEALTHY, "loss": [0.30, 0.35, 0.50, 0.70, 0.90, 1.00, 1.10, 1.20]}
    found = diagnoses.diagnose(history("head", **overfit) + history("all", **rising))
    text = diagnoses.render(found)
    assert text.startswith("\n## Diagnoses\n\n")
    bullets = [line for line in text.splitlines() if line.startswith("- ")]
    assert bullets[0].startswith("- **overfitting gap** (stage 'head'): At epoch 8")
    assert bullets[1].startswith("- **divergence** (stage 'all'): The training loss rose")
    assert len(bullets) == 2
    json.dumps(found, allow_nan=False)  # metrics.json stays strict JSON


def test_a_tiny_training_set_trained_long_reports_the_overfitting_gap(tmp_path):
    # 60 customers with noisy labels (42 to train on), a wide network without dropout or
    # weight decay and no early stopping: it memorises the training split
    path = write_customers_csv(tmp_path / "customers.csv", rows=60, noise=15)
    module = config.load_recipe_module("mlp_churn")
    recipe = config.apply_overrides(module.RECIPE, [
        f"data.path={path}", "data.batch_size=64", "model.units=(256, 256)", "model.dropout=0.0",
        "train.weight_decay=0.0", "train.epochs=40", "train.learning_rate=0.01",
        "train.schedule='constant'", "train.class_weight='none'",
        "callbacks.early_stopping_patience=0", "callbacks.tensorboard=False",
        "callbacks.checkpoints=False", "evaluate.baselines=()", "evaluate.plots=False"])
    run_dir, report = train_recipe(recipe, tmp_path / "runs")
    metrics = json.loads(run_dir.metrics_json.read_text())
    assert "overfitting_gap" in rules(metrics["diagnoses"])
    summary = (run_dir.report_dir / "summary.md").read_text()
    assert summary == report["summary"]
    assert "\n## Diagnoses\n" in summary and "- **overfitting gap** (stage 'train'): " in summary
    rows = read_history(run_dir.history_csv)
    assert float(rows[-1]["val_loss"]) > 1.5 * float(rows[-1]["loss"])


def test_the_forecast_report_has_the_section_too(daily_sales_csv, tmp_path):
    module = config.load_recipe_module("lstm_sales")
    recipe = config.apply_overrides(module.RECIPE, [
        *module.SMOKE, f"data.path={daily_sales_csv}", "data.date_column=day",
        "data.target_column=sales", "data.covariate_columns=('promotion',)", "data.input_days=10",
        "callbacks.tensorboard=false", "callbacks.checkpoints=false", "train.epochs=2",
        "evaluate.plots=false"])
    run_dir, report = train_recipe(recipe, tmp_path / "runs")
    metrics = json.loads(run_dir.metrics_json.read_text())
    assert isinstance(metrics["diagnoses"], list)
    assert report["summary"].endswith(diagnoses.render(metrics["diagnoses"]))
    assert "\n## Diagnoses\n" in (run_dir.report_dir / "summary.md").read_text()


@pytest.mark.parametrize("monitor,expected", [("val_accuracy", "val_accuracy"),
                                              ("accuracy", "val_accuracy"),
                                              ("val_macro_f1", "val_loss")])
def test_the_monitored_validation_column(monitor, expected):
    assert diagnoses._validation_key(history(**HEALTHY), monitor) == expected  # noqa: SLF001
