"""What each bundle graph computes, as a PyTorch module plus the Optimum ONNX config that exports it.

Every role of ``core/manifest.py`` gets one module whose forward takes the graph's inputs by
name and returns a dict keyed by the graph's output names, so the exported graph and its PyTorch
reference are the same object (validation runs both on the same feeds)::

    reward, reward/<domain>   (input_ids, attention_mask[, token_type_ids]) -> {"logits": [B, 1]}
    router                    (input_ids, attention_mask[, token_type_ids]) -> {"logits": [B, n]}
    switchable                (..., adapter_ids [B] int64) -> {"rewards": [B], "router_logits": [B, n]}

All graphs go through Optimum's exporter (``optimum.exporters.onnx.export``: a declarative
:class:`~optimum.exporters.onnx.OnnxConfig` of inputs, dynamic axes and outputs, traced by the
TorchScript exporter, which Optimum calls with ``dynamo=False``). Custom configs: MoRE
(``routerm_reward`` is unknown to Optimum; its dummy text inputs come from the base config) and the
switchable graph (its extra ``adapter_ids`` input needs its own dummy generator). No graph needs
the plain ``torch.onnx.export`` fallback.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

import torch
from optimum.exporters.onnx import OnnxConfig, export as optimum_export
from optimum.utils import DummyInputGenerator, DummyTextInputGenerator, NormalizedTextConfig
from torch import nn

from models.arliss import ROUTER, ArlissModel, encode
from models.checkpoint import Checkpoint
from models.multi_adapter import SwitchableArliss

BATCH = {0: "batch_size"}
TOKENS = {0: "batch_size", 1: "sequence_length"}


# --- PyTorch modules, one per graph role -----------------------------------------------------------

class ClassifierLogits(nn.Module):
    """An HF sequence classifier (baseline, MoRE, RODOS): ``{"logits": model(...).logits}``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return {"logits": self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits}


class MergedHead(nn.Module):
    """A plain backbone (one ARLISS adapter merged into its weights) + that adapter's head.

    ``logits = encode(backbone, x) @ weight.T + bias``; weight [n_out, H] (router: the n-way domain
    head; domain i: row i of ``reward_heads``, so n_out = 1).
    """

    def __init__(self, backbone: nn.Module, weight: torch.Tensor, bias: torch.Tensor, pooling: str):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.config = backbone.config
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return {"logits": self.head(encode(self.backbone, self.pooling, input_ids, attention_mask, **extra))}


class SwitchableGraph(nn.Module):
    """:class:`models.multi_adapter.SwitchableArliss` with named outputs (``rewards``, ``router_logits``)."""

    def __init__(self, arliss: ArlissModel):
        super().__init__()
        self.model = SwitchableArliss(arliss)
        self.config = self.model.backbone.config

    def forward(self, input_ids, attention_mask, token_type_ids=None, adapter_ids=None):
        rewards, router_logits = self.model(input_ids, attention_mask, token_type_ids, adapter_ids)
        return {"rewards": rewards, "router_logits": router_logits}


def merge_adapter(arliss: ArlissModel, adapter: str) -> nn.Module:
    """A copy of the ARLISS backbone with ``adapter``'s LoRA folded into the weights (others dropped)."""
    peft = copy.deepcopy(arliss.backbone)
    peft.set_adapter(adapter)
    return peft.merge_and_unload(adapter_names=[adapter]).eval()


def graph_modules(ckpt: Checkpoint, lora: str) -> dict[str, nn.Module]:
    """``{role: module}`` for every graph of the bundle (roles as in ``core.manifest.expected_roles``)."""
    m = ckpt.models
    if ckpt.method in ("baseline", "more"):
        return {"reward": ClassifierLogits(m["reward"])}
    if ckpt.method == "rodos":
        return {role: ClassifierLogits(model) for role, model in m.items()}
    arliss: ArlissModel = m["arliss"]
    if lora == "switchable":
        return {"switchable": SwitchableGraph(arliss)}
    heads = arliss.reward_heads
    how = arliss.config.pooling
    out = {"router": MergedHead(merge_adapter(arliss, ROUTER), arliss.router_head.weight, arliss.router_head.bias, how)}
    for i, domain in enumerate(ckpt.domains):
        out[f"reward/{domain}"] = MergedHead(merge_adapter(arliss, domain), heads.weight[i:i + 1], heads.bias[i:i + 1], how)
    return {role: module.eval() for role, module in out.items()}


