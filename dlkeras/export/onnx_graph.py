"""Rewrites of a tf2onnx graph that onnxruntime runs faster, each computing the same values.

- `dense_as_matmul`: Gemm nodes with a constant weight become MatMul (+ Add). onnxruntime's
  dynamic quantization quantizes MatMul, not Gemm, and tf2onnx writes the attention
  projections of a transformer as Gemm.
- `fuse_layer_norm`: TensorFlow's layer normalization (moments, rsqrt and scale written out
  as 12-13 nodes) as one LayerNormalization node.
- `fuse_gelu`: the exact GELU written with erf (5 nodes) as onnxruntime's Gelu.

A pattern is replaced only when every intermediate value feeds nothing outside it; graphs
without the pattern (tables, images, recurrent models) come back unchanged.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict

MS_DOMAIN = "com.microsoft"  # onnxruntime's own operators (Gelu)
LAYER_NORM_OPSET = 17  # the first ONNX opset with LayerNormalization


class Graph:
    """Producers, consumers and constants of an onnx.ModelProto's main graph, for matching."""

    def __init__(self, model):
        self.model = model
        self.constants = {tensor.name: tensor for tensor in model.graph.initializer}
        self.producer = {name: node for node in model.graph.node for name in node.output}
        self.consumers = defaultdict(list)
        for node in model.graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.outputs = {value.name for value in model.graph.output}

    @functools.cached_property
    def ranks(self) -> dict[str, int]:
        """Tensor name -> rank, where shape inference knows it."""
        import onnx

        inferred = onnx.shape_inference.infer_shapes(self.model).graph
        values = [*inferred.value_info, *inferred.input, *inferred.output]
        return {value.name: len(value.type.tensor_type.shape.dim) for value in values
                if value.type.tensor_type.HasField("shape")}

    def parent(self, node, op_type: str, index: int | None = None):
        """The node of `op_type` producing input `index` of `node` (any input when None)."""
        names = node.input if index is None else node.input[index : index + 1]
        return next((self.producer[name] for name in names
                     if name in self.producer and self.producer[name].op_type == op_type), None)

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant, else None."""
        from onnx import numpy_helper

        if name not in self.constants:
            return None
        values = numpy_helper.to_array(self.constants[name])
        return float(values.reshape(-1)[0]) if values.size == 1 else None

    def only_inside(self, chain: list, sink) -> bool:
        """Whether every output of `chain` but the sink's feeds only nodes of `chain`."""
        members = {id(node) for node in chain}
        inner = [name for node in chain if node is not sink for name in node.output]
        return all(name not in self.outputs and all(id(c) in members for c in self.consumers[name])
                   for name in inner)


def other_input(node, name: str) -> str:
    """The input of a two-input node that is not `name`."""
    return node.input[1] if node.input[0] == name else node.input[0]


def replace(model, replacements: list[tuple[list, object]]) -> None:
    """Swaps each (chain, new node): the new node takes the place of the chain's last node.

    The last node of a chain in graph order comes after every input of the chain, so the
    graph stays topologically sorted.
    """
    if not replacements:
        return
    removed = {id(node) for chain, _ in replacements for node in chain}
    order = {id(node): position for position, node in enumerate(model.graph.node)}
    at_last = {id(max(chain, key=lambda node: order[id(node)])): new for chain, new in replacements}
    nodes = [at_last.get(id(node), node) for node in model.graph.node
             if id(node) not in removed or id(node) in at_last]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    drop_unused_constants(model)


