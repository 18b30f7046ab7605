"""A run killed (SIGKILL) inside and between its stages, then resumed, ends exactly where the
uninterrupted run ends: same weights, same history, same test metrics.

The uninterrupted runs start fresh interpreters; the killed and resumed ones are forks of a
prestarted one (tests/prestart.py), so each comparison also spans two interpreters."""

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import prestart
import pytest

from dlkeras.runs import read_history

# two stages; early stopping with patience 1 on the second stage's noisy validation loss, so
# whether (and when) it stops depends on the patience state carried over a kill
SETS = ["data.batch_size=8", "model.units=(16,)", "callbacks.early_stopping_patience=1",
        "callbacks.tensorboard=False", "train.class_weight=none",
        "train.stages=[{'name': 'first', 'epochs': 4}, "
        "{'name': 'second', 'epochs': 12, 'learning_rate': 0.03}]"]


def command(csv, out, *extra):
    sets = [f"data.path={csv}", *SETS]
    return [sys.executable, "-m", "dlkeras.train", "--recipe", "mlp_churn", "--out", str(out),
            *[a for s in sets for a in ("--set", s)], *extra]


def final_weights(run) -> dict:
    with zipfile.ZipFile(run / "model.keras") as archive, \
            h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
        found = {}
        weights.visititems(lambda name, item: found.__setitem__(name, item[()])
                           if isinstance(item, h5py.Dataset) else None)
        return found


def run_until(csv, out, ready, resume: bool, timeout=300, command_for=None) -> bool:
    """Starts (or resumes) the run and SIGKILLs it once `ready(run folder)`; False if it ended.

    Args:
        command_for: (extra arguments) -> the command line; default: `command` of `csv`.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    extra = ["--resume"] if resume else []
    argv = command_for(*extra) if command_for else command(csv, out, *extra)
    recipe = argv[argv.index("--recipe") + 1]
    process = prestart.popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            run = out / "latest" / recipe
            if run.exists() and ready(run.resolve()):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return False


def backed_up(stage: str, epochs: int):
    def ready(run):
        try:
            return json.loads((run / "backup" / stage / "state.json").read_text())["epoch"] >= epochs
        except (OSError, ValueError, KeyError):
            return False
    return ready


def finished(stage: str):
    def ready(run):
        try:
            return stage in json.loads((run / "progress.json").read_text())["finished_stages"]
        except (OSError, ValueError, KeyError):
            return False
    return ready


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    from support import write_customers_csv

    return write_customers_csv(tmp_path_factory.mktemp("data") / "customers.csv", rows=300,
                               noise=15)


def test_killed_three_times_and_resumed_ends_bit_identical(csv, tmp_path):
    whole = tmp_path / "whole"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(command(csv, whole), env=env, check=True, capture_output=True)
    expected = (whole / "latest" / "mlp_churn").resolve()

    out = tmp_path / "killed"
    kills = [backed_up("first", 2), finished("first"), backed_up("second", 2)]
    for index, ready in enumerate(kills):
        assert run_until(csv, out, ready, resume=index > 0), f"kill {index} came too late"
    result = prestart.run(command(csv, out, "--resume"), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = (out / "latest" / "mlp_churn").resolve()

    history = [(row["stage"], row["epoch"], row["loss"], row["val_loss"])
               for row in read_history(expected / "history.csv")]
    assert history == [(row["stage"], row["epoch"], row["loss"], row["val_loss"])
                       for row in read_history(resumed / "history.csv")]
    assert len([row for row in history if row[0] == "second"]) < 12, "early stopping never acted"
    a, b = final_weights(expected), final_weights(resumed)
    assert a.keys() == b.keys()
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    metrics = [json.loads((run / "metrics.json").read_text())["model"] for run in (expected, resumed)]
    assert metrics[0] == metrics[1]


def test_killed_during_the_feature_cache_and_between_stages_ends_bit_identical(tmp_path):
    """bert_tickets' smoke run (tiny encoder, dropout): a kill while the backbone's features
    are computed, another after the head stage; the resumed run matches the whole one."""
    from dlkeras.recipes import bert_tickets

    sets = [a for s in [*bert_tickets.SMOKE, "callbacks.tensorboard=False"] for a in ("--set", s)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def argv(out, *extra):
        return [sys.executable, "-m", "dlkeras.train", "--recipe", "bert_tickets", *sets,
                "--out", str(out), *extra]

    subprocess.run(argv(tmp_path / "whole"), env=env, check=True, capture_output=True)
    expected = (tmp_path / "whole" / "latest" / "bert_tickets").resolve()

    out = tmp_path / "killed"
    process = prestart.popen(argv(out), env=env, stdout=subprocess.PIPE, text=True,
                               stderr=subprocess.DEVNULL)
    for line in process.stdout:  # the moment extraction starts
        if line.startswith("computing backbone features"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before its feature cache"
    run = (out / "latest" / "bert_tickets").resolve()
    assert not (run / "checkpoints" / "backbone_features.npz").exists()
    assert run_until(None, out, finished("head"), resume=True, command_for=lambda *extra: argv(out, *extra))
    result = prestart.run(argv(out, "--resume"), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]

    a, b = final_weights(expected), final_weights(run)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    rows = [read_history(path / "history.csv") for path in (expected, run)]
    assert [(r["stage"], r["epoch"], r["loss"]) for r in rows[0]] == \
        [(r["stage"], r["epoch"], r["loss"]) for r in rows[1]]
