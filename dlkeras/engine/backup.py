"""The state a stage needs to resume exactly where it was killed: one backup per stage.

At every epoch end `StageBackup` saves, in backup/<stage>/:
- `epoch-<k>.weights.h5`: the model's weights with the optimizer's state (its step count
  included, so the learning-rate schedule resumes at the same position);
- `epoch-<k>.json`: the epoch count k, and the state of the stage's other callbacks (early
  stopping's patience counter, best value and best epoch; the plateau schedule's counters;
  the best checkpoint's value);
- `epoch-<k>.best.weights.h5`: the weights early stopping restores at the end, when it kept
  a best epoch (they are not the model's current weights).
- `state.json`: names the newest complete epoch. It is written last and atomically, so a kill
  at any moment leaves it naming files that are all complete (older epochs' files are
  removed only after it moved on).

On a resumed fit it loads that epoch's files before the first epoch and tells Keras to start
at epoch k. The backup is removed when the stage ends.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
from pathlib import Path

import keras

from dlkeras.io import write_json_atomic


class StageBackup(keras.callbacks.Callback):
    """Backs up and restores a stage's training state, and the state of `others`.

    Args:
        folder: backup/<stage>/ of the run.
        others: the stage's callbacks whose state carries over (EarlyStopping,
            ReduceLROnPlateau, anything with a `best` value); place this callback after them.
    """

    def __init__(self, folder: Path, others=()):
        super().__init__()
        self.folder = Path(folder)
        self.others = list(others)
        self._best_saved = None  # (epoch backed up, best epoch) of the last best weights saved

    # === Saving ===
    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        done = epoch + 1
        weights = self.folder / f"epoch-{done}.weights.h5"
        _save_weights_atomic(self.model, weights)
        states, best_weights = [], ""
        for callback in self.others:
            state = _state_of(callback)
            if getattr(callback, "best_weights", None) is not None:
                best_weights = f"epoch-{done}.best.weights.h5"
                self._save_best(callback, done, self.folder / best_weights)
            states.append(state)
        write_json_atomic(self.folder / f"epoch-{done}.json",
                          {"epoch": done, "callbacks": states, "best_weights": best_weights})
        write_json_atomic(self.folder / "state.json", {"epoch": done})
        for old in self.folder.glob("epoch-*"):
            if not old.name.startswith(f"epoch-{done}."):
                old.unlink(missing_ok=True)

    def _save_best(self, callback, done: int, path: Path) -> None:
        """Saves the best weights, or links last epoch's file when the best epoch is the same."""
        best_epoch = getattr(callback, "best_epoch", None)
        previous = self.folder / f"epoch-{done - 1}.best.weights.h5"
        if self._best_saved == (done - 1, best_epoch) and previous.is_file():
            path.unlink(missing_ok=True)
            os.link(previous, path)  # the old name goes once state.json has moved on
        else:
            _save_arrays(callback.best_weights, path)
        self._best_saved = (done, best_epoch)

    def on_train_end(self, logs=None):
        shutil.rmtree(self.folder, ignore_errors=True)

    # === Restoring ===
    def on_train_begin(self, logs=None):
        state_file = self.folder / "state.json"
        if not state_file.is_file():
            self.model._initial_epoch = None  # Keras keeps it across fits  # noqa: SLF001
            return
        done = json.loads(state_file.read_text())["epoch"]
        record = json.loads((self.folder / f"epoch-{done}.json").read_text())
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.folder / f"epoch-{done}.weights.h5")
        for callback, state in zip(self.others, record["callbacks"], strict=False):
            _restore(callback, state)
            if record["best_weights"] and hasattr(callback, "best_weights") and \
                    state.get("has_best_weights"):
                callback.best_weights = _load_arrays(self.folder / record["best_weights"])
        self.model._initial_epoch = done  # what Keras' own BackupAndRestore sets  # noqa: SLF001


STATE_FIELDS = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")


def _state_of(callback) -> dict:
    state = {"class": type(callback).__name__}
    for field in STATE_FIELDS:
        value = getattr(callback, field, None)
        if isinstance(value, numbers.Integral):
            state[field] = int(value)
        elif isinstance(value, numbers.Real):
            state[field] = float(value)
    state["has_best_weights"] = getattr(callback, "best_weights", None) is not None
    return state


def _restore(callback, state: dict) -> None:
    if state.get("class") != type(callback).__name__:
        return
    for field in STATE_FIELDS:
        if field in state:
            setattr(callback, field, state[field])


def _save_weights_atomic(model, path: Path) -> None:
    temp = path.with_name(f".{path.name}.tmp.weights.h5")
    model.save_weights(temp)  # with the optimizer's state: resuming needs it
    temp.replace(path)


def _save_arrays(arrays, path: Path) -> None:
    import h5py

    temp = path.with_name(f".{path.name}.tmp")
    with h5py.File(temp, "w") as stored:
        for index, array in enumerate(arrays):
            stored.create_dataset(str(index), data=array)
    temp.replace(path)


def _load_arrays(path: Path) -> list:
    import h5py

    with h5py.File(path, "r") as stored:
        return [stored[str(index)][()] for index in range(len(stored))]
