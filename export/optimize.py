"""Post-export passes on one ONNX graph: ORT transformer fusion, int8 quantization, fp16.

Fusion is kept only where it is measured faster: ONNX Runtime's BERT optimizer fuses attention,
LayerNorm and GELU, but it stops recognising attention once LoRA sits on query/value (the
switchable graph), and its SkipLayerNormalization kernel was slow on the 2-core CPU of this
project. So each graph is timed as exported (``plain``), fully fused (``fused``) and fused without
SkipLayerNormalization (``fused-no-skipln``), after the precision pass, and the fastest is kept::

    candidates = {name: precision_pass(fuse(graph, options))}
    keep       = argmin_name median_latency_ms(candidates[name], batch 8 x seq min(64, max_length))

fp16 targets GPUs, where fused attention always wins, so fp16 takes ``fused`` without CPU timing.
int8 comes in two schemes (``INT8_SCHEMES``), each quantizing the weights of the MatMuls with a
constant weight; both face the same guard (``export.validate``: 98% of validation decisions):

- ``int8`` (rowwise, ``export.rowwise_int8``): weights per output channel, activations with one
  scale per row (token) computed in the graph, ``MatMulInteger`` on uint8 x uint8 (exact on CPUs
  without VNNI, where ONNX Runtime's uint8 x int8 kernel saturates; ``export.rowwise_int8``). A row's reward
  depends on that row alone, as in fp32. The FFN down-projections (more inputs than outputs; their
  post-GELU input is where one scale per row loses most) stay fp32: with them quantized too the
  baseline falls below the guard (``results/int8_sensitivity.md``). Faster than fp32 on this CPU
  where blockwise is not (``results/latency.md``, "int8 over fp32").
- ``int8-blockwise``: ``com.microsoft.MatMulNBits`` with 8-bit symmetric weights, one scale per
  block of ``INT8_BLOCK`` input channels, and activations quantized to int8 per block at run time
  (``accuracy_level`` 4). The finest scales (99.1% of the baseline's decisions kept), but the
  pinned ORT runs it at about fp32 speed on this CPU: it buys size, not speed.

``int4`` is for memory, not speed (edge boards, small GPUs): ``MatMulNBits`` with 4-bit symmetric
weights in blocks of ``NBITS_BLOCK`` input channels, and the token embedding too. ``MatMulNBits``
does not touch a ``Gather``, and in a decoder with a 150k-token vocabulary the embedding table is
about a quarter of the weights (Qwen3-0.6B: 156M of 596M), so left at fp32 it alone would keep the
bundle near 0.4x fp32; it becomes ``com.microsoft.GatherBlockQuantized`` (4-bit, the same blocks
along the hidden axis: each looked-up row is dequantized exactly as a MatMulNBits weight column is).
Both ops need opset 21's 4-bit types, so the graph is converted to opset 21 first (on the graph
without its weights loaded, which stays under protobuf's 2 GB limit). It faces the same guard.

ONNX Runtime's dynamic quantization (one activation scale per tensor per run) kept 94-97% of
fp32's validation decisions for every method, under the guard, so it is no RouteRM precision
(figures: ``results/export.json`` at commit ae01556); ``benchmarks/latency.py`` runs it as the
peer engine ``optimum-ort-int8-dynamic``.
"""
from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

# A graph larger than this is saved with its weights in an external ``<file>.data`` (protobuf's
# hard limit is 2 GB; keep a margin for the graph itself).
EXTERNAL_DATA_BYTES = 1_500_000_000
FUSIONS = {"plain": None, "fused": {}, "fused-no-skipln": {"enable_skip_layer_norm": False}}
BENCH_BATCH, BENCH_SEQ = 8, 64


def tensor_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the weights held in the graph (initializers, Constant-node tensors); ``ByteSize()``
    cannot answer past protobuf's 2 GB limit, which is when the answer matters."""
    def held(t) -> int:
        return len(t.raw_data) + 4 * (len(t.float_data) + len(t.int32_data)) + 8 * (len(t.int64_data) + len(t.double_data))
    total = sum(held(t) for t in model.graph.initializer)
    for node in model.graph.node:
        for attr in node.attribute:
            total += (held(attr.t) if attr.HasField("t") else 0) + sum(held(t) for t in attr.tensors)
    return total


