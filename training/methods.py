"""The four methods' training recipes; each writes a checkpoint (see models.checkpoint) and returns stats.

Every reward model (baseline, MoRE, each RODOS domain model, each ARLISS reward adapter) trains
the same way (training.loop): the top ``train_layers`` transformer layers and the head, on the
domain's (or all domains') train pairs, with model choice on validation pairs. Routers (RODOS's
classifier, ARLISS's router adapter) see the prompt alone and train every layer: they are cheap
(``router_max_length`` tokens) and routing errors cost whole domains.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from pathlib import Path

import torch
from transformers import AutoConfig

from models.arliss import ROUTER, ArlissConfig, ArlissModel
from models.base import default_base_model, default_pooling, freeze_lower_layers, load_tokenizer
from models.checkpoint import CheckpointCard
from models.reward import RewardModel
from core.text import TRUNCATION_POLICY, encode_pairs, encode_prompts, single_segment
from training.config import TrainConfig
from core.data import Pair, take
from training.probe import FeatureCache, fit_pairwise_head, fit_pairwise_mlp, fit_router_head, pooled_features
from training.router_store import RouterFeatures, arliss_body, body_context, prompt_features, rodos_body, unique_prompts
from training.loop import (LoopConfig, classifier_validation, pairwise_validation, train_classifier,
                           train_pairwise)


def _base(cfg: TrainConfig) -> str:
    return cfg.base_model or default_base_model()


def _tokenizer(cfg: TrainConfig):
    tok = load_tokenizer(_base(cfg))
    return tok if cfg.segment_ids else single_segment(tok)


def _loop(cfg: TrainConfig, lr: float, weight_decay: float | None = None) -> LoopConfig:
    return LoopConfig(lr=lr, head_lr=cfg.head_lr, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed, bf16=cfg.bf16,
                      weight_decay=cfg.weight_decay if weight_decay is None else weight_decay,
                      eval_points=cfg.eval_points)


def _pairs(splits: dict, domains: tuple[str, ...], split: str, n: int | None) -> list[Pair]:
    return [p for d in domains for p in take(splits[d][split], n)]


def _encode(tok, pairs: list[Pair], cfg: TrainConfig):
    prompts = [p.prompt for p in pairs]
    return (encode_pairs(tok, prompts, [p.chosen for p in pairs], cfg.max_length, TRUNCATION_POLICY),
            encode_pairs(tok, prompts, [p.rejected for p in pairs], cfg.max_length, TRUNCATION_POLICY))


def _pairwise(score_fn, named, modules, splits: dict, domains: tuple[str, ...], tok, cfg: TrainConfig, lr: float,
              desc: str, weight_decay: float | None = None) -> dict:
    chosen, rejected = _encode(tok, _pairs(splits, domains, "train", cfg.train_pairs_per_domain), cfg)
    validate = None
    if cfg.eval_points:
        val = _pairs(splits, domains, "validation", cfg.val_pairs_per_domain)
        val_c, val_r = _encode(tok, val, cfg)
        validate = pairwise_validation(score_fn, val_c, val_r, tok.pad_token_id,
                                       [p.domain for p in val] if cfg.model_choice == "domain_mean" else None)
    return train_pairwise(score_fn, named, modules, chosen, rejected, tok.pad_token_id,
                          _loop(cfg, lr, weight_decay), desc, validate)


def _cache(cfg: TrainConfig) -> FeatureCache:
    return FeatureCache(Path(cfg.out_dir) / "features")


def _feature_key(cfg: TrainConfig, kind: str, texts: list[str], **extra) -> dict:
    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()
    pooling = default_pooling(AutoConfig.from_pretrained(_base(cfg)))
    return {"kind": kind, "base": _base(cfg), "pooling": pooling, "segments": cfg.segment_ids, "texts": digest,
            "n": len(texts), **extra}


@functools.lru_cache(maxsize=1)
def _frozen_base(base: str, pad_token_id: int) -> RewardModel:
    """The pretrained base model, loaded once for every feature-cache miss of a run."""
    return RewardModel.from_base(base, 1, pad_token_id).eval()


def _base_pooler(cfg: TrainConfig, tok):
    """``pool_fn(batch) -> [B, H]`` of the pretrained base model (what every head starts from)."""
    model = _frozen_base(_base(cfg), tok.pad_token_id)
    return lambda b: model.pooled(b["input_ids"], b["attention_mask"],
                                  **({"token_type_ids": b["token_type_ids"]} if "token_type_ids" in b else {}))


def _pair_features(cfg: TrainConfig, tok, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """Base-model features ([N, H] chosen, [N, H] rejected) of ``pairs`` (cached, see training.probe)."""
    chosen, rejected = _encode(tok, pairs, cfg)
    key = _feature_key(cfg, "pair_features", [p.id for p in pairs], max_length=cfg.max_length,
                       policy=TRUNCATION_POLICY, bf16=cfg.bf16)
    feats = _cache(cfg).get(key, lambda: pooled_features(_base_pooler(cfg, tok), chosen + rejected,
                                                         tok.pad_token_id, bf16=cfg.bf16))
    return feats[: len(pairs)], feats[len(pairs):]


def _probe_reward(cfg: TrainConfig, tok, splits: dict, domains: tuple[str, ...], head_hidden: int = 0):
    """LP-FT start of a reward head fitted on the base model's features: ``(head state dict, info)``.

    Linear (``head_hidden`` 0, ``{"weight" [1, H], "bias" [1]}``) or two-layer (see training.probe).
    Features are cached per domain: RODOS and ARLISS reuse the baseline's.
    """
    def features(split: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        per_domain = {d: _pair_features(cfg, tok, take(splits[d][split], n)) for d in domains}
        names = [d for d, (c, _) in per_domain.items() for _ in range(len(c))]
        return (torch.cat([c for c, _ in per_domain.values()]), torch.cat([r for _, r in per_domain.values()]), names)

    train_c, train_r, _ = features("train", cfg.probe_pairs_per_domain)
    val_c, val_r, names = features("validation", cfg.val_pairs_per_domain)
    names = names if cfg.model_choice == "domain_mean" else None
    if head_hidden:
        return fit_pairwise_mlp(train_c, train_r, val_c, val_r, head_hidden, val_domains=names, seed=cfg.seed)
    w, info = fit_pairwise_head(train_c - train_r, val_c - val_r, val_domains=names)
    return {"weight": w.reshape(1, -1), "bias": torch.zeros(1)}, info


def router_features(cfg: TrainConfig, tok, splits: dict, split: str,
                    per_domain: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Base-model features [N, H] of ``split``'s unique prompts (``cfg.router_max_length`` tokens) and labels [N] (cached)."""
    examples, labels, texts = _router_data(splits, cfg, tok, split, per_domain, with_texts=True)
    key = _feature_key(cfg, "prompts", texts, max_length=cfg.router_max_length, bf16=cfg.bf16)
    x = _cache(cfg).get(key, lambda: pooled_features(_base_pooler(cfg, tok), examples, tok.pad_token_id, bf16=cfg.bf16))
    return x, torch.tensor(labels)


