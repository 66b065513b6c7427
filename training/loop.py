"""Training loops: Bradley-Terry pairwise reward training and domain-router classification."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from models.base import bradley_terry_loss
from models.text import Encoded, collate


@dataclass(frozen=True)
class LoopConfig:
    lr: float
    epochs: int = 1
    batch_size: int = 16
    weight_decay: float = 0.0
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0


def length_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within windows of 32 batches, cut."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 32
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _schedule(optimizer, total_steps: int, warmup_fraction: float):
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _run(step_fn: Callable[[list[int]], torch.Tensor], params, lengths, cfg: LoopConfig, desc: str) -> dict:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError(f"{desc}: nothing to train (no parameter requires grad)")
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    plan = [b for epoch in range(cfg.epochs) for b in length_batches(lengths, cfg.batch_size, cfg.seed + epoch)]
    scheduler = _schedule(optimizer, len(plan), cfg.warmup_fraction)
    losses, start = [], time.perf_counter()
    bar = tqdm(plan, desc=desc, mininterval=10, leave=False)
    for batch in bar:
        loss = step_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if len(losses) % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / 10:.3f}")
    return {"losses": losses, "seconds": time.perf_counter() - start, "steps": len(plan)}


def train_pairwise(score_fn: Callable[[dict], tuple[torch.Tensor, torch.Tensor | None]], params,
                   chosen: list[Encoded], rejected: list[Encoded], pad_id: int, cfg: LoopConfig, desc: str) -> dict:
    """Minimize ``-logsigmoid(r_chosen - r_rejected)`` (+ the model's aux loss, if it returns one).

    ``score_fn(batch) -> (rewards [2B], aux_loss or None)``; a batch holds B chosen then B rejected rows.
    """
    lengths = [max(len(c.input_ids), len(r.input_ids)) for c, r in zip(chosen, rejected)]

    def step(idx: list[int]) -> torch.Tensor:
        batch = collate([chosen[i] for i in idx] + [rejected[i] for i in idx], pad_id)
        rewards, aux = score_fn(batch)
        loss = bradley_terry_loss(rewards[: len(idx)], rewards[len(idx):])
        return loss + aux if aux is not None else loss

    return _run(step, params, lengths, cfg, desc)


def train_classifier(logits_fn: Callable[[dict], torch.Tensor], params, examples: list[Encoded],
                     labels: list[int], pad_id: int, cfg: LoopConfig, desc: str) -> dict:
    """Cross-entropy training of an n-way domain router; ``logits_fn(batch) -> [B, n]``."""
    target = torch.tensor(labels)

    def step(idx: list[int]) -> torch.Tensor:
        return F.cross_entropy(logits_fn(collate([examples[i] for i in idx], pad_id)), target[idx])

    return _run(step, params, [len(e.input_ids) for e in examples], cfg, desc)
