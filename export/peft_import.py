"""ARLISS from PEFT adapters people trained: one base model, one LoRA reward adapter per domain and a
router adapter, served per row in one graph.

Adapters are read as PEFT and TRL save them for ``task_type="SEQ_CLS"``: ``adapter_config.json``
and ``adapter_model.safetensors`` with ``base_model.model.<module>.lora_A.weight`` [r, in] and
``lora_B.weight`` [out, r] per target, and the classification head in ``modules_to_save``
(``base_model.model.<head>.weight`` [labels, hidden], ``.bias``). Ranks, alphas and targets may
differ per adapter. The graph (``switchable`` kind of core.manifest)::

    every target linear      y = x @ W^T + b + scaling[ids[b]] * x @ A[ids[b]] @ B[ids[b]]   (models.multi_adapter)
                             A [N, in, R_max], B [N, R_max, out]: ranks zero-padded, untargeted = 0
    the head (score/classifier), as the model applies it (decoders: every token, then the last non-pad one)
                             out[..., 0]  = x @ w_reward[ids[b]] + b_reward[ids[b]]     the row's reward head
                             out[..., 1:] = x @ W_router^T + b_router                    the router head
    outputs                  rewards = logits[:, 0] [B], router_logits = logits[:, 1:] [B, n]

Adapter order: the domains (as the router's labels order them), then ``router`` last. The router's
labels come from ``id2label`` in a ``config.json`` beside its adapter, else the order of the
``--adapter`` flags. Refused, naming the adapter folder: a missing or non-LoRA config, DoRA, LoRA
biases, ``fan_in_fan_out``, a target that is not a linear layer of ``--base`` or of another shape
(an adapter of another base), no saved head, a head of the wrong size, router labels that are not
the domains.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from export.hf_model import HFModel, ImportModelError
from models.multi_adapter import StackedLoraLinear

PREFIX = "base_model.model."
ROUTER = "router"


@dataclass(frozen=True)
class Adapter:
    path: Path
    lora: dict          # module path -> (A [r, in], B [out, r], scaling)
    head: str           # the head module's name (score, classifier)
    head_weight: torch.Tensor   # [labels, hidden]
    head_bias: torch.Tensor | None


def _pattern(patterns: dict, module: str, default):
    """PEFT's rank/alpha pattern lookup: a key matches a module path ending in it."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def read_adapter(path: Path, base: HFModel) -> Adapter:
    from safetensors.torch import load_file
    path = Path(path)
    config_file, weights_file = path / "adapter_config.json", path / "adapter_model.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        raise ImportModelError(f"'{path}' is not a PEFT adapter folder (adapter_config.json and adapter_model.safetensors "
                               f"expected, as PeftModel.save_pretrained writes them)")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    for field, ok, why in (("peft_type", config.get("peft_type") == "LORA", "a LoRA adapter"),
                           ("use_dora", not config.get("use_dora"), "plain LoRA (DoRA's magnitude vectors are not served)"),
                           ("bias", config.get("bias", "none") == "none", "bias 'none' (LoRA biases are not served)"),
                           ("fan_in_fan_out", not config.get("fan_in_fan_out"), "nn.Linear targets")):
        if not ok:
            raise ImportModelError(f"{config_file}: field '{field}' is {config.get(field)!r}; RouteRM imports {why}")
    tensors = load_file(str(weights_file))
    lora, heads = {}, {}
    for key in tensors:
        if not key.startswith(PREFIX):
            raise ImportModelError(f"{weights_file}: tensor '{key}' is not under '{PREFIX}' as PEFT saves them")
        name = key[len(PREFIX):]
        if ".lora_A." in name:
            module = name.split(".lora_A.")[0]
            a, b = tensors[key], tensors.get(f"{PREFIX}{module}.lora_B.weight")
            if b is None:
                raise ImportModelError(f"{weights_file}: '{module}' has lora_A but no lora_B")
            r = a.shape[0]
            alpha = _pattern(config.get("alpha_pattern"), module, config.get("lora_alpha", r))
            scaling = alpha / (r ** 0.5 if config.get("use_rslora") else r)
            lora[module] = (a.float(), b.float(), float(scaling))
        elif ".lora_" not in name:
            heads.setdefault(name.rsplit(".", 1)[0], {})[name.rsplit(".", 1)[1]] = tensors[key]
    head_names = [h for h in heads if h in ("score", "classifier")]
    if not head_names:
        raise ImportModelError(f"'{path}' saved no classification head (modules_to_save holds {sorted(heads) or 'nothing'}); "
                               f"train with task_type='SEQ_CLS' so PEFT saves the score head with the adapter")
    extra = sorted(set(heads) - set(head_names))
    if extra:
        raise ImportModelError(f"'{path}' saves modules besides its head ({extra}); RouteRM stacks LoRA and heads only")
    head = heads[head_names[0]]
    check_base(path, lora, base, config.get("base_model_name_or_path"))
    return Adapter(path, lora, head_names[0], head["weight"].float(), head.get("bias"))


