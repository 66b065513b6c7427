"""The bundle's tokenizer on the ``tokenizers`` library alone (no transformers, no torch).

:class:`BundleTokenizer` reads the bundle's ``tokenizer.json`` and offers the small interface
:mod:`core.text` encodes with (the same one a Hugging Face fast tokenizer offers), so the
runtime and training share one truncation implementation and produce identical token ids:

- ``tok(texts, add_special_tokens=False)["input_ids"]``: batch encoding, no truncation or padding
  (``verbose`` is accepted as transformers' tokenizers take it, and ignored: nothing is logged)
  (whatever ``tokenizer.json`` says about those is switched off: ``core.text`` truncates);
- ``build_inputs_with_special_tokens(a, b=None)`` / ``create_token_type_ids_from_sequences(a, b=None)``:
  the special tokens and segment ids of the file's post-processor (TemplateProcessing,
  BertProcessing or RobertaProcessing, or a Sequence holding one of them);
- ``model_input_names``: ``token_type_ids`` only when the manifest says the graphs take it.
"""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import BundleError


def _template(processor: dict, where: str) -> tuple[list, list]:
    """(single, pair) templates as lists of ("A"|"B"|[ids], type_id)."""
    kind = processor.get("type")
    if kind == "Sequence":
        found = [p for p in processor.get("processors", []) if p.get("type") != "ByteLevel"]
        if len(found) > 1:
            raise BundleError(f"{where}: post_processor Sequence holds {len(found)} special-token processors; expected 1")
        return _template(found[0] if found else {}, where)
    if kind == "TemplateProcessing":
        specials = processor.get("special_tokens", {})

        def parse(items):
            out = []
            for item in items:
                if "Sequence" in item:
                    out.append((item["Sequence"]["id"], int(item["Sequence"]["type_id"])))
                else:
                    name = item["SpecialToken"]["id"]
                    if name not in specials:
                        raise BundleError(f"{where}: post_processor names special token {name!r} without ids")
                    out.append((list(specials[name]["ids"]), int(item["SpecialToken"]["type_id"])))
            return out

        return parse(processor["single"]), parse(processor["pair"])
    if kind in ("BertProcessing", "RobertaProcessing"):
        cls, sep = [processor["cls"][1]], [processor["sep"][1]]
        single = [(cls, 0), ("A", 0), (sep, 0)]
        if kind == "BertProcessing":
            return single, [(cls, 0), ("A", 0), (sep, 0), ("B", 1), (sep, 1)]
        return single, [(cls, 0), ("A", 0), (sep, 0), (sep, 0), ("B", 0), (sep, 0)]
    if processor == {} or kind == "ByteLevel":   # no special tokens (ByteLevel only fixes offsets: Qwen2/3)
        return [("A", 0)], [("A", 0), ("B", 1)]
    raise BundleError(f"{where}: post_processor type {kind!r} is not supported "
                      f"(TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel)")


class BundleTokenizer:
    """A bundle's ``tokenizer.json`` behind the interface :mod:`core.text` uses (see module docstring)."""

    def __init__(self, path: str | Path, pad_token_id: int, uses_token_type_ids: bool):
        from tokenizers import Tokenizer

        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            spec = json.loads(text)
            self._tok = Tokenizer.from_str(text)
        except Exception as exc:  # OSError, JSON errors; tokenizers raises a bare Exception on bad files
            raise BundleError(f"{path}: not a readable tokenizer.json ({exc})") from None
        self._tok.no_truncation()
        self._tok.no_padding()
        self._single, self._pair = _template(spec.get("post_processor") or {}, str(path))
        self.pad_token_id = int(pad_token_id)
        self.model_input_names = (["input_ids", "token_type_ids", "attention_mask"] if uses_token_type_ids
                                  else ["input_ids", "attention_mask"])

    def __call__(self, texts: list[str], add_special_tokens: bool = False, verbose: bool = False) -> dict:
        if add_special_tokens:
            raise ValueError("BundleTokenizer encodes without special tokens; core.text adds them")
        return {"input_ids": [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]}

    def _fill(self, a: list[int], b: list[int] | None) -> list[tuple[list[int], int]]:
        template = self._single if b is None else self._pair
        return [((a if part == "A" else b) if isinstance(part, str) else part, type_id) for part, type_id in template]

    def build_inputs_with_special_tokens(self, a: list[int], b: list[int] | None = None) -> list[int]:
        return [i for ids, _ in self._fill(a, b) for i in ids]

    def create_token_type_ids_from_sequences(self, a: list[int], b: list[int] | None = None) -> list[int]:
        return [t for ids, t in self._fill(a, b) for _ in ids]
