"""MoRE: Mixture of Reward Experts (Namgoong et al., Findings of ACL 2024, section 3.1).

The FFN block of each chosen layer becomes ``E`` experts with a token-level top-k softmax router::

    p      = softmax(x @ W_router)              # x [T, H], p [T, E]
    w, ids = topk(p, k); w = w / w.sum(-1)      # [T, k] each (renormalized)
    y[t]   = sum_j w[t, j] * expert_{ids[t, j]}(x[t])

Experts are *upcycled*: each starts as a copy of the pretrained FFN (BERT: intermediate.dense ->
act -> output.dense; decoders: the whole ``mlp``). Training adds the Switch-Transformer load
balancing loss ``E * sum_e f_e * P_e`` (f_e: share of routed slots going to e, P_e: mean router
probability of e), weighted by ``router_aux_loss_coef``.

Execution: eager runs sparse (each expert sees only its tokens). Under ONNX export the layer runs
dense-masked: every expert runs on every token and a [T, E] weight matrix that is zero outside the
top-k combines them, which is the same top-k function (exact, not an approximation) at E/k times
the FFN compute of those layers.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .base import decoder_layers


def _gating(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k softmax gating, [T, E] -> (weights [T, k] fp32, ids [T, k] int32): Triton on CUDA."""
    if logits.is_cuda:
        import kernels
        return kernels.topk_gating(logits, k, renormalize=True)
    from kernels import reference
    return reference.topk_gating(logits, k, renormalize=True)


def _exporting() -> bool:
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
        self.last_expert_ids: torch.Tensor | None = None
        self.last_weights: torch.Tensor | None = None

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])                                # [T, H]
        logits = self.router(flat)                                     # [T, E]
        if _exporting():
            return self._dense_masked(flat, logits).reshape(shape)
        weights, ids = _gating(logits, self.top_k)                     # [T, k] fp32, [T, k] int32
        self.last_expert_ids, self.last_weights = ids, weights
        if self.training:
            probs = logits.float().softmax(-1)                         # [T, E]
            counts = torch.zeros_like(probs[0]).index_add_(
                0, ids.reshape(-1).long(), torch.ones(ids.numel(), device=x.device))
            frac = counts / ids.numel()                                # f_e, sums to 1
            self.aux_loss = self.num_experts * (frac * probs.mean(0)).sum()
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (ids == e).nonzero(as_tuple=True)             # tokens routed to e
            if rows.numel():
                w = weights[rows, slot].unsqueeze(-1).to(flat.dtype)   # [n_e, 1]
                out.index_add_(0, rows, expert(flat[rows]) * w)
        return out.reshape(shape)

    def _dense_masked(self, flat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        probs = logits.float().softmax(-1)                             # [T, E]
        top_w, top_i = probs.topk(self.top_k, dim=-1)                  # [T, k]
        top_w = top_w / top_w.sum(-1, keepdim=True)
        dense_w = torch.zeros_like(probs).scatter(-1, top_i, top_w)    # [T, E], zero off top-k
        outs = torch.stack([expert(flat) for expert in self.experts], 1)  # [T, E, H]
        return (outs * dense_w.unsqueeze(-1).to(outs.dtype)).sum(1)


class MoreConfig(PretrainedConfig):
    """Config of a MoRE reward model: the base model's config plus the MoE settings."""

    model_type = "routerm_more"

    def __init__(self, base_config: dict | None = None, num_experts: int = 5, top_k: int = 2,
                 moe_layers: list[int] | None = None, router_aux_loss_coef: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.base_config = base_config or {}
        self.num_experts = num_experts
        self.top_k = top_k
        self.moe_layers = list(moe_layers) if moe_layers is not None else []
        self.router_aux_loss_coef = router_aux_loss_coef
        if self.base_config:
            self.hidden_size = self.base_config.get("hidden_size")
            self.num_hidden_layers = self.base_config.get("num_hidden_layers")

    def base(self) -> PretrainedConfig:
        cfg = dict(self.base_config)
        return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def _bert_style(layer: nn.Module) -> bool:
    return hasattr(layer, "intermediate") and hasattr(layer, "output") and hasattr(layer.output, "dense")


def convert_to_moe(model: nn.Module, config: MoreConfig) -> nn.Module:
    """Replace the FFN of ``config.moe_layers`` in ``model`` by upcycled MoE blocks, in place."""
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


class MoreForSequenceClassification(PreTrainedModel):
    """A base sequence classifier (scalar head) whose chosen FFNs are MoE blocks."""

    config_class = MoreConfig
    base_model_prefix = "routerm_more"
    _supports_sdpa = True

    def __init__(self, config: MoreConfig):
        super().__init__(config)
        base = config.base()
        base.num_labels = config.num_labels
        self.model = convert_to_moe(AutoModelForSequenceClassification.from_config(base), config)
        self.post_init()

    def _init_weights(self, module):  # the inner model initializes itself; routers in MoeFeedForward
        pass

    @classmethod
    def upcycle(cls, base_path: str, pad_token_id: int, num_experts: int, top_k: int = 2,
                moe_layers: list[int] | None = None, router_aux_loss_coef: float = 0.01) -> "MoreForSequenceClassification":
        """Build MoRE from a pretrained checkpoint, every expert a copy of the pretrained FFN."""
        inner = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=1, pad_token_id=pad_token_id)
        n_layers = inner.config.num_hidden_layers
        layers = list(moe_layers) if moe_layers is not None else list(range(n_layers // 2, n_layers))
        config = MoreConfig(base_config=inner.config.to_dict(), num_experts=num_experts, top_k=top_k,
                            moe_layers=layers, router_aux_loss_coef=router_aux_loss_coef,
                            num_labels=1, pad_token_id=pad_token_id)
        model = cls(config)
        model.model = convert_to_moe(inner, config)
        return model

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        result = SequenceClassifierOutput(logits=out.logits)
        if self.training:
            aux = [b.aux_loss for b in moe_blocks(self) if b.aux_loss is not None]
            result["aux_loss"] = self.config.router_aux_loss_coef * torch.stack(aux).sum() if aux else None
        return result


AutoConfig.register(MoreConfig.model_type, MoreConfig)
AutoModelForSequenceClassification.register(MoreConfig, MoreForSequenceClassification)
