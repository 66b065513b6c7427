"""Checking a scoring request at the boundary, and cutting it into padded micro-batches.

Micro-batches: rows are sorted by token length and cut greedily so that ``rows x longest row``
(the padded tokens a batch really computes) stays within ``max_tokens`` and rows within
``max_rows``. Sorting puts rows of similar length together, so little of a batch is padding; the
caller scatters results back with the returned indices, so the output is in input order.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.text import clean_text


@dataclass(frozen=True)
class BatchLimits:
    """How big one model run may be: padded tokens (``rows x longest row``) and rows."""

    max_tokens: int = 8192
    max_rows: int = 256

    def __post_init__(self):
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {self.max_tokens!r}")
        if not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.max_rows!r}")


def check_texts(value, name: str, length: int | None = None, other: str = "prompts") -> list[str]:
    """A list (or tuple) of str, lone surrogates replaced by U+FFFD; TypeError/ValueError naming ``name``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of str, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} has {len(value)} items but {other} has {length}")
    return [clean_text(text, f"{name}[{i}]") for i, text in enumerate(value)]


def check_domains(value, known: Sequence[str], length: int) -> list[int]:
    """Domain names -> indices into ``known``; an unknown name is a ValueError listing the known ones."""
    names = check_texts(value, "domains", length)
    index = {d: i for i, d in enumerate(known)}
    out = []
    for i, name in enumerate(names):
        if name not in index:
            raise ValueError(f"domains[{i}] is '{name}', not a domain of this bundle; known: {list(known)}")
        out.append(index[name])
    return out


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
