"""Multi-adapter LoRA: every row of a batch through its own low-rank adapter, in two Triton kernels.

LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", sec. 4.1) adds
``scaling * x @ A @ B`` to a frozen linear layer. Serving many adapters at once (Punica, Chen et al.
2023, "Punica: Multi-Tenant LoRA Serving", sec. 4: SGMV) stacks them and gives each row an index::

    delta[t] = scaling[i] * (x[t] @ lora_a[i] @ lora_b[i]),   i = adapter_ids[t]
    delta[t] = 0                                              if i == -1
    out[t]  += delta[t]                                       (or return delta)

    x: [T, D_in]   lora_a: [N, D_in, R]   lora_b: [N, R, D_out]   adapter_ids: [T] int32

Rows are grouped by adapter on the device: a stable sort of the ids and a binary search for each
segment bound, with no host synchronisation (the argument check reads the id range back once), so
sorted and unsorted batches take the same path. Each adapter's rows form a segment
``rows[start[i] : start[i] + count[i]]``; a program handles one ``BLOCK_M``-row block of one
segment, so every tile multiplies rows that share one weight matrix (a real ``tl.dot``):

1. shrink  ``h[s, t, :] = x[t, Ks] @ lora_a[i, Ks, :]``, grid (row blocks, N, SPLIT_K). The K axis
   (D_in, up to 1024) is split over SPLIT_K programs when the batch is small, because then only a
   handful of programs exist and each would stream all of ``lora_a[i]`` alone. Partial sums go to
   a float32 buffer [SPLIT_K, T, R] and are added in a fixed order by the expand kernel, so the
   result is deterministic (no atomics).
2. expand  ``out[t, n] (+)= scaling[i] * sum_s h[s, t, :] @ lora_b[i, :, n]``, grid (row blocks, N,
   D_out blocks). For fp16/bf16 the summed ``h`` is rounded to the input dtype for the tensor-core
   dot (as vLLM's and Punica's kernels do); for float32 the dot runs in IEEE fp32, not TF32.

The grids are sized for the worst case (all T rows on one adapter): ``cdiv(T, BLOCK_M) * N``
programs, of which those past their segment's end return at once. Rows with id -1 are sorted past
every segment and never touched.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ._validate import check_multi_lora


@triton.jit
def _multi_lora_shrink_kernel(
    x_ptr, a_ptr, h_ptr, rows_ptr, seg_start_ptr, seg_count_ptr,
    K, R, K_PER_SPLIT,
    stride_xm, stride_xk,
    stride_an, stride_ak, stride_ar,
    stride_hs, stride_hm, stride_hr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_R: tl.constexpr,
    FP32_DOT: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)   # adapter
    pid_s = tl.program_id(2)   # K split
    seg_count = tl.load(seg_count_ptr + pid_n)
    if pid_m * BLOCK_M >= seg_count:
        return
    seg_start = tl.load(seg_start_ptr + pid_n)

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = offs_m < seg_count
    rows = tl.load(rows_ptr + seg_start + offs_m, mask=mask_m, other=0).to(tl.int64)
    offs_r = tl.arange(0, BLOCK_R)
    mask_r = offs_r < R

    x_row_ptrs = x_ptr + rows[:, None] * stride_xm
    a_base = a_ptr + pid_n.to(tl.int64) * stride_an + offs_r[None, :] * stride_ar
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    k_begin = pid_s * K_PER_SPLIT
    k_end = tl.minimum(k_begin + K_PER_SPLIT, K)
    for k0 in range(k_begin, k_end, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < k_end
        x = tl.load(x_row_ptrs + offs_k[None, :] * stride_xk,
                    mask=mask_m[:, None] & mask_k[None, :], other=0.0)    # [BLOCK_M, BLOCK_K]
        a = tl.load(a_base + offs_k[:, None] * stride_ak,
                    mask=mask_k[:, None] & mask_r[None, :], other=0.0)    # [BLOCK_K, BLOCK_R]
        if FP32_DOT:
            acc = tl.dot(x, a, acc, input_precision="ieee")
        else:
            acc = tl.dot(x, a, acc)

    h_ptrs = h_ptr + pid_s * stride_hs + rows[:, None] * stride_hm + offs_r[None, :] * stride_hr
    tl.store(h_ptrs, acc, mask=mask_m[:, None] & mask_r[None, :])


@triton.jit
def _multi_lora_expand_kernel(
    h_ptr, b_ptr, scale_ptr, out_ptr, rows_ptr, seg_start_ptr, seg_count_ptr,
    R, N,
    stride_hs, stride_hm, stride_hr,
    stride_bn, stride_br, stride_bo,
    stride_om, stride_on,
    SPLIT_K: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_R: tl.constexpr,
    FP32_DOT: tl.constexpr,
    ACCUMULATE: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_a = tl.program_id(1)   # adapter
    pid_n = tl.program_id(2)   # block of D_out
    seg_count = tl.load(seg_count_ptr + pid_a)
    if pid_m * BLOCK_M >= seg_count:
        return
    seg_start = tl.load(seg_start_ptr + pid_a)

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    mask_m = offs_m < seg_count
    rows = tl.load(rows_ptr + seg_start + offs_m, mask=mask_m, other=0).to(tl.int64)
    offs_r = tl.arange(0, BLOCK_R)
    mask_r = offs_r < R
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N

    # Fixed summation order over the K splits: deterministic, unlike atomics in the shrink.
    h_ptrs = h_ptr + rows[:, None] * stride_hm + offs_r[None, :] * stride_hr
    mask_h = mask_m[:, None] & mask_r[None, :]
    h = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for s in tl.static_range(SPLIT_K):
        h += tl.load(h_ptrs + s * stride_hs, mask=mask_h, other=0.0)      # [BLOCK_M, BLOCK_R]

    b_ptrs = (b_ptr + pid_a.to(tl.int64) * stride_bn
              + offs_r[:, None] * stride_br + offs_n[None, :] * stride_bo)
    b = tl.load(b_ptrs, mask=mask_r[:, None] & mask_n[None, :], other=0.0)  # [BLOCK_R, BLOCK_N]
    if FP32_DOT:
        acc = tl.dot(h, b, input_precision="ieee")
    else:
        acc = tl.dot(h.to(b.dtype), b)                                     # [BLOCK_M, BLOCK_N]
    acc = acc * tl.load(scale_ptr + pid_a)

    out_ptrs = out_ptr + rows[:, None] * stride_om + offs_n[None, :] * stride_on
    mask_out = mask_m[:, None] & mask_n[None, :]
    if ACCUMULATE:
        acc += tl.load(out_ptrs, mask=mask_out, other=0.0).to(tl.float32)
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask_out)


@functools.lru_cache(maxsize=None)
def _launch_config(
    tokens_bucket: int, n_adapters: int, d_in: int, d_out: int, rank: int, dtype: torch.dtype
) -> dict:
    """Tiles for (next_pow2(T), N, D_in, D_out, R, dtype); heuristic, not yet tuned on a GPU.

    ``tl.dot`` needs every tile side >= 16, so BLOCK_M and BLOCK_R never go below 16 (a batch of one
    row wastes most of an MMA, but at that size the op is bound by reading the weights). The
    expected segment length ``T / N`` picks BLOCK_M; small batches split K so the few live
    programs do not each stream a whole [D_in, R] matrix alone, and use narrower D_out blocks so
    reading ``lora_b`` spreads over more programs.
    """
    wide = dtype == torch.float32   # 4-byte elements: halve the K tile to keep shared memory flat
    rows_per_adapter = max(1, tokens_bucket // n_adapters)
    block_m = min(64, max(16, triton.next_power_of_2(rows_per_adapter)))
    block_k = 64 if wide else 128
    small_batch = tokens_bucket <= 64
    split_k = min(4, triton.cdiv(d_in, block_k)) if small_batch else 1
    return {
        "BLOCK_M": block_m,
        "BLOCK_K": block_k,
        "BLOCK_R": max(16, triton.next_power_of_2(rank)),
        "BLOCK_N": 64 if small_batch or wide else 128,
        "SPLIT_K": split_k,
        "num_warps": 4,
        "num_stages": 2 if wide else 3,
    }


def _segments(adapter_ids: torch.Tensor, n_adapters: int):
    """Rows grouped by adapter, on the device: (rows [T] int32, start [N] int32, count [N] int32).

    Rows with id -1 get key N, so they sort after every adapter's segment and are never read.
    Segment bounds come from ``searchsorted`` on the sorted keys rather than ``bincount``, which
    reads its maximum back to the host on CUDA.
    """
    keys = torch.where(adapter_ids < 0, n_adapters, adapter_ids.long())            # [T]
    sorted_keys, rows = torch.sort(keys, stable=True)                              # [T], [T]
    adapters = torch.arange(n_adapters, device=keys.device)                        # [N]
    start = torch.searchsorted(sorted_keys, adapters)                              # [N]
    end = torch.searchsorted(sorted_keys, adapters, right=True)                    # [N]
    return rows.to(torch.int32), start.to(torch.int32), (end - start).to(torch.int32)


def multi_lora(
    x: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    adapter_ids: torch.Tensor,
    scaling: float | torch.Tensor,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triton multi-adapter LoRA; semantics of ``kernels.reference.multi_lora``.

    ``delta[t] = scaling[i] * (x[t] @ lora_a[i] @ lora_b[i])`` with ``i = adapter_ids[t]`` and a
    zero delta where ``i == -1``; added into ``out`` in place when it is given.

    Args:
        x: [T, D_in] float32 / float16 / bfloat16, any strides.
        lora_a: [N, D_in, R], x's dtype.
        lora_b: [N, R, D_out], x's dtype.
        adapter_ids: [T] int32 (int64 accepted), values in [-1, N); sorted or not.
        scaling: a float for every adapter, or a float [N] tensor.
        out: optional [T, D_out] in x's dtype, updated in place and returned.

    Returns:
        ``delta`` [T, D_out] in x's dtype, or ``out`` after ``out += delta``.
    """
    scale = check_multi_lora(x, lora_a, lora_b, adapter_ids, scaling, out)   # [N] fp32
    num_tokens, d_in = x.shape
    n_adapters, _, rank = lora_a.shape
    d_out = lora_b.shape[2]
    accumulate = out is not None
    if out is None:
        # Rows without an adapter are never written by the kernel, so they must start at zero.
        out = torch.zeros(num_tokens, d_out, dtype=x.dtype, device=x.device)
    if num_tokens == 0:
        return out

    config = _launch_config(
        triton.next_power_of_2(num_tokens), n_adapters, d_in, d_out, rank, x.dtype
    )
    block_m, split_k = config["BLOCK_M"], config["SPLIT_K"]
    k_per_split = triton.cdiv(triton.cdiv(d_in, split_k), config["BLOCK_K"]) * config["BLOCK_K"]
    rows, seg_start, seg_count = _segments(adapter_ids, n_adapters)
    h = torch.empty(split_k, num_tokens, rank, dtype=torch.float32, device=x.device)
    fp32_dot = x.dtype == torch.float32
    row_blocks = triton.cdiv(num_tokens, block_m)

    _multi_lora_shrink_kernel[(row_blocks, n_adapters, split_k)](
        x, lora_a, h, rows, seg_start, seg_count,
        d_in, rank, k_per_split,
        x.stride(0), x.stride(1),
        lora_a.stride(0), lora_a.stride(1), lora_a.stride(2),
        h.stride(0), h.stride(1), h.stride(2),
        BLOCK_M=block_m, BLOCK_K=config["BLOCK_K"], BLOCK_R=config["BLOCK_R"],
        FP32_DOT=fp32_dot,
        num_warps=config["num_warps"], num_stages=config["num_stages"],
    )
    _multi_lora_expand_kernel[(row_blocks, n_adapters, triton.cdiv(d_out, config["BLOCK_N"]))](
        h, lora_b, scale, out, rows, seg_start, seg_count,
        rank, d_out,
        h.stride(0), h.stride(1), h.stride(2),
        lora_b.stride(0), lora_b.stride(1), lora_b.stride(2),
        out.stride(0), out.stride(1),
        SPLIT_K=split_k, BLOCK_M=block_m, BLOCK_N=config["BLOCK_N"], BLOCK_R=config["BLOCK_R"],
        FP32_DOT=fp32_dot, ACCUMULATE=accumulate,
        num_warps=config["num_warps"],
    )
    return out
