"""Leave one domain out, add it back: does growing ARLISS/RODOS match training with it?

    python -m lab.add_domain_experiment [--methods arliss,rodos] [--domains math,harmlessness]
        [--router head[,full]] [--results results] [--reuse-four]

Needs ``make reproduce``'s five-domain checkpoints (``checkpoints/<method>`` with ``test_eval.json``).
For each method and held-out domain ``d``:

1. A four-domain checkpoint ``checkpoints/lodo-<method>-minus-<d>``: the other four reward adapters
   (ARLISS) or reward models (RODOS) of the five-domain checkpoint, copied byte for byte, and a
   router trained on the four domains with the recipe of training.methods. Each reward adapter or
   model trains on its own domain's pairs only, so these are what a four-domain run trains, up to
   the random stream; the router is the part that would differ, and it is trained here. As
   training does, the step stores the router's prompt features in it (training.router_store;
   with ``--reuse-four``, when the checkpoint has none yet), timed apart from the addition.
2. ``training.add_domain`` grows it by ``d`` from ``data/preferences/<d>.jsonl.gz`` (timed) into
   ``checkpoints/lodo-<method>-plus-<d>-<scheme>``, once per router scheme asked for (the same
   four-domain checkpoint for each, so the schemes compare paired).
3. The grown checkpoint is evaluated on the whole test split (training.evaluate) and compared with
   the five-domain checkpoint: the added domain's routed and oracle accuracy (difference with a
   paired bootstrap interval over prompts), the old domains' oracle accuracy, whether the old
   weights are byte-identical (sha256), router accuracy, and the seconds to add against the
   seconds the five-domain run trained.

Writes ``results/add_domain.json`` (default router scheme) or ``results/add_domain_<scheme>.json``;
the README table comes from them. Measures, asserts nothing;
run it alone on the machine (the load average is recorded).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models.arliss import ROUTER, ArlissConfig, ArlissModel
from models.base import load_tokenizer
from models.checkpoint import CheckpointCard, load_checkpoint
from training.add_domain import ROUTER_SCHEMES, add_domain, config_from_card, write_router_features
from core.data import DATA_DIR, DOMAINS, load_splits
from training.evaluate import evaluate
from training.methods import arliss_router, rodos_router
from training.router_store import FILE as ROUTER_FEATURES
from core.stats import paired_difference

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def results_path(scheme: str, results: Path = Path("results")) -> Path:
    """Where a router scheme's rows go: ``add_domain.json`` for the default scheme (``ROUTER_SCHEMES[0]``)."""
    return results / ("add_domain.json" if scheme == ROUTER_SCHEMES[0] else f"add_domain_{scheme}.json")


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _parts(method: str) -> str:
    return "adapters" if method == "arliss" else "rewards"


def reused_four_domain_checkpoint(five: Path, dst: Path, held_out: str) -> dict:
    """The router run of an earlier step 1 in ``dst`` (``--reuse-four``), checked to come from ``five`` without ``held_out``."""
    card = CheckpointCard.load(dst)
    train = card.extra.get("train", {})
    if train.get("held_out") != held_out or train.get("derived_from") != str(five):
        raise ValueError(f"'{dst}' holds {train.get('derived_from')!r} without {train.get('held_out')!r}, "
                         f"not {str(five)!r} without {held_out!r}: run without --reuse-four")
    return train["runs"]["router"]


def four_domain_checkpoint(five: Path, dst: Path, method: str, held_out: str, splits: dict) -> dict:
    """``five`` without ``held_out``: old parts copied, router trained on the other domains (step 1)."""
    card = CheckpointCard.load(five)
    four = tuple(d for d in card.domains if d != held_out)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    cfg = config_from_card(card, four, dst)
    tok = load_tokenizer(five)
    torch.manual_seed(cfg.seed)
    for d in four:
        shutil.copytree(five / _parts(method) / d, dst / _parts(method) / d)
    if method == "arliss":
        dataclasses.replace(ArlissConfig.load(five), domains=four).save(dst)
        shutil.copytree(five / "adapters" / ROUTER, dst / "adapters" / ROUTER)  # reset below, then trained
        heads = load_file(str(five / "heads.safetensors"))
        keep = torch.tensor([card.domains.index(d) for d in four])
        save_file({k: v[keep].contiguous() for k, v in heads.items()}, str(dst / "heads.safetensors"))
        model = ArlissModel.load(dst)
        model.reset_router()
        model.train()
        run = arliss_router(model, splits, cfg, tok)
        model.save(dst)
        for d in four:                                            # save() rewrote them: the original bytes back
            shutil.rmtree(dst / "adapters" / d)
            shutil.copytree(five / "adapters" / d, dst / "adapters" / d)
    else:
        router, run = rodos_router(splits, cfg, tok)
        router.save_pretrained(dst / "router")
    for name in TOKENIZER_FILES:
        if (five / name).is_file():
            shutil.copyfile(five / name, dst / name)
    extra = {k: v for k, v in card.extra.items() if k not in ("train_config", "train")}
    CheckpointCard(method, four, card.max_length, card.base_model, card.truncation, extra={
        **extra, "train_config": cfg.to_dict(), "train": {"train_seconds": run["seconds"], "runs": {"router": run},
                                                         "derived_from": str(five), "held_out": held_out}}).save(dst)
    return run


