"""--resume after SIGKILL, and refusal when the recipe or the data changed."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import prestart

from dlkeras.runs import RunDir, read_history

EPOCHS = 60


def train_args(csv, out, *extra):
    sets = [f"data.path={csv}", f"train.epochs={EPOCHS}", "callbacks.early_stopping_patience=0",
            "data.batch_size=4", "model.units=(16,)", *extra]
    return ["--recipe", "mlp_churn", "--out", str(out), *[a for s in sets for a in ("--set", s)]]


def kill_after_backup(csv, out, min_epoch=2, timeout=300):
    """Starts training and SIGKILLs it once a backup of `min_epoch` epochs exists."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = prestart.popen([sys.executable, "-m", "dlkeras.train", *train_args(csv, out)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = out / "latest" / "mlp_churn" / "backup" / "train" / "state.json"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                epoch = json.loads(metadata.read_text())["epoch"]
            except (OSError, ValueError, KeyError):
                epoch = -1
            if epoch >= min_epoch:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return epoch
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    raise AssertionError(f"training ended (rc={process.returncode}) before a backup was seen")


def test_killed_run_resumes_from_its_backup(churn_like_csv, tmp_path, cli):
    out = tmp_path / "runs"
    backed_up = kill_after_backup(churn_like_csv, out)
    run_dir = RunDir((out / "latest" / "mlp_churn").resolve())
    assert not run_dir.metrics_json.exists()
    assert backed_up < EPOCHS

    result = cli([*train_args(churn_like_csv, out), "--resume"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming {run_dir.path}" in result.stdout
    first_epoch_line = next(line for line in result.stdout.splitlines() if line.startswith("Epoch "))
    assert first_epoch_line.startswith(f"Epoch {backed_up + 1}/{EPOCHS}")
    epochs = [int(row["epoch"]) for row in read_history(run_dir.history_csv)]
    assert epochs == list(range(1, EPOCHS + 1))
    assert run_dir.metrics_json.is_file() and run_dir.finished_stages() == ["train"]


def test_resume_refuses_a_changed_recipe_or_changed_data(churn_like_csv, tmp_path, cli):
    out = tmp_path / "runs"
    short = [*train_args(churn_like_csv, out), "--set", "train.epochs=1"]
    assert cli(short).returncode == 0

    changed = cli([*short, "--set", "train.learning_rate=0.5", "--resume"])
    assert changed.returncode == 2
    assert "the recipe changed" in changed.stderr
    assert "train.learning_rate: 0.001 -> 0.5" in changed.stderr

    frame = pd.read_csv(churn_like_csv)
    frame.loc[0, "tenure"] += 1
    frame.to_csv(churn_like_csv, index=False)
    moved = cli([*short, "--resume"])
    assert moved.returncode == 2 and "the data changed" in moved.stderr

    nothing = cli([*short, "--out", str(tmp_path / "empty"), "--resume"])
    assert nothing.returncode == 2 and "no run to resume" in nothing.stderr
