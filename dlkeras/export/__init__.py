"""Exports a finished run to every deployment format and proves each one with the parity gate.

    saved_models/<recipe>/<version>/
        model.keras, saved_model/, model.tflite, model_dynamic.tflite, model_int8.tflite,
        model.onnx, labels.json, preprocessing.json (+ tokenizer/ for text models),
        export_report.json, export_summary.md

Conversions run under the TensorFlow backend on a reload of the run's `model.keras`, so every
recipe gets every format whichever backend trained it. Exporting never trains.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from dlkeras.errors import ConfigError, RunError
from dlkeras.io import write_json_atomic, write_text_atomic
from dlkeras.runs import RunDir

FORMATS = ("saved_model", "tflite", "tflite_dynamic", "tflite_int8", "onnx")
FILE_NAMES = {
    "saved_model": "saved_model",
    "tflite": "model.tflite",
    "tflite_dynamic": "model_dynamic.tflite",
    "tflite_int8": "model_int8.tflite",
    "onnx": "model.onnx",
}
REPRESENTATIVE_EXAMPLES = 200


def check_formats(formats) -> list[str]:
    """The requested formats in export order; ConfigError for unknown names (before any work)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ConfigError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}")
    chosen = [f for f in FORMATS if f in formats]
    if any(f.startswith("tflite") for f in chosen) and "saved_model" not in chosen:
        chosen.insert(0, "saved_model")  # TFLite converts from the SavedModel
    return chosen


def check_supported(run_dir: RunDir, chosen: list[str]) -> None:
    """ConfigError naming every requested format this run's model cannot be exported to."""
    from dlkeras.export.tflite import unsupported_formats
    from dlkeras.models import load_inference_model

    reasons = unsupported_formats(load_inference_model(run_dir.model_file))
    refused = {name: reasons[name] for name in chosen if name in reasons}
    if refused:
        raise ConfigError("; ".join(f"{name}: {why}" for name, why in refused.items())
                          + ". Leave it out with --formats (or the recipe's export.formats).")


def next_version(root: Path) -> int:
    numbers = [int(p.name.split("-")[0]) for p in root.glob("[0-9]*") if p.name.split("-")[0].isdigit()]
    return max(numbers, default=0) + 1


