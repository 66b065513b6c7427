"""Top-k softmax gating for a mixture-of-experts router, fused into one Triton kernel.

The router of a sparse MoE layer (Shazeer et al. 2017, "Outrageously Large Neural Networks",
sec. 2.1; Mixtral's renormalised top-2) turns logits ``l [T, E]`` into k experts per token::

    p[t, e] = exp(l[t, e] - max_e l[t]) / sum_e exp(l[t, e] - max_e l[t])      # softmax, fp32
    ids[t]  = the k largest l[t, e], ties broken by the lowest e                # [T, k]
    w[t, j] = p[t, ids[t, j]]                    (renormalize=False)
    w[t, j] = p[t, ids[t, j]] / sum_j' p[t, ids[t, j']]   (renormalize=True)

Ranking the logits rather than the probabilities gives the same order (softmax is monotonic) and
makes the choice exact: the kernel and ``kernels.reference.topk_gating`` see the same float32
logits, so they pick the same ids bit for bit. With renormalisation the softmax denominator
cancels, so the kernel divides the k numerators by their own sum.

One program owns ``BLOCK_T`` tokens and the whole (padded) expert axis: E is small (4 to 64), so a
[BLOCK_T, BLOCK_E] tile lives in registers and the k rounds of "take the max, mask it out" are
k cheap row reductions. Logits are read once and only 8 k bytes a token are written.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ._validate import check_topk_gating


@triton.jit
def _topk_gating_kernel(
    logits_ptr, weights_ptr, ids_ptr,
    T, E,
    stride_lt, stride_le, stride_wt, stride_it,
    K: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_K: tl.constexpr,
    RENORMALIZE: tl.constexpr,
):
    pid_t = tl.program_id(0)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_e = tl.arange(0, BLOCK_E)
    offs_k = tl.arange(0, BLOCK_K)
    mask_t = offs_t < T
    mask_e = offs_e < E

    logit_ptrs = logits_ptr + offs_t[:, None] * stride_lt + offs_e[None, :] * stride_le
    logits = tl.load(logit_ptrs, mask=mask_t[:, None] & mask_e[None, :], other=float("-inf"))
    # Rows past T would be all -inf and make NaNs (-inf - -inf); give them finite junk instead.
    logits = tl.where(mask_t[:, None], logits.to(tl.float32), 0.0)   # [BLOCK_T, BLOCK_E]

    row_max = tl.max(logits, axis=1)                                  # [BLOCK_T]
    numer = tl.exp(logits - row_max[:, None])                         # padding -> exp(-inf) = 0
    denom = tl.sum(numer, axis=1)                                     # [BLOCK_T]

    # Padding columns are never available, so a row of -inf logits still picks real experts.
    available = mask_t[:, None] & mask_e[None, :]                     # [BLOCK_T, BLOCK_E]
    top_w = tl.zeros((BLOCK_T, BLOCK_K), dtype=tl.float32)
    top_ids = tl.zeros((BLOCK_T, BLOCK_K), dtype=tl.int32)
    for j in tl.static_range(K):
        best = tl.max(tl.where(available, logits, float("-inf")), axis=1)         # [BLOCK_T]
        is_best = available & (logits == best[:, None])
        # Lowest index among equal maxima: the reference's stable descending sort does the same.
        idx = tl.min(tl.where(is_best, offs_e[None, :], BLOCK_E), axis=1)        # [BLOCK_T]
        # A NaN row matches nothing; clamp so the id stays a valid expert (result unspecified).
        idx = tl.minimum(idx, E - 1)
        chosen = offs_e[None, :] == idx[:, None]
        w = tl.sum(tl.where(chosen, numer, 0.0), axis=1)                          # [BLOCK_T]
        available = available & ~chosen
        top_w = tl.where(offs_k[None, :] == j, w[:, None], top_w)
        top_ids = tl.where(offs_k[None, :] == j, idx[:, None], top_ids)

    if RENORMALIZE:
        top_w = top_w / tl.sum(top_w, axis=1)[:, None]
    else:
        top_w = top_w / denom[:, None]

    mask_out = mask_t[:, None] & (offs_k[None, :] < K)
    tl.store(weights_ptr + offs_t[:, None] * stride_wt + offs_k[None, :], top_w, mask=mask_out)
    tl.store(ids_ptr + offs_t[:, None] * stride_it + offs_k[None, :], top_ids, mask=mask_out)


@functools.lru_cache(maxsize=None)
def _launch_config(tokens_bucket: int, num_experts: int, k: int) -> dict:
    """Tile sizes and warps for (next_pow2(T), E, k); heuristic, not yet tuned on a GPU.

    Aim for about 512 logits per program (E <= 16 gives 32 tokens a program): enough work to hide
    a load, and T = 4096 still spreads over 128 programs.
    """
    block_e = max(2, triton.next_power_of_2(num_experts))
    # Floors of 2 keep every tile at least 2 wide (a size-1 arange buys nothing and is a corner
    # case for layouts).
    block_t = max(2, min(tokens_bucket, 512 // block_e, 64))
    return {
        "BLOCK_T": block_t,
        "BLOCK_E": block_e,
        "BLOCK_K": max(2, triton.next_power_of_2(k)),
        "num_warps": 4 if block_t * block_e >= 2048 else 2,
    }


def topk_gating(
    router_logits: torch.Tensor, k: int, renormalize: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton top-k softmax gating; semantics of ``kernels.reference.topk_gating``.

    Args:
        router_logits: [T, E] float32 / float16 / bfloat16, any strides.
        k: experts per token, 1 <= k <= E.
        renormalize: rescale each token's k weights to sum to 1.

    Returns:
        ``(weights [T, k] float32, expert_ids [T, k] int32)``, descending weight order per row.
    """
    check_topk_gating(router_logits, k, renormalize)
    num_tokens, num_experts = router_logits.shape
    device = router_logits.device
    weights = torch.empty(num_tokens, k, dtype=torch.float32, device=device)
    expert_ids = torch.empty(num_tokens, k, dtype=torch.int32, device=device)
    if num_tokens == 0:
        return weights, expert_ids

    config = _launch_config(triton.next_power_of_2(num_tokens), num_experts, k)
    grid = (triton.cdiv(num_tokens, config["BLOCK_T"]),)
    _topk_gating_kernel[grid](
        router_logits, weights, expert_ids,
        num_tokens, num_experts,
        router_logits.stride(0), router_logits.stride(1), weights.stride(0), expert_ids.stride(0),
        K=k,
        RENORMALIZE=renormalize,
        **config,
    )
    return weights, expert_ids