# --- Optimum ONNX configs ----------------------------------------------------------------------------

class DummyAdapterIdsGenerator(DummyInputGenerator):
    """``adapter_ids`` [batch] int64, uniform over the stacked adapters (the trace must see a mix)."""

    SUPPORTED_INPUT_NAMES = ("adapter_ids",)

    def __init__(self, task, normalized_config, batch_size: int = 2, **kwargs):
        self.batch_size = batch_size
        self.num_adapters = normalized_config.num_adapters

    def generate(self, input_name, framework="pt", int_dtype="int64", float_dtype="fp32"):
        return self.random_int_tensor([self.batch_size], max_value=self.num_adapters, framework=framework, dtype=int_dtype)


class ScoreOnnxConfig(OnnxConfig):
    """Encoder scoring graph: token inputs with dynamic batch/sequence axes, named outputs.

    ``outputs`` maps output name -> dynamic axes; ``token_types`` adds the ``token_type_ids`` input.
    """

    NORMALIZED_CONFIG_CLASS = NormalizedTextConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyTextInputGenerator,)
    DEFAULT_ONNX_OPSET = 17

    def __init__(self, config, outputs: dict, token_types: bool):
        super().__init__(config, task="text-classification")
        self._outputs = OrderedDict(outputs)
        self._token_types = token_types

    @property
    def inputs(self) -> dict:
        names = ("input_ids", "attention_mask", "token_type_ids") if self._token_types else ("input_ids", "attention_mask")
        return OrderedDict((name, dict(TOKENS)) for name in names)

    @property
    def outputs(self) -> dict:
        return self._outputs


class SwitchableOnnxConfig(ScoreOnnxConfig):
    """Adds ``adapter_ids`` [batch] int64 (one stacked adapter per row)."""

    DUMMY_INPUT_GENERATOR_CLASSES = (DummyTextInputGenerator, DummyAdapterIdsGenerator)

    def __init__(self, config, num_adapters: int, token_types: bool):
        config = copy.copy(config)
        config.num_adapters = num_adapters
        super().__init__(config, {"rewards": dict(BATCH), "router_logits": dict(BATCH)}, token_types)

    @property
    def inputs(self) -> dict:
        return OrderedDict([*super().inputs.items(), ("adapter_ids", dict(BATCH))])


def text_config(module: nn.Module):
    """The config Optimum's dummy text generator reads (vocab size etc.): RewardModel keeps it in ``base_config``."""
    config = module.config
    if getattr(config, "model_type", None) == "routerm_reward":
        return config.base()
    return config


def onnx_config(role: str, module: nn.Module, token_types: bool, num_adapters: int | None = None) -> OnnxConfig:
    if role == "switchable":
        return SwitchableOnnxConfig(text_config(module), num_adapters, token_types)
    return ScoreOnnxConfig(text_config(module), {"logits": dict(BATCH)}, token_types)


def export_graph(role: str, module: nn.Module, path: Path, opset: int, token_types: bool,
                 num_adapters: int | None = None) -> tuple[list[str], list[str]]:
    """Export one graph through Optimum; returns its (input names, output names) in graph order."""
    config = onnx_config(role, module, token_types, num_adapters)
    # Trace at batch 2 x seq 16; validation later runs other shapes (batch 3 x seq 37).
    inputs, outputs = optimum_export(module, config, path, opset=opset, input_shapes={"batch_size": 2, "sequence_length": 16})
    return list(inputs), list(outputs)
