"""Argument checks shared by the Triton launchers and the PyTorch references.

Both implementations call the same checker, so a bad argument raises the same exception with the
same message whichever one runs: ``TypeError`` for a non-tensor (or a non-int ``k``), ``ValueError``
for a wrong rank, shape, dtype, device or index range. Every check runs before any work starts.

The index-range checks (``adapter_ids`` in ``[-1, N)``, ``expert_ids`` in ``[0, E)``) read one
min/max pair back from the device: one host-device synchronisation per call.
"""

from __future__ import annotations

import numbers

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)


def _require_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _require_ndim(name: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    if tensor.dim() != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D {layout}, got shape {tuple(tensor.shape)}"
        )


def _require_dtype(name: str, tensor: torch.Tensor, allowed: tuple[torch.dtype, ...]) -> None:
    if tensor.dtype not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise ValueError(f"{name} must have dtype in ({names}), got {tensor.dtype}")


def _require_device(name: str, tensor: torch.Tensor, device: torch.device, ref: str) -> None:
    if tensor.device != device:
        raise ValueError(f"{name} is on {tensor.device} but {ref} is on {device}")


def _require_int(name: str, value: object) -> int:
    # bool is an int subclass; True as a count is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def _index_range(ids: torch.Tensor) -> tuple[int, int]:
    """(min, max) of a non-empty integer tensor with a single device read-back."""
    lo, hi = torch.aminmax(ids)
    lo_hi = torch.stack((lo, hi)).tolist()
    return int(lo_hi[0]), int(lo_hi[1])


def check_topk_gating(router_logits: object, k: object, renormalize: object) -> None:
    """router_logits: [T, E] float; 1 <= k <= E; renormalize: bool."""
    logits = _require_tensor("router_logits", router_logits)
    _require_ndim("router_logits", logits, 2, "[T, E]")
    _require_dtype("router_logits", logits, FLOAT_DTYPES)
    k = _require_int("k", k)
    num_experts = logits.shape[1]
    if not 1 <= k <= num_experts:
        raise ValueError(
            f"k must be in [1, E={num_experts}] for router_logits of shape "
            f"{tuple(logits.shape)}, got k={k}"
        )
    if not isinstance(renormalize, bool):
        raise TypeError(f"renormalize must be a bool, got {type(renormalize).__name__}")


def check_sort_by_expert(expert_ids: object, num_experts: object) -> None:
    """expert_ids: [T, k] int32/int64 with values in [0, num_experts); num_experts >= 1."""
    ids = _require_tensor("expert_ids", expert_ids)
    _require_ndim("expert_ids", ids, 2, "[T, k]")
    _require_dtype("expert_ids", ids, INDEX_DTYPES)
    num_experts = _require_int("num_experts", num_experts)
    if num_experts < 1:
        raise ValueError(f"num_experts must be >= 1, got {num_experts}")
    if ids.numel() > 0:
        lo, hi = _index_range(ids)
        if lo < 0 or hi >= num_experts:
            raise ValueError(
                f"expert_ids must lie in [0, {num_experts}), got values in [{lo}, {hi}]"
            )


def _check_lora_shapes(x: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor,
                       adapter_ids: torch.Tensor) -> tuple[int, int, int]:
    """x [T, D_in], lora_a [N, D_in, R], lora_b [N, R, D_out], adapter_ids [T]: returns (T, N, D_out)."""
    num_tokens, d_in = x.shape
    n_adapters, a_d_in, rank = lora_a.shape
    if n_adapters < 1 or rank < 1 or d_in < 1:
        raise ValueError(
            f"lora_a must have N >= 1, D_in >= 1 and R >= 1, got shape {tuple(lora_a.shape)}"
        )
    if a_d_in != d_in:
        raise ValueError(
            f"lora_a has shape {tuple(lora_a.shape)} but x has shape {tuple(x.shape)}: "
            f"lora_a.shape[1] must equal x.shape[1] (D_in)"
        )
    if lora_b.shape[0] != n_adapters or lora_b.shape[1] != rank:
        raise ValueError(
            f"lora_b has shape {tuple(lora_b.shape)} but lora_a has shape "
            f"{tuple(lora_a.shape)}: lora_b must be [N={n_adapters}, R={rank}, D_out]"
        )
    d_out = lora_b.shape[2]
    if d_out < 1:
        raise ValueError(f"lora_b must have D_out >= 1, got shape {tuple(lora_b.shape)}")
    if adapter_ids.shape[0] != num_tokens:
        raise ValueError(
            f"adapter_ids has shape {tuple(adapter_ids.shape)} but x has shape "
            f"{tuple(x.shape)}: adapter_ids must be [T={num_tokens}]"
        )
    return num_tokens, n_adapters, d_out


