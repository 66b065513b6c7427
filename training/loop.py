"""Training loops: Bradley-Terry pairwise reward training and domain-router classification.

One optimisation recipe for every method: AdamW with weight decay on matrices only
(never on biases, norms or embeddings), transformers' linear schedule with warm-up, gradient
clipping, a 10x learning rate for the fresh heads (``head_lr``), bf16 autocast (on CUDA GPUs with bf16, and on CPUs with bf16 hardware: about 1.9x the fp32 step rate on AVX512-BF16 machines; the
weights and the optimizer stay fp32), and model choice on a validation set: the starting point and
``eval_points`` evaluations spread over the run, scored by validation accuracy (the mean over
domains for a multi-domain run, the test metric); the trainable weights of the best one are restored
at the end (so fine-tuning never ends below its linear-probe start on validation, training.probe).
"""
from __future__ import annotations

import functools
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from models.base import bradley_terry_loss
from core.text import Encoded
from models.base import collate
from core.stats import domain_mean
from training.device import current, to_device


@dataclass(frozen=True)
class LoopConfig:
    lr: float
    head_lr: float | None = None  # heads (parameters named score.*, *_head*): None = lr
    epochs: int = 1
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    bf16: bool = True           # torch.autocast on the CPU; fp32 master weights
    eval_points: int = 4        # validation evaluations over the run (0: none, keep the last weights)
    bucket_window: int = 32     # batches sorted by length together (less padding); 1: plain shuffled batches


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX). Without it, PyTorch
    emulates bf16 matmuls: measured 45x slower than fp32 on an AVX2-only EPYC (1.3 vs 58 GFLOP/s)."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


@functools.cache
def _say_fp32_once() -> None:
    print("bf16 autocast asked for, but this CPU has no bf16 hardware (AVX512-BF16 or AMX): "
          "training in fp32, which is faster here", flush=True)


def autocast(enabled: bool):
    """bf16 autocast when asked, on a GPU that has bf16 or a CPU with bf16 hardware; else fp32 (said once)."""
    if current() == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16) if enabled and torch.cuda.is_bf16_supported() else nullcontext()
    if enabled and not native_bf16():
        _say_fp32_once()
        enabled = False
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else nullcontext()


def batch_of(encoded: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Padded tensors of ``encoded`` on the run's device (training.device)."""
    return to_device(collate(encoded, pad_id))


def length_batches(lengths: list[int], batch_size: int, seed: int, bucket_window: int = 32) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within windows of ``bucket_window`` batches, cut.

    ``bucket_window=1`` gives plain shuffled batches. Where length tells the label (a router's
    domains differ in prompt length), sorted windows make batches of one class: use 1 there.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * bucket_window
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def no_decay(name: str) -> bool:
    """Biases, norm weights and embeddings get no weight decay."""
    lowered = name.lower()
    return lowered.endswith("bias") or "norm" in lowered or "embed" in lowered


def is_head(name: str) -> bool:
    """The fresh linear heads: RewardModel.score, ARLISS router_head / reward_heads."""
    return name.startswith("score.") or "_head" in name


def param_groups(named: list[tuple[str, nn.Parameter]], weight_decay: float, lr: float,
                 head_lr: float | None = None) -> list[dict]:
    """AdamW groups: (body | head) x (decay | no decay); heads at ``head_lr``."""
    named = [(n, p) for n, p in named if p.requires_grad]
    if not named:
        raise ValueError("nothing to train (no parameter requires grad)")
    groups = []
    for head in (False, True):
        for decay in (True, False):
            params = [p for n, p in named if is_head(n) == head and no_decay(n) != decay]
            if params:
                groups.append({"params": params, "weight_decay": weight_decay if decay else 0.0,
                               "lr": (head_lr or lr) if head else lr})
    return groups


def run_steps(step_fn: Callable[[list[int]], torch.Tensor], named_params, modules: list[nn.Module], lengths,
              cfg: LoopConfig, desc: str, validate: Callable[[], dict] | None) -> dict:
    """The training loop every run shares: ``step_fn(example indices) -> loss`` over length batches of
    ``lengths``, AdamW with linear warm-up and decay, validation at ``cfg.eval_points`` (and at the
    start), the best-validated parameters kept. Returns losses, seconds, steps, evals, chosen_step."""
    groups = param_groups(list(named_params), cfg.weight_decay, cfg.lr, cfg.head_lr)
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    plan = [b for epoch in range(cfg.epochs)
            for b in length_batches(lengths, cfg.batch_size, cfg.seed + epoch, cfg.bucket_window)]
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, math.ceil(len(plan) * cfg.warmup_fraction)), len(plan))
    points = sorted({round(len(plan) * (i + 1) / cfg.eval_points) for i in range(cfg.eval_points)}) if validate else []
    losses, evals, best, start = [], [], None, time.perf_counter()

    def set_mode(train: bool):
        for m in modules:
            m.train(train)

    def check(step: int) -> None:
        nonlocal best
        set_mode(False)
        with torch.inference_mode(), autocast(cfg.bf16):
            result = {"step": step, **validate()}
        set_mode(True)
        evals.append(result)
        tqdm.write(f"{desc}: step {step}/{len(plan)} validation loss {result['loss']:.4f} "
                   f"accuracy {result['accuracy']:.3f}")
        if best is None or (result["accuracy"], -result["loss"]) > (best[0]["accuracy"], -best[0]["loss"]):
            best = (result, [p.detach().clone() for p in params])

    if validate is not None:
        check(0)  # the starting point (a linear-probe head, training.probe) competes with the trained ones
    bar = tqdm(plan, desc=desc, mininterval=10, leave=False)
    for step, batch in enumerate(bar, 1):
        with autocast(cfg.bf16):
            loss = step_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / 10:.3f}")
        if step in points:
            check(step)
    chosen_step = len(plan)
    if best is not None:
        chosen_step = best[0]["step"]
        with torch.no_grad():
            for p, saved in zip(params, best[1]):
                p.copy_(saved)
    return {"losses": losses, "seconds": time.perf_counter() - start, "steps": len(plan), "evals": evals,
            "chosen_step": chosen_step}