def same_base(recorded: str | None, base: Path) -> bool:
    """Whether the base PEFT recorded (``base_model_name_or_path``: a hub id or the path it was loaded
    from) is ``base``: the same folder, or the same last name (``Qwen/Qwen3-0.6B`` and ``.../Qwen3-0.6B``)."""
    if not recorded:
        return True
    if Path(recorded).exists() and Path(recorded).resolve() == base.resolve():
        return True
    return Path(recorded.rstrip("/")).name.lower() == base.resolve().name.lower()


def check_base(path: Path, lora: dict, base: HFModel, recorded: str | None = None) -> None:
    """The adapter names ``base`` as its base and every target is a linear layer of ``base`` of the
    adapter's shape; otherwise it is another base's adapter."""
    if not same_base(recorded, base.path):
        raise ImportModelError(f"{path / 'adapter_config.json'}: the adapter was trained on '{recorded}' "
                               f"(base_model_name_or_path), but --base is '{base.path}': an adapter of another base "
                               f"model. If it is that model under another name, write its name there")
    for module, (a, b, _) in lora.items():
        try:
            layer = base.model.get_submodule(module)
        except AttributeError:
            raise ImportModelError(f"'{path}' adapts module '{module}', which --base '{base.path}' does not have: "
                                   f"an adapter of another base model?") from None
        if not isinstance(layer, nn.Linear):
            raise ImportModelError(f"'{path}' adapts '{module}', a {type(layer).__name__}; RouteRM stacks LoRA on nn.Linear")
        if a.shape[1] != layer.in_features or b.shape[0] != layer.out_features:
            raise ImportModelError(f"'{path}' adapts '{module}' as {a.shape[1]} -> {b.shape[0]}, but in --base "
                                   f"'{base.path}' it is {layer.in_features} -> {layer.out_features}: an adapter of "
                                   f"another base model")


def router_labels(router: Path, domains: list[str]) -> list[str]:
    """The router adapter's class names: ``id2label`` of a config.json beside it, else the flags' order."""
    config = Path(router) / "config.json"
    if not config.is_file():
        return list(domains)
    id2label = json.loads(config.read_text(encoding="utf-8")).get("id2label")
    if not isinstance(id2label, dict):
        raise ImportModelError(f"{config}: no 'id2label' object naming the router's classes")
    labels = [str(id2label[k]) for k in sorted(id2label, key=int)]
    if sorted(labels) != sorted(domains):
        raise ImportModelError(f"{config}: the router adapter's id2label names {labels}, the adapters are {list(domains)}; "
                               f"they must be the same names")
    return labels


