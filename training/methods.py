"""The four methods' training recipes; each writes a checkpoint (see models.checkpoint) and returns stats.

Every reward model (baseline, MoRE, each RODOS domain model, each ARLISS reward adapter) trains
the same way (training.loop): the top ``train_layers`` transformer layers and the head, on the
domain's (or all domains') train pairs, with model choice on validation pairs. Routers (RODOS's
classifier, ARLISS's router adapter) see the prompt alone and train every layer: they are cheap
(``router_max_length`` tokens) and routing errors cost whole domains. The building blocks the
recipes share (data, probe starts, runs, cards) are training.recipe's.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import AutoConfig

from models.arliss import ROUTER, ArlissConfig, ArlissModel
from models.base import default_pooling
from models.reward import RewardModel
from training import device
from training.config import TrainConfig
from training.device import place
from training.recipe import (base_model, pairwise_run, probe_reward, probe_router, probed_reward_head, reward_model,
                             router_run, save_card, score_fn, set_linear, store_router_features, summary, tokenizer)
from training.router_store import arliss_body, rodos_body


def _save_single(model, tok, method: str, cfg: TrainConfig, run: dict, probe: dict | None) -> dict:
    """Save a one-model method (baseline, MoRE) with its tokenizer and card."""
    out = cfg.method_dir(method)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    stats = {"train_seconds": run["seconds"], "runs": {"reward": summary(run, probe)}}
    save_card(out, method, cfg, stats)
    return stats


def train_baseline(splits: dict, cfg: TrainConfig) -> dict:
    tok = tokenizer(cfg)
    model = reward_model(cfg, tok, train_layers=cfg.train_layers, head_hidden=cfg.single_head_hidden)
    probe = probed_reward_head(model, cfg, tok, splits, cfg.domains)
    run = pairwise_run(score_fn(model), model.named_parameters(), [model], splits, cfg.domains, tok, cfg, cfg.lr,
                       "baseline")
    return _save_single(model, tok, "baseline", cfg, run, probe)


def train_more(splits: dict, cfg: TrainConfig) -> dict:
    tok = tokenizer(cfg)
    model = reward_model(cfg, tok, train_layers=cfg.train_layers, num_experts=cfg.experts, top_k=cfg.top_k,
                         moe_layers=list(cfg.moe_layers) if cfg.moe_layers is not None else None,
                         router_aux_loss_coef=cfg.router_aux_loss_coef, expert_noise=cfg.expert_noise, seed=cfg.seed,
                         head_hidden=cfg.single_head_hidden)
    probe = probed_reward_head(model, cfg, tok, splits, cfg.domains)  # base features: experts start within noise of them
    run = pairwise_run(score_fn(model), model.named_parameters(), [model], splits, cfg.domains, tok, cfg, cfg.lr, "more")
    return _save_single(model, tok, "more", cfg, run, probe)


def rodos_router(splits: dict, cfg: TrainConfig, tok) -> tuple[RewardModel, dict]:
    """RODOS's n-way router over ``cfg.domains`` (probe start, then every layer fine-tuned): (model, run summary)."""
    router = reward_model(cfg, tok, num_labels=len(cfg.domains), train_layers=None)
    probe = None
    if cfg.linear_probe:
        weight, bias, probe = probe_router(cfg, tok, splits)
        set_linear(router.score, weight, bias)
    run = router_run(lambda b: router(**b).logits, router.named_parameters(), [router], splits, cfg, tok,
                     cfg.router_lr, "rodos/router")
    return router, summary(run, probe)


def rodos_reward_model(splits: dict, cfg: TrainConfig, tok, domain: str) -> tuple[RewardModel, dict]:
    """One RODOS domain model (probe start, then the top layers fine-tuned on ``domain``): (model, run summary)."""
    model = reward_model(cfg, tok, train_layers=cfg.train_layers)
    probe = probed_reward_head(model, cfg, tok, splits, (domain,))
    run = pairwise_run(score_fn(model), model.named_parameters(), [model], splits, (domain,), tok, cfg, cfg.lr,
                       f"rodos/{domain}")
    return model, summary(run, probe)


def train_rodos(splits: dict, cfg: TrainConfig) -> dict:
    tok = tokenizer(cfg)
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
    save_card(out, "rodos", cfg, stats)
    return stats


# ARLISS heads share one [n, H] matrix: weight decay 0 so training one domain never shrinks another's row.

def arliss_router(model: ArlissModel, splits: dict, cfg: TrainConfig, tok) -> dict:
    """Train ARLISS's router adapter and head over ``cfg.domains`` (probe start on the base features)."""
    probe = None
    if cfg.linear_probe:  # a fresh LoRA adapter is the identity (B = 0): the base model's features
        weight, bias, probe = probe_router(cfg, tok, splits)
        set_linear(model.router_head, weight, bias)
    run = router_run(model.router_logits, model.trainable_for(ROUTER), [model], splits, cfg, tok, cfg.lora_lr,
                     "arliss/router", weight_decay=0.0)
    return summary(run, probe)


def arliss_reward_adapter(model: ArlissModel, splits: dict, cfg: TrainConfig, tok, domain: str) -> dict:
    """Train ``domain``'s (fresh) reward adapter and its head row (probe start on the base features)."""
    probe = None
    if cfg.linear_probe:
        state, probe = probe_reward(cfg, tok, splits, (domain,))
        set_linear(model.reward_heads, state["weight"].reshape(-1), row=model.domain_index(domain))
    run = pairwise_run(lambda b: (model.rewards(b, domain), None), model.trainable_for(domain), [model], splits,
                       (domain,), tok, cfg, cfg.lora_lr, f"arliss/{domain}", weight_decay=0.0)
    return summary(run, probe)


def train_arliss(splits: dict, cfg: TrainConfig) -> dict:
    tok = tokenizer(cfg)
    base_cfg = AutoConfig.from_pretrained(base_model(cfg))
    layers = base_cfg.num_hidden_layers
    top = None if cfg.train_layers is None or cfg.train_layers >= layers else tuple(range(layers - cfg.train_layers, layers))
    # absolute: ArlissConfig.load reads a relative base_model as relative to the checkpoint folder
    acfg = ArlissConfig(domains=cfg.domains, base_model=str(Path(base_model(cfg)).resolve()),
                        pad_token_id=tok.pad_token_id, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, pooling=default_pooling(base_cfg),
                        lora_layers=top)
    model = place(ArlissModel.new(acfg)).train()
    runs = {"router": arliss_router(model, splits, cfg, tok)}
    for domain in cfg.domains:
        runs[domain] = arliss_reward_adapter(model, splits, cfg, tok, domain)
    out = cfg.method_dir("arliss")
    model.save(out)
    tok.save_pretrained(out)
    model.eval()
    features = store_router_features(lambda b: model.pooled(ROUTER, b), arliss_body(model), acfg.pooling, splits, cfg,
                                     tok, out)
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs, "router_features": features}
    save_card(out, "arliss", cfg, stats)
    return stats


TRAINERS = {"baseline": train_baseline, "more": train_more, "rodos": train_rodos, "arliss": train_arliss}


def train(method: str, splits: dict, cfg: TrainConfig) -> dict:
    if method not in TRAINERS:
        raise ValueError(f"unknown method '{method}'; choose from {list(TRAINERS)}")
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    with device.use(device.resolve(cfg.device)) as where:
        stats = TRAINERS[method](splits, cfg)
    stats["device"] = where
    stats["wall_seconds"] = time.perf_counter() - start
    return stats
