"""How many prompt tokens should a router see? A linear probe on frozen base features per length.

    python -m lab.router_probe [--lengths 64 128 256]

For each router length (the prompt's last N tokens, ``core.text.encode_prompts``), the base
model's pooled features of every unique train, validation and test prompt (cached in
``checkpoints/features/``, shared with ``make reproduce``) feed the router probe of
``training.probe.fit_router_head`` (softmax regression, L2 weight chosen on validation from
``ROUTER_LAMBDAS``). Writes ``results/router_probe.json``: per length, the validation accuracy of
the chosen weight and the test accuracy (the test split is read here only to report, never to
choose). Measures, asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from core.data import load_splits
from training.config import TrainConfig
from training.probe import fit_router_head
from training.recipe import router_features, tokenizer


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--out", default="results/router_probe.json")
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    base = TrainConfig()
    splits = load_splits(base.domains)
    tok = tokenizer(base)
    rows = []
    for length in args.lengths:
        cfg = base.with_(router_max_length=length)
        start = time.perf_counter()
        (x, y), (vx, vy), (tx, ty) = (router_features(cfg, tok, splits, s, per_domain=None)
                                       for s in ("train", "validation", "test"))
        weight, bias, info = fit_router_head(x, y, vx, vy, len(cfg.domains))
        test = float(((tx @ weight.t() + bias).argmax(-1) == ty).float().mean())
        rows.append({"router_max_length": length, "chosen_lambda": info["chosen_lambda"],
                     "val_accuracy": round(info["val_accuracy"], 4), "test_accuracy": round(test, 4),
                     "train_prompts": len(x), "val_prompts": len(vx), "test_prompts": len(tx),
                     "seconds": round(time.perf_counter() - start, 1)})
        print(rows[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"probe": "softmax regression on frozen base features, prompt tail",
                                          "rows": rows, "load_average_start": load_start}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
