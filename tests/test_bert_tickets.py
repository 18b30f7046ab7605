"""bert_tickets on a user's own file: only data.path and the two column names change."""

import json

import numpy as np
import pandas as pd

from dlkeras.runs import RunDir, read_history


def test_recipe_trains_on_a_64_row_csv(tmp_path, command):
    rng = np.random.default_rng(0)
    topics = {"billing": "refund charge invoice card", "baggage": "bag lost suitcase belt",
              "delay": "late delayed gate hours"}
    rows = []
    for i in range(64):
        queue = list(topics)[i % 3]
        words = rng.choice(topics[queue].split(), 6).tolist() + ["please", "help", str(i)]
        rows.append({"message": " ".join(words), "queue": queue})
    pd.DataFrame(rows).to_csv(tmp_path / "tickets.csv", index=False)
    sets = [f"data.path={tmp_path / 'tickets.csv'}", "data.text_column=message",
            "data.label_column=queue", "model.preset=tiny_bert_random", "data.batch_size=8",
            "train.stages.0.epochs=3", "train.epochs=1", "train.stages.1.learning_rate=1e-3",
            "train.time_budget_minutes=0"]  # no step timing (tests/engine/test_budget.py)
    result = command(["--recipe", "bert_tickets", "--out", str(tmp_path / "runs"),
                  *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = RunDir((tmp_path / "runs" / "latest" / "bert_tickets").resolve())
    metrics = json.loads(run_dir.metrics_json.read_text())
    assert metrics["class_names"] == ["baggage", "billing", "delay"]
    assert set(metrics["baselines"]) == {"tfidf_logistic_regression", "linear_probe"}
    assert "the head starts from the linear probe's solution" in result.stdout
    assert "confidently_wrong" in metrics["extra"]
    assert (run_dir.report_dir / "confidently_wrong.md").is_file()
    # each topic's own words: the probe separates the training split, so the frozen-encoder
    # stage, which could only sharpen it, is skipped and fine-tuning starts from the probe
    assert metrics["linear_probe"]["training_accuracy"] >= 0.99
    assert "skipping stage(s) head" in result.stdout and metrics["skipped_stages"] == ["head"]
    stages = [row["stage"] for row in read_history(run_dir.history_csv)]
    assert stages == ["finetune"]
    preprocessing = json.loads(run_dir.preprocessing_json.read_text())
    assert preprocessing["kind"] == "text" and preprocessing["strip_accents"] is True


def tickets_csv(path, count: int, seed: int):
    rng = np.random.default_rng(seed)
    topics = {"billing": "refund charge invoice card", "baggage": "bag lost suitcase belt",
              "delay": "late delayed gate hours"}
    rows = [{"message": " ".join(rng.choice(topics[q].split(), 5).tolist() + [f"n{seed}x{i}"]),
             "queue": q} for i, q in enumerate(np.resize(list(topics), count))]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_automatic_choices_read_no_test_example(tmp_path):
    """Class weights, the probe's settings and the kept stage come from validation only: two
    runs that differ only in their test file make the same choices."""
    from dlkeras import config
    from dlkeras.engine.run import train_recipe

    train_csv = tickets_csv(tmp_path / "train.csv", 60, seed=0)
    decided = []
    for seed in (1, 2):
        test_csv = tickets_csv(tmp_path / f"test{seed}.csv", 12 + 6 * seed, seed=seed)
        recipe = config.apply_overrides(config.load_recipe("bert_tickets"), [
            f"data.path={train_csv}", f"data.test_path={test_csv}", "data.text_column=message",
            "data.label_column=queue", "data.val_fraction=0.3", "model.preset=tiny_bert_random",
            "data.batch_size=8", "train.stages.0.epochs=2", "train.epochs=1",
            "train.stages.1.learning_rate=1e-3", "callbacks.tensorboard=false",
            "evaluate.plots=false", "train.time_budget_minutes=0"])
        run_dir, report = train_recipe(recipe, tmp_path / f"runs{seed}")
        assert report["model"]["examples"] == 12 + 6 * seed  # the test files did differ
        decided.append({key: report.get(key) for key in
                        ("class_weight", "linear_probe", "kept_stage", "stage_validation",
                         "skipped_stages")})
    assert decided[0]["class_weight"] in ("none", "balanced")
    assert decided[0]["kept_stage"] in ("probe", "head", "finetune")
    assert decided[0] == decided[1]
