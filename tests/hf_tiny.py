"""Tiny random Hugging Face reward models of seven families, built offline, for import tests.

Each family's tokenizer is trained here (`tokenizers`, on the vendored preference text) with the
real family's algorithm, pre-tokenizer, specials, post-processor and chat template, so what a
reader of Hugging Face folders must get right (BPE regexes, BOS handling, a decoder's pad token,
relative attention, sliding windows, soft-capping) is exercised without a download. Everything is
cached under the caller's root, built in a scratch folder and renamed: a folder that exists is
complete, so repeated calls are cheap and concurrent ones safe. Tokenizers train deterministically.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, BertTokenizerFast,
                          DebertaV2TokenizerFast, GemmaTokenizerFast, PreTrainedTokenizerFast,
                          Qwen2TokenizerFast)

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "preferences"
FAMILIES = ("bert", "deberta-v2", "modernbert", "llama", "qwen2", "qwen3", "gemma2")
DECODERS = ("llama", "qwen2", "qwen3", "gemma2")

_VOCAB_SIZE = 800  # trained entries; byte-level kinds start from their 256-symbol alphabet
_RECORDS_PER_DOMAIN = 150  # x 5 domains x (prompt, chosen, rejected) = 2250 texts, ~0.6 MB
# Llama-3 and Qwen2 split text with the same regex except for numbers: up to three digits a piece
# for Llama-3, one digit for Qwen2.
_LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_REGEX = _LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")
_LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>", "<|start_header_id|>",
                    "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>"]
_GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]


# --- tokenizers ----------------------------------------------------------------------------------
def training_text(records_per_domain: int = _RECORDS_PER_DOMAIN) -> list[str]:
    """Prompt, chosen and rejected text of the first records of every vendored domain, in order."""
    lines = []
    for path in sorted(DATA_DIR.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for _, line in zip(range(records_per_domain), f):
                obj = json.loads(line)
                lines += [obj["prompt"], obj["chosen"], obj["rejected"]]
    if not lines:
        raise FileNotFoundError(f"no *.jsonl.gz preference files under {DATA_DIR}")
    return lines


def _template(single: str, pair: str, tok: Tokenizer, specials: list[str]) -> TemplateProcessing:
    return TemplateProcessing(single=single, pair=pair, special_tokens=[(s, tok.token_to_id(s)) for s in specials])


def wordpiece(lines: list[str], lowercase: bool, vocab_size: int) -> BertTokenizerFast:
    """BERT: WordPiece (lower-cased, or cased with accents kept), `[CLS] A [SEP] B [SEP]` with token
    types 0 / 1."""
    normalizer, specials = normalizers.BertNormalizer(lowercase=lowercase), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # The trainer numbers '##c' pieces in hash-map order, so ties between merges fall differently
    # from run to run; registering every '##c' up front fixes their ids, hence the merges.
    chars = sorted({c for line in lines for c in normalizer.normalize_str(line) if not c.isspace()})
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size + len(chars), show_progress=False,
                                        special_tokens=specials + [f"##{c}" for c in chars])
    trained = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    trained.normalizer, trained.pre_tokenizer = normalizer, pre_tokenizers.BertPreTokenizer()
    trained.train_from_iterator(lines, trainer)
    tok = Tokenizer(models.WordPiece(trained.get_vocab(), unk_token="[UNK]"))  # '##c' as plain pieces
    tok.normalizer, tok.pre_tokenizer = trained.normalizer, trained.pre_tokenizer
    tok.add_special_tokens(specials)
    tok.post_processor = _template("[CLS]:0 $A:0 [SEP]:0", "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1", tok, ["[CLS]", "[SEP]"])
    tok.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def _wordpiece(lines: list[str]) -> BertTokenizerFast:
    return wordpiece(lines, True, _VOCAB_SIZE)


def _canonical_pieces(pieces: list[list]) -> list[tuple[str, float]]:
    """Unigram pieces, the same from run to run: the trainer leaves ~1e-12 of hash-order noise on
    scores (rounded off) and hands the required characters' penalty scores out in hash-set order
    (the trailing run of single characters gets the same scores, in codepoint order)."""
    body = sorted(((p, round(s, 6)) for p, s in pieces), key=lambda ps: (-ps[1], ps[0]))
    n = len(body)
    while n and len(body[n - 1][0]) == 1:
        n -= 1
    scores = sorted((s for _, s in body[n:]), reverse=True)
    return body[:n] + list(zip(sorted(p for p, _ in body[n:]), scores))


def _unigram(lines: list[str]) -> PreTrainedTokenizerFast:
    """DeBERTa-v3: SentencePiece Unigram behind Metaspace ('▁'), [PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3, [MASK] last."""
    trained = Tokenizer(models.Unigram())
    # DeBERTa-v3's converted normalizer: strip, the SentencePiece nmt_nfkc map (NFKC here), squeeze spaces.
    trained.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.NFKC(),
                                               normalizers.Replace(Regex(" {2,}"), " ")])
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    # Fewer, shorter EM rounds than the defaults: a third of the time for a vocab this small.
    trainer = trainers.UnigramTrainer(vocab_size=_VOCAB_SIZE, special_tokens=["[PAD]", "[CLS]", "[SEP]", "[UNK]"],
                                      unk_token="[UNK]", max_piece_length=8, n_sub_iterations=1, shrinking_factor=0.5,
                                      show_progress=False)
    trained.train_from_iterator(lines, trainer)
    vocab = json.loads(trained.to_str())["model"]["vocab"]
    tok = Tokenizer(models.Unigram([tuple(ps) for ps in vocab[:4]] + _canonical_pieces(vocab[4:]), unk_id=3))
    tok.normalizer, tok.pre_tokenizer = trained.normalizer, trained.pre_tokenizer
    tok.add_special_tokens(["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"])
    tok.post_processor = _template("[CLS]:0 $A:0 [SEP]:0", "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1", tok, ["[CLS]", "[SEP]"])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return DebertaV2TokenizerFast(tokenizer_object=tok, do_lower_case=False, split_by_punct=False)


def byte_level_bpe(lines: list[str], split: pre_tokenizers.PreTokenizer | None, vocab_size: int, normalizer,
                   prefix_space: bool = False, **bpe) -> Tokenizer:
    """Byte-level BPE: GPT-2's regex inside ByteLevel (split=None) or a Split regex ahead of it."""
    tok = Tokenizer(models.BPE(**bpe))
    tok.normalizer = normalizer
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space, use_regex=split is None)
    tok.pre_tokenizer = byte_level if split is None else pre_tokenizers.Sequence([split, byte_level])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer)
    tok.decoder = decoders.ByteLevel()
    return tok


