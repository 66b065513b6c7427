"""``results/latency.{json,md,png}`` from the records of ``benchmarks/latency.py``; targets reported, never asserted.

``latency.json``::

    {"machine": {"cpu", "threads", "gemm_gflops_fp32", "gemm_gops_int8", ...versions},
     "config": {...}, "gemm": [{"dtype", "library", "M", "K", "N", "ms", "gflops", "when"}],
     "records": [{"engine", "method", "batch_size", "p50_ms", "p95_ms", "pairs_per_s", "peak_rss_mb",
                  "load_s", "accuracy", "gflops_effective", "params_total", "params_active",
                  "gemm_fraction", ...}],
     "skipped": [{"method", "engine", "reason"}], "targets": [{"target", "value", "goal", "met", ...}]}

``latency.md`` has no title and ``####`` sections, so it reads alone and inside a README section;
``readme_block`` is the shorter part for the README (the latency table and the targets).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.latency_machine import best

REQUIRED_KEYS = ("engine", "method", "batch_size", "p50_ms", "p95_ms", "pairs_per_s", "peak_rss_mb", "load_s",
                 "accuracy", "gflops_effective", "params_total", "params_active")
METHOD_ORDER = ("baseline", "more", "rodos", "arliss")
INT8_ENGINES = ("routerm-ort-int8", "optimum-ort-int8-dynamic")   # set against the int8 GEMM rate too


def _in_order(items) -> list:
    return list(dict.fromkeys(items))


def assemble(machine: dict, gemm: list[dict], records: list[dict], skipped: list[dict], config: dict) -> dict:
    fp32, int8 = best(gemm, "fp32"), best(gemm, "int8")
    top = max((g for g in gemm if g["dtype"] == "fp32"), key=lambda g: g["gflops"], default=None)
    machine = {**machine, "gemm_gflops_fp32": fp32, "gemm_gops_int8": int8,
               "gemm_best_fp32": None if top is None else {k: top[k] for k in ("library", "M", "K", "N", "when")}}
    for r in records:
        r["gemm_fraction"] = round(r["gflops_effective"] / fp32, 4) if fp32 else None
        if r["engine"] in INT8_ENGINES and int8:
            r["gemm_fraction_int8"] = round(r["gflops_effective"] / int8, 4)
    return {"machine": machine, "config": config, "gemm": gemm, "records": records, "skipped": skipped,
            "targets": targets(records)}


# --- targets: the serving goals RouteRM set itself, reported against each run -------------------

def _get(records, method, engine, batch=None):
    for r in records:
        if r["method"] == method and r["engine"] == engine and (batch is None or r["batch_size"] == batch):
            return r
    return None


def targets(records: list[dict]) -> list[dict]:
    """Each serving target at the largest batch size measured (32 in a full run), or per batch size."""
    out = []
    sizes = sorted({r["batch_size"] for r in records})
    if not sizes:
        return out
    big = 32 if 32 in sizes else sizes[-1]

    def add(name, value, goal, better, **where):
        met = None if value is None else (value >= goal if better == "higher" else value <= goal)
        out.append({"target": name, **where, "value": None if value is None else round(value, 3),
                    "goal": goal, "met": met})

    peft = _get(records, "arliss", "peft-eager", big)
    for engine, goal in (("routerm-ort-fp32", 3.0), ("routerm-ort-optimized", 3.0), ("routerm-ort-int8", 6.0)):
        r = _get(records, "arliss", engine, big)
        if peft and r:
            add(f"ARLISS {engine} pairs/s vs peft-eager", r["pairs_per_s"] / peft["pairs_per_s"], goal, "higher",
                batch_size=big)
            add(f"ARLISS {engine} accuracy - peft-eager (points)", 100 * abs(r["accuracy"] - peft["accuracy"]),
                0.5, "lower", batch_size=big)
    for b in sizes:
        sw, merged = _get(records, "arliss", "routerm-ort-optimized", b), _get(records, "arliss", "routerm-ort-merged", b)
        if sw and merged:
            add("ARLISS per-row adapters: routerm-ort-optimized / routerm-ort-merged p50", sw["p50_ms"] / merged["p50_ms"], 1.10, "lower",
                batch_size=b)
    for method in METHOD_ORDER:
        for engine in ("routerm-ort-fp32", "routerm-ort-optimized"):
            r = _get(records, method, engine, big)
            if r and r.get("gemm_fraction") is not None:
                add(f"{method} {engine} share of GEMM GFLOP/s", r["gemm_fraction"], 0.70, "higher", batch_size=big)
    for b in sizes:
        more, base = _get(records, "more", "routerm-ort-optimized", b), _get(records, "baseline", "routerm-ort-optimized", b)
        if more and base:
            add("MoRE / baseline p50 (routerm-ort-optimized)", more["p50_ms"] / base["p50_ms"], 1.3, "lower", batch_size=b)
    arl, base = _get(records, "arliss", "routerm-ort-optimized"), _get(records, "baseline", "routerm-ort-optimized")
    if arl and base:
        add("ARLISS / baseline peak RSS (routerm-ort-optimized)", arl["peak_rss_mb"] / base["peak_rss_mb"], 1.15, "lower")
        if base.get("model_rss_mb"):
            add("ARLISS / baseline model RSS (peak minus libraries)", arl["model_rss_mb"] / base["model_rss_mb"],
                1.15, "lower")
    return out


# --- markdown --------------------------------------------------------------------------------------

def _fmt(value, digits=1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list], text_columns: int = 2) -> str:
    """Markdown table: the first ``text_columns`` columns left-aligned, numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def paired_speedup(mine_ms: list[float], theirs_ms: list[float]) -> dict | None:
    """How much faster ``mine`` is than ``theirs``, round by round (the rounds interleave the engines):
    ``{"median", "low", "high", "verdict"}``, verdict "within noise" when the per-round ratios straddle 1."""
    ratios = sorted(t / m for m, t in zip(mine_ms, theirs_ms))
    if not ratios:
        return None
    median = statistics.median(ratios)
    verdict = "within noise" if ratios[0] <= 1.0 <= ratios[-1] else "faster" if median > 1 else "SLOWER"
    return {"median": median, "low": ratios[0], "high": ratios[-1], "verdict": verdict}


