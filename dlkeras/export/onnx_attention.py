"""Self-attention of a tf2onnx transformer as onnxruntime's MultiHeadAttention, checked by running.

tf2onnx writes each attention that Keras' MultiHeadAttention computes with einsum (layers with
dropout, such as keras-hub's BERT presets) as some 25 nodes: per-head reshapes and biases of the
query, key and value projections, the query scaled, transposes around a batched MatMul of
scores, the padding mask applied twice around the Softmax (masked scores set to a large
negative number, masked weights to zero), the weighted sum of values and the transposes and
reshapes back to [batch, time, features]. onnxruntime's `MultiHeadAttention` (domain
com.microsoft) computes the same from the three projections, their biases and the key padding
mask in one kernel; on bert_tickets' MiniLM that saves 3-4% of the int8 model's batch-1 time
(`bench/onnx_int8.py`). Without dropout Keras calls its `dot_product_attention`, which tf2onnx
writes otherwise (batched reshapes with shapes computed at run time): it is left unfused.

A match needs, around a Softmax over the last axis: a scores MatMul of two transposed
projections, each `Reshape(x, [0, 0, heads, size]) (+ bias)`, the query optionally multiplied by a
constant; a MatMul of the weights by the transposed value projection of the same form; a chain of
shape-only nodes from that product to a Reshape to [0, 0, heads * size]; and one rank-2 graph
input as the only other source of the nodes between the scores and the Softmax (the padding
mask). `fuse_attention` then runs the graph before and after on the inputs it is given and keeps
the rewrite only when the outputs agree (`TOLERANCE`), so a graph whose masking means something
else is left as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from dlkeras.export.onnx_graph import MS_DOMAIN, Graph, _require_opset
from dlkeras.export.onnx_reshapes import remove_dead_nodes

FEED_EXAMPLES = 4  # training examples that check a fusion, alone and as one padded batch
TOLERANCE = 1e-4  # largest absolute difference of any output allowed after the rewrite
MASK_OPS = ("Add", "Mul", "Sub", "Where", "Cast", "Not", "Unsqueeze", "Reshape", "Expand", "Equal")
SHAPE_OPS = ("Unsqueeze", "Squeeze", "Transpose", "Reshape")
ONNX_TYPES = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
              "tensor(float)": np.float32}
MAX_HOPS = 8  # nodes searched from the Softmax back to the scores, and forward to the values


def fuse_attention(model, feeds: Callable[[list[str]], list[dict]]) -> int:
    """Rewrites every matched attention of `model` in place when the outputs on
    `feeds(input names)` (model input name -> array, each run as one batch; called only when
    there is a match) agree with the original; returns the count."""
    from onnx import TensorProto, helper, numpy_helper

    graph = Graph(model)
    matches = [found for node in model.graph.node if node.op_type == "Softmax"
               for found in [_match(graph, node)] if found]
    masks = {found["mask"] for found in matches}
    if not matches or len(masks) != 1:
        return 0
    feeds = feeds([value.name for value in model.graph.input])
    if not feeds:
        return 0
    before = model.SerializeToString()
    mask = f"{next(iter(masks))}/key_padding_mask_int32"
    new_nodes = {id(found["end"]): found for found in matches}
    nodes = [helper.make_node("Cast", [next(iter(masks))], [mask], name=f"{mask}/cast",
                              to=TensorProto.INT32)]
    for node in model.graph.node:
        found = new_nodes.get(id(node))
        if found is None:
            nodes.append(node)
            continue
        bias = f"{found['end'].name}/attention_bias"
        model.graph.initializer.append(numpy_helper.from_array(
            np.concatenate([found[part][1].reshape(-1) for part in ("query", "key", "value")]), bias))
        nodes.append(helper.make_node(
            "MultiHeadAttention", [found["query"][0], found["key"][0], found["value"][0], bias, mask],
            [node.output[0]], name=f"{node.name}/attention", domain=MS_DOMAIN,
            num_heads=found["heads"], scale=found["scale"]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    remove_dead_nodes(model)
    _require_opset(model, MS_DOMAIN, 1)
    try:
        agree = max_difference(before, model.SerializeToString(), feeds) <= TOLERANCE
    except Exception:  # noqa: BLE001 - a graph or feed onnxruntime refuses: keep the graph as it was
        agree = False
    if not agree:
        model.ParseFromString(before)
        return 0
    return len(matches)


def training_feeds(names: list[str], generate: Callable, count: int = FEED_EXAMPLES) -> list[dict]:
    """`count` single examples of `generate()` (rows as the export's calibration yields them)
    fed by the model's input `names`, and the same examples as one batch, padded with zeros at
    the end of each row (token 0 and padding mask 0: padding) so that the mask is exercised;
    an empty list when the rows are not 2-D arrays of one example."""
    rows = []
    for row in itertools.islice(generate(), count):
        row = row if isinstance(row, dict) else dict(zip(names, row, strict=False))
        rows.append({name: np.asarray(value) for name, value in row.items()})
    if not rows or any(set(row) != set(names) or any(v.ndim != 2 or len(v) != 1 for v in row.values())
                       for row in rows):
        return []
    return [*rows, padded_batch(rows)]


def padded_batch(rows: list[dict]) -> dict:
    """Single examples ({name: [1, length] array}) as one batch, each padded with zeros at the
    end to the longest."""
    longest = max(value.shape[1] for row in rows for value in row.values())
    return {name: np.concatenate([np.pad(row[name], ((0, 0), (0, longest - row[name].shape[1])))
                                  for row in rows]) for name in rows[0]}


def max_difference(first: bytes, second: bytes, feeds: list[dict]) -> float:
    """The largest absolute difference between two serialized models' outputs on `feeds`;
    infinity where either output is not finite."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    sessions = [onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
                for data in (first, second)]
    worst = 0.0
    for feed in feeds:
        feed = typed(sessions[0], feed)
        outputs = [session.run(None, feed) for session in sessions]
        for a, b in zip(*outputs, strict=True):
            difference = np.abs(np.asarray(a, float) - np.asarray(b, float))
            if not np.isfinite(difference).all():
                return float("inf")
            worst = max(worst, float(np.max(difference, initial=0)))
    return worst