def _probe_router(cfg: TrainConfig, tok, splits: dict):
    """LP-FT start of a router head: ``(weight [n, H], bias [n], info)`` on the base model's prompt features."""
    x, y = router_features(cfg, tok, splits, "train", cfg.probe_pairs_per_domain)
    val_x, val_y = router_features(cfg, tok, splits, "validation", cfg.val_pairs_per_domain)
    return fit_router_head(x, y, val_x, val_y, len(cfg.domains))


def _set_linear(head: torch.nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None = None, row: int | None = None):
    with torch.no_grad():
        if row is None:
            head.weight.copy_(weight.reshape(head.weight.shape))
            head.bias.copy_(bias if bias is not None else torch.zeros_like(head.bias))
        else:
            head.weight[row].copy_(weight)
            head.bias[row] = 0.0


def _router_data(splits: dict, cfg: TrainConfig, tok, split: str, per_domain: int | None, with_texts: bool = False):
    examples, labels, texts = [], [], []
    for label, domain in enumerate(cfg.domains):
        prompts = unique_prompts(splits[domain][split], per_domain)
        examples += encode_prompts(tok, prompts, cfg.router_max_length)
        labels += [label] * len(prompts)
        texts += prompts
    return (examples, labels, texts) if with_texts else (examples, labels)


