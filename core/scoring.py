"""The one route-and-score path: rows -> micro-batches -> graph runs -> routes and rewards in input order.

A *runner* answers ``run(role, feeds) -> {output: float32 array}`` for the graph roles of a bundle
(core.manifest): ONNX Runtime sessions (runtime.backends.OrtBackend, export.validate.ort_runner)
or PyTorch modules (models.runner.CheckpointRunner, export.validate.torch_runner). ``feeds`` are
int64 arrays: ``input_ids``/``attention_mask`` [B, S] (+ ``token_type_ids``), and ``adapter_ids``
[B] for ``switchable``. The roles a :class:`Layout` can hold, and what they answer::

    reward                   baseline, MoRE: {"logits": [B, 1]}, no domain
    router + reward/<d>      RODOS, ARLISS merged: {"logits": [B, n]} per prompt, then one graph per domain group
    switchable               ARLISS: {"router_logits": [B, n]} with every adapter_ids = the router's,
                             {"rewards": [B]} with adapter_ids = each row's domain (one run, mixed domains)

The served rewards (runtime.RewardEngine), the reduced-precision guard of an export
(export.validate) and the training-side test figures (training.evaluate) all come from
:func:`route_logits` and :func:`rewards` here, so none can drift from the others.

Micro-batches: rows are sorted by token length and cut greedily so that ``rows x longest row``
(the padded tokens a batch really computes) stays within ``max_tokens`` and rows within
``max_rows``; results are scattered back, so outputs are in input order. numpy only: importing
this module loads neither torch nor transformers.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.text import Encoded, collate_numpy

Run = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow for any float: a reward as a probability, or P(a over b) of a
    reward difference (the Bradley-Terry model the rewards were trained under)."""
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


# Padded tokens per graph run. Smaller runs waste less on padding (rows are sorted by length, so a
# run of 4 rows of 256 tokens pads less than one of 32) and keep activations in cache; on the CPU a
# call of 32 pairs is measured at 1024 and 8192 in results/profile.md and results/profile_8192/
# (benchmarks/profile_score.py [--max-tokens N]), a sweep of 512-2048 found none clearly faster than 1024 but RODOS at 512.
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True)
class BatchLimits:
    """How big one model run may be: padded tokens (``rows x longest row``) and rows."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    max_rows: int = 256

    def __post_init__(self):
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {self.max_tokens!r}")
        if not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.max_rows!r}")


def plan_batches(lengths: Sequence[int], limits: BatchLimits) -> list[list[int]]:
    """Row indices per micro-batch: sorted by length, each within ``limits``; covers every row once.

    A single row longer than ``max_tokens`` still gets a batch of its own (it was truncated to the
    bundle's ``max_length`` already; refusing it would make the budget a hidden length limit).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # ascending order: row i is the longest of the batch if it joins
        if current and (len(current) >= limits.max_rows or (len(current) + 1) * lengths[i] > limits.max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class Layout:
    """Which graph roles a model answers with, over which domains (see the module docstring).

    ``adapter_ids`` (switchable only): ``{domain: index, ..., "router": index}``.
    """

    domains: tuple[str, ...]
    roles: frozenset[str]
    adapter_ids: Mapping[str, int] | None = None

    def __post_init__(self):
        per_domain = {"router", *(f"reward/{d}" for d in self.domains)}
        if self.roles not in ({"reward"}, {"switchable"}, per_domain):
            raise ValueError(f"graph roles {sorted(self.roles)} are not one of: ['reward'], ['switchable'], "
                             f"{sorted(per_domain)}")
        if self.switchable and (self.adapter_ids is None or set(self.adapter_ids) != {*self.domains, "router"}):
            raise ValueError(f"a switchable layout needs adapter_ids for {[*self.domains, 'router']}, "
                             f"got {self.adapter_ids}")

    @property
    def routed(self) -> bool:
        return "reward" not in self.roles

    @property
    def switchable(self) -> bool:
        return "switchable" in self.roles


def run_rows(run: Run, role: str, output: str, encoded: Sequence[Encoded], pad_id: int,
             limits: BatchLimits = BatchLimits(), adapter_ids: np.ndarray | None = None) -> np.ndarray:
    """``output`` of graph ``role`` for every row of ``encoded`` (float32, first dim in input order).

    ``adapter_ids`` [N] (switchable only): each row's adapter.
    """
    parts, order = [], []
    for batch in plan_batches([len(e.input_ids) for e in encoded], limits):
        feeds = collate_numpy([encoded[i] for i in batch], pad_id)
        if adapter_ids is not None:
            feeds["adapter_ids"] = np.ascontiguousarray(adapter_ids[batch], dtype=np.int64)
        parts.append(np.asarray(run(role, feeds)[output], dtype=np.float32))
        order.extend(batch)
    out = np.empty((len(encoded), *parts[0].shape[1:]), np.float32)
    out[np.asarray(order)] = np.concatenate(parts)
    return out


def route_logits(run: Run, layout: Layout, prompts: Sequence[Encoded], pad_id: int,
                 limits: BatchLimits = BatchLimits()) -> np.ndarray:
    """Router logits [N, n_domains] for prompt-only encodings (core.text.encode_prompts); argmax = domain."""
    if not layout.routed:
        raise ValueError("this layout has no router (baseline and MoRE score without a domain)")
    if not prompts:
        return np.zeros((0, len(layout.domains)), np.float32)
    if layout.switchable:
        ids = np.full(len(prompts), layout.adapter_ids["router"], np.int64)
        logits = run_rows(run, "switchable", "router_logits", prompts, pad_id, limits, ids)
    else:
        logits = run_rows(run, "router", "logits", prompts, pad_id, limits)
    if logits.shape != (len(prompts), len(layout.domains)):
        raise ValueError(f"router returned shape {logits.shape}, expected {(len(prompts), len(layout.domains))}")
    return logits


def _pad(pad_id: int | Mapping[str, int], role: str) -> int:
    return pad_id[role] if isinstance(pad_id, Mapping) else pad_id


def rewards(run: Run, layout: Layout, encoded: Sequence[Encoded], pad_id: int | Mapping[str, int],
            domain_ids: Sequence[int] | None, limits: BatchLimits = BatchLimits()) -> np.ndarray:
    """Rewards [N] (float32, input order); routed layouts score row i with domain ``domain_ids[i]``.

    ``pad_id``: one pad id, or one per graph role (parts of a bundle with their own tokenizers; a
    decoder's graph finds each row's last token by its own pad id).
    """
    if not encoded:
        return np.zeros(0, np.float32)
    if not layout.routed:
        return run_rows(run, "reward", "logits", encoded, _pad(pad_id, "reward"), limits).reshape(-1)
    if domain_ids is None or len(domain_ids) != len(encoded):
        raise ValueError(f"a routed layout scores each row with a domain: got domain_ids for "
                         f"{None if domain_ids is None else len(domain_ids)} of {len(encoded)} rows")
    ids = np.asarray(domain_ids, np.int64)
    if layout.switchable:
        table = np.asarray([layout.adapter_ids[d] for d in layout.domains], np.int64)
        return run_rows(run, "switchable", "rewards", encoded, _pad(pad_id, "switchable"), limits, table[ids]).reshape(-1)
    out = np.empty(len(encoded), np.float32)
    for d in np.unique(ids):
        rows = np.flatnonzero(ids == d)
        role = f"reward/{layout.domains[d]}"
        out[rows] = run_rows(run, role, "logits", [encoded[i] for i in rows], _pad(pad_id, role), limits).reshape(-1)
    return out
