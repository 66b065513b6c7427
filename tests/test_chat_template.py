"""Chat templates reduced to fixed text (export.chat_template) and applied without Jinja (core.chat).

The templates are written here the way the real families' tokenizers carry them (tools left out),
on real fast tokenizers built offline; every reduction is checked against
``apply_chat_template`` on conversations the export battery does not hold.
"""
from __future__ import annotations

import functools
import json
import random

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from core.chat import ChatFormat, RoleFormat, check_messages, conversation, flatten
from core.errors import BundleError
from export.chat_template import TemplateError, reduce_template

QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant' and not message.tool_calls) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")

LLAMA31 = (  # the first system turn goes into a header with dates; later turns as Llama 3's
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")

GEMMA2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}")

QWEN3 = (
    "{%- if messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}"
    "{%- for message in messages[::-1] %}"
    "{%- set index = (messages|length - 1) - loop.index0 %}"
    "{%- if ns.multi_step_tool and message.role == 'user' and message.content is string and not"
    " (message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}"
    "{%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- for message in messages %}"
    "{%- if message.content is string %}{%- set content = message.content %}{%- else %}{%- set content = '' %}"
    "{%- endif %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{%- set reasoning_content = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_query_index %}"
    "{%- if loop.last or (not loop.last and reasoning_content) %}"
    "{{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n'"
    " + content.lstrip('\\n') }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + content }}{%- endif %}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + content }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")

# name: (template, bos, eos, special tokens)
CHATML = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
LLAMA = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
FAMILIES = {
    "qwen2.5": (QWEN25, None, "<|im_end|>", CHATML),
    "llama3": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", LLAMA),
    "llama3.1": (LLAMA31, "<|begin_of_text|>", "<|eot_id|>", LLAMA),
    "gemma2": (GEMMA2, "<bos>", "<eos>", ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]),
    "qwen3": (QWEN3, None, "<|im_end|>", CHATML),
}
SENTENCES = ["the answer is four", "a short poem about rain", "you are a helpful assistant", "why is the sky blue"]


def make_tokenizer(template: str | None, bos: str | None = None, eos: str | None = None,
                   specials: tuple[str, ...] = ()) -> PreTrainedTokenizerFast:
    """A WordLevel fast tokenizer over SENTENCES' words plus the family's special tokens."""
    words = sorted({w for s in SENTENCES for w in s.split()})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]", *words])}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token=bos, eos_token=eos)
    fast.add_special_tokens({"additional_special_tokens": list(specials)})
    fast.chat_template = template
    return fast


@functools.cache
def family(name: str) -> tuple[PreTrainedTokenizerFast, ChatFormat]:
    template, bos, eos, specials = FAMILIES[name]
    tok = make_tokenizer(template, bos, eos, tuple(specials))
    return tok, reduce_template(tok, f"/models/{name}/chat_template.jinja")


def apply(tok, messages) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)


def fresh_text(rng: random.Random) -> str:
    """Contents unlike the export battery's: words, odd whitespace, scripts, special-token look-alikes."""
    pieces = ["rain", "Ünïcödé", "ありがとう", "مرحبا", "🦀🚀", "<|eot_id|>", "<end_of_turn>", "{{ messages }}",
              "%}", "\r\n", "\n", "  ", "\t", "x" * 40, "<think>", "Q&A", "\\n"]
    return "".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randrange(0, 7)))


