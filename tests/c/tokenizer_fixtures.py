"""Tokenizer folders of every family the C library reads, trained offline, for its parity harness.

    python tests/c/tokenizer_fixtures.py --root DIR [--kinds gpt2 qwen2 ...] [--large]

Each kind is trained here with ``tokenizers`` on the vendored preference text (tests/hf_tiny.py's
``training_text``), deterministically, at a realistic vocabulary (8000: merges deep enough that
BPE's rank order and Unigram's lattice matter), with the real family's normalizer, pre-tokenizer,
model options, added tokens, post-processor and chat template:

=====================  ==========================================================================
gpt2                   byte-level BPE, GPT-2 regex inside ByteLevel; ModernBERT's specials
                       ([MASK] lstrip, <|sep|> rstrip), ``[CLS] A [SEP] B [SEP]``; a normalized
                       non-special added token
llama3                 Split(Llama-3 regex) + ByteLevel, ``ignore_merges``; Llama-3's specials and
                       reserved tokens, ``<|begin_of_text|> A`` template, Llama-3 chat template
qwen2                  NFC, Split(Qwen2 regex) + ByteLevel; ChatML specials, ``<think>`` tokens,
                       "café" added normalized (found after NFC), a bare ByteLevel post-processor
                       (as Qwen2 ships); Qwen2 and Qwen3 chat templates
unigram                DeBERTa-v3: Strip, NFKC, Replace(``\\`\\``/``''`` -> ``"``) (string patterns
                       only: the C library refuses regex Replace and Precompiled), Metaspace; "[ITEM]"
                       added normalized (found after NFKC)
bpe-byte-fallback      Gemma: Replace(" " -> "▁"), Split("▁", merged_with_next), byte fallback,
                       fuse_unk; ``<bos> A`` template, Gemma chat template
bpe-llama2             Llama-2: Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer (a whole
                       text is one word), byte fallback; ``<s> A`` template
bpe-metaspace          Mistral: byte fallback behind Metaspace(prepend_scheme="first", split=False),
                       [INST] / [/INST] specials, Mistral chat template
roberta                GPT-2-regex byte-level BPE with add_prefix_space, RobertaProcessing,
                       <mask> lstrip
wordpiece              the real all-MiniLM-L6-v2 tokenizer (models.base.default_base_model)
wordpiece-cased        WordPiece trained here behind BertNormalizer(lowercase=False)
qwen2-150k             (``LARGE_KIND``) qwen2 at Qwen's size, for load-time benchmarks (below)
=====================  ==========================================================================

A folder holds what ``save_pretrained`` writes (tokenizer.json, tokenizer_config.json, ...), plus
``manifest_tokenizer.json`` (the section export writes into a bundle's manifest: kind, pad id,
token types, reduced chat template) and ``chat/<name>.json`` (each chat template the kind is tested
with, reduced by export.chat_template.reduce_template). Folders are cached under the caller's root
and published by rename (hf_tiny._publish): a folder that exists is complete.

The Qwen-size BPE. All the vendored text trains about 83k byte-level merges under the Qwen2
regex; the rest, up to ``LARGE_MERGES``, is added deterministically: for learned tokens ``a`` in
id order and then ``b`` in id order, the merge ``(a, b)`` is appended when ``a + b`` is not yet a
token (and at most 16 characters); ``a + b`` becomes the next vocabulary entry. Every such merge is
valid for BPE (both sides are tokens, the result is new), so encoding is well defined and both
implementations must agree on it; the extra merges rank after every trained one.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


from hf_tiny import (_GEMMA_SPECIALS, _GEMMA_TEMPLATE, _LLAMA3_REGEX, _LLAMA3_SPECIALS, _LLAMA3_TEMPLATE,  # noqa: E402
                     _QWEN2_REGEX, _QWEN2_TEMPLATE, _QWEN3_TEMPLATE, _publish, _template, byte_level_bpe, spm_bpe, wordpiece,
                     training_text)
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,  # noqa: E402
                        processors, trainers)
from transformers import (AutoTokenizer, BertTokenizerFast, DebertaV2TokenizerFast, GemmaTokenizerFast,  # noqa: E402
                          LlamaTokenizerFast, PreTrainedTokenizerFast, Qwen2TokenizerFast, RobertaTokenizerFast)

VOCAB_SIZE = 8000
RECORDS_PER_DOMAIN = 400          # x 5 domains x 3 texts: 6000 texts, 1.7 M characters
UNIGRAM_RECORDS_PER_DOMAIN = 400  # the Unigram trainer (EM) is the slowest; the same texts as the others
LARGE_KIND = "qwen2-150k"
LARGE_VOCAB, LARGE_MERGES = 151643, 151387   # Qwen2.5's: vocabulary before added tokens, merges
_MAX_EXTRA_TOKEN_CHARS = 16
_DECODER_INPUTS = ["input_ids", "attention_mask"]
_CHATML_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_LLAMA3_RESERVED = [f"<|reserved_special_token_{i}|>" for i in range(24)]
_LLAMA2_SPECIALS = ["<unk>", "<s>", "</s>"]
# Mistral-7B-Instruct's template (v0.1/v0.2): user turns in [INST] ... [/INST], answers end with </s>.
_MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")


# --- byte-level BPE -------------------------------------------------------------------------------
def _byte_level(lines: list[str], split: pre_tokenizers.PreTokenizer | None, vocab_size: int,
                normalizer=None, prefix_space: bool = False, **bpe) -> Tokenizer:
    """hf_tiny.byte_level_bpe, with no normalizer unless one is given."""
    return byte_level_bpe(lines, split, vocab_size, normalizer, prefix_space, **bpe)


def _with_byte_level(template: processors.TemplateProcessing) -> processors.Sequence:
    """Llama-3's post-processor form: ByteLevel (offsets only) then the special-token template."""
    return processors.Sequence([processors.ByteLevel(trim_offsets=False), template])


