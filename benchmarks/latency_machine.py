"""The machine's own limit for ``benchmarks/latency.py``: dense GEMM rates on the model's shapes.

Every engine's effective GFLOP/s is set against the best dense fp32 GEMM rate this machine reaches
on the shapes that dominate the model, ``Y[M, N] = X[M, K] @ W[K, N]`` with ``M`` the tokens of a
batch and ``(K, N)`` in ``{(H, I), (I, H), (H, H)}`` (BERT: FFN up, FFN down, Q/K/V/out; MiniLM:
H = 384, I = 1536). One figure per library at hand, the best is the limit::

    numpy      np.matmul(X, W, out=Y)                      (its BLAS)
    torch      torch.mm(X, W, out=Y)                       (MKL/oneDNN or OpenBLAS)
    ort        one-node ONNX graph MatMul(X, W), W an initializer (what the fp32 graphs run)
    ort-int8   MatMulInteger(uint8 X, uint8 W)             int32 out, X pre-quantized (rowwise int8's product)
    ort-int8   DynamicQuantizeMatMul(fp32 X, int8 W)       quantizes X per call (optimum-ort-int8-dynamic's graphs)

rate = 2 * M * N * K / median seconds (int8: integer "GOP/s", the same count). Each figure is the
median of ``repeats`` timed calls after ``warmup`` discarded ones; ONNX Runtime runs with
``session.intra_op.allow_spinning = 0`` here, so its worker threads do not keep a core busy after
the call (the engine measurements instead leave a gap between calls, see latency.py).
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from importlib import metadata

import numpy as np

VERSIONED = ("numpy", "torch", "onnxruntime", "onnx", "transformers", "optimum", "optimum-onnx", "peft", "tokenizers")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info(threads: int) -> dict:
    info = {"cpu": cpu_name(), "threads": threads, "cpus_available": available_cpus(),
            "platform": platform.platform(), "python": platform.python_version()}
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
        info["load_avg_1m_at_start"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError, ValueError):
        pass
    for name in VERSIONED:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def _median_s(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ort_session(model, threads: int):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _ort_graph(nodes, inputs, initializers, output, name: str):
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(output[0], output[1], None)],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = min(model.ir_version, 8)  # readable by every ORT this project pins
    return model, TensorProto


def _fp32_runners(M: int, K: int, N: int, threads: int) -> dict:
    """{library: zero-argument call computing X @ W} for fp32."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((K, N), dtype=np.float32)
    y = np.empty((M, N), np.float32)
    runners = {"numpy": lambda: np.matmul(x, w, out=y)}
    try:
        import torch
        torch.set_num_threads(threads)
        tx, tw, ty = torch.from_numpy(x), torch.from_numpy(w), torch.empty(M, N)
        runners["torch"] = lambda: torch.mm(tx, tw, out=ty)
    except ImportError:
        pass
    try:
        from onnx import TensorProto, helper
        model, _ = _ort_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], [("X", TensorProto.FLOAT, [M, K])],
                              {"W": w}, ("Y", TensorProto.FLOAT), "matmul_fp32")
        sess = _ort_session(model, threads)
        runners["onnxruntime"] = lambda: sess.run(None, {"X": x})
    except ImportError:
        pass
    return runners


def _int8_runners(M: int, K: int, N: int, threads: int) -> dict:
    """{op: call}: ORT MatMulInteger (pre-quantized uint8 X) and DynamicQuantizeMatMul (fp32 X)."""
    try:
        from onnx import TensorProto, helper
    except ImportError:
        return {}
    rng = np.random.default_rng(0)
    xq = rng.integers(0, 255, (M, K), dtype=np.uint8)
    xf = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.integers(-127, 127, (K, N), dtype=np.int8)
    w_u8 = (w.astype(np.int16) + 128).astype(np.uint8)     # rowwise int8 stores its weights so (exact on AVX2)
    mmi, _ = _ort_graph([helper.make_node("MatMulInteger", ["X", "W", "xz", "wz"], ["Y"])],
                        [("X", TensorProto.UINT8, [M, K])],
                        {"W": w_u8, "xz": np.array(128, np.uint8), "wz": np.array(128, np.uint8)},
                        ("Y", TensorProto.INT32), "matmul_integer")
    dq, _ = _ort_graph([helper.make_node("DynamicQuantizeMatMul", ["X", "W", "ws", "wz"], ["Y"], domain="com.microsoft")],
                       [("X", TensorProto.FLOAT, [M, K])],
                       {"W": w, "ws": np.full((N,), 0.01, np.float32), "wz": np.zeros((N,), np.int8)},
                       ("Y", TensorProto.FLOAT), "dynamic_quantize_matmul")
    s1, s2 = _ort_session(mmi, threads), _ort_session(dq, threads)
    return {"onnxruntime-MatMulInteger": lambda: s1.run(None, {"X": xq}),
            "onnxruntime-DynamicQuantizeMatMul": lambda: s2.run(None, {"X": xf})}


def gemm_shapes(tokens: int, hidden: int, intermediate: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of the model's dense layers for ``tokens`` rows."""
    return [(tokens, hidden, intermediate), (tokens, intermediate, hidden), (tokens, hidden, hidden)]


def measure_gemm(shapes: list[tuple[int, int, int]], threads: int, int8: bool,
                 warmup: int = 3, repeats: int = 15) -> list[dict]:
    """One record per (dtype, library, shape): ``{"dtype", "library", "M", "K", "N", "ms", "gflops"}``."""
    out = []
    for M, K, N in shapes:
        suites = [("fp32", _fp32_runners(M, K, N, threads))]
        if int8:
            suites.append(("int8", _int8_runners(M, K, N, threads)))
        for dtype, runners in suites:
            for library, fn in runners.items():
                seconds = _median_s(fn, warmup, repeats)
                out.append({"dtype": dtype, "library": library, "M": M, "K": K, "N": N,
                            "ms": round(seconds * 1e3, 4), "gflops": round(2 * M * N * K / seconds / 1e9, 2)})
    return out


def best(records: list[dict], dtype: str) -> float | None:
    rates = [r["gflops"] for r in records if r["dtype"] == dtype]
    return max(rates) if rates else None
