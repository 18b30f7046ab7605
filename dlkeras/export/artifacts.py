"""A finished run's model, or any exported artifact, loaded with the preprocessing beside it.

    model = load_artifact("saved_models/cnn_digits/1/model.tflite")
    probabilities = model.predict(RawInputs(model.preprocessing, model.folder)(images))

The artifact's format comes from its file name (`runtimes.format_of`); it answers in its own
runtime (`formats.ARTIFACTS`). `fastest_format` reads an export folder's report to name the
artifact to serve:

    folder = Path("saved_models/bert_tickets/1")
    model = load_artifact(folder / FORMATS[fastest_format(folder)].file_name)

`load_path` accepts any of the three: a run directory, an export folder (its fastest artifact)
or an artifact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlkeras.errors import DataError, RunError
from dlkeras.export import latency, runtimes
from dlkeras.export.formats import FORMATS, KERAS
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
    return _load(resolved, format_name, folder, f"{folder.parent.name} {format_name} v{folder.name}",
                 recorded_threads(folder, format_name))


def load_path(path: Path) -> LoadedModel:
    """A run directory's model.keras, an export folder's fastest artifact, or an artifact.

    An export folder (it holds export_report.json) answers with the format `fastest_format`
    names, the one a server would choose.

    Raises:
        RunError: nothing loadable at `path` (see `load_run`, `load_artifact`).
        DataError: an export folder without a format that passed the gate, or no preprocessing.json.
    """
    path = Path(path)
    if RunDir(path).recipe_json.is_file():
        return load_run(path)
    if (path / "export_report.json").is_file():
        return load_artifact(path / FORMATS[fastest_format(path)].file_name)
    return load_artifact(path)


def _load(path: Path, format_name: str, folder: Path, name: str,
          threads: int | None = None) -> LoadedModel:
    from dlkeras.data import KINDS
    from dlkeras.data.raw import load_preprocessing

    preprocessing = load_preprocessing(folder)
    task = preprocessing.get("task") or KINDS[preprocessing["kind"]].tasks[0]
    return LoadedModel(path, name, task, folder, preprocessing,
                       runtimes.load(format_name, path, threads))


def recorded_threads(folder: Path, format_name: str) -> int | None:
    """The runtime thread count the export timed fastest for `format_name` on its machine.

    None (the loader's default) without an export report, or one that recorded none. A count
    above this machine's cores is capped to them.
    """
    threads = _recorded_count(folder, format_name, "threads")
    return min(threads, max(latency.thread_counts())) if threads else None


def recorded_batch_size(folder: Path, format_name: str) -> int | None:
    """The batch size the export timed fastest per example for `format_name`, when a size
    below the largest it timed won (`export.latency.best_batch_size`); else None (no limit)."""
    return _recorded_count(folder, format_name, "best_batch_size")


def _recorded_count(folder: Path, format_name: str, key: str) -> int | None:
    """`latency_ms.<format_name>.<key>` of the folder's export_report.json when it is a whole
    number of at least 1; None without a report, or one that recorded none."""
    path = Path(folder) / "export_report.json"
    try:
        count = json.loads(path.read_text(encoding="utf-8"))["latency_ms"][format_name][key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 1 else None


def fastest_format(folder: Path, by: str = "latency") -> str:
    """The format with the lowest batch-1 latency (`by="latency"`), or the lowest time per
    example at its best batch size (`by="throughput"`), among those that passed the parity gate.

    Read from the export folder's export_report.json (`formats.<name>.passed` and
    `latency_ms.<name>.batch_1_ms` or `.ms_per_example`); formats whose artifact is not in the
    folder are skipped.

    Raises:
        RunError: the folder has no export_report.json.
        DataError: the report is damaged, has no latency table, or no format that passed the gate.
    """
    path = Path(folder) / "export_report.json"
    if not path.is_file():
        raise RunError(f"{path} does not exist; export the run first (make export) or name a format")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        checks, timings = dict(report["formats"]), dict(report.get("latency_ms") or {})
        present = {name: check for name, check in checks.items()
                   if name in FORMATS and (Path(folder) / FORMATS[name].file_name).exists()}
        found = (latency.highest_throughput if by == "throughput" else latency.fastest)(present, timings)
        failed = sorted(name for name, check in checks.items() if not check.get("passed"))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise DataError(f"{path} is damaged ({type(error).__name__}: {error}); "
                        "export the run again") from None
    if not timings:
        raise DataError(f"{path} has no latency table (latency_ms), so no format is known to be fastest; "
                        "export the run again or name a format")
    if found is None and by == "throughput" and not any("ms_per_example" in t for t in timings.values()):
        raise DataError(f"{path} has no times per example (latency_ms.<format>.ms_per_example): the "
                        "run was exported before they were recorded; export it again, or serve "
                        "--format fastest")
    if found is None:
        raise DataError(f"{path}: no exported format passed the parity gate with a latency "
                        f"(failed: {failed}); fix and export the run again, or name a format")
    return found["format"]
