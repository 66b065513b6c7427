"""Test-split evaluation: pairwise accuracy per domain, routed and oracle, router confusion, parameters.

Rewards and routes come from the checkpoint's models through core.scoring, the path the served
engine takes (models.runner gives the models the bundle graphs' roles), so a training-side figure
and a served one differ only by what the export changes.
"""
from __future__ import annotations

import numpy as np

from core import scoring
from models.checkpoint import Checkpoint, params_of
from models.runner import CheckpointRunner
from core.text import encode_pairs, encode_prompts
from core.data import Pair, take


def pair_encodings(ckpt: Checkpoint, pairs: list[Pair]):
    """(chosen, rejected): ``[prompt, response]`` encodings of ``pairs`` as ``ckpt`` reads them (its
    tokenizer, max length and truncation policy, from its card)."""
    tok, L, policy = ckpt.tokenizer, ckpt.card.max_length, ckpt.card.truncation
    prompts = [p.prompt for p in pairs]
    return (encode_pairs(tok, prompts, [p.chosen for p in pairs], L, policy),
            encode_pairs(tok, prompts, [p.rejected for p in pairs], L, policy))


def route(ckpt: Checkpoint, prompts: list[str], run: CheckpointRunner | None = None) -> np.ndarray:
    """[N] predicted domain index per prompt (RODOS, ARLISS). Pass ``run`` when calling repeatedly:
    a CheckpointRunner copies ARLISS's backbone into its stacked form once."""
    run = run or CheckpointRunner(ckpt)
    router_len = int(ckpt.card.extra.get("router_max_length", ckpt.card.max_length))
    enc = encode_prompts(ckpt.tokenizer, prompts, router_len)
    return scoring.route_logits(run, run.layout, enc, ckpt.tokenizer.pad_token_id).argmax(-1)


def pair_rewards(ckpt: Checkpoint, pairs: list[Pair], domain: str | list[str] | None,
                 run: CheckpointRunner | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(chosen [N], rejected [N]) rewards; routed methods score with ``domain`` (one, or one per pair)."""
    run = run or CheckpointRunner(ckpt)
    ids = None
    if run.layout.routed:
        names = [domain] * len(pairs) if isinstance(domain, str) or domain is None else list(domain)
        ids = [ckpt.domains.index(d) for d in names]
    ch, rj = pair_encodings(ckpt, pairs)
    pad = ckpt.tokenizer.pad_token_id
    return (scoring.rewards(run, run.layout, ch, pad, ids), scoring.rewards(run, run.layout, rj, pad, ids))


def evaluate(ckpt: Checkpoint, splits: dict, eval_pairs_per_domain: int | None = None, split: str = "test") -> dict:
    """Accuracy entry for results/accuracy.json (plus the router entry for routed methods)."""
    domains = ckpt.domains
    run = CheckpointRunner(ckpt)
    routed = run.layout.routed
    result = {"domains": {}}
    confusion = [[0] * len(domains) for _ in domains]
    for di, domain in enumerate(domains):
        pairs = take(splits[domain][split], eval_pairs_per_domain)
        oracle_c, oracle_r = pair_rewards(ckpt, pairs, domain if routed else None, run)
        entry = {"pairs": len(pairs)}
        if routed:
            pred = route(ckpt, [p.prompt for p in pairs], run)
            for p in pred.tolist():
                confusion[di][p] += 1
            correct = oracle_c > oracle_r
            rows = np.flatnonzero(pred != di)  # misrouted pairs: scored again by the domain the router chose
            if len(rows):
                c, r = pair_rewards(ckpt, [pairs[i] for i in rows], [domains[pred[i]] for i in rows], run)
                correct[rows] = c > r
            entry["accuracy"] = float(correct.mean())
            entry["oracle_accuracy"] = float((oracle_c > oracle_r).mean())
            entry["router_accuracy"] = float((pred == di).mean())
            entry["oracle_correct"] = (oracle_c > oracle_r).astype(int).tolist()
        else:
            correct = oracle_c > oracle_r
            entry["accuracy"] = float(correct.mean())
        # per-pair outcomes and prompt groups, for bootstrap intervals (core.stats); not written out
        entry["correct"] = correct.astype(int).tolist()
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
