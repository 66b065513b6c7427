"""Bundles of every method for the C library's tests.

    python tests/c/make_bundles.py --out DIR [--checkpoints DIR]

Writes DIR/{baseline,more,rodos,arliss-switchable,arliss-merged} with export.to_onnx.export_bundle.
Without --checkpoints, the checkpoints are tiny random BERTs (tests/tiny.py: 2 layers, hidden 32,
the real MiniLM WordPiece tokenizer) trained for a moment on the real five-domain data, so the
bundles are small and quick, and every code path of the real ones (routing over five domains,
truncation of real texts) is exercised. With --checkpoints DIR, DIR/<method> are used instead
(e.g. checkpoints/quick). A bundle whose manifest.json exists is kept (delete it to remake).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

BUNDLES = {   # bundle name -> (method, lora)
    "baseline": ("baseline", "switchable"),
    "more": ("more", "switchable"),
    "rodos": ("rodos", "switchable"),
    "arliss-switchable": ("arliss", "switchable"),
    "arliss-merged": ("arliss", "merged"),
}


def tiny_checkpoints(root: Path) -> Path:
    """Train tiny checkpoints of the four methods on the real data into root/ckpt/<method>."""
    from tiny import tiny_base
    from training.config import TrainConfig
    from training.data import load_splits
    from training.methods import train

    cfg = TrainConfig(base_model=str(tiny_base(root, "bert")), max_length=64, router_max_length=32,
                      train_pairs_per_domain=24, router_examples_per_domain=24, eval_pairs_per_domain=8,
                      epochs=1, batch_size=8, lr=2e-3, lora_lr=1e-2, router_lr=2e-3, lora_r=4, lora_alpha=8,
                      out_dir=str(root / "ckpt"))
    splits = load_splits()
    for method in ("baseline", "more", "rodos", "arliss"):
        if not (cfg.method_dir(method) / "routerm.json").is_file():
            start = time.perf_counter()
            train(method, splits, cfg)
            print(f"trained tiny {method} in {time.perf_counter() - start:.1f}s", flush=True)
    return Path(cfg.out_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--checkpoints", type=Path, default=None, help="folder of trained <method> checkpoints")
    args = ap.parse_args()
    from export.to_onnx import export_bundle

    todo = {n: spec for n, spec in BUNDLES.items() if not (args.out / n / "manifest.json").is_file()}
    if not todo:
        print(f"bundles in {args.out} already made")
        return
    checkpoints = args.checkpoints or tiny_checkpoints(args.out / ".tiny")
    for name, (method, lora) in todo.items():
        start = time.perf_counter()
        export_bundle(checkpoints / method, args.out / name, method=method, lora=lora, val_pairs=8)
        print(f"exported {name} in {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
