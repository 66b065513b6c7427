"""Grow a routed checkpoint by one domain without retraining the others (issue 14).

    python -m training add-domain --method arliss --from checkpoints/arliss --domain legal \\
        --data legal.jsonl [--out checkpoints/arliss-legal]

* ARLISS: one new LoRA reward adapter (same rank and layers as the others) and one new row of the
  reward head, trained on the new domain alone with the recipe of training.methods (linear-probe
  start, then fine-tuning with model choice on validation). The old reward adapters are copied
  byte for byte.
* RODOS: one new reward model for the new domain, the old ones copied byte for byte.
* The router learns the (n+1)-th class on the prompts of every domain (the old domains' stored
  data under ``data/``, the new domain's file), by one of two schemes (``router``):

  - ``"head"`` (default, cheap): the router's body (ARLISS's router adapter, RODOS's router
    encoder) stays as it is, byte for byte; only its head is refitted, (n+1)-way, as the
    softmax-regression probe of training.probe on the frozen body's prompt features (L2 weight
    chosen on validation). Costs one forward pass over the new domain's prompts: the old domains'
    features come from the checkpoint's store (training.router_store), which training writes and
    this scheme passes on, grown, to the new checkpoint. A checkpoint without one (or with one from
    another body) costs a pass over every domain's prompts (the card's ``features`` entry says which);
    ``python -m training router-features --from CHECKPOINT`` writes it once.
  - ``"warm"``: the ``"head"`` refit, then the whole router (body and head) fine-tuned for a short
    run on a random ``WARM_FRACTION`` of each domain's train prompts (the class proportions of
    training), with the training recipe's learning rate. Validation at the start and the end picks
    the better, so it keeps the head refit when the short run does not help. Costs the head refit
    plus about ``WARM_FRACTION`` of a router training epoch.
  - ``"top"``: the router's top ``TOP_LAYERS`` transformer layers (ARLISS: their router-adapter
    LoRA weights; RODOS: the layers themselves) and its head train for ``TOP_EPOCHS`` epoch on
    every train prompt, from the ``"head"`` refit, with the lower layers frozen and run once over
    the prompts (their output cached, training.top_layers). Validation at the start and the end
    picks the better. Costs the head refit's forward pass plus one epoch through the top layers;
    on the leave-one-domain-out runs it did not beat ``"head"`` reliably (README, add_domain_top.json).
  - ``"full"``: the router starts again (ARLISS: its adapter re-initialised; RODOS: a new router
    on the base model) and trains as in training.methods, probe start then fine-tuning.

* The baseline and MoRE have no per-domain parts: they need full retraining (a clear error).

The new data is validated by the same loader as the vendored data (errors name file and line)
and split by prompt the same way. The card records the lineage: each added domain, its data file
(path and sha256), the source checkpoint, when, and how long the addition took.
"""
from __future__ import annotations

import dataclasses
import math
import random
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from models.arliss import ROUTER, ArlissModel, _backbone
from models.base import load_tokenizer
from models.checkpoint import CheckpointCard
from models.reward import RewardModel
from core.hashing import sha256_file
from core.text import TRUNCATION_POLICY
from training.config import TrainConfig
from core.data import DOMAINS, load_pairs_file, load_splits, split_pairs
from training.methods import (_base, _loop, _router, _router_data, _set_linear, arliss_reward_adapter,
                              arliss_router, rodos_reward_model, rodos_router, store_router_features)
from training.loop import run_steps
from training.probe import fit_router_head
from training.router_store import RouterFeatures, arliss_body, body_context, prompt_features, rodos_body
from training.top_layers import TopLayers, classifier_check, classifier_step

ROUTED = ("arliss", "rodos")
ROUTER_SCHEMES = ("head", "warm", "top", "full")
WARM_FRACTION = 0.125   # of each domain's unique train prompts, for the "warm" scheme
TOP_LAYERS, TOP_EPOCHS = 2, 1   # the "top" scheme's trained layers and epochs over the train prompts


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