def _byte_level_bpe(lines: list[str], split: pre_tokenizers.PreTokenizer | None, **bpe) -> Tokenizer:
    return byte_level_bpe(lines, split, _VOCAB_SIZE, normalizers.NFC(), **bpe)


def _bpe_gpt2(lines: list[str]) -> PreTrainedTokenizerFast:
    """ModernBERT: GPT-2-regex byte-level BPE (OLMo's), `[CLS] A [SEP]`, no token types."""
    tok = _byte_level_bpe(lines, None)
    tok.add_special_tokens(["<|endoftext|>", "<|padding|>", "[UNK]", "[CLS]", "[SEP]", "[PAD]",
                            AddedToken("[MASK]", lstrip=True, special=True)])
    tok.post_processor = _template("[CLS]:0 $A:0 [SEP]:0", "[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0", tok, ["[CLS]", "[SEP]"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", mask_token="[MASK]", clean_up_tokenization_spaces=True,
                                   model_input_names=["input_ids", "attention_mask"])


def _bpe_llama3(lines: list[str]) -> PreTrainedTokenizerFast:
    """Llama-3: regex-split byte-level BPE, specials after the merges, `<|begin_of_text|>` prepended."""
    tok = _byte_level_bpe(lines, pre_tokenizers.Split(Regex(_LLAMA3_REGEX), behavior="isolated"),
                          ignore_merges=True)
    tok.normalizer = None
    tok.add_special_tokens(_LLAMA3_SPECIALS)
    tok.post_processor = _template("<|begin_of_text|>:0 $A:0", "<|begin_of_text|>:0 $A:0 <|begin_of_text|>:1 $B:1",
                                   tok, ["<|begin_of_text|>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   pad_token="<|finetune_right_pad_id|>", clean_up_tokenization_spaces=True,
                                   model_input_names=["input_ids", "attention_mask"])


def _bpe_qwen2(lines: list[str]) -> PreTrainedTokenizerFast:
    """Qwen2 / Qwen3: NFC, single-digit regex split, byte-level BPE; no specials added around text."""
    tok = _byte_level_bpe(lines, pre_tokenizers.Split(Regex(_QWEN2_REGEX), behavior="isolated"))
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.add_tokens([AddedToken("<think>", normalized=False), AddedToken("</think>", normalized=False)])
    return Qwen2TokenizerFast(tokenizer_object=tok, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                              pad_token="<|endoftext|>", clean_up_tokenization_spaces=False)


def spm_bpe(lines: list[str], specials: list[str], vocab_size: int) -> Tokenizer:
    """SentencePiece-style BPE with byte fallback: `specials`, <0x00>..<0xFF>, then pieces trained on
    '▁'-joined words (Replace(" ", "▁") + Split("▁") merged with the next; the merges never span a
    '▁', so they serve a pre-tokenizer-free Llama-2 too). The specials are not added tokens yet."""
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.normalizer = normalizers.Replace(" ", "▁")
    trained.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    trained.train_from_iterator(lines, trainer)
    spec = json.loads(trained.to_str())["model"]
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)]
    pieces += [p for p, _ in sorted(spec["vocab"].items(), key=lambda kv: kv[1]) if p not in specials]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    tok = Tokenizer(models.BPE({p: i for i, p in enumerate(pieces)}, merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer, tok.pre_tokenizer = trained.normalizer, trained.pre_tokenizer
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return tok


def _bpe_spm(lines: list[str]) -> PreTrainedTokenizerFast:
    """Gemma: SentencePiece-style BPE on '▁'-joined words with byte fallback (<0x00>..<0xFF>), `<bos>` added."""
    tok = spm_bpe(lines, _GEMMA_SPECIALS, _VOCAB_SIZE)
    tok.add_special_tokens(_GEMMA_SPECIALS)
    # GemmaTokenizerFast writes the `<bos> $A` post-processor itself from add_bos_token.
    return GemmaTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                              unk_token="<unk>", add_bos_token=True, add_eos_token=False,
                              clean_up_tokenization_spaces=False)


_TOKENIZERS: dict[str, Callable[[list[str]], PreTrainedTokenizerFast]] = {
    "wordpiece": _wordpiece, "unigram": _unigram, "bpe-gpt2": _bpe_gpt2, "bpe-llama3": _bpe_llama3,
    "bpe-qwen2": _bpe_qwen2, "bpe-spm": _bpe_spm}
TOKENIZER_KINDS = tuple(_TOKENIZERS)


def _publish(path: Path, build: Callable[[Path], None]) -> Path:
    """Build into a scratch folder beside `path`, then rename: a folder that exists is complete."""
    if path.is_dir():
        return path
    scratch = path.parent / f".{path.name}.{os.getpid()}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    build(scratch)
    try:
        scratch.rename(path)
    except OSError:  # another process published the same folder first: keep theirs
        if not path.is_dir():
            raise
        shutil.rmtree(scratch)
    return path


def train_tokenizer(kind: str, root: Path) -> PreTrainedTokenizerFast:
    """The `kind` tokenizer (one of TOKENIZER_KINDS), trained once and cached in `root/tokenizers/<kind>`."""
    if kind not in _TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind '{kind}'; expected one of {TOKENIZER_KINDS}")
    path = _publish(Path(root) / "tokenizers" / kind,
                    lambda out: _TOKENIZERS[kind](training_text()).save_pretrained(out))
    return AutoTokenizer.from_pretrained(path)


# --- chat templates (written from the families' published templates; tools left out) -------------
_LLAMA3_TEMPLATE = r"""{%- for message in messages %}
    {%- if loop.index0 == 0 %}{{- bos_token }}{% endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"""

_QWEN2_TEMPLATE = r"""{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message['role'] in ('user', 'assistant') or (message['role'] == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"""

# Qwen3: the assistant turns after the last user query carry their reasoning in <think> (empty
# when there is none); earlier assistant turns drop it.
_QWEN3_TEMPLATE = r"""{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_query_index=messages|length - 1) %}
{%- for message in messages %}
    {%- if message['role'] == 'user' %}{% set ns.last_query_index = loop.index0 %}{% endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message['content'] if message['content'] is string else '' %}
    {%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message['role'] + '\n' + content + '<|im_end|>\n' }}
    {%- elif message['role'] == 'assistant' %}
        {%- set reasoning = message['reasoning_content'] if message['reasoning_content'] is string else '' %}
        {%- if '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) %}
            {{- '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
        {%- else %}
            {{- '<|im_start|>assistant\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}
{%- endif %}"""

_GEMMA_TEMPLATE = r"""{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}{{- raise_exception('System role not supported') }}{%- endif %}
{%- for message in messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}
    {{- '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<start_of_turn>model\n' }}{%- endif %}"""


# --- models --------------------------------------------------------------------------------------
# Tiny, but with each family's distinguishing mechanisms switched on: DeBERTa-v3 relative
# attention with log buckets (32 < 256 positions), ModernBERT local attention and mean pooling,
# Llama-3 GQA with llama3 RoPE scaling, Qwen vocab padding (embedding rows past the
# tokenizer), Qwen3 head_dim * heads != hidden, Gemma-2 sliding window and logit soft-capping.
# A 0.1 init (not 0.02) keeps logits far enough from 0 for parity checks to mean something.
_SIZES = dict(hidden_size=32, num_hidden_layers=2, intermediate_size=64, max_position_embeddings=256,
              initializer_range=0.1)
_DECODER_SIZES = dict(_SIZES, num_attention_heads=4, num_key_value_heads=2)


def _encoder_ids(tok: PreTrainedTokenizerFast) -> dict:
    return dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id)