def _router(logits_fn, named, modules, splits, cfg: TrainConfig, tok, lr: float, desc: str,
            weight_decay: float | None = None) -> dict:
    examples, labels = _router_data(splits, cfg, tok, "train", cfg.router_examples_per_domain)
    loop = dataclasses.replace(_loop(cfg, lr, weight_decay), bucket_window=1)  # prompt length tells the domain
    validate = None
    if cfg.eval_points:
        val_x, val_y = _router_data(splits, cfg, tok, "validation", cfg.val_pairs_per_domain)
        validate = classifier_validation(logits_fn, val_x, val_y, tok.pad_token_id)
    return train_classifier(logits_fn, named, modules, examples, labels, tok.pad_token_id, loop, desc, validate)


def store_router_features(pool_fn, body, pooling: str, splits: dict, cfg: TrainConfig, tok, out: Path) -> dict:
    """Write the router body's prompt features into checkpoint ``out`` (training.router_store).

    ``pool_fn(batch) -> [B, H]`` is the body in eval mode, ``body`` its named parameters. The entries
    are those the ``"head"`` scheme of training.add_domain fits on: train and validation prompts with
    the probe's caps. Returns ``{"seconds", "prompts"}``.
    """
    start = time.perf_counter()
    store = RouterFeatures(body_context(body, tok, cfg.router_max_length, pooling, cfg.bf16))
    for split, per_domain in (("train", cfg.probe_pairs_per_domain), ("validation", cfg.val_pairs_per_domain)):
        prompt_features(store, pool_fn, splits, cfg.domains, split, per_domain, tok, cfg.router_max_length, cfg.bf16)
    store.save(out, cfg.domains)
    return {"seconds": round(time.perf_counter() - start, 2), "prompts": sum(store.computed.values())}


def _save_card(path: Path, method: str, cfg: TrainConfig, stats: dict) -> None:
    CheckpointCard(method, cfg.domains, cfg.max_length, _base(cfg), TRUNCATION_POLICY, extra={
        "router_max_length": cfg.router_max_length, "train_config": cfg.to_dict(), "train": stats}).save(path)