def int8_table(records: list[dict]) -> str | None:
    """routerm-ort-int8 against routerm-ort-fp32 (same method, batch and rounds)."""
    rows = []
    for r in records:
        if r["engine"] != "routerm-ort-int8":
            continue
        fp32 = _get(records, r["method"], "routerm-ort-fp32", r["batch_size"])
        s = fp32 and paired_speedup(r["round_ms"], fp32["round_ms"])
        if s:
            rows.append([r["method"], r["batch_size"], f"{s['median']:.2f}x", f"{s['low']:.2f}-{s['high']:.2f}x",
                         s["verdict"], _fmt(r["accuracy"] - fp32["accuracy"], 3)])
    return _table(["method", "batch", "int8 speed-up (median)", "per-round range", "verdict", "accuracy - fp32"],
                  rows) if rows else None


def latency_table(records: list[dict]) -> str:
    header = ["method", "engine", "batch", "p50 ms", "p95 ms", "pairs/s", "GFLOP/s", "% GEMM", "accuracy"]
    rows = [[r["method"], r["engine"], r["batch_size"], _fmt(r["p50_ms"]), _fmt(r["p95_ms"]), _fmt(r["pairs_per_s"]),
             _fmt(r["gflops_effective"]), _fmt(None if r.get("gemm_fraction") is None else 100 * r["gemm_fraction"], 0),
             _fmt(r["accuracy"], 3)] for r in records]
    return _table(header, rows)


def engine_table(records: list[dict]) -> str:
    seen, rows = set(), []
    for r in records:
        if (r["method"], r["engine"]) in seen:
            continue
        seen.add((r["method"], r["engine"]))
        rows.append([r["method"], r["engine"], r.get("bundle") or "-", _fmt(r["accuracy"], 3), _fmt(r["peak_rss_mb"], 0),
                     _fmt(r.get("model_rss_mb"), 0), _fmt(r["load_s"], 2), f"{r['params_total']:,}",
                     f"{r['params_active']:,}"])
    return _table(["method", "engine", "bundle", "accuracy", "peak RSS MB", "model RSS MB", "load s",
                   "params total", "params active"], rows)


def targets_table(items: list[dict]) -> str:
    rows = [[t["target"], t.get("batch_size", "-"), _fmt(t["value"], 3), t["goal"],
             {True: "yes", False: "**no**", None: "-"}[t["met"]]] for t in items]
    return _table(["target", "batch", "measured", "goal", "met"], rows, text_columns=1)


def gemm_table(gemm: list[dict]) -> str:
    rows = [[g["dtype"], g["library"], f"{g['M']}x{g['K']}x{g['N']}", g.get("when", "-"), _fmt(g["ms"], 3),
             _fmt(g["gflops"])] for g in gemm]
    return _table(["dtype", "library", "M x K x N", "when", "ms", "GFLOP/s (int8: GOP/s)"], rows, text_columns=4)


def _run_kind(config: dict) -> str:
    if config.get("quick"):
        return "--quick, not a measurement"
    return "full run" if config.get("repeats", 0) >= 15 else f"{config.get('repeats')} rounds, fewer than --full's 15"