def result_row(method: str, held_out: str, scheme: str, grown: dict, full_eval: dict, stats: dict, retrain: float,
           four_router: dict, grown_dir: Path, five: Path, store: dict | None) -> dict:
    """One results row: the grown checkpoint's test evaluation ``grown`` against the five-domain ``full_eval``."""
    new, old = grown["method"]["domains"], full_eval["method"]["domains"]
    olds = [d for d in DOMAINS if d != held_out]
    return {
        "added_accuracy": new[held_out]["accuracy"], "full_accuracy": old[held_out]["accuracy"],
        "added_minus_full": paired_difference({held_out: new[held_out]}, {held_out: old[held_out]}),
        "added_oracle_accuracy": new[held_out]["oracle_accuracy"],
        "full_oracle_accuracy": old[held_out]["oracle_accuracy"],
        "old_max_abs_change": 100 * max(abs(new[d]["oracle_accuracy"] - old[d]["oracle_accuracy"]) for d in olds),
        "old_routed_accuracy_change": {d: round(100 * (new[d]["accuracy"] - old[d]["accuracy"]), 2) for d in olds},
        "old_weights_identical": all(_digest(grown_dir / _parts(method) / d) == _digest(five / _parts(method) / d)
                                     for d in olds),
        "router_accuracy": grown["router"]["accuracy"], "full_router_accuracy": full_eval["router"]["accuracy"],
        "added_router_accuracy": new[held_out]["router_accuracy"],          # on the added domain's test pairs
        "full_added_router_accuracy": old[held_out]["router_accuracy"],
        "four_domain_router_val_accuracy": max(e["accuracy"] for e in four_router["evals"]) if four_router["evals"] else None,
        "add_seconds": stats["add_seconds"], "add_train_seconds": stats["train_seconds"],
        "four_domain_router_features": store,   # storing them in step 1 (None: an earlier run had)
        "retrain_seconds": retrain, "add_over_retrain": stats["add_seconds"] / retrain,
        "router_scheme": scheme, "router_run": {k: v for k, v in stats["runs"]["router"].items() if k not in ("losses", "probe")},
        "test_pairs": new[held_out]["pairs"],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_add": os.getloadavg()[0],
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="arliss,rodos")
    ap.add_argument("--domains", default="math,harmlessness")
    ap.add_argument("--router", default=ROUTER_SCHEMES[0],
                    help=f"router scheme(s), comma-separated, from {list(ROUTER_SCHEMES)}: each grows the same "
                         "four-domain checkpoint")
    ap.add_argument("--checkpoints", default="checkpoints")
    ap.add_argument("--reuse-four", action="store_true",
                    help="grow the four-domain checkpoints an earlier run left (paired with its rows) "
                         "instead of training their routers again")
    ap.add_argument("--results", type=Path, default=Path("results"),
                    help="add_domain.json (default scheme) and add_domain_<scheme>.json go here")
    args = ap.parse_args(argv)
    schemes = args.router.split(",")
    if unknown := [s for s in schemes if s not in ROUTER_SCHEMES]:
        ap.error(f"--router: unknown scheme(s) {unknown}; choose from {list(ROUTER_SCHEMES)}")
    load_start = os.getloadavg()
    root = Path(args.checkpoints)
    splits = load_splits(DOMAINS)
    paths = {s: results_path(s, args.results) for s in schemes}
    results = {s: json.loads(p.read_text()) if p.is_file() else {} for s, p in paths.items()}
    for s in schemes:
        results[s].update({"router_scheme": s, "load_average_start": list(load_start)})
    for method in args.methods.split(","):
        five = root / method
        full_eval = json.loads((five / "test_eval.json").read_text())
        retrain = CheckpointCard.load(five).extra["train"]["train_seconds"]
        for held_out in args.domains.split(","):
            print(f"[lodo] {method} without {held_out}", flush=True)
            four_dir = root / f"lodo-{method}-minus-{held_out}"
            others = {d: splits[d] for d in DOMAINS if d != held_out}
            four_router = (reused_four_domain_checkpoint(five, four_dir, held_out) if args.reuse_four
                           else four_domain_checkpoint(five, four_dir, method, held_out, others))
            store = None if (four_dir / ROUTER_FEATURES).is_file() else write_router_features(four_dir, others)
            for scheme in schemes:
                grown_dir = root / f"lodo-{method}-plus-{held_out}-{scheme}"
                if grown_dir.exists():
                    shutil.rmtree(grown_dir)
                stats = add_domain(four_dir, held_out, Path(DATA_DIR) / f"{held_out}.jsonl.gz", grown_dir,
                                   method=method, old_splits=others, router=scheme)
                grown = evaluate(load_checkpoint(grown_dir, method), splits, None)
                entry = result_row(method, held_out, scheme, grown, full_eval, stats, retrain, four_router, grown_dir, five,
                                   store)
                results[scheme].setdefault(method, {})[held_out] = entry
                print(f"[lodo] {method}+{held_out} ({scheme}): " + json.dumps(
                    {k: v for k, v in entry.items() if k not in ("added_minus_full", "router_run")}), flush=True)
                paths[scheme].parent.mkdir(parents=True, exist_ok=True)
                paths[scheme].write_text(json.dumps(results[scheme], indent=1) + "\n")
    for s in schemes:
        results[s]["load_average_end"] = list(os.getloadavg())
        paths[s].write_text(json.dumps(results[s], indent=1) + "\n")
        print(f"wrote {paths[s]}")


if __name__ == "__main__":
    main()