def _decoder_ids(tok: PreTrainedTokenizerFast, vocab_multiple: int = 1) -> dict:
    vocab = -(-len(tok) // vocab_multiple) * vocab_multiple
    return dict(vocab_size=vocab, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id)


@dataclass(frozen=True)
class _Family:
    model_type: str
    tokenizer: str
    config: Callable[[PreTrainedTokenizerFast], dict]
    chat_template: str | None = None


_FAMILY_SPECS = {
    "bert": _Family("bert", "wordpiece", lambda tok: dict(_SIZES, **_encoder_ids(tok), num_attention_heads=2)),
    "deberta-v2": _Family("deberta-v2", "unigram", lambda tok: dict(
        _SIZES, **_encoder_ids(tok), num_attention_heads=2, type_vocab_size=0, relative_attention=True,
        position_biased_input=False, pos_att_type=["p2c", "c2p"], max_relative_positions=-1, position_buckets=32,
        norm_rel_ebd="layer_norm", share_att_key=True, pooler_hidden_size=32, pooler_dropout=0.0,
        pooler_hidden_act="gelu", layer_norm_eps=1e-7)),
    "modernbert": _Family("modernbert", "bpe-gpt2", lambda tok: dict(
        _SIZES, **_encoder_ids(tok), num_attention_heads=2, cls_token_id=tok.cls_token_id,
        sep_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
        global_attn_every_n_layers=2, local_attention=16, classifier_pooling="mean", reference_compile=False,
        initializer_cutoff_factor=2.0)),
    "llama": _Family("llama", "bpe-llama3", lambda tok: dict(
        _DECODER_SIZES, **_decoder_ids(tok), rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 128}), _LLAMA3_TEMPLATE),
    "qwen2": _Family("qwen2", "bpe-qwen2", lambda tok: dict(
        _DECODER_SIZES, **_decoder_ids(tok, 64), rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
        use_sliding_window=False), _QWEN2_TEMPLATE),
    "qwen3": _Family("qwen3", "bpe-qwen2", lambda tok: dict(
        _DECODER_SIZES, **_decoder_ids(tok, 64), head_dim=16, rope_theta=1e6, rms_norm_eps=1e-6,
        tie_word_embeddings=True, use_sliding_window=False), _QWEN3_TEMPLATE),
    # Attention soft-capping is computed by the eager attention only: transformers' sdpa path
    # drops it, and from_pretrained picks sdpa unless told attn_implementation="eager".
    "gemma2": _Family("gemma2", "bpe-spm", lambda tok: dict(
        _DECODER_SIZES, **_decoder_ids(tok), head_dim=16, query_pre_attn_scalar=16, sliding_window=16,
        layer_types=["sliding_attention", "full_attention"], attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0, hidden_activation="gelu_pytorch_tanh"), _GEMMA_TEMPLATE),
}
assert tuple(_FAMILY_SPECS) == FAMILIES and all(_FAMILY_SPECS[f].chat_template for f in DECODERS)