def typed(session, feed: dict) -> dict:
    """`feed` with each array cast to the type the onnxruntime `session` declares for it."""
    types = {value.name: value.type for value in session.get_inputs()}
    return {name: np.asarray(value).astype(ONNX_TYPES.get(types.get(name), np.asarray(value).dtype))
            for name, value in feed.items()}


def _match(graph: Graph, softmax) -> dict | None:
    """The parts of the attention around `softmax`, or None when it is not the pattern."""
    from onnx import helper

    attributes = {a.name: helper.get_attribute_value(a) for a in softmax.attribute}
    if attributes.get("axis", -1) != -1:
        return None
    scores, transposed, mask = _scores_and_mask(graph, softmax.input[0])
    weighted = _forward_to_product(graph, softmax.output[0])
    if scores is None or weighted is None or mask is None:
        return None
    sides = [graph.producer.get(name) for name in scores.input]
    if None in sides or any(side.op_type != "Transpose" for side in sides):
        return None
    query_perm, key_perm = ([0, 2, 3, 1], [0, 2, 1, 3]) if transposed else ([0, 2, 1, 3], [0, 2, 3, 1])
    perms = [_perm(side) for side in sides]
    if None in perms or sorted(map(tuple, perms)) != sorted([tuple(query_perm), tuple(key_perm)]):
        return None
    query_side = sides[perms.index(query_perm)]
    key_side = sides[perms.index(key_perm)]
    query, scale = _scaled(graph, query_side.input[0])
    parts = {"query": _projection(graph, query), "key": _projection(graph, key_side.input[0])}
    values = graph.producer.get(_other(weighted, weighted.input[0]))
    if values is None or _perm(values) != [0, 2, 1, 3]:
        return None
    parts["value"] = _projection(graph, values.input[0])
    if any(part is None for part in parts.values()) or len({p[2] for p in parts.values()}) != 1:
        return None
    heads, size = parts["query"][2]
    end = _forward_to_merge(graph, weighted.output[0], heads * size)
    if end is None:
        return None
    return {**parts, "heads": heads, "scale": 1.0 if scale is None else float(scale), "mask": mask,
            "end": end}


