"""The run loop of ``benchmarks/latency.py``: engine workers, interleaved timed rounds, one record per setup.

Each engine runs in its own process (:class:`Worker`, the process body is
``benchmarks.latency_engines.worker_main``), loaded one at a time, so its load time and peak
memory are its own. The requests are scored once per engine untimed (warm-up, and the accuracy
figure), then ``args.warmup`` discarded rounds, then ``args.repeats`` rounds; a round asks every
engine of the method, in an order rotated each round, for one call per batch size (round ``r``
uses batch ``r mod n_batches``: all engines see the same inputs). After every call the parent
waits ``SPIN_GAP_S``: ONNX Runtime's workers keep spinning ~25 ms after a run and would steal a
core from the next engine. An engine that fails to load or dies mid-run is recorded in
``skipped`` with its reason; the run goes on.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import latency_workload as workload

SPIN_GAP_S = 0.03
WORKER_TIMEOUT_S = 1800


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


def _skip(skipped: list, method: str, engine: str, reason: str, what: str) -> None:
    log(f"{method}/{engine}: {what}: {reason}")
    skipped.append({"method": method, "engine": engine, "reason": reason})


def load_workers(ctx, method: str, engines: dict, graph_dirs: dict, common: dict, batch: int,
                 skipped: list) -> tuple[dict, dict]:
    """Start every engine's worker (one at a time: load times are not shared) and score every
    request once, untimed: warm-up and the accuracy figure. Returns ``({engine: Worker}, {engine: info})``."""
    workers, info = {}, {}
    n = len(common["requests"])
    for engine, bundle in engines.items():
        graphs = graph_dirs.get(engine)
        worker = Worker(ctx, engine, {**common, "bundle": str(bundle) if bundle else None,
                                      "graphs": str(graphs) if graphs else None})
        try:
            reply = worker.ask()
        except RuntimeError as exc:
            reply = {"ok": False, "error": str(exc)}
        if not reply["ok"]:
            _skip(skipped, method, engine, reply["error"], "skipped, failed to load")
            worker.close()
            continue
        log(f"{method}/{engine}: loaded in {reply['load_s']:.2f}s" + (f" from {bundle}" if bundle else "")
            + (f" (graphs {graphs})" if graphs else ""))
        correct = 0
        try:
            for rows in [list(range(s, min(s + batch, n))) for s in range(0, n, batch)]:
                out = worker.ask("score", rows)
                correct += int(np.sum(np.asarray(out["chosen"]) > np.asarray(out["rejected"])))
        except RuntimeError as exc:
            _skip(skipped, method, engine, str(exc), "skipped, failed while scoring")
            worker.close()
            continue
        workers[engine] = worker
        info[engine] = {"load_s": reply["load_s"], "accuracy": correct / n, "bundle": Path(bundle).name if bundle else None}
    return workers, info


def time_rounds(method: str, workers: dict, per_size: dict, cost, counts, requests, args, skipped: list,
                bar=None) -> tuple[dict, dict]:
    """The interleaved rounds: ``({(engine, B): [ms]}, {(engine, B): [useful FLOPs]})`` after the warm-up
    rounds. A worker that fails mid-run leaves ``workers``."""
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
                    _skip(skipped, method, engine, str(exc), "dropped mid-run")
                    workers.pop(engine).close()
                    continue
                time.sleep(SPIN_GAP_S)
                if round_ >= args.warmup:
                    times[(engine, b)].append(ms)
                    flops[(engine, b)].append(work)
        if bar is not None:
            bar.update(1)
    return times, flops


def measure_method(ctx, method: str, engines: dict, checkpoint: Path, requests, cost, counts, args,
                   skipped: list, bar=None, graph_dirs: dict | None = None) -> list[dict]:
    """Load ``engines`` ({engine: bundle or None}; ``graph_dirs``: {engine: graphs built at benchmark
    time}), score, time interleaved; one record per (engine, batch size)."""
    texts = [(r.prompt, r.chosen, r.rejected) for r in requests]
    common = {"checkpoint": str(checkpoint), "threads": args.threads, "requests": texts}
    workers, info = load_workers(ctx, method, engines, graph_dirs or {}, common, max(args.batch_sizes), skipped)
    per_size = {b: workload.batches(len(texts), b) for b in args.batch_sizes}
    times, flops = time_rounds(method, workers, per_size, cost, counts, requests, args, skipped, bar)
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
                "tokens_real_mean": round(statistics.mean(workload.batch_tokens(counts, r) for r in per_size[b]), 1),
            })
    return records
