"""ARLISS: Adapter Router Lightweight Integrated rewardS Switching (Namgoong et al. 2024, sec. 3.3).

One frozen backbone carries ``n + 1`` LoRA adapters (PEFT): a *router* adapter with an n-way
domain head, and one *reward* adapter per domain with a scalar head. Scoring a pair is two passes
over the same weights: the router adapter picks the domain, the domain's adapter gives the reward.

Checkpoint layout (ordinary PEFT/HF artefacts, no pickles)::

    arliss_config.json            ArlissConfig (domains in order, base model, LoRA settings)
    adapters/<name>/adapter_config.json, adapter_model.safetensors   (name: router, each domain)
    heads.safetensors             router_head.{weight [n, H], bias [n]}, reward_heads.{weight [n, H], bias [n]}
    tokenizer files

Pooling (``ArlissConfig.pooling``): masked mean over real tokens of the layers' mean for encoders,
the last real token for decoders (:func:`models.base.pool_output`); ``"mean"`` (last layer only) for
checkpoints written before the layer mean; ``"pooler"`` (BERT's tanh(W h_cls)) only for checkpoints
written before mean pooling. LoRA sits on ``lora_layers`` (None: every layer); with the lower
layers left without adapters, training never needs their backward pass.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel

from .base import check_model_dir, decoder_layers, fp32, pool_output, run_backbone

ROUTER = "router"
CONFIG_FILE = "arliss_config.json"


@dataclass(frozen=True)
class ArlissConfig:
    domains: tuple[str, ...]
    base_model: str
    pad_token_id: int
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: str | tuple[str, ...] = "all-linear"
    pooling: str = "layer_mean"               # "layer_mean" | "mean" | "last" | "pooler" (old checkpoints)
    lora_layers: tuple[int, ...] | None = None  # None: every layer
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if ROUTER in self.domains:
            raise ValueError(f"'{ROUTER}' is reserved and cannot be a domain name")
        if len(set(self.domains)) != len(self.domains) or not self.domains:
            raise ValueError(f"domains must be unique and non-empty, got {self.domains}")

    @property
    def adapter_names(self) -> tuple[str, ...]:
        """Adapter order everywhere (stacked tensors, ``adapter_ids``): domains..., then router."""
        return (*self.domains, ROUTER)

    @property
    def adapter_ids(self) -> dict[str, int]:
        """``{adapter name: index}`` in :attr:`adapter_names` order: the bundle manifest's ``adapter_ids``."""
        return {name: i for i, name in enumerate(self.adapter_names)}

    def lora_config(self, adapter: str, backbone: nn.Module) -> LoraConfig:
        """The router adapter covers every layer; reward adapters ``lora_layers`` (None: every layer).

        Layer-restricted adapters name their target modules in full (``encoder.layer.3.attention
        .self.query``, ...), the linear layers of ``backbone`` (the plain model) inside those layers.
        """
        target = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
        if self.lora_layers is not None and adapter != ROUTER:
            target = _linear_names_in_layers(backbone, self.lora_layers, target)
        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=0.0, target_modules=target)

    def save(self, path: Path) -> None:
        (path / CONFIG_FILE).write_text(json.dumps({"method": "arliss", **asdict(self)}, indent=2))

    @classmethod
    def load(cls, path: Path) -> "ArlissConfig":
        raw = json.loads((path / CONFIG_FILE).read_text())
        raw.pop("method", None)
        raw["domains"] = tuple(raw["domains"])
        if isinstance(raw.get("target_modules"), list):
            raw["target_modules"] = tuple(raw["target_modules"])
        raw.setdefault("pooling", "pooler")  # written before the field existed
        if not Path(raw["base_model"]).is_absolute():   # a bundle's torch/ copy names its base relatively
            raw["base_model"] = str(Path(path) / raw["base_model"])
        if raw.get("lora_layers") is not None:
            raw["lora_layers"] = tuple(raw["lora_layers"])
        return cls(**raw)


