"""Which folders are served, in which format (no model is loaded here)."""

import json

import pytest

from dlkeras.errors import DataError, RunError
from dlkeras.export.artifacts import fastest_format
from dlkeras.serving.registry import choose_format, discover


def version(root, recipe, name, files=("model.onnx", "model.tflite"), report=None):
    folder = root / recipe / name
    folder.mkdir(parents=True)
    (folder / "preprocessing.json").write_text("{}")
    for file_name in files:
        (folder / file_name).write_bytes(b"x")
    if report is not None:
        (folder / "export_report.json").write_text(json.dumps(report))
    return folder


def report(passed: dict, batch_1: dict) -> dict:
    return {"formats": {name: {"passed": ok} for name, ok in passed.items()},
            "latency_ms": {name: {"batch_1_ms": ms, "batch_32_ms": 10 * ms} for name, ms in batch_1.items()}}


def test_latest_complete_version_of_each_recipe(tmp_path):
    for name in ("1", "2", "3-failed", ".4.partial"):
        version(tmp_path, "mlp_churn", name)
    version(tmp_path, "bert_tickets", "7")
    (tmp_path / "notes").mkdir()
    found, notes = discover(tmp_path)
    assert [(f.name, f.version) for f in found] == [("bert_tickets", 7), ("mlp_churn", 2)]
    assert len(notes) == 1 and "3-failed failed the parity gate" in notes[0]
    every, _ = discover(tmp_path, all_versions=True)
    assert [(f.name, f.version) for f in every] == [("bert_tickets", 7), ("mlp_churn", 1), ("mlp_churn", 2)]


def test_one_recipe_folder_or_one_version_folder(tmp_path):
    version(tmp_path, "mlp_churn", "1")
    version(tmp_path, "mlp_churn", "2")
    assert [(f.name, f.version) for f in discover(tmp_path / "mlp_churn")[0]] == [("mlp_churn", 2)]
    assert [(f.name, f.version) for f in discover(tmp_path / "mlp_churn" / "1")[0]] == [("mlp_churn", 1)]


def test_nothing_to_serve_says_how_to_export(tmp_path):
    version(tmp_path, "mlp_churn", "1-failed")
    with pytest.raises(RunError, match=r"no exported model.*dlkeras.export.*1-failed failed the parity"):
        discover(tmp_path)
    with pytest.raises(RunError, match="is not a folder"):
        discover(tmp_path / "absent")


def test_fastest_is_the_quickest_format_that_passed_the_gate(tmp_path):
    folder = version(tmp_path, "m", "1", files=("model.onnx", "model.tflite", "model_int8.tflite"),
                     report=report({"onnx": True, "tflite": True, "tflite_int8": False},
                                   {"onnx": 0.5, "tflite": 0.2, "tflite_int8": 0.1, "keras predict": 0.01}))
    assert fastest_format(folder) == "tflite"  # int8 is quicker but failed; keras rows are not formats
    (folder / "model.tflite").unlink()
    assert fastest_format(folder) == "onnx"  # a missing artifact is skipped
    assert choose_format(folder, "fastest") == ("onnx", folder / "model.onnx")


def test_throughput_is_the_gated_format_with_the_least_time_per_example(tmp_path):
    timings = report({"onnx": True, "tflite": True, "tflite_int8": False},
                     {"onnx": 0.5, "tflite": 0.2, "tflite_int8": 0.1})
    per_example = {"onnx": {"4": 0.3, "16": 0.1, "32": 0.12}, "tflite": {"4": 0.2, "16": 0.25},
                   "tflite_int8": {"4": 0.01}}
    for name, times in per_example.items():
        timings["latency_ms"][name]["ms_per_example"] = times
    folder = version(tmp_path, "m", "1", files=("model.onnx", "model.tflite", "model_int8.tflite"),
                     report=timings)
    assert choose_format(folder, "fastest")[0] == "tflite"  # the quickest at batch 1
    assert choose_format(folder, "throughput") == ("onnx", folder / "model.onnx")  # 0.1 ms at 16
    from dlkeras.export import latency

    assert latency.highest_throughput(timings["formats"], timings["latency_ms"]) == {
        "format": "onnx", "ms_per_example": 0.1, "batch_size": 16}
    older = version(tmp_path, "m", "2", report=report({"onnx": True}, {"onnx": 1.0}))
    with pytest.raises(DataError, match="exported before they were recorded.*--format fastest"):
        choose_format(older, "throughput")


def test_no_report_or_no_gated_format_asks_for_a_named_format(tmp_path):
    bare = version(tmp_path, "m", "1")
    with pytest.raises(RunError, match="export the run first.*or name a format"):
        fastest_format(bare)
    failed = version(tmp_path, "m", "2", report=report({"onnx": False}, {"onnx": 1.0}))
    with pytest.raises(DataError, match="no exported format passed the parity gate"):
        fastest_format(failed)


def test_a_named_format_must_be_in_the_folder(tmp_path):
    folder = version(tmp_path, "m", "1", files=("model.onnx",))
    assert choose_format(folder, "onnx") == ("onnx", folder / "model.onnx")
    with pytest.raises(RunError, match=r"has no saved_model artifact.*it has \['onnx'\]"):
        choose_format(folder, "saved_model")


@pytest.mark.parametrize("recorded, limit, expected", [(4, 32, 4), (None, 32, 32), (16, 8, 8)])
def test_each_batcher_forms_batches_no_larger_than_its_model_allows(recorded, limit, expected):
    import asyncio
    from types import SimpleNamespace

    from dlkeras.serving.app import Service, Settings

    model = SimpleNamespace(name="m", version=1, batch_size=recorded, answer=lambda items: items)
    service = Service([model], Settings(max_batch_size=limit))

    async def started():
        await service.start()
        size = service.batchers[("m", 1)].max_batch_size
        await service.stop()
        return size

    assert asyncio.run(started()) == expected
