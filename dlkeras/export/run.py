"""`export_run`: one finished run to the chosen formats, each proven by the parity gate.

The run's model.keras is loaded once (under the TensorFlow backend), checked against every
chosen format, then copied and converted inside the hidden folder of a version number claimed
for this export alone (`versions.claim`). That folder is renamed to `<n>` (or `<n>-failed`) only
once the report is written, and removed on any error; one left by a killed export is removed by
the next export.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from pathlib import Path

from dlkeras import progress
from dlkeras.errors import ConfigError, DataError, RunError
from dlkeras.export import versions
from dlkeras.export.formats import FORMATS, KERAS, Conversion, check_formats
from dlkeras.export.summary import summary_markdown
from dlkeras.io import write_json_atomic, write_text_atomic
from dlkeras.runs import RunDir
from dlkeras.tasks import html_report

REPRESENTATIVE_EXAMPLES = 200


def export_run(run_path: Path, formats=None, out: Path = Path("saved_models"),
               parity_limit: int = 0, latency_seconds: float = 3.0) -> dict:
    """Exports one run; returns the report. The version folder appears only when complete.

    Exports of the same recipe may run at the same time: each gets its own version number.

    Args:
        formats: formats to write; None means the recipe's `export.formats`.

    Raises:
        RunError: the run is unfinished, its model cannot be loaded (corrupt, unsafe), or an
            artifact failed to convert.
        ConfigError: unknown format names, or a format this model cannot have (before any work).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from dlkeras.models import load_inference_model

    if keras.backend.backend() != "tensorflow":
        raise RunError("exports convert through TensorFlow: run `python -m dlkeras.export` "
                       "(it reloads model.keras under the TensorFlow backend whatever trained it)")
    run_dir, recipe = RunDir.load_finished(run_path)
    chosen = check_formats(recipe.export.formats if formats is None else formats)
    with progress.step("load"):
        model = load_inference_model(run_dir.model_file)
    check_supported(model, chosen)
    with versions.claim(Path(out) / recipe.name) as claim:  # removed again unless published
        report = _export_into(claim.folder, run_dir, recipe, model, chosen, parity_limit,
                              latency_seconds)
        report["version"] = claim.version
        write_json_atomic(claim.folder / "export_report.json", report)
        summary = summary_markdown(report)
        write_text_atomic(claim.folder / "export_summary.md", summary)
        html_report.write_page(claim.folder / "index.html", f"{report['recipe']} export",
                               [("", html_report.markdown_html(summary))])
        report["folder"] = str(claim.publish(report["passed"]))  # the very last step
    return report


def check_supported(model, chosen: list[str]) -> None:
    """ConfigError naming every requested format this model cannot be exported to."""
    reasons = {name: FORMATS[name].unsupported(model) for name in chosen if FORMATS[name].unsupported}
    refused = {name: why for name, why in reasons.items() if why}
    if refused:
        raise ConfigError("; ".join(f"{name}: {why}" for name, why in refused.items())
                          + ". Leave it out with --formats (or the recipe's export.formats).")


def _export_into(folder: Path, run_dir: RunDir, recipe, model, chosen: list[str], parity_limit: int,
                 latency_seconds: float) -> dict:
    import numpy as np

    from dlkeras import data
    from dlkeras.data import raw_graph
    from dlkeras.export import latency, parity, runtimes

    with progress.step("data"):
        preprocessing = copy_preprocessing(run_dir, folder)
        shutil.copy2(run_dir.model_file, folder / KERAS.file_name)
        datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
        batches = parity.test_batches(datasets, preprocessing, folder, batch_size=32, limit=parity_limit)
    artifacts, seconds, shared = {}, {}, {}
    raw_signature = functools.cache(lambda: raw_graph.build_raw_signature(preprocessing, folder))
    for name in chosen:
        started = time.perf_counter()
        with progress.step(f"convert {name}"):
            artifacts[name] = convert(name, model, folder, datasets, preprocessing, raw_signature,
                                      shared)
        seconds[name] = round(time.perf_counter() - started, 2)
    with progress.step("gate: keras reference"):
        compiled = latency.compiled_call(model, batches[0][0])
        reference = parity.run(compiled, batches, "parity check: keras")
    truth = np.concatenate([y for _, y in batches])
    checks, contenders = {}, latency.keras_contenders(model, compiled)
    for name in chosen:
        path = folder / FORMATS[name].file_name
        with progress.step(f"gate: {name}"):
            contenders[name] = runtimes.load(name, path)
            checks[name] = parity.check(name, recipe.task,
                                        parity.run(contenders[name], batches, f"parity check: {name}"),
                                        reference, truth)
            if FORMATS[name].raw_loader:
                checks[name] = gate_raw_signature(name, path, checks[name], raw_signature(), datasets,
                                                  (recipe.task, reference, truth), parity_limit)
        checks[name].update(artifacts[name], convert_seconds=seconds[name], size_bytes=size_of(path))
    with progress.step("latency"):
        singles = [x for x, _ in parity.test_batches(datasets, preprocessing, folder, batch_size=1,
                                                      limit=latency.SINGLE_EXAMPLES,
                                                      what="preparing latency examples")]
        threads = {}
        for name in chosen:
            if FORMATS[name].threaded:
                path = folder / FORMATS[name].file_name
                contenders[name], count, tried = latency.choose_threads(
                    functools.partial(runtimes.load, name, path), singles, latency_seconds)
                threads[name] = {"threads": count, **({"batch_1_ms_by_threads": tried} if tried else {})}
        timings = latency.measure(contenders, batches[0][0], latency_seconds, singles)
        for name, chosen_threads in threads.items():
            timings[name].update(chosen_threads)
        for name in chosen:  # the server's batch size (`serving.registry`)
            per_example = latency.per_example_ms(contenders[name], batches[0][0], latency_seconds)
            timings[name].update(ms_per_example={str(n): ms for n, ms in per_example.items()},
                                 best_batch_size=latency.best_batch_size(per_example))
    return {
        "recipe": recipe.name,
        "run": str(run_dir.path),
        "trained_backend": json.loads(run_dir.env_json.read_text()).get("backend"),
        "converted_with": "TensorFlow backend reload of model.keras",
        "task": recipe.task,
        "test_examples": int(len(truth)),
        "keras_metrics": parity.task_metrics(recipe.task, reference, truth),
        "keras_size_bytes": size_of(folder / KERAS.file_name),
        "formats": checks,
        "latency_ms": timings,
        "fastest": latency.fastest(checks, timings),  # what `serve --format fastest` picks
        "highest_throughput": latency.highest_throughput(checks, timings),  # `--format throughput`
        "passed": all(c["passed"] for c in checks.values()),
    }


