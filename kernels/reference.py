"""Pure-PyTorch references for the ops in ``kernels``: same names, same signatures, same checks.

Tests compare the Triton kernels against these functions, and the runtime calls them where there is
no GPU. They favour being obviously right over being fast: every product is computed in float32.

- ``topk_gating``: softmax router with deterministic top-k (ties go to the lowest expert index).
- ``sort_by_expert``: token slots grouped by expert, with per-expert counts and offsets.
- ``multi_lora``: per-row LoRA delta with stacked adapters, by gather-and-bmm.
- ``multi_lora_loop``: the same delta by a Python loop over adapters (the naive baseline that the
  benchmark compares against; one masked matmul pair per adapter).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._validate import check_multi_lora, check_sort_by_expert, check_topk_gating


def topk_gating(
    router_logits: torch.Tensor, k: int, renormalize: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over experts, then the ``k`` most probable experts of each token.

    Semantics::

        probs = softmax(router_logits.float(), dim=-1)                  # [T, E]
        ids = stable_sort(router_logits.float(), descending)[:, :k]     # [T, k], ties -> lowest id
        weights = probs.gather(-1, ids)                                 # [T, k]
        weights /= weights.sum(-1, keepdim=True)   if renormalize

    The ranking is taken on the logits, not the probabilities: softmax is monotonic, and ranking
    the exact inputs makes the chosen ids independent of rounding inside the softmax, so the
    reference and the kernel pick the same experts bit for bit.

    Args:
        router_logits: [T, E] float32 / float16 / bfloat16.
        k: number of experts per token, 1 <= k <= E.
        renormalize: rescale the k weights of each token to sum to 1.

    Returns:
        ``(weights [T, k] float32, expert_ids [T, k] int32)``, each row in descending weight order.
    """
    check_topk_gating(router_logits, k, renormalize)
    logits = router_logits.float()                                        # [T, E]
    probs = torch.softmax(logits, dim=-1)                                 # [T, E]
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices
    expert_ids = order[:, :k]                                             # [T, k] int64
    weights = probs.gather(-1, expert_ids)                                # [T, k]
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, expert_ids.to(torch.int32)


class ExpertSort(NamedTuple):
    """Token slots grouped by expert. Slot ``s`` is ``(token s // k, choice s % k)``.

    order:   [T*k] int64, slot indices sorted by expert id, ascending slot within an expert.
    counts:  [E] int64, slots routed to each expert.
    offsets: [E + 1] int64, expert ``e`` owns ``order[offsets[e]:offsets[e + 1]]``.
    """

    order: torch.Tensor
    counts: torch.Tensor
    offsets: torch.Tensor


def sort_by_expert(expert_ids: torch.Tensor, num_experts: int) -> ExpertSort:
    """Group the (token, choice) slots of a top-k routing by expert, for grouped expert compute.

    Semantics::

        flat = expert_ids.flatten()                                     # [T*k]
        order = argsort(flat, stable=True)                              # [T*k]
        counts = bincount(flat, minlength=E)                            # [E]
        offsets = cat([0], cumsum(counts))                              # [E + 1]

    Typical use: ``tokens = order // k`` gives the input row of each sorted slot, expert ``e``
    runs on ``x[tokens[offsets[e]:offsets[e+1]]]``, and the outputs are combined with
    ``index_add_(0, tokens, y * weights.flatten()[order, None])``.

    Args:
        expert_ids: [T, k] int32 / int64, values in [0, num_experts).
        num_experts: E >= 1.

    Returns:
        ``ExpertSort(order [T*k], counts [E], offsets [E + 1])``, all int64 on expert_ids' device.
    """
    check_sort_by_expert(expert_ids, num_experts)
    flat = expert_ids.reshape(-1).long()                                  # [T*k]
    order = torch.sort(flat, stable=True).indices                         # [T*k]
    counts = torch.bincount(flat, minlength=num_experts)                  # [E]
    offsets = torch.zeros(num_experts + 1, dtype=torch.int64, device=flat.device)
    torch.cumsum(counts, dim=0, out=offsets[1:])                          # [E + 1]
    return ExpertSort(order, counts, offsets)


def _finish(delta: torch.Tensor, out: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """Round a float32 delta once: into a fresh tensor, or added to ``out`` in place."""
    if out is None:
        return delta.to(dtype)
    out.copy_(out.float() + delta)
    return out


def multi_lora(
    x: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    adapter_ids: torch.Tensor,
    scaling: float | torch.Tensor,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row LoRA delta with stacked adapters (gather-and-bmm reference).

    Semantics (row ``t`` with ``i = adapter_ids[t]``; ``i = -1`` gives a zero delta)::

        delta[t] = scaling[i] * (x[t] @ lora_a[i] @ lora_b[i])          # [D_out]
        out[t] += delta[t]                  if out is given, else return delta

    Products accumulate in float32; the result is rounded once to x's dtype.

    Args:
        x: [T, D_in] float32 / float16 / bfloat16.
        lora_a: [N, D_in, R], x's dtype.
        lora_b: [N, R, D_out], x's dtype.
        adapter_ids: [T] int32 (int64 accepted), values in [-1, N).
        scaling: a float for every adapter, or a float [N] tensor.
        out: optional [T, D_out] in x's dtype, updated in place and returned.

    Returns:
        ``delta`` [T, D_out] in x's dtype, or ``out`` after ``out += delta``.
    """
    scale = check_multi_lora(x, lora_a, lora_b, adapter_ids, scaling, out)   # [N] fp32
    has_adapter = adapter_ids >= 0                                        # [T]
    safe_ids = adapter_ids.clamp(min=0).long()                            # [T]
    a = lora_a.float()[safe_ids]                                          # [T, D_in, R]
    b = lora_b.float()[safe_ids]                                          # [T, R, D_out]
    h = torch.bmm(x.float().unsqueeze(1), a)                              # [T, 1, R]
    delta = torch.bmm(h, b).squeeze(1) * scale[safe_ids].unsqueeze(1)     # [T, D_out]
    delta = torch.where(has_adapter.unsqueeze(1), delta, torch.zeros_like(delta))
    return _finish(delta, out, x.dtype)


def multi_lora_loop(
    x: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    adapter_ids: torch.Tensor,
    scaling: float | torch.Tensor,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``multi_lora`` by a loop over adapters: the naive baseline.

    Same semantics, arguments and result as :func:`multi_lora`, computed the way a plain PyTorch
    layer would: per adapter, one boolean mask, one gather and two matmuls in x's own dtype
    (so fp16/bf16 round the [T_i, R] intermediate), and a host-device synchronisation per adapter
    on a GPU. Agrees with :func:`multi_lora` to the tolerance of x's dtype, not bit for bit.
    """
    scale = check_multi_lora(x, lora_a, lora_b, adapter_ids, scaling, out)   # [N] fp32
    if out is None:
        out = torch.zeros(x.shape[0], lora_b.shape[2], dtype=x.dtype, device=x.device)
    for i in range(lora_a.shape[0]):
        rows = (adapter_ids == i).nonzero().squeeze(1)                    # [T_i]
        if rows.numel() == 0:
            continue
        delta = (x[rows] @ lora_a[i]) @ lora_b[i]                         # [T_i, D_out]
        out[rows] += delta * scale[i].to(x.dtype)
    return out
