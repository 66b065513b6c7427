"""Bundles of imported Hugging Face reward models, for the C library's parity tests.

    python tests/c/make_imported_bundles.py --out DIR [--names qwen3-chat ...]

Tiny random models of real families (tests/hf_tiny.py: tokenizers trained here with each family's
algorithm, pre-tokenizer, specials and chat template), imported as export/to_onnx.py --from-hf does:

* ``qwen3-chat``   Qwen3: byte-level BPE (Qwen2 regex, NFC), ChatML with a think block on the last
                   answer; max_length 64, so long rows are cut as chat pairs;
* ``llama3-chat``  Llama 3: byte-level BPE (Llama-3 regex, ignore_merges), Llama 3's header template;
* ``gemma2-chat``  Gemma 2: SentencePiece-style BPE with byte_fallback, Gemma's turn template;
* ``deberta-unigram``  DeBERTa-v2: Unigram (Metaspace, NFKC), [CLS] A [SEP] B [SEP] pairs;
* ``rodos-mixed``  RODOS over a DeBERTa-v2 (Unigram, pairs) and a Qwen3 (BPE, chat) reward model
                   under a BERT (WordPiece) router: three tokenizers in one bundle (``parts``).

Each is built into a scratch folder and renamed, so a folder that exists is complete.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from export.from_hf import ImportSpec, import_bundle
from hf_tiny import tiny_reward_model   # tests/ is on PYTHONPATH (tests/c/CMakeLists.txt)

NAMES = ("qwen3-chat", "llama3-chat", "gemma2-chat", "deberta-unigram", "rodos-mixed")


def _router(models: Path, labels: list[str]) -> Path:
    """A BERT domain classifier whose labels name `labels` (in id order)."""
    router = tiny_reward_model("bert", models, seed=3, num_labels=len(labels))
    config = json.loads((router / "config.json").read_text())
    config["id2label"] = {str(i): name for i, name in enumerate(labels)}
    config["label2id"] = {name: i for i, name in enumerate(labels)}
    (router / "config.json").write_text(json.dumps(config))
    return router


def spec(name: str, models: Path) -> ImportSpec:
    if name == "qwen3-chat":
        return ImportSpec("baseline", (("general", tiny_reward_model("qwen3", models)),), max_length=64)
    if name == "llama3-chat":
        return ImportSpec("baseline", (("general", tiny_reward_model("llama", models)),))
    if name == "gemma2-chat":
        return ImportSpec("baseline", (("general", tiny_reward_model("gemma2", models)),))
    if name == "deberta-unigram":
        return ImportSpec("baseline", (("general", tiny_reward_model("deberta-v2", models)),), max_length=96)
    if name == "rodos-mixed":
        safety = tiny_reward_model("deberta-v2", models, seed=1)
        math = tiny_reward_model("qwen3", models, seed=2)
        return ImportSpec("rodos", (("safety", safety), ("math", math)), router=_router(models, ["math", "safety"]),
                          max_length=96)
    raise SystemExit(f"unknown bundle '{name}'; expected one of {', '.join(NAMES)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--names", nargs="+", default=list(NAMES))
    args = ap.parse_args()
    models = args.out / "hf-models"
    for name in args.names:
        final = args.out / name
        if final.is_dir():
            continue
        scratch = args.out / f".{name}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        import_bundle(spec(name, models), scratch)
        scratch.rename(final)
        print(f"{name}: {final}")


if __name__ == "__main__":
    main()
