"""ARLISS: Adapter Router Lightweight Integrated rewardS Switching (Namgoong et al. 2024, sec. 3.3).

One frozen backbone carries ``n + 1`` LoRA adapters (PEFT): a *router* adapter with an n-way
domain head, and one *reward* adapter per domain with a scalar head. Scoring a pair is two passes
over the same weights: the router adapter picks the domain, the domain's adapter gives the reward.

Checkpoint layout (ordinary PEFT/HF artefacts, no pickles)::

    arliss_config.json            ArlissConfig (domains in order, base model, LoRA settings)
    adapters/<name>/adapter_config.json, adapter_model.safetensors   (name: router, each domain)
    heads.safetensors             router_head.{weight [n, H], bias [n]}, reward_heads.{weight [n, H], bias [n]}
    tokenizer files

Pooling: the backbone's pooler output where it has one (BERT: tanh(W h_cls)), else the last real
token's hidden state (decoders).
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

from .base import check_model_dir, pool_last_token

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

    def lora_config(self) -> LoraConfig:
        target = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
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
        return cls(**raw)


def pool(backbone_out, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, H] sequence summary (pooler output, else last real token)."""
    pooled = getattr(backbone_out, "pooler_output", None)
    if pooled is not None:
        return pooled
    return pool_last_token(backbone_out.last_hidden_state, attention_mask)


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
        base = AutoModel.from_pretrained(str(check_model_dir(config.base_model)))
        peft = get_peft_model(base, config.lora_config(), adapter_name=ROUTER)
        for name in config.domains:
            peft.add_adapter(name, config.lora_config())
        return cls(peft, config)

    @classmethod
    def load(cls, path: str | Path) -> "ArlissModel":
        path = Path(path)
        if not (path / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"'{path}' is not an ARLISS checkpoint (no {CONFIG_FILE})")
        config = ArlissConfig.load(path)
        base = AutoModel.from_pretrained(str(check_model_dir(config.base_model)))
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

    def domain_index(self, domain: str) -> int:
        if domain not in self.config.domains:
            raise ValueError(f"unknown domain '{domain}'; known: {list(self.config.domains)}")
        return self.config.domains.index(domain)

    def _pooled(self, adapter: str, batch: dict) -> torch.Tensor:
        self.backbone.set_adapter(adapter)
        return pool(self.backbone(**batch), batch["attention_mask"])

    def router_logits(self, batch: dict) -> torch.Tensor:
        """[B, n] domain logits from the router adapter."""
        return self.router_head(self._pooled(ROUTER, batch))

    def rewards(self, batch: dict, domain: str) -> torch.Tensor:
        """[B] rewards from ``domain``'s adapter and head."""
        i = self.domain_index(domain)
        pooled = self._pooled(domain, batch)
        return pooled @ self.reward_heads.weight[i] + self.reward_heads.bias[i]

    def trainable_for(self, adapter: str) -> list[nn.Parameter]:
        """Parameters that training ``adapter`` updates (its LoRA weights and its head)."""
        self.backbone.set_adapter(adapter)  # PEFT: only the active adapter requires grad
        params = [p for n, p in self.backbone.named_parameters() if p.requires_grad and f".{adapter}." in n]
        head = self.router_head if adapter == ROUTER else self.reward_heads
        return params + list(head.parameters())
