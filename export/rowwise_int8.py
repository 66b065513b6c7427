"""int8 with one activation scale per row: a graph rewrite of the weight MatMuls.

Each ``MatMul(x, W)`` whose ``W`` is a constant ``[K, N]`` fp32 initializer (and each ``Gemm``
with a constant weight, its bias added after; MoRE's experts are Gemms) becomes::

    s  = max(max_k |x[..., k]|, eps) / 127                       # [..., 1]: one scale per token (row)
    xq = round(x / s) + 128                                       # uint8 in [1, 255], zero point 128
    Wq = round(W / w) ,  w[n] = max_k |W[k, n]| / 127             # in [-127, 127] per output channel, offline
    y  = float(MatMulInteger(xq, Wq + 128, 128, 128)) * s * w     # [..., N]

in standard ONNX ops (Abs, ReduceMax, Max, Mul, Div, Round, Add, Cast, MatMulInteger), so any
ONNX Runtime build and the C library run it. ``reference`` is the same arithmetic in numpy.

Why per row: ONNX Runtime's ``DynamicQuantizeMatMul`` takes one scale for the whole ``[B*S, K]``
activation, so one outlier token coarsens every other token's quantization, and a pair's reward
depends on which other rows share its micro-batch. A scale per row keeps each row's reward a
function of that row alone (batch-invariant, like fp32) and its error at the row's own range.
Why both operands are uint8 (the weight stored as ``Wq + 128`` with zero point 128, the same
integers): on x86 CPUs without VNNI (AVX2 only), ONNX Runtime's uint8 x int8 kernel sums pairs of
products in saturating int16 (``vpmaddubsw``), so 255 x 127 x 2 overflows and rewards come out
wrong; its uint8 x uint8 kernel widens to int16 first and is exact on every CPU, at about the same
speed there (measured on an AVX2 EPYC: 226 vs 245 GOP/s, the int8 x int8 kernel 37). On VNNI CPUs
uint8 x int8 would be faster; exact rewards everywhere come first.

What stays fp32: products of two activations (attention, ARLISS's per-row LoRA), every other op,
and the weights ``keep_fp32`` names; by default (``contracting``) those with more inputs than
outputs: the FFN down-projections (their post-GELU input is where one scale per row loses most
decisions, ``benchmarks/int8_sensitivity.py``), the reward heads and MoRE's routers.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ZERO_POINT = 128
EPS = 1e-12


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[K, N]`` fp32 -> (``[K, N]`` int8, ``[N]`` fp32 scale), symmetric per output channel."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale


def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """What the rewritten graph computes for ``x @ w`` (``x``: ``[..., K]``), in numpy."""
    wq, ws = quantize_weight(w)
    s = (np.maximum(np.abs(x).max(axis=-1, keepdims=True), EPS) * np.float32(1 / 127)).astype(np.float32)
    xq = (np.round(x / s) + ZERO_POINT).astype(np.int64)
    acc = (xq - ZERO_POINT) @ wq.astype(np.int64)
    return (acc.astype(np.float32) * s * ws).astype(np.float32)


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def contracting(name: str, k: int, n: int) -> bool:
    """The default of what stays fp32: weights with more inputs than outputs (FFN down-projections)."""
    return k > n


def _weight(node: onnx.NodeProto, inits: dict) -> tuple[onnx.TensorProto, bool] | None:
    """``(B, transposed)`` when ``node`` multiplies its first input by a constant 2-D fp32 weight
    ``B``: ``MatMul(x, B)``, or ``Gemm(x, B[, C])`` with alpha = beta = 1 and no transA
    (``transposed``: transB, so the weight as ``[K, N]`` is ``B^T``)."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
        return None
    b = inits.get(node.input[1])
    if b is None or len(b.dims) != 2 or b.data_type != TensorProto.FLOAT:
        return None
    if node.op_type == "MatMul":
        return b, False
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        return None
    return b, bool(attrs.get("transB", 0))


