"""Grow a routed checkpoint by one domain without retraining the others (issue 14).

    python -m training add-domain --method arliss --from checkpoints/arliss --domain legal \\
        --data legal.jsonl [--out checkpoints/arliss-legal]

* ARLISS: one new LoRA reward adapter (same rank and layers as the others) and one new row of the
  reward head, trained on the new domain alone with the recipe of training.methods (linear-probe
  start, then fine-tuning with model choice on validation); the router adapter is re-initialised
  and, with an (n+1)-way head, retrained on the prompts of every domain (the old domains' stored
  data under ``data/``, the new domain's file). The old reward adapters are copied byte for byte.
* RODOS: one new reward model for the new domain, the old ones copied byte for byte; a new
  (n+1)-way router trained on every domain's prompts.
* The baseline and MoRE have no per-domain parts: they need full retraining (a clear error).

The new data is validated by the same loader as the vendored data (errors name file and line)
and split by prompt the same way. The card records the lineage: each added domain, its data file
(path and sha256), the source checkpoint, when, and how long the addition took.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from models.arliss import ROUTER, ArlissModel, _backbone
from models.base import load_tokenizer
from models.checkpoint import CheckpointCard
from models.text import TRUNCATION_POLICY
from training.config import TrainConfig
from training.data import DOMAINS, load_pairs_file, load_splits, split_pairs
from training.methods import _base, arliss_reward_adapter, arliss_router, rodos_reward_model, rodos_router

ROUTED = ("arliss", "rodos")


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _config(card: CheckpointCard, domains: tuple[str, ...], out: Path) -> TrainConfig:
    """The source's training config (from its card), grown to ``domains``, caching features beside ``out``."""
    saved = dict(card.extra.get("train_config") or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    saved = {k: v for k, v in saved.items() if k in known}
    if saved.get("moe_layers") is not None:
        saved["moe_layers"] = tuple(saved["moe_layers"])
    saved.setdefault("segment_ids", True)   # cards from before the one-segment recipe
    saved.update(domains=domains, base_model=card.base_model, out_dir=str(out.parent))
    return TrainConfig(**saved)


def _grown_linear(old: nn.Linear, rows: int) -> nn.Linear:
    new = nn.Linear(old.in_features, rows)
    with torch.no_grad():
        new.weight.zero_()
        new.bias.zero_()
        new.weight[: old.out_features] = old.weight
        new.bias[: old.out_features] = old.bias
    return new


def _grow_arliss(src: Path, out: Path, domain: str, splits: dict, cfg: TrainConfig, tok) -> dict:
    model = ArlissModel.load(src)
    grown = dataclasses.replace(model.config, domains=(*model.config.domains, domain))
    plain = _backbone(grown)                                  # layer names for the new adapter's targets
    model.backbone.add_adapter(domain, grown.lora_config(domain, plain))
    del plain
    for module in model.backbone.modules():                   # the router starts again, as in training
        if hasattr(module, "reset_lora_parameters") and ROUTER in getattr(module, "lora_A", {}):
            module.reset_lora_parameters(ROUTER, True)
    n = len(grown.domains)
    model.reward_heads = _grown_linear(model.reward_heads, n)
    model.router_head = _grown_linear(model.router_head, n)
    model.config = grown
    model.train()
    runs = {"router": arliss_router(model, splits, cfg, tok), domain: arliss_reward_adapter(model, splits, cfg, tok, domain)}
    model.save(out)
    for old in grown.domains[:-1]:                            # byte-identical copies of the untouched adapters
        shutil.rmtree(out / "adapters" / old)
        shutil.copytree(src / "adapters" / old, out / "adapters" / old)
    return runs


def _grow_rodos(src: Path, out: Path, domain: str, splits: dict, cfg: TrainConfig, tok) -> dict:
    runs = {}
    for old in cfg.domains[:-1]:
        shutil.copytree(src / "rewards" / old, out / "rewards" / old)
    model, runs[domain] = rodos_reward_model(splits, cfg, tok, domain)
    model.save_pretrained(out / "rewards" / domain)
    del model
    router, runs["router"] = rodos_router(splits, cfg, tok)
    router.save_pretrained(out / "router")
    return runs


def add_domain(src: str | Path, domain: str, data: str | Path, out: str | Path, method: str | None = None,
               old_splits: dict | None = None) -> dict:
    """Write ``src`` grown by ``domain`` (pairs in ``data``) to ``out``; returns the run's stats.

    ``old_splits``: the existing domains' ``{domain: {split: [Pair]}}`` (default: the vendored data).
    """
    src, out, data = Path(src), Path(out), Path(data)
    card = CheckpointCard.load(src)
    if method is not None and method != card.method:
        raise ValueError(f"'{src}' holds a {card.method} checkpoint, not {method}")
    if card.method not in ROUTED:
        raise ValueError(f"{card.method} has no per-domain parts to add to: adding a domain means retraining it "
                         f"on all domains (`python -m training train --method {card.method}`)")
    if domain in card.domains:
        raise ValueError(f"domain '{domain}' is already in '{src}' ({list(card.domains)})")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--out '{out}' exists and is not empty")
    start = time.perf_counter()
    new_pairs = split_pairs(load_pairs_file(data, domain))
    if old_splits is None:
        unknown = [d for d in card.domains if d not in DOMAINS]
        if unknown:
            raise ValueError(f"the router needs the old domains' data; {unknown} are not vendored: pass old_splits")
        old_splits = load_splits(tuple(card.domains))
    splits = {**{d: old_splits[d] for d in card.domains}, domain: new_pairs}
    cfg = _config(card, (*card.domains, domain), out)
    torch.manual_seed(cfg.seed)
    tok = load_tokenizer(src)   # the source's own (its segment-id choice included)
    out.mkdir(parents=True, exist_ok=True)
    runs = (_grow_arliss if card.method == "arliss" else _grow_rodos)(src, out, domain, splits, cfg, tok)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    seconds = time.perf_counter() - start
    lineage = list(card.extra.get("lineage", [])) + [{
        "added": domain, "data": str(data.resolve()), "data_sha256": _sha256(data), "source_checkpoint": str(src.resolve()),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(seconds, 2),
        "pairs": {k: len(v) for k, v in new_pairs.items()}}]
    extra = {k: v for k, v in card.extra.items() if k not in ("train_config", "train", "lineage")}
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs, "add_seconds": seconds}
    CheckpointCard(card.method, cfg.domains, card.max_length, _base(cfg), card.truncation or TRUNCATION_POLICY, extra={
        **extra, "train_config": cfg.to_dict(), "train": stats, "lineage": lineage}).save(out)
    return stats
