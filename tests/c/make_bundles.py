"""Bundles of every method for the C library's tests.

    PYTHONPATH=tests python tests/c/make_bundles.py --out DIR [--checkpoints DIR]

Writes DIR/{baseline,more,rodos,arliss-switchable,arliss-merged} with export.to_onnx.export_bundle,
and (tiny checkpoints only) DIR/{rodos-grown,arliss-grown}: RODOS and ARLISS trained on four domains,
then grown by the fifth with training.add_domain (a grown bundle must serve from C as it does from
Python). Without --checkpoints, the checkpoints are tiny random BERTs (tests/tiny.py, which CTest
puts on PYTHONPATH; 2 layers, hidden 32, the real MiniLM WordPiece tokenizer) trained for a moment
on the real five-domain data, so the bundles are small and quick, and every code path of the real
ones (routing over five domains, truncation of real texts) is exercised. DIR/baseline-external
(tiny checkpoints only) is the baseline exported with its weights in an external-data file
(reward.onnx.data), as graphs over protobuf's 2 GB limit must be. With --checkpoints DIR,
DIR/<method> are used instead (e.g. checkpoints/quick). A bundle whose manifest.json exists is
kept (delete it to remake).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

BUNDLES = {   # bundle name -> (method, lora)
    "baseline": ("baseline", "switchable"),
    "more": ("more", "switchable"),
    "rodos": ("rodos", "switchable"),
    "arliss-switchable": ("arliss", "switchable"),
    "arliss-merged": ("arliss", "merged"),
}


def tiny_checkpoints(root: Path) -> Path:
    """Train tiny checkpoints of the four methods on the real data into root/ckpt/<method>."""
    from core.data import DOMAINS, load_splits
    from training.methods import train

    cfg = tiny_config(root, "ckpt", DOMAINS)
    splits = load_splits()
    for method in ("baseline", "more", "rodos", "arliss"):
        if not (cfg.method_dir(method) / "routerm.json").is_file():
            start = time.perf_counter()
            train(method, splits, cfg)
            print(f"trained tiny {method} in {time.perf_counter() - start:.1f}s", flush=True)
    return Path(cfg.out_dir)


GROWN = {"rodos-grown": ("rodos", "switchable"), "arliss-grown": ("arliss", "switchable")}
EXTERNAL = {"baseline-external": ("baseline", "switchable")}   # ExportSpec(external_data=True)


def tiny_config(root: Path, out: str, domains: tuple[str, ...]):
    from tiny import tiny_base
    from training.config import TrainConfig

    return TrainConfig(base_model=str(tiny_base(root, "bert")), domains=domains, max_length=64, router_max_length=32,
                       train_pairs_per_domain=24, router_examples_per_domain=24, eval_pairs_per_domain=8,
                       epochs=1, batch_size=8, lr=2e-3, lora_lr=1e-2, router_lr=2e-3, lora_r=4, lora_alpha=8,
                       out_dir=str(root / out))


def grown_checkpoints(root: Path) -> Path:
    """RODOS and ARLISS trained on the first four domains, grown by the fifth: root/grown/<method>."""
    from training.add_domain import add_domain
    from core.data import DATA_DIR, DOMAINS, load_splits
    from training.methods import train

    old, new = DOMAINS[:-1], DOMAINS[-1]
    cfg = tiny_config(root, "ckpt4", old)
    splits = load_splits(old)
    for method in ("rodos", "arliss"):
        dst = root / "grown" / method
        if (dst / "routerm.json").is_file():
            continue
        if not (cfg.method_dir(method) / "routerm.json").is_file():
            train(method, splits, cfg)
        start = time.perf_counter()
        add_domain(cfg.method_dir(method), new, Path(DATA_DIR) / f"{new}.jsonl.gz", dst, method=method)
        print(f"grew tiny {method} by {new} in {time.perf_counter() - start:.1f}s", flush=True)
    return root / "grown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--checkpoints", type=Path, default=None, help="folder of trained <method> checkpoints")
    args = ap.parse_args()
    from export.spec import ExportSpec
    from export.to_onnx import export_bundle

    wanted = BUNDLES if args.checkpoints else {**BUNDLES, **GROWN, **EXTERNAL}
    todo = {n: spec for n, spec in wanted.items() if not (args.out / n / "manifest.json").is_file()}
    if not todo:
        print(f"bundles in {args.out} already made")
        return
    checkpoints = args.checkpoints or tiny_checkpoints(args.out / ".tiny")
    grown = grown_checkpoints(args.out / ".tiny") if any(n in GROWN for n in todo) else None
    for name, (method, lora) in todo.items():
        start = time.perf_counter()
        spec = ExportSpec(method=method, lora=lora, external_data=name in EXTERNAL)
        export_bundle((grown if name in GROWN else checkpoints) / method, spec, args.out / name, val_pairs=8)
        print(f"exported {name} in {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