def pool(backbone_out, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """[B, H] sequence summary in fp32: ``how`` is 'layer_mean', 'mean', 'last' or 'pooler' (see module docstring)."""
    if how == "pooler":
        pooled = getattr(backbone_out, "pooler_output", None)
        if pooled is None:
            raise ValueError("pooling 'pooler' needs a backbone with a pooler (BERT)")
        return pooled.float()
    return pool_output(backbone_out, attention_mask, how)


def encode(backbone: nn.Module, how: str, input_ids, attention_mask, **extra) -> torch.Tensor:
    """Run ``backbone`` (asking for every layer when ``how`` needs them) and :func:`pool` it: [B, H] fp32."""
    return pool(run_backbone(backbone, how, input_ids, attention_mask, **extra), attention_mask, how)


def _linear_names_in_layers(backbone: nn.Module, layers: tuple[int, ...], target) -> list[str]:
    """Full names of the linear modules inside transformer layers ``layers`` (``target``: 'all-linear' or leaf names)."""
    num = backbone.config.num_hidden_layers
    stack = decoder_layers(backbone, num)
    prefix = next(name for name, m in backbone.named_modules() if m is stack)
    wanted = [f"{prefix}.{i}." for i in layers if 0 <= i < num]
    if len(wanted) != len(layers):
        raise ValueError(f"lora_layers {list(layers)} must be within the model's {num} layers")
    names = [name for name, m in backbone.named_modules() if isinstance(m, nn.Linear) and name.startswith(tuple(wanted))
             and (target == "all-linear" or name.rsplit(".", 1)[-1] in target)]
    if not names:
        raise ValueError(f"no linear layer matches target_modules {target!r} in layers {list(layers)}")
    return names


def load_backbone(config: "ArlissConfig"):
    """The plain base model ARLISS puts its adapters on (no adapters yet; its pooler dropped when unread)."""
    base = AutoModel.from_pretrained(str(check_model_dir(config.base_model)))
    if config.pooling != "pooler" and getattr(base, "pooler", None) is not None:
        base.pooler = None  # never read: no LoRA on it, no weights exported for it
    return base


class ArlissModel(nn.Module):
    """PEFT backbone with router + per-domain LoRA adapters and their heads."""

    def __init__(self, backbone: PeftModel, config: ArlissConfig):
        super().__init__()
        self.config = config
        self.backbone = backbone
        hidden = backbone.base_model.model.config.hidden_size
        n = len(config.domains)
        self.router_head = nn.Linear(hidden, n)
        self.reward_heads = nn.Linear(hidden, n)  # row i is domain i's scalar head
        for head in (self.router_head, self.reward_heads):
            nn.init.normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)

    @classmethod
    def new(cls, config: ArlissConfig) -> "ArlissModel":
        base = load_backbone(config)
        lora = {name: config.lora_config(name, base) for name in config.adapter_names}  # before PEFT wraps base
        peft = get_peft_model(base, lora[ROUTER], adapter_name=ROUTER)
        for name in config.domains:
            peft.add_adapter(name, lora[name])
        return cls(peft, config)

    @classmethod
    def load(cls, path: str | Path) -> "ArlissModel":
        path = Path(path)
        if not (path / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"'{path}' is not an ARLISS checkpoint (no {CONFIG_FILE})")
        config = ArlissConfig.load(path)
        base = load_backbone(config)
        peft = PeftModel.from_pretrained(base, str(path / "adapters" / ROUTER), adapter_name=ROUTER)
        for name in config.domains:
            peft.load_adapter(str(path / "adapters" / name), adapter_name=name)
        model = cls(peft, config)
        heads = load_file(str(path / "heads.safetensors"))
        model.router_head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("router_head.")})
        model.reward_heads.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("reward_heads.")})
        return model.eval()

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.config.save(path)
        for name in self.config.adapter_names:
            self.backbone.save_pretrained(str(path / "adapters"), selected_adapters=[name])
        heads = {f"router_head.{k}": v for k, v in self.router_head.state_dict().items()}
        heads.update({f"reward_heads.{k}": v for k, v in self.reward_heads.state_dict().items()})
        save_file({k: v.contiguous() for k, v in heads.items()}, str(path / "heads.safetensors"))

    def reset_router(self) -> None:
        """Re-initialise the router adapter (LoRA B = 0: the base model's features again), as a new model's."""
        for module in self.backbone.modules():
            if hasattr(module, "reset_lora_parameters") and ROUTER in getattr(module, "lora_A", {}):
                module.reset_lora_parameters(ROUTER, True)

    def domain_index(self, domain: str) -> int:
        if domain not in self.config.domains:
            raise ValueError(f"unknown domain '{domain}'; known: {list(self.config.domains)}")
        return self.config.domains.index(domain)

    def pooled(self, adapter: str, batch: dict) -> torch.Tensor:
        """[B, H] fp32 pooled features of ``batch`` with ``adapter`` ("router" or a domain) active."""
        self.backbone.set_adapter(adapter)
        return encode(self.backbone, self.config.pooling, **batch)  # fp32 (see pool)

    def router_logits(self, batch: dict) -> torch.Tensor:
        """[B, n] domain logits from the router adapter (head in fp32, see models.base.fp32)."""
        pooled = self.pooled(ROUTER, batch)
        with fp32(pooled):
            return self.router_head(pooled)

    def rewards(self, batch: dict, domain: str) -> torch.Tensor:
        """[B] rewards from ``domain``'s adapter and head."""
        i = self.domain_index(domain)
        pooled = self.pooled(domain, batch)
        with fp32(pooled):
            return pooled @ self.reward_heads.weight[i] + self.reward_heads.bias[i]

    def trainable_for(self, adapter: str) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` pairs that training ``adapter`` updates: its LoRA weights and its head."""
        self.backbone.set_adapter(adapter)  # PEFT: only the active adapter requires grad
        params = [(n, p) for n, p in self.backbone.named_parameters() if p.requires_grad and f".{adapter}." in n]
        head = "router_head" if adapter == ROUTER else "reward_heads"
        return params + [(f"{head}.{n}", p) for n, p in getattr(self, head).named_parameters()]
