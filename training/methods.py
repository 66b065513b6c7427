"""The four methods' training recipes; each writes a checkpoint (see models.checkpoint) and returns stats."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from models.arliss import ROUTER, ArlissConfig, ArlissModel
from models.base import default_base_model, load_classifier, load_tokenizer
from models.checkpoint import CheckpointCard
from models.more import MoreForSequenceClassification
from models.text import encode_pairs, encode_prompts
from training.config import TrainConfig
from training.data import Pair, take
from training.loop import LoopConfig, train_classifier, train_pairwise


def _base(cfg: TrainConfig) -> str:
    return cfg.base_model or default_base_model()


def _train_pairs(splits: dict, cfg: TrainConfig, domains: tuple[str, ...]) -> list[Pair]:
    return [p for d in domains for p in take(splits[d]["train"], cfg.train_pairs_per_domain)]


def _pairwise(score_fn, params, pairs: list[Pair], tok, cfg: TrainConfig, lr: float, desc: str, wd: float = 0.01) -> dict:
    prompts = [p.prompt for p in pairs]
    chosen = encode_pairs(tok, prompts, [p.chosen for p in pairs], cfg.max_length)
    rejected = encode_pairs(tok, prompts, [p.rejected for p in pairs], cfg.max_length)
    loop = LoopConfig(lr=lr, epochs=cfg.epochs, batch_size=cfg.batch_size, weight_decay=wd, seed=cfg.seed)
    return train_pairwise(score_fn, params, chosen, rejected, tok.pad_token_id, loop, desc)


def _router_data(splits: dict, cfg: TrainConfig, tok):
    examples, labels = [], []
    for label, domain in enumerate(cfg.domains):
        prompts = list(dict.fromkeys(p.prompt for p in splits[domain]["train"]))  # unique, in order
        prompts = prompts[: cfg.router_examples_per_domain] if cfg.router_examples_per_domain else prompts
        examples += encode_prompts(tok, prompts, cfg.router_max_length)
        labels += [label] * len(prompts)
    return examples, labels


def _save_card(path: Path, method: str, cfg: TrainConfig, stats: dict) -> None:
    CheckpointCard(method, cfg.domains, cfg.max_length, _base(cfg), extra={
        "router_max_length": cfg.router_max_length, "train_config": cfg.to_dict(), "train": stats}).save(path)


def _summary(run: dict) -> dict:
    losses = run["losses"]
    k = max(1, len(losses) // 10)
    return {"steps": run["steps"], "seconds": round(run["seconds"], 2),
            "loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k}


def _save_single(model, tok, method: str, cfg: TrainConfig, run: dict) -> dict:
    """Save a one-model method (baseline, MoRE) with its tokenizer and card."""
    out = cfg.method_dir(method)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    stats = {"train_seconds": run["seconds"], "runs": {"reward": _summary(run)}}
    _save_card(out, method, cfg, stats)
    return stats


def train_baseline(splits: dict, cfg: TrainConfig) -> dict:
    tok = load_tokenizer(_base(cfg))
    model = load_classifier(_base(cfg), 1, tok.pad_token_id).train()
    run = _pairwise(lambda b: (model(**b).logits.squeeze(-1), None), model.parameters(),
                    _train_pairs(splits, cfg, cfg.domains), tok, cfg, cfg.lr, "baseline")
    return _save_single(model, tok, "baseline", cfg, run)


def train_more(splits: dict, cfg: TrainConfig) -> dict:
    tok = load_tokenizer(_base(cfg))
    model = MoreForSequenceClassification.upcycle(
        _base(cfg), tok.pad_token_id, cfg.experts, cfg.top_k,
        list(cfg.moe_layers) if cfg.moe_layers is not None else None, cfg.router_aux_loss_coef).train()

    def score(batch):
        out = model(**batch)
        return out.logits.squeeze(-1), out.get("aux_loss")

    run = _pairwise(score, model.parameters(), _train_pairs(splits, cfg, cfg.domains), tok, cfg, cfg.lr, "more")
    return _save_single(model, tok, "more", cfg, run)


def train_rodos(splits: dict, cfg: TrainConfig) -> dict:
    tok = load_tokenizer(_base(cfg))
    out = cfg.method_dir("rodos")
    runs = {}
    router = load_classifier(_base(cfg), len(cfg.domains), tok.pad_token_id).train()
    examples, labels = _router_data(splits, cfg, tok)
    loop = LoopConfig(lr=cfg.router_lr, epochs=cfg.epochs, batch_size=cfg.batch_size, weight_decay=0.01, seed=cfg.seed)
    runs["router"] = _summary(train_classifier(lambda b: router(**b).logits, router.parameters(),
                                               examples, labels, tok.pad_token_id, loop, "rodos/router"))
    router.save_pretrained(out / "router")
    del router
    for domain in cfg.domains:
        model = load_classifier(_base(cfg), 1, tok.pad_token_id).train()
        run = _pairwise(lambda b: (model(**b).logits.squeeze(-1), None), model.parameters(),
                        _train_pairs(splits, cfg, (domain,)), tok, cfg, cfg.lr, f"rodos/{domain}")
        runs[domain] = _summary(run)
        model.save_pretrained(out / "rewards" / domain)
    tok.save_pretrained(out)
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs}
    _save_card(out, "rodos", cfg, stats)
    return stats


def train_arliss(splits: dict, cfg: TrainConfig) -> dict:
    tok = load_tokenizer(_base(cfg))
    acfg = ArlissConfig(domains=cfg.domains, base_model=_base(cfg), pad_token_id=tok.pad_token_id,
                        lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha)
    model = ArlissModel.new(acfg).train()
    runs = {}
    examples, labels = _router_data(splits, cfg, tok)
    # Heads share one [n, H] matrix: weight decay 0 so training one domain never shrinks another's row.
    loop = LoopConfig(lr=cfg.lora_lr, epochs=cfg.epochs, batch_size=cfg.batch_size, weight_decay=0.0, seed=cfg.seed)
    runs["router"] = _summary(train_classifier(model.router_logits, model.trainable_for(ROUTER),
                                               examples, labels, tok.pad_token_id, loop, "arliss/router"))
    for domain in cfg.domains:
        params = model.trainable_for(domain)
        run = _pairwise(lambda b, d=domain: (model.rewards(b, d), None), params,
                        _train_pairs(splits, cfg, (domain,)), tok, cfg, cfg.lora_lr, f"arliss/{domain}", wd=0.0)
        runs[domain] = _summary(run)
    out = cfg.method_dir("arliss")
    model.save(out)
    tok.save_pretrained(out)
    stats = {"train_seconds": sum(r["seconds"] for r in runs.values()), "runs": runs}
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
