"""``make demo``: quick training of all four methods, then rewards for a held-out example per domain.

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
from training.config import QUICK  # noqa: E402
from training.data import load_splits  # noqa: E402
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
        for domain in ckpt.domains:
            pair = splits[domain]["test"][0]
            routed = domain
            if method in ("rodos", "arliss"):
                routed = ckpt.domains[int(route(ckpt, [pair.prompt])[0])]
            c, r = pair_rewards(ckpt, [pair], routed if method in ("rodos", "arliss") else None)
            print(f"  {method:8s} {domain:22s} routed={routed:22s} chosen={c.item():+.3f} rejected={r.item():+.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoints", default="checkpoints")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    splits = load_splits()
    paths = ensure_checkpoints(splits, args.checkpoints)
    show_torch_rewards(paths, splits)
    print(f"\n[demo] done in {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