def save_onnx(model: onnx.ModelProto, path: Path, external: bool = False) -> None:
    """Save, moving weights to ``<name>.data`` beside it when the graph is large (or ``external``)."""
    external = external or tensor_bytes(model) > EXTERNAL_DATA_BYTES
    # convert_attribute: the TorchScript exporter leaves some large tensors as Constant-node attributes,
    # which would keep a 0.6B model's graph over protobuf's 2 GB limit.
    onnx.save_model(model, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=f"{path.name}.data" if external else None, convert_attribute=external)


def session(path: Path | bytes, threads: int = 2) -> ort.InferenceSession:
    """A CPU session on a graph file or serialized graph (``ModelProto.SerializeToString()``)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), opts, providers=["CPUExecutionProvider"])


def token_range(vocab_size: int) -> tuple[int, int]:
    """Random token ids for parity and timing feeds: above the first 1000 (special and byte tokens)
    where the vocabulary is large enough, its upper half in the tiny vocabularies of tests."""
    return min(1000, vocab_size // 2), vocab_size


def bench_feeds(input_names: list[str], vocab_size: int, num_adapters: int | None, seq: int,
                batch: int = BENCH_BATCH, seed: int = 0) -> dict[str, np.ndarray]:
    """Full-length random rows (every token real) for latency timing."""
    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(*token_range(vocab_size), (batch, seq), dtype=np.int64),
             "attention_mask": np.ones((batch, seq), dtype=np.int64),
             "token_type_ids": np.zeros((batch, seq), dtype=np.int64)}
    if num_adapters:
        feeds["adapter_ids"] = np.arange(batch, dtype=np.int64) % num_adapters
    return {k: v for k, v in feeds.items() if k in input_names}


def latency_ms(paths: dict[str, Path], feeds: dict[str, np.ndarray], repeats: int = 15, warmup: int = 3) -> dict[str, float]:
    """Median wall time of one ``session.run`` per graph, in ms. The graphs take turns run by run,
    so a load change on a shared machine hits every candidate alike."""
    sessions = {name: session(path) for name, path in paths.items()}
    times = {name: [] for name in paths}
    for step in range(warmup + repeats):
        for name, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, feeds)
            if step >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: round(statistics.median(t), 3) for name, t in times.items()}


def fuse(src: Path, dst: Path, num_heads: int, hidden_size: int, options: dict) -> dict[str, int]:
    """ORT's offline BERT fusions (python passes only, opt_level 0: the graph stays provider-neutral)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    fusion = FusionOptions("bert")
    for key, value in options.items():
        setattr(fusion, key, value)
    model = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                           optimization_options=fusion, opt_level=0)
    # The python passes emit com.microsoft ops without importing that domain; ONNX shape inference
    # (which the quantizer runs) rejects such a graph.
    if not any(o.domain == "com.microsoft" for o in model.model.opset_import):
        model.model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    save_onnx(model.model, dst)
    return {op: n for op, n in model.get_fused_operator_statistics().items() if n}


INT8_SCHEMES = {"int8": "rowwise", "int8-blockwise": "blockwise"}   # precision -> scheme (module docstring)
INT8_BLOCK = 32
NBITS_BLOCK = 32      # int4: input channels per weight scale (MatMulNBits) and hidden units per row scale (Gather)
NBITS_OPSET = 21      # the first opset with 4-bit tensor types


def to_int4(src: Path, dst: Path) -> None:
    """4-bit weights for every constant MatMul and the token embedding (module docstring)."""
    import logging
    from onnx import external_data_helper, version_converter
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    model = onnx.load(str(src), load_external_data=False)       # small: weights stay where they are
    model = version_converter.convert_version(model, NBITS_OPSET)
    external_data_helper.load_external_data_for_model(model, str(src.parent))
    log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level, log.level = log.level, logging.WARNING                 # it logs every node it skips
    try:
        quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=NBITS_BLOCK, is_symmetric=True, accuracy_level=4,
                                         op_types_to_quantize=("MatMul", "Gather"),
                                         quant_axes=(("MatMul", 0), ("Gather", 1)))
        quantizer.process()
    finally:
        log.level = level
    save_onnx(quantizer.model.model, dst)


