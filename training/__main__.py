"""``python -m training train|evaluate --method M [--quick] [--base-model PATH] ...``"""
from __future__ import annotations

import argparse
import json
import sys

from models.checkpoint import METHODS, load_checkpoint
from training.config import QUICK, TrainConfig
from training.data import load_splits
from training.evaluate import evaluate
from training.methods import train


def config_from_args(args) -> TrainConfig:
    cfg = QUICK if args.quick else TrainConfig()
    changes = {k: v for k, v in {
        "base_model": args.base_model, "train_pairs_per_domain": args.pairs_per_domain,
        "epochs": args.epochs, "max_length": args.max_length, "out_dir": args.out_dir,
    }.items() if v is not None}
    return cfg.with_(**changes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("command", choices=["train", "evaluate"])
    parser.add_argument("--method", choices=METHODS + ("all",), default="all")
    parser.add_argument("--quick", action="store_true", help="small subset, minutes on a CPU")
    parser.add_argument("--base-model", help="local Hugging Face checkpoint (default: all-MiniLM-L6-v2)")
    parser.add_argument("--pairs-per-domain", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--out-dir")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    splits = load_splits(cfg.domains)
    methods = METHODS if args.method == "all" else (args.method,)
    for method in methods:
        if args.command == "train":
            stats = train(method, splits, cfg)
            print(f"{method}: trained in {stats['wall_seconds']:.0f}s -> {cfg.method_dir(method)}")
        else:
            res = evaluate(load_checkpoint(cfg.method_dir(method), method), splits, cfg.eval_pairs_per_domain)
            print(json.dumps({method: res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
