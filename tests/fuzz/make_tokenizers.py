"""The tokenizer.json files the bpe, unigram and chat fuzz targets load, trained here, small and deterministic.

    python tests/fuzz/make_tokenizers.py OUT_DIR

Writes ``OUT_DIR/<name>/tokenizer.json`` for each name of ``BUILDERS`` (the names the targets'
tables in tests/fuzz/fuzz_{bpe,unigram}.cpp list, with what each may be checked for), trained
with ``tokenizers`` on the first records of the vendored preference text at a vocabulary of
``VOCAB_SIZE``: big enough for deep merges and a real Unigram lattice, small enough to load in
milliseconds. ``OUT_DIR/stamp`` holds a hash of this file and the tokenizers version; a folder
whose stamp matches is complete and is left as it is (built in a scratch folder, then renamed).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import tokenizers
from hf_tiny import _LLAMA3_REGEX, _QWEN2_REGEX, _canonical_pieces, training_text   # tests/ on PYTHONPATH (run.sh)
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

VOCAB_SIZE = 500
RECORDS_PER_DOMAIN = 60   # x 5 domains x 3 texts: 900 texts
BYTES = [f"<0x{b:02X}>" for b in range(256)]
BYTE_PIECE_SCORE = -1000.0   # Unigram byte pieces: never chosen over text pieces, only as fallback


def _template(tok: Tokenizer, single: str, pair: str, specials: list[str]) -> processors.TemplateProcessing:
    return processors.TemplateProcessing(single=single, pair=pair,
                                         special_tokens=[(s, tok.token_to_id(s)) for s in specials])


def _byte_level(lines: list[str], split, normalizer=None, **bpe) -> Tokenizer:
    """Byte-level BPE over all 256 bytes: GPT-2's regex inside ByteLevel (split None) or Split first."""
    tok = Tokenizer(models.BPE(**bpe))
    tok.normalizer = normalizer
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=split is None)
    tok.pre_tokenizer = byte_level if split is None else pre_tokenizers.Sequence([split, byte_level])
    tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=VOCAB_SIZE, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def bpe_gpt2(lines):
    tok = _byte_level(lines, None)
    tok.add_special_tokens(["<|endoftext|>", "[CLS]", "[SEP]", "[PAD]"])
    tok.add_tokens([AddedToken("<|user|>", normalized=True, special=False)])
    tok.post_processor = _template(tok, "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", ["[CLS]", "[SEP]"])
    return tok


def bpe_llama3(lines):
    tok = _byte_level(lines, pre_tokenizers.Split(Regex(_LLAMA3_REGEX), behavior="isolated"), ignore_merges=True)
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>", "<|finetune_right_pad_id|>"])
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), _template(
        tok, "<|begin_of_text|> $A", "<|begin_of_text|> $A <|begin_of_text|>:1 $B:1", ["<|begin_of_text|>"])])
    return tok


def bpe_qwen2(lines):
    """NFC and ChatML; <think> raw, "café" found after NFC, [MASK] taking the white space on its
    left, <|sep|> the white space on its right."""
    tok = _byte_level(lines, pre_tokenizers.Split(Regex(_QWEN2_REGEX), behavior="isolated"), normalizers.NFC())
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                            AddedToken("[MASK]", lstrip=True, special=True),
                            AddedToken("<|sep|>", rstrip=True, special=True)])
    tok.add_tokens([AddedToken("<think>", normalized=False), AddedToken("</think>", normalized=False),
                    AddedToken("café", normalized=True)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def _spm_bpe(lines, specials, normalizer, pre_tokenizer) -> Tokenizer:
    """SentencePiece-style BPE: specials, <0x00>..<0xFF>, pieces trained on '▁'-joined words; byte fallback."""
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.normalizer = normalizers.Replace(" ", "▁")
    trained.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trained.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials,
                                                           show_progress=False))
    spec = json.loads(trained.to_str())["model"]
    pieces = specials + BYTES + [p for p, _ in sorted(spec["vocab"].items(), key=lambda kv: kv[1]) if p not in specials]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    tok = Tokenizer(models.BPE({p: i for i, p in enumerate(pieces)}, merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    tok.add_special_tokens(specials)
    return tok


def bpe_gemma(lines):
    tok = _spm_bpe(lines, ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
                   normalizers.Replace(" ", "▁"), pre_tokenizers.Split("▁", behavior="merged_with_next"))
    tok.post_processor = _template(tok, "<bos> $A", "<bos> $A <bos>:1 $B:1", ["<bos>"])
    return tok


def bpe_llama2(lines):
    """Prepend("▁") + Replace: no pre-tokenizer, a whole segment is one word."""
    return _spm_bpe(lines, ["<unk>", "<s>", "</s>"],
                    normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]), None)


def bpe_mistral(lines):
    return _spm_bpe(lines, ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"], None,
                    pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False))


def bpe_suffix(lines):
    """Word-level BPE with a "##" continuing-subword prefix and a "</w>" word end behind NFD +
    StripAccents + Lowercase. Every symbol form of every character is listed first, in code point
    order: that fixes their ids, hence the merges (the trainer otherwise meets them in hash-map order)."""
    normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    chars = sorted({c for line in lines for c in normalizer.normalize_str(line) if not c.isspace()})
    specials = ["[UNK]", "[SEP]"]
    symbols = [form.format(c) for c in chars for form in ("{}", "{}</w>", "##{}", "##{}</w>")]
    trained = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    trained.normalizer, trained.pre_tokenizer = normalizer, pre_tokenizers.Whitespace()
    trained.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE + len(symbols), special_tokens=specials + symbols, continuing_subword_prefix="##",
        end_of_word_suffix="</w>", show_progress=False))
    spec = json.loads(trained.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    tok = Tokenizer(models.BPE(spec["vocab"], merges, unk_token="[UNK]", continuing_subword_prefix="##",
                               end_of_word_suffix="</w>"))
    tok.normalizer, tok.pre_tokenizer = normalizer, trained.pre_tokenizer
    tok.add_special_tokens(specials)
    return tok


def _unigram_pieces(lines, normalizer, pre_tokenizer, specials: list[str]) -> list[tuple[str, float]]:
    """Unigram pieces trained on `lines`, specials first at score 0, the rest canonical (run to run equal)."""
    trained = Tokenizer(models.Unigram())
    trained.normalizer, trained.pre_tokenizer = normalizer, pre_tokenizer
    trained.train_from_iterator(lines, trainers.UnigramTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=specials, unk_token=specials[0] if specials else None,
        max_piece_length=8, n_sub_iterations=1, shrinking_factor=0.5, show_progress=False))
    vocab = json.loads(trained.to_str())["model"]["vocab"]
    return [(p, 0.0) for p in specials] + _canonical_pieces([ps for ps in vocab if ps[0] not in specials])


def unigram_deberta(lines):
    normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.NFKC(), normalizers.Replace("``", '"'),
                                       normalizers.Replace("''", '"')])
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    specials = ["[UNK]", "[PAD]", "[CLS]", "[SEP]"]
    tok = Tokenizer(models.Unigram(_unigram_pieces(lines, normalizer, pre, specials), unk_id=0))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.add_special_tokens(specials + ["[MASK]"])
    tok.add_tokens([AddedToken("[ITEM]", normalized=True)])   # found after NFKC ("［ITEM］") and Strip
    tok.post_processor = _template(tok, "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", ["[CLS]", "[SEP]"])
    return tok


def unigram_byte_fallback(lines):
    """No normalizer, Metaspace; unknown characters become <0xXX> pieces (scored BYTE_PIECE_SCORE)."""
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    pieces = _unigram_pieces(lines, None, pre, ["<unk>"])
    pieces = pieces[:1] + [(b, BYTE_PIECE_SCORE) for b in BYTES] + pieces[1:]
    tok = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=True))
    tok.pre_tokenizer = pre
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return tok


def unigram_no_unk(lines):
    """unk_id null: a word with a character no piece covers fails the encode (Error, as tokenizers fails it)."""
    normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()])
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")])
    tok = Tokenizer(models.Unigram(_unigram_pieces(lines, normalizer, pre, []), unk_id=None))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.add_special_tokens(["<s>", "</s>"])
    return tok


def unigram_prepend(lines):
    """T5-like text handling without Precompiled: Prepend("▁") + Replace(" ", "▁"), a segment is one word."""
    normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok = Tokenizer(models.Unigram(_unigram_pieces(lines, normalizer, None, ["<unk>"]), unk_id=0))
    tok.normalizer = normalizer
    tok.add_special_tokens(["<unk>", "</s>", "<pad>"])
    return tok


BUILDERS = {"bpe-gpt2": bpe_gpt2, "bpe-llama3": bpe_llama3, "bpe-qwen2": bpe_qwen2, "bpe-gemma": bpe_gemma,
            "bpe-llama2": bpe_llama2, "bpe-mistral": bpe_mistral, "bpe-suffix": bpe_suffix,
            "unigram-deberta": unigram_deberta, "unigram-byte-fallback": unigram_byte_fallback,
            "unigram-no-unk": unigram_no_unk, "unigram-prepend": unigram_prepend}


def stamp() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16] + " tokenizers " + tokenizers.__version__


def make(out: Path) -> Path:
    if (out / "stamp").is_file() and (out / "stamp").read_text() == stamp():
        return out
    scratch = out.parent / f".{out.name}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    lines = training_text(RECORDS_PER_DOMAIN)
    for name, build in BUILDERS.items():
        (scratch / name).mkdir()
        build(lines).save(str(scratch / name / "tokenizer.json"))
    (scratch / "stamp").write_text(stamp())
    shutil.rmtree(out, ignore_errors=True)
    scratch.rename(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    print(make(Path(sys.argv[1])))