def _gpt2(lines: list[str]) -> PreTrainedTokenizerFast:
    tok = _byte_level(lines, None, VOCAB_SIZE)
    tok.add_special_tokens(["<|endoftext|>", "<|padding|>", "[UNK]", "[CLS]", "[SEP]", "[PAD]",
                            AddedToken("[MASK]", lstrip=True, special=True)])
    tok.add_special_tokens([AddedToken("<|sep|>", rstrip=True, special=True)])
    tok.add_tokens([AddedToken("<|user|>", normalized=True, special=False)])
    tok.post_processor = _with_byte_level(_template("[CLS]:0 $A:0 [SEP]:0", "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
                                                    tok, ["[CLS]", "[SEP]"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", mask_token="[MASK]", model_input_names=_DECODER_INPUTS)


def _llama3(lines: list[str]) -> PreTrainedTokenizerFast:
    tok = _byte_level(lines, pre_tokenizers.Split(Regex(_LLAMA3_REGEX), behavior="isolated"), VOCAB_SIZE,
                      ignore_merges=True)
    tok.add_special_tokens(_LLAMA3_SPECIALS + _LLAMA3_RESERVED)
    tok.post_processor = _with_byte_level(_template("<|begin_of_text|>:0 $A:0",
                                                    "<|begin_of_text|>:0 $A:0 <|begin_of_text|>:1 $B:1",
                                                    tok, ["<|begin_of_text|>"]))
    out = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                  pad_token="<|finetune_right_pad_id|>", model_input_names=_DECODER_INPUTS)
    out.chat_template = _LLAMA3_TEMPLATE
    return out


def _qwen2_tokenizer(tok: Tokenizer) -> Qwen2TokenizerFast:
    """ChatML specials and <think> tokens on a trained Qwen2-style BPE, as Qwen2.5 / Qwen3 ship them."""
    tok.add_special_tokens(_CHATML_SPECIALS)
    tok.add_tokens([AddedToken("<think>", normalized=False), AddedToken("</think>", normalized=False)])
    tok.add_tokens([AddedToken("café", normalized=True)])   # a user's word: found after NFC ("cafe\u0301")
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    out = Qwen2TokenizerFast(tokenizer_object=tok, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                             pad_token="<|endoftext|>", model_input_names=_DECODER_INPUTS)
    out.chat_template = _QWEN2_TEMPLATE
    return out


def _qwen2(lines: list[str]) -> Qwen2TokenizerFast:
    split = pre_tokenizers.Split(Regex(_QWEN2_REGEX), behavior="isolated")
    return _qwen2_tokenizer(_byte_level(lines, split, VOCAB_SIZE, normalizers.NFC()))


# --- Unigram and SentencePiece-style BPE ----------------------------------------------------------
def _canonical_unigram(pieces: list[list]) -> list[tuple[str, float]]:
    """Unigram pieces, the same from run to run. The trainer gives the characters it must keep
    penalty scores (1e-4 apart, far below every learned score) in hash-set order, and a learned
    piece may tie with one of them. After the largest score drop (where the penalties start), the
    single characters take those scores in codepoint order; everything is then sorted by
    (-score, piece). Scores are rounded to 1e-6 (the trainer leaves ~1e-12 of noise)."""
    body = sorted(((p, round(s, 6)) for p, s in pieces), key=lambda ps: (-ps[1], ps[0]))
    drops = [body[i][1] - body[i + 1][1] for i in range(len(body) - 1)]
    start = max(range(len(drops)), key=drops.__getitem__) + 1 if drops else len(body)
    tail = [ps for ps in body[start:] if len(ps[0]) == 1]
    fixed = dict(zip(sorted(p for p, _ in tail), sorted((s for _, s in tail), reverse=True)))
    return sorted(((p, fixed.get(p, s)) for p, s in body), key=lambda ps: (-ps[1], ps[0]))


def _unigram(_: list[str]) -> DebertaV2TokenizerFast:
    """DeBERTa-v3-like; trained on fewer texts (UNIGRAM_RECORDS_PER_DOMAIN), canonicalized (hf_tiny)."""
    normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.NFKC(), normalizers.Replace("``", '"'),
                                       normalizers.Replace("''", '"')])
    trained = Tokenizer(models.Unigram())
    trained.normalizer = normalizer
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=VOCAB_SIZE, special_tokens=["[PAD]", "[CLS]", "[SEP]", "[UNK]"],
                                      unk_token="[UNK]", max_piece_length=12, n_sub_iterations=1,
                                      shrinking_factor=0.5, show_progress=False)
    trained.train_from_iterator(training_text(UNIGRAM_RECORDS_PER_DOMAIN), trainer)
    vocab = json.loads(trained.to_str())["model"]["vocab"]
    tok = Tokenizer(models.Unigram([tuple(ps) for ps in vocab[:4]] + _canonical_unigram(vocab[4:]), unk_id=3))
    tok.normalizer, tok.pre_tokenizer = normalizer, trained.pre_tokenizer
    tok.add_special_tokens(["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"])
    tok.add_tokens([AddedToken("[ITEM]", normalized=True)])   # found after NFKC ("［ITEM］") and Strip
    tok.post_processor = _template("[CLS]:0 $A:0 [SEP]:0", "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1", tok, ["[CLS]", "[SEP]"])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return DebertaV2TokenizerFast(tokenizer_object=tok, do_lower_case=False, split_by_punct=False)