def _family(family: str) -> _Family:
    if family not in _FAMILY_SPECS:
        raise ValueError(f"unknown model family '{family}'; expected one of {FAMILIES}")
    return _FAMILY_SPECS[family]


def family_tokenizer(family: str, root: Path) -> PreTrainedTokenizerFast:
    """The family's tokenizer with its chat template (None for the encoders), truncating at the
    models' max_position_embeddings."""
    tok = train_tokenizer(_family(family).tokenizer, root)
    tok.chat_template, tok.model_max_length = _family(family).chat_template, _SIZES["max_position_embeddings"]
    return tok


def tiny_reward_model(family: str, root: Path, *, seed: int = 0, num_labels: int = 1) -> Path:
    """A random `AutoModelForSequenceClassification` of `family` with its tokenizer, saved in
    `root/<family>-<seed>-<num_labels>` (config.json, model.safetensors, tokenizer files and, for
    the decoders, chat_template.jinja); built once, then returned from disk."""
    spec = _family(family)
    if num_labels < 1:
        raise ValueError(f"num_labels must be >= 1, got {num_labels}")

    def build(out: Path) -> None:
        tok = family_tokenizer(family, root)
        config = AutoConfig.for_model(spec.model_type, num_labels=num_labels, **spec.config(tok))
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config)
        model.save_pretrained(out)
        tok.save_pretrained(out)

    return _publish(Path(root) / f"{family}-{seed}-{num_labels}", build)


