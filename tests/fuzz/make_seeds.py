"""Seed corpora of the bpe, unigram and chat fuzz targets (tests/fuzz/seeds/{bpe,unigram,chat}), committed.

    python tests/fuzz/make_seeds.py

Text mode (bpe, unigram): ``[selector][pick] text`` for every tokenizer of the target and every
text of ``TEXTS`` (ASCII, Unicode, added tokens, invalid UTF-8, white space, digits, a long word).
Load mode: ``[selector] tokenizer.json`` of small tokenizers trained here (a few KB each) covering
the normalizers, pre-tokenizers, models and post-processors the library reads. Chat: each fixed
template of fuzz_chat.cpp with a few conversations, and template JSONs in the input. The formats
are those of fuzz_{bpe,unigram,chat}.cpp's header comments.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

SEEDS = Path(__file__).resolve().parent / "seeds"
BPE_TOKENIZERS, UNIGRAM_TOKENIZERS = 7, 4   # the lengths of kSpecs in fuzz_bpe.cpp / fuzz_unigram.cpp
SEP = b"\xff"
TEXTS = [
    b"Hello world! It's 2024, and we're testing 12345 tokens.\n\nNew   paragraph\twith tabs.",
    "café naïve Ünïcödé ありがとう 日本語 مرحبا 🦀🚀 ﬁ ① Å cafe\u0301 ［ITEM］".encode(),
    b"<|im_start|>user\nhi<|im_end|>\n<think>\nx</think>[MASK] y <|sep|>  z [CLS] a [SEP]<s>b</s>"
    b"[INST] q [/INST]<bos><start_of_turn>[ITEM]<|user|><|begin_of_text|><|eot_id|><unk>",
    b"ok \xfe \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 end\xff<|im_end|> tail \xc0\xaf",
    "  leading and trailing  \u3000\u00a0 ▁▁x▁ \r\n\r\n``quoted''\u2028".encode(),
    "I'VE 3.14159 x1000000 don't WE'LL ٣٤٥ <0x41> ½".encode(),
    b"a" * 300 + b"supercalifragilisticexpialidocious" * 5,
]
LINES = ["Hello world, hello tokens.", "The quick brown fox jumps over the lazy dog 123.",
         "caf\u00e9 na\u00efve \u65e5\u672c", "it's a test; we're testing it's tests"]


def _tiny_byte_level() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                                   r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.train_from_iterator(LINES, trainers.BpeTrainer(vocab_size=70, show_progress=False))
    tok.add_special_tokens(["<|im_start|>", AddedToken("[MASK]", lstrip=True, special=True)])
    tok.add_tokens([AddedToken("café", normalized=True)])
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), processors.TemplateProcessing(
        single="<|im_start|> $A", pair="<|im_start|> $A $B:1", special_tokens=[("<|im_start|>", 0)])])
    return tok


def _tiny_gpt2() -> Tokenizer:
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.train_from_iterator(LINES, trainers.BpeTrainer(vocab_size=60, show_progress=False,
                                                       special_tokens=["<s>", "</s>"]))
    tok.post_processor = processors.RobertaProcessing(("</s>", 1), ("<s>", 0))
    return tok


def _tiny_spm() -> Tokenizer:
    pieces = ["<unk>", "<s>"] + [f"<0x{b:02X}>" for b in range(0x41, 0x44)] + ["▁", "h", "e", "l", "o", "he", "ll",
                                                                              "hell", "hello", "▁hello"]
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("▁", "hello")]
    tok = Tokenizer(models.BPE({p: i for i, p in enumerate(pieces)}, merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁"),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.add_special_tokens(["<s>"])
    return tok


def _tiny_wordpiece() -> Tokenizer:
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "##ing",
                                          "test", "!", "1", "2"])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.BertPreTokenizer(),
                                                 pre_tokenizers.Digits(individual_digits=False)])
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return tok


def _tiny_unigram(unk_id: int | None, byte_fallback: bool) -> Tokenizer:
    pieces = [("<unk>", 0.0), ("▁", -2.0), ("▁hello", -3.0), ("hello", -4.0), ("h", -5.0), ("e", -5.0),
              ("l", -5.0), ("o", -5.0), ("▁the", -3.5), ("s", -6.0), ("<0x41>", -20.0), ("<0xC3>", -20.0),
              ("<0xA9>", -20.0)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=unk_id, byte_fallback=byte_fallback))
    tok.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.NFKC(), normalizers.Replace("``", '"')])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Metaspace(prepend_scheme="first")])
    tok.add_tokens([AddedToken("[ITEM]", normalized=True)])
    return tok


def _write(folder: str, inputs: list[bytes]) -> None:
    out = SEEDS / folder
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for i, data in enumerate(inputs):
        (out / f"s{i:03d}").write_bytes(data)


def _json(tok: Tokenizer) -> bytes:
    return json.dumps(json.loads(tok.to_str()), ensure_ascii=False, separators=(",", ":")).encode()


def tokenizer_seeds(count: int, loads: list[Tokenizer]) -> list[bytes]:
    texts = [bytes([sel, pick]) + text for sel in range(count) for pick, text in enumerate(TEXTS)]
    return texts + [bytes([count]) + _json(tok) for tok in loads]


def chat_seeds() -> list[bytes]:
    conversations = [
        [(b"\x00", b"What is 2+2?"), (b"\x01", b"  4\n")],
        [(b"\x02", "Be brief. ☃".encode()), (b"\x00", b"hi \xfe\xc3"), (b"\x01", b"\n\nthere</think>ok"),
         (b"\x00", b"again"), (b"\x01", "\u2003answer\u3000".encode())],
        [(b"\x03", b"tool output"), (b"role", b"x"), (b"\x01", b"")],
        [(b"\x00", b"q"), (b"\x02", b"late system")],
    ]
    out = []
    for sel in range(5):
        for flags, conv in zip((0x10, 0x31, 0x22, 0x1c), conversations):
            out.append(bytes([sel, flags, 40 + 20 * sel]) + SEP.join(r + SEP + c for r, c in conv))
    for template in [{"start": "<s>", "start_without_system": "", "last_assistant": None,
                      "roles": {"user": {"prefix": "U:", "suffix": "\n", "content": "strip"},
                                "assistant": {"prefix": "A:", "suffix": "\n", "content": "as-is"}}},
                     {"start": "", "start_without_system": "", "roles": {"user": {"prefix": "", "suffix": "",
                      "content": "lstrip-newlines"}}, "last_assistant": None}]:
        out.append(bytes([5, 0x10, 30]) + json.dumps(template).encode() + SEP + SEP.join(
            r + SEP + c for r, c in conversations[0]))
    return out


def main() -> None:
    _write("bpe", tokenizer_seeds(BPE_TOKENIZERS, [_tiny_byte_level(), _tiny_gpt2(), _tiny_spm(), _tiny_wordpiece()]))
    _write("unigram", tokenizer_seeds(UNIGRAM_TOKENIZERS, [_tiny_unigram(0, False), _tiny_unigram(None, False),
                                                           _tiny_unigram(0, True)]))
    _write("chat", chat_seeds())


if __name__ == "__main__":
    main()