def export_run(run_path: Path, formats=None, out: Path = Path("saved_models"),
               parity_limit: int = 0, latency_seconds: float = 3.0) -> dict:
    """Exports one run; returns the report. The version folder appears only when complete.

    Args:
        formats: formats to write; None means the recipe's `export.formats`.

    Raises:
        RunError: the run is unfinished, or an artifact failed to convert.
        ConfigError: unknown format names, or a format this model cannot have (before any work).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RunError("exports convert through TensorFlow: run `python -m dlkeras.export` "
                       "(it reloads model.keras under the TensorFlow backend whatever trained it)")
    run_dir, recipe = RunDir.load_finished(run_path)
    chosen = check_formats(recipe.export.formats if formats is None else formats)
    check_supported(run_dir, chosen)
    root = Path(out) / recipe.name
    version = next_version(root)
    staging = root / f".{version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        report = _export_into(staging, run_dir, recipe, chosen, parity_limit, latency_seconds)
        report["version"] = version
        final = root / (str(version) if report["passed"] else f"{version}-failed")
        write_json_atomic(staging / "export_report.json", report)
        from dlkeras.export.summary import summary_markdown

        write_text_atomic(staging / "export_summary.md", summary_markdown(report))
        staging.rename(final)
        report["folder"] = str(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _export_into(folder: Path, run_dir: RunDir, recipe, chosen: list[str], parity_limit: int,
                 latency_seconds: float) -> dict:
    from dlkeras import data
    from dlkeras.export import latency, parity, runtimes

    preprocessing = copy_preprocessing(run_dir, folder)
    shutil.copy2(run_dir.model_file, folder / "model.keras")
    import numpy as np

    from dlkeras.models import load_inference_model

    loaded = load_inference_model(folder / "model.keras")
    datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
    batches = parity.test_batches(datasets, preprocessing, folder, batch_size=32, limit=parity_limit)
    artifacts, seconds = {}, {}
    for name in chosen:
        started = time.perf_counter()
        artifacts[name] = convert(name, loaded, folder, datasets, preprocessing)
        seconds[name] = round(time.perf_counter() - started, 2)
    reference = parity.run(lambda x: loaded.predict_on_batch(x), batches)
    truth = np.concatenate([y for _, y in batches])
    checks = {}
    for name in chosen:
        predict = runtimes.load(name, folder / FILE_NAMES[name])
        checks[name] = parity.check(name, recipe.task, parity.run(predict, batches), reference, truth)
        checks[name].update(artifacts[name], convert_seconds=seconds[name],
                            size_bytes=size_of(folder / FILE_NAMES[name]))
    contenders = latency.keras_contenders(loaded)
    contenders.update({name: runtimes.load(name, folder / FILE_NAMES[name]) for name in chosen})
    return {
        "recipe": recipe.name,
        "run": str(run_dir.path),
        "trained_backend": json.loads(run_dir.env_json.read_text()).get("backend"),
        "converted_with": "TensorFlow backend reload of model.keras",
        "task": recipe.task,
        "test_examples": int(len(truth)),
        "keras_metrics": parity.task_metrics(recipe.task, reference, truth),
        "keras_size_bytes": size_of(folder / "model.keras"),
        "formats": checks,
        "latency_ms": latency.measure(contenders, batches[0][0], latency_seconds),
        "passed": all(c["passed"] for c in checks.values()),
    }


def convert(name: str, model, folder: Path, datasets, preprocessing: dict) -> dict:
    from dlkeras.export import onnx, saved_model, tflite

    target = folder / FILE_NAMES[name]
    try:
        if name == "saved_model":
            saved_model.export_saved_model(model, target)
            return {}
        if name.startswith("tflite"):
            mode = {"tflite": "float", "tflite_dynamic": "dynamic", "tflite_int8": "int8"}[name]
            sample = representative(datasets, preprocessing, folder) if mode == "int8" else None
            return tflite.export_tflite(folder / "saved_model", model, target, mode, sample)
        onnx.export_onnx(model, target)
        return {}
    except RunError:
        raise
    except Exception as error:  # converters raise many types; name the format and the cause
        raise RunError(f"{name} conversion failed: {type(error).__name__}: {str(error)[:300]}") from None


def representative(datasets, preprocessing: dict, folder: Path):
    """Calibration inputs for int8: up to 200 training examples, one at a time, as dicts."""
    from dlkeras.data.raw import RawInputs

    train = datasets.splits["train"]
    count = min(REPRESENTATIVE_EXAMPLES, len(train.y))
    if preprocessing["kind"] == "timeseries":
        rows = [train.x[i : i + 1] for i in range(count)]
    else:
        convert_raw = RawInputs(preprocessing, folder)
        raw = train.raw
        rows = [convert_raw(raw.iloc[i : i + 1] if hasattr(raw, "iloc") else raw[i : i + 1])
                for i in range(count)]

    def generate():
        for row in rows:
            yield row if isinstance(row, dict) else [row]

    return generate


def copy_preprocessing(run_dir: RunDir, folder: Path) -> dict:
    """preprocessing.json and labels.json beside the artifacts (+ the tokenizer for texts)."""
    preprocessing = json.loads(run_dir.preprocessing_json.read_text())
    if preprocessing.get("kind") == "text":
        from dlkeras.data import tokenize

        tokenize.save_tokenizer(tokenize.load_tokenizer(preprocessing["preset"]), folder / "tokenizer")
    write_json_atomic(folder / "preprocessing.json", preprocessing)
    write_json_atomic(folder / "labels.json", preprocessing.get("class_names", []))
    return preprocessing


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
