"""Importing Hugging Face, TRL and PEFT reward models: every family serves what transformers (or PEFT)
computes, RODOS over two families with two tokenizers, ARLISS over PEFT adapters, and each bad input
refused by name with no bundle written."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from export.from_hf import ImportSpec, import_bundle
from export.hf_model import ImportModelError
from runtime import RewardEngine
from hf_tiny import DECODERS, FAMILIES, tiny_adapter, tiny_reward_model

BOUND = 1e-4
LONG = "The committee reviewed every line of the proposal, asked for two more tables, and approved it. " * 3
ROWS = [  # strings and messages, of different lengths (padded batches)
    ("What is 12 * 7?", "84."),
    ("Write one sentence about rain.", LONG),
    ([{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! How can I help?"},
      {"role": "user", "content": "Grüße aus Köln — name a prime above 10. 你好"}],
     [{"role": "assistant", "content": "11 is prime ☃"}]),
    ("", "An empty prompt."),
]
SYSTEM_ROW = ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}], "4")


@pytest.fixture(scope="module")
def hf_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf")


def messages(side, role: str) -> list[dict]:
    return [{"role": role, "content": side}] if isinstance(side, str) else side


def flat(side) -> str:
    if isinstance(side, str):
        return side
    return "\n\n".join(f"{m['role'].replace('user', 'Human').replace('assistant', 'Assistant').title()}: {m['content']}"
                       for m in side)


@torch.inference_mode()
def transformers_reward(path: Path, prompt, response, *, label: int = 0) -> float:
    """The model on its own tokenization of one row, unpadded: chat template when it has one, else the text pair."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    if tok.chat_template:
        ids = tok.apply_chat_template(messages(prompt, "user") + messages(response, "assistant"), tokenize=True)
        feeds = {"input_ids": torch.tensor([ids])}
    else:
        answer = response if isinstance(response, str) else "\n\n".join(m["content"] for m in response)
        feeds = {k: torch.tensor([v]) for k, v in tok(flat(prompt), answer).items()}
    return float(model(**feeds).logits[0, label])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_serves_what_transformers_computes(family, hf_root, tmp_path):
    model = tiny_reward_model(family, hf_root)
    bundle = import_bundle(ImportSpec("baseline", (("general", model),)), tmp_path / family)
    engine = RewardEngine.from_bundle(bundle)
    rows = ROWS + ([SYSTEM_ROW] if family != "gemma2" else [])
    got = engine.score([p for p, _ in rows], [r for _, r in rows]).rewards
    want = np.array([transformers_reward(model, p, r) for p, r in rows], np.float32)
    assert np.abs(got - want).max() <= BOUND, (got, want)
    assert (engine.manifest.tokenizer["chat_template"] is not None) == (family in DECODERS)


def test_a_long_chat_row_is_cut_and_keeps_its_end_of_turn(hf_root, tmp_path):
    model = tiny_reward_model("qwen3", hf_root)
    bundle = import_bundle(ImportSpec("baseline", (("general", model),), max_length=48), tmp_path / "qwen3")
    engine = RewardEngine.from_bundle(bundle)
    result = engine.score(["Summarise. " * 30], [LONG])
    assert int(result.tokens[0]) == 48
    end = AutoTokenizer.from_pretrained(model).convert_tokens_to_ids("<|im_end|>")
    from core.formats import encode_rows
    ids = encode_rows(engine.texts["reward"], ["Summarise. " * 30], [LONG])[0].input_ids
    assert ids[-2] == end and len(ids) == 48


