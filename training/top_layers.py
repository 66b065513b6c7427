"""Train an encoder's top layers on cached lower-layer states (the add-domain ``"top"`` router scheme).

A router body that was trained on n domains has learnt to ignore what tells the (n+1)-th apart
(harmless from helpful prompts, both from HH-RLHF): refitting its head alone cannot get that back.
Fine-tuning every layer costs as much as training the router again. This trains only the top
``k`` transformer layers: the frozen layers below run once over the prompts, their output (the
top layers' input, ``[S_i, H]`` per prompt, bf16 when the run is) is cached, and each step runs ``k`` layers
forward and backward instead of all of them.

Pooling as the model's own (models.base.pool_output): ``"layer_mean"`` averages every layer's
masked token mean, so the cache also keeps the frozen layers' share of that sum (``[N, H]``);
``"mean"`` reads the last layer alone. Encoders only (``"last"``/``"pooler"`` raise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.base import decoder_layers, fp32, pool_mean
from core.text import Encoded
from models.base import collate


@dataclass(frozen=True)
class TopCache:
    """What the top ``len(layers) - cut`` layers need, for N examples."""
    states: list[torch.Tensor]      # N x [S_i, H]: input of layer ``cut`` (real tokens only; bf16 under bf16)
    lower: torch.Tensor             # [N, H] fp32: sum of layers < cut's masked means ("layer_mean"), else 0
    pooled: torch.Tensor            # [N, H] fp32: the whole model's pooled features (as models.base.pool_output)
    labels: torch.Tensor            # [N] int64


class TopLayers:
    """The top ``k`` layers of ``backbone`` (an HF encoder, or a PEFT model around one) and its pooling."""

    def __init__(self, backbone: nn.Module, pooling: str, k: int):
        if pooling not in ("layer_mean", "mean"):
            raise ValueError(f"training the top layers on cached states needs 'layer_mean' or 'mean' pooling, "
                             f"not {pooling!r}")
        self.backbone, self.pooling = backbone, pooling
        self.num_layers = backbone.config.num_hidden_layers
        if not 1 <= k <= self.num_layers:
            raise ValueError(f"top layers k={k} must be within the model's {self.num_layers} layers")
        self.cut = self.num_layers - k
        self.layers = decoder_layers(backbone, self.num_layers)[self.cut:]

    def parameters_of(self, named: list[tuple[str, nn.Parameter]]) -> list[tuple[str, nn.Parameter]]:
        """The subset of ``named`` that lives in the top layers."""
        mine = {id(p) for p in self.layers.parameters()}
        return [(n, p) for n, p in named if id(p) in mine]

    def cache(self, examples: list[Encoded], labels: list[int], pad_id: int, batch_size: int = 64,
              bf16: bool = True) -> TopCache:
        """One inference pass of the whole backbone over ``examples`` (batched by length)."""
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
        states: list[torch.Tensor | None] = [None] * len(examples)
        hidden_size = self.backbone.config.hidden_size
        lower, pooled = torch.zeros(len(examples), hidden_size), torch.empty(len(examples), hidden_size)
        dtype = torch.bfloat16 if bf16 else torch.float32
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                batch = collate([examples[i] for i in idx], pad_id)
                out = self.backbone(**batch, output_hidden_states=True)
                means = [pool_mean(h.float(), batch["attention_mask"]) for h in out.hidden_states[1:]]
                if self.pooling == "layer_mean":
                    lower[idx] = torch.stack(means[: self.cut]).sum(0) if self.cut else 0.0
                    pooled[idx] = torch.stack(means).mean(0)
                else:
                    pooled[idx] = means[-1]
                lengths = batch["attention_mask"].sum(-1).tolist()
                for j, i in enumerate(idx):
                    states[i] = out.hidden_states[self.cut][j, : lengths[j]].to(dtype).clone()
        return TopCache(states, lower, pooled, torch.tensor(labels, dtype=torch.long))

    def pooled(self, cache: TopCache, idx: list[int]) -> torch.Tensor:
        """[B, H] fp32 pooled features of examples ``idx``, the top layers run from the cache (with grad)."""
        rows = [cache.states[i] for i in idx]
        width = max(len(r) for r in rows)
        hidden = torch.zeros(len(rows), width, rows[0].shape[-1])       # fp32: autocast casts where it runs bf16
        mask = torch.zeros(len(rows), width)
        for j, r in enumerate(rows):
            hidden[j, : len(r)] = r
            mask[j, : len(r)] = 1.0
        additive = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min   # [B, 1, 1, S]
        total = cache.lower[idx].clone()
        for layer in self.layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
            if self.pooling == "layer_mean":
                total = total + pool_mean(hidden.float(), mask)
        return total / self.num_layers if self.pooling == "layer_mean" else pool_mean(hidden.float(), mask)


def _logits(top: TopLayers, head: nn.Module, cache: TopCache, idx: list[int]) -> torch.Tensor:
    pooled = top.pooled(cache, idx)
    with fp32(pooled):                                            # heads run in fp32, as in the models
        return head(pooled)


def classifier_step(top: TopLayers, head: nn.Module, cache: TopCache) -> Callable[[list[int]], torch.Tensor]:
    """``step(idx) -> loss`` for training.loop: cross-entropy of ``head(pooled)`` on cached examples."""
    return lambda idx: F.cross_entropy(_logits(top, head, cache, idx), cache.labels[idx])


def classifier_check(top: TopLayers, head: nn.Module, cache: TopCache, batch_size: int = 64) -> Callable[[], dict]:
    """``validate()`` for training.loop on cached examples: cross-entropy and accuracy (as loop.classifier_validation)."""
    def validate() -> dict:
        logits = torch.cat([_logits(top, head, cache, list(range(s, min(s + batch_size, len(cache.states)))))
                            for s in range(0, len(cache.states), batch_size)])
        return {"loss": float(F.cross_entropy(logits, cache.labels)),
                "accuracy": float((logits.argmax(-1) == cache.labels).float().mean()), "examples": len(cache.states)}
    return validate
