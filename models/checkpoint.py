"""Trained checkpoints of every method: the on-disk layout and a loader used by export, runtime, benchmarks.

``<dir>/routerm.json`` names the method and what scoring needs (domains in order, max length,
truncation policy, base model). Layout per method (all ordinary HF / PEFT artefacts)::

    baseline  <dir>/                       RewardModel (models.reward, model_type routerm_reward), num_labels=1
    more      <dir>/                       RewardModel with MoE layers
    rodos     <dir>/router/                RewardModel, num_labels=n
              <dir>/rewards/<domain>/      one scalar reward model per domain
    arliss    <dir>/                       see models.arliss (adapters/, heads.safetensors)

RODOS and ARLISS checkpoints may also hold ``router_features.safetensors``: their router's prompt
features, which only training.add_domain reads (training.router_store); scoring never does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from transformers import AutoModelForSequenceClassification

from . import reward as _reward  # noqa: F401  (registers RewardModel with the Auto classes)
from .arliss import ArlissModel
from .base import count_params, load_tokenizer
from .more import moe_blocks
from core.manifest import METHODS
from core.text import TRUNCATION_POLICY, UNNAMED_POLICY, check_policy

CARD = "routerm.json"
EVAL_FILE = "test_eval.json"   # make reproduce's test evaluation, written beside a checkpoint; no export reads it


@dataclass(frozen=True)
class CheckpointCard:
    method: str
    domains: tuple[str, ...]
    max_length: int
    base_model: str
    truncation: str = TRUNCATION_POLICY
    extra: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        data = {"method": self.method, "domains": list(self.domains), "max_length": self.max_length,
                "base_model": self.base_model, "truncation": self.truncation, **self.extra}
        (Path(path) / CARD).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "CheckpointCard":
        file = Path(path) / CARD
        if not file.is_file():
            raise FileNotFoundError(f"'{path}' is not a RouteRM checkpoint (no {CARD}); "
                                    f"train one with `python -m training train --method METHOD`")
        raw = json.loads(file.read_text())
        missing = [k for k in ("method", "domains", "max_length", "base_model") if k not in raw]
        if missing:
            raise ValueError(f"{file}: missing field(s) {missing}")
        if raw["method"] not in METHODS:
            raise ValueError(f"{file}: field 'method' is '{raw['method']}', expected one of {METHODS}")
        core = {k: raw.pop(k) for k in ("method", "domains", "max_length", "base_model")}
        truncation = raw.pop("truncation", UNNAMED_POLICY)
        try:
            check_policy(truncation)
        except ValueError as exc:
            raise ValueError(f"{file}: field 'truncation': {exc}") from None
        return cls(core["method"], tuple(core["domains"]), int(core["max_length"]), core["base_model"], truncation, raw)


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``models`` maps a role ('reward', 'router', 'reward/<domain>', 'arliss') to a module."""

    path: Path
    card: CheckpointCard
    tokenizer: object
    models: dict[str, nn.Module]

    @property
    def method(self) -> str:
        return self.card.method

    @property
    def domains(self) -> tuple[str, ...]:
        return self.card.domains


def _classifier(path: Path) -> nn.Module:
    return AutoModelForSequenceClassification.from_pretrained(str(path)).eval()


def load_checkpoint(path: str | Path, expect_method: str | None = None) -> Checkpoint:
    path = Path(path)
    card = CheckpointCard.load(path)
    if expect_method is not None and card.method != expect_method:
        raise ValueError(f"checkpoint '{path}' holds method '{card.method}', not '{expect_method}'")
    tokenizer = load_tokenizer(path)
    if card.method in ("baseline", "more"):
        models = {"reward": _classifier(path)}
    elif card.method == "rodos":
        models = {"router": _classifier(path / "router")}
        models.update({f"reward/{d}": _classifier(path / "rewards" / d) for d in card.domains})
    else:
        models = {"arliss": ArlissModel.load(path)}
    return Checkpoint(path, card, tokenizer, models)


def params_of(ckpt: Checkpoint) -> tuple[int, int]:
    """(parameters held in memory, parameters used to score one request)."""
    m = ckpt.models
    if ckpt.method == "baseline":
        n = count_params(m["reward"])
        return n, n
    if ckpt.method == "more":
        total = count_params(m["reward"])
        idle = sum(count_params(b.experts[0]) * (b.num_experts - b.top_k) for b in moe_blocks(m["reward"]))
        return total, total - idle
    if ckpt.method == "rodos":
        router = count_params(m["router"])
        rewards = [count_params(m[f"reward/{d}"]) for d in ckpt.domains]
        return router + sum(rewards), router + max(rewards)
    model: ArlissModel = m["arliss"]
    total = count_params(model)
    per_adapter = [sum(p.numel() for n, p in model.backbone.named_parameters() if f".{a}." in n)
                   for a in model.config.adapter_names]
    # active: backbone + router adapter + one reward adapter + both heads
    return total, total - sum(per_adapter) + per_adapter[-1] + max(per_adapter[:-1])