def refit_router_head(pool_fn, head: nn.Linear, splits: dict, cfg: TrainConfig, tok,
                      store: RouterFeatures | None = None) -> dict:
    """The ``"head"`` scheme: ``head`` [n, H] refitted as a softmax probe on ``pool_fn``'s prompt features.

    ``pool_fn(batch) -> [B, H]`` is the frozen router body; the train prompts are the probe's
    (``cfg.probe_pairs_per_domain`` a domain, None: all), the L2 weight is chosen on validation.
    ``store`` (training.router_store, made for this body) supplies the features it holds and keeps
    the ones computed here; the run's ``features`` entry says which were which.
    """
    start = time.perf_counter()

    def features(split: str, per_domain: int | None):
        return prompt_features(store, pool_fn, splits, cfg.domains, split, per_domain, tok, cfg.router_max_length,
                               cfg.bf16)

    x, y = features("train", cfg.probe_pairs_per_domain)
    val_x, val_y = features("validation", cfg.val_pairs_per_domain)
    weight, bias, info = fit_router_head(x, y, val_x, val_y, len(cfg.domains))
    _set_linear(head, weight, bias)
    return {"scheme": "head", "seconds": time.perf_counter() - start, "steps": 0,
            "val_accuracy": info["val_accuracy"], "probe": info,
            "new_domain": routing_of(info["val_confusion"], cfg.domains, cfg.domains[-1]),
            "features": store.report() if store is not None else None}


def routing_of(confusion: list[list[int]], domains: tuple[str, ...], domain: str) -> dict:
    """Where ``domain``'s validation prompts go under a router with ``confusion`` ([true][predicted] counts):
    its ``recall``, and the other domain that takes most of the rest (``most_confused_with``, ``count``)."""
    i = domains.index(domain)
    row = confusion[i]
    others = [(row[j], d) for j, d in enumerate(domains) if j != i]
    count, other = max(others) if others else (0, None)
    return {"prompts": sum(row), "recall": row[i] / max(1, sum(row)), "most_confused_with": other if count else None,
            "count": count}


def warm_router(logits_fn, named, modules, splits: dict, cfg: TrainConfig, tok, lr: float, desc: str,
                weight_decay: float | None = None) -> dict:
    """The ``"warm"`` scheme after the head refit: the router (``named``'s parameters) fine-tuned on a
    seeded random ``WARM_FRACTION`` of each domain's unique train prompts, validated at the start and
    the end (the better is kept: training.loop's model choice)."""
    rng = random.Random(cfg.seed)
    sample = {}
    for domain in cfg.domains:
        pairs = list({p.prompt: p for p in splits[domain]["train"]}.values())     # one pair per unique prompt
        keep = sorted(rng.sample(range(len(pairs)), math.ceil(WARM_FRACTION * len(pairs))))
        sample[domain] = {"train": [pairs[i] for i in keep], "validation": splits[domain]["validation"]}
    run = _router(logits_fn, named, modules, sample, dataclasses.replace(cfg, eval_points=1), tok, lr, desc,
                  weight_decay=weight_decay)
    chosen = next(e for e in run["evals"] if e["step"] == run["chosen_step"])
    return {"scheme": "warm", "seconds": run["seconds"], "steps": run["steps"], "chosen_step": run["chosen_step"],
            "examples": {d: len(v["train"]) for d, v in sample.items()}, "val_accuracy": chosen["accuracy"],
            "evals": run["evals"], "losses": [round(x, 4) for x in run["losses"]]}


