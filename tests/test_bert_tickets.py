"""bert_tickets on a user's own file: only data.path and the two column names change."""

import json

import numpy as np
import pandas as pd

from dlkeras.runs import RunDir, read_history


def test_recipe_trains_on_a_64_row_csv(tmp_path, cli):
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
            "train.stages.0.epochs=3", "train.epochs=1", "train.stages.1.learning_rate=1e-3"]
    result = cli(["--recipe", "bert_tickets", "--out", str(tmp_path / "runs"),
                  *[a for s in sets for a in ("--set", s)]])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cached" in result.stdout  # the frozen-encoder stage trained on cached features
    run_dir = RunDir((tmp_path / "runs" / "latest" / "bert_tickets").resolve())
    metrics = json.loads(run_dir.metrics_json.read_text())
    assert metrics["class_names"] == ["baggage", "billing", "delay"]
    assert set(metrics["baselines"]) == {"tfidf_logistic_regression"}
    assert "confidently_wrong" in metrics["extra"]
    assert (run_dir.report_dir / "confidently_wrong.md").is_file()
    stages = [row["stage"] for row in read_history(run_dir.history_csv)]
    assert stages == ["head"] * 3 + ["finetune"]
    preprocessing = json.loads(run_dir.preprocessing_json.read_text())
    assert preprocessing["kind"] == "text" and preprocessing["strip_accents"] is True
