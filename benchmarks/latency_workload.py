"""What ``benchmarks/latency.py`` scores, and how much arithmetic that is.

Requests are real test-split pairs (``core.data.load_splits``) of all five domains, shuffled
and interleaved round-robin (each round in a random domain order), so every batch of five or more
pairs holds every domain. A request is one pair: the engine scores ``[prompt, prompt]`` x
``[chosen, rejected]`` in one call (2B rows for a batch of B pairs), which gives the pairwise
accuracy. Batch ``i`` of size ``B`` is requests ``[i*B, (i+1)*B)``; every engine sees the same
batches in the same order.

Useful FLOPs of a call come from the *real* token counts (the truncated encodings of
``core.text``, no padding), per sequence of ``S`` tokens through a pass with ``P`` non-embedding
parameters active, ``L`` layers and hidden size ``H``::

    flops(S) = 2 * P * S            every weight once per token (a multiply and an add)
             + 4 * L * S^2 * H      attention scores Q K^T and the weighted sum A V, 2 S^2 H each

    call     = sum over rows of flops_pair(S_row)                 (chosen and rejected rows)
             + sum over the batch's unique prompts of flops_router(S_prompt)   (RODOS, ARLISS)

``P`` counts the pass's active weights: baseline all; MoRE its top-k experts (params_active; its
ONNX graph runs each token through those only); RODOS the router
model for routing and one domain model per row; ARLISS the frozen backbone plus *one* adapter
(router or domain) and its head per pass. The pooler and heads are counted per token although they
run once per sequence (under 1% of ``P`` for MiniLM), so the figure is a slight over-count.
"""
from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

from torch import nn

from models.checkpoint import Checkpoint
from core.text import encode_pairs, encode_prompts
from core.data import Pair, load_splits
from models.checkpoint import params_of


def sample_requests(n: int, seed: int = 0, split: str = "test") -> list[Pair]:
    """``n`` pairs from every domain's ``split``, shuffled, domains interleaved round-robin."""
    if n < 1:
        raise ValueError(f"--requests must be at least 1, got {n}")
    splits = load_splits()
    rng = random.Random(seed)
    per_domain = math.ceil(n / len(splits))
    pools = {}
    for domain, parts in splits.items():
        pairs = list(parts[split])
        rng.shuffle(pairs)
        pools[domain] = pairs[:per_domain]
    out: list[Pair] = []
    for i in range(per_domain):
        order = list(pools)
        rng.shuffle(order)
        out.extend(pools[d][i] for d in order if i < len(pools[d]))
    return out[:n]


def batches(n_requests: int, batch_size: int) -> list[list[int]]:
    """Request indices per batch: consecutive, whole batches only (at least one)."""
    if batch_size > n_requests:
        raise ValueError(f"batch size {batch_size} exceeds --requests {n_requests}")
    return [list(range(s, s + batch_size)) for s in range(0, n_requests - batch_size + 1, batch_size)]


@dataclass(frozen=True)
class PassCost:
    """One forward pass over a sequence: active non-embedding parameters, layers, hidden size."""

    params: int
    layers: int
    hidden: int

    def flops(self, tokens: int) -> float:
        return 2.0 * self.params * tokens + 4.0 * self.layers * tokens * tokens * self.hidden


@dataclass(frozen=True)
class MethodCost:
    method: str
    params_total: int
    params_active: int
    pair: PassCost
    router: PassCost | None
    hidden: int
    intermediate: int


@dataclass(frozen=True)
class TokenCounts:
    """Real tokens per request: chosen row, rejected row, router prompt (0 when not routed)."""

    chosen: list[int]
    rejected: list[int]
    prompt: list[int]


def _embedding_params(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding))


def _base_config(model: nn.Module):
    config = model.config
    return config.base() if hasattr(config, "base") and callable(config.base) else config