def test_rodos_over_two_families_with_two_tokenizers(hf_root, tmp_path):
    safety = tiny_reward_model("deberta-v2", hf_root, seed=1)
    math = tiny_reward_model("qwen3", hf_root, seed=2)
    router = tiny_reward_model("bert", hf_root, seed=3, num_labels=2)
    config = json.loads((router / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "math", "1": "safety"}, {"math": 0, "safety": 1}
    (router / "config.json").write_text(json.dumps(config))
    bundle = import_bundle(ImportSpec("rodos", (("safety", safety), ("math", math)), router=router), tmp_path / "rodos")
    engine = RewardEngine.from_bundle(bundle)
    assert engine.domains == ("math", "safety")
    assert set(engine.manifest.parts) == {"router", "reward/safety"}   # the first domain's is the top level
    prompts, responses = [p for p, _ in ROWS], [r for _, r in ROWS]
    routed = engine.route(prompts).domains
    tok = AutoTokenizer.from_pretrained(router)
    clf = AutoModelForSequenceClassification.from_pretrained(router).eval()
    with torch.inference_mode():
        want_route = [engine.domains[int(clf(**tok(flat(p), return_tensors="pt")).logits.argmax())] for p in prompts]
    assert routed == want_route
    for domain in engine.domains:   # each part with its own tokenizer, forced per row
        got = engine.score(prompts, responses, [domain] * len(prompts)).rewards
        path = {"math": math, "safety": safety}[domain]
        want = np.array([transformers_reward(path, p, r) for p, r in ROWS], np.float32)
        assert np.abs(got - want).max() <= BOUND, domain
    mixed = engine.score(prompts, responses)
    assert mixed.domains == routed


@pytest.fixture(scope="module")
def arliss_parts(hf_root):
    base = tiny_reward_model("qwen2", hf_root, seed=4)
    adapters = {
        "math": tiny_adapter(base, hf_root, "math", seed=5, r=4, alpha=8, targets=["q_proj", "v_proj"]),
        "code": tiny_adapter(base, hf_root, "code", seed=6, r=2, alpha=16, targets=["k_proj", "o_proj", "up_proj"]),
    }
    router = tiny_adapter(base, hf_root, "router", seed=7, r=4, alpha=4, targets=["q_proj", "down_proj"],
                          num_labels=2, labels=["code", "math"])
    return base, adapters, router


@torch.inference_mode()
def peft_logits(base: Path, adapter: Path, rows, num_labels: int) -> np.ndarray:
    from peft import PeftModel
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=num_labels,
                                                               ignore_mismatched_sizes=num_labels != 1)
    model = PeftModel.from_pretrained(model, adapter).eval()
    out = []
    for p, r in rows:
        conv = messages(p, "user") + ([] if r is None else messages(r, "assistant"))
        out.append(model(input_ids=torch.tensor([tok.apply_chat_template(conv, tokenize=True)])).logits[0].numpy())
    return np.stack(out)


def test_arliss_from_peft_adapters_equals_peft_per_row(arliss_parts, tmp_path):
    base, adapters, router = arliss_parts
    bundle = import_bundle(ImportSpec("arliss", tuple(adapters.items()), router=router, base=base), tmp_path / "arliss")
    engine = RewardEngine.from_bundle(bundle)
    assert engine.domains == ("code", "math") and engine.manifest.lora == "switchable"
    prompts, responses = [p for p, _ in ROWS], [r for _, r in ROWS]
    routes = engine.route(prompts)
    want_router = peft_logits(base, router, [(p, None) for p in prompts], 2)
    assert np.abs(np.log(routes.router_probs) - torch.log_softmax(torch.tensor(want_router), -1).numpy()).max() <= BOUND
    domains = ["code", "math", "math", "code"]          # mixed adapters in one batch
    got = engine.score(prompts, responses, domains).rewards
    want = {d: peft_logits(base, adapters[d], ROWS, 1)[:, 0] for d in adapters}
    assert np.abs(got - np.array([want[d][i] for i, d in enumerate(domains)])).max() <= BOUND


# --- bad input: refused by name, no bundle written -----------------------------------------------

def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def refused(spec: ImportSpec, out: Path, *words: str) -> None:
    with pytest.raises(ValueError) as info:
        import_bundle(spec, out)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert not out.exists()


def test_bad_models_are_refused_by_name(hf_root, tmp_path):
    good = tiny_reward_model("qwen2", hf_root)
    out = tmp_path / "out"
    two = tiny_reward_model("bert", hf_root, num_labels=2)
    refused(ImportSpec("baseline", (("g", two),)), out, "num_labels is 2", "config.json")
    remote = copy_model(good, tmp_path / "remote")
    edit_json(remote / "config.json", auto_map={"AutoModelForSequenceClassification": "modeling_x.Model"})
    refused(ImportSpec("baseline", (("g", remote),)), out, "remote code", "auto_map")
    no_tok = copy_model(good, tmp_path / "no-tok")
    (no_tok / "tokenizer.json").unlink()
    refused(ImportSpec("baseline", (("g", no_tok),)), out, "no tokenizer.json")
    arch = copy_model(tiny_reward_model("bert", hf_root), tmp_path / "arch")
    from transformers import FNetConfig
    (arch / "config.json").write_text(json.dumps({**FNetConfig(num_labels=1).to_dict(), "model_type": "fnet"}))
    refused(ImportSpec("baseline", (("g", arch),)), out, "fnet", "ONNX export config")
    from transformers import AutoConfig, AutoModelForCausalLM
    lm = copy_model(good, tmp_path / "lm")                 # a base LM: its score head would be random
    for f in lm.glob("*.safetensors"):
        f.unlink()
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(good)).save_pretrained(lm)
    refused(ImportSpec("baseline", (("g", lm),)), out, "no trained classification head", "score.weight")
    template = copy_model(good, tmp_path / "template")
    (template / "chat_template.jinja").write_text(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | upper }}<|im_end|>\n{% endfor %}")
    refused(ImportSpec("baseline", (("g", template),)), out, "chat_template.jinja", "cannot be reduced")


