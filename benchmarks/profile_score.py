"""Where one ``RewardEngine.score`` call's time goes on the CPU.

    python benchmarks/profile_score.py                       # baseline and ARLISS, batch 32, results/profile.{json,md}
    python benchmarks/profile_score.py --methods rodos --batch-size 8 --out results/runs/profile

For each method's default bundle (``--bundles DIR/<method>``, fp32) and the requests of
``benchmarks/latency.py`` (same sampler and seed), a call of ``--batch-size`` pairs is split into:

* **tokenize**: the engine's text-to-ids step (``core.text.encode_pairs``/``encode_prompts``,
  truncation included), timed by calling it on the same texts;
* **graphs**: ``backend.run`` of each graph role (router, reward graphs), timed around the call;
* **rest**: everything else inside ``score`` (micro-batching, collate, scatter, softmax).

Then one ONNX Runtime session per graph, profiling on (``SessionOptions.enable_profiling``), runs
the same feeds the engine ran, and its trace is summed by operator kind:

* ``gemm-weight``: MatMul/Gemm/FusedMatMul with a constant right-hand side (the model's dense
  layers), with the FLOPs of their recorded shapes and the rate they reach;
* ``gemm-activation``: MatMul of two activations (attention's Q K^T and A V, per head; in
  ARLISS's switchable graph also the per-row LoRA products with the gathered adapter weights);
* every other op type by name (Softmax, LayerNormalization, Gelu/Erf, Add, Transpose, ...).

``padding`` is the share of the graphs' tokens that are padding (rows x longest row of each
micro-batch against the real tokens). The report compares the weight GEMMs' own rate with the
best fp32 GEMM rate of ``results/latency.json`` (or ``--gemm-gflops``) and says how much of the
call the weight GEMMs are, so "the engine reaches X of the GEMM limit" decomposes into padding,
non-GEMM ops, GEMM efficiency at the model's shapes and the Python/tokenizer overhead.

A benchmark: measures and writes, asserts nothing. Run it alone; the load average is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ORT_DISABLE_TELEMETRY"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

GEMM_OPS = ("MatMul", "Gemm", "FusedMatMul")


def _shape(entry) -> list[int]:
    """``{"float": [2, 3]}`` (ORT's trace format for one tensor) -> ``[2, 3]``."""
    return list(next(iter(entry.values()))) if entry else []


def gemm_flops(inputs: list[list[int]], output: list[int]) -> float:
    """2 * K * (elements of the output) of a MatMul-like node: every output element is a K-long dot product."""
    return 2.0 * float(np.prod(output)) * inputs[0][-1]


def summarize_trace(events: list[dict]) -> dict[str, dict]:
    """ORT profile events -> ``{kind: {"ms", "calls", "flops"}}`` over the ``Node`` kernel events.

    A MatMul-like node with a constant weight is ``gemm-weight``, one of two activations
    ``gemm-activation``; other ops by type. ORT pre-packs constant weights, and the trace then lists
    the activation alone as the node's input (otherwise ``parameter_size`` > 0 marks the weight).
    """
    out: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "calls": 0, "flops": 0.0})
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        op = args.get("op_name", "?")
        kind, flops = op, 0.0
        if op in GEMM_OPS:
            shapes = [_shape(x) for x in args.get("input_type_shape", [])]
            outs = [_shape(x) for x in args.get("output_type_shape", [])]
            weight = len(shapes) == 1 or int(args.get("parameter_size", 0) or 0) > 0
            kind = "gemm-weight" if weight else "gemm-activation"
            if shapes and shapes[0] and outs and outs[0]:
                flops = gemm_flops(shapes, outs[0])
        rec = out[kind]
        rec["ms"] += e.get("dur", 0) / 1e3
        rec["calls"] += 1
        rec["flops"] += flops
    return dict(out)


