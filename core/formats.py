"""How a row as users hold it becomes the token ids one graph reads.

A row is a (prompt, response) pair; each side is a string or a list of chat messages
(``[{"role", "content"}]``, the way TRL passes conversational data). A graph reads rows in one of
two formats, fixed by the tokenizer of its bundle part (core.manifest):

* **chat** (the tokenizer came with a chat template, reduced at export to ``core.chat.ChatFormat``):
  the prompt's messages (a string prompt is one user turn), then the response as an assistant turn,
  written as the template writes them and tokenized without adding special tokens (the template
  writes those), which is what ``apply_chat_template(..., tokenize=True)`` gives a decoder reward
  model. A row longer than ``max_length`` is cut as a pair under the bundle's truncation policy
  (core.text.truncate_pair): the text before the response content is the prompt, the rest (content,
  end of turn) the response, so the end-of-turn token a decoder pools is kept.
* **pair** (no template: RouteRM-trained bundles and imported encoders): prompt and response as the
  tokenizer's text pair (core.text.encode_pairs); messages are flattened to ``Human:`` /
  ``Assistant:`` turns first (core.chat.flatten), as RouteRM's preference data is written.

The router reads the prompt alone: in chat format its messages as the template writes them (its
start cut when too long), in pair format the flattened text with the tokenizer's special tokens
(core.text.encode_prompts). numpy-free and torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.chat import ChatFormat, conversation, flatten
from core.text import TRUNCATION_POLICY, Encoded, encode_pairs, encode_prompts, truncate_pair

Row = str | list   # a text, or chat messages [{"role", "content"}]


class Formatted(str):
    """A whole conversation as text its model's chat template already wrote (vLLM's ``/classify``
    ``input``: RLHF stacks format with the reward model's template and send the text). A chat-format
    graph reads it as is (no template, no special tokens added; a long one keeps its end, which a
    decoder pools); a pair-format graph reads it as a prompt with an empty response, like any text."""


@dataclass(frozen=True)
class TextFormat:
    """How one graph reads text: its tokenizer, token budget, truncation policy, chat format, pad id.

    ``tokenizer``: a Hugging Face fast tokenizer (export) or runtime.tokenizer.BundleTokenizer
    (serving); ``pad_id``: what rows are padded with (a decoder's ``config.pad_token_id``: its
    graph finds each row's last token by it).
    """

    tokenizer: Any
    max_length: int
    pad_id: int
    policy: str = TRUNCATION_POLICY
    chat: ChatFormat | None = None

    @property
    def types(self) -> bool:
        return "token_type_ids" in self.tokenizer.model_input_names


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]


def _encoded(fmt: TextFormat, ids: list[int]) -> Encoded:
    return Encoded(ids, [0] * len(ids) if fmt.types else None)


def encode_rows(fmt: TextFormat, prompts: list[Row], responses: list[Row]) -> list[Encoded]:
    """Unpadded ids per (prompt, response) row, in ``fmt``'s format (module docstring)."""
    if fmt.chat is None:
        return encode_pairs(fmt.tokenizer, [flatten(p, "prompt") for p in prompts],
                            [flatten(r, "response") for r in responses], fmt.max_length, fmt.policy)
    split = [_chat_split(fmt.chat, i, p, r) for i, (p, r) in enumerate(zip(prompts, responses))]
    ids = _ids(fmt.tokenizer, [head + tail for head, tail in split])
    long = [i for i, row in enumerate(ids) if len(row) > fmt.max_length]
    if long:   # cut as a pair: the text before the response content, and the rest
        parts = _ids(fmt.tokenizer, [text for i in long for text in split[i]])
        for k, i in enumerate(long):
            head, tail = truncate_pair(parts[2 * k], parts[2 * k + 1], fmt.max_length, fmt.policy)
            ids[i] = head + tail
    return [_encoded(fmt, row) for row in ids]


def _chat_split(chat: ChatFormat, i: int, prompt: Row, response: Row) -> tuple[str, str]:
    """Row ``i`` as (text before the response content, the rest). A :class:`Formatted` prompt is
    already the whole conversation: all of it is prompt text, so a long one keeps its end."""
    if isinstance(prompt, Formatted):
        return prompt + flatten(response, "response"), ""
    prompt_msgs, response_msgs = conversation(prompt, response)
    _check_think(chat, i, response_msgs)
    return chat.render_pair(prompt_msgs, response_msgs)


THINK_END = "</think>"


def _check_think(chat: ChatFormat, i: int, messages: list[dict]) -> None:
    """Refuse what the reduced template would write otherwise than Jinja: a template that writes an
    empty think block before the final answer (Qwen3) moves text before a ``</think>`` in that answer
    into the block, which fixed text cannot do."""
    last = chat.last_assistant
    if last is not None and THINK_END in last.prefix and messages and messages[-1]["role"] == "assistant" \
            and THINK_END in messages[-1]["content"]:
        raise ValueError(f"response {i} holds '{THINK_END}': this model's chat template moves the reasoning "
                         f"before it into a think block, which RouteRM's fixed-text template does not "
                         f"reproduce; score the final answer without its reasoning")


def encode_router_prompts(fmt: TextFormat, prompts: list[Row]) -> list[Encoded]:
    """Unpadded ids of each prompt alone, the router's input (module docstring)."""
    if fmt.chat is None:
        return encode_prompts(fmt.tokenizer, [flatten(p, "prompt") for p in prompts], fmt.max_length)
    texts = [p if isinstance(p, Formatted) else fmt.chat.render(conversation(p, "")[0]) for p in prompts]
    return [_encoded(fmt, ids[len(ids) - fmt.max_length:] if len(ids) > fmt.max_length else ids)
            for ids in _ids(fmt.tokenizer, texts)]


def row_key(row: Row):
    """A hashable key of a row side (identical prompts are routed once)."""
    return row if isinstance(row, str) else tuple((m["role"], m["content"]) for m in row)
