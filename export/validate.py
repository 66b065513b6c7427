"""Validation of exported graphs against their PyTorch modules: parity on untraced shapes, accuracy.

* **Parity**: each graph and its module (``export.graphs``) run the same feeds, of a shape other
  than the traced 2 x 16: batch 3, sequence 37, rows of 37, 23 and 6 real tokens (right padded),
  two segments, mixed ``adapter_ids`` for the switchable graph. Figure: max |onnx - torch| over
  every output of the graph. fp32 must stay within ``PARITY_BOUND``.
* **Agreement** (the guard for fp16/int8): on the validation pairs, ONNX Runtime and PyTorch fp32
  each route (the router picks a domain from the prompt encoding, ``core.text.encode_prompts``)
  and score chosen and rejected through core.scoring, the path the engine serves by. Figures: the share of pairwise decisions (which response wins)
  that agree with fp32 (``decision_agreement``), the rank correlation of all rewards, the share of
  prompts routed to the same domain, and both accuracies (mean over domains) with a 95% bootstrap
  interval of their difference. A reduced-precision export is refused when fewer than
  ``DECISION_AGREEMENT_BOUND`` of its decisions agree: that measures quantization error itself,
  where an accuracy difference at a few hundred pairs is mostly sampling noise (one pair moves it
  by 1/n). 98% means at most 2 decisions in 100 flip, which bounds the accuracy change by 2 points
  in the worst case and leaves it near 0 when flips fall on near-ties (the usual case).
"""
from __future__ import annotations

import numpy as np
import torch

from core import scoring
from export import optimize
from core.manifest import PRECISIONS
from core.scoring import Layout, Run
from core.text import encode_pairs, encode_prompts
from core.stats import domain_mean

PARITY_BOUND = {"fp32": 1e-4}            # max abs reward/logit difference, ONNX Runtime vs PyTorch
# share of pairwise decisions equal to fp32, for every reduced precision (fp16, the int8 schemes)
DECISION_AGREEMENT_BOUND = {p: 0.98 for p in PRECISIONS if p != "fp32"}
PARITY_BATCH, PARITY_SEQ, PARITY_LENGTHS = 3, 37, (37, 23, 6)

class ExportValidationError(RuntimeError):
    """An exported graph disagrees with PyTorch beyond its bound; the message names graph and figure.

    ``figures``: the guard's measurements when it was the agreement check (``lab.export_results``
    records a refused variant with them).
    """

    def __init__(self, message: str, figures: dict | None = None):
        super().__init__(message)
        self.figures = figures


def parity_feeds(input_names: list[str], vocab_size: int, num_adapters: int | None, seed: int = 0,
                 pad_id: int = 0) -> dict[str, np.ndarray]:
    """Batch 3 x seq 37, rows right-padded with ``pad_id`` (a decoder's graph finds each row's last token by it)."""
    rng = np.random.default_rng(seed)
    shape = (PARITY_BATCH, PARITY_SEQ)
    mask = np.zeros(shape, dtype=np.int64)
    types = np.zeros(shape, dtype=np.int64)
    for row, n in enumerate(PARITY_LENGTHS):
        mask[row, :n] = 1
        types[row, n // 2:n] = 1
    feeds = {"input_ids": np.where(mask == 1, rng.integers(*optimize.token_range(vocab_size), shape, dtype=np.int64), pad_id),
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

def pairwise_outcomes(run: Run, layout: Layout, tokenizer, pairs_by_domain: dict, max_length: int,
                      router_max_length: int, policy: str) -> dict:
    """Per validation pair: ``domain`` (true, index), ``routed`` (index or -1), ``chosen``/``rejected`` rewards.

    Routed and scored by core.scoring, as the engine serves them (``policy``: the checkpoint's truncation).
    """
    pad = tokenizer.pad_token_id
    parts = {"domain": [], "routed": [], "chosen": [], "rejected": []}
    for di, (domain, pairs) in enumerate(pairs_by_domain.items()):
        prompts = [p.prompt for p in pairs]
        chosen = encode_pairs(tokenizer, prompts, [p.chosen for p in pairs], max_length, policy)
        rejected = encode_pairs(tokenizer, prompts, [p.rejected for p in pairs], max_length, policy)
        ids = None
        if layout.routed:
            ids = scoring.route_logits(run, layout, encode_prompts(tokenizer, prompts, router_max_length), pad).argmax(-1)
        parts["domain"].append(np.full(len(pairs), di))
        parts["routed"].append(ids if ids is not None else np.full(len(pairs), -1))
        parts["chosen"].append(scoring.rewards(run, layout, chosen, pad, ids))
        parts["rejected"].append(scoring.rewards(run, layout, rejected, pad, ids))
    return {k: np.concatenate(v) for k, v in parts.items()}


def mean_accuracy(outcomes: dict) -> float:
    """Pairwise accuracy, mean over domains (``core.stats.domain_mean``, the test metric)."""
    return domain_mean(outcomes["chosen"] > outcomes["rejected"], [str(d) for d in outcomes["domain"]])[0]


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    return ranks


def agreement(reference: dict, candidate: dict, resamples: int = 1000, seed: int = 0) -> dict:
    """How far ``candidate``'s outcomes are from ``reference``'s (see module docstring)."""
    ref_win = reference["chosen"] > reference["rejected"]
    cand_win = candidate["chosen"] > candidate["rejected"]
    ref_all = np.concatenate([reference["chosen"], reference["rejected"]])
    cand_all = np.concatenate([candidate["chosen"], candidate["rejected"]])
    rng = np.random.default_rng(seed)
    n = len(ref_win)
    diffs = []
    for _ in range(resamples):   # bootstrap over pairs of the accuracy difference
        idx = rng.integers(0, n, n)
        diffs.append(cand_win[idx].mean() - ref_win[idx].mean())
    return {
        "decision_agreement": float((ref_win == cand_win).mean()),
        "reward_rank_correlation": float(np.corrcoef(_ranks(ref_all), _ranks(cand_all))[0, 1]),
        "router_agreement": (float((reference["routed"] == candidate["routed"]).mean())
                             if (reference["routed"] >= 0).any() else None),
        "accuracy_reference": mean_accuracy(reference), "accuracy": mean_accuracy(candidate),
        "accuracy_delta_ci95": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))],
        "pairs": int(n),
    }


def check_agreement(precision: str, figures: dict) -> None:
    bound = DECISION_AGREEMENT_BOUND.get(precision)
    if bound is not None and figures["decision_agreement"] < bound:
        raise ExportValidationError(
            f"{precision} export agrees with PyTorch fp32 on {100 * figures['decision_agreement']:.1f}% of "
            f"{figures['pairs']} validation decisions; the bound is {100 * bound:.0f}% (accuracy "
            f"{figures['accuracy']:.4f} vs {figures['accuracy_reference']:.4f}, rank correlation "
            f"{figures['reward_rank_correlation']:.4f}, router agreement {figures['router_agreement']})", figures)
