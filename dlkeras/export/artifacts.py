"""A finished run's model, or any exported artifact, loaded with the preprocessing beside it.

    model = load_artifact("saved_models/cnn_digits/1/model.tflite")
    probabilities = model.predict(RawInputs(model.preprocessing, model.folder)(images))

The artifact's format comes from its file name (`runtimes.format_of`); it answers in its own
runtime (`formats.ARTIFACTS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlkeras.errors import RunError
from dlkeras.export import runtimes
from dlkeras.export.formats import KERAS
from dlkeras.runs import RunDir


@dataclass
class LoadedModel:
    """A model ready to answer raw inputs: its predict function and the preprocessing beside it."""

    path: Path
    name: str
    task: str
    folder: Path
    preprocessing: dict
    predict: Callable


def load_run(run_path: Path) -> LoadedModel:
    """The model.keras of a finished run, under its recipe's backend unless one is chosen.

    Raises:
        RunError: not a finished run, or its model cannot be loaded (corrupt, unsafe).
        DataError: the preprocessing.json is missing.
    """
    from dlkeras.engine.backend import select_backend

    run_dir, recipe = RunDir.load_finished(run_path)
    select_backend(recipe, announce=False)
    return _load(run_dir.model_file, KERAS.name, run_dir.path, f"{recipe.name} ({recipe.model.name})")


def load_artifact(path: Path) -> LoadedModel:
    """An exported artifact (model.keras, a SavedModel folder, .tflite, .onnx) in its runtime.

    Raises:
        RunError: the artifact is missing, of an unknown kind, or cannot be loaded.
        DataError: no preprocessing.json beside it.
    """
    resolved = Path(path).resolve()
    if not resolved.exists():
        raise RunError(f"artifact {path} does not exist; run `make export` first")
    format_name = runtimes.format_of(resolved)
    folder = resolved.parent
    return _load(resolved, format_name, folder, f"{folder.parent.name} {format_name} v{folder.name}")


def _load(path: Path, format_name: str, folder: Path, name: str) -> LoadedModel:
    from dlkeras.data import KINDS
    from dlkeras.data.raw import load_preprocessing

    preprocessing = load_preprocessing(folder)
    task = preprocessing.get("task") or KINDS[preprocessing["kind"]].tasks[0]
    return LoadedModel(path, name, task, folder, preprocessing, runtimes.load(format_name, path))
