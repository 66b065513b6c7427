"""Model architectures shared by training, export and the runtime's Torch backend.

Importing this package registers :class:`RewardModel` (baseline, MoRE, RODOS; model_type
``routerm_reward``) with the transformers Auto classes, so
``AutoModelForSequenceClassification.from_pretrained(checkpoint)`` works without ``trust_remote_code``.
"""
from .base import bradley_terry_loss, count_params, default_base_model, load_tokenizer, pool
from .more import MoeFeedForward, moe_blocks
from .reward import RewardConfig, RewardModel

__all__ = [
    "RewardConfig", "RewardModel", "MoeFeedForward", "moe_blocks",
    "bradley_terry_loss", "count_params", "default_base_model", "load_tokenizer", "pool",
]
