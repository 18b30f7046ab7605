"""onnx_int8: the graph rewrites keep the float outputs, the quantized artifact is smaller, loads
in onnxruntime and goes through the parity gate; `fastest_format` reads the report."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from support import op_counts

from dlkeras import export
from dlkeras.errors import DataError, RunError
from dlkeras.export import artifacts, latency, onnx_graph, runtimes
from dlkeras.export.artifacts import fastest_format
from dlkeras.export.formats import FORMATS


@pytest.fixture(scope="module")
def float_onnx(tmp_path_factory):
    """A tiny encoder-like model as ONNX (dense + exact GELU, layer norm, per-head projection on
    (batch, 4, 32), then a dense head on the pooled vector), and a batch of its inputs."""
    import keras

    from dlkeras.export.onnx import export_onnx

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 32), name="features")
    trained = {"bias_initializer": "random_normal"}  # tf2onnx drops an all-zero bias
    hidden = keras.layers.Dense(64, activation="gelu", name="dense_gelu", **trained)(inputs)
    hidden = keras.layers.LayerNormalization(epsilon=1e-6, beta_initializer="random_normal",
                                             gamma_initializer="random_normal", name="norm")(hidden)
    hidden = keras.layers.Dense(32, name="dense", **trained)(hidden)
    hidden = keras.layers.LayerNormalization(name="norm_without_shift")(hidden)  # beta 0: dropped
    heads = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 16), bias_axes="de",
                                     name="heads", **trained)(hidden)
    hidden = keras.layers.Reshape((4, 32), name="merge_heads")(heads)
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(hidden)
    outputs = keras.layers.Dense(3, name="head", **trained)(pooled)  # 96 weights: kept in float
    model = keras.Model(inputs, outputs, name="tiny_encoder")
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(model, path)
    return path, np.random.default_rng(0).normal(size=(5, 4, 32)).astype("float32") * 3


def run_onnx(path: Path, inputs) -> np.ndarray:
    return runtimes.load("onnx", path)(inputs)


def test_layer_norm_and_gelu_are_fused_with_the_same_outputs(float_onnx, tmp_path):
    import onnx

    path, inputs = float_onnx
    model = onnx.load(str(path))
    before = op_counts(model)
    assert before["Erf"] == 1 and "LayerNormalization" not in before
    assert (onnx_graph.fuse_layer_norm(model), onnx_graph.fuse_gelu(model)) == (2, 1)
    after = op_counts(model)
    assert "Erf" not in after and "Reciprocal" not in after
    assert after["LayerNormalization"] == 2 and after["Gelu"] == 1
    assert sum(after.values()) == sum(before.values()) - 27  # 13, 12 and 5 nodes became 3
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "fused.onnx"))
    expected = run_onnx(path, inputs)
    assert np.abs(run_onnx(tmp_path / "fused.onnx", inputs) - expected).max() < 1e-5
    assert (onnx_graph.fuse_layer_norm(model), onnx_graph.fuse_gelu(model)) == (0, 0)  # nothing left


def test_gemm_becomes_matmul_with_the_same_outputs(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weight, bias = rng.normal(size=(3, 5)).astype("float32"), rng.normal(size=3).astype("float32")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="dense", transB=1, alpha=0.5, beta=2.0)],
        "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
    onnx.save(model, str(tmp_path / "gemm.onnx"))
    assert onnx_graph.dense_as_matmul(model) == 1
    assert op_counts(model) == {"MatMul": 1, "Add": 1}
    assert sorted(t.name for t in model.graph.initializer) == ["dense/bias", "dense/weight"]
    onnx.save(model, str(tmp_path / "matmul.onnx"))
    inputs = rng.normal(size=(4, 5)).astype("float32")
    expected = 0.5 * inputs @ weight.T + 2.0 * bias
    for name in ("gemm.onnx", "matmul.onnx"):
        assert np.abs(run_onnx(tmp_path / name, inputs) - expected).max() < 1e-5


def test_a_pattern_whose_inner_value_is_used_elsewhere_is_kept(float_onnx, tmp_path):
    import onnx

    path, _ = float_onnx
    model = onnx.load(str(path))
    erf = next(node for node in model.graph.node if node.op_type == "Erf")
    model.graph.output.append(onnx.helper.make_tensor_value_info(erf.output[0], onnx.TensorProto.FLOAT, None))
    assert onnx_graph.fuse_gelu(model) == 0
    assert op_counts(model)["Erf"] == 1


def test_dense_layers_lose_their_reshape_chains_with_the_same_outputs(float_onnx, tmp_path):
    """tf2onnx's dense layers on (batch, 4, 32) reshape to a matrix and back, their shapes
    computed at run time; afterwards each MatMul takes the 3-D input and no Shape is left."""
    import onnx

    from dlkeras.export.onnx_int8 import optimize_offline
    from dlkeras.export.onnx_reshapes import flatten_matmuls

    path, inputs = float_onnx
    optimize_offline(path, tmp_path / "folded.onnx")  # as the int8 export does: constant weights
    model = onnx.load(str(tmp_path / "folded.onnx"))
    onnx_graph.dense_as_matmul(model)
    before = op_counts(model)
    assert before["Shape"] == 2 and before["Reshape"] == 6
    # dense_gelu and dense; the per-head projection's reshapes have constant shapes already
    assert flatten_matmuls(model) == 2
    after = op_counts(model)
    assert not {"Shape", "Gather", "Concat", "Cast"} & set(after)  # run-time shape arithmetic
    assert after["Reshape"] == 2 and sum(after.values()) == sum(before.values()) - 14
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "flat.onnx"))
    for batch in (inputs, inputs[:1]):  # the batch axis stays symbolic
        expected = run_onnx(path, batch)
        assert np.abs(run_onnx(tmp_path / "flat.onnx", batch) - expected).max() < 1e-5
    assert flatten_matmuls(model) == 0  # nothing left


def test_a_reshape_that_mixes_leading_axes_is_left_alone(tmp_path):
    """(batch, 4, 32) -> matrix -> MatMul -> (batch * 2, 2, 6): the batch axis does not survive,
    so no MatMul over leading axes computes it."""
    from onnx import TensorProto, helper, numpy_helper

    from dlkeras.export.onnx_reshapes import flatten_matmuls

    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Reshape", ["x", "rows"], ["matrix"]),
             helper.make_node("MatMul", ["matrix", "w"], ["product"], name="dense"),
             helper.make_node("Reshape", ["product", "mixed"], ["y"])]
    graph = helper.make_graph(
        nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rng.normal(size=(32, 12)).astype("float32"), "w"),
         numpy_helper.from_array(np.array([-1, 32]), "rows"),
         numpy_helper.from_array(np.array([-1, 2, 6]), "mixed")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
    assert flatten_matmuls(model) == 0
    assert op_counts(model) == {"Reshape": 2, "MatMul": 1}


def test_int8_artifact_is_smaller_and_close(float_onnx, tmp_path):
    import onnx

    from dlkeras.export.onnx_int8 import export_onnx_int8

    path, inputs = float_onnx
    details = export_onnx_int8(path, tmp_path / "model_int8.onnx")
    assert details["fused"] == {"layer_norm": 2, "gelu": 1, "attention": 0}  # no attention in it
    assert details["int8_matmuls"] == 3 and details["small_float_matmuls"] == 1
    assert details["matmuls_without_reshapes"] == 2
    quantized = onnx.load(str(tmp_path / "model_int8.onnx"))
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= set(op_counts(quantized))
    assert [p.name for p in tmp_path.iterdir()] == ["model_int8.onnx"]  # no work files left
    assert (tmp_path / "model_int8.onnx").stat().st_size < 0.7 * path.stat().st_size  # + graph, scales
    expected = run_onnx(path, inputs)
    answered = runtimes.load("onnx_int8", tmp_path / "model_int8.onnx")(inputs)
    assert answered.shape == expected.shape
    assert np.abs(answered - expected).max() < 0.05 * np.abs(expected).max()


def test_onnx_int8_export_passes_the_gate_and_names_the_fastest(smoke_run, tmp_path):
    report = export.export_run(smoke_run("mlp_churn"), ["onnx_int8"], tmp_path, parity_limit=48,
                               latency_seconds=0.01)
    folder = Path(report["folder"])
    checks = report["formats"]
    assert list(checks) == ["onnx", "onnx_int8"] and report["passed"], json.dumps(checks)[:2000]
    assert checks["onnx_int8"]["rule"] == "accuracy and macro-F1 drop <= 0.01"
    # mlp_churn's weight matrices are all small: they stay float, so its outputs stay exact
    assert checks["onnx_int8"]["max_abs_difference"] < 1e-5
    assert report["fastest"] == latency.fastest(checks, report["latency_ms"])
    assert report["fastest"]["format"] in checks
    assert fastest_format(folder) == report["fastest"]["format"]
    for name in checks:  # each ONNX artifact was timed on every thread count; the faster is kept
        timing = report["latency_ms"][name]
        assert timing["threads"] in latency.thread_counts()
        if len(latency.thread_counts()) > 1:
            tried = {int(n): ms for n, ms in timing["batch_1_ms_by_threads"].items()}
            assert sorted(tried) == latency.thread_counts()
            assert tried[timing["threads"]] == min(tried.values())
        assert artifacts.recorded_threads(folder, name) == timing["threads"]
    summary = (folder / "export_summary.md").read_text()
    assert f"Fastest format that passed the gate: {report['fastest']['format']}" in summary
    latency_row = next(line for line in summary.splitlines()  # runtime | b1 | b32 | threads | batch
                       if line.startswith("| onnx_int8 |") and line.count("|") == 6)
    timing = report["latency_ms"]["onnx_int8"]
    assert latency_row.split("|")[4].strip().startswith(str(timing["threads"]))
    assert latency_row.split("|")[5].strip() == str(timing["best_batch_size"] or "any")
    busiest = report["highest_throughput"]
    assert busiest == latency.highest_throughput(checks, report["latency_ms"])
    per_example = report["latency_ms"][busiest["format"]]["ms_per_example"]
    assert busiest["ms_per_example"] == min(per_example.values())
    assert f"Most examples per second among them: {busiest['format']}" in summary


def write_report(folder: Path, checks: dict, timings: dict) -> Path:
    folder.mkdir(exist_ok=True)
    for name in checks:
        (folder / FORMATS[name].file_name).write_bytes(b"artifact")
    report = {"formats": {name: {"passed": passed} for name, passed in checks.items()},
              "latency_ms": {name: {"batch_1_ms": ms, "batch_32_ms": 10 * ms}
                             for name, ms in timings.items()}}
    (folder / "export_report.json").write_text(json.dumps(report))
    return folder


def test_fastest_format_picks_the_quickest_format_that_passed(tmp_path):
    folder = write_report(tmp_path, {"onnx": True, "onnx_int8": True, "tflite_dynamic": False},
                          {"keras predict": 0.5, "onnx": 9.0, "onnx_int8": 3.0, "tflite_dynamic": 1.0})
    assert fastest_format(folder) == "onnx_int8"  # tflite_dynamic is faster but failed the gate
    (folder / "model_int8.onnx").unlink()
    assert fastest_format(folder) == "onnx"  # an artifact no longer there is not chosen


def test_choose_threads_keeps_the_faster_count_timed_in_turn():
    calls = []

    def load(threads):
        def predict(x):
            calls.append(threads)
            time.sleep(0.002 if threads == 4 else 0.006)
        return predict

    predict, threads, tried = latency.choose_threads(load, [1, 2], budget=0.05, counts=[1, 4])
    assert threads == 4 and tried[4] < tried[1]
    timed = calls[2 * 2:]  # after two warm-up calls each, the counts take turns call by call
    assert timed[: 6] == [1, 4, 1, 4, 1, 4]
    assert latency.choose_threads(load, [1], counts=[1])[1:] == (1, {})  # one core: nothing timed


def test_an_artifact_loads_with_the_thread_count_its_export_recorded(tmp_path, monkeypatch):
    folder = write_report(tmp_path, {"onnx": True}, {"onnx": 2.0})
    assert artifacts.recorded_threads(folder, "onnx") is None  # not recorded: the loader's default
    report = json.loads((folder / "export_report.json").read_text())
    report["latency_ms"]["onnx"]["threads"] = 64
    (folder / "export_report.json").write_text(json.dumps(report))
    monkeypatch.setattr(latency, "thread_counts", lambda: [1, 2])
    assert artifacts.recorded_threads(folder, "onnx") == 2  # capped at this machine's cores
    assert artifacts.recorded_threads(folder, "tflite") is None


def test_best_batch_size_is_the_largest_within_tolerance_of_the_best():
    assert latency.best_batch_size({4: 1.0, 8: 1.02, 16: 1.3, 32: 1.5}) == 8
    assert latency.best_batch_size({4: 1.2, 8: 1.0, 16: 1.1, 32: 1.3}) == 8
    assert latency.best_batch_size({4: 2.0, 8: 1.5, 16: 1.2, 32: 1.0}) is None  # the largest: no limit
    assert latency.best_batch_size({4: 1.0, 8: 1.0, 16: 1.0, 32: 1.04}) is None


def test_per_example_ms_times_the_sizes_in_turn_and_finds_the_fastest():
    sizes = []

    def predict(x):  # up to 8 rows: 0.5 ms each; more: 1.5 ms each
        sizes.append(len(x))
        time.sleep(len(x) * (0.0005 if len(x) <= 8 else 0.0015))

    per_example = latency.per_example_ms(predict, np.zeros((5, 3)), budget=0.2)
    assert set(per_example) == {4, 8, 16, 32}
    assert per_example[8] < per_example[16] and per_example[4] < per_example[32]
    assert latency.best_batch_size(per_example) == 8
    assert sizes[8:16] == [4, 8, 16, 32, 4, 8, 16, 32]  # after two warm-up calls of each


def test_the_server_batch_size_is_read_from_the_export_report(tmp_path):
    folder = write_report(tmp_path, {"onnx": True}, {"onnx": 2.0})
    assert artifacts.recorded_batch_size(folder, "onnx") is None  # not recorded: no limit
    report = json.loads((folder / "export_report.json").read_text())
    for size, expected in ((4, 4), (None, None), (0, None), (True, None), ("8", None)):
        report["latency_ms"]["onnx"]["best_batch_size"] = size
        (folder / "export_report.json").write_text(json.dumps(report))
        assert artifacts.recorded_batch_size(folder, "onnx") == expected


def test_fastest_format_explains_what_is_missing(tmp_path):
    with pytest.raises(RunError, match="export_report.json does not exist; export the run first"):
        fastest_format(tmp_path)
    write_report(tmp_path, {"onnx": True}, {})
    with pytest.raises(DataError, match="no latency table"):
        fastest_format(tmp_path)
    write_report(tmp_path, {"onnx": False, "onnx_int8": False}, {"onnx": 9.0, "onnx_int8": 3.0})
    with pytest.raises(DataError, match=r"no exported format passed the parity gate.*\['onnx', 'onnx_int8'"):
        fastest_format(tmp_path)
    (tmp_path / "export_report.json").write_text("{not json")
    with pytest.raises(DataError, match="is damaged"):
        fastest_format(tmp_path)


def test_weights_are_unsigned_only_on_x86_without_vnni():
    from dlkeras.export.onnx_int8 import weight_type

    assert weight_type({"avx2", "fma", "avx512f", "avx512_vnni"}) == ("int8", "")
    assert weight_type({"avx2", "fma", "avx_vnni"}) == ("int8", "")
    assert weight_type({"fp", "asimd"}) == ("int8", "")  # not x86
    kind, why = weight_type({"avx2", "fma", "avx512f"})
    assert kind == "uint8" and "no VNNI" in why
