"""onnx_attention: keras-hub's self-attention with a padding mask becomes one MultiHeadAttention
node with the same outputs on padded batches; a rewrite that changes the outputs is undone."""

import numpy as np
import pytest
from support import op_counts

from dlkeras.export import onnx_attention, onnx_graph, onnx_reshapes

LENGTH, WIDTH = 6, 32


@pytest.fixture(scope="module")
def attention_onnx(tmp_path_factory):
    """Two keras-hub transformer encoder blocks (2 heads of 16, as BERT stacks them) masked by a
    [batch, time] padding input, exported to ONNX."""
    import keras
    import keras_hub

    from dlkeras.export.onnx import export_onnx

    keras.utils.set_random_seed(0)
    features = keras.Input((None, WIDTH), name="features")
    padding = keras.Input((None,), dtype="bool", name="padding_mask")
    hidden = features
    for index in range(2):
        hidden = keras_hub.layers.TransformerEncoder(64, 2, dropout=0.1, name=f"block_{index}")(  # as BERT
            hidden, padding_mask=padding)
    outputs = keras.layers.Dense(3, name="head")(hidden[:, 0])  # the first token, as BERT's pooler
    model = keras.Model({"features": features, "padding_mask": padding}, outputs)
    for weight in model.weights:  # biases and norms away from their initial zeros and ones
        weight.assign(weight + np.random.default_rng(0).normal(0, 0.1, weight.shape).astype("float32"))
    path = tmp_path_factory.mktemp("attention") / "model.onnx"
    export_onnx(model, path)
    return path


def padded_feeds(rows: int = 3) -> list[dict]:
    rng = np.random.default_rng(1)
    mask = np.arange(LENGTH)[None, :] < np.array([LENGTH, 4, 2][:rows])[:, None]
    return [{"features": rng.normal(size=(rows, LENGTH, WIDTH)).astype("float32"),
             "padding_mask": mask}]


def prepared(path):
    import onnx

    from dlkeras.export.onnx_int8 import optimize_offline

    optimize_offline(path, path.with_name("prepared.onnx"))
    model = onnx.load(str(path.with_name("prepared.onnx")))
    onnx_graph.dense_as_matmul(model)
    onnx_reshapes.flatten_matmuls(model)
    return model


def test_each_masked_self_attention_becomes_one_node_with_the_same_outputs(attention_onnx):
    import onnx
    import onnxruntime

    model = prepared(attention_onnx)
    before = model.SerializeToString()
    assert op_counts(model)["Softmax"] == 2
    assert onnx_attention.fuse_attention(model, lambda names: padded_feeds()) == 2
    after = op_counts(model)
    assert after["MultiHeadAttention"] == 2 and "Softmax" not in after and "Transpose" not in after
    onnx.checker.check_model(model)
    feeds = padded_feeds()
    assert onnx_attention.max_difference(before, model.SerializeToString(), feeds) < 1e-5
    # padding changes the answer: the mask is really applied, not just carried along
    unmasked = [{**feeds[0], "padding_mask": np.ones_like(feeds[0]["padding_mask"])}]
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    masked, plain = (session.run(None, feed)[0] for feed in feeds + unmasked)
    assert np.abs(masked[0] - plain[0]).max() < 1e-6  # row 0 has no padding
    assert np.abs(masked[1:] - plain[1:]).max() > 1e-3


def test_a_fusion_whose_outputs_differ_is_undone(attention_onnx, monkeypatch):
    model = prepared(attention_onnx)
    before = model.SerializeToString()
    monkeypatch.setattr(onnx_attention, "TOLERANCE", -1.0)  # no difference is small enough
    assert onnx_attention.fuse_attention(model, lambda names: padded_feeds()) == 0
    assert model.SerializeToString() == before


def test_feeds_the_graph_refuses_leave_it_unchanged(attention_onnx):
    model = prepared(attention_onnx)
    before = model.SerializeToString()
    wrong = [{"features": np.zeros((1, LENGTH, WIDTH), "float32"), "unknown_input": np.ones((1, LENGTH))}]
    assert onnx_attention.fuse_attention(model, lambda names: wrong) == 0
    assert model.SerializeToString() == before


def test_outputs_that_are_not_finite_never_agree():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Log", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    data = model.SerializeToString()
    assert onnx_attention.max_difference(data, data, [{"x": np.array([1.0, 2.0], "float32")}]) == 0
    assert onnx_attention.max_difference(data, data, [{"x": np.array([-1.0], "float32")}]) == np.inf


def test_feeds_are_built_only_when_an_attention_matches(attention_onnx):
    import onnx

    asked = []
    dense_only = onnx.load(str(attention_onnx))
    for node in dense_only.graph.node:  # a graph without Softmax has nothing to fuse
        if node.op_type == "Softmax":
            node.op_type = "Relu"
            del node.attribute[:]
    assert onnx_attention.fuse_attention(dense_only, lambda names: asked.append(1) or padded_feeds()) == 0
    assert asked == []


def test_training_feeds_add_a_zero_padded_batch_of_the_examples():
    rows = [{"features": np.ones((1, n, WIDTH), "float32"), "padding_mask": np.ones((1, n), bool)}
            for n in (2, 5)]
    assert onnx_attention.training_feeds(["features", "padding_mask"], lambda: iter(rows)) == []  # 3-D
    tokens = [{"token_ids": np.full((1, n), 7), "padding_mask": np.ones((1, n), bool)} for n in (2, 5, 3)]
    feeds = onnx_attention.training_feeds(["token_ids", "padding_mask"], lambda: iter(tokens), count=2)
    assert len(feeds) == 3  # the 2 examples, then both as a batch
    assert feeds[2]["token_ids"].tolist() == [[7, 7, 0, 0, 0], [7, 7, 7, 7, 7]]
    assert feeds[2]["padding_mask"].tolist() == [[True, True, False, False, False], [True] * 5]


def test_int8_export_fuses_the_attention_before_quantizing(attention_onnx, tmp_path):
    import onnx
    import onnxruntime

    from dlkeras.export.onnx_int8 import export_onnx_int8

    details = export_onnx_int8(attention_onnx, tmp_path / "model_int8.onnx",
                               feeds=lambda names: padded_feeds())
    assert details["fused"]["attention"] == 2
    quantized = onnx.load(str(tmp_path / "model_int8.onnx"))
    assert op_counts(quantized)["MultiHeadAttention"] == 2 and "MatMulInteger" in op_counts(quantized)
    feed = padded_feeds()[0]
    expected, answered = (onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                          .run(None, feed)[0] for path in (attention_onnx, tmp_path / "model_int8.onnx"))
    assert np.abs(answered - expected).max() < 0.05 * np.abs(expected).max()