def top_router(backbone: nn.Module, pooling: str, head: nn.Linear, named, modules, splits: dict, cfg: TrainConfig,
               tok, lr: float, desc: str, weight_decay: float | None = None) -> dict:
    """The ``"top"`` scheme: ``head`` [n, H] refitted as a probe on the router's prompt features, then the
    top ``TOP_LAYERS`` layers of ``backbone`` (those of ``named``'s parameters inside them) and the head
    trained on cached states (training.top_layers), the better of start and end kept on validation.

    ``backbone`` is the router body (eval mode, the router adapter active), pooled by ``pooling``.
    """
    start = time.perf_counter()
    top = TopLayers(backbone, pooling, TOP_LAYERS)
    train = top.cache(*_router_data(splits, cfg, tok, "train", cfg.router_examples_per_domain), tok.pad_token_id,
                      bf16=cfg.bf16)
    val = top.cache(*_router_data(splits, cfg, tok, "validation", cfg.val_pairs_per_domain), tok.pad_token_id,
                    bf16=cfg.bf16)
    weight, bias, probe = fit_router_head(train.pooled, train.labels, val.pooled, val.labels, len(cfg.domains))
    _set_linear(head, weight, bias)
    head_seconds = time.perf_counter() - start
    head_ids = {id(p) for p in head.parameters()}
    named = list(named)
    trained = top.parameters_of(named) + [(n, p) for n, p in named if id(p) in head_ids]
    loop = dataclasses.replace(_loop(cfg, lr, weight_decay), epochs=TOP_EPOCHS, eval_points=1, bucket_window=1)
    run = run_steps(classifier_step(top, head, train), trained, modules, [len(x) for x in train.states], loop, desc,
                    classifier_check(top, head, val))
    chosen = next(e for e in run["evals"] if e["step"] == run["chosen_step"])
    return {"scheme": "top", "seconds": time.perf_counter() - start, "head_seconds": head_seconds,
            "layers": TOP_LAYERS, "epochs": TOP_EPOCHS, "steps": run["steps"], "chosen_step": run["chosen_step"],
            "val_accuracy": chosen["accuracy"],
            "head_val_accuracy": probe["val_accuracy"],
            "evals": run["evals"], "losses": [round(x, 4) for x in run["losses"]],
            "trained_parameters": sum(p.numel() for _, p in trained), "probe": probe}


def _grow_arliss(src: Path, out: Path, domain: str, splits: dict, cfg: TrainConfig, tok, router: str) -> dict:
    model = ArlissModel.load(src)
    grown = dataclasses.replace(model.config, domains=(*model.config.domains, domain))
    plain = _backbone(grown)                                  # layer names for the new adapter's targets
    model.backbone.add_adapter(domain, grown.lora_config(domain, plain))
    del plain
    n = len(grown.domains)
    model.reward_heads = _grown_linear(model.reward_heads, n)
    model.router_head = _grown_linear(model.router_head, n)
    model.config = grown
    model.train()
    runs = {domain: arliss_reward_adapter(model, splits, cfg, tok, domain)}
    if router == "full":   # the router starts again, as in training (after the adapter: same random stream as head)
        model.reset_router()
        runs["router"] = arliss_router(model, splits, cfg, tok)
    elif router == "top":
        named = model.trainable_for(ROUTER)                   # also makes the router adapter the active one
        model.eval()
        runs["router"] = top_router(model.backbone, grown.pooling, model.router_head, named, [model], splits, cfg,
                                    tok, cfg.lora_lr, "arliss/router-top", weight_decay=0.0)
    else:
        model.eval()
        store = RouterFeatures.load(src, body_context(arliss_body(model), tok, cfg.router_max_length, grown.pooling,
                                                      cfg.bf16))
        runs["router"] = refit_router_head(lambda b: model._pooled(ROUTER, b), model.router_head, splits, cfg, tok,
                                           store)
        if router == "warm":
            runs["router_head"], runs["router"] = runs["router"], warm_router(
                model.router_logits, model.trainable_for(ROUTER), [model], splits, cfg, tok, cfg.lora_lr,
                "arliss/router-warm", weight_decay=0.0)
    model.save(out)
    if router == "head":                                      # same body: its n+1 domains' features go along
        store.save(out, grown.domains)
    kept = grown.domains[:-1] + ((ROUTER,) if router == "head" else ())
    for old in kept:                                          # byte-identical copies of the untouched adapters
        shutil.rmtree(out / "adapters" / old)
        shutil.copytree(src / "adapters" / old, out / "adapters" / old)
    return runs