def fresh_conversations(seed: int, system: bool) -> list[list[dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(12):
        turns = rng.randrange(1, 8)                     # ends with the user or the assistant
        msgs = [{"role": ("user", "assistant")[k % 2], "content": fresh_text(rng)} for k in range(turns)]
        if system and rng.random() < 0.5:
            msgs.insert(0, {"role": "system", "content": fresh_text(rng)})
        out.append(msgs)
    return out


@pytest.mark.parametrize("seed", [3, 17, 2024])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_reduced_render_equals_apply_chat_template_on_fresh_conversations(name, seed):
    tok, fmt = family(name)
    conversations = fresh_conversations(seed, system="system" in fmt.roles)
    for msgs in conversations:
        assert fmt.render(msgs) == apply(tok, msgs), msgs


@pytest.mark.parametrize("name", list(FAMILIES))
def test_reductions_are_what_the_families_write(name):
    _, fmt = family(name)
    expected_roles = ["user", "assistant"] if name == "gemma2" else ["system", "user", "assistant"]
    assert list(fmt.roles) == expected_roles
    if name == "qwen3":
        assert fmt.last_assistant == RoleFormat("<|im_start|>assistant\n<think>\n\n</think>\n\n", "<|im_end|>\n",
                                                "lstrip-newlines")
        assert fmt.roles["assistant"] == RoleFormat("<|im_start|>assistant\n", "<|im_end|>\n", "as-is")
    else:
        assert fmt.last_assistant is None
    if name == "qwen2.5":
        assert fmt.start == "" and fmt.start_without_system.startswith("<|im_start|>system\nYou are Qwen")
    if name == "llama3":
        assert fmt.start == fmt.start_without_system == "<|begin_of_text|>"
        assert fmt.roles["user"] == RoleFormat("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>", "strip")
    if name == "gemma2":
        assert fmt.roles["assistant"] == RoleFormat("<start_of_turn>model\n", "<end_of_turn>\n", "strip")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_render_pair_splits_at_the_response_content(name):
    tok, fmt = family(name)
    head = [{"role": "system", "content": "Be brief."}] if "system" in fmt.roles else []
    prompt = head + [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                     {"role": "user", "content": "Sum 2+2?"}]
    response = [{"role": "assistant", "content": "\n\nIt is 4.  "}]
    before, after = fmt.render_pair(prompt, response)
    assert before + after == fmt.render(prompt + response) == apply(tok, prompt + response)
    body = (fmt.last_assistant or fmt.roles["assistant"]).body(response[0]["content"])
    assert after.startswith(body) and body.strip() == "It is 4."
    assert before.endswith((fmt.last_assistant or fmt.roles["assistant"]).prefix)
    assert before.count("Sum 2+2?") == 1 and "It is 4." not in before


def test_render_pair_with_several_response_messages():
    _, fmt = family("qwen3")
    prompt, response = conversation("Q", [{"role": "assistant", "content": "A1"},
                                          {"role": "user", "content": "more?"},
                                          {"role": "assistant", "content": "A2"}])
    before, after = fmt.render_pair(prompt, response)
    assert before == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    assert after.startswith("A1<|im_end|>\n") and after.endswith("</think>\n\nA2<|im_end|>\n")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_to_dict_from_dict_round_trip_is_exact(name):
    _, fmt = family(name)
    text = json.dumps(fmt.to_dict())
    back = ChatFormat.from_dict(json.loads(text), "manifest.json")
    assert back == fmt and back.to_dict() == fmt.to_dict()


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("start"), "'start'"),
    (lambda d: d.update(start=3), "'start'"),
    (lambda d: d.update(roles=[]), "'roles'"),
    (lambda d: d["roles"].pop("assistant"), "'assistant'"),
    (lambda d: d["roles"]["user"].update(prefix=None), "'roles.user.prefix'"),
    (lambda d: d["roles"]["user"].update(content="upper"), "'roles.user.content'"),
    (lambda d: d["roles"]["user"].pop("suffix"), "'roles.user.suffix'"),
    (lambda d: d.update(last_assistant={"prefix": "", "suffix": ""}), "'last_assistant.content'"),
    (lambda d: d.update(extra=1), "'extra'"),
])
def test_from_dict_names_the_broken_field(mutate, field):
    d = family("qwen3")[1].to_dict()
    mutate(d)
    with pytest.raises(BundleError, match=f"^bundle/manifest.json: .*{field}"):
        ChatFormat.from_dict(d, "bundle/manifest.json")


def test_from_dict_refuses_a_non_object():
    with pytest.raises(BundleError, match="bundle/manifest.json: the chat template must be a JSON object, got list"):
        ChatFormat.from_dict([], "bundle/manifest.json")


