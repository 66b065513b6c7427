"""``python -m training train|evaluate --method M [--quick] [--base-model PATH] ...``

``python -m training add-domain --method arliss|rodos --from CHECKPOINT --domain NAME --data PAIRS.jsonl
[--out DIR] [--router SCHEME]``: grow a routed checkpoint by one domain (training.add_domain).

``python -m training router-features --from CHECKPOINT``: store a routed checkpoint's router features
(training.router_store) so that adding a domain runs the router over the new domain's prompts only;
training writes them, this is for checkpoints made before it did.
"""
from __future__ import annotations

import argparse
import json
import sys

from models.checkpoint import METHODS, load_checkpoint
from training.add_domain import ROUTER_SCHEMES, SCHEMES, add_domain, routing_note, write_router_features
from training.config import QUICK, TrainConfig
from training.device import resolve as resolve_device
from core.data import load_splits
from training.evaluate import evaluate
from training.methods import train


def config_from_args(args) -> TrainConfig:
    cfg = QUICK if args.quick else TrainConfig()
    changes = {k: v for k, v in {
        "base_model": args.base_model, "train_pairs_per_domain": args.pairs_per_domain,
        "epochs": args.epochs, "max_length": args.max_length, "out_dir": args.out_dir, "device": args.device,
    }.items() if v is not None}
    return cfg.with_(**changes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("command", choices=["train", "evaluate", "add-domain", "router-features"])
    parser.add_argument("--method", choices=METHODS + ("all",), default="all")
    parser.add_argument("--quick", action="store_true", help="small subset, minutes on a CPU")
    parser.add_argument("--base-model", help="local Hugging Face checkpoint (default: all-MiniLM-L6-v2)")
    parser.add_argument("--pairs-per-domain", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--out-dir")
    parser.add_argument("--device", choices=("cuda", "cpu"), help="train on (default: CUDA when available, else the CPU)")
    parser.add_argument("--from", dest="source", help="add-domain: the checkpoint to grow; router-features: the "
                                                      "checkpoint to store them in")
    parser.add_argument("--domain", help="add-domain: the new domain's name")
    parser.add_argument("--data", help="add-domain: the new domain's pairs (JSONL, .gz allowed)")
    parser.add_argument("--out", help="add-domain: where the grown checkpoint goes (default: <from>-<domain>)")
    parser.add_argument("--router", choices=ROUTER_SCHEMES, default=ROUTER_SCHEMES[0],
                        help="add-domain: how the router learns the new domain: "
                             + "; ".join(f"{name}: {scheme.help}" for name, scheme in SCHEMES.items()))
    args = parser.parse_args(argv)
    if args.command == "router-features":
        if not args.source:
            parser.error("router-features needs --from CHECKPOINT")
        try:
            stats = write_router_features(args.source)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"stored the router features of {stats['prompts']} prompts in {stats['seconds']:.0f}s -> {args.source}")
        return 0
    if args.command == "add-domain":
        missing = [f"--{k}" for k, v in (("from", args.source), ("domain", args.domain), ("data", args.data)) if not v]
        if missing or args.method == "all":
            parser.error(f"add-domain needs --method arliss|rodos, --from, --domain and --data (missing {missing or ['--method']})")
        out = args.out or f"{args.source.rstrip('/')}-{args.domain}"
        try:
            stats = add_domain(args.source, args.domain, args.data, out, method=args.method, router=args.router)
        except (ValueError, FileExistsError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{args.method}: added '{args.domain}' in {stats['add_seconds']:.0f}s -> {out}")
        routed = stats["runs"]["router"].get("new_domain")
        if routed:       # the head scheme: where the new domain's validation prompts go
            print(routing_note(routed, args.domain))
        return 0
    cfg = config_from_args(args)
    try:
        resolve_device(cfg.device)          # before any data is read: a GPU asked for and missing is said now
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
