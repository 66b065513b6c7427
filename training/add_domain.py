"""Grow a routed checkpoint by one domain without retraining the others.

    python -m training add-domain --method arliss --from checkpoints/arliss --domain legal \\
        --data legal.jsonl [--out checkpoints/arliss-legal] [--router head|full]

* ARLISS: one new LoRA reward adapter (same rank and layers as the others) and one new row of the
  reward head, trained on the new domain alone with the recipe of training.methods (linear-probe
  start, then fine-tuning with model choice on validation). The old reward adapters are copied
  byte for byte.
* RODOS: one new reward model for the new domain, the old ones copied byte for byte.
* The router learns the (n+1)-th class on the prompts of every domain (the old domains' stored
  data under ``data/``, the new domain's file), by one of the ``SCHEMES`` at the end of this
  module (their functions say what each does and costs): ``"head"`` (default) refits only the
  router's head on its frozen body's features, ``"full"`` trains the router again.
* The baseline and MoRE have no per-domain parts: they need full retraining (a clear error).

The new data is validated by the same loader as the vendored data (errors name file and line)
and split by prompt the same way. The card records the lineage: each added domain, its data file
(path and sha256), the source checkpoint, when, and how long the addition took.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.data import DOMAINS, load_pairs_file, load_splits, split_pairs
from core.hashing import sha256_file
from core.text import TRUNCATION_POLICY
from models.arliss import ROUTER, ArlissModel, load_backbone
from models.base import load_tokenizer
from models.checkpoint import CheckpointCard
from models.reward import RewardModel
from training.config import TrainConfig
from training.methods import arliss_reward_adapter, arliss_router, rodos_reward_model, rodos_router
from training.probe import fit_router_head
from training.recipe import base_model, router_prompts, set_linear, store_router_features
from training.router_store import RouterFeatures, arliss_body, body_context, prompt_features, rodos_body

ROUTED = ("arliss", "rodos")
# Under this share of the new domain's validation prompts routed to it, one prompt in ten or more is
# scored by another domain's reward part, and retraining the router is worth its cost. In the
# leave-one-domain-out runs (results/add_domain*.json) the head refit routed 94-100% of the added
# domain's test prompts for math, long_form_qa and helpfulness, within 4 points of the five-domain
# router; under 90% were instruction_following (82-85%, the five-domain router 98-99%) and
# harmlessness, whose HH-RLHF prompts overlap helpfulness's (81-83% even for the five-domain
# router), where the head refit ended 4-5 points below the five-domain model and `full` within noise of it.
LOW_RECALL = 0.9


@dataclass(frozen=True)
class Addition:
    """One add-domain run: the source checkpoint, where the grown one goes, and what trains it.

    ``cfg`` is the source's training config grown to n+1 domains (``cfg.domains[-1]`` is the new
    one); ``splits``: ``{domain: {split: [Pair]}}`` for all n+1; ``tok``: the source's tokenizer.
    """

    src: Path
    out: Path
    splits: dict
    cfg: TrainConfig
    tok: object

    @property
    def domain(self) -> str:
        return self.cfg.domains[-1]


def config_from_card(card: CheckpointCard, domains: tuple[str, ...], out: Path) -> TrainConfig:
    """The training config on ``card`` (a checkpoint's), for ``domains``, caching features beside ``out``."""
    saved = dict(card.extra.get("train_config") or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    saved = {k: v for k, v in saved.items() if k in known}
    if saved.get("moe_layers") is not None:
        saved["moe_layers"] = tuple(saved["moe_layers"])
    saved.setdefault("segment_ids", True)   # cards from before the one-segment recipe
    saved.update(domains=domains, base_model=card.base_model, out_dir=str(out.parent))
    return TrainConfig(**saved)


def _grown_linear(old: nn.Linear, rows: int) -> nn.Linear:
    """``old`` [n, H] with zero rows appended up to ``rows``."""
    new = nn.Linear(old.in_features, rows)
    with torch.no_grad():
        new.weight.zero_()
        new.bias.zero_()
        new.weight[: old.out_features] = old.weight
        new.bias[: old.out_features] = old.bias
    return new


def refit_router_head(pool_fn, head: nn.Linear, splits: dict, cfg: TrainConfig, tok,
                      store: RouterFeatures | None = None) -> dict:
    """``head`` [n, H] refitted as a softmax probe (training.probe) on ``pool_fn``'s prompt features.

    ``pool_fn(batch) -> [B, H]`` is the frozen router body; the train prompts are the probe's
    (``cfg.probe_pairs_per_domain`` a domain, None: all), the L2 weight is chosen on validation.
    ``store`` (training.router_store, made for this body) supplies the features it holds and keeps
    the ones computed here; the run's ``features`` entry says which were which, ``new_domain``
    where the last domain's validation prompts go (:func:`routing_of`).
    """
    start = time.perf_counter()

    def features(split: str, per_domain: int | None):
        return prompt_features(store, pool_fn, router_prompts(splits, cfg.domains, split, per_domain), split, tok,
                               cfg.router_max_length, cfg.bf16)

    x, y = features("train", cfg.probe_pairs_per_domain)
    val_x, val_y = features("validation", cfg.val_pairs_per_domain)
    weight, bias, info = fit_router_head(x, y, val_x, val_y, len(cfg.domains))
    set_linear(head, weight, bias)
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


def routing_note(routing: dict, domain: str) -> str:
    """``routing`` (:func:`routing_of` of new domain ``domain``) in words, with the advice to retrain the
    router (``--router full``) when its recall is under ``LOW_RECALL``."""
    if not routing["prompts"]:
        return f"router: '{domain}' has no validation prompts, so where the router sends them was not measured"
    line = (f"router: {100 * routing['recall']:.1f}% of '{domain}' validation prompts ({routing['prompts']}) "
            f"route to it")
    other = routing["most_confused_with"]
    if other:
        line += f"; {routing['count']} go to '{other}'"
    if routing["recall"] < LOW_RECALL:
        line += (f". Under {100 * LOW_RECALL:.0f}%, its prompts overlap '{other}''s in the features of the router's "
                 f"body, which was trained without '{domain}' and stayed frozen: a new head cannot tell them apart. "
                 f"To route them better, use --router full (it trains the router again, at the cost of its whole "
                 f"training)")
    return line


# ---- the router schemes --------------------------------------------------------------------------

def _arliss_head(model: ArlissModel, job: Addition) -> tuple[dict, RouterFeatures]:
    """``"head"``: the router adapter stays as it is, byte for byte; only the router head is refitted,
    (n+1)-way, on the frozen adapter's prompt features (:func:`refit_router_head`).

    Costs one pass of the body over the new domain's prompts: the old domains' features come from
    the checkpoint's store (training.router_store), which training writes and this scheme passes
    on, grown, to the new checkpoint. A checkpoint without one (or with one from another body)
    costs a pass over every domain's prompts (the run's ``features`` entry says which);
    ``python -m training router-features --from CHECKPOINT`` writes it once.
    """
    model.eval()
    store = RouterFeatures.load(job.src, body_context(arliss_body(model), job.tok, job.cfg.router_max_length,
                                                      model.config.pooling, job.cfg.bf16))
    run = refit_router_head(lambda b: model.pooled(ROUTER, b), model.router_head, job.splits, job.cfg, job.tok, store)
    return run, store


def _arliss_full(model: ArlissModel, job: Addition) -> tuple[dict, None]:
    """``"full"``: the router adapter re-initialised and trained with its head as in training.methods
    (probe start, then fine-tuning): the router a full retraining would get, at its whole cost."""
    model.reset_router()   # only now, after the new adapter trained: it is then the adapter "head" trains
    return arliss_router(model, job.splits, job.cfg, job.tok), None


def _rodos_head(job: Addition) -> tuple[RewardModel, dict, RouterFeatures]:
    """``"head"`` for RODOS: the router classifier's body stays as it is; its ``score`` head grows by
    one row and is refitted on the body's prompt features (as :func:`_arliss_head`, same costs)."""
    classifier = RewardModel.from_pretrained(job.src / "router").eval()
    classifier.score = _grown_linear(classifier.score, len(job.cfg.domains))
    classifier.config.num_labels = len(job.cfg.domains)
    store = RouterFeatures.load(job.src, body_context(rodos_body(classifier), job.tok, job.cfg.router_max_length,
                                                      classifier.config.pooling, job.cfg.bf16))
    run = refit_router_head(lambda b: classifier.pooled(**b), classifier.score, job.splits, job.cfg, job.tok, store)
    return classifier, run, store


def _rodos_full(job: Addition) -> tuple[RewardModel, dict, None]:
    """``"full"`` for RODOS: a new router on the base model, trained as in training.methods."""
    classifier, run = rodos_router(job.splits, job.cfg, job.tok)
    return classifier, run, None


@dataclass(frozen=True)
class RouterScheme:
    """How the router learns the new domain, per routed method.

    ``arliss(model, job) -> (run, store)`` updates the grown ARLISS model's router in place;
    ``rodos(job) -> (router classifier, run, store)``. ``store`` is the router body's feature
    store when the body stayed byte for byte (it goes, grown, to the new checkpoint), None when
    the body moved (its features are then stale). ``help``: one line for ``--router``'s help.
    """

    help: str
    arliss: Callable[[ArlissModel, Addition], tuple[dict, RouterFeatures | None]]
    rodos: Callable[[Addition], tuple[RewardModel, dict, RouterFeatures | None]]


SCHEMES = {
    "head": RouterScheme("refit only the router's head on its frozen body's features (default, cheap)",
                         _arliss_head, _rodos_head),
    "full": RouterScheme("train the router again as training does (for a domain whose prompts the frozen "
                         "router confuses with an old domain's)", _arliss_full, _rodos_full),
}
ROUTER_SCHEMES = tuple(SCHEMES)    # the first is the default


def _grow_arliss(job: Addition, scheme: RouterScheme) -> dict:
    model = ArlissModel.load(job.src)
    grown = dataclasses.replace(model.config, domains=(*model.config.domains, job.domain))
    plain = load_backbone(grown)                                  # layer names for the new adapter's targets
    model.backbone.add_adapter(job.domain, grown.lora_config(job.domain, plain))
    del plain
    n = len(grown.domains)
    model.reward_heads = _grown_linear(model.reward_heads, n)
    model.router_head = _grown_linear(model.router_head, n)
    model.config = grown
    model.train()
    runs = {job.domain: arliss_reward_adapter(model, job.splits, job.cfg, job.tok, job.domain)}
    runs["router"], store = scheme.arliss(model, job)
    model.save(job.out)
    kept = list(grown.domains[:-1])
    if store is not None:                                     # same body: its n+1 domains' features go along
        store.save(job.out, grown.domains)
        kept.append(ROUTER)
    for old in kept:                                          # byte-identical copies of the untouched adapters
        shutil.rmtree(job.out / "adapters" / old)
        shutil.copytree(job.src / "adapters" / old, job.out / "adapters" / old)
    return runs


def _grow_rodos(job: Addition, scheme: RouterScheme) -> dict:
    runs = {}
    for old in job.cfg.domains[:-1]:
        shutil.copytree(job.src / "rewards" / old, job.out / "rewards" / old)
    model, runs[job.domain] = rodos_reward_model(job.splits, job.cfg, job.tok, job.domain)
    model.save_pretrained(job.out / "rewards" / job.domain)
    del model
    classifier, runs["router"], store = scheme.rodos(job)
    classifier.save_pretrained(job.out / "router")
    if store is not None:                                     # same body: its n+1 domains' features go along
        store.save(job.out, job.cfg.domains)
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
    cfg = config_from_card(card, tuple(card.domains), src)
    tok = load_tokenizer(src)
    if card.method == "arliss":
        model = ArlissModel.load(src).eval()
        return store_router_features(lambda b: model.pooled(ROUTER, b), arliss_body(model), model.config.pooling,
                                     splits, cfg, tok, src)
    classifier = RewardModel.from_pretrained(src / "router").eval()
    return store_router_features(lambda b: classifier.pooled(**b), rodos_body(classifier), classifier.config.pooling,
                                 splits, cfg, tok, src)


def _check_request(card: CheckpointCard, src: Path, domain: str, out: Path, method: str | None, router: str) -> None:
    """The errors add_domain raises before any work: a bad scheme, method or domain, a used ``out``."""
    if router not in SCHEMES:
        raise ValueError(f"router scheme must be one of {list(ROUTER_SCHEMES)}, got {router!r}")
    if method is not None and method != card.method:
        raise ValueError(f"'{src}' holds a {card.method} checkpoint, not {method}")
    if card.method not in ROUTED:
        raise ValueError(f"{card.method} has no per-domain parts to add to: adding a domain means retraining it "
                         f"on all domains (`python -m training train --method {card.method}`)")
    if domain in card.domains:
        raise ValueError(f"domain '{domain}' is already in '{src}' ({list(card.domains)})")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--out '{out}' exists and is not empty")


def add_domain(src: str | Path, domain: str, data: str | Path, out: str | Path, method: str | None = None,
               old_splits: dict | None = None, router: str = ROUTER_SCHEMES[0]) -> dict:
    """Write ``src`` grown by ``domain`` (pairs in ``data``) to ``out``; returns the run's stats.

    ``old_splits``: the existing domains' ``{domain: {split: [Pair]}}`` (default: the vendored data).
    ``router``: a name in ``SCHEMES`` (``"head"``, the default, or ``"full"``).
    """
    src, out, data = Path(src), Path(out), Path(data)
    card = CheckpointCard.load(src)
    _check_request(card, src, domain, out, method, router)
    start = time.perf_counter()
    new_pairs = split_pairs(load_pairs_file(data, domain))
    if old_splits is None:
        unknown = [d for d in card.domains if d not in DOMAINS]
        if unknown:
            raise ValueError(f"the router needs the old domains' data; {unknown} are not vendored: pass old_splits")
        old_splits = load_splits(tuple(card.domains))
    splits = {**{d: old_splits[d] for d in card.domains}, domain: new_pairs}
    cfg = config_from_card(card, (*card.domains, domain), out)
    torch.manual_seed(cfg.seed)
    job = Addition(src, out, splits, cfg, load_tokenizer(src))   # the source's tokenizer (its segment-id choice too)
    out.mkdir(parents=True, exist_ok=True)
    runs = (_grow_arliss if card.method == "arliss" else _grow_rodos)(job, SCHEMES[router])
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    seconds = time.perf_counter() - start
    lineage = list(card.extra.get("lineage", [])) + [{
        "added": domain, "data": str(data.resolve()), "data_sha256": sha256_file(data),
        "source_checkpoint": str(src.resolve()), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 2), "router": router, "pairs": {k: len(v) for k, v in new_pairs.items()}}]
    extra = {k: v for k, v in card.extra.items() if k not in ("train_config", "train", "lineage")}
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs, "add_seconds": seconds}
    CheckpointCard(card.method, cfg.domains, card.max_length, base_model(cfg), card.truncation or TRUNCATION_POLICY,
                   extra={**extra, "train_config": cfg.to_dict(), "train": stats, "lineage": lineage}).save(out)
    return stats
