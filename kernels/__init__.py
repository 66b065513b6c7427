"""RouteRM's GPU kernels: top-k MoE gating and multi-adapter LoRA, with PyTorch references.

Public API (each has a pure-PyTorch twin of the same name and signature in ``kernels.reference``):

- ``topk_gating(router_logits [T, E], k, renormalize=True) -> (weights [T, k] fp32, ids [T, k] int32)``
- ``sort_by_expert(expert_ids [T, k], num_experts) -> ExpertSort(order, counts, offsets)``
- ``multi_lora(x [T, D_in], lora_a [N, D_in, R], lora_b [N, R, D_out], adapter_ids [T], scaling,
  out=None) -> [T, D_out]``

Dispatch: ``topk_gating`` and ``multi_lora`` run their Triton kernel when the first tensor argument
is on CUDA, or when ``TRITON_INTERPRET`` is set (Triton's CPU interpreter, for tests; it must be
set before the kernel modules are first imported, because ``triton.jit`` reads it then). Otherwise
they run the reference. The kernels are forward-only, so while autograd is recording (grad mode on
and an input requires grad) the call goes to the reference too, which autograd differentiates;
run inference under ``torch.inference_mode()`` or ``torch.no_grad()`` to get the kernels.
``sort_by_expert`` is a stable sort and a histogram, which PyTorch already does well on either
device, so it is the reference everywhere.

The Triton modules are ``topk_gating_triton`` and ``multi_lora_triton``: a submodule named like
its function would replace the function as an attribute of this package on the first lazy import.

Importing this package is free: it imports neither torch nor triton (the implementations load on
first call) and it imports nothing else of RouteRM. That matters because ``transformers`` imports
any top-level module called ``kernels`` it can find, expecting the Hugging Face ``kernels``
package; it finds none of those names here and falls back cleanly.
"""

from __future__ import annotations

import os

__all__ = ["topk_gating", "sort_by_expert", "multi_lora"]

# Triton's own spelling of a true environment flag.
_TRUE = {"1", "true", "yes", "on", "y"}


def _use_triton(*tensors: object) -> bool:
    """Triton for CUDA tensors (or under the interpreter), unless autograd needs a graph."""
    interpreted = os.environ.get("TRITON_INTERPRET", "").strip().lower() in _TRUE
    if not (interpreted or getattr(tensors[0], "is_cuda", False)):
        return False
    if any(getattr(t, "requires_grad", False) for t in tensors):
        import torch  # already imported by whoever made a tensor that requires grad

        # The kernels are forward-only: their outputs would silently carry no gradient.
        return not torch.is_grad_enabled()
    return True


def topk_gating(router_logits, k, renormalize=True):
    """Softmax router top-k: ``(weights [T, k] float32, expert_ids [T, k] int32)``.

    See ``kernels.reference.topk_gating`` for the semantics; Triton on CUDA, reference on CPU.
    """
    if _use_triton(router_logits):
        from .topk_gating_triton import topk_gating as impl
    else:
        from .reference import topk_gating as impl
    return impl(router_logits, k, renormalize)


def sort_by_expert(expert_ids, num_experts):
    """Token slots grouped by expert: ``ExpertSort(order [T*k], counts [E], offsets [E + 1])``.

    See ``kernels.reference.sort_by_expert``; the same PyTorch code on every device.
    """
    from .reference import sort_by_expert as impl

    return impl(expert_ids, num_experts)


def multi_lora(x, lora_a, lora_b, adapter_ids, scaling, out=None):
    """``delta[t] = scaling[i] * (x[t] @ lora_a[i] @ lora_b[i])``, ``i = adapter_ids[t]``, -1 = none.

    Returns the delta [T, D_out] or adds it into ``out`` in place. See
    ``kernels.reference.multi_lora``; Triton on CUDA, reference on CPU.
    """
    if _use_triton(x, lora_a, lora_b, scaling, out):
        from .multi_lora_triton import multi_lora as impl
    else:
        from .reference import multi_lora as impl
    return impl(x, lora_a, lora_b, adapter_ids, scaling, out)
