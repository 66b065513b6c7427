"""MoRE: Mixture of Reward Experts (Namgoong et al., Findings of ACL 2024, section 3.1).

The FFN block of each chosen layer becomes ``E`` experts with a token-level top-k softmax router::

    p      = softmax(x @ W_router)              # x [T, H], p [T, E]
    w, ids = topk(p, k); w = w / w.sum(-1)      # [T, k] each (renormalized)
    y[t]   = sum_j w[t, j] * expert_{ids[t, j]}(x[t])

Experts are *upcycled*: each starts as a copy of the pretrained FFN (BERT: intermediate.dense ->
act -> output.dense; decoders: the whole ``mlp``). Training adds the Switch-Transformer load
balancing loss ``E * sum_e f_e * P_e`` (f_e: share of routed slots going to e, P_e: mean router
probability of e), weighted by ``router_aux_loss_coef``.

Execution is sparse both ways: each expert sees only its tokens. Padding tokens are neither routed
nor counted in the balance loss, and their outputs are 0; eager mode skips the rows
:class:`models.reward.RewardModel` names once per call (``real_rows``). Under ONNX export the same
computation runs in traceable ops: per expert, the rows routed to it that are not padding
(``real_mask``, a [T] bool tensor from the attention mask) are found (NonZero), gathered, run
through the expert, weighted and scattered back (ScatterND with add). Each token goes through its
k experts only: k/E of the dense FFN compute, none for padding.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .base import decoder_layers


def _gating(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k softmax gating, [T, E] -> (weights [T, k] fp32, ids [T, k] int32): Triton on CUDA."""
    if logits.is_cuda:
        import kernels
        return kernels.topk_gating(logits, k, renormalize=True)
    from kernels import reference
    return reference.topk_gating(logits, k, renormalize=True)


def exporting() -> bool:
    """True while torch.onnx traces the model (MoE blocks then take their traceable path, ``_gathered``)."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


class MoeFeedForward(nn.Module):
    """Drop-in FFN replacement: [B, S, H] -> [B, S, H]."""

    def __init__(self, experts: list[nn.Module], hidden_size: int, top_k: int):
        super().__init__()
        if not 1 <= top_k <= len(experts):
            raise ValueError(f"top_k={top_k} must be in [1, num_experts={len(experts)}]")
        self.top_k = top_k
        self.router = nn.Linear(hidden_size, len(experts), bias=False)
        nn.init.normal_(self.router.weight, std=0.02)
        self.experts = nn.ModuleList(experts)
        self.aux_loss: torch.Tensor | None = None
        self.real_rows: torch.Tensor | None = None                    # [R] non-padding token rows; None: all
        self.real_mask: torch.Tensor | None = None                    # [T] bool, not padding (export only)
        self.last_expert_ids: torch.Tensor | None = None
        self.last_weights: torch.Tensor | None = None

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])                                # [T, H]
        logits = self.router(flat)                                     # [T, E]
        if exporting():
            return self._gathered(flat, logits).reshape(shape)
        real = self.real_rows                                          # [R] token rows that are not padding
        if real is not None:
            logits = logits[real]
        weights, ids = _gating(logits, self.top_k)                     # [R, k] fp32, [R, k] int32
        self.last_expert_ids, self.last_weights = ids, weights
        if self.training:
            probs = logits.float().softmax(-1)                         # [R, E]
            counts = torch.zeros_like(probs[0]).index_add_(
                0, ids.reshape(-1).long(), torch.ones(ids.numel(), device=x.device))
            frac = counts / ids.numel()                                # f_e, sums to 1
            self.aux_loss = self.num_experts * (frac * probs.mean(0)).sum()
        source = flat[real] if real is not None else flat
        out = torch.zeros_like(source)
        for e, expert in enumerate(self.experts):
            rows, slot = (ids == e).nonzero(as_tuple=True)             # tokens routed to e
            if rows.numel():
                w = weights[rows, slot].unsqueeze(-1).to(out.dtype)    # [n_e, 1]
                out.index_add_(0, rows, (expert(source[rows]) * w).to(out.dtype))
        if real is not None:                                           # padding rows stay 0 (never read)
            out = torch.zeros_like(flat).index_copy_(0, real, out)
        return out.reshape(shape)

    def _top_k(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Traceable top-k softmax gating (the reference kernel's function): ([T, k] fp32, [T, k] int64)."""
        top_w, top_i = logits.float().softmax(-1).topk(self.top_k, dim=-1)
        return top_w / top_w.sum(-1, keepdim=True), top_i

    def _gathered(self, flat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Sparse top-k in traceable ops: each expert gathers its rows, scatters back its weighted output."""
        top_w, top_i = self._top_k(logits)                             # [T, k]
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            hit = top_i == e                                           # [T, k], at most one True per row
            routed = hit.sum(-1) > 0                                   # [T]
            if self.real_mask is not None:
                routed = routed & self.real_mask
            rows = routed.nonzero().reshape(-1)                        # [n_e]
            w = (top_w * hit).sum(-1).index_select(0, rows).unsqueeze(-1)  # [n_e, 1]
            y = expert(flat.index_select(0, rows)) * w.to(flat.dtype)  # [n_e, H]
            out = out.index_put((rows,), y, accumulate=True)           # rows are distinct within e
        return out


def _bert_style(layer: nn.Module) -> bool:
    return hasattr(layer, "intermediate") and hasattr(layer, "output") and hasattr(layer.output, "dense")


def convert_to_moe(model: nn.Module, config) -> nn.Module:
    """Replace the FFN of ``config.moe_layers`` in ``model`` by upcycled MoE blocks, in place.

    ``config``: a :class:`models.reward.RewardConfig` (``base()``, ``moe_layers``, ``num_experts``, ``top_k``).
    """
    base = config.base()
    layers = decoder_layers(model, base.num_hidden_layers)
    for index in config.moe_layers:
        if not 0 <= index < len(layers):
            raise ValueError(f"moe_layers has {index}, but the model has {len(layers)} layers")
        layer = layers[index]
        if _bert_style(layer):
            ffn = nn.Sequential(layer.intermediate.dense, layer.intermediate.intermediate_act_fn, layer.output.dense)
            layer.intermediate = MoeFeedForward(
                [copy.deepcopy(ffn) for _ in range(config.num_experts)], base.hidden_size, config.top_k)
            layer.output.dense = nn.Identity()
        elif hasattr(layer, "mlp"):
            layer.mlp = MoeFeedForward(
                [copy.deepcopy(layer.mlp) for _ in range(config.num_experts)], base.hidden_size, config.top_k)
        else:
            raise ValueError(f"don't know where the FFN of {type(layer).__name__} is (no `mlp`, no BERT intermediate)")
    return model


def moe_blocks(model: nn.Module) -> list[MoeFeedForward]:
    return [m for m in model.modules() if isinstance(m, MoeFeedForward)]


@torch.no_grad()
def perturb_experts(model: nn.Module, scale: float, seed: int = 0) -> None:
    """Multiply every expert weight by ``1 + scale * N(0, 1)`` (independent per expert and entry).

    Upcycled experts start as exact copies, and with renormalized top-k weights a layer of equal
    experts computes the same output whatever the router picks, so the router gets no gradient
    from the reward loss and the experts receive the same updates. Small multiplicative noise
    (``scale`` 0.01-0.1 keeps the pretrained function almost unchanged) breaks the symmetry.
    """
    gen = torch.Generator().manual_seed(seed)
    for block in moe_blocks(model):
        for expert in block.experts:
            for param in expert.parameters():
                if param.dim() > 1:
                    noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
                    param.mul_(1 + scale * noise.to(param.dtype))
