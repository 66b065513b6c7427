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
one is exported with ``export.to_onnx.export_bundle`` into ``DIR/<default name>``, saying so::

    routerm-ort-fp32       fp32 graph as exported, no export-time fusion (``<method>-noopt``)
    routerm-ort-optimized  the default bundle (``<method>``): fusion kept where measured faster
    routerm-ort-int8       ``<method>-int8`` (rowwise int8, export.optimize; ARLISS switchable like the two above)
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

Presets (``--quick``, default, ``--full``; the run prints which and how many timed calls it makes):
the default is a first look, RouteRM's default fp32 bundle and int8 against the eager and Optimum
baselines at batch 1 and 32 (``DEFAULT``); ``--full`` is every engine at 1, 8 and 32 with 15 rounds
(hours on 2 cores). Results go to ``results/runs/<timestamp>/`` unless ``--out`` says otherwise, so
only ``--full --out results`` replaces the committed tables. Progress bars (tqdm, time left) cover
exports, the GEMM limit and the rounds; library output during exports (ONNX Runtime's quantizer
and tracer warnings) goes to ``<out>/export.log`` and is summarised in one line. The run ends with a
summary per method: RouteRM's speed-up over each baseline engine (median and range over rounds),
accuracies, and the load average at the start, with a warning above 0.5.
"""
from __future__ import annotations

import argparse
import contextlib
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
from models.checkpoint import EVAL_FILE  # noqa: E402
from models.more import EXPORT_MODES  # noqa: E402
from core.manifest import METHODS  # noqa: E402
from core.scoring import DEFAULT_MAX_TOKENS  # noqa: E402

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
ROUTERM = ("routerm-ort-fp32", "routerm-ort-optimized", "routerm-ort-int8", "routerm-ort-merged", "routerm-torch")
BASELINES = ("hf-eager", "peft-eager", "optimum-ort")
FULL = {"name": "full", "batch_sizes": (1, 8, 32), "requests": 320, "repeats": 15, "warmup": 2, "gemm_repeats": 15,
        "engines": tuple(ENGINES)}
DEFAULT = {"name": "default", "batch_sizes": (1, 32), "requests": 64, "repeats": 4, "warmup": 1, "gemm_repeats": 5,
           "engines": ("routerm-ort-optimized", "routerm-ort-int8", "hf-eager", "peft-eager", "optimum-ort")}
QUICK = {"name": "quick", "batch_sizes": (1, 4), "requests": 8, "repeats": 2, "warmup": 1, "gemm_repeats": 3,
         "engines": tuple(ENGINES)}
HIGH_LOAD = 0.5


def log(message: str) -> None:
    from tqdm import tqdm
    tqdm.write(f"[latency] {message}", file=sys.stderr)


@contextlib.contextmanager
def captured_output(log_path: Path):
    """Send everything written to fd 1/2 (Python and C++ libraries alike) to ``log_path``; yields a
    list that receives the number of lines captured."""
    lines = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as fh:
        start = fh.tell()
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    with open(log_path, encoding="utf-8", errors="replace") as fh:
        fh.seek(start)
        lines.append(sum(1 for line in fh if line.strip()))


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
    p.add_argument("--more-experts", choices=EXPORT_MODES, default="sparse",
                   help="MoRE's ONNX graph: each token through its top-k experts (sparse) or every expert (dense)")
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


# --- bundles ---------------------------------------------------------------------------------------

def _checkpoint_mtime(checkpoint: Path) -> float:
    """When the checkpoint's exported content last changed: its newest file but the test evaluation
    (``make reproduce`` writes that after training; re-exporting for it would change nothing)."""
    return max(p.stat().st_mtime for p in checkpoint.rglob("*") if p.is_file() and p.name != EVAL_FILE)


def find_bundle(bundles: Path, method: str, spec: tuple, checkpoint: Path, any_fusion: bool = False,
                more_experts: str = "sparse") -> Path | None:
    """A bundle under ``bundles`` exported from ``checkpoint`` (and newer than it) with ``spec``
    (``any_fusion``: whatever its export-time optimization; MoRE: its ``more_experts`` graph)."""
    precision, lora, optimize = spec
    fresh_after = _checkpoint_mtime(checkpoint)
    for manifest in sorted(bundles.glob("*/manifest.json")):
        raw = json.loads(manifest.read_text(encoding="utf-8"))
        export = raw.get("export", {})
        if (raw.get("method") == method and raw.get("precision") == precision
                and (method != "arliss" or raw.get("lora") == lora) and (any_fusion or bool(export.get("optimize")) == optimize)
                and Path(export.get("source_checkpoint", "")).resolve() == checkpoint.resolve()
                and (method != "more" or export.get("more_experts") == more_experts)
                and manifest.stat().st_mtime >= fresh_after):
            return manifest.parent
    return None


def export_missing(bundles: Path, method: str, spec: tuple, checkpoint: Path, quick: bool, export_log: Path,
                   more_experts: str = "sparse") -> Path:
    """Export the bundle ``spec`` of ``method`` into ``bundles/<default name>``; library output goes to ``export_log``."""
    from export.to_onnx import default_out, export_bundle
    precision, lora, optimize = spec
    optimize = optimize and not quick
    experts = more_experts if method == "more" else "sparse"
    out = bundles / default_out(method, lora, precision, optimize, experts).name
    why = "exists but was made from another or an older checkpoint" if (out / "manifest.json").is_file() else "is missing"
    log(f"bundle {out} ({method} {precision} lora={lora} optimize={optimize}) {why}: exporting it from {checkpoint}")
    start = time.perf_counter()
    with captured_output(export_log) as captured:
        # 60 validation pairs per domain for the export's accuracy check, as scripts/post_reproduce.sh
        export_bundle(checkpoint, out, method=method, lora=lora, precision=precision, optimize=optimize, val_pairs=60,
                      more_experts=experts)
    log(f"exported {out} in {time.perf_counter() - start:.0f}s ({captured[0]} lines of library output in {export_log})")
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
                   skipped: list, bar=None) -> list[dict]:
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
        if bar is not None:
            bar.update(1)
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
                "round_ms": [round(float(t), 3) for t in ms],
                "bundle": info[engine]["bundle"], "requests": len(texts),
                "tokens_real_mean": round(statistics.mean(
                    workload.batch_tokens(counts, r) for r in per_size[b]), 1),
            })
    return records


# --- main ------------------------------------------------------------------------------------------

def plan_engines(args, method: str, checkpoint: Path) -> tuple[dict, list]:
    """``({engine: bundle path, None (no bundle) or a spec to export}, [(engine, spec) to export])``."""
    out, missing = {}, []
    for engine in args.engines:
        methods, spec = PLAN[engine]
        if method not in methods:
            continue
        if spec is None:
            out[engine] = None
            continue
        if method != "arliss":
            spec = (spec[0], "switchable", spec[2])      # the LoRA mode means nothing without adapters
        found = find_bundle(args.bundles, method, spec, checkpoint, any_fusion=args.quick,
                            more_experts=args.more_experts)
        out[engine] = found if found is not None else spec
        if found is None and spec not in [m for _, m in missing]:
            missing.append((engine, spec))
    return out, missing


def build_bundles(args, plans: dict, missing: dict, skipped: list) -> None:
    """Export every missing bundle (one progress bar); a refused export is one line in ``skipped``."""
    from tqdm import tqdm

    from export.validate import ExportValidationError
    todo = [(method, engine, spec) for method, items in missing.items() for engine, spec in items]
    if not todo:
        return
    log(f"{len(todo)} bundle(s) to export first (existing bundles in {args.bundles} are reused)")
    made = {}
    for method, engine, spec in tqdm(todo, desc="exports", unit="bundle", file=sys.stderr):
        checkpoint = (args.checkpoints / method).resolve()
        try:
            made[(method, spec)] = export_missing(args.bundles, method, spec, checkpoint, args.quick,
                                                  args.out / "export.log", args.more_experts)
        except (ValueError, OSError, ExportValidationError) as exc:  # e.g. int8 refused by its guard: say why
            reason = f"no bundle: {type(exc).__name__}: {exc}"
            log(f"{method}/{engine}: skipped, {reason}")
            made[(method, spec)] = reason
    for method, plan in plans.items():
        for engine, target in list(plan.items()):
            if isinstance(target, tuple):
                result = made[(method, target)]
                if isinstance(result, str):
                    skipped.append({"method": method, "engine": engine, "reason": result})
                    del plan[engine]
                else:
                    plan[engine] = result


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
    calls = len(methods) * (args.warmup + args.repeats) * len(args.batch_sizes)
    log(f"preset '{args.preset}': {len(methods)} method(s), engines {list(args.engines)}, batch sizes {args.batch_sizes}, "
        f"{len(requests)} test pairs, {args.repeats} rounds after {args.warmup} warm-up ({calls} calls per engine), "
        f"{args.threads} threads; results to {args.out}")
    if info.get("load_avg_1m_at_start", 0) > HIGH_LOAD:
        log(f"WARNING: load average {info['load_avg_1m_at_start']} > {HIGH_LOAD}: other work is running, timings will be slow")
    skipped, plans, missing, costs, counts, lengths = [], {}, {}, {}, {}, {}
    for method in methods:
        checkpoint = (args.checkpoints / method).resolve()
        ckpt = load_checkpoint(checkpoint, expect_method=method)
        costs[method], counts[method] = workload.method_cost(ckpt), workload.count_tokens(ckpt, requests)
        lengths[method] = ckpt.card.max_length
        del ckpt
        plans[method], missing[method] = plan_engines(args, method, checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    build_bundles(args, plans, missing, skipped)
    int8 = any("routerm-ort-int8" in p for p in plans.values())
    first = costs[methods[0]]
    # Best of two sizes: a whole call's padded tokens (the eager engines' one batch) and RouteRM's
    # micro-batch (DEFAULT_MAX_TOKENS rows at most), where the GEMMs run faster in cache.
    rows = workload.typical_gemm_rows(counts[methods[0]], max(args.batch_sizes))
    shapes = [s for m in dict.fromkeys((rows, DEFAULT_MAX_TOKENS))
              for s in machine.gemm_shapes(m, first.hidden, first.intermediate)]
    log(f"GEMM limit on (M, K, N) = {shapes} with {args.threads} threads")
    gemm = [dict(r, when="start") for r in machine.measure_gemm(shapes, args.threads, int8, repeats=args.gemm_repeats)]

    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    if ctx.get_start_method() == "forkserver":  # import torch/ORT/transformers once; workers fork from it
        ctx.set_forkserver_preload(["benchmarks.latency_engines"])
    from tqdm import tqdm
    records = []
    with tqdm(total=len(methods) * (args.warmup + args.repeats), desc="rounds", unit="round", file=sys.stderr) as bar:
        for method in methods:
            bar.set_postfix_str(method)
            records += measure_method(ctx, method, plans[method], (args.checkpoints / method).resolve(), requests,
                                      costs[method], counts[method], args, skipped, bar)
    gemm += [dict(r, when="end") for r in machine.measure_gemm(shapes, args.threads, int8, repeats=args.gemm_repeats)]
    results = report.assemble(info, gemm, records, skipped, {
        "preset": args.preset, "methods": methods, "engines": list(args.engines), "batch_sizes": args.batch_sizes,
        "requests": len(requests), "repeats": args.repeats, "warmup": args.warmup, "threads": args.threads,
        "quick": args.quick, "checkpoints": str(args.checkpoints), "bundles": str(args.bundles), "seed": args.seed,
        "more_experts": args.more_experts, "spin_gap_s": SPIN_GAP_S, "start_method": ctx.get_start_method(),
        "max_length": lengths})
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
