"""``make reproduce``: train and evaluate all four methods, write results/accuracy.{json,md}.

Sized for a 2-core CPU in well under 90 minutes (see README): MiniLM-L6, max length 128,
``train_pairs_per_domain`` pairs a domain, one epoch; evaluation on the whole test split.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import transformers

from models.checkpoint import METHODS, load_checkpoint
from training.config import TrainConfig
from training.data import load_splits
from training.evaluate import evaluate
from training.methods import train

RESULTS = Path("results")
FULL = TrainConfig(train_pairs_per_domain=320, router_examples_per_domain=500, eval_pairs_per_domain=400,
                   max_length=128)


def render_markdown(results: dict) -> str:
    """The accuracy table (README and results/accuracy.md are generated from this)."""
    methods = results["methods"]
    domains = list(next(iter(methods.values()))["domains"])
    head = "| method | " + " | ".join(domains) + " | mean | params total | params active | train s |"
    lines = [head, "|" + "---|" * (len(domains) + 5)]
    for name, m in methods.items():
        cells = []
        for d in domains:
            e = m["domains"][d]
            cell = f"{100 * e['accuracy']:.1f}"
            if "oracle_accuracy" in e:
                cell += f" ({100 * e['oracle_accuracy']:.1f})"
            cells.append(cell)
        mean = f"{100 * m['mean_accuracy']:.1f}"
        if "mean_oracle_accuracy" in m:
            mean += f" ({100 * m['mean_oracle_accuracy']:.1f})"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} | {m['params_total'] / 1e6:.1f}M | "
                     f"{m['params_active'] / 1e6:.1f}M | {m['train_seconds']:.0f} |")
    out = "\n".join(lines)
    out += "\n\nPairwise accuracy (%) on the test split; routed methods show routed (oracle-domain) accuracy.\n"
    for name, r in results.get("router", {}).items():
        out += f"\n{name} router accuracy: {100 * r['accuracy']:.1f}% (confusion rows = true domain, columns = routed: "
        out += ", ".join(domains) + ")\n\n"
        out += "\n".join("    " + " ".join(f"{v:5d}" for v in row) for row in r["confusion"]) + "\n"
    cfg = results["config"]
    out += (f"\nConfig: base {Path(cfg['base_model']).name if cfg['base_model'] else 'all-MiniLM-L6-v2'}, "
            f"max_length {cfg['max_length']}, {cfg['train_pairs_per_domain']} train pairs/domain, "
            f"{cfg['epochs']} epoch(s), {results['machine']['threads']} CPU threads.\n")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--pairs-per-domain", type=int, default=FULL.train_pairs_per_domain)
    parser.add_argument("--skip-train", action="store_true", help="evaluate existing checkpoints only")
    args = parser.parse_args(argv)
    cfg = FULL.with_(train_pairs_per_domain=args.pairs_per_domain)
    splits = load_splits(cfg.domains)
    RESULTS.mkdir(exist_ok=True)
    results = {"methods": {}, "router": {}, "config": {**cfg.to_dict(), "base_model": cfg.base_model},
               "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                           "torch": torch.__version__, "transformers": transformers.__version__}}
    start = time.perf_counter()
    for method in args.methods.split(","):
        if not args.skip_train:
            stats = train(method, splits, cfg)
            print(f"[reproduce] {method}: trained in {stats['wall_seconds']:.0f}s", flush=True)
        ckpt = load_checkpoint(cfg.method_dir(method), method)
        t0 = time.perf_counter()
        res = evaluate(ckpt, splits, cfg.eval_pairs_per_domain)
        entry = res["method"]
        entry["train_seconds"] = ckpt.card.extra["train"]["train_seconds"]
        entry["eval_seconds"] = time.perf_counter() - t0
        entry["train"] = ckpt.card.extra["train"]
        results["methods"][method] = entry
        if res["router"]:
            results["router"][method] = res["router"]
        print(f"[reproduce] {method}: mean accuracy {entry['mean_accuracy']:.3f}", flush=True)
        (RESULTS / "accuracy.json").write_text(json.dumps(results, indent=1))
    results["wall_seconds"] = time.perf_counter() - start
    (RESULTS / "accuracy.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "accuracy.md").write_text(render_markdown(results))
    print(render_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