def _grow_rodos(src: Path, out: Path, domain: str, splits: dict, cfg: TrainConfig, tok, router: str) -> dict:
    runs = {}
    for old in cfg.domains[:-1]:
        shutil.copytree(src / "rewards" / old, out / "rewards" / old)
    model, runs[domain] = rodos_reward_model(splits, cfg, tok, domain)
    model.save_pretrained(out / "rewards" / domain)
    del model
    if router == "full":
        classifier, runs["router"] = rodos_router(splits, cfg, tok)
    else:
        classifier = RewardModel.from_pretrained(src / "router").eval()
        classifier.score = _grown_linear(classifier.score, len(cfg.domains))
        classifier.config.num_labels = len(cfg.domains)
        if router == "top":
            runs["router"] = top_router(classifier.backbone, classifier.config.pooling, classifier.score,
                                        classifier.named_parameters(), [classifier], splits, cfg, tok, cfg.router_lr,
                                        "rodos/router-top")
        else:
            store = RouterFeatures.load(src, body_context(rodos_body(classifier), tok, cfg.router_max_length,
                                                          classifier.config.pooling, cfg.bf16))
            runs["router"] = refit_router_head(lambda b: classifier.pooled(**b), classifier.score, splits, cfg, tok,
                                               store)
        if router == "warm":
            runs["router_head"], runs["router"] = runs["router"], warm_router(
                lambda b: classifier(**b).logits, classifier.named_parameters(), [classifier], splits, cfg, tok,
                cfg.router_lr, "rodos/router-warm")
    classifier.save_pretrained(out / "router")
    if router == "head":                                      # same body: its n+1 domains' features go along
        store.save(out, cfg.domains)
    return runs


def write_router_features(src: str | Path, splits: dict | None = None) -> dict:
    """Write the router features store of routed checkpoint ``src`` (one made before training wrote them).

    ``splits``: its domains' ``{domain: {split: [Pair]}}`` (default: the vendored data).
    Returns ``{"seconds", "prompts"}``.
    """
    src = Path(src)
    card = CheckpointCard.load(src)
    if card.method not in ROUTED:
        raise ValueError(f"{card.method} has no router: router features are for {list(ROUTED)} checkpoints")
    if splits is None:
        unknown = [d for d in card.domains if d not in DOMAINS]
        if unknown:
            raise ValueError(f"the router features need the domains' data; {unknown} are not vendored: pass splits")
        splits = load_splits(tuple(card.domains))
    cfg = _config(card, tuple(card.domains), src)
    tok = load_tokenizer(src)
    if card.method == "arliss":
        model = ArlissModel.load(src).eval()
        return store_router_features(lambda b: model._pooled(ROUTER, b), arliss_body(model), model.config.pooling,
                                     splits, cfg, tok, src)
    classifier = RewardModel.from_pretrained(src / "router").eval()
    return store_router_features(lambda b: classifier.pooled(**b), rodos_body(classifier), classifier.config.pooling,
                                 splits, cfg, tok, src)


def add_domain(src: str | Path, domain: str, data: str | Path, out: str | Path, method: str | None = None,
               old_splits: dict | None = None, router: str = "head") -> dict:
    """Write ``src`` grown by ``domain`` (pairs in ``data``) to ``out``; returns the run's stats.

    ``old_splits``: the existing domains' ``{domain: {split: [Pair]}}`` (default: the vendored data).
    ``router``: ``"head"``, ``"warm"``, ``"top"`` or ``"full"`` (module docstring).
    """
    if router not in ROUTER_SCHEMES:
        raise ValueError(f"router scheme must be one of {list(ROUTER_SCHEMES)}, got {router!r}")
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
    runs = (_grow_arliss if card.method == "arliss" else _grow_rodos)(src, out, domain, splits, cfg, tok, router)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    seconds = time.perf_counter() - start
    lineage = list(card.extra.get("lineage", [])) + [{
        "added": domain, "data": str(data.resolve()), "data_sha256": sha256_file(data), "source_checkpoint": str(src.resolve()),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(seconds, 2), "router": router,
        "pairs": {k: len(v) for k, v in new_pairs.items()}}]
    extra = {k: v for k, v in card.extra.items() if k not in ("train_config", "train", "lineage")}
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs, "add_seconds": seconds}
    CheckpointCard(card.method, cfg.domains, card.max_length, _base(cfg), card.truncation or TRUNCATION_POLICY, extra={
        **extra, "train_config": cfg.to_dict(), "train": stats, "lineage": lineage}).save(out)
    return stats
