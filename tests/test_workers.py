"""python -m dlkeras.train --workers N: one run trained by N processes (JAX multi-worker)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import prestart
import pytest

from dlkeras.runs import RunDir, read_history

SETS = ["data.max_examples=640", "model.units=(16,)", "train.epochs=3", "data.batch_size=64",
        "callbacks.tensorboard=False"]


def args(out, *extra):
    return ["--recipe", "mlp_churn", "--out", str(out),
            *[a for s in [*SETS, *extra] for a in ("--set", s)]]


def test_two_workers_train_one_run_like_one_process(tmp_path, cli):
    """Same global batch in 2 processes and in 1: the same losses; one run directory."""
    result = cli([*args(tmp_path / "two"), "--workers", "2"], env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replicas in 2 processes" in result.stdout
    assert "weights identical on all 2 processes: True" in result.stdout
    (run,) = (tmp_path / "two").glob("mlp_churn-*")  # process 1 wrote nothing beside it
    recorded = json.loads((run / "env.json").read_text())["distribution"]
    assert recorded["processes"] == 2 and recorded["weights_identical"] is True
    assert (run / "report" / "summary.md").is_file() and (run / "model.keras").is_file()

    single = cli(args(tmp_path / "one"), env={"KERAS_BACKEND": "jax"})
    assert single.returncode == 0, single.stderr[-3000:]
    (one,) = (tmp_path / "one").glob("mlp_churn-*")
    expected, got = read_history(one / "history.csv"), read_history(run / "history.csv")
    assert len(expected) == len(got) == 3
    for a, b in zip(expected, got, strict=True):
        for key in ("loss", "val_loss"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-4)


def test_killed_multi_worker_run_resumes_on_every_process(tmp_path, cli):
    out = tmp_path / "runs"
    extra = ["train.epochs=6", "callbacks.early_stopping_patience=0", "data.batch_size=8"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    launcher = prestart.popen([sys.executable, "-m", "dlkeras.train", *args(out, *extra),
                                 "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    metadata = out / "latest" / "mlp_churn" / "backup" / "train" / "state.json"
    deadline, backed_up = time.monotonic() + 300, -1
    try:
        while time.monotonic() < deadline and launcher.poll() is None and backed_up < 2:
            try:
                backed_up = json.loads(metadata.read_text())["epoch"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and both workers
        launcher.wait()
    assert 2 <= backed_up < 6, f"no backup seen before the run ended (rc={launcher.returncode})"
    run_dir = RunDir((out / "latest" / "mlp_churn").resolve())

    result = cli([*args(out, *extra), "--workers", "2", "--resume"], env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    first = next(line for line in result.stdout.splitlines() if line.startswith("Epoch "))
    assert first.startswith(f"Epoch {backed_up + 1}/6")  # both processes continued there
    assert "weights identical on all 2 processes: True" in result.stdout
    epochs = [int(row["epoch"]) for row in read_history(run_dir.history_csv)]
    assert epochs == list(range(1, len(epochs) + 1))
    assert [p.name for p in out.iterdir() if p.name != "latest"] == [run_dir.path.name]


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_workers_on_a_backend_without_multi_worker_exit_2(backend, tmp_path, cli):
    result = cli([*args(tmp_path), "--workers", "2"], env={"KERAS_BACKEND": backend})
    assert result.returncode == 2
    assert "KERAS_BACKEND=jax" in result.stderr and "Traceback" not in result.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_feature_cache_split_across_workers_matches_one_process(tmp_path, cli):
    """effnet_defects' backbone features, computed half by each of 2 processes, equal 1 process's."""
    import numpy as np

    from dlkeras.recipes import effnet_defects

    smoke = [a for s in [*effnet_defects.SMOKE, "callbacks.tensorboard=False",
                         "train.keep_resume_state=True",
                         "train.stages.1.epochs=0",  # the features are cached for the head stage
                         # what the test compares is done by then; plots and the choice of the
                         # stage to keep (mlp_churn's runs above keep the best) cost 14 s a run
                         "evaluate.plots=false", "train.keep_stage=last"]
             for a in ("--set", s)]
    features, outputs = {}, {}
    for name, extra in (("two", ["--workers", "2"]), ("one", [])):
        out = tmp_path / name
        result = cli(["--recipe", "effnet_defects", *smoke, "--out", str(out), *extra],
                     env={"KERAS_BACKEND": "jax"})
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[name] = result.stdout
        (run,) = out.glob("effnet_defects-*")
        with np.load(run / "checkpoints" / "backbone_features.npz") as stored:
            features[name] = {key: stored[key] for key in stored.files}
    assert "weights identical on all 2 processes: True" in outputs["two"]
    # the image files were checked half by each process, not once per process
    mine, total = map(int, re.search(r"checking image files: (\d+) of (\d+) here",
                                     outputs["two"]).groups())
    assert mine == total // 2 and "checking image files:" not in outputs["one"]
    for split in ("val", "test"):  # streamed in a fixed order: row for row
        np.testing.assert_allclose(features["two"][f"{split}_x"], features["one"][f"{split}_x"],
                                   atol=1e-5)
        assert (features["two"][f"{split}_y"] == features["one"][f"{split}_y"]).all()
    # the training split streams shuffled: the same rows, each with its own label
    two, one = features["two"], features["one"]
    assert len(two["train_x"]) == len(one["train_x"])
    for row, label in zip(two["train_x"], two["train_y"], strict=True):
        distance = np.abs(one["train_x"] - row).max(axis=1)
        assert distance.min() < 1e-5 and one["train_y"][distance.argmin()] == label
