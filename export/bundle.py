"""Writing a bundle directory to the contract of ``core/manifest.py`` (schema v1).

The tokenizer section is what the C library (csrc/) needs to tokenize natively: for BERT WordPiece
tokenizers ``kind = "wordpiece"`` with the vocabulary file, the normalizer switches and the ids of
the special tokens; anything else is ``kind = "other"`` (Python tokenizers only).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from importlib import metadata
from pathlib import Path

from core.hashing import sha256_file
from core.manifest import MANIFEST, Manifest, load_manifest

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja")
VERSIONED = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "peft")


def library_versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def copy_tokenizer(checkpoint: Path, out: Path, under: str = "") -> list[str]:
    """Copy the tokenizer files of ``checkpoint`` into ``out/under``; returns their bundle-relative paths."""
    files = [name for name in TOKENIZER_FILES if (checkpoint / name).is_file()]
    if "tokenizer.json" not in files and "vocab.txt" not in files:
        raise FileNotFoundError(f"checkpoint '{checkpoint}' holds no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    (out / under).mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(checkpoint / name, out / under / name)
    return [str(Path(under) / name) if under else name for name in files]


def tokenizer_section(tokenizer, checkpoint: Path, files: list[str], token_types: bool) -> dict:
    """``manifest["tokenizer"]``: kind, files, special ids, normalizer switches."""
    spec = {}
    if (checkpoint / "tokenizer.json").is_file():
        spec = json.loads((checkpoint / "tokenizer.json").read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    normalizer = spec.get("normalizer") or {}
    vocab = next((f for f in files if Path(f).name == "vocab.txt"), None)
    wordpiece = model.get("type") == "WordPiece" and vocab is not None
    section = {
        "kind": "wordpiece" if wordpiece else "other",
        "files": files,
        "pad_token_id": int(tokenizer.pad_token_id),
        "uses_token_type_ids": token_types,
        "do_lower_case": bool(normalizer.get("lowercase", getattr(tokenizer, "do_lower_case", False))),
    }
    for name in ("cls", "sep", "unk", "mask"):
        token_id = getattr(tokenizer, f"{name}_token_id", None)
        if token_id is not None:
            section[f"{name}_token_id"] = int(token_id)
    if wordpiece:
        section["vocab_file"] = vocab
        section["strip_accents"] = normalizer.get("strip_accents")      # null: follows do_lower_case (BERT)
        section["tokenize_chinese_chars"] = bool(normalizer.get("handle_chinese_chars", True))
        section["clean_text"] = bool(normalizer.get("clean_text", True))
        section["continuing_subword_prefix"] = model.get("continuing_subword_prefix", "##")
        section["max_input_chars_per_word"] = int(model.get("max_input_chars_per_word", 100))
    return section


TORCH_DIR = "torch"
NOT_WEIGHTS = ("test_eval.json",)   # evaluation outputs a training checkpoint may hold


def copy_torch_weights(checkpoint: Path, out: Path, method: str) -> str:
    """Copy the checkpoint ``out`` was exported from into ``out/torch`` (for ``backend="torch"``).

    Safetensors and JSON only (no pickle); the manifest's ``files`` checksums cover them like any
    other bundle file. ARLISS checkpoints hold adapters and heads, not the frozen base model: its
    config and safetensors weights go to ``torch/base`` and the copied ``arliss_config.json`` names
    ``base`` (relative, resolved against the checkpoint directory), so the bundle moves as one piece.
    Returns the directory's path relative to ``out``.
    """
    dst = out / TORCH_DIR
    shutil.copytree(checkpoint, dst, ignore=shutil.ignore_patterns(*NOT_WEIGHTS, "*.bin", "*.pt", "*.pth", "*.pkl"))
    if method == "arliss":
        from models.arliss import CONFIG_FILE

        config = json.loads((dst / CONFIG_FILE).read_text())
        base = Path(config["base_model"])
        if not base.is_absolute():
            base = checkpoint / base
        weights = sorted(base.glob("*.safetensors"))
        if not (base / "config.json").is_file() or not weights:
            raise FileNotFoundError(f"base model '{base}' of checkpoint '{checkpoint}' has no config.json and "
                                    f"safetensors weights to put in the bundle")
        (dst / "base").mkdir()
        for f in [base / "config.json", *weights]:
            shutil.copyfile(f, dst / "base" / f.name)
        config["base_model"] = "base"
        (dst / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    return TORCH_DIR


def bundle_files(out: Path) -> dict[str, str]:
    """``{relative path: sha256}`` for every file in the bundle but the manifest."""
    return {p.relative_to(out).as_posix(): sha256_file(p)
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != MANIFEST}


def write_manifest(manifest: Manifest) -> Manifest:
    """Write ``manifest.json`` into ``manifest.path`` with the checksums of every other file there,
    and read it back through the runtime's own parser, so a bundle that breaks the contract fails
    here, not in a consumer. Returns the manifest as written (``files`` filled in)."""
    out = manifest.path
    manifest = dataclasses.replace(manifest, files=bundle_files(out))
    text = manifest.to_json()
    (out / MANIFEST).write_text(text, encoding="utf-8")
    assert load_manifest(out).to_json() == text, "manifest.json does not read back as written"
    return manifest


def bundle_mb(out: Path) -> float:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