def _spm_bpe(lines: list[str], specials: list[str], normalizer, pre_tokenizer) -> Tokenizer:
    """hf_tiny.spm_bpe at this module's vocabulary size, read through `normalizer` and `pre_tokenizer`."""
    tok = spm_bpe(lines, specials, VOCAB_SIZE)
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    tok.add_special_tokens(specials)
    return tok


def _gemma(lines: list[str]) -> GemmaTokenizerFast:
    tok = _spm_bpe(lines, _GEMMA_SPECIALS, normalizers.Replace(" ", "▁"),
                   pre_tokenizers.Split("▁", behavior="merged_with_next"))
    tok.post_processor = _template("<bos>:0 $A:0", "<bos>:0 $A:0 <bos>:1 $B:1", tok, ["<bos>"])
    out = GemmaTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                             unk_token="<unk>", add_bos_token=True, add_eos_token=False,
                             model_input_names=_DECODER_INPUTS)
    out.chat_template = _GEMMA_TEMPLATE
    return out


def _llama2(lines: list[str]) -> LlamaTokenizerFast:
    normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok = _spm_bpe(lines, _LLAMA2_SPECIALS, normalizer, None)
    tok.post_processor = _template("<s>:0 $A:0", "<s>:0 $A:0 <s>:1 $B:1", tok, ["<s>"])
    return LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                              pad_token="<unk>", add_bos_token=True, add_eos_token=False, legacy=True,
                              from_slow=False, model_input_names=_DECODER_INPUTS)


