"""The tiny Hugging Face families of hf_tiny: they build, load, batch, template and round-trip text."""
import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from hf_tiny import DECODERS, FAMILIES, tiny_adapter, tiny_reward_model

_TEXTS = ["Hi.", "What is 12 + 7? It is 19.", "A much longer answer, past every local window. " * 4]
_NON_ASCII = "Naïve café — 12345 😀\n\n  two  spaces"
# What decode(encode(text)) gives back: byte-level BPE and byte fallback are lossless; WordPiece
# lower-cases and strips accents; DeBERTa-v3's Unigram has no byte fallback, so ASCII only.
_ROUND_TRIP = {
    "bert": ("Héllo, Wörld! It is 42.", "hello, world! it is 42."),
    "deberta-v2": ("Hello world, it's 2024.", "Hello world, it's 2024."),
    **{f: (_NON_ASCII, _NON_ASCII) for f in ("modernbert", "llama", "qwen2", "qwen3", "gemma2")},
}
_CONVERSATION = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "It is 4."}]
_RENDERED = {
    "llama": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 4.<|eot_id|>",
    "qwen2": "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
             "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nIt is 4.<|im_end|>\n",
    "qwen3": "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
             "<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 4.<|im_end|>\n",
    "gemma2": "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\nIt is 4.<end_of_turn>\n",
}


@pytest.fixture(scope="module")
def hf_root(tiny_root):
    return tiny_root / "hf"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_builds_and_batches(family, hf_root):
    path = tiny_reward_model(family, hf_root)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "right"
    batch = tok(_TEXTS, padding=True, return_tensors="pt")
    assert (batch["attention_mask"].sum(1) < batch["attention_mask"].shape[1]).sum() == 2  # two rows padded
    with torch.no_grad():
        batched = model(**batch).logits
        alone = torch.cat([model(**tok([t], return_tensors="pt")).logits for t in _TEXTS])
    assert batched.shape == (3, 1)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    assert tiny_reward_model(family, hf_root) == path  # cached


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_round_trips(family, hf_root):
    tok = AutoTokenizer.from_pretrained(tiny_reward_model(family, hf_root))
    text, expected = _ROUND_TRIP[family]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, clean_up_tokenization_spaces=False) == expected


@pytest.mark.parametrize("family", DECODERS)
def test_decoder_pad_and_template(family, hf_root):
    path = tiny_reward_model(family, hf_root)
    tok, config = AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)
    assert tok.pad_token_id is not None and tok.pad_token_id == config.pad_token_id
    assert tok.pad_token_id != tok.eos_token_id  # a conversation's last token must not read as padding
    assert (path / "chat_template.jinja").is_file()
    assert tok.apply_chat_template(_CONVERSATION, tokenize=False) == _RENDERED[family]


@pytest.mark.parametrize("family, targets", [("bert", ["query", "value"]), ("qwen3", ["q_proj", "v_proj"])])
def test_adapter_holds_head_and_changes_scores(family, targets, hf_root):
    from peft import PeftModel
    base = tiny_reward_model(family, hf_root)
    path = tiny_adapter(base, hf_root / "adapters", f"{family}-router", seed=1, r=4, alpha=8, targets=targets,
                        num_labels=3, labels=["math", "code", "chat"])
    with safe_open(path / "adapter_model.safetensors", "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    head = "classifier" if family == "bert" else "score"
    assert shapes[f"base_model.model.{head}.weight"][0] == 3  # PEFT saved the new 3-label head
    assert sum("lora_B" in k for k in shapes) == 2 * len(targets)
    assert json.loads((path / "config.json").read_text())["id2label"] == {"0": "math", "1": "code", "2": "chat"}
    tok = AutoTokenizer.from_pretrained(base)
    batch = tok(_TEXTS, padding=True, return_tensors="pt")
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3, ignore_mismatched_sizes=True)
    peft_model = PeftModel.from_pretrained(model, path).eval()
    with torch.no_grad():
        scores = peft_model(**batch).logits
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.zero_()
        head_only = peft_model(**batch).logits
    assert scores.shape == (3, 3)
    assert (scores - head_only).abs().max() > 1e-2  # the LoRA weights are not a no-op
