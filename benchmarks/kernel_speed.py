"""Benchmark the Triton kernels against their PyTorch reference and the naive baseline (GPU only).

    python benchmarks/kernel_speed.py                 # or: python -m benchmarks.kernel_speed
    python benchmarks/kernel_speed.py --dtypes float16 bfloat16 --out /tmp/kernels.json

For every case, three implementations of the same op:

- ``multi_lora``: Triton (``kernels.multi_lora``), the gather-and-bmm reference
  (``kernels.reference.multi_lora``) and the naive loop over adapters
  (``kernels.reference.multi_lora_loop``, what a plain PyTorch layer does).
- ``topk_gating``: Triton, the reference (stable sort), and the naive
  ``softmax -> torch.topk -> renormalise``.

Shapes cover the target regime: T from 1 to 4096 tokens, hidden 384 to 1024, rank 8 to 64, 2 to
16 adapters, 4 to 16 experts. Each figure is the median (and p95) of ``triton.testing.do_bench``
(CUDA events around repeated calls, L2 flushed between calls). The timed calls are eager Python
calls, so for tiny batches the figure includes launch overhead, which is what a model pays.

Output: one JSON line per case on stdout, then a markdown table; the same records go to
``results/kernels_<gpu-name-slug>.json`` as ``{"machine": {...}, "records": [...]}``. Without CUDA
the script refuses to run (exit status 1): timing Triton's CPU interpreter measures nothing useful.
Benchmarks never assert; ``max_abs_diff`` against the reference is recorded, not checked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

MULTI_LORA_TOKENS = [1, 16, 128, 1024, 4096]
MULTI_LORA_HIDDEN = [384, 1024]
MULTI_LORA_RANKS = [8, 64]
MULTI_LORA_ADAPTERS = [2, 16]
GATING_TOKENS = [1, 64, 1024, 4096]
GATING_EXPERTS = [4, 8, 16]
GATING_K = [1, 2]
QUANTILES = [0.5, 0.95]


def _no_gpu_reason() -> str | None:
    if os.environ.get("TRITON_INTERPRET", "").strip().lower() in {"1", "true", "yes", "on", "y"}:
        return "TRITON_INTERPRET is set: the Triton CPU interpreter is not a benchmark"
    if not torch.cuda.is_available():
        return "no GPU available (torch.cuda.is_available() is False)"
    return None


def machine_info() -> dict:
    import triton

    props = torch.cuda.get_device_properties(0)
    return {
        "gpu": torch.cuda.get_device_name(0),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton.__version__,
        "python": platform.python_version(),
    }


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def time_ms(fn) -> dict:
    from triton.testing import do_bench

    median, p95 = do_bench(fn, quantiles=QUANTILES)
    return {"median": round(median, 5), "p95": round(p95, 5)}


def naive_topk_gating(router_logits, k, renormalize=True):
    """The usual eager router: softmax, torch.topk, renormalise."""
    probs = torch.softmax(router_logits.float(), dim=-1)
    weights, ids = torch.topk(probs, k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids.to(torch.int32)


def bench_multi_lora(num_tokens, hidden, rank, n_adapters, dtype, seed=0) -> dict:
    import kernels
    from kernels import reference

    gen = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(num_tokens, hidden, device="cuda", generator=gen).to(dtype)
    lora_a = (torch.randn(n_adapters, hidden, rank, device="cuda", generator=gen)
              / hidden**0.5).to(dtype)
    lora_b = (torch.randn(n_adapters, rank, hidden, device="cuda", generator=gen)
              / rank**0.5).to(dtype)
    adapter_ids = torch.randint(0, n_adapters, (num_tokens,), device="cuda", generator=gen,
                                dtype=torch.int32)
    args = (x, lora_a, lora_b, adapter_ids, 0.5)
    expected = reference.multi_lora(*args).float()
    return {
        "op": "multi_lora",
        "config": {"T": num_tokens, "D_in": hidden, "D_out": hidden, "R": rank,
                   "N": n_adapters, "dtype": str(dtype).removeprefix("torch."),
                   "adapter_pattern": "uniform"},
        "ms": {
            "triton": time_ms(lambda: kernels.multi_lora(*args)),
            "reference": time_ms(lambda: reference.multi_lora(*args)),
            "naive": time_ms(lambda: reference.multi_lora_loop(*args)),
        },
        "max_abs_diff": {
            "triton": (kernels.multi_lora(*args).float() - expected).abs().max().item(),
            "naive": (reference.multi_lora_loop(*args).float() - expected).abs().max().item(),
        },
    }


def bench_topk_gating(num_tokens, num_experts, k, dtype, seed=0) -> dict:
    import kernels
    from kernels import reference

    gen = torch.Generator(device="cuda").manual_seed(seed)
    logits = torch.randn(num_tokens, num_experts, device="cuda", generator=gen).to(dtype)
    expected, _ = reference.topk_gating(logits, k)
    return {
        "op": "topk_gating",
        "config": {"T": num_tokens, "E": num_experts, "k": k,
                   "dtype": str(dtype).removeprefix("torch."), "renormalize": True},
        "ms": {
            "triton": time_ms(lambda: kernels.topk_gating(logits, k)),
            "reference": time_ms(lambda: reference.topk_gating(logits, k)),
            "naive": time_ms(lambda: naive_topk_gating(logits, k)),
        },
        "max_abs_diff": {
            "triton": (kernels.topk_gating(logits, k)[0] - expected).abs().max().item(),
            "naive": (naive_topk_gating(logits, k)[0] - expected).abs().max().item(),
        },
    }


def markdown_table(records: list[dict]) -> str:
    lines = [
        "| op | config | triton ms | reference ms | naive ms | vs reference | vs naive |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for rec in records:
        ms = {impl: fig["median"] for impl, fig in rec["ms"].items()}
        config = " ".join(f"{key}={value}" for key, value in rec["config"].items())
        lines.append(
            f"| {rec['op']} | {config} | {ms['triton']:.4f} | {ms['reference']:.4f} | "
            f"{ms['naive']:.4f} | {ms['reference'] / ms['triton']:.1f}x | "
            f"{ms['naive'] / ms['triton']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtypes", nargs="+", default=["float16"],
                        choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--ops", nargs="+", default=["multi_lora", "topk_gating"],
                        choices=["multi_lora", "topk_gating"])
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results file (default: results/kernels_<gpu-slug>.json)")
    args = parser.parse_args(argv)

    reason = _no_gpu_reason()
    if reason is not None:
        print(f"benchmarks/kernel_speed.py: {reason}; nothing was timed.", file=sys.stderr)
        return 1

    machine = machine_info()
    print(json.dumps({"machine": machine}), flush=True)
    records = []
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        if "multi_lora" in args.ops:
            for hidden in MULTI_LORA_HIDDEN:
                for rank in MULTI_LORA_RANKS:
                    for n_adapters in MULTI_LORA_ADAPTERS:
                        for num_tokens in MULTI_LORA_TOKENS:
                            records.append(
                                bench_multi_lora(num_tokens, hidden, rank, n_adapters, dtype))
                            print(json.dumps(records[-1]), flush=True)
        if "topk_gating" in args.ops:
            for num_experts in GATING_EXPERTS:
                for k in GATING_K:
                    for num_tokens in GATING_TOKENS:
                        records.append(bench_topk_gating(num_tokens, num_experts, k, dtype))
                        print(json.dumps(records[-1]), flush=True)

    out = args.out or REPO_ROOT / "results" / f"kernels_{slug(machine['gpu'])}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "records": records}, indent=1) + "\n")
    print()
    print(markdown_table(records))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