def gate_raw_signature(name: str, path: Path, check: dict, signature, datasets, judged,
                       parity_limit: int) -> dict:
    """`check` (the artifact fed model inputs) with the verdict of its raw-input signature fed
    the same test examples raw: the artifact passes only when both pass."""
    from dlkeras.export import parity

    task, reference, truth = judged
    try:
        feeds = parity.raw_feeds(datasets, signature, batch_size=32, limit=parity_limit)
    except DataError as error:  # e.g. image arrays of fractions: no encoded image holds them
        return {**check, "raw_signature": {"checked": False, "reason": str(error)}}
    predict = FORMATS[name].raw_loader(path)
    try:
        outputs = parity.run_raw(predict, feeds, signature.comparable, f"parity check: {name} raw inputs")
    except Exception as error:  # the graph refused the test split's own inputs: a failure
        raw = {"checked": True, "passed": False, "reason": f"{type(error).__name__}: {str(error)[:300]}"}
        return {**check, "raw_signature": raw, "passed": False}
    raw = {"checked": True, **parity.check(name, task, outputs, reference, truth)}
    return {**check, "raw_signature": raw, "passed": check["passed"] and raw["passed"],
            "max_abs_difference": max(check["max_abs_difference"], raw["max_abs_difference"])}


def convert(name: str, model, folder: Path, datasets, preprocessing: dict, raw_signature,
            shared: dict) -> dict:
    """Writes format `name` into `folder` with its converter; returns its report details.

    Args:
        shared: a dict the conversions of one export share (`formats.Conversion.shared`).

    Raises:
        RunError: the converter failed (the message names the format and the cause).
    """
    entry = FORMATS[name]
    job = Conversion(
        model=model,
        target=folder / entry.file_name,
        source=folder / FORMATS[entry.converts_from].file_name if entry.converts_from else None,
        calibration=lambda: representative(datasets, preprocessing, folder),
        raw_signature=raw_signature,
        shared=shared,
    )
    try:
        return entry.converter(job)
    except RunError:
        raise
    except Exception as error:  # converters raise many types; name the format and the cause
        raise RunError(f"{name} conversion failed: {type(error).__name__}: {str(error)[:300]}") from None


def representative(datasets, preprocessing: dict, folder: Path):
    """Calibration inputs for int8: up to 200 training examples, one at a time, as dicts."""
    from dlkeras.data.raw import RawInputs, pick

    train = datasets.splits["train"]
    count = min(REPRESENTATIVE_EXAMPLES, len(train.y))
    if preprocessing["kind"] == "timeseries":
        rows = [train.x[i : i + 1] for i in range(count)]
    else:
        convert_raw = RawInputs(preprocessing, folder)
        raw = train.raw
        rows = [convert_raw(pick(raw, slice(i, i + 1)))
                for i in range(count)]

    def generate():
        for row in rows:
            yield row if isinstance(row, dict) else [row]

    return generate


def copy_preprocessing(run_dir: RunDir, folder: Path) -> dict:
    """preprocessing.json and labels.json beside the artifacts (+ the tokenizer for texts)."""
    from dlkeras.data.raw import load_preprocessing

    preprocessing = load_preprocessing(run_dir.path)  # checked: a tampered file is refused
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