def _roberta(lines: list[str]) -> RobertaTokenizerFast:
    """RoBERTa: GPT-2-regex byte-level BPE with a space prefixed, ``<s> A </s></s> B </s>``."""
    tok = _byte_level(lines, None, VOCAB_SIZE, prefix_space=True)
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", AddedToken("<mask>", lstrip=True, special=True)])
    tok.post_processor = processors.RobertaProcessing(sep=("</s>", tok.token_to_id("</s>")),
                                                      cls=("<s>", tok.token_to_id("<s>")), add_prefix_space=True)
    return RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                add_prefix_space=True)


def _mistral(lines: list[str]) -> LlamaTokenizerFast:
    """Mistral: byte-fallback BPE behind Metaspace(prepend_scheme="first", split=False), [INST] specials."""
    meta = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok = _spm_bpe(lines, _LLAMA2_SPECIALS, None, meta)
    tok.add_special_tokens(["[INST]", "[/INST]"])
    tok.post_processor = _template("<s>:0 $A:0", "<s>:0 $A:0 <s>:1 $B:1", tok, ["<s>"])
    out = LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                             pad_token="<unk>", add_bos_token=True, add_eos_token=False, legacy=False,
                             from_slow=False, model_input_names=_DECODER_INPUTS)
    out.chat_template = _MISTRAL_TEMPLATE
    return out


def _wordpiece_cased(lines: list[str]) -> BertTokenizerFast:
    """BERT-cased: hf_tiny.wordpiece without lowercasing (accents kept), at this module's vocabulary size."""
    return wordpiece(lines, False, VOCAB_SIZE)


def _wordpiece(_: list[str]):
    from models.base import default_base_model, load_tokenizer
    return load_tokenizer(default_base_model())


# --- the Qwen-size BPE ------------------------------------------------------------------------------
def _extend_merges(spec: dict, n_merges: int, vocab_size: int) -> None:
    """Append merges (a, b) of learned tokens, in id order, whose result is new (module docstring)."""
    vocab: dict[str, int] = spec["vocab"]
    merges: list = spec["merges"]
    learned = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][256:]
    for a in learned:
        for b in learned:
            if len(merges) >= n_merges or len(vocab) >= vocab_size:
                return
            if a + b not in vocab and len(a + b) <= _MAX_EXTRA_TOKEN_CHARS:
                vocab[a + b] = len(vocab)
                merges.append([a, b])


def _qwen2_large(lines: list[str]) -> Qwen2TokenizerFast:
    split = pre_tokenizers.Split(Regex(_QWEN2_REGEX), behavior="isolated")
    trained = _byte_level(training_text(10 ** 9), split, LARGE_VOCAB, normalizers.NFC())
    spec = json.loads(trained.to_str())
    _extend_merges(spec["model"], LARGE_MERGES, LARGE_VOCAB)
    return _qwen2_tokenizer(Tokenizer.from_str(json.dumps(spec)))


