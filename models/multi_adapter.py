"""ARLISS with every adapter stacked, chosen per row: one backbone pass for a mixed-domain batch.

Each LoRA-carrying linear layer becomes :class:`StackedLoraLinear`::

    y[b, s] = x[b, s] @ W^T + bias + scaling[ids[b]] * (x[b, s] @ lora_a[ids[b]] @ lora_b[ids[b]])
    x [B, S, D], lora_a [N, D, R], lora_b [N, R, O], scaling [N], ids [B] int (adapter per row)

Adapter order is ``ArlissConfig.adapter_names`` (domains..., router). :class:`SwitchableArliss`
computes both heads for every row: ``rewards[b]`` uses domain ``ids[b]``'s head (meaningless for
router rows, which callers never read) and ``router_logits`` [B, n] the router head.

Compute paths: on the CPU and under ONNX export a per-row gather of A/B ([B, D, R], [B, R, O])
and two batched matmuls over [B, S, D] (what the switchable graph holds; gathering per token
instead, [B*S, D, R], ran the CPU Torch backend at 3.5 pairs/s against 18 for the graph); on CUDA
the Triton ``kernels.multi_lora`` over tokens.
"""
from __future__ import annotations

import copy

import torch
from peft.tuners.lora import LoraLayer
from torch import nn

from .arliss import ArlissModel, encode


class StackedLoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: torch.Tensor):
        super().__init__()
        self.base = base
        self.lora_a = nn.Parameter(lora_a, requires_grad=False)      # [N, D, R]
        self.lora_b = nn.Parameter(lora_b, requires_grad=False)      # [N, R, O]
        self.register_buffer("scaling", scaling)                     # [N]
        self.adapter_ids: torch.Tensor | None = None                 # [B], set by SwitchableArliss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x is [B, S, D] in the encoder layers but [B, D] in BERT's pooler (LoRA "all-linear" covers
        # pooler.dense): view it as [B, S, D] with S = 1 there, and give y back x's leading shape.
        ids = self.adapter_ids
        y = self.base(x)
        x3 = x.reshape(x.shape[0], -1, x.shape[-1])                  # [B, S, D]
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or not x.is_cuda:
            a = self.lora_a[ids]                                     # [B, D, R]
            b = self.lora_b[ids] * self.scaling[ids][:, None, None]  # [B, R, O]
            return y + torch.matmul(torch.matmul(x3, a), b).reshape(y.shape)  # [B, S, O] -> y's shape
        B, S, D = x3.shape
        tokens = ids.to(torch.int32).repeat_interleave(S)            # [B*S]
        flat_y = y.reshape(B * S, -1).contiguous()
        import kernels as ops
        ops.multi_lora(x3.reshape(B * S, D).contiguous(), self.lora_a, self.lora_b, tokens, self.scaling, out=flat_y)
        return flat_y.reshape(y.shape)


class SwitchableArliss(nn.Module):
    """``forward(input_ids, attention_mask, token_type_ids?, adapter_ids [B]) -> (rewards [B], router_logits [B, n])``."""

    def __init__(self, arliss: ArlissModel):
        super().__init__()
        names = arliss.config.adapter_names
        self.domains = arliss.config.domains
        self.router_id = len(names) - 1
        peft = copy.deepcopy(arliss.backbone)
        self.backbone = peft.base_model.model                       # plain HF model, LoRA layers still inside
        self.layers: list[StackedLoraLinear] = []
        for parent_name, parent in list(self.backbone.named_modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, LoraLayer):
                    stacked = self._stack(child, names)
                    setattr(parent, child_name, stacked)
                    self.layers.append(stacked)
        if not self.layers:
            raise ValueError("the ARLISS backbone holds no LoRA layers to stack")
        self.pooling = arliss.config.pooling
        self.router_head = copy.deepcopy(arliss.router_head)
        self.reward_heads = copy.deepcopy(arliss.reward_heads)
        self.eval()

    @staticmethod
    def _stack(layer: LoraLayer, names: tuple[str, ...]) -> StackedLoraLinear:
        base = layer.get_base_layer()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"stacked LoRA needs nn.Linear layers, got {type(base).__name__}")
        # An adapter that does not cover this layer (reward adapters on the top layers only) is zeros.
        rank = {tuple(layer.lora_A[n].weight.shape) for n in layer.lora_A}
        if len(rank) != 1:
            raise ValueError(f"stacked LoRA needs one rank per layer, got A shapes {sorted(rank)}")
        r = next(iter(rank))[0]
        zero_a, zero_b = torch.zeros(base.in_features, r), torch.zeros(r, base.out_features)
        a = torch.stack([layer.lora_A[n].weight.detach().t() if n in layer.lora_A else zero_a for n in names])  # [N, D, R]
        b = torch.stack([layer.lora_B[n].weight.detach().t() if n in layer.lora_B else zero_b for n in names])  # [N, R, O]
        s = torch.tensor([float(layer.scaling[n]) if n in layer.scaling else 0.0 for n in names])
        return StackedLoraLinear(base, a.contiguous(), b.contiguous(), s)

    def forward(self, input_ids, attention_mask, token_type_ids=None, adapter_ids=None):
        if adapter_ids is None:
            raise ValueError("adapter_ids [batch] is required")
        for layer in self.layers:
            layer.adapter_ids = adapter_ids
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        pooled = encode(self.backbone, self.pooling, input_ids, attention_mask, **extra)
        head = adapter_ids.clamp(max=len(self.domains) - 1)          # router rows: any valid row
        rewards = (pooled * self.reward_heads.weight[head]).sum(-1) + self.reward_heads.bias[head]
        return rewards, self.router_head(pooled)
