"""The building blocks every method's training recipe is made of (training.methods, training.add_domain).

A recipe reads its data, starts a head as a linear probe on the pretrained base model's frozen
features (LP-FT, training.probe), then fine-tunes with training.loop's one optimisation recipe:

- configuration: :func:`base_model`, :func:`tokenizer`, :func:`loop_config`;
- data: :func:`domain_pairs` and :func:`encode_preferences` (reward models, [prompt, response]
  pairs), :func:`router_prompts` and :func:`router_data` (routers, the prompt alone);
- probe starts: base-model features, cached on disk (:func:`pair_features`, :func:`router_features`),
  fitted as reward or router heads (:func:`probe_reward`, :func:`probe_router`), written into a
  model's head (:func:`set_linear`, :func:`probed_reward_head`);
- runs: :func:`pairwise_run` and :func:`router_run` (encode, validate, train), :func:`summary`;
- models and cards: :func:`reward_model`, :func:`score_fn`, :func:`save_card`,
  :func:`store_router_features`.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from pathlib import Path

import torch
from transformers import AutoConfig

from core.data import Pair, take
from core.text import TRUNCATION_POLICY, Encoded, encode_pairs, encode_prompts, single_segment
from models.base import default_base_model, default_pooling, freeze_lower_layers, load_tokenizer
from models.checkpoint import CheckpointCard
from models.reward import RewardModel
from training.config import TrainConfig
from training.device import current, place
from training.loop import (LoopConfig, classifier_validation, pairwise_validation, train_classifier,
                           train_pairwise)
from training.probe import FeatureCache, fit_pairwise_head, fit_pairwise_mlp, fit_router_head, pooled_features
from training.router_store import RouterFeatures, body_context, domain_labels, prompt_features


# ---- configuration -------------------------------------------------------------------------------

def base_model(cfg: TrainConfig) -> str:
    """The pretrained checkpoint every model of the run starts from (``cfg.base_model`` or the default)."""
    return cfg.base_model or default_base_model()


def tokenizer(cfg: TrainConfig):
    """The base model's tokenizer; one segment (no response segment ids) unless ``cfg.segment_ids``."""
    tok = load_tokenizer(base_model(cfg))
    return tok if cfg.segment_ids else single_segment(tok)


def loop_config(cfg: TrainConfig, lr: float, weight_decay: float | None = None) -> LoopConfig:
    """training.loop's settings for one run at ``lr`` (``weight_decay`` None: ``cfg.weight_decay``)."""
    return LoopConfig(lr=lr, head_lr=cfg.head_lr, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                      bf16=cfg.bf16, weight_decay=cfg.weight_decay if weight_decay is None else weight_decay,
                      eval_points=cfg.eval_points)


# ---- data ----------------------------------------------------------------------------------------

def domain_pairs(splits: dict, domains: tuple[str, ...], split: str, n: int | None) -> list[Pair]:
    """The first ``n`` (None: all) ``split`` pairs of each of ``domains``, domain after domain."""
    return [p for d in domains for p in take(splits[d][split], n)]


def encode_preferences(tok, pairs: list[Pair], cfg: TrainConfig) -> tuple[list[Encoded], list[Encoded]]:
    """(chosen, rejected): ``[prompt, response]`` encodings of ``pairs``, ``cfg.max_length`` tokens each."""
    prompts = [p.prompt for p in pairs]
    return (encode_pairs(tok, prompts, [p.chosen for p in pairs], cfg.max_length, TRUNCATION_POLICY),
            encode_pairs(tok, prompts, [p.rejected for p in pairs], cfg.max_length, TRUNCATION_POLICY))


def router_prompts(splits: dict, domains: tuple[str, ...], split: str, per_domain: int | None) -> dict[str, list[str]]:
    """``{domain: prompts}`` in ``domains``' order (a router's class i is ``domains[i]``): each domain's unique
    ``split`` prompts in first-seen order, the first ``per_domain`` of them (None: all).

    One prompt is one router example, however many pairs share it. What a router trains on, is
    validated on, and what its features are computed for (here and in training.router_store).
    """
    out = {}
    for domain in domains:
        prompts = list(dict.fromkeys(p.prompt for p in splits[domain][split]))
        out[domain] = prompts[:per_domain] if per_domain else prompts
    return out


