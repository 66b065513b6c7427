"""Model architectures shared by training, export and the runtime's Torch backend.

Importing ``models.reward`` (or any name below) registers :class:`RewardModel` (baseline, MoRE,
RODOS; model_type ``routerm_reward``) with the transformers Auto classes, so
``AutoModelForSequenceClassification.from_pretrained(checkpoint)`` works without ``trust_remote_code``.
The package itself imports lazily: ``core.text`` (what the serving runtime needs) pulls in
neither torch nor transformers.
"""
from importlib import import_module

_NAMES = {
    "RewardConfig": "reward", "RewardModel": "reward", "MoeFeedForward": "more", "moe_blocks": "more",
    "bradley_terry_loss": "base", "count_params": "base", "default_base_model": "base", "load_tokenizer": "base",
    "pool": "base",
}
__all__ = list(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(import_module(f".{_NAMES[name]}", __name__), name)
