"""Tiny random models and synthetic data for fast tests (no download: configs + the shipped tokenizer)."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaModel

from models.base import default_base_model
from training.config import TrainConfig
from core.data import Pair

TINY_DOMAINS = ("alpha", "beta", "gamma")
_TOPICS = {"alpha": "arithmetic sum number", "beta": "poem verse rhyme", "gamma": "recipe cook oven"}
_GOOD = ["correct clear helpful answer", "accurate polite useful reply", "precise kind thorough response"]
_BAD = ["wrong rude useless nonsense", "incorrect insulting garbage text", "false lazy broken junk"]


def tiny_base(root: Path, arch: str = "bert") -> Path:
    """A 2-layer random encoder ('bert') or decoder ('llama') with the MiniLM WordPiece tokenizer."""
    path = Path(root) / f"tiny-{arch}"
    if (path / "config.json").is_file():
        return path
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(default_base_model())
    if arch == "bert":
        model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    elif arch == "llama":
        model = LlamaModel(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                                       max_position_embeddings=128, pad_token_id=tok.pad_token_id))
    else:
        raise ValueError(arch)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def synthetic_splits(domains=TINY_DOMAINS, n_train: int = 48, n_test: int = 24, seed: int = 0) -> dict:
    """Clearly separable preferences: chosen responses use 'good' words, rejected 'bad' ones."""
    rng = random.Random(seed)
    out = {}
    for d in domains:
        topic = _TOPICS.get(d, d)
        def make(i, split):
            prompt = f"{topic} question {split} {i} about {rng.choice(topic.split())}"
            return Pair(f"{d}-{split}-{i}", d, prompt, f"{rng.choice(_GOOD)} {i}", f"{rng.choice(_BAD)} {i}")
        out[d] = {"train": [make(i, "train") for i in range(n_train)],
                  "validation": [make(i, "val") for i in range(n_test)],
                  "test": [make(i, "test") for i in range(n_test)]}
    return out


def tiny_config(root: Path, base: Path, **changes) -> TrainConfig:
    cfg = TrainConfig(base_model=str(base), domains=TINY_DOMAINS, max_length=32, router_max_length=16,
                      train_pairs_per_domain=None, router_examples_per_domain=None, epochs=3, batch_size=8,
                      lr=2e-3, lora_lr=1e-2, router_lr=2e-3, lora_r=4, lora_alpha=8, train_layers=1, out_dir=str(Path(root) / "ckpt"))
    return cfg.with_(**changes)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst
