"""One reward-model class for the baseline, MoRE and RODOS: backbone -> pooling -> head.

``RewardModel`` wraps any Hugging Face base model (``AutoModel``: BERT-style encoders, Llama-style
decoders) and reads it the way the base model was trained to be read::

    out = backbone(input_ids, attention_mask[, token_type_ids])
    pooled = pool_output(out, attention_mask, config.pooling)                        # [B, H] fp32
    logits = score(pooled)                                                            # [B, num_labels]

``score`` is ``Linear(H, num_labels)``, or with ``head_hidden`` = h > 0 the two-layer head
``Linear(H, h) -> GELU -> Linear(h, num_labels)``: one model scoring every domain needs a score
that can depend on the domain (helpfulness and harmlessness prefer opposite things), which a
linear function of the pooled features cannot express (the routed methods get that from their
router).

``pooling`` is ``"layer_mean"`` (encoders: masked mean over real tokens of the average of the
layers' outputs), ``"mean"`` (masked mean of the last layer: what sentence encoders such as
all-MiniLM-L6-v2 are trained for; checkpoints before the layer mean) or ``"last"`` (the last real
token: decoders); see :func:`models.base.pool_output`. ``num_labels`` is 1 for a scalar reward, n for a domain router.

MoRE is the same model with ``moe_layers`` set: those layers' FFNs become top-k mixtures of
upcycled experts (:mod:`models.more`). Padding tokens are neither routed nor counted in the
load-balancing loss: the model hands each MoE block the attention mask before the backbone runs.

The model_type ``routerm_reward`` is registered with the transformers Auto classes, so
``AutoModelForSequenceClassification.from_pretrained(checkpoint)`` loads it without remote code.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .base import POOLINGS, check_model_dir, default_pooling, fp32, pool_output, run_backbone
from . import more
from .more import convert_to_moe, moe_blocks, perturb_experts


class RewardConfig(PretrainedConfig):
    """The base model's config plus pooling, head size and the (optional) MoE settings."""

    model_type = "routerm_reward"

    def __init__(self, base_config: dict | None = None, pooling: str = "mean", num_experts: int = 0, top_k: int = 2,
                 moe_layers: list[int] | None = None, router_aux_loss_coef: float = 0.01, head_hidden: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if head_hidden < 0:
            raise ValueError(f"head_hidden must be >= 0 (0: a linear head), got {head_hidden}")
        self.head_hidden = head_hidden
        self.base_config = base_config or {}
        self.pooling = pooling
        self.num_experts = num_experts
        self.top_k = top_k
        self.moe_layers = list(moe_layers) if moe_layers is not None else []
        self.router_aux_loss_coef = router_aux_loss_coef
        if self.base_config:
            self.hidden_size = self.base_config.get("hidden_size")
            self.num_hidden_layers = self.base_config.get("num_hidden_layers")
            self.vocab_size = self.base_config.get("vocab_size")

    def base(self) -> PretrainedConfig:
        cfg = dict(self.base_config)
        return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def _drop_pooler(backbone: nn.Module) -> nn.Module:
    """BERT's [CLS] pooler is never read (and all-MiniLM's was never trained): remove it."""
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None
    return backbone


def score_head(hidden_size: int, num_labels: int, head_hidden: int = 0, init_std: float | None = 0.02) -> nn.Module:
    """``[B, H] -> [B, num_labels]``: linear (``head_hidden`` 0) or Linear -> GELU -> Linear.

    ``init_std``: weights ~ N(0, init_std), biases 0; None keeps PyTorch's default init (what the
    two-layer probe, ``training.probe.fit_pairwise_mlp``, starts from).
    """
    linears = ([nn.Linear(hidden_size, num_labels)] if not head_hidden
               else [nn.Linear(hidden_size, head_hidden), nn.Linear(head_hidden, num_labels)])
    for layer in linears if init_std is not None else ():
        nn.init.normal_(layer.weight, std=init_std)
        nn.init.zeros_(layer.bias)
    return linears[0] if not head_hidden else nn.Sequential(linears[0], nn.GELU(), linears[1])


class RewardModel(PreTrainedModel):
    """``forward(input_ids, attention_mask, token_type_ids=None) -> logits [B, num_labels]`` (+ ``aux_loss`` in training)."""

    config_class = RewardConfig
    base_model_prefix = "routerm_reward"
    _supports_sdpa = True

    def __init__(self, config: RewardConfig, backbone: nn.Module | None = None):
        super().__init__(config)
        self.backbone = _drop_pooler(backbone if backbone is not None else AutoModel.from_config(config.base()))
        if config.moe_layers:
            convert_to_moe(self.backbone, config)
        self.score = score_head(config.hidden_size, config.num_labels, config.head_hidden)

    def _init_weights(self, module):  # the backbone comes initialized or loaded; the head is set above
        pass

    @classmethod
    def from_base(cls, base_path: str, num_labels: int, pad_token_id: int, *, num_experts: int = 0, top_k: int = 2,
                  moe_layers: list[int] | None = None, router_aux_loss_coef: float = 0.01,
                  expert_noise: float = 0.0, seed: int = 0, head_hidden: int = 0) -> "RewardModel":
        """A new reward model (or router, ``num_labels`` = n) on a pretrained base checkpoint.

        With ``num_experts`` > 0 it is MoRE: ``moe_layers`` (default: the upper half) get experts
        upcycled from the pretrained FFN, each perturbed by ``expert_noise`` (see
        :func:`models.more.perturb_experts`) so that they can diverge. ``head_hidden`` > 0 gives
        the two-layer head (see the module docstring).
        """
        backbone = AutoModel.from_pretrained(str(check_model_dir(base_path)))
        base = backbone.config
        n_layers = base.num_hidden_layers
        if num_experts:
            moe_layers = list(moe_layers) if moe_layers is not None else list(range(n_layers // 2, n_layers))
        else:
            moe_layers = []
        config = RewardConfig(base_config=base.to_dict(), pooling=default_pooling(base), num_experts=num_experts,
                              top_k=top_k, moe_layers=moe_layers, router_aux_loss_coef=router_aux_loss_coef,
                              head_hidden=head_hidden, num_labels=num_labels, pad_token_id=pad_token_id)
        model = cls(config, backbone)
        if moe_layers and expert_noise:
            perturb_experts(model, expert_noise, seed)
        return model

    def pooled(self, input_ids, attention_mask, **extra) -> torch.Tensor:
        """[B, H] fp32 input of the head (MoE blocks must already know the padding rows)."""
        out = run_backbone(self.backbone, self.config.pooling, input_ids, attention_mask, **extra)
        return pool_output(out, attention_mask, self.config.pooling)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        blocks = moe_blocks(self)
        if blocks:
            mask = attention_mask.reshape(-1).bool()
            if more.exporting():                              # traced: a tensor, not a Python branch
                for block in blocks:
                    block.real_mask = mask
            else:
                real = None if bool(mask.all()) else mask.nonzero().squeeze(-1)   # [R], once for every block
                for block in blocks:
                    block.real_rows = real
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        try:
            pooled = self.pooled(input_ids, attention_mask, **extra)
        finally:
            for block in blocks:
                block.real_rows = block.real_mask = None
        with fp32(pooled):
            logits = self.score(pooled)
        result = SequenceClassifierOutput(logits=logits)
        if self.training and blocks:
            aux = [b.aux_loss for b in blocks if b.aux_loss is not None]
            result["aux_loss"] = self.config.router_aux_loss_coef * torch.stack(aux).sum() if aux else None
        return result


AutoConfig.register(RewardConfig.model_type, RewardConfig)
AutoModelForSequenceClassification.register(RewardConfig, RewardModel)
