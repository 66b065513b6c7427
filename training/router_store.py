"""The router body's prompt features, stored with a routed checkpoint.

The ``"head"`` scheme of training.add_domain refits only the router's head, on the frozen router
body's pooled prompt features. While the body does not change, neither do the old domains'
features, so a routed checkpoint carries them in ``router_features.safetensors``: growing it by one
domain runs the body over the new domain's prompts only, and the grown checkpoint (same body)
carries the n+1 domains' features for the next addition. The cost of an addition then grows with
the new domain's data, not with all the data the checkpoint has seen.

Entries are ``"<domain>/<split>"``: [N, H] fp32 features of the domain's unique prompts of that
split, in first-seen order (training.recipe.router_prompts). The file's metadata ties it to what
made it: the body's parameters (``body_sha256``), the tokenizer, the router's max length, the
pooling and bf16; each entry also records the sha256 of its prompts. Nothing stale is used: a file
made by another body is ignored as a whole, an entry whose prompts differ is recomputed, and
``report()`` (written to the card) says what was reused, what was computed and why.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from models.arliss import ROUTER
from core.text import encode_prompts
from training.probe import pooled_features

FILE = "router_features.safetensors"
FORMAT = "routerm-router-features-1"


def tensors_digest(named: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 over ``(name, raw bytes)`` of the tensors, in name order (dtype and shape included)."""
    h = hashlib.sha256()
    for name, t in sorted(named, key=lambda item: item[0]):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def tokenizer_digest(tok) -> str:
    """sha256 of the tokenizer's full definition (fast tokenizers) or of its vocabulary."""
    backend = getattr(tok, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(sorted(tok.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def prompts_digest(prompts: list[str]) -> str:
    h = hashlib.sha256()
    for p in prompts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


class RouterFeatures:
    """The store of one router body: ``get`` returns stored features or computes (and keeps) them.

    ``context``: ``{"body_sha256", "tokenizer_sha256", "router_max_length", "pooling", "bf16"}``,
    all of which must match a stored file's for any of its entries to be used.

    Not training.probe.FeatureCache, which holds the *pretrained base model's* features for the
    probe starts of training: that cache is keyed by a hash of the texts and settings alone (the
    base never changes), lives beside the run's checkpoints and is shared by every method. These
    are a *trained router body's* features: only valid for that body's exact weights, so they
    travel inside its checkpoint, keyed by domain and split, and die with the body (a scheme that
    moves the body drops them).
    """

    def __init__(self, context: dict):
        self.context = {k: str(v) for k, v in context.items()}
        self.entries: dict[str, tuple[str, torch.Tensor]] = {}   # key -> (prompts sha256, [N, H])
        self.reused: dict[str, int] = {}
        self.computed: dict[str, int] = {}
        self.source: str = "none: no stored features"

    @classmethod
    def load(cls, directory: str | Path, context: dict) -> "RouterFeatures":
        """The store in ``directory`` if it was made under ``context``; an empty one (saying why) if not."""
        store = cls(context)
        path = Path(directory) / FILE
        if not path.is_file():
            store.source = f"none: '{path}' does not exist"
            return store
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != FORMAT:
                store.source = f"ignored: '{path}' has format {meta.get('format')!r}, not {FORMAT!r}"
                return store
            saved = json.loads(meta.get("context", "{}"))
            if saved != store.context:
                differ = sorted(k for k in set(saved) | set(store.context) if saved.get(k) != store.context.get(k))
                store.source = f"ignored: '{path}' was made with a different {', '.join(differ)}"
                return store
            digests = json.loads(meta.get("prompts", "{}"))
            for key in fh.keys():
                store.entries[key] = (digests.get(key, ""), fh.get_tensor(key))
        store.source = f"'{path}' ({len(store.entries)} entries)"
        return store

    def get(self, domain: str, split: str, prompts: list[str], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """[len(prompts), H] features of ``prompts`` (``domain``'s ``split``): stored when the prompts match."""
        key, digest = f"{domain}/{split}", prompts_digest(prompts)
        stored = self.entries.get(key)
        if stored is not None and stored[0] == digest and len(stored[1]) == len(prompts):
            self.reused[key] = len(prompts)
            return stored[1]
        x = compute()
        if x.ndim != 2 or len(x) != len(prompts):
            raise ValueError(f"router features for {key} must be [{len(prompts)}, H], got {tuple(x.shape)}")
        self.entries[key] = (digest, x.float().contiguous())
        self.computed[key] = len(prompts)
        return self.entries[key][1]

    def save(self, directory: str | Path, domains: Iterable[str]) -> Path:
        """Write the entries of ``domains`` to ``directory/router_features.safetensors``."""
        keep = {k: v for k, v in self.entries.items() if k.split("/", 1)[0] in set(domains)}
        meta = {"format": FORMAT, "context": json.dumps(self.context, sort_keys=True),
                "prompts": json.dumps({k: d for k, (d, _) in keep.items()}, sort_keys=True)}
        path = Path(directory) / FILE
        save_file({k: x for k, (_, x) in keep.items()}, str(path), metadata=meta)
        return path

    def report(self) -> dict:
        """What this run reused and computed (prompts per entry) and where the stored features came from."""
        return {"source": self.source, "reused": dict(self.reused), "computed": dict(self.computed)}


def body_context(named_body: Iterable[tuple[str, torch.Tensor]], tok, max_length: int, pooling: str,
                 bf16: bool) -> dict:
    """The store context of a router body: its parameters ``named_body`` and how it reads prompts."""
    return {"body_sha256": tensors_digest(named_body), "tokenizer_sha256": tokenizer_digest(tok),
            "router_max_length": max_length, "pooling": pooling, "bf16": bf16}


def arliss_body(model) -> list[tuple[str, torch.Tensor]]:
    """ARLISS's router body: the backbone's base weights and the router adapter's LoRA weights."""
    return [(n, p) for n, p in model.backbone.named_parameters() if "lora_" not in n or f".{ROUTER}." in n]


def rodos_body(classifier) -> list[tuple[str, torch.Tensor]]:
    """RODOS's router body: the router classifier without its ``score`` head."""
    return [(n, p) for n, p in classifier.named_parameters() if not n.startswith("score.")]


def domain_labels(prompts: dict[str, list[str]]) -> torch.Tensor:
    """[N] long: the domain index (position in ``prompts``) of each prompt of ``{domain: prompts}``, in order."""
    return torch.cat([torch.full((len(p),), label, dtype=torch.long) for label, p in enumerate(prompts.values())])


def prompt_features(store: RouterFeatures | None, pool_fn, prompts: dict[str, list[str]], split: str, tok,
                    max_length: int, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, H] under ``pool_fn`` of ``{domain: prompts}`` (``split``'s, training.recipe.router_prompts),
    domain after domain, each prompt's last ``max_length`` tokens, and their labels [N] (:func:`domain_labels`).

    ``pool_fn(batch) -> [B, H]``. Stored features are used where ``store`` has them; the rest are
    computed (and kept in ``store``); ``store`` None computes all.
    """
    xs = []
    for domain, texts in prompts.items():
        compute = lambda: pooled_features(pool_fn, encode_prompts(tok, texts, max_length), tok.pad_token_id, bf16=bf16)
        xs.append(store.get(domain, split, texts, compute) if store is not None else compute())
    return torch.cat(xs), domain_labels(prompts)
