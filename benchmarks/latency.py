"""Reward-model serving latency: every method and engine side by side, against the machine's limit.

    python benchmarks/latency.py                                   # full run: checkpoints/, bundles/
    python benchmarks/latency.py --quick                           # seconds: CI smoke test
    python benchmarks/latency.py --methods arliss --engines routerm-ort-fp32,peft-eager --batch-sizes 1,32
    python benchmarks/latency.py --checkpoints checkpoints/quick --bundles bundles/quick

Per method (checkpoints in ``--checkpoints DIR/<method>``) and engine where it applies (see
``benchmarks/latency_engines.py``): p50/p95 latency per batch size, pairs/s, peak RSS, load time,
parameters total/active, pairwise accuracy on the requests, and effective GFLOP/s from real token
counts (``benchmarks/latency_workload.py``) as a fraction of the best dense GEMM rate measured in
the same run (``benchmarks/latency_machine.py``).

Bundles come from ``--bundles DIR``: any bundle there whose manifest matches (method, precision,
LoRA mode, export optimization, source checkpoint, newer than the checkpoint) is used; a missing
one is exported with ``export.to_onnx.export_bundle`` into ``DIR/<default name>``, saying so::

    routerm-ort-fp32       fp32 graph as exported, no export-time fusion (``<method>-noopt``)
    routerm-ort-optimized  the default bundle (``<method>``): fusion kept where measured faster
    routerm-ort-int8       ``<method>-int8`` (dynamic int8; ARLISS switchable like the two above)
    routerm-ort-merged     ``arliss-merged``: ARLISS per-domain graphs, rows grouped by domain
    routerm-torch          the default bundle's manifest, weights from the checkpoint
    optimum-ort            the default bundle's graphs (ARLISS: ``arliss-merged``)

so the default bundles of ``scripts/post_reproduce.sh`` serve all but ``-noopt`` (four quick
exports). The per-row adapter cost is routerm-ort-optimized over routerm-ort-merged (both default
exports). With ``--quick`` any fp32 bundle of the right LoRA mode serves every fp32 engine and a
missing one is exported without fusion timing (seconds): quick figures are not measurements.

Method of measurement: each engine runs in its own process (forked from one server that imported
the libraries once), loaded one at a time. The requests are scored once per engine untimed (warm-up
and the accuracy figure), then ``--warmup`` discarded rounds, then ``--repeats`` rounds; a round
asks every engine of the method, in an order rotated each round, for one call per batch size
(round ``r`` uses batch ``r mod n_batches``: all engines see the same inputs). A call's time is
taken inside the worker around ``score`` alone. After every call the parent waits
``SPIN_GAP_S``: ONNX Runtime's workers keep spinning ~25 ms after a run and would steal a core
from the next engine (its own session option is left at the default, as users run it). Figures
are medians over rounds: p50/p95 of latency, pairs/s = median of B / latency, GFLOP/s = median of
useful FLOPs / latency. Engines of one method are interleaved; methods run one after another.
Benchmarks never assert: a missed target is reported in the markdown, not raised.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    # Run as a file, benchmarks/ would come first on sys.path and benchmarks/kernels.py would shadow
    # the top-level `kernels` package (models/ imports it); put the repository root there instead.
    sys.path[0] = str(REPO_ROOT)
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ORT_DISABLE_TELEMETRY"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from benchmarks import latency_machine as machine  # noqa: E402
from benchmarks import latency_report as report  # noqa: E402
from benchmarks import latency_workload as workload  # noqa: E402
from benchmarks.latency_engines import ENGINES  # noqa: E402

METHODS = ("baseline", "more", "rodos", "arliss")
SPIN_GAP_S = 0.03
WORKER_TIMEOUT_S = 1800
# engine -> (methods it applies to, bundle it runs: (precision, lora, export-time fusion) or None)
PLAN = {
    "routerm-ort-fp32": (METHODS, ("fp32", "switchable", False)),
    "routerm-ort-optimized": (METHODS, ("fp32", "switchable", True)),
    "routerm-ort-int8": (METHODS, ("int8", "switchable", True)),
    "routerm-ort-merged": (("arliss",), ("fp32", "merged", True)),
    "routerm-torch": (METHODS, ("fp32", "switchable", True)),
    "hf-eager": (("baseline", "more", "rodos"), None),
    "peft-eager": (("arliss",), None),
    "optimum-ort": (METHODS, ("fp32", "merged", True)),
}
FULL = {"batch_sizes": (1, 8, 32), "requests": 320, "repeats": 15, "warmup": 2, "gemm_repeats": 15}
QUICK = {"batch_sizes": (1, 4), "requests": 8, "repeats": 2, "warmup": 1, "gemm_repeats": 3}


def log(message: str) -> None:
    print(f"[latency] {message}", file=sys.stderr, flush=True)


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
    p.add_argument("--engines", type=_csv(str, ENGINES), default=list(ENGINES), help="default: all (where they apply)")
    p.add_argument("--batch-sizes", type=_csv(int), help=f"pairs per call (default {FULL['batch_sizes']})")
    p.add_argument("--requests", type=int, help=f"test pairs scored (default {FULL['requests']})")
    p.add_argument("--repeats", type=int, help=f"timed rounds (default {FULL['repeats']})")
    p.add_argument("--warmup", type=int, help=f"discarded rounds (default {FULL['warmup']})")
    p.add_argument("--threads", type=int, default=machine.available_cpus(), help="intra-op threads of every engine")
    p.add_argument("--quick", action="store_true", help=f"CI smoke test: {QUICK}")
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    p.add_argument("--bundles", type=Path, default=Path("bundles"))
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("batch_sizes", "requests", "repeats", "warmup"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    args.gemm_repeats = preset["gemm_repeats"]
    args.batch_sizes = sorted(set(args.batch_sizes))
    if min(args.batch_sizes) < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        p.error("batch sizes, --repeats and --threads must be positive, --warmup non-negative")
    args.requests = max(args.requests, max(args.batch_sizes))
    return args


# --- bundles ---------------------------------------------------------------------------------------

def _card_mtime(checkpoint: Path) -> float:
    return max(p.stat().st_mtime for p in checkpoint.rglob("*") if p.is_file())


def find_bundle(bundles: Path, method: str, spec: tuple, checkpoint: Path, any_fusion: bool = False) -> Path | None:
    """A bundle under ``bundles`` exported from ``checkpoint`` (and newer than it) with ``spec``
    (``any_fusion``: whatever its export-time optimization)."""
    precision, lora, optimize = spec
    fresh_after = _card_mtime(checkpoint)
    for manifest in sorted(bundles.glob("*/manifest.json")):
        raw = json.loads(manifest.read_text(encoding="utf-8"))
        export = raw.get("export", {})
        if (raw.get("method") == method and raw.get("precision") == precision
                and (method != "arliss" or raw.get("lora") == lora) and (any_fusion or bool(export.get("optimize")) == optimize)
                and Path(export.get("source_checkpoint", "")).resolve() == checkpoint.resolve()
                and manifest.stat().st_mtime >= fresh_after):
            return manifest.parent
    return None


def ensure_bundle(bundles: Path, method: str, spec: tuple, checkpoint: Path, quick: bool = False) -> Path:
    found = find_bundle(bundles, method, spec, checkpoint, any_fusion=quick)
    if found is not None:
        return found
    from export.to_onnx import default_out, export_bundle
    precision, lora, optimize = spec
    optimize = optimize and not quick
    out = bundles / default_out(method, lora, precision, optimize).name
    why = "exists but was made from another or an older checkpoint" if (out / "manifest.json").is_file() else "is missing"
    log(f"bundle {out} ({method} {precision} lora={lora} optimize={optimize}) {why}: exporting it from {checkpoint}")
    start = time.perf_counter()
    # 60 validation pairs per domain for the export's accuracy check, as scripts/post_reproduce.sh
    export_bundle(checkpoint, out, method=method, lora=lora, precision=precision, optimize=optimize, val_pairs=60)
    log(f"exported {out} in {time.perf_counter() - start:.0f}s")
    return out


# --- measurement -----------------------------------------------------------------------------------

class Worker:
    """One engine in its own process; ``ask`` sends a command and waits for the reply."""

    def __init__(self, ctx, engine: str, spec: dict):
        from benchmarks.latency_engines import worker_main
        self.engine = engine
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, {**spec, "engine": engine}), daemon=True)
        self.process.start()
        child.close()

    def ask(self, *message, timeout: float = WORKER_TIMEOUT_S) -> dict:
        if message:
            self.conn.send(message)
        deadline = time.monotonic() + timeout
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"{self.engine} worker exited with code {self.process.exitcode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.engine} worker gave no answer in {timeout:.0f}s")
        return self.conn.recv()

    def close(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


def measure_method(ctx, method: str, engines: dict, checkpoint: Path, requests, cost, counts, args,
                   skipped: list) -> list[dict]:
    """Load ``engines`` ({engine: bundle or None}), score, time interleaved; one record per (engine, B)."""
    texts = [(r.prompt, r.chosen, r.rejected) for r in requests]
    common = {"checkpoint": str(checkpoint), "threads": args.threads, "requests": texts}
    workers, info = {}, {}
    for engine, bundle in engines.items():      # one at a time: load times are not shared
        worker = Worker(ctx, engine, {**common, "bundle": str(bundle) if bundle else None})
        try:
            reply = worker.ask()
        except RuntimeError as exc:
            reply = {"ok": False, "error": str(exc)}
        if not reply["ok"]:
            log(f"{method}/{engine}: skipped, failed to load: {reply['error']}")
            skipped.append({"method": method, "engine": engine, "reason": reply["error"]})
            worker.close()
            continue
        log(f"{method}/{engine}: loaded in {reply['load_s']:.2f}s" + (f" from {bundle}" if bundle else ""))
        # untimed pass over every request: warm-up, and the accuracy figure
        big = max(args.batch_sizes)
        correct = 0
        try:
            for rows in [list(range(s, min(s + big, len(texts)))) for s in range(0, len(texts), big)]:
                out = worker.ask("score", rows)
                correct += int(np.sum(np.asarray(out["chosen"]) > np.asarray(out["rejected"])))
        except RuntimeError as exc:
            log(f"{method}/{engine}: skipped, failed while scoring: {exc}")
            skipped.append({"method": method, "engine": engine, "reason": str(exc)})
            worker.close()
            continue
        workers[engine] = worker
        info[engine] = {"load_s": reply["load_s"], "accuracy": correct / len(texts),
                        "bundle": Path(bundle).name if bundle else None}
    per_size = {b: workload.batches(len(texts), b) for b in args.batch_sizes}
    times = {(e, b): [] for e in workers for b in args.batch_sizes}
    flops = {(e, b): [] for e in workers for b in args.batch_sizes}
    names = list(workers)
    for round_ in range(args.warmup + args.repeats):
        for b in args.batch_sizes:
            rows = per_size[b][round_ % len(per_size[b])]
            work = workload.batch_flops(cost, counts, requests, rows)
            shift = round_ % max(len(names), 1)
            for engine in names[shift:] + names[:shift]:
                if engine not in workers:
                    continue
                try:
                    ms = workers[engine].ask("time", rows)["ms"]
                except RuntimeError as exc:
                    log(f"{method}/{engine}: dropped mid-run: {exc}")
                    skipped.append({"method": method, "engine": engine, "reason": str(exc)})
                    workers.pop(engine).close()
                    continue
                time.sleep(SPIN_GAP_S)
                if round_ >= args.warmup:
                    times[(engine, b)].append(ms)
                    flops[(engine, b)].append(work)
    records = []
    for engine, worker in workers.items():
        memory = worker.ask("stop")
        worker.close()
        for b in args.batch_sizes:
            ms = np.asarray(times[(engine, b)])
            records.append({
                "engine": engine, "method": method, "batch_size": b,
                "p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
                "pairs_per_s": round(float(statistics.median(b * 1e3 / t for t in ms)), 2),
                "peak_rss_mb": round(memory["peak_rss_mb"], 1), "load_s": round(info[engine]["load_s"], 3),
                "accuracy": round(info[engine]["accuracy"], 4),
                "gflops_effective": round(float(statistics.median(f / t / 1e6 for f, t in zip(flops[(engine, b)], ms))), 2),
                "params_total": cost.params_total, "params_active": cost.params_active,
                "model_rss_mb": round(float(memory["model_rss_mb"]), 1), "repeats": len(ms),
                "bundle": info[engine]["bundle"], "requests": len(texts),
                "tokens_real_mean": round(statistics.mean(
                    workload.batch_tokens(counts, r) for r in per_size[b]), 1),
            })
    return records


# --- main ------------------------------------------------------------------------------------------

def plan_engines(args, method: str, checkpoint: Path, skipped: list) -> dict:
    """{engine: bundle path or None} for the engines that apply to ``method``; builds missing bundles."""
    from export.validate import ExportValidationError
    out = {}
    for engine in args.engines:
        methods, spec = PLAN[engine]
        if method not in methods:
            continue
        if spec is None:
            out[engine] = None
            continue
        if method != "arliss":
            spec = (spec[0], "switchable", spec[2])      # the LoRA mode means nothing without adapters
        try:
            out[engine] = ensure_bundle(args.bundles, method, spec, checkpoint, quick=args.quick)
        except (ValueError, OSError, ExportValidationError) as exc:  # e.g. int8 without validation data: say why
            log(f"{method}/{engine}: skipped, no bundle: {type(exc).__name__}: {exc}")
            skipped.append({"method": method, "engine": engine, "reason": f"no bundle: {exc}"})
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    from models.checkpoint import CARD, load_checkpoint
    methods = args.methods or [m for m in METHODS if (args.checkpoints / m / CARD).is_file()]
    missing = [m for m in methods if not (args.checkpoints / m / CARD).is_file()]
    if missing or not methods:
        log(f"no checkpoint for {missing or list(METHODS)} under {args.checkpoints}: train them with "
            f"`make reproduce` (or `make demo` for quick ones), or pass --checkpoints DIR")
        return 2
    info = machine.machine_info(args.threads)       # load average before our own work starts
    requests = workload.sample_requests(args.requests, args.seed)
    log(f"{len(requests)} test pairs over {len({r.domain for r in requests})} domains, batch sizes {args.batch_sizes}, "
        f"{args.repeats} rounds after {args.warmup} warm-up, {args.threads} threads")
    skipped, plans, costs, counts, lengths = [], {}, {}, {}, {}
    for method in methods:
        checkpoint = (args.checkpoints / method).resolve()
        ckpt = load_checkpoint(checkpoint, expect_method=method)
        costs[method], counts[method] = workload.method_cost(ckpt), workload.count_tokens(ckpt, requests)
        lengths[method] = ckpt.card.max_length
        del ckpt
        plans[method] = plan_engines(args, method, checkpoint, skipped)
    int8 = any("routerm-ort-int8" in p for p in plans.values())
    first = costs[methods[0]]
    rows = workload.typical_gemm_rows(counts[methods[0]], max(args.batch_sizes))
    shapes = machine.gemm_shapes(rows, first.hidden, first.intermediate)
    log(f"GEMM limit on (M, K, N) = {shapes} with {args.threads} threads")
    gemm = [dict(r, when="start") for r in machine.measure_gemm(shapes, args.threads, int8, repeats=args.gemm_repeats)]

    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    if ctx.get_start_method() == "forkserver":  # import torch/ORT/transformers once; workers fork from it
        ctx.set_forkserver_preload(["benchmarks.latency_engines"])
    records = []
    for method in methods:
        records += measure_method(ctx, method, plans[method], (args.checkpoints / method).resolve(), requests,
                                  costs[method], counts[method], args, skipped)
    gemm += [dict(r, when="end") for r in machine.measure_gemm(shapes, args.threads, int8, repeats=args.gemm_repeats)]
    results = report.assemble(info, gemm, records, skipped, {
        "methods": methods, "engines": args.engines, "batch_sizes": args.batch_sizes, "requests": len(requests),
        "repeats": args.repeats, "warmup": args.warmup, "threads": args.threads, "quick": args.quick,
        "checkpoints": str(args.checkpoints), "bundles": str(args.bundles), "seed": args.seed,
        "spin_gap_s": SPIN_GAP_S, "start_method": ctx.get_start_method(),
        "max_length": lengths})
    brief = {k: results["machine"][k] for k in ("cpu", "threads", "gemm_gflops_fp32", "onnxruntime", "torch")}
    for record in results["records"]:     # one JSON line per setup (STYLE.md)
        print(json.dumps({**record, "machine": brief}), flush=True)
    paths = report.write_all(results, args.out)
    log("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