def quantize_model(model: onnx.ModelProto, keep_fp32=contracting) -> tuple[onnx.ModelProto, int]:
    """Rewrite every weight MatMul/Gemm of ``model`` (in place; ``_weight``) but those
    ``keep_fp32(node name, K, N)`` accepts; returns the model and how many were rewritten.
    A Gemm's bias ``C`` is added after the int8 product."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    reduce_axes_input = _opset(model) >= 18              # ReduceMax takes axes as an input from opset 18
    shared = [numpy_helper.from_array(np.array(1 / 127, np.float32), "rowq_inv127"),
              numpy_helper.from_array(np.array(EPS, np.float32), "rowq_eps"),
              numpy_helper.from_array(np.array(ZERO_POINT, np.float32), "rowq_zp_f"),
              numpy_helper.from_array(np.array(ZERO_POINT, np.uint8), "rowq_zp")]
    if reduce_axes_input:
        shared.append(numpy_helper.from_array(np.array([-1], np.int64), "rowq_axes"))
    weights: dict[str, tuple[str, str]] = {}              # weight key -> (uint8 name, scale name)
    nodes, rewritten, used = [], 0, set()
    for node in graph.node:
        found = _weight(node, inits)
        k, n = (found[0].dims[::-1] if found[1] else found[0].dims) if found else (0, 0)
        if found is None or keep_fp32(node.name, k, n):
            nodes.append(node)
            continue
        b, transposed = found
        key = f"{b.name}_T" if transposed else b.name
        if key not in weights:
            w = numpy_helper.to_array(b)
            q, scale = quantize_weight(np.ascontiguousarray(w.T) if transposed else w)
            weights[key] = (f"{key}_rowq_u8", f"{key}_rowq_scale")
            shifted = (q.astype(np.int16) + ZERO_POINT).astype(np.uint8)     # [1, 255]: see the module docstring
            graph.initializer.extend([numpy_helper.from_array(shifted, weights[key][0]),
                                      numpy_helper.from_array(scale, weights[key][1])])
        wq, ws = weights[key]
        used.add(node.input[1])
        bias = node.input[2] if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] else None
        x, y, p = node.input[0], node.output[0], f"{node.name or node.output[0]}_rowq"
        product = f"{p}_y" if bias else y
        reduce = (helper.make_node("ReduceMax", [f"{p}_abs", "rowq_axes"], [f"{p}_max"], keepdims=1)
                  if reduce_axes_input else
                  helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_max"], axes=[-1], keepdims=1))
        nodes += [
            helper.make_node("Abs", [x], [f"{p}_abs"]),
            reduce,
            helper.make_node("Max", [f"{p}_max", "rowq_eps"], [f"{p}_maxe"]),
            helper.make_node("Mul", [f"{p}_maxe", "rowq_inv127"], [f"{p}_s"]),
            helper.make_node("Div", [x, f"{p}_s"], [f"{p}_xs"]),
            helper.make_node("Round", [f"{p}_xs"], [f"{p}_xr"]),
            helper.make_node("Add", [f"{p}_xr", "rowq_zp_f"], [f"{p}_xz"]),
            helper.make_node("Cast", [f"{p}_xz"], [f"{p}_xq"], to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", [f"{p}_xq", wq, "rowq_zp", "rowq_zp"], [f"{p}_acc"]),
            helper.make_node("Cast", [f"{p}_acc"], [f"{p}_accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{p}_accf", f"{p}_s"], [f"{p}_ys"]),
            helper.make_node("Mul", [f"{p}_ys", ws], [product]),
        ] + ([helper.make_node("Add", [product, bias], [y])] if bias else [])
        rewritten += 1
    if rewritten:
        graph.initializer.extend(shared)
    still_used = {i for n in nodes for i in n.input}
    keep = [t for t in graph.initializer if t.name not in used or t.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(nodes)
    return model, rewritten