def method_cost(ckpt: Checkpoint) -> MethodCost:
    total, active = params_of(ckpt)
    models = ckpt.models
    if ckpt.method in ("baseline", "more"):
        model = models["reward"]
        cfg = _base_config(model)
        pair = PassCost(active - _embedding_params(model), cfg.num_hidden_layers, cfg.hidden_size)
        router = None
    elif ckpt.method == "rodos":
        cfg = _base_config(models["router"])
        rewards = [models[f"reward/{d}"] for d in ckpt.domains]
        pair_params = max(sum(p.numel() for p in m.parameters()) - _embedding_params(m) for m in rewards)
        router_params = sum(p.numel() for p in models["router"].parameters()) - _embedding_params(models["router"])
        pair = PassCost(pair_params, cfg.num_hidden_layers, cfg.hidden_size)
        router = PassCost(router_params, cfg.num_hidden_layers, cfg.hidden_size)
    else:
        model = models["arliss"]
        cfg = model.backbone.base_model.model.config
        names = model.config.adapter_names
        adapter = {a: sum(p.numel() for n, p in model.backbone.named_parameters() if f".{a}." in n) for a in names}
        base = sum(p.numel() for p in model.backbone.parameters()) - sum(adapter.values()) - _embedding_params(model.backbone)
        head_row = cfg.hidden_size + 1
        pair = PassCost(base + max(adapter[d] for d in ckpt.domains) + head_row, cfg.num_hidden_layers, cfg.hidden_size)
        router = PassCost(base + adapter[names[-1]] + head_row * len(ckpt.domains), cfg.num_hidden_layers, cfg.hidden_size)
    return MethodCost(ckpt.method, total, active, pair, router, cfg.hidden_size,
                      getattr(cfg, "intermediate_size", 4 * cfg.hidden_size))


def count_tokens(ckpt: Checkpoint, requests: list[Pair]) -> TokenCounts:
    """Token counts under the checkpoint's max_length and truncation policy (export copies both into
    its bundle's manifest, so these are the lengths every engine scores)."""
    tok, length, policy = ckpt.tokenizer, ckpt.card.max_length, ckpt.card.truncation
    prompts = [r.prompt for r in requests]

    def lengths(responses: list[str]) -> list[int]:
        return [len(e.input_ids) for e in encode_pairs(tok, prompts, responses, length, policy=policy)]

    chosen, rejected = lengths([r.chosen for r in requests]), lengths([r.rejected for r in requests])
    if ckpt.method in ("rodos", "arliss"):
        router_len = int(ckpt.card.extra.get("router_max_length", length))
        prompt = [len(e.input_ids) for e in encode_prompts(tok, prompts, router_len)]
    else:
        prompt = [0] * len(requests)
    return TokenCounts(chosen, rejected, prompt)


def batch_flops(cost: MethodCost, counts: TokenCounts, requests: list[Pair], rows: list[int]) -> float:
    """Useful FLOPs of scoring requests ``rows`` in one call (see module docstring)."""
    flops = sum(cost.pair.flops(counts.chosen[i]) + cost.pair.flops(counts.rejected[i]) for i in rows)
    if cost.router is not None:
        unique = {requests[i].prompt: counts.prompt[i] for i in rows}
        flops += sum(cost.router.flops(s) for s in unique.values())
    return flops


def batch_tokens(counts: TokenCounts, rows: list[int]) -> int:
    """Real tokens of one call: both rows of every pair (router prompts not included)."""
    return sum(counts.chosen[i] + counts.rejected[i] for i in rows)


def padded_tokens(counts: TokenCounts, rows: list[int]) -> int:
    """Tokens one padded pair-pass computes for these requests: 2B rows x the longest row."""
    return 2 * len(rows) * max(max(counts.chosen[i], counts.rejected[i]) for i in rows)


def typical_gemm_rows(counts: TokenCounts, batch_size: int) -> int:
    """``M`` of the model's GEMMs at ``batch_size``: the median padded tokens of its batches."""
    return int(statistics.median(padded_tokens(counts, b) for b in batches(len(counts.chosen), batch_size)))