def markdown(results: dict) -> str:
    m, c = results["machine"], results["config"]
    int8 = int8_table(results["records"])
    parts = [
        f"Generated by `python benchmarks/latency.py` ({_run_kind(c)}). "
        f"Machine: {m['cpu']}, {m['threads']} threads, load average {_fmt(m.get('load_avg_1m_at_start'), 2)} at the start; "
        f"onnxruntime {m.get('onnxruntime')}, torch {m.get('torch')}. "
        f"Best dense fp32 GEMM: **{_fmt(m['gemm_gflops_fp32'])} GFLOP/s** "
        f"({(m.get('gemm_best_fp32') or {}).get('library', '-')}); int8: {_fmt(m.get('gemm_gops_int8'))} GOP/s.",
        f"{c['requests']} real test pairs (all domains, shuffled), batch = pairs per call (2 rows each), "
        f"{c['repeats']} interleaved rounds after {c['warmup']} warm-up; p50/p95 over rounds; pairs/s and GFLOP/s "
        f"are medians of per-call rates; GFLOP/s counts real tokens only (see benchmarks/latency_workload.py); "
        f"% GEMM is GFLOP/s over the best fp32 GEMM rate. Each engine runs in its own process, engines of a method "
        f"take turns (order rotated each round) and the runner waits {c.get('spin_gap_s', 0) * 1e3:.0f} ms after "
        f"every call so ONNX Runtime's spinning workers idle before the next one; times are of `score` alone "
        f"(text in, rewards out, tokenization included).",
        "#### Latency and throughput", latency_table(results["records"]),
        "#### Per engine", engine_table(results["records"]),
        "Peak RSS: the engine's own process (libraries included, the same for all); model RSS: peak minus the "
        "resident set after imports.",
        *(["#### int8 over fp32 (routerm-ort-int8 vs routerm-ort-fp32, round by round)", int8] if int8 else []),
        "#### Targets (reported, not asserted)", targets_table(results["targets"]) if results["targets"] else "none measurable in this run",
        "#### Machine limit: dense GEMM", gemm_table(results["gemm"]),
    ]
    if results["skipped"]:
        parts += ["#### Skipped", _table(["method", "engine", "reason"],
                                       [[s["method"], s["engine"], s["reason"].replace("|", "/")[:300]] for s in results["skipped"]],
                                       text_columns=3)]
    return "\n\n".join(parts) + "\n"


def readme_block(results: dict, plot: str | None = None) -> str:
    """What the README shows: one line on the machine, the latency table, the targets (and the plot)."""
    m, c = results["machine"], results["config"]
    head = (f"{m['cpu']}, {m['threads']} threads, best dense fp32 GEMM {_fmt(m['gemm_gflops_fp32'])} GFLOP/s; "
            f"{c['requests']} test pairs, {c['repeats']} interleaved rounds"
            f"{' (--quick: not a measurement)' if c.get('quick') else ''}. Details: `results/latency.md`.")
    parts = [head, latency_table(results["records"])]
    if results["targets"]:
        parts.append(targets_table(results["targets"]))
    if plot:
        parts.append(f"![latency and throughput per engine]({plot})")
    return "\n\n".join(parts)


# --- plot ------------------------------------------------------------------------------------------

def plot(results: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = results["records"]
    methods = _in_order(r["method"] for r in records)
    engines = _in_order(r["engine"] for r in records)
    if not methods:
        return
    colors = {e: plt.get_cmap("tab10")(i % 10) for i, e in enumerate(engines)}
    fig, axes = plt.subplots(2, len(methods), figsize=(max(4.2 * len(methods), 8.0), 7.5), squeeze=False)
    for col, method in enumerate(methods):
        top, bottom = axes[0][col], axes[1][col]
        for engine in engines:
            rs = sorted((r for r in records if r["method"] == method and r["engine"] == engine),
                        key=lambda r: r["batch_size"])
            if not rs:
                continue
            xs = [r["batch_size"] for r in rs]
            top.plot(xs, [r["pairs_per_s"] for r in rs], "o-", color=colors[engine], label=engine)
            bottom.plot(xs, [r["p50_ms"] for r in rs], "o-", color=colors[engine], label=f"{engine} p50")
            bottom.plot(xs, [r["p95_ms"] for r in rs], "v--", color=colors[engine], alpha=0.6)
        sizes = sorted({r["batch_size"] for r in records})
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(sizes, [str(b) for b in sizes])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")   # 600, not 6x10^2
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
            ax.set_xlabel("batch size (pairs)")
            ax.grid(True, which="both", alpha=0.3)
        top.set_title(method)
        top.set_ylabel("throughput (pairs/s)")
        bottom.set_ylabel("latency ms (solid p50, dashed p95)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False)
    m = results["machine"]
    fig.suptitle(f"RouteRM engines on {m['cpu']} ({m['threads']} threads)\nbest dense fp32 GEMM "
                 f"{_fmt(m['gemm_gflops_fp32'])} GFLOP/s" + (" (--quick: not a measurement)" if results["config"].get("quick") else ""),
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(results: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "latency.json", out / "latency.md", out / "latency.png"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(results), encoding="utf-8")
    plot(results, paths[2])
    return paths
