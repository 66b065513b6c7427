"""The runtime's tokenizer (``tokenizers`` only, so serving needs no transformers) gives the training
tokenizer's ids on real data."""
import json
import sys
from pathlib import Path

import pytest

from models.base import default_base_model, load_tokenizer
from core.text import HEAD_TAIL, KEEP_HEAD, encode_pairs, encode_prompts, single_segment
from core.errors import BundleError
from runtime.tokenizer import BundleTokenizer
from core.data import DOMAINS, load_splits


@pytest.fixture(scope="module")
def test_pairs():
    splits = load_splits()
    return [p for d in DOMAINS for p in splits[d]["test"]]


@pytest.mark.parametrize("segments", [True, False])
def test_same_ids_as_the_training_tokenizer_on_every_test_pair(test_pairs, segments):
    hf = load_tokenizer(default_base_model())
    if not segments:
        single_segment(hf)
    fast = BundleTokenizer(Path(default_base_model()) / "tokenizer.json", hf.pad_token_id, segments)
    prompts = [p.prompt for p in test_pairs]
    for policy, length in ((HEAD_TAIL, 256), (KEEP_HEAD, 128), (HEAD_TAIL, 40)):
        for responses in ([p.chosen for p in test_pairs], [p.rejected for p in test_pairs]):
            assert encode_pairs(fast, prompts, responses, length, policy) == encode_pairs(hf, prompts, responses, length, policy)
    assert encode_prompts(fast, prompts, 64) == encode_prompts(hf, prompts, 64)


def test_odd_text_matches_too():
    hf = load_tokenizer(default_base_model())
    fast = BundleTokenizer(Path(default_base_model()) / "tokenizer.json", hf.pad_token_id, True)
    texts = ["", " ", "[CLS] [SEP] [PAD]", "Ünïcödé ＦＵＬＬＷＩＤＴＨ 中文字 emoji \U0001F600", "a\u0000b\tc\r\nd", "x" * 5000]
    assert encode_pairs(fast, texts, texts[::-1], 64) == encode_pairs(hf, texts, texts[::-1], 64)


def test_bad_tokenizer_file_is_a_bundle_error(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="tokenizer.json"):
        BundleTokenizer(bad, 0, False)


@pytest.mark.parametrize("name", ["baseline", "rodos", "arliss"])
def test_serving_imports_neither_torch_nor_transformers(tiny_bundles, name):
    """``import runtime`` and a score on the ORT backend, in a fresh process: no torch, transformers or peft."""
    import subprocess
    code = ("import sys, runtime; e = runtime.RewardEngine.from_bundle(sys.argv[1]); "
            "r = e.score(['a prompt', 'another'], ['a response', 'more']); assert len(r) == 2; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tiny_bundles[name])], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}


@pytest.mark.parametrize("processor", [_BYTE_LEVEL, {"type": "Sequence", "processors": [_BYTE_LEVEL]}, None])
def test_a_byte_level_post_processor_adds_no_special_tokens(tmp_path, processor):
    """Qwen2/Qwen3 ship a bare ByteLevel post-processor (offsets only): pairs are joined as tokenizers
    joins them without one, the second sequence with type id 1."""
    from tokenizers import Tokenizer
    doc = json.loads(Tokenizer.from_file(str(Path(default_base_model()) / "tokenizer.json")).to_str())
    doc["post_processor"], doc["padding"], doc["truncation"] = processor, None, None
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    tok = BundleTokenizer(path, 0, True)
    want = Tokenizer.from_file(str(path)).encode("first text", "second", add_special_tokens=True)
    a, b = tok(["first text"])["input_ids"][0], tok(["second"])["input_ids"][0]
    assert tok.build_inputs_with_special_tokens(a, b) == want.ids
    assert tok.create_token_type_ids_from_sequences(a, b) == want.type_ids
