"""What a finished run keeps on disk, run folders that concurrent runs cannot share, and the
copy of a run a worker process takes."""

import json
import threading
from pathlib import Path

import numpy as np

from dlkeras import config
from dlkeras.runs import RunDir, same_weights


def test_same_weights_compares_the_archives_weights(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.save(tmp_path / "a.keras")
    model.save(tmp_path / "b.keras")
    model.layers[0].kernel.assign(model.layers[0].kernel + 1e-6)
    model.save(tmp_path / "c.keras")
    assert same_weights(tmp_path / "a.keras", tmp_path / "b.keras")
    assert not same_weights(tmp_path / "a.keras", tmp_path / "c.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert not same_weights(tmp_path / "a.keras", tmp_path / "broken.keras")


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    recipe = config.load_recipe("mlp_churn")
    made, errors = [], []

    def create():
        try:
            made.append(RunDir.create(tmp_path, recipe, "fingerprint").path)
        except Exception as error:  # noqa: BLE001 - any failure fails the test below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(made)) == 8
    latest = (tmp_path / "latest" / "mlp_churn").resolve()
    assert latest in made and (latest / "recipe.json").is_file()
    assert not list((tmp_path / "latest").glob(".*.tmp"))
    assert np.all([(path / "env.json").is_file() for path in made])


def test_finish_keeps_a_different_best_checkpoint_only_when_asked(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])

    def run_with(best_differs: bool) -> RunDir:
        run = RunDir(tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
        run.checkpoints_dir.mkdir(parents=True)
        model.save(run.model_file)
        if best_differs:
            model.layers[0].bias.assign(model.layers[0].bias + 1.0)
        model.save(run.best_checkpoint)
        model.save_weights(run.checkpoints_dir / "head.weights.h5")
        np.savez(run.backbone_features, train_x=np.zeros(2))
        return run

    same = run_with(best_differs=False)
    same.finish(keep_best_checkpoint=True)
    assert not same.best_checkpoint.exists() and same.model_file.is_file()
    assert not list(same.checkpoints_dir.iterdir())

    different = run_with(best_differs=True)
    different.finish(keep_best_checkpoint=True)
    assert different.best_checkpoint.is_file()
    different.finish(keep_best_checkpoint=False)
    assert not different.best_checkpoint.exists()

    kept = run_with(best_differs=False)
    kept.finish(keep_resume_state=True)
    assert (kept.checkpoints_dir / "head.weights.h5").is_file() and kept.backbone_features.is_file()


def test_settled_copy_leaves_out_files_being_written_or_removed(tmp_path, monkeypatch):
    """What a worker process copies of a resumed run while the chief writes to it."""
    import shutil

    run_dir = RunDir.create(tmp_path / "runs", config.load_recipe("mlp_churn"), "fingerprint")
    (run_dir.path / "history.csv").write_text("epoch,loss\n1,0.5\n")
    run_dir.backup_dir("train").mkdir(parents=True)
    (run_dir.backup_dir("train") / "state.json").write_text('{"epoch": 2}')
    (run_dir.path / ".env.json.abc123.tmp").write_text("half written")
    copy2 = shutil.copy2

    def removed_while_copying(source, target):
        if Path(source).name == "history.csv":
            Path(source).unlink()
        return copy2(source, target)

    monkeypatch.setattr(shutil, "copy2", removed_while_copying)
    copied = run_dir.copy_settled(tmp_path / "scratch")
    monkeypatch.undo()
    assert copied.path == tmp_path / "scratch" / run_dir.path.name
    names = {p.relative_to(copied.path).as_posix() for p in copied.path.rglob("*")}
    assert {"env.json", "recipe.json", "backup/train/state.json"} <= names
    assert (copied.backup_dir("train") / "state.json").read_text() == '{"epoch": 2}'
    assert json.loads(copied.env_json.read_text()) == json.loads(run_dir.env_json.read_text())
    assert not [name for name in names if name.split("/")[-1].startswith(".")]
    assert not (copied.path / "history.csv").exists()

    stop, errors = threading.Event(), []

    def rewrite_env():  # the chief recording its environment, again and again
        while not stop.is_set():
            run_dir.record_environment(distribution={"processes": 2})

    writer = threading.Thread(target=rewrite_env)
    writer.start()
    try:
        for attempt in range(30):
            try:
                run_dir.copy_settled(tmp_path / f"again{attempt}")
            except Exception as error:  # noqa: BLE001 - any failure fails the test below
                errors.append(error)
    finally:
        stop.set()
        writer.join()
    assert not errors
