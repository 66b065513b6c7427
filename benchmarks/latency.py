"""Reward-model serving latency: every method and engine side by side, against the machine's limit.

    python benchmarks/latency.py                                   # first look: minutes (<= 10 after `make demo`)
    python benchmarks/latency.py --full --out results              # the publication run behind the README tables
    python benchmarks/latency.py --quick                           # seconds: CI smoke test
    python benchmarks/latency.py --methods arliss --engines routerm-ort-fp32,peft-eager --batch-sizes 1,32
    python benchmarks/latency.py --checkpoints checkpoints/quick --bundles bundles/quick

Per method (checkpoints in ``--checkpoints DIR/<method>``) and engine where it applies (see
``benchmarks/latency_engines.py``): p50/p95 latency per batch size, pairs/s, peak RSS, load time,
parameters total/active, pairwise accuracy on the requests, and effective GFLOP/s from real token
counts (``benchmarks/latency_workload.py``) as a fraction of the best dense GEMM rate measured in
the same run (``benchmarks/latency_machine.py``; best of the model's three GEMM shapes at a whole call's
padded tokens and at RouteRM's micro-batch of core.scoring.DEFAULT_MAX_TOKENS rows).

Bundles come from ``--bundles DIR``: any bundle there whose manifest matches (method, precision,
LoRA mode, export optimization, source checkpoint, newer than the checkpoint) is used; a missing
one is exported into ``DIR/<default name>``, saying so (``benchmarks/latency_plan.py``)::

    routerm-ort-fp32          fp32 graph as exported, no export-time fusion (``<method>-noopt``)
    routerm-ort-optimized     the default bundle (``<method>``): fusion kept where measured faster
    routerm-ort-int8          ``<method>-int8`` (rowwise int8, export.optimize; ARLISS switchable like the two above)
    routerm-ort-merged        ``arliss-merged``: ARLISS per-domain graphs, rows grouped by domain
    routerm-torch             the default bundle's manifest, weights from the checkpoint
    optimum-ort               the default bundle's graphs (ARLISS: ``arliss-merged``)
    optimum-ort-int8-dynamic  optimum-ort's graphs after ONNX Runtime's dynamic int8 quantization,
                              made at the start of the run in a temporary directory (not a bundle)

so the default bundles of ``scripts/post_reproduce.sh`` serve all but ``-noopt`` (four quick
exports). The per-row adapter cost is routerm-ort-optimized over routerm-ort-merged (both default
exports). With ``--quick`` any fp32 bundle of the right LoRA mode serves every fp32 engine and a
missing one is exported without fusion timing (seconds): quick figures are not measurements.

Method of measurement (``benchmarks/latency_run.py``): each engine runs in its own process (forked
from one server that imported the libraries once), loaded one at a time, scored once untimed, then
timed in rounds that interleave the engines of a method; a call's time is taken inside the worker
around ``score`` alone, and the parent waits ``SPIN_GAP_S`` after each call so ONNX Runtime's
spinning workers idle before the next one (its own session option is left at the default, as
users run it). Figures are medians over rounds: p50/p95 of latency, pairs/s = median of B /
latency, GFLOP/s = median of useful FLOPs / latency. Methods run one after another. Benchmarks
never assert: a missed target is reported in the markdown, not raised.

Presets (``--quick``, default, ``--full``; the run prints which and how many timed calls it makes):
the default is a first look, RouteRM's default fp32 bundle and int8 against the eager and Optimum
baselines (fp32, and ONNX Runtime's dynamic int8) at batch 1 and 32 (``DEFAULT``); ``--full`` is every engine at 1, 8 and 32 with 15 rounds
(hours on 2 cores). Results go to ``results/runs/<timestamp>/`` unless ``--out`` says otherwise, so
only ``--full --out results`` replaces the committed tables. Progress bars (tqdm, time left) cover
exports, the GEMM limit and the rounds; library output during exports (ONNX Runtime's quantizer
and tracer warnings) goes to ``<out>/export.log`` and is summarised in one line. The run ends with a
summary per method: RouteRM's speed-up over each baseline engine (median and range over rounds),
accuracies, and the load average at the start, with a warning above 0.5.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ORT_DISABLE_TELEMETRY"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks import latency_machine as machine  # noqa: E402
from benchmarks import latency_plan as plan  # noqa: E402
from benchmarks import latency_report as report  # noqa: E402
from benchmarks import latency_workload as workload  # noqa: E402
from benchmarks.latency_engines import ENGINES  # noqa: E402
from benchmarks.latency_run import SPIN_GAP_S, log, measure_method  # noqa: E402
from core.manifest import METHODS  # noqa: E402
from core.scoring import DEFAULT_MAX_TOKENS  # noqa: E402

ROUTERM = ("routerm-ort-fp32", "routerm-ort-optimized", "routerm-ort-int8", "routerm-ort-merged", "routerm-torch")
BASELINES = ("hf-eager", "peft-eager", "optimum-ort", "optimum-ort-int8-dynamic")
INT8 = ("routerm-ort-int8", "optimum-ort-int8-dynamic")      # engines whose GEMMs run int8
FULL = {"name": "full", "batch_sizes": (1, 8, 32), "requests": 320, "repeats": 15, "warmup": 2, "gemm_repeats": 15,
        "engines": tuple(ENGINES)}
DEFAULT = {"name": "default", "batch_sizes": (1, 32), "requests": 64, "repeats": 4, "warmup": 1, "gemm_repeats": 5,
           "engines": ("routerm-ort-optimized", "routerm-ort-int8", "hf-eager", "peft-eager", "optimum-ort",
                       "optimum-ort-int8-dynamic")}
QUICK = {"name": "quick", "batch_sizes": (1, 4), "requests": 8, "repeats": 2, "warmup": 1, "gemm_repeats": 3,
         "engines": tuple(ENGINES)}
HIGH_LOAD = 0.5


def _csv(kind, choices=None):
    def parse(text: str):
        items = [kind(x.strip()) for x in text.split(",") if x.strip()]
        bad = [x for x in items if choices is not None and x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {list(choices or [])}, got '{text}'")
        return items
    return parse


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python benchmarks/latency.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", type=_csv(str, METHODS), help="default: every method with a checkpoint")
    p.add_argument("--engines", type=_csv(str, ENGINES), help=f"default {DEFAULT['engines']}; --full/--quick: all")
    p.add_argument("--batch-sizes", type=_csv(int), help=f"pairs per call (default {FULL['batch_sizes']})")
    p.add_argument("--requests", type=int, help=f"test pairs scored (default {FULL['requests']})")
    p.add_argument("--repeats", type=int, help=f"timed rounds (default {FULL['repeats']})")
    p.add_argument("--warmup", type=int, help=f"discarded rounds (default {FULL['warmup']})")
    p.add_argument("--threads", type=int, default=machine.available_cpus(), help="intra-op threads of every engine")
    p.add_argument("--quick", action="store_true", help=f"CI smoke test: {QUICK}")
    p.add_argument("--full", action="store_true", help=f"publication run (hours on 2 cores): {FULL}")
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    p.add_argument("--bundles", type=Path, default=Path("bundles"))
    p.add_argument("--out", type=Path, help="default results/runs/<timestamp>; `--full --out results` updates the README's tables")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick and args.full:
        p.error("--quick and --full are exclusive")
    preset = QUICK if args.quick else FULL if args.full else DEFAULT
    args.preset = preset["name"]
    if args.out is None:
        args.out = Path("results") / "runs" / time.strftime("%Y%m%d-%H%M%S")
    for key in ("batch_sizes", "requests", "repeats", "warmup", "engines"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.gemm_repeats = preset["gemm_repeats"]
    args.batch_sizes = sorted(set(args.batch_sizes))
    if min(args.batch_sizes) < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        p.error("batch sizes, --repeats and --threads must be positive, --warmup non-negative")
    args.requests = max(args.requests, max(args.batch_sizes))
    return args


# --- main ------------------------------------------------------------------------------------------

def summary(results: dict) -> list[str]:
    """Lines for the end of the run: RouteRM over each baseline engine per method, accuracy, load."""
    lines = []
    load = results["machine"].get("load_avg_1m_at_start")
    lines.append(f"load average at start: {load}" + (f"  WARNING: above {HIGH_LOAD}, timings are not trustworthy; "
                                                     f"rerun on a quiet machine" if load is not None and load > HIGH_LOAD else ""))
    records = results["records"]
    big = max((r["batch_size"] for r in records), default=None)
    for method in dict.fromkeys(r["method"] for r in records):
        rows = {r["engine"]: r for r in records if r["method"] == method and r["batch_size"] == big}
        acc = ", ".join(f"{e} {r['accuracy']:.3f}" for e, r in rows.items())
        lines.append(f"{method} (batch {big}): accuracy on the requests: {acc}")
        for mine in (e for e in ROUTERM if e in rows):
            for theirs in (e for e in BASELINES if e in rows):
                s = report.paired_speedup(rows[mine]["round_ms"], rows[theirs]["round_ms"])
                if s is None:
                    continue
                lines.append(f"  {mine} vs {theirs}: speed-up {s['median']:.2f}x, {s['verdict']} "
                             f"(rounds {s['low']:.2f}-{s['high']:.2f}x; {rows[mine]['pairs_per_s']:.1f} vs "
                             f"{rows[theirs]['pairs_per_s']:.1f} pairs/s)")
    for s in results["skipped"]:
        lines.append(f"skipped {s['method']}/{s['engine']}: {s['reason']}")
    return lines


def prepare_methods(args, methods: list[str], requests, skipped: list) -> tuple[dict, dict, dict, dict]:
    """Per method: the engine plan with every bundle found or exported, the cost model, the requests'
    token counts and max length (``(plans, costs, counts, lengths)``)."""
    from models.checkpoint import load_checkpoint
    plans, missing, costs, counts, lengths = {}, {}, {}, {}, {}
    for method in methods:
        checkpoint = (args.checkpoints / method).resolve()
        ckpt = load_checkpoint(checkpoint, expect_method=method)
        costs[method], counts[method] = workload.method_cost(ckpt), workload.count_tokens(ckpt, requests)
        lengths[method] = ckpt.card.max_length
        del ckpt
        plans[method], missing[method] = plan.plan_engines(args, method, checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    plan.build_bundles(args, plans, missing, skipped)
    return plans, costs, counts, lengths


def gemm_shapes(args, cost, counts) -> list[tuple[int, int, int]]:
    """The model's GEMM shapes at two sizes, the best of which is the limit: a whole call's padded
    tokens (the eager engines' one batch) and RouteRM's micro-batch (DEFAULT_MAX_TOKENS rows at
    most), where the GEMMs run faster in cache."""
    rows = workload.typical_gemm_rows(counts, max(args.batch_sizes))
    return [s for m in dict.fromkeys((rows, DEFAULT_MAX_TOKENS)) for s in machine.gemm_shapes(m, cost.hidden, cost.intermediate)]


def run_methods(args, methods: list[str], plans: dict, graph_dirs: dict, requests, costs: dict, counts: dict,
                skipped: list) -> tuple[list[dict], str]:
    """Every method's engines, one method after another: (records, the worker start method)."""
    from tqdm import tqdm
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    if ctx.get_start_method() == "forkserver":  # import torch/ORT/transformers once; workers fork from it
        ctx.set_forkserver_preload(["benchmarks.latency_engines"])
    records = []
    with tqdm(total=len(methods) * (args.warmup + args.repeats), desc="rounds", unit="round", file=sys.stderr) as bar:
        for method in methods:
            bar.set_postfix_str(method)
            records += measure_method(ctx, method, plans[method], (args.checkpoints / method).resolve(), requests,
                                      costs[method], counts[method], args, skipped, bar, graph_dirs.get(method))
    return records, ctx.get_start_method()


def main(argv=None) -> int:
    args = parse_args(argv)
    from models.checkpoint import CARD
    methods = args.methods or [m for m in METHODS if (args.checkpoints / m / CARD).is_file()]
    missing = [m for m in methods if not (args.checkpoints / m / CARD).is_file()]
    if missing or not methods:
        log(f"no checkpoint for {missing or list(METHODS)} under {args.checkpoints}: train them with "
            f"`make reproduce` (or `make demo` for quick ones), or pass --checkpoints DIR")
        return 2
    info = machine.machine_info(args.threads)       # load average before our own work starts
    requests = workload.sample_requests(args.requests, args.seed)
    calls = len(methods) * (args.warmup + args.repeats) * len(args.batch_sizes)
    log(f"preset '{args.preset}': {len(methods)} method(s), engines {list(args.engines)}, batch sizes {args.batch_sizes}, "
        f"{len(requests)} test pairs, {args.repeats} rounds after {args.warmup} warm-up ({calls} calls per engine), "
        f"{args.threads} threads; results to {args.out}")
    if info.get("load_avg_1m_at_start", 0) > HIGH_LOAD:
        log(f"WARNING: load average {info['load_avg_1m_at_start']} > {HIGH_LOAD}: other work is running, timings will be slow")
    skipped = []
    plans, costs, counts, lengths = prepare_methods(args, methods, requests, skipped)
    shapes = gemm_shapes(args, costs[methods[0]], counts[methods[0]])
    with tempfile.TemporaryDirectory(prefix="routerm-latency-") as work:
        graph_dirs = plan.build_dynamic_int8(plans, Path(work), args.out / "export.log", skipped)
        int8 = any(e in p for p in plans.values() for e in INT8)
        log(f"GEMM limit on (M, K, N) = {shapes} with {args.threads} threads")
        gemm = [dict(r, when="start") for r in machine.measure_gemm(shapes, args.threads, int8, repeats=args.gemm_repeats)]
        records, start_method = run_methods(args, methods, plans, graph_dirs, requests, costs, counts, skipped)
    gemm += [dict(r, when="end") for r in machine.measure_gemm(shapes, args.threads, int8, repeats=args.gemm_repeats)]
    results = report.assemble(info, gemm, records, skipped, {
        "preset": args.preset, "methods": methods, "engines": list(args.engines), "batch_sizes": args.batch_sizes,
        "requests": len(requests), "repeats": args.repeats, "warmup": args.warmup, "threads": args.threads,
        "quick": args.quick, "checkpoints": str(args.checkpoints), "bundles": str(args.bundles), "seed": args.seed,
        "spin_gap_s": SPIN_GAP_S, "start_method": start_method, "max_length": lengths})
    brief = {k: results["machine"][k] for k in ("cpu", "threads", "gemm_gflops_fp32", "onnxruntime", "torch")}
    for record in results["records"]:     # one JSON line per setup (STYLE.md)
        print(json.dumps({**record, "machine": brief}), flush=True)
    paths = report.write_all(results, args.out)
    log("wrote " + ", ".join(str(p) for p in paths))
    for line in summary(results):
        log(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
