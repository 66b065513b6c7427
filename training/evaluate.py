"""Test-split evaluation: pairwise accuracy per domain, routed and oracle, router confusion, parameters."""
from __future__ import annotations

from typing import Callable

import torch

from models.arliss import ArlissModel
from models.base import count_params
from models.checkpoint import Checkpoint
from models.more import moe_blocks
from models.text import Encoded, collate, encode_pairs, encode_prompts
from training.data import Pair, take


@torch.inference_mode()
def run_batched(fn: Callable[[dict], torch.Tensor], encoded: list[Encoded], pad_id: int, batch_size: int = 64) -> torch.Tensor:
    """Apply ``fn`` to length-sorted micro-batches; results in input order (first dim = len(encoded))."""
    if not encoded:
        return torch.empty(0)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    parts = [fn(collate([encoded[i] for i in order[s:s + batch_size]], pad_id)).float()
             for s in range(0, len(order), batch_size)]
    out = torch.cat(parts)
    result = torch.empty_like(out)
    result[torch.tensor(order)] = out
    return result


def _pair_encodings(ckpt: Checkpoint, pairs: list[Pair]):
    tok, L, policy = ckpt.tokenizer, ckpt.card.max_length, ckpt.card.truncation
    prompts = [p.prompt for p in pairs]
    return (encode_pairs(tok, prompts, [p.chosen for p in pairs], L, policy),
            encode_pairs(tok, prompts, [p.rejected for p in pairs], L, policy))


def params_of(ckpt: Checkpoint) -> tuple[int, int]:
    """(parameters held in memory, parameters used to score one request)."""
    m = ckpt.models
    if ckpt.method == "baseline":
        n = count_params(m["reward"])
        return n, n
    if ckpt.method == "more":
        total = count_params(m["reward"])
        idle = sum(count_params(b.experts[0]) * (b.num_experts - b.top_k) for b in moe_blocks(m["reward"]))
        return total, total - idle
    if ckpt.method == "rodos":
        router = count_params(m["router"])
        rewards = [count_params(m[f"reward/{d}"]) for d in ckpt.domains]
        return router + sum(rewards), router + max(rewards)
    model: ArlissModel = m["arliss"]
    total = count_params(model)
    per_adapter = [sum(p.numel() for n, p in model.backbone.named_parameters() if f".{a}." in n)
                   for a in model.config.adapter_names]
    # active: backbone + router adapter + one reward adapter + both heads
    return total, total - sum(per_adapter) + per_adapter[-1] + max(per_adapter[:-1])


def route(ckpt: Checkpoint, prompts: list[str], batch_size: int = 64) -> torch.Tensor:
    """[N] predicted domain index per prompt (RODOS, ARLISS)."""
    router_len = int(ckpt.card.extra.get("router_max_length", ckpt.card.max_length))
    enc = encode_prompts(ckpt.tokenizer, prompts, router_len)
    if ckpt.method == "rodos":
        fn = lambda b: ckpt.models["router"](**b).logits
    else:
        fn = ckpt.models["arliss"].router_logits
    return run_batched(fn, enc, ckpt.tokenizer.pad_token_id, batch_size).argmax(-1)


def reward_fn(ckpt: Checkpoint, domain: str | None) -> Callable[[dict], torch.Tensor]:
    m = ckpt.models
    if ckpt.method in ("baseline", "more"):
        return lambda b: m["reward"](**b).logits.squeeze(-1)
    if ckpt.method == "rodos":
        return lambda b: m[f"reward/{domain}"](**b).logits.squeeze(-1)
    return lambda b: m["arliss"].rewards(b, domain)


def pair_rewards(ckpt: Checkpoint, pairs: list[Pair], domain: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    ch, rj = _pair_encodings(ckpt, pairs)
    fn, pad = reward_fn(ckpt, domain), ckpt.tokenizer.pad_token_id
    return run_batched(fn, ch, pad), run_batched(fn, rj, pad)


def evaluate(ckpt: Checkpoint, splits: dict, eval_pairs_per_domain: int | None = None, split: str = "test") -> dict:
    """Accuracy entry for results/accuracy.json (plus the router entry for routed methods)."""
    domains = ckpt.domains
    routed = ckpt.method in ("rodos", "arliss")
    result = {"domains": {}}
    confusion = [[0] * len(domains) for _ in domains]
    for di, domain in enumerate(domains):
        pairs = take(splits[domain][split], eval_pairs_per_domain)
        oracle_c, oracle_r = pair_rewards(ckpt, pairs, domain if routed else None)
        entry = {"pairs": len(pairs)}
        if routed:
            pred = route(ckpt, [p.prompt for p in pairs])
            for p in pred.tolist():
                confusion[di][p] += 1
            correct = (oracle_c > oracle_r).clone()
            for pi in sorted(set(pred.tolist()) - {di}):
                rows = [i for i, p in enumerate(pred.tolist()) if p == pi]
                c, r = pair_rewards(ckpt, [pairs[i] for i in rows], domains[pi])
                correct[rows] = c > r
            entry["accuracy"] = correct.float().mean().item()
            entry["oracle_accuracy"] = (oracle_c > oracle_r).float().mean().item()
            entry["router_accuracy"] = (pred == di).float().mean().item()
            entry["oracle_correct"] = (oracle_c > oracle_r).int().tolist()
        else:
            correct = oracle_c > oracle_r
            entry["accuracy"] = correct.float().mean().item()
        # per-pair outcomes and prompt groups, for bootstrap intervals (training.stats); not written out
        entry["correct"] = correct.int().tolist()
        entry["groups"] = [p.prompt for p in pairs]
        result["domains"][domain] = entry
    result["mean_accuracy"] = sum(e["accuracy"] for e in result["domains"].values()) / len(domains)
    if routed:
        result["mean_oracle_accuracy"] = sum(e["oracle_accuracy"] for e in result["domains"].values()) / len(domains)
    result["params_total"], result["params_active"] = params_of(ckpt)
    router = None
    if routed:
        total = sum(map(sum, confusion))
        router = {"accuracy": sum(confusion[i][i] for i in range(len(domains))) / total, "confusion": confusion,
                  "labels": list(domains)}
    return {"method": result, "router": router}