def test_gemma2_has_no_system_role():
    tok, fmt = family("gemma2")
    assert "system" not in fmt.roles
    with pytest.raises(ValueError, match="message 0 has role 'system', which this model's chat template does not "
                                         r"know \(it knows: user, assistant\)"):
        fmt.render([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}])


def test_unknown_role_and_late_system_turn_are_refused():
    _, fmt = family("qwen2.5")
    with pytest.raises(ValueError, match=r"message 1 has role 'tool', .*\(it knows: system, user, assistant\)"):
        fmt.render([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}])
    with pytest.raises(ValueError, match="message 2 is a system turn"):
        fmt.render_pair([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                        [{"role": "system", "content": "c"}])


@pytest.mark.parametrize("template, why", [
    ("{% for m in messages %}<|im_start|>{{ m.role }} {{ loop.index }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
     "does not end with"),
    ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | upper }}<|im_end|>\n{% endfor %}",
     "'Qz0xRvK' is written 0 times"),
    ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | replace('{{', '') }}<|im_end|>\n"
     "{% endfor %}", "the texts first differ at character"),
    ("{% for m in messages %}[{{ m.role }}]{{ m.content.rstrip() }}\n{% endfor %}",
     "none of as-is, strip, lstrip-newlines gives"),
    ("{% if messages|length > 2 %}{{ raise_exception('two turns at most') }}{% endif %}"
     "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", "two turns at most"),
], ids=["loop-index", "upper", "content-dependent", "rstrip", "raises"])
def test_irreducible_template_is_refused_naming_its_file(template, why):
    tok = make_tokenizer(template, specials=("<|im_start|>", "<|im_end|>"))
    with pytest.raises(TemplateError) as info:
        reduce_template(tok, "/models/odd/chat_template.jinja")
    message = str(info.value)
    assert message.startswith("/models/odd/chat_template.jinja: the chat template cannot be reduced to fixed "
                              "text per role (")
    assert why in message


def test_no_template_gives_none():
    assert reduce_template(make_tokenizer(None), "x") is None
    assert reduce_template(make_tokenizer(""), "x") is None


def test_check_messages():
    msgs = [{"role": "user", "content": "a", "name": "extra"}]
    assert check_messages(msgs, "prompt") == [{"role": "user", "content": "a"}]
    with pytest.raises(TypeError, match="prompt must be a list of"):
        check_messages("a", "prompt")
    with pytest.raises(ValueError, match="prompt has no messages"):
        check_messages([], "prompt")
    with pytest.raises(TypeError, match="prompt message 1 must be a {'role', 'content'} dict, got str"):
        check_messages([{"role": "user", "content": "a"}, "b"], "prompt")
    with pytest.raises(ValueError, match="prompt message 2 has no 'content' string"):
        check_messages([{"role": "user", "content": "a"}] * 2 + [{"role": "user"}], "prompt")
    with pytest.raises(TypeError, match=r"response message 0 has no 'role' string \(got int\)"):
        check_messages([{"role": 1, "content": "a"}], "response")


def test_conversation():
    assert conversation("Q", "A") == ([{"role": "user", "content": "Q"}], [{"role": "assistant", "content": "A"}])
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert conversation(chat, [{"role": "assistant", "content": "A"}]) == (chat, [{"role": "assistant",
                                                                                   "content": "A"}])
    with pytest.raises(TypeError, match="response must be a string or a list of"):
        conversation("Q", None)
    with pytest.raises(ValueError, match="response has no messages"):
        conversation("Q", [])
    with pytest.raises(TypeError, match="prompt message 0 has no 'content' string"):
        conversation([{"role": "user", "content": None}], "A")


def test_flatten():
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "A"}, {"role": "tool", "content": "T"}]
    assert flatten("plain", "prompt") == "plain"
    assert flatten(chat, "prompt") == "System: S\n\nHuman: Q\n\nAssistant: A\n\nTool: T"
    assert flatten(chat, "completion") == flatten(chat, "response") == "S\n\nQ\n\nA\n\nT"
    with pytest.raises(TypeError, match="completion must be a string or a list of .* got int"):
        flatten(3, "completion")
    with pytest.raises(TypeError, match="prompt must be a string or a list of .* got list"):
        flatten([{"role": "user"}], "prompt")
