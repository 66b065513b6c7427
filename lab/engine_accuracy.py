"""Served accuracy: the RewardEngine on each bundle vs the training-side figures in results/accuracy.json.

Scores the same test pairs that ``make reproduce`` evaluated (same split, same per-domain cap),
routing on (the engine picks the domain), and writes ``results/engine_accuracy.json``::

    {"<bundle>": {"method", "backend", "domains": {d: {"accuracy", "training_accuracy", "diff_points"}},
                  "max_abs_diff_points", "router_accuracy", "seconds"}}

:func:`served_outcomes` is also what ``make demo`` closes with (lab.demo).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.data import load_splits, take
from runtime import RewardEngine


def served_outcomes(engine: RewardEngine, splits: dict, cap: int | None) -> dict:
    """``{"domains": {d: {"correct": [0/1]*N, "groups": [prompt]*N}}, "router_accuracy"}`` for the
    first ``cap`` test pairs of each of the engine's domains (core.data.take), routing on.

    ``correct[i]`` is 1 when the chosen response outscores the rejected one; ``groups`` are the
    prompts, the unit core.stats resamples for its intervals. ``router_accuracy`` is the share of
    pairs a routed engine sent to the domain they came from (None for baseline and MoRE).
    """
    domains, routed_right, total = {}, 0, 0
    for domain in engine.domains:
        pairs = take(splits[domain]["test"], cap)
        prompts = [p.prompt for p in pairs]
        chosen = engine.score(prompts, [p.chosen for p in pairs])
        rejected = engine.score(prompts, [p.rejected for p in pairs])
        domains[domain] = {"correct": (chosen.rewards > rejected.rewards).astype(int).tolist(), "groups": prompts}
        if engine.manifest.routed:
            routed_right += sum(d == domain for d in chosen.domains)
            total += len(pairs)
    return {"domains": domains, "router_accuracy": routed_right / total if total else None}


def served_accuracy(bundle: Path, splits: dict, cap: int | None, backend: str) -> dict:
    engine = RewardEngine.from_bundle(bundle, backend=backend)
    start = time.perf_counter()
    outcomes = served_outcomes(engine, splits, cap)
    return {"method": engine.method, "backend": backend,
            "domains": {d: {"accuracy": float(np.mean(o["correct"])), "pairs": len(o["correct"])}
                        for d, o in outcomes["domains"].items()},
            "router_accuracy": outcomes["router_accuracy"], "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"])
    parser.add_argument("--accuracy", type=Path, default=Path("results/accuracy.json"))
    parser.add_argument("--out", type=Path, default=Path("results/engine_accuracy.json"))
    args = parser.parse_args(argv)
    reference = json.loads(args.accuracy.read_text())
    cap = reference["config"].get("eval_pairs_per_domain")
    splits = load_splits(tuple(reference["config"]["domains"]))
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for bundle in args.bundles:
        res = served_accuracy(bundle, splits, cap, args.backend)
        train_side = reference["methods"][res["method"]]["domains"]
        for domain, entry in res["domains"].items():
            entry["training_accuracy"] = train_side[domain]["accuracy"]
            entry["diff_points"] = 100 * (entry["accuracy"] - entry["training_accuracy"])
        res["max_abs_diff_points"] = max(abs(e["diff_points"]) for e in res["domains"].values())
        results[f"{bundle.name}:{args.backend}"] = res
        print(f"{bundle.name} ({args.backend}): max |served - training| = {res['max_abs_diff_points']:.2f} points "
              f"in {res['seconds']:.0f}s", flush=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