def _pair_lengths(chosen: list[Encoded], rejected: list[Encoded]) -> list[int]:
    return [max(len(c.input_ids), len(r.input_ids)) for c, r in zip(chosen, rejected)]


def _pair_rewards(score_fn, chosen: list[Encoded], rejected: list[Encoded], idx: list[int], pad_id: int):
    """Score rows ``idx`` as one batch (B chosen then B rejected): (r_chosen [B], r_rejected [B], aux or None), fp32."""
    rewards, aux = score_fn(batch_of([chosen[i] for i in idx] + [rejected[i] for i in idx], pad_id))
    rewards = rewards.float()
    return rewards[: len(idx)], rewards[len(idx):], aux


def pairwise_validation(score_fn, chosen: list[Encoded], rejected: list[Encoded], pad_id: int,
                        domains: list[str] | None = None, batch_size: int = 32) -> Callable[[], dict]:
    """``validate()`` for :func:`train_pairwise`: mean BT loss and pairwise accuracy on held-out pairs.

    ``domains`` (one name per pair) makes ``accuracy`` the mean of the per-domain accuracies, the
    metric the test split reports (``training.evaluate``), so a model trained on several domains is
    chosen for the domain mean rather than for its largest domain; ``pair_accuracy`` is the plain
    share of pairs and ``domains`` each domain's accuracy. One domain (or ``None``): both are equal.
    """
    lengths = _pair_lengths(chosen, rejected)
    order = sorted(range(len(chosen)), key=lambda i: lengths[i])
    names = domains if domains is not None else [""] * len(chosen)
    if len(names) != len(chosen):
        raise ValueError(f"{len(names)} domain names for {len(chosen)} validation pairs")

    def validate() -> dict:
        scored = [_pair_rewards(score_fn, chosen, rejected, order[s:s + batch_size], pad_id)
                  for s in range(0, len(order), batch_size)]
        perm = torch.tensor(order)
        c, r = torch.empty(len(chosen)), torch.empty(len(chosen))
        c[perm], r[perm] = torch.cat([x[0] for x in scored]).cpu(), torch.cat([x[1] for x in scored]).cpu()
        correct = (c > r).numpy()
        mean, per_domain = domain_mean(correct, names)
        out = {"loss": float(bradley_terry_loss(c, r)), "accuracy": mean,
               "pair_accuracy": float(correct.mean()), "pairs": len(c)}
        if domains is not None:
            out["domains"] = per_domain
        return out

    return validate


def train_pairwise(score_fn: Callable[[dict], tuple[torch.Tensor, torch.Tensor | None]], named_params,
                   modules: list[nn.Module], chosen: list[Encoded], rejected: list[Encoded], pad_id: int,
                   cfg: LoopConfig, desc: str, validate: Callable[[], dict] | None = None) -> dict:
    """Minimize ``-logsigmoid(r_chosen - r_rejected)`` (+ the model's aux loss, if it returns one).

    ``score_fn(batch) -> (rewards [2B], aux_loss or None)``; a batch holds B chosen then B rejected rows.
    """

    def step(idx: list[int]) -> torch.Tensor:
        c, r, aux = _pair_rewards(score_fn, chosen, rejected, idx, pad_id)
        loss = bradley_terry_loss(c, r)
        return loss + aux.float() if aux is not None else loss

    return run_steps(step, named_params, modules, _pair_lengths(chosen, rejected), cfg, desc, validate)


def classifier_validation(logits_fn, examples: list[Encoded], labels: list[int], pad_id: int,
                          batch_size: int = 64) -> Callable[[], dict]:
    """``validate()`` for :func:`train_classifier`: cross-entropy and accuracy on held-out examples."""
    target = torch.tensor(labels)

    def validate() -> dict:
        logits = torch.cat([logits_fn(batch_of(examples[s:s + batch_size], pad_id)).float().cpu()
                            for s in range(0, len(examples), batch_size)])
        return {"loss": float(F.cross_entropy(logits, target)),
                "accuracy": float((logits.argmax(-1) == target).float().mean()), "examples": len(examples)}

    return validate


def train_classifier(logits_fn: Callable[[dict], torch.Tensor], named_params, modules: list[nn.Module],
                     examples: list[Encoded], labels: list[int], pad_id: int, cfg: LoopConfig, desc: str,
                     validate: Callable[[], dict] | None = None) -> dict:
    """Cross-entropy training of an n-way domain router; ``logits_fn(batch) -> [B, n]``."""
    target = torch.tensor(labels)

    def step(idx: list[int]) -> torch.Tensor:
        logits = logits_fn(batch_of([examples[i] for i in idx], pad_id)).float()
        return F.cross_entropy(logits, target[idx].to(logits.device))

    return run_steps(step, named_params, modules, [len(e.input_ids) for e in examples], cfg, desc, validate)
