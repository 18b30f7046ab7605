"""python -m dlkeras.check and train --preflight on a real recipe: diagnoses provoked and found."""

import json

import pandas as pd
import pytest
from support import write_customers_csv

SETS = ["model.units=(16,)", "data.batch_size=16", "callbacks.tensorboard=False"]


def check(command, csv, out, *sets, only=()):
    args = ["--recipe", "mlp_churn", "--out", str(out),
            *[a for s in [f"data.path={csv}", *SETS, *sets] for a in ("--set", s)]]
    return command(args + (["--only", *only] if only else []), module="dlkeras.check")


@pytest.fixture(scope="module")
def customers(tmp_path_factory):
    return write_customers_csv(tmp_path_factory.mktemp("data") / "customers.csv", rows=400)


@pytest.fixture(scope="module")
def shuffled(customers, tmp_path_factory):
    frame = pd.read_csv(customers)
    frame["churn"] = frame["churn"].sample(frac=1.0, random_state=1).to_numpy()
    path = tmp_path_factory.mktemp("data") / "shuffled.csv"
    frame.to_csv(path, index=False)
    return path


def test_every_check_runs_and_leaves_its_verdicts_and_range_plot(customers, tmp_path, command):
    # at the recipe's 0.001 the one-batch fit ended near its 15% line (0.113 of a 0.686 start
    # after 300 steps, under the bfloat16 that `auto` picks on a CPU with avx512_bf16); at 0.003
    # it is fitted in under 100 steps in float32 and bfloat16 alike
    result = check(command, customers, tmp_path, "train.learning_rate=0.003")
    assert result.returncode == 0, result.stdout + result.stderr
    (folder,) = tmp_path.glob("mlp_churn-check-*")
    report = json.loads((folder / "check.json").read_text())
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert set(statuses) == {"data", "labels vs inputs", "overfit one batch", "gradient flow",
                             "learning-rate range", "bottleneck"}
    assert statuses["labels vs inputs"] == statuses["overfit one batch"] == "pass"
    assert statuses["gradient flow"] == "pass"
    assert "fail" not in statuses.values()
    assert (folder / "lr_range.png").stat().st_size > 10_000
    assert "no check failed" in (folder / "check.md").read_text()


def test_shuffled_labels_are_named_a_label_input_mismatch(shuffled, tmp_path, command):
    result = check(command, shuffled, tmp_path, only=("labels", "overfit"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "label/input mismatch" in result.stdout
    (folder,) = tmp_path.glob("mlp_churn-check-*")
    report = json.loads((folder / "check.json").read_text())
    assert report["failed"][0] == "labels vs inputs"


def test_learning_rate_of_10_gets_the_divergence_advice(customers, tmp_path, command):
    result = check(command, customers, tmp_path, "train.learning_rate=10.0", only=("overfit",))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot overfit one batch" in result.stdout
    assert "learning rate too high" in result.stdout
    assert "lower the stage's learning rate (now 10)" in result.stdout


def test_preflight_stops_training_on_shuffled_labels_before_any_run(shuffled, tmp_path, command):
    args = ["--recipe", "mlp_churn", "--out", str(tmp_path), "--preflight",
            *[a for s in [f"data.path={shuffled}", *SETS] for a in ("--set", s)]]
    result = command(args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "preflight failed: nothing was trained" in result.stdout
    assert not list(tmp_path.glob("mlp_churn-*")), "a run directory was written"


def test_unknown_check_is_refused_with_the_choices(customers, tmp_path, command):
    result = check(command, customers, tmp_path, only=("speed",))
    assert result.returncode == 2
    assert "lr_range" in result.stderr