def _summary(run: dict) -> dict:
    """Loss at the start and end, the validation checks, the chosen step and the loss curve."""
    losses = run["losses"]
    k = max(1, len(losses) // 10)
    return {"steps": run["steps"], "seconds": round(run["seconds"], 2),
            "loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
            "evals": run["evals"], "chosen_step": run["chosen_step"],
            "losses": [round(x, 4) for x in losses]}


def _reward_model(cfg: TrainConfig, tok, num_labels: int = 1, train_layers: int | None = None, **moe) -> RewardModel:
    """A RewardModel on the base checkpoint with all but the top ``train_layers`` layers frozen."""
    model = RewardModel.from_base(_base(cfg), num_labels, tok.pad_token_id, **moe)
    layers = model.config.num_hidden_layers
    freeze_lower_layers(model, layers, train_layers)
    for i in getattr(model.config, "moe_layers", []):
        if train_layers is not None and i < layers - train_layers:
            raise ValueError(f"MoE layer {i} is frozen (train_layers={train_layers} of {layers}); "
                             f"choose moe_layers among the top {train_layers}")
    return model.train()


def _save_single(model, tok, method: str, cfg: TrainConfig, run: dict, probe: dict | None) -> dict:
    """Save a one-model method (baseline, MoRE) with its tokenizer and card."""
    out = cfg.method_dir(method)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    stats = {"train_seconds": run["seconds"], "runs": {"reward": _with_probe(_summary(run), probe)}}
    _save_card(out, method, cfg, stats)
    return stats


def _score(model):
    """``score_fn`` for the pairwise loop: rewards [B] and the MoE balance loss (None without MoE)."""
    def score(batch):
        out = model(**batch)
        return out.logits.squeeze(-1), out.get("aux_loss")
    return score


def _probed_reward_head(model: RewardModel, cfg: TrainConfig, tok, splits: dict, domains: tuple[str, ...]) -> dict | None:
    """Start ``model.score`` (linear or two-layer) from its probe (``cfg.linear_probe``); returns the probe's info."""
    if not cfg.linear_probe:
        return None
    state, info = _probe_reward(cfg, tok, splits, domains, model.config.head_hidden)
    model.score.load_state_dict(state)
    return info


def _with_probe(summary: dict, info: dict | None) -> dict:
    return {**summary, "probe": info} if info is not None else summary


def train_baseline(splits: dict, cfg: TrainConfig) -> dict:
    tok = _tokenizer(cfg)
    model = _reward_model(cfg, tok, train_layers=cfg.train_layers, head_hidden=cfg.single_head_hidden)
    probe = _probed_reward_head(model, cfg, tok, splits, cfg.domains)
    run = _pairwise(_score(model), model.named_parameters(), [model], splits, cfg.domains, tok, cfg, cfg.lr, "baseline")
    return _save_single(model, tok, "baseline", cfg, run, probe)


def train_more(splits: dict, cfg: TrainConfig) -> dict:
    tok = _tokenizer(cfg)
    model = _reward_model(cfg, tok, train_layers=cfg.train_layers, num_experts=cfg.experts, top_k=cfg.top_k,
                          moe_layers=list(cfg.moe_layers) if cfg.moe_layers is not None else None,
                          router_aux_loss_coef=cfg.router_aux_loss_coef, expert_noise=cfg.expert_noise, seed=cfg.seed,
                          head_hidden=cfg.single_head_hidden)
    probe = _probed_reward_head(model, cfg, tok, splits, cfg.domains)  # base features: experts start within noise of them
    run = _pairwise(_score(model), model.named_parameters(), [model], splits, cfg.domains, tok, cfg, cfg.lr, "more")
    return _save_single(model, tok, "more", cfg, run, probe)


def rodos_router(splits: dict, cfg: TrainConfig, tok) -> tuple[RewardModel, dict]:
    """RODOS's n-way router over ``cfg.domains`` (probe start, then every layer fine-tuned): (model, run summary)."""
    router = _reward_model(cfg, tok, num_labels=len(cfg.domains), train_layers=None)
    probe = None
    if cfg.linear_probe:
        weight, bias, probe = _probe_router(cfg, tok, splits)
        _set_linear(router.score, weight, bias)
    run = _router(lambda b: router(**b).logits, router.named_parameters(), [router], splits, cfg, tok, cfg.router_lr,
                  "rodos/router")
    return router, _with_probe(_summary(run), probe)


def rodos_reward_model(splits: dict, cfg: TrainConfig, tok, domain: str) -> tuple[RewardModel, dict]:
    """One RODOS domain model (probe start, then the top layers fine-tuned on ``domain``): (model, run summary)."""
    model = _reward_model(cfg, tok, train_layers=cfg.train_layers)
    probe = _probed_reward_head(model, cfg, tok, splits, (domain,))
    run = _pairwise(_score(model), model.named_parameters(), [model], splits, (domain,), tok, cfg, cfg.lr,
                    f"rodos/{domain}")
    return model, _with_probe(_summary(run), probe)


def train_rodos(splits: dict, cfg: TrainConfig) -> dict:
    tok = _tokenizer(cfg)
    out = cfg.method_dir("rodos")
    runs = {}
    router, runs["router"] = rodos_router(splits, cfg, tok)
    router.save_pretrained(out / "router")
    router.eval()
    features = store_router_features(lambda b: router.pooled(**b), rodos_body(router), router.config.pooling, splits,
                                     cfg, tok, out)
    del router
    for domain in cfg.domains:
        model, runs[domain] = rodos_reward_model(splits, cfg, tok, domain)
        model.save_pretrained(out / "rewards" / domain)
    tok.save_pretrained(out)
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs, "router_features": features}
    _save_card(out, "rodos", cfg, stats)
    return stats


