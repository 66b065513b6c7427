"""Model architectures shared by training, export and the runtime's Torch backend.

Importing this package registers MoRE with the transformers Auto classes, so
``AutoModelForSequenceClassification.from_pretrained(more_checkpoint)`` works without
``trust_remote_code``.
"""
from .base import bradley_terry_loss, count_params, default_base_model, load_classifier, load_tokenizer
from .more import MoreConfig, MoreForSequenceClassification, MoeFeedForward, moe_blocks

__all__ = [
    "MoreConfig", "MoreForSequenceClassification", "MoeFeedForward", "moe_blocks",
    "bradley_terry_loss", "count_params", "default_base_model", "load_classifier", "load_tokenizer",
]