def _check_out(out: object, x: torch.Tensor, lora_b: torch.Tensor, num_tokens: int, d_out: int) -> None:
    """out: [T, D_out], x's dtype and device."""
    out = _require_tensor("out", out)
    _require_ndim("out", out, 2, "[T, D_out]")
    if tuple(out.shape) != (num_tokens, d_out):
        raise ValueError(
            f"out has shape {tuple(out.shape)} but must be [T={num_tokens}, "
            f"D_out={d_out}] for x {tuple(x.shape)} and lora_b {tuple(lora_b.shape)}"
        )
    if out.dtype != x.dtype:
        raise ValueError(f"out has dtype {out.dtype} but x has dtype {x.dtype}")
    _require_device("out", out, x.device, "x")


def _scaling_tensor(scaling: object, n_adapters: int, device: torch.device) -> torch.Tensor:
    """A real number or a float [N] tensor on ``device`` -> fp32 [N]."""
    if isinstance(scaling, torch.Tensor):
        if scaling.shape != (n_adapters,):
            raise ValueError(
                f"scaling must be a float or a [N={n_adapters}] tensor, got shape "
                f"{tuple(scaling.shape)}"
            )
        if not scaling.is_floating_point():
            raise ValueError(f"scaling must be a floating-point tensor, got {scaling.dtype}")
        _require_device("scaling", scaling, device, "x")
        return scaling.to(torch.float32)
    if isinstance(scaling, numbers.Real) and not isinstance(scaling, bool):
        return torch.full((n_adapters,), float(scaling), dtype=torch.float32, device=device)
    raise TypeError(
        f"scaling must be a float or a torch.Tensor, got {type(scaling).__name__}"
    )


def check_multi_lora(
    x: object,
    lora_a: object,
    lora_b: object,
    adapter_ids: object,
    scaling: object,
    out: object,
) -> torch.Tensor:
    """Check every argument of ``multi_lora``; return ``scaling`` as an fp32 [N] tensor.

    x: [T, D_in]; lora_a: [N, D_in, R]; lora_b: [N, R, D_out]; adapter_ids: [T] int32/int64 in
    [-1, N); scaling: a real number or a float [N] tensor; out: None or [T, D_out]. x, lora_a,
    lora_b and out share one float dtype; all tensors share x's device.
    """
    x = _require_tensor("x", x)
    lora_a = _require_tensor("lora_a", lora_a)
    lora_b = _require_tensor("lora_b", lora_b)
    adapter_ids = _require_tensor("adapter_ids", adapter_ids)
    _require_ndim("x", x, 2, "[T, D_in]")
    _require_ndim("lora_a", lora_a, 3, "[N, D_in, R]")
    _require_ndim("lora_b", lora_b, 3, "[N, R, D_out]")
    _require_ndim("adapter_ids", adapter_ids, 1, "[T]")

    _require_dtype("x", x, FLOAT_DTYPES)
    for name, tensor in (("lora_a", lora_a), ("lora_b", lora_b)):
        if tensor.dtype != x.dtype:
            raise ValueError(f"{name} has dtype {tensor.dtype} but x has dtype {x.dtype}")
    _require_dtype("adapter_ids", adapter_ids, INDEX_DTYPES)
    for name, tensor in (("lora_a", lora_a), ("lora_b", lora_b), ("adapter_ids", adapter_ids)):
        _require_device(name, tensor, x.device, "x")

    num_tokens, n_adapters, d_out = _check_lora_shapes(x, lora_a, lora_b, adapter_ids)
    if out is not None:
        _check_out(out, x, lora_b, num_tokens, d_out)
    scale = _scaling_tensor(scaling, n_adapters, x.device)

    if num_tokens > 0:
        lo, hi = _index_range(adapter_ids)
        if lo < -1 or hi >= n_adapters:
            raise ValueError(
                f"adapter_ids must lie in [-1, {n_adapters}) (-1 = no adapter), "
                f"got values in [{lo}, {hi}]"
            )
    return scale