def router_data(splits: dict, cfg: TrainConfig, tok, split: str,
                per_domain: int | None) -> tuple[list[Encoded], list[int]]:
    """A router's examples: the :func:`router_prompts` of ``cfg.domains`` encoded (their last
    ``cfg.router_max_length`` tokens, core.text.encode_prompts) and their labels (domain index), N each."""
    prompts = router_prompts(splits, cfg.domains, split, per_domain)
    examples = [e for texts in prompts.values() for e in encode_prompts(tok, texts, cfg.router_max_length)]
    return examples, domain_labels(prompts).tolist()


# ---- probe starts on the base model's features ---------------------------------------------------

def feature_cache(cfg: TrainConfig) -> FeatureCache:
    """The run's on-disk cache of base-model features (``<out_dir>/features``, shared by every method)."""
    return FeatureCache(Path(cfg.out_dir) / "features")


def feature_key(cfg: TrainConfig, kind: str, texts: list[str], **extra) -> dict:
    """The FeatureCache key of base-model features of ``texts``: everything that changes them."""
    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()
    pooling = default_pooling(AutoConfig.from_pretrained(base_model(cfg)))
    return {"kind": kind, "base": base_model(cfg), "pooling": pooling, "segments": cfg.segment_ids, "texts": digest,
            "n": len(texts), **extra}


@functools.lru_cache(maxsize=1)
def _frozen_base(base: str, pad_token_id: int, where: str) -> RewardModel:
    """The pretrained base model on device ``where``, loaded once for every feature-cache miss of a run."""
    return RewardModel.from_base(base, 1, pad_token_id).to(where).eval()


def base_pooler(cfg: TrainConfig, tok):
    """``pool_fn(batch) -> [B, H]`` of the pretrained base model (what every head starts from)."""
    model = _frozen_base(base_model(cfg), tok.pad_token_id, current())
    return lambda b: model.pooled(b["input_ids"], b["attention_mask"],
                                  **({"token_type_ids": b["token_type_ids"]} if "token_type_ids" in b else {}))


