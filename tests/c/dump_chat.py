"""Reference chat formatting from Python (core.chat, core.formats), for the C library's test_chat.

    python tests/c/dump_chat.py --out FILE [--save-tokenizer DIR]

Writes one JSON object a line, each with a ``case``:

* ``format``: ``{"name", "template"}``, a reduced chat template as the manifest stores it: what
  export.chat_template.reduce_template gives for tests/hf_tiny.py's templates (Llama 3, Qwen2
  ChatML, Qwen3 with its think block, Gemma 2 without a system role; tests/test_chat_template.py
  checks those reductions), and a made-up one (a third role, "strip" on the last assistant turn);
* ``render`` (``messages`` -> ``text``), ``render_pair`` (``prompt``, ``response`` -> ``head``,
  ``tail``), ``split`` (core.formats._chat_split of row ``index``: ``prompt``/``response`` are texts
  or messages -> ``head``, ``tail``), ``router`` (``prompt`` -> the rendered router ``text``): each
  with ``error``, Python's ValueError message, instead of the output when Python refuses (unknown
  role, system turn not first, "</think>" in a Qwen3 response, empty messages);
* ``flatten`` (``row``, ``response`` -> ``text``): core.chat.flatten, prompt or response side;
* ``from_json`` (``template`` -> ``error``): a malformed template and ChatFormat.from_dict's
  BundleError message (``where`` is WHERE);
* ``encode`` (``format`` or null, ``max_length``, ``policy``, ``prompt``, ``response`` -> ``ids``,
  ``types``) and ``encode_router`` (``prompt`` -> ``ids``, ``types``): core.formats.encode_rows /
  encode_router_prompts with the all-MiniLM-L6-v2 tokenizer (saved in --save-tokenizer's folder),
  in chat format (short max_lengths, so rows are cut as pairs) and pair format (``format`` null).

Contents mix every code point Python's str.strip() removes with look-alikes it keeps (U+200B,
U+180E, U+FEFF), newlines, non-ASCII text and template-like text.
"""
from __future__ import annotations

import argparse
import copy
import json
import random
from pathlib import Path

from core.chat import ChatFormat, conversation, flatten
from core.errors import BundleError
from core.formats import TextFormat, _chat_split, encode_router_prompts, encode_rows
from core.text import HEAD_TAIL, KEEP_HEAD

WHERE = "bundle/manifest.json: tokenizer.chat_template"


def _role(prefix: str, suffix: str, content: str) -> dict:
    return {"prefix": prefix, "suffix": suffix, "content": content}


_LLAMA_HEADER = "<|start_header_id|>{}<|end_header_id|>\n\n"
_IM = "<|im_start|>{}\n"
_QWEN_SYSTEM = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
_ALL = ("system", "user", "assistant")
FORMATS = {
    "llama": {"start": "<|begin_of_text|>", "start_without_system": "<|begin_of_text|>",
              "roles": {r: _role(_LLAMA_HEADER.format(r), "<|eot_id|>", "strip") for r in _ALL},
              "last_assistant": None},
    "qwen2": {"start": "", "start_without_system": _QWEN_SYSTEM,
              "roles": {r: _role(_IM.format(r), "<|im_end|>\n", "as-is") for r in _ALL},
              "last_assistant": None},
    "qwen3": {"start": "", "start_without_system": "",
              "roles": {r: _role(_IM.format(r), "<|im_end|>\n", "as-is") for r in _ALL},
              "last_assistant": _role("<|im_start|>assistant\n<think>\n\n</think>\n\n", "<|im_end|>\n",
                                      "lstrip-newlines")},
    "gemma2": {"start": "<bos>", "start_without_system": "<bos>",
               "roles": {"user": _role("<start_of_turn>user\n", "<end_of_turn>\n", "strip"),
                         "assistant": _role("<start_of_turn>model\n", "<end_of_turn>\n", "strip")},
               "last_assistant": None},
    # not a family's: roles in another order, a third role, no text between turns, strip on the last turn
    "made-up": {"start": "[S]", "start_without_system": "",
                "roles": {"assistant": _role("", "", "lstrip-newlines"), "tool": _role("<tool>", "</tool>", "as-is"),
                          "user": _role("", "|", "strip"), "system": _role("sys:", "\n", "as-is")},
                "last_assistant": _role("<final></think>", "", "strip")},
}

_SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]
_PIECES = ["rain", "Ünïcödé", "ありがとう", "مرحبا", "🦀🚀", "<|eot_id|>", "<think>", "{{ messages }}", "\r\n",
           "\n\n", "\u200b", "\u180e", "\ufeff", "x" * 30, "Q&A", "\\n", "a.b"]
_ROLES = ["user", "assistant", "system", "tool", "développeur", ""]


def _text(rng: random.Random) -> str:
    edge = lambda: "".join(rng.choice(_SPACES) for _ in range(rng.randrange(0, 3)))
    words = [rng.choice(_PIECES) + rng.choice(["", " ", rng.choice(_SPACES)]) for _ in range(rng.randrange(0, 5))]
    text = edge() + "".join(words) + edge()
    return text + "</think>tail" if rng.random() < 0.08 else text


def _messages(rng: random.Random, n: int, odd: float) -> list[dict]:
    """n messages alternating from a user turn (maybe a system turn first); `odd`: chance of any role."""
    out = [{"role": ("user", "assistant")[k % 2], "content": _text(rng)} for k in range(n)]
    if rng.random() < 0.4:
        out.insert(0, {"role": "system", "content": _text(rng)})
    for m in out:
        if rng.random() < odd:
            m["role"] = rng.choice(_ROLES)
    return out


def _side(rng: random.Random, role: str) -> str | list:
    """A row side: a text, or messages (sometimes none)."""
    pick = rng.random()
    if pick < 0.3:
        return _text(rng)
    if pick < 0.35:
        return []
    msgs = _messages(rng, rng.randrange(1, 4), 0.05)
    if role == "assistant" and rng.random() < 0.7:
        msgs = [m for m in msgs if m["role"] != "system"] or msgs
        msgs[-1]["role"] = "assistant"
    return msgs


def _attempt(record: dict, make) -> dict:
    try:
        record.update(make())
    except ValueError as exc:
        record["error"] = str(exc)
    return record


def chat_cases(name: str, fmt: ChatFormat, rng: random.Random) -> list[dict]:
    out = []
    for _ in range(60):
        msgs = _messages(rng, rng.randrange(1, 6), 0.1)
        out.append(_attempt({"case": "render", "format": name, "messages": msgs}, lambda: {"text": fmt.render(msgs)}))
        if len(msgs) > 1:
            cut = rng.randrange(1, len(msgs))
            p, r = msgs[:cut], msgs[cut:]
            out.append(_attempt({"case": "render_pair", "format": name, "prompt": p, "response": r},
                                lambda: dict(zip(("head", "tail"), fmt.render_pair(p, r)))))
        p, r, i = _side(rng, "user"), _side(rng, "assistant"), rng.randrange(0, 9)
        out.append(_attempt({"case": "split", "format": name, "index": i, "prompt": p, "response": r},
                            lambda: dict(zip(("head", "tail"), _chat_split(fmt, i, p, r)))))
        out.append(_attempt({"case": "router", "format": name, "prompt": p},
                            lambda: {"text": fmt.render(conversation(p, "")[0])}))
    for msgs in ([], [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]):
        out.append(_attempt({"case": "render", "format": name, "messages": msgs}, lambda: {"text": fmt.render(msgs)}))
    out.append(_attempt({"case": "render_pair", "format": name, "prompt": [{"role": "user", "content": "q"}],
                         "response": []}, lambda: {"head": fmt.render_pair([{"role": "user", "content": "q"}], [])}))
    out.append(_attempt({"case": "split", "format": name, "index": 7, "prompt": "q", "response": " a </think> b"},
                        lambda: dict(zip(("head", "tail"), _chat_split(fmt, 7, "q", " a </think> b")))))
    return out


def flatten_cases(rng: random.Random) -> list[dict]:
    out = []
    roles = ["user", "assistant", "system", "tool", "tool_call", "gpt4o", "data-analyst", "", "iPython", "A B c"]
    for _ in range(80):
        row = _text(rng) if rng.random() < 0.2 else [{"role": rng.choice(roles), "content": _text(rng)}
                                                     for _ in range(rng.randrange(0, 4))]
        for response in (False, True):
            out.append({"case": "flatten", "row": row, "response": response,
                        "text": flatten(row, "response" if response else "prompt")})
    return out


