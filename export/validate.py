"""Validation of exported graphs against their PyTorch modules: parity on untraced shapes, accuracy.

* **Parity**: each graph and its module (``export.graphs``) run the same feeds, of a shape other
  than the traced 2 x 16: batch 3, sequence 37, rows of 37, 23 and 6 real tokens (right padded),
  two segments, mixed ``adapter_ids`` for the switchable graph. Figure: max |onnx - torch| over
  every output of the graph. fp32 must stay within ``PARITY_BOUND``.
* **Accuracy**: routed pairwise accuracy on the validation split, mean over domains, computed the
  same way for ONNX Runtime and for PyTorch: the router picks a domain from the prompt encoding
  (``models.text.encode_prompts``), that domain's reward model scores chosen and rejected. fp16
  and int8 may lose at most ``ACCURACY_DROP_BOUND`` against PyTorch fp32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from models.text import Encoded, collate, encode_pairs, encode_prompts

PARITY_BOUND = {"fp32": 1e-4}            # max abs reward/logit difference, ONNX Runtime vs PyTorch
ACCURACY_DROP_BOUND = {"fp16": 0.005, "int8": 0.005}   # 0.5 accuracy points on the mean
PARITY_BATCH, PARITY_SEQ, PARITY_LENGTHS = 3, 37, (37, 23, 6)

Run = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]   # (role, feeds) -> outputs


class ExportValidationError(RuntimeError):
    """An exported graph disagrees with PyTorch beyond its bound; the message names graph and figure."""


@dataclass(frozen=True)
class Layout:
    """Which graphs answer routing and reward questions (see ``runtime.manifest``)."""

    method: str
    lora: str | None
    domains: tuple[str, ...]

    @property
    def routed(self) -> bool:
        return self.method in ("rodos", "arliss")

    @property
    def switchable(self) -> bool:
        return self.method == "arliss" and self.lora == "switchable"

    @property
    def router_id(self) -> int:
        return len(self.domains)  # ArlissConfig.adapter_names: domains..., router


def parity_feeds(input_names: list[str], vocab_size: int, num_adapters: int | None, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (PARITY_BATCH, PARITY_SEQ)
    mask = np.zeros(shape, dtype=np.int64)
    types = np.zeros(shape, dtype=np.int64)
    for row, n in enumerate(PARITY_LENGTHS):
        mask[row, :n] = 1
        types[row, n // 2:n] = 1
    feeds = {"input_ids": rng.integers(1000, vocab_size, shape, dtype=np.int64) * mask,
             "attention_mask": mask, "token_type_ids": types}
    if num_adapters:  # a domain row, the router row, another domain row
        feeds["adapter_ids"] = np.array([0, num_adapters - 1, 1 % (num_adapters - 1)], dtype=np.int64)
    return {k: v for k, v in feeds.items() if k in input_names}


def torch_runner(modules: dict[str, torch.nn.Module]) -> Run:
    @torch.inference_mode()
    def run(role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = modules[role](**{k: torch.from_numpy(v) for k, v in feeds.items()})
        return {k: v.float().numpy() for k, v in out.items()}
    return run


def ort_runner(sessions: dict) -> Run:
    def run(role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sess = sessions[role]
        names = [o.name for o in sess.get_outputs()]
        wanted = {i.name for i in sess.get_inputs()}
        return dict(zip(names, sess.run(None, {k: v for k, v in feeds.items() if k in wanted})))
    return run


def max_abs_diff(reference: Run, candidate: Run, role: str, feeds: dict[str, np.ndarray]) -> float:
    ref, got = reference(role, feeds), candidate(role, feeds)
    if set(ref) != set(got):
        raise ExportValidationError(f"graph '{role}' outputs {sorted(got)}, PyTorch outputs {sorted(ref)}")
    for name in ref:
        if ref[name].shape != got[name].shape:
            raise ExportValidationError(f"graph '{role}' output '{name}' has shape {got[name].shape}, "
                                        f"PyTorch {ref[name].shape} (feeds {PARITY_BATCH} x {PARITY_SEQ})")
    return max(float(np.abs(ref[n] - got[n]).max()) for n in ref)


def check_parity(role: str, diff: float, precision: str) -> None:
    bound = PARITY_BOUND.get(precision)
    if not np.isfinite(diff) or (bound is not None and diff > bound):
        raise ExportValidationError(f"graph '{role}' ({precision}): max |onnx - torch| = {diff:.3g} "
                                    f"exceeds {bound} on batch {PARITY_BATCH} x seq {PARITY_SEQ}")


# --- accuracy ------------------------------------------------------------------------------------------

def _batches(encoded: list[Encoded], pad_id: int, batch_size: int = 32):
    """Length-sorted micro-batches: (row indices [b], numpy feeds)."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    for start in range(0, len(order), batch_size):
        rows = np.array(order[start:start + batch_size])
        batch = collate([encoded[i] for i in rows], pad_id)
        yield rows, {k: v.numpy() for k, v in batch.items()}