def _scores_and_mask(graph: Graph, name: str):
    """(scores MatMul, whether a [0, 1, 3, 2] Transpose follows it, the mask's graph input)
    found from the Softmax's input back through masking nodes; Nones when not found."""
    scores, transposed, inputs, seen = None, False, set(), set()
    frontier = [name]
    graph_inputs = {value.name for value in graph.model.graph.input}
    for _ in range(MAX_HOPS):
        next_frontier = []
        for tensor in frontier:
            if tensor in graph_inputs:
                inputs.add(tensor)
                continue
            node = graph.producer.get(tensor)
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if _perm(node) == [0, 1, 3, 2]:
                product = graph.producer.get(node.input[0])
                if product is not None and product.op_type == "MatMul":
                    scores, transposed = (None, False) if scores else (product, True)
                    continue
            if node.op_type == "MatMul" and not any(i in graph.constants for i in node.input):
                scores, transposed = (None, False) if scores else (node, False)
                continue
            if node.op_type not in MASK_OPS:
                return None, False, None
            next_frontier.extend(i for i in node.input if i and i not in graph.constants)
        frontier = next_frontier
    if frontier or scores is None or len(inputs) != 1:
        return None, False, None
    mask = next(iter(inputs))
    return scores, transposed, mask if graph.ranks.get(mask) == 2 else None


def _forward_to_product(graph: Graph, name: str):
    """The MatMul of the attention weights by the values, after masking nodes; else None."""
    tensor = name
    for _ in range(MAX_HOPS):
        consumers = graph.consumers[tensor]
        if len(consumers) != 1:
            return None
        node = consumers[0]
        if node.op_type == "MatMul" and node.input[0] == tensor:
            return node
        if node.op_type not in MASK_OPS:
            return None
        tensor = node.output[0]
    return None


def _forward_to_merge(graph: Graph, name: str, width: int):
    """The Reshape to [0, 0, width] ending a chain of shape-only nodes from `name`; else None."""
    tensor = name
    for _ in range(MAX_HOPS):
        consumers = graph.consumers[tensor]
        if len(consumers) != 1 or consumers[0].op_type not in SHAPE_OPS:
            return None
        node = consumers[0]
        if node.op_type == "Reshape" and _constant(graph, node.input[1]) == [0, 0, width]:
            return node
        tensor = node.output[0]
    return None


def _scaled(graph: Graph, name: str):
    """(the tensor multiplied, the constant) of a Mul by a scalar producing `name`, else (name, None)."""
    node = graph.producer.get(name)
    if node is not None and node.op_type == "Mul":
        for index in (0, 1):
            value = graph.scalar(node.input[index])
            if value is not None:
                return node.input[1 - index], value
    return name, None


def _projection(graph: Graph, name: str):
    """(x, bias as [heads, size] array, (heads, size)) of `Reshape(x, [0, 0, heads, size]) + bias`,
    or of the Reshape alone (tf2onnx leaves an all-zero bias out)."""
    from onnx import numpy_helper

    node = graph.producer.get(name)
    bias = None
    if node is not None and node.op_type == "Add":
        bias = next((i for i in node.input if i in graph.constants), None)
        node = graph.producer.get(_other(node, bias)) if bias else None
    if node is None or node.op_type != "Reshape":
        return None
    shape = _constant(graph, node.input[1])
    if shape is None or len(shape) != 4 or shape[:2] != [0, 0]:
        return None
    values = (numpy_helper.to_array(graph.constants[bias]).astype(np.float32) if bias
              else np.zeros(shape[2:], np.float32))
    return (node.input[0], values, (shape[2], shape[3])) if values.shape == tuple(shape[2:]) else None


def _constant(graph: Graph, name: str) -> list | None:
    from onnx import numpy_helper

    return numpy_helper.to_array(graph.constants[name]).tolist() if name in graph.constants else None


def _perm(node) -> list | None:
    """The permutation of a Transpose node, else None."""
    from onnx import helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return list(attributes["perm"]) if node.op_type == "Transpose" and "perm" in attributes else None


def _other(node, name: str) -> str:
    return node.input[1] if node.input[0] == name else node.input[0]