_BROKEN = [lambda d: d.pop("start"), lambda d: d.update(start=3), lambda d: d.update(start_without_system=2.5),
           lambda d: d.update(roles=[]), lambda d: d.update(roles=None), lambda d: d["roles"].pop("assistant"),
           lambda d: d["roles"].pop("user"), lambda d: d.update(roles={}),
           lambda d: d["roles"]["user"].update(prefix=None), lambda d: d["roles"]["user"].update(suffix=True),
           lambda d: d["roles"]["user"].update(content="upper"), lambda d: d["roles"]["user"].pop("suffix"),
           lambda d: d["roles"]["user"].update(extra=""), lambda d: d["roles"].update(tool="x"),
           lambda d: d["roles"].update({"it's": 1}), lambda d: d.update(last_assistant={"prefix": "", "suffix": ""}),
           lambda d: d.update(last_assistant=[]), lambda d: d.update(extra=1), lambda d: d.pop("last_assistant")]


def from_json_cases() -> list[dict]:
    out = []
    for template in [[], "x", None] + [m for m in _BROKEN]:
        if callable(template):
            d = copy.deepcopy(FORMATS["qwen3"])
            template(d)
            template = d
        try:
            ChatFormat.from_dict(template, WHERE)
        except BundleError as exc:
            out.append({"case": "from_json", "template": template, "error": str(exc)})
            continue
        raise SystemExit(f"ChatFormat.from_dict took a malformed template: {template}")
    return out


def encode_cases(tok, chats: dict[str, ChatFormat], rng: random.Random) -> list[dict]:
    """Valid rows through encode_rows / encode_router_prompts, in chat and pair format."""
    rows = []
    while len(rows) < 40:
        p, r = _side(rng, "user"), _side(rng, "assistant")
        if all(_attempt({}, lambda: dict(zip("ht", _chat_split(c, 0, p, r)))).get("error") is None
               for c in chats.values()):
            rows.append((p, r))
    prompts, responses = [p for p, _ in rows], [r for _, r in rows]
    out = []
    for name in [*chats, None]:
        for max_length, policy in [(12, HEAD_TAIL), (24, KEEP_HEAD), (64, HEAD_TAIL)]:
            fmt = TextFormat(tok, max_length, tok.pad_token_id, policy, None if name is None else chats[name])
            for p, r, e in zip(prompts, responses, encode_rows(fmt, prompts, responses)):
                out.append({"case": "encode", "format": name, "max_length": max_length, "policy": policy,
                            "prompt": p, "response": r, "ids": e.input_ids, "types": e.token_type_ids})
            for p, e in zip(prompts, encode_router_prompts(fmt, prompts)):
                out.append({"case": "encode_router", "format": name, "max_length": max_length, "prompt": p,
                            "ids": e.input_ids, "types": e.token_type_ids})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--save-tokenizer", default=None, help="write encode cases with all-MiniLM-L6-v2's tokenizer, "
                                                           "saved here for the C test")
    args = ap.parse_args()
    rng = random.Random(20240611)
    chats = {name: ChatFormat.from_dict(d, WHERE) for name, d in FORMATS.items()}
    lines = [{"case": "format", "name": name, "template": d} for name, d in FORMATS.items()]
    for name, fmt in chats.items():
        lines += chat_cases(name, fmt, rng)
    lines += flatten_cases(rng) + from_json_cases()
    if args.save_tokenizer:
        from models.base import default_base_model, load_tokenizer   # transformers: only for the encode cases
        tok = load_tokenizer(default_base_model())
        tok.save_pretrained(args.save_tokenizer)
        lines += encode_cases(tok, chats, rng)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    errors = {}
    for line in lines:
        if "error" in line:
            errors[line["case"]] = errors.get(line["case"], 0) + 1
    print(f"{out}: {len(lines)} cases; refusals per case: {errors}")


if __name__ == "__main__":
    main()
