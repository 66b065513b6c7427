"""``make demo``: train (quick) -> export (ONNX bundles) -> serve (RewardEngine), all four methods.

Checkpoints already in ``checkpoints/<method>`` (e.g. from ``make reproduce``) are used as they
are; missing ones are trained with the quick config (a small subset, minutes on a CPU) into the
same place, so ``python export/to_onnx.py --method arliss`` finds them afterwards.

It shows one held-out test pair per domain, then closes with what one pair cannot show: each
bundle's accuracy on a few hundred held-out test pairs with its 95% interval (core.stats), and
what the full recipe reaches (results/accuracy.json, from ``make reproduce``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.data import load_splits
from core.manifest import METHODS
from core.stats import domain_and_mean_intervals, domain_mean
from lab.engine_accuracy import served_outcomes
from models.checkpoint import CARD, load_checkpoint
from models.runner import CheckpointRunner
from training.config import QUICK
from training.evaluate import pair_rewards, route
from training.methods import train

HELD_OUT_PER_DOMAIN = 60     # 300 test pairs over five domains: an interval of about +-6 points
FULL_RESULTS = Path(__file__).resolve().parents[1] / "results" / "accuracy.json"


def ensure_checkpoints(splits, out_dir: str) -> dict[str, Path]:
    cfg = QUICK.with_(out_dir=out_dir)
    paths = {}
    for method in METHODS:
        path = cfg.method_dir(method)
        if (path / CARD).is_file():
            print(f"[demo] {method}: using existing checkpoint {path}")
        else:
            print(f"[demo] {method}: no checkpoint at {path}; training the quick default "
                  f"({cfg.train_pairs_per_domain} pairs/domain, max_length {cfg.max_length})", flush=True)
            stats = train(method, splits, cfg)
            print(f"[demo] {method}: trained in {stats['wall_seconds']:.0f}s")
        paths[method] = path
    return paths


def show_torch_rewards(paths: dict[str, Path], splits) -> None:
    print("\n[demo] rewards from the trained PyTorch models, one held-out test pair per domain")
    for method, path in paths.items():
        ckpt = load_checkpoint(path, method)
        run = CheckpointRunner(ckpt)   # once per checkpoint (ARLISS: one copy of the stacked backbone)
        for domain in ckpt.domains:
            pair = splits[domain]["test"][0]
            routed = domain
            if run.layout.routed:
                routed = ckpt.domains[int(route(ckpt, [pair.prompt], run)[0])]
            c, r = pair_rewards(ckpt, [pair], routed if run.layout.routed else None, run)
            print(f"  {method:8s} {domain:22s} routed={routed:22s} chosen={c[0]:+.3f} rejected={r[0]:+.3f}")


def ensure_bundles(paths: dict[str, Path], splits, out_dir: str) -> Path:
    """fp32 bundles (ARLISS switchable) exported from the checkpoints, re-exported when stale."""
    from export.spec import ExportSpec
    from export.to_onnx import export_bundle
    root = Path(out_dir)
    for method, ckpt in paths.items():
        out = root / method
        fresh = (out / "manifest.json").is_file() and \
            (out / "manifest.json").stat().st_mtime > (ckpt / CARD).stat().st_mtime
        if fresh:
            print(f"[demo] {method}: using bundle {out}")
            continue
        print(f"[demo] {method}: exporting {ckpt} -> {out}", flush=True)
        start = time.perf_counter()
        export_bundle(ckpt, ExportSpec(method), out, splits=splits, val_pairs=24)
        print(f"[demo] {method}: exported and validated in {time.perf_counter() - start:.0f}s")
    return root


def serve(bundles: Path, splits) -> None:
    from runtime.demo import demo
    examples = [{"domain": d, "prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
                for d in splits for p in splits[d]["test"][:1]]
    print("\n[demo] RewardEngine (ONNX Runtime, CPU) on one held-out test pair per domain")
    demo(bundles, examples)


def show_held_out_accuracy(bundles: Path, splits, per_domain: int = HELD_OUT_PER_DOMAIN) -> dict[str, dict]:
    """Each bundle's pairwise accuracy over ``per_domain`` test pairs of every domain, with its interval."""
    from runtime import RewardEngine
    from runtime.demo import bundle_dirs
    print(f"\n[demo] accuracy on held-out test pairs ({per_domain} per domain, routing on), 95% bootstrap interval")
    out = {}
    for path in bundle_dirs(bundles):
        engine = RewardEngine.from_bundle(path)
        outcomes = served_outcomes(engine, splits, per_domain)
        correct = [c for o in outcomes["domains"].values() for c in o["correct"]]
        names = [d for d, o in outcomes["domains"].items() for _ in o["correct"]]
        mean, _ = domain_mean(correct, names)
        lo, hi = domain_and_mean_intervals(outcomes["domains"])["mean"]
        routed = "" if outcomes["router_accuracy"] is None else f"  router {outcomes['router_accuracy']:.0%}"
        print(f"  {path.name:16s} {mean:.3f} [{lo:.3f}, {hi:.3f}] over {len(correct)} pairs{routed}")
        out[path.name] = {"accuracy": mean, "interval": [lo, hi], "pairs": len(correct)}
    return out


def show_full_recipe(results: Path = FULL_RESULTS) -> None:
    """One line: what ``make reproduce`` (the full recipe) reached, from its committed results file."""
    if not results.is_file():
        return
    methods = json.loads(results.read_text())["methods"]
    figures = ", ".join(f"{m} {v['mean_accuracy']:.3f} [{v['mean_ci'][0]:.3f}, {v['mean_ci'][1]:.3f}]"
                        for m, v in methods.items())
    print(f"[demo] these are quick-trained models; the full recipe (make reproduce) reaches {figures} "
          f"on every test pair: see docs/accuracy.md")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoints", default="checkpoints")
    parser.add_argument("--bundles", default="bundles")
    parser.add_argument("--torch-only", action="store_true", help="skip export and the ONNX engine")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    splits = load_splits()
    paths = ensure_checkpoints(splits, args.checkpoints)
    show_torch_rewards(paths, splits)
    if not args.torch_only:
        bundles = ensure_bundles(paths, splits, args.bundles)
        serve(bundles, splits)
        show_held_out_accuracy(bundles, splits)
    show_full_recipe()
    print(f"\n[demo] done in {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