def _profile_graph(path: Path, feeds_list: list[dict], threads: int) -> tuple[dict, float]:
    """Run ``path`` on every feed with ORT profiling: (summary by kind, wall ms of the runs)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        wanted = {i.name for i in sess.get_inputs()}
        start = time.perf_counter()
        for feeds in feeds_list:
            sess.run(None, {k: v for k, v in feeds.items() if k in wanted})
        wall = (time.perf_counter() - start) * 1e3
        trace = json.loads(Path(sess.end_profiling()).read_text())
    return summarize_trace(trace), wall


def profile_method(bundle: Path, requests, batch_size: int, repeats: int, threads: int,
                   max_tokens: int | None = None) -> dict:
    """Time split and operator profile of ``score`` on ``requests`` in batches of ``batch_size`` pairs."""
    from benchmarks import latency_workload as workload
    from core.text import encode_pairs, encode_prompts
    from runtime import RewardEngine

    extra = {} if max_tokens is None else {"max_tokens": max_tokens}
    engine = RewardEngine.from_bundle(bundle, threads=threads, **extra)
    if engine.manifest.precision != "fp32":
        raise SystemExit(f"{bundle}: a {engine.manifest.precision} bundle; the profile reads fp32 graphs")
    graph_ms: dict[str, float] = defaultdict(float)
    tokens = {"real": 0, "padded": 0}
    feeds_seen: dict[str, list] = defaultdict(list)
    real_run = engine.backend.run

    def timed_run(role, feeds):
        start = time.perf_counter()
        out = real_run(role, feeds)
        graph_ms[role] += (time.perf_counter() - start) * 1e3
        if record:
            feeds_seen[role].append({k: v.copy() for k, v in feeds.items()})
            tokens["padded"] += int(feeds["input_ids"].size)
            tokens["real"] += int(feeds["attention_mask"].sum())
        return out

    engine.backend.run = timed_run
    calls = workload.batches(len(requests), batch_size)
    texts = [([requests[i].prompt] * 2, [requests[i].chosen, requests[i].rejected]) for i in range(len(requests))]

    def call_args(rows):
        prompts = [p for i in rows for p in texts[i][0]]
        responses = [r for i in rows for r in texts[i][1]]
        return prompts, responses

    record = False
    for rows in calls:                                           # warm-up, untimed
        engine.score(*call_args(rows))
    graph_ms.clear()
    record = True
    score_ms, tok_ms = [], []
    for r in range(repeats):
        if r == 1:
            record = False                                       # feeds and tokens of one pass are enough
        for rows in calls:
            prompts, responses = call_args(rows)
            start = time.perf_counter()
            engine.score(prompts, responses)
            score_ms.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            encode_pairs(engine.tokenizer, prompts, responses, engine.manifest.max_length, engine.truncation)
            if engine.manifest.routed:
                encode_prompts(engine.tokenizer, list(dict.fromkeys(prompts)), engine.manifest.router_max_length)
            tok_ms.append((time.perf_counter() - start) * 1e3)
    n_calls = len(score_ms)
    per_call = {"score": statistics.median(score_ms), "score_range": [min(score_ms), max(score_ms)],
                "tokenize": statistics.median(tok_ms)}
    per_call["graphs"] = {role: ms / n_calls for role, ms in graph_ms.items()}
    per_call["rest"] = max(0.0, statistics.mean(score_ms) - statistics.mean(tok_ms) - sum(per_call["graphs"].values()))

    return {"bundle": str(bundle), "method": engine.method, "batch_size": batch_size, "calls_per_repeat": len(calls),
            "per_call_ms": per_call,
            "padding_share": 1.0 - tokens["real"] / tokens["padded"] if tokens["padded"] else 0.0,
            # the profiled feeds are one pass over the requests: len(calls) calls
            **profile_ops(engine.manifest, feeds_seen, threads, len(calls))}


def profile_ops(manifest, feeds_seen: dict[str, list], threads: int, n_calls: int) -> dict:
    """Operator time per call of the graphs on ``feeds_seen`` (``{role: [feeds]}``, ``n_calls`` calls' worth)."""
    ops: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "calls": 0, "flops": 0.0})
    profiled_wall = 0.0
    for role, feeds_list in feeds_seen.items():
        summary, wall = _profile_graph(manifest.graph_path(role), feeds_list, threads)
        profiled_wall += wall
        for kind, rec in summary.items():
            for k in ("ms", "calls", "flops"):
                ops[kind][k] += rec[k]
    op_ms = {k: v["ms"] / n_calls for k, v in ops.items()}
    weight = ops.get("gemm-weight", {"ms": 0.0, "flops": 0.0})
    return {
        "ops_ms_per_call": dict(sorted(op_ms.items(), key=lambda kv: -kv[1])),
        "ops_total_ms_per_call": sum(op_ms.values()),
        "profiled_wall_ms_per_call": profiled_wall / n_calls,
        "gemm_weight_gflops": weight["flops"] / weight["ms"] / 1e6 if weight["ms"] else None,
        "gemm_weight_flops_per_call": weight["flops"] / n_calls,
    }