def route(run: Run, layout: Layout, encoded: list[Encoded], pad_id: int) -> np.ndarray:
    """[N] domain index per prompt encoding."""
    out = np.zeros(len(encoded), dtype=np.int64)
    for rows, feeds in _batches(encoded, pad_id):
        if layout.switchable:
            feeds["adapter_ids"] = np.full(len(rows), layout.router_id, dtype=np.int64)
            out[rows] = run("switchable", feeds)["router_logits"].argmax(-1)
        else:
            out[rows] = run("router", feeds)["logits"].argmax(-1)
    return out


def rewards(run: Run, layout: Layout, encoded: list[Encoded], pad_id: int, domain_ids: np.ndarray | None) -> np.ndarray:
    """[N] rewards; routed methods score row i with domain ``domain_ids[i]``'s model."""
    out = np.zeros(len(encoded), dtype=np.float64)
    for rows, feeds in _batches(encoded, pad_id):
        if not layout.routed:
            out[rows] = run("reward", feeds)["logits"][:, 0]
        elif layout.switchable:  # one run for a mixed-domain batch
            feeds["adapter_ids"] = domain_ids[rows]
            out[rows] = run("switchable", feeds)["rewards"]
        else:
            for d in np.unique(domain_ids[rows]):
                sel = domain_ids[rows] == d
                part = run(f"reward/{layout.domains[d]}", {k: v[sel] for k, v in feeds.items()})
                out[rows[sel]] = part["logits"][:, 0]
    return out


def pairwise_accuracy(run: Run, layout: Layout, tokenizer, pairs_by_domain: dict, max_length: int,
                      router_max_length: int) -> float:
    """Routed pairwise accuracy (chosen scored above rejected), mean over domains."""
    pad = tokenizer.pad_token_id
    per_domain = []
    for domain, pairs in pairs_by_domain.items():
        prompts = [p.prompt for p in pairs]
        chosen = encode_pairs(tokenizer, prompts, [p.chosen for p in pairs], max_length)
        rejected = encode_pairs(tokenizer, prompts, [p.rejected for p in pairs], max_length)
        ids = route(run, layout, encode_prompts(tokenizer, prompts, router_max_length), pad) if layout.routed else None
        r_c = rewards(run, layout, chosen, pad, ids)
        r_r = rewards(run, layout, rejected, pad, ids)
        per_domain.append(float((r_c > r_r).mean()))
    return sum(per_domain) / len(per_domain)


def check_accuracy(precision: str, accuracy: float, reference: float) -> None:
    bound = ACCURACY_DROP_BOUND.get(precision)
    if bound is not None and reference - accuracy > bound:
        raise ExportValidationError(f"{precision} export loses {100 * (reference - accuracy):.2f} accuracy points "
                                    f"({accuracy:.4f} vs PyTorch fp32 {reference:.4f}); the bound is {100 * bound:.1f}")