def test_bad_routes_and_adapters_are_refused_by_name(hf_root, arliss_parts, tmp_path):
    base, adapters, router = arliss_parts
    out = tmp_path / "out"
    clf = copy_model(tiny_reward_model("bert", hf_root, seed=3, num_labels=2), tmp_path / "router")
    edit_json(clf / "config.json", id2label={"0": "math", "1": "poetry"}, label2id={"math": 0, "poetry": 1})
    two = (("math", tiny_reward_model("qwen3", hf_root)), ("safety", tiny_reward_model("bert", hf_root)))
    refused(ImportSpec("rodos", two, router=clf), out, "id2label", "poetry")
    other_base = tiny_reward_model("llama", hf_root, seed=8)
    foreign = tiny_adapter(other_base, hf_root, "foreign", seed=9, r=2, alpha=2, targets=["q_proj", "up_proj"])
    refused(ImportSpec("arliss", (("math", adapters["math"]), ("code", foreign)), router=router, base=base), out,
            "foreign", "another base")
    headless = copy_model(adapters["code"], tmp_path / "headless")
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(headless / "adapter_model.safetensors"))
    save_file({k: v for k, v in tensors.items() if "lora_" in k}, str(headless / "adapter_model.safetensors"))
    refused(ImportSpec("arliss", (("math", adapters["math"]), ("code", headless)), router=router, base=base), out,
            "headless", "no classification head")


def test_a_role_the_template_does_not_know_is_named(hf_root, tmp_path):
    bundle = import_bundle(ImportSpec("baseline", (("g", tiny_reward_model("gemma2", hf_root)),)), tmp_path / "gemma")
    engine = RewardEngine.from_bundle(bundle)
    with pytest.raises(ValueError, match="'system'"):
        engine.score([SYSTEM_ROW[0]], [SYSTEM_ROW[1]])
    with pytest.raises(ValueError, match="'tool'"):
        engine.score([[{"role": "tool", "content": "x"}]], ["y"])


def test_reasoning_in_a_qwen3_answer_is_refused_not_misread(hf_root, tmp_path):
    bundle = import_bundle(ImportSpec("baseline", (("g", tiny_reward_model("qwen3", hf_root)),)), tmp_path / "q3")
    engine = RewardEngine.from_bundle(bundle)
    with pytest.raises(ValueError, match="response 0 holds '</think>'"):
        engine.score(["2+2?"], ["<think>add</think>4"])


def test_the_command_line_imports_and_names_bad_flags(hf_root, tmp_path, capsys):
    from export.to_onnx import main
    model = tiny_reward_model("llama", hf_root)
    assert main(["--from-hf", str(model), "--domain", "chat", "--out", str(tmp_path / "llama")]) == 0
    assert "baseline fp32 ->" in capsys.readouterr().out
    assert RewardEngine.from_bundle(tmp_path / "llama").domains == ("chat",)
    assert main(["--method", "rodos", "--domain-model", "math", "--router", str(model)]) == 2
    assert "--domain-model takes DOMAIN=DIR, got 'math'" in capsys.readouterr().err
    assert main(["--from-hf", str(model), "--method", "arliss"]) == 2
    assert "--from-hf imports one reward model" in capsys.readouterr().err
    assert main(["--method", "arliss", "--adapter", f"a={model}", "--router-adapter", str(model)]) == 2
    assert "--base names the base model" in capsys.readouterr().err


def test_vllm_classify_on_an_imported_bundle_reads_what_vllm_reads(hf_root, tmp_path):
    """``input`` (and TEI's one text): the conversation as the model's template wrote it, read as is;
    ``messages``: formatted here."""
    pytest.importorskip("uvicorn")
    from runtime.server import ServerConfig
    from test_server import Server, call
    model = tiny_reward_model("qwen3", hf_root)
    engine = RewardEngine.from_bundle(import_bundle(ImportSpec("baseline", (("g", model),)), tmp_path / "q3"), threads=1)
    conversation = [{"role": "user", "content": "Grüße! 2+2?"}, {"role": "assistant", "content": "4, sicher."}]
    text = AutoTokenizer.from_pretrained(model).apply_chat_template(conversation, tokenize=False)
    want = transformers_reward(model, conversation[:1], conversation[1:])
    server = Server(engine, ServerConfig(max_wait_ms=5))
    try:
        for body in ({"input": [text]}, {"messages": conversation}):
            status, out = call(server.url, "/v1/classify", {**body, "use_activation": False})
            assert status == 200, out
            assert out["data"][0]["probs"][0] == pytest.approx(want, abs=BOUND)
        status, out = call(server.url, "/", {"inputs": text, "raw_scores": True})    # TEI reads one text as is too
        assert status == 200, out
        assert out[0]["score"] == pytest.approx(want, abs=BOUND)
    finally:
        server.close()