def drop_unused_constants(model) -> None:
    used = {name for node in model.graph.node for name in node.input}
    kept = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def dense_as_matmul(model) -> int:
    """Gemm(A, constant B[, constant C]) without transposed A -> MatMul (+ Add); returns the count."""
    from onnx import helper

    graph, swapped = Graph(model), {}
    for node in model.graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if (node.op_type == "Gemm" and node.input[1] in graph.constants and not attributes.get("transA")
                and (bias is None or bias in graph.constants)):
            swapped[id(node)] = _gemm_as_matmul(graph, node, attributes, bias)
    nodes = [new for node in model.graph.node for new in swapped.get(id(node), [node])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    drop_unused_constants(model)
    return len(swapped)


def _gemm_as_matmul(graph: Graph, node, attributes: dict, bias: str | None) -> list:
    """The MatMul (+ Add) computing `node`'s output, their constants added to the graph."""
    from onnx import helper, numpy_helper

    def constant(name: str, values) -> str:
        graph.model.graph.initializer.append(numpy_helper.from_array(values.astype("float32"), name))
        return name

    weight = numpy_helper.to_array(graph.constants[node.input[1]]) * attributes.get("alpha", 1.0)
    weight = constant(f"{node.name}/weight", (weight.T if attributes.get("transB") else weight).copy())
    product = f"{node.output[0]}/matmul" if bias else node.output[0]
    new = [helper.make_node("MatMul", [node.input[0], weight], [product], name=f"{node.name}/matmul")]
    if bias:
        scaled = constant(f"{node.name}/bias",
                          numpy_helper.to_array(graph.constants[bias]) * attributes.get("beta", 1.0))
        new.append(helper.make_node("Add", [product, scaled], [node.output[0]], name=f"{node.name}/bias_add"))
    return new


def _mean_of(graph: Graph, node):
    """The input averaged over its last axis by `node` (GlobalAveragePool of a rank-3 tensor,
    or ReduceMean over axis -1 keeping dims), else None."""
    from onnx import helper

    if node is None:
        return None
    if node.op_type == "GlobalAveragePool" and graph.ranks.get(node.input[0]) == 3:
        return node.input[0]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rank = graph.ranks.get(node.input[0])
    if (node.op_type == "ReduceMean" and len(node.input) == 1 and attributes.get("keepdims", 1)
            and list(attributes.get("axes", [])) in ([-1], [rank - 1 if rank else -1])):
        return node.input[0]
    return None


def _match_layer_norm(graph: Graph, out):
    """(chain, x, gamma, beta, epsilon) of the TensorFlow layer normalization ending in `out`:
    x * m + (beta - mean * m), m = gamma / sqrt(variance + epsilon), else None. A zero beta is
    left out of the graph by tf2onnx: beta is then None."""
    parents = [graph.producer.get(name) for name in out.input]
    if None in parents or len(parents) != 2:
        return None

    def shift_of(node):  # the Mul(-mean, m) in node, directly or under the beta Add
        candidate = graph.parent(node, "Mul") if node.op_type == "Add" else node
        return candidate if candidate is not None and graph.parent(candidate, "Neg") else None

    shifted = next((node for node in parents if shift_of(node) is not None), None)
    scaled = next((node for node in parents if node is not shifted), None)
    if shifted is None or scaled is None or scaled.op_type != "Mul":
        return None
    shift_mul = shift_of(shifted)
    negative = graph.parent(shift_mul, "Neg")
    beta = other_input(shifted, shift_mul.output[0]) if shifted is not shift_mul else None
    m = other_input(shift_mul, negative.output[0])
    factor = graph.producer.get(m)
    if m not in scaled.input or factor is None or factor.op_type != "Mul":
        return None
    x, mean = other_input(scaled, m), graph.producer.get(negative.input[0])
    reciprocal = graph.parent(factor, "Reciprocal")
    root = reciprocal and graph.parent(reciprocal, "Sqrt")
    plus_epsilon = root and graph.parent(root, "Add")
    if plus_epsilon is None or _mean_of(graph, mean) != x:
        return None
    variance = next((graph.producer[name] for name in plus_epsilon.input if name in graph.producer
                     and _mean_of(graph, graph.producer[name])), None)
    square = variance and graph.parent(variance, "Mul")
    difference = square and graph.parent(square, "Sub")
    if (difference is None or square.input[0] != square.input[1]
            or list(difference.input) != [x, mean.output[0]]):
        return None
    gamma = other_input(factor, reciprocal.output[0])
    epsilon = graph.scalar(other_input(plus_epsilon, variance.output[0]))
    if epsilon is None or gamma not in graph.constants or (beta and beta not in graph.constants):
        return None
    chain = [mean, negative, difference, square, variance, plus_epsilon, root, reciprocal, factor,
             scaled, shift_mul, out] + ([shifted] if beta else [])
    return (chain, x, gamma, beta, epsilon) if graph.only_inside(chain, out) else None


def fuse_layer_norm(model) -> int:
    """TensorFlow layer normalizations over the last axis -> LayerNormalization; returns the count."""
    from onnx import helper

    graph, replacements = Graph(model), []
    for node in model.graph.node:
        found = _match_layer_norm(graph, node) if node.op_type == "Add" else None
        if found:
            chain, x, gamma, beta, epsilon = found
            replacements.append((chain, helper.make_node(
                "LayerNormalization", [x, gamma, beta] if beta else [x, gamma], [node.output[0]],
                name=f"{node.name}/layer_norm", axis=-1, epsilon=epsilon)))
    if replacements:
        _require_opset(model, "", LAYER_NORM_OPSET)
    replace(model, replacements)
    return len(replacements)


def _match_gelu(graph: Graph, erf):
    """(chain, x) of 0.5 * x * (1 + erf(x / sqrt(2))) around the Erf node `erf`, else None."""
    scale = graph.producer.get(erf.input[0])
    if scale is None or scale.op_type not in ("Mul", "Div"):
        return None
    constants = [graph.scalar(name) for name in scale.input]
    wanted = math.sqrt(0.5) if scale.op_type == "Mul" else math.sqrt(2.0)
    if constants[1] is not None and abs(constants[1] - wanted) < 1e-6:
        x = scale.input[0]
    elif scale.op_type == "Mul" and constants[0] is not None and abs(constants[0] - wanted) < 1e-6:
        x = scale.input[1]
    else:
        return None
    plus_one = graph.consumers[erf.output[0]]
    if len(plus_one) != 1 or plus_one[0].op_type != "Add" or graph.scalar(
            other_input(plus_one[0], erf.output[0])) != 1.0:
        return None
    out = graph.consumers[plus_one[0].output[0]]
    if len(out) != 1 or out[0].op_type != "Mul":
        return None
    half = graph.producer.get(other_input(out[0], plus_one[0].output[0]))
    if (half is None or half.op_type != "Mul" or x not in half.input
            or graph.scalar(other_input(half, x)) != 0.5):
        return None
    chain = [scale, erf, plus_one[0], half, out[0]]
    return (chain, x) if graph.only_inside(chain, out[0]) else None


def fuse_gelu(model) -> int:
    """Exact GELUs written with erf -> onnxruntime's Gelu; returns the count."""
    from onnx import helper

    graph, replacements = Graph(model), []
    for node in model.graph.node:
        found = _match_gelu(graph, node) if node.op_type == "Erf" else None
        if found:
            chain, x = found
            replacements.append((chain, helper.make_node("Gelu", [x], [chain[-1].output[0]],
                                                         name=f"{node.name}/gelu", domain=MS_DOMAIN)))
    if replacements:
        _require_opset(model, MS_DOMAIN, 1)
    replace(model, replacements)
    return len(replacements)


def _require_opset(model, domain: str, version: int) -> None:
    """Raises the model's opset of `domain` to at least `version` (later opsets only add here)."""
    from onnx import helper

    for entry in model.opset_import:
        if entry.domain == domain:
            entry.version = max(entry.version, version)
            return
    model.opset_import.append(helper.make_opsetid(domain, version))
