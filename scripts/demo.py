"""``make demo``: train (quick) -> export (ONNX bundles) -> serve (RewardEngine), all four methods.

Checkpoints already in ``checkpoints/<method>`` (e.g. from ``make reproduce``) are used as they
are; missing ones are trained with the quick config (a small subset, minutes on a CPU) into the
same place, so ``python export/to_onnx.py --method arliss`` finds them afterwards.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.checkpoint import CARD, METHODS, load_checkpoint  # noqa: E402
from models.runner import CheckpointRunner  # noqa: E402
from training.config import QUICK  # noqa: E402
from core.data import load_splits  # noqa: E402
from training.evaluate import pair_rewards, route  # noqa: E402
from training.methods import train  # noqa: E402


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
        export_bundle(ckpt, out, method, splits=splits, val_pairs=24)
        print(f"[demo] {method}: exported and validated in {time.perf_counter() - start:.0f}s")
    return root


def serve(bundles: Path, splits) -> None:
    from runtime.demo import demo
    examples = [{"domain": d, "prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
                for d in splits for p in splits[d]["test"][:1]]
    print("\n[demo] RewardEngine (ONNX Runtime, CPU) on one held-out test pair per domain")
    demo(bundles, examples)


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
        serve(ensure_bundles(paths, splits, args.bundles), splits)
    print(f"\n[demo] done in {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
