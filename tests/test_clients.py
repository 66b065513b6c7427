"""The real clients of the stacks the server and the integrations imitate, not only their request shapes.

* TRL's own ``GRPOTrainer`` runs a training step whose reward comes from
  ``runtime.integrations.trl.reward_func``, with a standard and a conversational dataset; a change in
  how TRL calls reward functions fails here rather than in a user's run.

A client's error is a test failure, never a skip.
"""
from __future__ import annotations

import functools

import numpy as np

import pytest
import torch

ROLE_TEMPLATE = (  # ChatML, as Qwen's tokenizers carry it: GRPO applies it to conversational prompts
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """A 1-layer random Llama policy over the vendored MiniLM vocabulary, with a chat template."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from models.base import default_base_model
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(default_base_model())
    tok.chat_template = ROLE_TEMPLATE
    tok.eos_token = tok.sep_token
    tok.model_input_names = tok.init_kwargs["model_input_names"] = ["input_ids", "attention_mask"]  # no segment ids
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, intermediate_size=32,
                                         max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                                         eos_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id))
    path = tmp_path_factory.mktemp("policy")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _prompts(conversational: bool) -> list:
    texts = ["poem verse question about rhyme", "recipe cook question about oven",
             "arithmetic sum question about number", "poem verse question about verse"]
    return [[{"role": "user", "content": t}] for t in texts] if conversational else texts


@pytest.mark.parametrize("conversational", [False, True], ids=["standard", "conversational"])
def test_grpo_trainer_step_scores_with_reward_func(tiny_policy, tiny_bundles, tmp_path, monkeypatch, conversational):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    import runtime.integrations.trl as routerm_trl
    monkeypatch.setenv("ROUTERM_BUNDLE", str(tiny_bundles["arliss"]))
    monkeypatch.delenv("ROUTERM_URL", raising=False)
    monkeypatch.setattr(routerm_trl, "_default", None)
    calls = []

    @functools.wraps(routerm_trl.reward_func)            # TRL logs a reward under its function's name
    def reward_func(prompts, completions, **kwargs):
        rewards = routerm_trl.reward_func(prompts, completions, **kwargs)
        calls.append({"prompts": prompts, "completions": completions, "kwargs": sorted(kwargs), "rewards": rewards})
        return rewards

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=6, max_steps=1, learning_rate=1e-4, logging_steps=1, report_to=[],
                      use_cpu=True, bf16=False, save_strategy="no", seed=0, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=str(tiny_policy), reward_funcs=[reward_func], args=args,
                          train_dataset=Dataset.from_dict({"prompt": _prompts(conversational)}))
    trainer.train()

    assert calls, "GRPOTrainer never called the reward function"
    call = calls[0]
    assert len(call["rewards"]) == len(call["prompts"]) == len(call["completions"]) == 4
    assert all(isinstance(r, float) for r in call["rewards"])
    assert {"completion_ids", "trainer_state"} <= set(call["kwargs"])
    if conversational:
        assert call["prompts"][0][0]["role"] == "user" and call["completions"][0][0]["role"] == "assistant"
    # what TRL logged is what the function returned: the reward reached the training step
    logged = [h for h in trainer.state.log_history if "rewards/reward_func/mean" in h]
    assert logged and logged[0]["rewards/reward_func/mean"] == pytest.approx(
        sum(call["rewards"]) / len(call["rewards"]), abs=1e-4)


# --- Text Embeddings Inference's clients: huggingface_hub.InferenceClient against POST / ------------
@pytest.fixture(scope="module")
def tei_server(tiny_bundles):
    pytest.importorskip("uvicorn")
    from runtime import RewardEngine
    from runtime.server import ServerConfig
    from test_server import Server
    engine = RewardEngine.from_bundle(tiny_bundles["rodos"], threads=1)
    server = Server(engine, ServerConfig(max_wait_ms=5, max_request_pairs=4))
    yield engine, server
    server.close()


@pytest.fixture
def hub_client(tei_server, monkeypatch):
    """The client as a TEI user builds it. huggingface_hub refuses every URL, loopback included, while
    HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set (the Makefile sets both): unset for its calls alone."""
    import huggingface_hub.constants as hub_constants
    from huggingface_hub import InferenceClient
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    return InferenceClient(model=tei_server[1].url, timeout=60)


def _sigmoid(x: float) -> float:
    import math
    return 1 / (1 + math.exp(-x))


def test_inference_client_text_classification_one_text(tei_server, hub_client):
    engine, _ = tei_server
    text = "recipe cook question about the oven"
    got = hub_client.text_classification(text)
    want = engine.score([text], [""])              # one text = a prompt with an empty response
    got = got if isinstance(got, list) else [got]
    assert [g.label for g in got] == [want.domains[0]]
    assert got[0].score == pytest.approx(_sigmoid(float(want.rewards[0])), abs=1e-5)


def test_inference_client_text_classification_several_texts(tei_server, hub_client):
    engine, _ = tei_server
    texts = ["poem verse question", "arithmetic sum question", "recipe cook question"]
    got = hub_client.text_classification(texts)   # TEI batches a list that is not a [prompt, response] pair
    want = engine.score(texts, [""] * len(texts))
    # the client returns the first row of a batch answer (parse_obj_as_list(...)[0])
    assert [g.label for g in got] == [want.domains[0]]
    assert got[0].score == pytest.approx(_sigmoid(float(want.rewards[0])), abs=1e-5)


def test_inference_client_pair_is_prompt_and_response(tei_server, hub_client):
    engine, _ = tei_server
    got = hub_client.text_classification(["poem verse question", "precise kind reply"])
    want = engine.score(["poem verse question"], ["precise kind reply"])
    got = got if isinstance(got, list) else [got]
    assert got[0].label == want.domains[0]
    assert got[0].score == pytest.approx(_sigmoid(float(want.rewards[0])), abs=1e-5)


@pytest.mark.parametrize("inputs, status, words", [
    ([f"text {i}" for i in range(9)], 413, "9 pairs in one request; the limit is 4"),
    ([], 422, "'inputs' is an empty list"),
])
def test_inference_client_shows_the_servers_error_message(hub_client, inputs, status, words):
    from huggingface_hub.errors import HfHubHTTPError
    with pytest.raises(HfHubHTTPError) as err:
        hub_client.text_classification(inputs)
    assert err.value.response.status_code == status
    assert words in str(err.value)                 # the server's message reaches the user, not a parse error


def test_inference_client_reads_info(tei_server, hub_client):
    engine, server = tei_server
    import json
    import urllib.request
    with urllib.request.urlopen(server.url + "/info", timeout=30) as response:
        info = json.loads(response.read())
    # the fields TEI's /info carries, which its clients and tooling read
    for field in ("model_id", "model_sha", "model_dtype", "model_type", "max_concurrent_requests",
                  "max_input_length", "max_batch_tokens", "max_batch_requests", "max_client_batch_size",
                  "auto_truncate", "tokenization_workers", "version"):
        assert field in info, field
    labels = info["model_type"]["classifier"]["id2label"]
    assert [labels[str(i)] for i in range(len(labels))] == list(engine.domains)
    assert info["max_input_length"] == engine.manifest.max_length
    assert info["max_client_batch_size"] == 4


def test_inference_client_shows_the_overload_message(tiny_bundles, monkeypatch):
    """429 from a full queue reaches the user as the client's error with the server's words."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import huggingface_hub.constants as hub_constants
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    from runtime import RewardEngine
    from runtime.server import ServerConfig
    from test_server import Server, SlowEngine, call
    slow = SlowEngine(RewardEngine.from_bundle(tiny_bundles["baseline"], threads=1))
    server = Server(slow, ServerConfig(max_queue_pairs=1, max_batch_pairs=1, max_wait_ms=0))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    try:
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(call, server.url, "/", {"inputs": "first"})
            assert slow.entered.wait(60), "the first request never reached the engine"
            queued = pool.submit(call, server.url, "/", {"inputs": "second"})
            deadline = time.monotonic() + 60
            while "routerm_queue_pairs 1" not in call(server.url, "/metrics")[1]:
                assert time.monotonic() < deadline, "the second request never filled the queue"
                time.sleep(0.05)
            with pytest.raises(HfHubHTTPError) as err:
                InferenceClient(model=server.url, timeout=60).text_classification("third")
            assert err.value.response.status_code == 429
            assert "queue" in str(err.value).lower()
            slow.release.set()
            assert [running.result()[0], queued.result()[0]] == [200, 200]
    finally:
        slow.release.set()
        server.close()


# --- vLLM's classification dialect: the request bodies as vLLM's documentation shows them ----------
VLLM_INPUT = ["Loved the new café—coffee was great.", "This update broke everything. Frustrating."]


def test_vllm_classify_completion_form(tei_server):
    from test_server import call
    engine, server = tei_server
    name = engine.manifest.path.name
    for route in ("/classify", "/v1/classify"):
        status, out = call(server.url, route, {"model": name, "input": VLLM_INPUT})
        assert status == 200, out
        want = engine.score(VLLM_INPUT, ["", ""])
        assert out["object"] == "list" and out["model"] == name and out["id"].startswith("classify-")
        assert [d["index"] for d in out["data"]] == [0, 1]
        assert [d["label"] for d in out["data"]] == list(want.domains)
        assert [d["num_classes"] for d in out["data"]] == [1, 1]
        np.testing.assert_allclose([d["probs"][0] for d in out["data"]],
                                   [_sigmoid(float(r)) for r in want.rewards], atol=1e-5)
        from core.text import encode_pairs     # the tokens the reward graph read, counted independently
        read = encode_pairs(engine.tokenizer, VLLM_INPUT, ["", ""], engine.manifest.max_length, engine.truncation)
        assert out["usage"]["prompt_tokens"] == out["usage"]["total_tokens"] == \
            sum(len(e.input_ids) for e in read) > 0


def test_vllm_classify_one_string_a_domain_as_model_and_raw_scores(tei_server):
    from test_server import call
    engine, server = tei_server
    domain = engine.domains[1]
    status, out = call(server.url, "/classify", {"model": domain, "input": VLLM_INPUT[0], "use_activation": False})
    assert status == 200, out
    want = engine.score([VLLM_INPUT[0]], [""], [domain])
    assert out["model"] == domain and out["data"][0]["label"] == domain
    assert out["data"][0]["probs"][0] == pytest.approx(float(want.rewards[0]), abs=1e-5)


def test_vllm_classify_messages_form_judges_the_last_assistant_turn(tei_server):
    from test_server import call
    engine, server = tei_server
    messages = [{"role": "user", "content": "poem verse question"}, {"role": "assistant", "content": "precise kind reply"}]
    status, out = call(server.url, "/v1/classify", {"model": engine.manifest.path.name, "messages": messages})
    assert status == 200, out
    want = engine.score(["Human: poem verse question"], ["precise kind reply"])
    assert out["data"][0]["label"] == want.domains[0]
    assert out["data"][0]["probs"][0] == pytest.approx(_sigmoid(float(want.rewards[0])), abs=1e-5)


def test_vllm_models_lists_the_names_classify_accepts(tei_server):
    from test_server import call
    engine, server = tei_server
    status, out = call(server.url, "/v1/models")
    assert status == 200 and out["object"] == "list"
    assert [m["id"] for m in out["data"]] == [engine.manifest.path.name, *engine.domains]


@pytest.mark.parametrize("body, status, words", [
    ({"model": "no-such-model", "input": "x"}, 404, "The model `no-such-model` does not exist"),
    ({"input": []}, 400, "non-empty list of strings"),
    ({"input": [f"t{i}" for i in range(9)]}, 413, "9 pairs in one request; the limit is 4"),
    ({"messages": [{"role": "user", "content": "q"}]}, 400, "the last message must be the assistant's"),
    ({"messages": [{"role": "user"}]}, 400, "field 'messages' message 0 has no 'content' string"),
])
def test_vllm_errors_in_openai_shape(tei_server, body, status, words):
    from test_server import call
    got_status, out = call(tei_server[1].url, "/classify", body)
    assert got_status == status
    assert words in out["error"]["message"] and out["error"]["code"] == status