# --- PEFT adapters -------------------------------------------------------------------------------
def tiny_adapter(base: Path, root: Path, name: str, *, seed: int, r: int, alpha: int, targets: list[str],
                 num_labels: int = 1, labels: list[str] | None = None, noise: float = 0.05) -> Path:
    """A random LoRA sequence-classification adapter on `base`, saved by PEFT in `root/name`
    (cached by `name` alone: vary the name with the arguments).

    PEFT's SEQ_CLS task puts the head (`classifier` / `score`) in modules_to_save, so the adapter
    holds a whole `num_labels`-row head beside the LoRA A/B of `targets`. Every trainable tensor
    gets seeded N(0, noise) added (lora_B starts at zero, a no-op). With `labels` (a router's
    domains), `root/name/config.json` holds {"id2label": {"0": labels[0], ...}}."""
    from peft import LoraConfig, get_peft_model
    if labels is not None and len(labels) != num_labels:
        raise ValueError(f"labels has {len(labels)} names but num_labels is {num_labels}")

    def build(out: Path) -> None:
        base_labels = AutoConfig.from_pretrained(base).num_labels
        torch.manual_seed(seed)  # the new head, when num_labels differs from the base's
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=num_labels, ignore_mismatched_sizes=num_labels != base_labels)
        peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=r, lora_alpha=alpha,
                                                      target_modules=list(targets)))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for _, p in sorted(peft_model.named_parameters()):
                if p.requires_grad:
                    p.add_(noise * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        peft_model.save_pretrained(out)
        if labels is not None:
            id2label = {str(i): n for i, n in enumerate(labels)}
            (out / "config.json").write_text(json.dumps({"id2label": id2label}, indent=2) + "\n")

    return _publish(Path(root) / name, build)
