"""int8 ONNX: onnxruntime's dynamic quantization of the float model.onnx.

Weights of dense layers (`MIN_WEIGHTS` or more) are stored as int8, one scale per output channel;
activations are quantized to uint8 per tensor at run time, so no calibration data is needed.
On an x86 CPU without VNNI (`weight_type`) the weights are stored as uint8 instead: there
onnxruntime's uint8 x int8 kernel adds products in pairs in saturating 16-bit sums, which clip;
on a 2-core AMD EPYC with AVX2 only, the tiny encoder of tests/export/test_onnx_int8.py answered
up to 23% of its largest output off with int8 weights, 2.3% with 7-bit int8 weights
(reduce_range), 1.9% with uint8. Before quantizing, onnxruntime's basic graph optimizations run
offline (constant folding turns every dense weight into a constant), Gemm nodes become MatMul
(`onnx_graph.dense_as_matmul`: the quantizer leaves Gemm in float) and dense layers lose their
reshape chains (`onnx_reshapes.flatten_matmuls`); then layer normalizations and GELUs are fused (`onnx_graph`)
and each self-attention becomes one MultiHeadAttention node (`onnx_attention`, kept only when the
graph's outputs on a few training inputs agree), which onnxruntime cannot do on the graph tf2onnx
writes.

Choices, measured on bert_tickets (MiniLM, 2 CPU cores; README "Export and predict"):
signed int8 weights run 1.5-2x faster than unsigned ones (the int8 dot-product kernels take
uint8 activations with int8 weights); one scale per output channel keeps more test answers
(top-1 agreement 0.99 against 0.96 per tensor) at the same speed; reduce_range (7-bit weights)
lost accuracy and gained nothing; the layer-norm and GELU fusions save a
further 10-25%, the attention fusion 3-4% (`bench/onnx_int8.py`). The artifact needs
onnxruntime (Gelu and MultiHeadAttention are its own operators).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from dlkeras.export import onnx_attention, onnx_graph, onnx_reshapes

# x86 instruction sets whose int8 dot products add uint8 x int8 products in 32 bits
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
OP_TYPES = ("MatMul",)  # dense layers; attention's activation x activation products stay float
MIN_WEIGHTS = 1024  # smaller weight matrices stay float, as in TFLite's dynamic-range quantization:
# they cost little time, and quantizing the few weights of a small model costs it accuracy


def export_onnx_int8(source: Path, target: Path,
                     feeds: Callable[[list[str]], list[dict]] | None = None) -> dict:
    """Quantizes the float ONNX model `source` into `target`; returns details for the report.

    Args:
        feeds: input names -> model inputs (input name -> array) that check the attention
            fusion, called only when the graph has an attention to fuse; None: no attention is
            fused.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights, why = weight_type()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.stem}.") as work:
        prepared, quantized = Path(work, "prepared.onnx"), Path(work, "quantized.onnx")
        optimize_offline(source, prepared)
        model = onnx.load(str(prepared))
        dense = onnx_graph.dense_as_matmul(model)
        flattened = onnx_reshapes.flatten_matmuls(model)
        fused = {"layer_norm": onnx_graph.fuse_layer_norm(model), "gelu": onnx_graph.fuse_gelu(model),
                 "attention": onnx_attention.fuse_attention(model, feeds) if feeds else 0}
        small = small_matmuls(model)
        onnx.save(model, str(prepared))
        with _quiet_quantizer():
            quantize_dynamic(str(prepared), str(quantized), per_channel=True,
                             weight_type=QuantType.QInt8 if weights == "int8" else QuantType.QUInt8,
                             op_types_to_quantize=list(OP_TYPES), nodes_to_exclude=small,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        model = onnx.load(str(quantized))
        integer = sum(node.op_type == "MatMulInteger" for node in model.graph.node)
        temp = Path(work, "final.onnx")
        onnx.save(model, str(temp))
        os.replace(temp, target)
    return {"weights": f"{weights}, per output channel{why}", "activations": "uint8, per tensor at run time",
            "int8_matmuls": integer, "small_float_matmuls": len(small), "gemm_as_matmul": dense,
            "matmuls_without_reshapes": flattened, "fused": fused}


def weight_type(flags: set[str] | None = None) -> tuple[str, str]:
    """("int8", "") where the CPU's int8 dot products do not saturate (VNNI or AMX on x86, or a CPU
    whose flags are not x86's); else ("uint8", why) for the export report. `flags`: the CPU's
    instruction-set flags (default: this machine's)."""
    from dlkeras.engine.precision import cpu_flags

    flags = cpu_flags() if flags is None else flags
    if "avx2" not in flags or set(VNNI_FLAGS) & flags:
        return "int8", ""
    return "uint8", (" (not int8: this CPU has no VNNI, and int8 weights would clip in its 16-bit "
                     "sums; an artifact with int8 weights exported on a VNNI CPU loses accuracy on "
                     "such a CPU)")


def small_matmuls(model) -> list[str]:
    """Names of the MatMul nodes whose constant weight has fewer than `MIN_WEIGHTS` values."""
    sizes = {tensor.name: math.prod(tensor.dims) for tensor in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and sizes.get(node.input[1], MIN_WEIGHTS) < MIN_WEIGHTS]


def optimize_offline(source: Path, target: Path) -> None:
    """onnxruntime's basic (hardware-independent) graph optimizations, saved to `target`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


class _quiet_quantizer(logging.Filter):
    """Hides two quantizer warnings that do not apply: its advice to run its pre-processing
    (`optimize_offline` did its part) and the tensors its shape inference cannot type after
    onnxruntime's own operators (`DefaultTensorType` types them as float)."""

    HIDDEN = ("pre-processing before quantization", "Failed to infer data type of tensor")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in self.HIDDEN)

    def __enter__(self):
        logging.getLogger().addFilter(self)
        return self

    def __exit__(self, *exc_info) -> None:
        logging.getLogger().removeFilter(self)


def convert(job) -> dict:
    """The FORMATS converter: `job` is a `formats.Conversion` whose source is model.onnx."""
    return export_onnx_int8(job.source, job.target,
                            feeds=lambda names: onnx_attention.training_feeds(names, job.calibration()))