# ARLISS heads share one [n, H] matrix: weight decay 0 so training one domain never shrinks another's row.

def arliss_router(model: ArlissModel, splits: dict, cfg: TrainConfig, tok) -> dict:
    """Train ARLISS's router adapter and head over ``cfg.domains`` (probe start on the base features)."""
    probe = None
    if cfg.linear_probe:  # a fresh LoRA adapter is the identity (B = 0): the base model's features
        weight, bias, probe = _probe_router(cfg, tok, splits)
        _set_linear(model.router_head, weight, bias)
    run = _router(model.router_logits, model.trainable_for(ROUTER), [model], splits, cfg, tok, cfg.lora_lr,
                  "arliss/router", weight_decay=0.0)
    return _with_probe(_summary(run), probe)


def arliss_reward_adapter(model: ArlissModel, splits: dict, cfg: TrainConfig, tok, domain: str) -> dict:
    """Train ``domain``'s (fresh) reward adapter and its head row (probe start on the base features)."""
    probe = None
    if cfg.linear_probe:
        state, probe = _probe_reward(cfg, tok, splits, (domain,))
        _set_linear(model.reward_heads, state["weight"].reshape(-1), row=model.domain_index(domain))
    run = _pairwise(lambda b: (model.rewards(b, domain), None), model.trainable_for(domain), [model], splits,
                    (domain,), tok, cfg, cfg.lora_lr, f"arliss/{domain}", weight_decay=0.0)
    return _with_probe(_summary(run), probe)


def train_arliss(splits: dict, cfg: TrainConfig) -> dict:
    tok = _tokenizer(cfg)
    base_cfg = AutoConfig.from_pretrained(_base(cfg))
    layers = base_cfg.num_hidden_layers
    top = None if cfg.train_layers is None or cfg.train_layers >= layers else tuple(range(layers - cfg.train_layers, layers))
    # absolute: ArlissConfig.load reads a relative base_model as relative to the checkpoint folder
    acfg = ArlissConfig(domains=cfg.domains, base_model=str(Path(_base(cfg)).resolve()), pad_token_id=tok.pad_token_id,
                        lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, pooling=default_pooling(base_cfg),
                        lora_layers=top)
    model = ArlissModel.new(acfg).train()
    runs = {"router": arliss_router(model, splits, cfg, tok)}
    for domain in cfg.domains:
        runs[domain] = arliss_reward_adapter(model, splits, cfg, tok, domain)
    out = cfg.method_dir("arliss")
    model.save(out)
    tok.save_pretrained(out)
    model.eval()
    features = store_router_features(lambda b: model._pooled(ROUTER, b), arliss_body(model), acfg.pooling, splits, cfg,
                                     tok, out)
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs, "router_features": features}
    _save_card(out, "arliss", cfg, stats)
    return stats


TRAINERS = {"baseline": train_baseline, "more": train_more, "rodos": train_rodos, "arliss": train_arliss}


def train(method: str, splits: dict, cfg: TrainConfig) -> dict:
    if method not in TRAINERS:
        raise ValueError(f"unknown method '{method}'; choose from {list(TRAINERS)}")
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    stats = TRAINERS[method](splits, cfg)
    stats["wall_seconds"] = time.perf_counter() - start
    return stats