def _gemm_limit(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["machine"]["gemm_gflops_fp32"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def render(results: dict) -> str:
    limit = results["gemm_limit_gflops"]
    lines = [
        f"Generated by `python benchmarks/profile_score.py` (batch {results['batch_size']} pairs, "
        f"{results['requests']} test pairs, {results['repeats']} rounds, {results['threads']} threads, micro-batches of "
        f"at most {results['max_tokens']} padded tokens; "
        f"load average at start {results['load_average_start'][0]:.2f}). Best fp32 GEMM rate: "
        + (f"{limit:.1f} GFLOP/s ({results['gemm_limit_source']})." if limit else "not measured."),
        "",
        "| method | score ms | score ms range | tokenize | graphs | rest | padding | weight GEMMs | other ops | weight GEMM GFLOP/s | of limit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, r in results["methods"].items():
        pc = r["per_call_ms"]
        ops = r["ops_ms_per_call"]
        w = ops.get("gemm-weight", 0.0)
        rate = r["gemm_weight_gflops"]
        low, high = pc["score_range"]
        lines.append(f"| {m} | {pc['score']:.1f} | {low:.0f}-{high:.0f} | {pc['tokenize']:.1f} | "
                     f"{sum(pc['graphs'].values()):.1f} | {pc['rest']:.1f} | {100 * r['padding_share']:.0f}% | {w:.1f} | "
                     f"{r['ops_total_ms_per_call'] - w:.1f} | " + (f"{rate:.1f} | {rate / limit:.2f} |" if rate and limit else "- | - |"))
    lines += ["", "Operator time per call (ms, ONNX Runtime's profiler; the largest first):", "",
              "| method | " + " | ".join(["op 1", "op 2", "op 3", "op 4", "op 5", "op 6"]) + " |",
              "|---|" + "---|" * 6]
    for m, r in results["methods"].items():
        top = list(r["ops_ms_per_call"].items())[:6]
        lines.append(f"| {m} | " + " | ".join(f"{k} {v:.1f}" for k, v in top) + " |")
    lines += ["", "score ms is the median call; tokenize, graphs and rest split the mean call (rest: batching, "
              "collate, scatter, softmax in Python). The operator table comes from a second, profiled run of "
              "the same feeds, so its total is close to but not the graphs column. weight GEMMs: MatMul/Gemm "
              "with a constant weight (the dense layers); gemm-activation: products of two activations (attention's per-head "
              "products; ARLISS's switchable graph also its per-row LoRA products)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="baseline,arliss")
    ap.add_argument("--bundles", default="bundles")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=None,
                    help="the engine's micro-batch budget in padded tokens (default: the engine's)")
    ap.add_argument("--gemm-gflops", type=float, default=None, help="default: results/latency.json's best fp32 rate")
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)
    from benchmarks import latency_workload as workload
    from core.scoring import DEFAULT_MAX_TOKENS

    load = list(os.getloadavg())
    if load[0] > 0.5:
        print(f"[profile] warning: load average {load[0]:.2f} at start (above 0.5): timings are upper bounds",
              flush=True)
    requests = workload.sample_requests(args.requests, args.seed)
    limit, source = args.gemm_gflops, "--gemm-gflops"
    if limit is None:
        limit, source = _gemm_limit(REPO_ROOT / "results" / "latency.json"), "results/latency.json"
    results = {"batch_size": args.batch_size, "requests": args.requests, "repeats": args.repeats,
               "threads": args.threads, "max_tokens": args.max_tokens or DEFAULT_MAX_TOKENS, "load_average_start": load, "gemm_limit_gflops": limit,
               "gemm_limit_source": source, "methods": {}}
    for method in args.methods.split(","):
        bundle = Path(args.bundles) / method
        if not (bundle / "manifest.json").is_file():
            raise SystemExit(f"no bundle at {bundle} (run scripts/post_reproduce.sh or export/to_onnx.py first)")
        print(f"[profile] {method}: {bundle}", flush=True)
        results["methods"][method] = profile_method(bundle, requests, args.batch_size, args.repeats, args.threads,
                                                      args.max_tokens)
    results["load_average_end"] = list(os.getloadavg())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "profile.md").write_text(render(results))
    print(render(results))
    print(f"[profile] wrote {out / 'profile.json'} and {out / 'profile.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
