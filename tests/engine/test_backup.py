"""StageBackup: a kill while a backup is being written leaves the previous epoch's, whole."""

import json

import keras
import numpy as np
import pytest

from dlkeras.engine.backup import StageBackup


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def fit(model, callbacks, epochs):
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    return model.fit(x, y, epochs=epochs, batch_size=4, verbose=0, callbacks=callbacks)


class Interrupted(Exception):
    pass


def test_a_backup_cut_off_while_writing_leaves_the_previous_epoch_to_resume_from(tmp_path,
                                                                                  monkeypatch):
    folder = tmp_path / "backup" / "stage"
    model = tiny_model()
    stopping = keras.callbacks.EarlyStopping("loss", patience=5, restore_best_weights=True)
    backup = StageBackup(folder, [stopping])
    fit(model, [stopping, backup], epochs=2)  # the backup is removed when the stage ends...
    assert not folder.exists()

    model = tiny_model()
    stopping = keras.callbacks.EarlyStopping("loss", patience=5, restore_best_weights=True)
    backup = StageBackup(folder, [stopping])
    backup.on_train_end = lambda logs=None: None  # ...so keep it, as a kill would
    fit(model, [stopping, backup], epochs=2)
    after_two = [np.copy(w) for w in model.get_weights()]
    best_after_two = stopping.best

    real_save = model.save_weights

    def save_half_then_die(path, *args, **kwargs):  # the kill, in the middle of a write
        real_save(path, *args, **kwargs)
        with open(path, "r+b") as stream:
            stream.truncate(100)
        raise Interrupted

    monkeypatch.setattr(model, "save_weights", save_half_then_die)
    with pytest.raises(Interrupted):
        fit(model, [stopping, backup], epochs=3)  # epoch 3's backup is cut off
    assert json.loads((folder / "state.json").read_text())["epoch"] == 2
    assert not list(folder.glob("epoch-3.*"))  # only a hidden temp file, never a named one

    resumed = tiny_model()
    stopping = keras.callbacks.EarlyStopping("loss", patience=5, restore_best_weights=True)
    restore = StageBackup(folder, [stopping])
    restore.set_model(resumed)
    restore.on_train_begin()
    for saved, loaded in zip(after_two, resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, loaded)
    assert resumed._initial_epoch == 2  # noqa: SLF001 - what Keras' fit starts from
    assert stopping.best == pytest.approx(best_after_two)
    assert int(resumed.optimizer.iterations.numpy()) == 4  # 2 epochs of 2 steps: schedule position


def test_unchanged_best_weights_carry_over_from_epoch_to_epoch(tmp_path):
    folder = tmp_path / "backup"
    model = tiny_model()
    # "max" on a falling loss: the first epoch stays the best one
    stopping = keras.callbacks.EarlyStopping("loss", mode="max", patience=9,
                                             restore_best_weights=True)
    backup = StageBackup(folder, [stopping])
    backup.on_train_end = lambda logs=None: None  # keep it, as a kill would
    fit(model, [stopping, backup], epochs=3)
    assert sorted(p.name for p in folder.glob("*.best.weights.h5")) == ["epoch-3.best.weights.h5"]

    resumed = tiny_model()
    again = keras.callbacks.EarlyStopping("loss", mode="max", patience=9, restore_best_weights=True)
    restore = StageBackup(folder, [again])
    restore.set_model(resumed)
    restore.on_train_begin()
    assert again.best_epoch == 0
    for saved, loaded in zip(stopping.best_weights, again.best_weights, strict=True):
        np.testing.assert_array_equal(saved, loaded)