def to_int8(src: Path, dst: Path, scheme: str = "rowwise") -> None:
    if scheme == "blockwise":
        import logging
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
        level, log.level = log.level, logging.WARNING            # it logs every node it skips
        try:
            quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), bits=8, block_size=INT8_BLOCK, is_symmetric=True,
                                             accuracy_level=4)
            quantizer.process()
        finally:
            log.level = level
        save_onnx(quantizer.model.model, dst)
    elif scheme == "rowwise":
        from export.rowwise_int8 import quantize_model
        save_onnx(quantize_model(onnx.load(str(src)))[0], dst)
    else:
        raise ValueError(f"int8 scheme must be one of {sorted(set(INT8_SCHEMES.values()))}, got '{scheme}'")


def to_fp16(src: Path, dst: Path) -> None:
    """Weights and activations fp16; graph inputs and outputs stay int64 / fp32 (``keep_io_types``)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    save_onnx(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), dst)


def remove_graph(path: Path) -> None:
    """Delete a graph file and the external-data files it names (inside its folder)."""
    from core.onnx_refs import external_locations, outside
    for location in external_locations(path):
        if not outside(location):
            (path.parent / location).unlink(missing_ok=True)
    path.unlink()


def precision_pass(src: Path, dst: Path, precision: str) -> None:
    """``src`` at a reduced precision into ``dst`` (fp32 needs no pass: finish_graph times ``src`` itself)."""
    if precision in INT8_SCHEMES:
        to_int8(src, dst, INT8_SCHEMES[precision])
    elif precision == "fp16":
        to_fp16(src, dst)
    elif precision == "int4":
        to_int4(src, dst)
    else:
        raise ValueError(f"a reduced precision is fp16, int4 or {' or '.join(INT8_SCHEMES)}, got '{precision}'")


def finish_graph(plain: Path, dst: Path, precision: str, optimize: bool, feeds: dict[str, np.ndarray],
                 num_heads: int, hidden_size: int, external: bool = False) -> dict:
    """Write the shipped graph to ``dst``: precision pass, and with ``optimize`` the fastest fusion;
    ``external`` keeps its weights in ``<dst>.data`` whatever its size (else only past 2 GB).

    Returns what was measured: ``{"chosen", "cpu_latency_ms": {candidate: ms}, "fused_ops": {...}}``.
    """
    work = dst.parent / f".{dst.stem}-work"
    work.mkdir(exist_ok=True)
    try:
        names = list(FUSIONS) if optimize else ["plain"]
        if precision == "fp16" and optimize:
            names = ["fused"]
        if precision == "int4":   # for size: BERT fusion folds the embedding into EmbedLayerNormalization,
            names = ["plain"]     # which GatherBlockQuantized cannot replace
        candidates, fused_ops = {}, {}
        for name in names:
            src = plain
            if FUSIONS[name] is not None:
                src = work / f"{name}-fused.onnx"
                fused_ops[name] = fuse(plain, src, num_heads, hidden_size, FUSIONS[name])
            if precision == "fp32":       # the graph as it is: the one save is move_graph's, below
                candidates[name] = src
            else:
                candidates[name] = work / f"{name}-{precision}.onnx"
                precision_pass(src, candidates[name], precision)
        # Every candidate is timed, a single one too: the figure goes into the manifest (for fp16 it
        # is a CPU time, recorded for completeness, not what chose the graph).
        latency = latency_ms(candidates, feeds)
        chosen = min(latency, key=latency.get)
        move_graph(candidates[chosen], dst, external)
        return {"chosen": chosen, "cpu_latency_ms": latency, "fused_ops": fused_ops.get(chosen, {})}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def move_graph(src: Path, dst: Path, external: bool = False) -> None:
    """Move a graph and its external data (if any) under ``dst``'s name, fixing the data location."""
    model = onnx.load(str(src), load_external_data=True)
    save_onnx(model, dst, external)