def pair_features(cfg: TrainConfig, tok, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """Base-model features ([N, H] chosen, [N, H] rejected) of ``pairs`` (cached, keyed by the pairs' ids)."""
    chosen, rejected = encode_preferences(tok, pairs, cfg)
    key = feature_key(cfg, "pair_features", [p.id for p in pairs], max_length=cfg.max_length,
                      policy=TRUNCATION_POLICY, bf16=cfg.bf16)
    feats = feature_cache(cfg).get(key, lambda: pooled_features(base_pooler(cfg, tok), chosen + rejected,
                                                                tok.pad_token_id, bf16=cfg.bf16))
    return feats[: len(pairs)], feats[len(pairs):]


def router_features(cfg: TrainConfig, tok, splits: dict, split: str,
                    per_domain: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Base-model features [N, H] of the :func:`router_prompts` of ``cfg.domains`` (``cfg.router_max_length``
    tokens) and their labels [N] (domain index); the features cached, keyed by the prompts' text."""
    prompts = router_prompts(splits, cfg.domains, split, per_domain)
    texts = [p for domain_prompts in prompts.values() for p in domain_prompts]
    key = feature_key(cfg, "prompts", texts, max_length=cfg.router_max_length, bf16=cfg.bf16)
    x = feature_cache(cfg).get(key, lambda: prompt_features(None, base_pooler(cfg, tok), prompts, split, tok,
                                                            cfg.router_max_length, cfg.bf16)[0])
    return x, domain_labels(prompts)


def probe_reward(cfg: TrainConfig, tok, splits: dict, domains: tuple[str, ...],
                 head_hidden: int = 0) -> tuple[dict[str, torch.Tensor], dict]:
    """LP-FT start of a reward head fitted on the base model's features: ``(head state dict, info)``.

    Linear (``head_hidden`` 0, ``{"weight" [1, H], "bias" [1]}``) or two-layer (training.probe).
    Features are cached per domain: RODOS and ARLISS reuse the baseline's.
    """
    def features(split: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        per_domain = {d: pair_features(cfg, tok, take(splits[d][split], n)) for d in domains}
        names = [d for d, (c, _) in per_domain.items() for _ in range(len(c))]
        return (torch.cat([c for c, _ in per_domain.values()]), torch.cat([r for _, r in per_domain.values()]), names)

    train_c, train_r, _ = features("train", cfg.probe_pairs_per_domain)
    val_c, val_r, names = features("validation", cfg.val_pairs_per_domain)
    names = names if cfg.model_choice == "domain_mean" else None
    if head_hidden:
        return fit_pairwise_mlp(train_c, train_r, val_c, val_r, head_hidden, val_domains=names, seed=cfg.seed)
    w, info = fit_pairwise_head(train_c - train_r, val_c - val_r, val_domains=names)
    return {"weight": w.reshape(1, -1), "bias": torch.zeros(1)}, info


def probe_router(cfg: TrainConfig, tok, splits: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """LP-FT start of a router head: ``(weight [n, H], bias [n], info)`` on the base model's prompt features."""
    x, y = router_features(cfg, tok, splits, "train", cfg.probe_pairs_per_domain)
    val_x, val_y = router_features(cfg, tok, splits, "validation", cfg.val_pairs_per_domain)
    return fit_router_head(x, y, val_x, val_y, len(cfg.domains))


def set_linear(head: torch.nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None = None,
               row: int | None = None) -> None:
    """Write a fitted head into ``head`` [n, H], in place.

    ``row`` None: the whole head, ``head.weight = weight`` (any shape of n * H values) and
    ``head.bias = bias`` (None: zeros). ``row`` i: ``head.weight[i] = weight`` [H], ``head.bias[i] = 0``
    (one domain's row of ARLISS's shared reward heads; the others stay as they are).
    """
    with torch.no_grad():
        if row is None:
            head.weight.copy_(weight.reshape(head.weight.shape))
            head.bias.copy_(bias if bias is not None else torch.zeros_like(head.bias))
        else:
            head.weight[row].copy_(weight)
            head.bias[row] = 0.0


# ---- runs ----------------------------------------------------------------------------------------

def pairwise_run(score_fn, named, modules, splits: dict, domains: tuple[str, ...], tok, cfg: TrainConfig, lr: float,
                 desc: str, weight_decay: float | None = None) -> dict:
    """Bradley-Terry training (training.loop.train_pairwise) on ``domains``' train pairs
    (``cfg.train_pairs_per_domain`` each), model choice on their validation pairs (the domain mean
    with ``cfg.model_choice == "domain_mean"``). ``score_fn(batch) -> (rewards [2B], aux or None)``."""
    chosen, rejected = encode_preferences(tok, domain_pairs(splits, domains, "train", cfg.train_pairs_per_domain), cfg)
    validate = None
    if cfg.eval_points:
        val = domain_pairs(splits, domains, "validation", cfg.val_pairs_per_domain)
        val_c, val_r = encode_preferences(tok, val, cfg)
        validate = pairwise_validation(score_fn, val_c, val_r, tok.pad_token_id,
                                       [p.domain for p in val] if cfg.model_choice == "domain_mean" else None)
    return train_pairwise(score_fn, named, modules, chosen, rejected, tok.pad_token_id,
                          loop_config(cfg, lr, weight_decay), desc, validate)


def router_run(logits_fn, named, modules, splits: dict, cfg: TrainConfig, tok, lr: float, desc: str,
               weight_decay: float | None = None) -> dict:
    """Cross-entropy training of an n-way router (training.loop.train_classifier) on :func:`router_data`'s
    train prompts (``cfg.router_examples_per_domain`` each), model choice on the validation prompts.
    ``logits_fn(batch) -> [B, n]``, class i is ``cfg.domains[i]``."""
    examples, labels = router_data(splits, cfg, tok, "train", cfg.router_examples_per_domain)
    loop = dataclasses.replace(loop_config(cfg, lr, weight_decay), bucket_window=1)  # prompt length tells the domain
    validate = None
    if cfg.eval_points:
        val_x, val_y = router_data(splits, cfg, tok, "validation", cfg.val_pairs_per_domain)
        validate = classifier_validation(logits_fn, val_x, val_y, tok.pad_token_id)
    return train_classifier(logits_fn, named, modules, examples, labels, tok.pad_token_id, loop, desc, validate)


def summary(run: dict, probe: dict | None = None) -> dict:
    """A run for the card: loss at the start and end (mean of a tenth of the steps), the validation
    checks, the chosen step, the loss curve, and the probe's info when the head started as one."""
    losses = run["losses"]
    k = max(1, len(losses) // 10)
    out = {"steps": run["steps"], "seconds": round(run["seconds"], 2),
           "loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
           "evals": run["evals"], "chosen_step": run["chosen_step"],
           "losses": [round(x, 4) for x in losses]}
    return {**out, "probe": probe} if probe is not None else out


# ---- models and cards ----------------------------------------------------------------------------

def reward_model(cfg: TrainConfig, tok, num_labels: int = 1, train_layers: int | None = None, **moe) -> RewardModel:
    """A RewardModel on the base checkpoint with all but the top ``train_layers`` layers frozen (None: all train).

    ``moe``: RewardModel.from_base's MoE and head settings; an MoE layer below the trained ones is an error.
    """
    model = RewardModel.from_base(base_model(cfg), num_labels, tok.pad_token_id, **moe)
    layers = model.config.num_hidden_layers
    freeze_lower_layers(model, layers, train_layers)
    for i in getattr(model.config, "moe_layers", []):
        if train_layers is not None and i < layers - train_layers:
            raise ValueError(f"MoE layer {i} is frozen (train_layers={train_layers} of {layers}); "
                             f"choose moe_layers among the top {train_layers}")
    return place(model).train()


def score_fn(model: RewardModel):
    """``score_fn`` for :func:`pairwise_run`: rewards [B] and the MoE balance loss (None without MoE)."""
    def score(batch):
        out = model(**batch)
        return out.logits.squeeze(-1), out.get("aux_loss")
    return score


def probed_reward_head(model: RewardModel, cfg: TrainConfig, tok, splits: dict,
                       domains: tuple[str, ...]) -> dict | None:
    """Start ``model.score`` (linear or two-layer) from its probe (``cfg.linear_probe``); returns the probe's info."""
    if not cfg.linear_probe:
        return None
    state, info = probe_reward(cfg, tok, splits, domains, model.config.head_hidden)
    model.score.load_state_dict(state)
    return info


def save_card(path: Path, method: str, cfg: TrainConfig, stats: dict) -> None:
    """The checkpoint card of a freshly trained ``method`` (models.checkpoint): its config and run stats."""
    CheckpointCard(method, cfg.domains, cfg.max_length, base_model(cfg), TRUNCATION_POLICY, extra={
        "router_max_length": cfg.router_max_length, "train_config": cfg.to_dict(), "train": stats}).save(path)


def store_router_features(pool_fn, body, pooling: str, splits: dict, cfg: TrainConfig, tok, out: Path) -> dict:
    """Write the router body's prompt features into checkpoint ``out`` (training.router_store).

    ``pool_fn(batch) -> [B, H]`` is the body in eval mode, ``body`` its named parameters. The entries
    are those the ``"head"`` scheme of training.add_domain fits on: train and validation prompts with
    the probe's caps. Returns ``{"seconds", "prompts"}``.
    """
    start = time.perf_counter()
    store = RouterFeatures(body_context(body, tok, cfg.router_max_length, pooling, cfg.bf16))
    for split, per_domain in (("train", cfg.probe_pairs_per_domain), ("validation", cfg.val_pairs_per_domain)):
        prompt_features(store, pool_fn, router_prompts(splits, cfg.domains, split, per_domain), split, tok,
                        cfg.router_max_length, cfg.bf16)
    store.save(out, cfg.domains)
    return {"seconds": round(time.perf_counter() - start, 2), "prompts": sum(store.computed.values())}