class StackedHead(nn.Module):
    """``out[..., 0]`` = the row's reward head, ``out[..., 1:]`` = the router head (module docstring)."""

    def __init__(self, reward_w: torch.Tensor, reward_b: torch.Tensor, router_w: torch.Tensor, router_b: torch.Tensor):
        super().__init__()
        self.register_buffer("reward_w", reward_w)      # [N, H] (router row: zeros)
        self.register_buffer("reward_b", reward_b)      # [N]
        self.router = nn.Linear(router_w.shape[1], router_w.shape[0])
        with torch.no_grad():
            self.router.weight.copy_(router_w)
            self.router.bias.copy_(router_b)
        self.adapter_ids: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = self.adapter_ids
        x3 = x.reshape(x.shape[0], -1, x.shape[-1])                             # [B, S, H] (S = 1 after a pooler)
        reward = (x3 * self.reward_w[ids][:, None, :]).sum(-1) + self.reward_b[ids][:, None]   # [B, S]
        out = torch.cat([reward[..., None], self.router(x3)], -1)              # [B, S, 1 + n]
        return out.reshape(*x.shape[:-1], out.shape[-1])


class SwitchableImport(nn.Module):
    """``(input_ids, attention_mask, token_type_ids?, adapter_ids [B]) -> {"rewards": [B], "router_logits": [B, n]}``."""

    def __init__(self, model: nn.Module, layers: list, head: StackedHead):
        super().__init__()
        self.model, self.layers, self.head = model, layers, head
        self.config = model.config

    def forward(self, input_ids, attention_mask, token_type_ids=None, adapter_ids=None):
        if adapter_ids is None:
            raise ValueError("adapter_ids [batch] is required")
        for layer in [*self.layers, self.head]:
            layer.adapter_ids = adapter_ids
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits   # [B, 1 + n]
        return {"rewards": logits[:, 0], "router_logits": logits[:, 1:]}


def _stack(layer: nn.Linear, found: list) -> StackedLoraLinear:
    """``found``: per adapter (A [r, in], B [out, r], scaling) or None; ranks zero-padded to the largest."""
    rank = max(a.shape[0] for a, _, _ in (f for f in found if f is not None))
    a_all = torch.zeros(len(found), layer.in_features, rank)
    b_all = torch.zeros(len(found), rank, layer.out_features)
    scaling = torch.zeros(len(found))
    for i, f in enumerate(found):
        if f is not None:
            a, b, s = f
            a_all[i, :, :a.shape[0]], b_all[i, :b.shape[1], :], scaling[i] = a.t(), b.t(), s
    return StackedLoraLinear(layer, a_all, b_all, scaling)


def switchable_module(base: HFModel, adapters: dict, router: Path) -> tuple[SwitchableImport, dict]:
    """The one graph of an imported ARLISS bundle and its ``adapter_ids`` ({domain: i, ..., "router": N - 1})."""
    import copy
    if ROUTER in adapters:
        raise ImportModelError(f"'{ROUTER}' names the router adapter; call the domain something else")
    labels = router_labels(router, list(adapters))
    read = [read_adapter(adapters[d], base) for d in labels] + [read_adapter(router, base)]
    hidden = read[0].head_weight.shape[1]
    for d, ad in zip([*labels, ROUTER], read):
        want = len(labels) if d == ROUTER else 1
        if ad.head_weight.shape != (want, hidden) or ad.head != read[0].head:
            raise ImportModelError(f"'{ad.path}': its head '{ad.head}' is {tuple(ad.head_weight.shape)}; "
                                   f"{'the router' if d == ROUTER else 'a reward adapter'} needs [{want}, {hidden}]")
    model = copy.deepcopy(base.model).eval()
    layers = []
    for module in sorted({m for ad in read for m in ad.lora}):
        parent_name, _, child = module.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        stacked = _stack(getattr(parent, child), [ad.lora.get(module) for ad in read])
        setattr(parent, child, stacked)
        layers.append(stacked)

    def bias(ad: Adapter) -> torch.Tensor:
        return ad.head_bias.float() if ad.head_bias is not None else torch.zeros(ad.head_weight.shape[0])

    reward_w = torch.cat([ad.head_weight for ad in read[:-1]] + [torch.zeros(1, hidden)])
    reward_b = torch.cat([bias(ad) for ad in read[:-1]] + [torch.zeros(1)])
    head = StackedHead(reward_w, reward_b, read[-1].head_weight, bias(read[-1]))
    setattr(model, read[0].head, head)
    ids = {d: i for i, d in enumerate(labels)}
    ids[ROUTER] = len(labels)
    return SwitchableImport(model, layers, head).eval(), ids