# --- folders ------------------------------------------------------------------------------------------
_BUILDERS: dict[str, Callable[[list[str]], PreTrainedTokenizerFast]] = {
    "gpt2": _gpt2, "llama3": _llama3, "qwen2": _qwen2, "unigram": _unigram, "bpe-byte-fallback": _gemma,
    "bpe-llama2": _llama2, "bpe-metaspace": _mistral, "roberta": _roberta, "wordpiece": _wordpiece,
    "wordpiece-cased": _wordpiece_cased, LARGE_KIND: _qwen2_large}
KINDS = tuple(k for k in _BUILDERS if k != LARGE_KIND)
# Chat templates each kind is tested with (the first is the one saved with the tokenizer).
CHAT_TEMPLATES = {"llama3": {"llama3": _LLAMA3_TEMPLATE}, "qwen2": {"qwen2": _QWEN2_TEMPLATE, "qwen3": _QWEN3_TEMPLATE},
                  "bpe-byte-fallback": {"gemma": _GEMMA_TEMPLATE}, "bpe-metaspace": {"mistral": _MISTRAL_TEMPLATE}}


def manifest_section(tok, folder: Path) -> dict:
    """``manifest["tokenizer"]`` as export writes it for this folder (export.bundle.tokenizer_section)."""
    from export.bundle import TOKENIZER_FILES, tokenizer_section
    files = [name for name in TOKENIZER_FILES if (folder / name).is_file()]
    token_types = "token_type_ids" in tok.model_input_names
    section = tokenizer_section(tok, folder, files, token_types)
    section["pad_token_id"] = int(tok.pad_token_id if tok.pad_token_id is not None else 0)
    return section


def _save(kind: str, out: Path) -> None:
    from export.chat_template import reduce_template
    tok = _BUILDERS[kind](training_text(RECORDS_PER_DOMAIN))
    tok.save_pretrained(out)
    section = manifest_section(tok, out)
    section["chat_template"] = None
    for i, (name, template) in enumerate(CHAT_TEMPLATES.get(kind, {}).items()):
        tok.chat_template = template
        fmt = reduce_template(tok, f"{kind}/{name}").to_dict()
        (out / "chat").mkdir(exist_ok=True)
        (out / "chat" / f"{name}.json").write_text(json.dumps(fmt, indent=1, ensure_ascii=False) + "\n", "utf-8")
        if i == 0:
            section["chat_template"] = fmt
    (out / "manifest_tokenizer.json").write_text(json.dumps(section, indent=1, ensure_ascii=False) + "\n", "utf-8")


def build(kind: str, root: str | Path) -> Path:
    """The folder of tokenizer ``kind`` (KINDS or LARGE_KIND) under ``root``, trained on first use."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown tokenizer kind '{kind}'; expected one of {(*KINDS, LARGE_KIND)}")
    return _publish(Path(root) / kind, lambda out: _save(kind, out))


def chat_formats(folder: Path) -> dict[str, Path]:
    """{name: path} of the reduced chat templates a built folder holds (none for most kinds)."""
    return {p.stem: p for p in sorted((Path(folder) / "chat").glob("*.json"))}


def load_hf(folder: Path):
    """The folder's transformers tokenizer (what export reads)."""
    return AutoTokenizer.from_pretrained(str(folder))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="folder the tokenizer folders are cached in")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=(*KINDS, LARGE_KIND))
    ap.add_argument("--large", action="store_true", help=f"also build {LARGE_KIND}")
    args = ap.parse_args()
    for kind in args.kinds + ([LARGE_KIND] if args.large and LARGE_KIND not in args.kinds else []):
        folder = build(kind, args.root)
        spec = json.loads((folder / "tokenizer.json").read_text("utf-8"))
        print(f"{folder}: {spec['model']['type']}, {len(spec['model']['vocab'])} pieces, "
              f"{len(spec['model'].get('merges') or [])} merges, {len(spec['added_tokens'])} added tokens")


if __name__ == "__main__":
    main()
