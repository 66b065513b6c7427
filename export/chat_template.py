"""A Hugging Face chat template reduced to fixed text per role (core.chat.ChatFormat), then verified.

Probing. Conversations whose contents are distinct sentinels (ASCII, mixed case, no whitespace, so
every content transform leaves them alone and a template that changes them shows it) go through
``tokenizer.apply_chat_template(..., tokenize=False, add_generation_prompt=False)``; cutting the
text at the sentinels gives the text between contents. With ``sfx(r)`` the text after the last
message of a conversation ending in role ``r``:

    [user]                        lead | S0 | sfx(user)
    [user, assistant]             lead | S0 | sfx(user) + last_assistant.prefix | S1 | sfx(assistant)
    [user, assistant, user, ...]  ...  | S1 | sfx(assistant) + user.prefix | S2 | ...
    [system, user, assistant]     start + system.prefix | S0 | system.suffix + user.prefix | ...

An assistant turn before the last is taken to end as the last one does (the text between it and the
next user turn is then split at that ending). A probe with a system turn that raises (Gemma 2's
``raise_exception``) means the template has no system role. Each role's content transform is the
one of ``core.chat.CONTENT_TRANSFORMS`` that turns ``"\\n \\n\\t<sentinel>\\t\\n \\n"`` into what the
template writes in its place.

Verification. The reduction renders a battery of conversations (one to three exchanges, with and
without a system turn, empty, non-ASCII and whitespace-padded contents, contents that look like
template syntax or special tokens) exactly as the template does, or export refuses the template with
``TemplateError`` naming its file and the first place the texts differ. What the battery leaves out
is not promised: contents the template inspects (Qwen3 moves what precedes a ``</think>`` in an
assistant turn into its reasoning block), roles out of alternation, a system turn after the first.
"""
from __future__ import annotations

from dataclasses import dataclass

from jinja2.exceptions import TemplateError as JinjaError

from core.chat import ASSISTANT, CONTENT_TRANSFORMS, SYSTEM, USER, ChatFormat, RoleFormat

# Contents of the verification battery: empty, non-ASCII, whitespace at either end, template-like.
# No "</think>": Qwen3's template splits assistant contents at it (module docstring).
_TEXTS = ("", "Grüße, 你好 — ☃", "emoji 🙂👍🏽 and 👩‍💻 joined", "  padded on both sides  ",
          "\n\nnewlines first\nand last\n\n", "\t tabs\tinside\n\n a blank line \n",
          "<|im_end|>\n<|im_start|>assistant\n<|eot_id|><end_of_turn>", "{{ x }} {% if y %}z{% endif %} {# c #}",
          "</s><s>[INST] x [/INST]", "A plain answer.")
_SHAPES = ((USER,), (USER, ASSISTANT), (USER, ASSISTANT, USER), (USER, ASSISTANT) * 2, (USER, ASSISTANT) * 3)


class TemplateError(ValueError):
    """A chat template that cannot be written as fixed text per role; the message names its file."""


class _Refused(Exception):
    """Why a template is not reducible (reduce_template adds the file)."""


class _Raised(_Refused):
    """The template itself raised on a probe (a role it refuses)."""


def _sentinel(i: int) -> str:
    return f"Qz{i}xRvK"


def _shape(roles) -> str:
    return "[" + ", ".join(roles) + "]"


def _apply(tokenizer, messages: list[dict]) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    except JinjaError as exc:
        raise _Raised(f"it raised on a {_shape(m['role'] for m in messages)} conversation: {exc}") from None


@dataclass(frozen=True)
class _Probe:
    """A conversation of sentinels as the template writes it; ``spans[i]``: where content i lies."""

    roles: tuple[str, ...]
    text: str
    spans: tuple[tuple[int, int], ...]

    def segment(self, i: int) -> str:
        """The text before content i (i = 0), between contents i-1 and i, or after the last (i = n)."""
        begin = self.spans[i - 1][1] if i > 0 else 0
        return self.text[begin:self.spans[i][0] if i < len(self.spans) else len(self.text)]


def _probe(tokenizer, roles: tuple[str, ...]) -> _Probe:
    text = _apply(tokenizer, [{"role": r, "content": _sentinel(i)} for i, r in enumerate(roles)])
    spans = []
    for i, role in enumerate(roles):
        at, count = text.find(_sentinel(i)), text.count(_sentinel(i))
        if count != 1:
            raise _Refused(f"in a {_shape(roles)} conversation the {role} turn's content {_sentinel(i)!r} is "
                           f"written {count} times")
        if spans and at < spans[-1][1]:
            raise _Refused(f"a {_shape(roles)} conversation is not written in message order")
        spans.append((at, at + len(_sentinel(i))))
    return _Probe(roles, text, tuple(spans))


def _transform(tokenizer, probe: _Probe, i: int) -> str:
    """The name of the content transform the template applies to message i of ``probe``."""
    padded = f"\n \n\t{_sentinel(i)}\t\n \n"
    text = _apply(tokenizer, [{"role": r, "content": padded if k == i else _sentinel(k)}
                              for k, r in enumerate(probe.roles)])
    before, after = probe.text[:probe.spans[i][0]], probe.text[probe.spans[i][1]:]
    for name, transform in CONTENT_TRANSFORMS.items():
        if text == before + transform(padded) + after:
            return name
    written = text[len(before):len(text) - len(after)] if text.startswith(before) and text.endswith(after) else None
    raise _Refused(f"the {probe.roles[i]} turn's content {padded!r} is written "
                   f"{'as ' + repr(written) if written is not None else 'with text around it changed'}, "
                   f"which none of {', '.join(CONTENT_TRANSFORMS)} gives")


def _after(text: str, head: str, what: str) -> str:
    if not text.startswith(head):
        raise _Refused(f"{what}: {text!r} does not start with {head!r}")
    return text[len(head):]


def _before(text: str, tail: str, what: str) -> str:
    if not text.endswith(tail):
        raise _Refused(f"{what}: {text!r} does not end with {tail!r}")
    return text[:len(text) - len(tail)]


def _reduce(tokenizer) -> ChatFormat:
    """The ChatFormat the probes give (module docstring); verified separately."""
    one = _probe(tokenizer, (USER,))
    two = _probe(tokenizer, (USER, ASSISTANT))
    four = _probe(tokenizer, (USER, ASSISTANT) * 2)
    user_suffix, assistant_suffix = one.segment(1), two.segment(2)
    last_prefix = _after(two.segment(1), user_suffix, "the text between a user turn and the last assistant turn")
    assistant_prefix = _after(four.segment(1), user_suffix, "the text between a user turn and an assistant turn")
    user_prefix = _after(four.segment(2), assistant_suffix,
                         "the text after an assistant turn that is not the last (taken to end as the last one)")
    start_without_system = _before(one.segment(0), user_prefix, "the text before a first user turn")
    roles = {USER: RoleFormat(user_prefix, user_suffix, _transform(tokenizer, two, 0)),
             ASSISTANT: RoleFormat(assistant_prefix, assistant_suffix, _transform(tokenizer, four, 1))}
    last = RoleFormat(last_prefix, assistant_suffix, _transform(tokenizer, two, 1))
    start = start_without_system
    try:
        system = _probe(tokenizer, (SYSTEM, USER, ASSISTANT))
    except _Raised:
        system = None
    if system is not None:
        lead = system.segment(0)
        # Only start + system.prefix is ever written (a system turn comes first): split it after what
        # conversations without a system turn start with, else after the BOS (Llama 3.1), else at 0.
        start = next(s for s in (start_without_system, tokenizer.bos_token or "", "") if lead.startswith(s))
        system_suffix = _before(system.segment(1), user_prefix, "the text between a system turn and a user turn")
        roles = {SYSTEM: RoleFormat(lead[len(start):], system_suffix, _transform(tokenizer, system, 0)), **roles}
    return ChatFormat(start, start_without_system, roles, None if last == roles[ASSISTANT] else last)


def _battery(system: bool) -> list[list[dict]]:
    """Conversations the reduction must render as the template does (module docstring)."""
    shapes = list(_SHAPES) + ([(SYSTEM, *s) for s in _SHAPES[:4]] if system else [])
    out = [[{"role": r, "content": _TEXTS[(3 * j + k) % len(_TEXTS)]} for k, r in enumerate(shape)]
           for j, shape in enumerate(shapes)]
    for text in _TEXTS:  # every text in every position: user, an earlier and the last assistant, system
        out.append([{"role": r, "content": text} for r in (USER, ASSISTANT) * 2])
        if system:
            out.append([{"role": r, "content": text} for r in (SYSTEM, USER, ASSISTANT)])
    return out


def _difference(messages: list[dict], want: str, got: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    lo = max(0, at - 24)
    return (f"on a {_shape(m['role'] for m in messages)} conversation the texts first differ at character {at}: "
            f"the template writes {want[lo:at + 24]!r}, the reduction {got[lo:at + 24]!r}")


def _verify(tokenizer, fmt: ChatFormat) -> None:
    for messages in _battery(SYSTEM in fmt.roles):
        want, got = _apply(tokenizer, messages), fmt.render(messages)
        if got != want:
            raise _Refused(_difference(messages, want, got))


def reduce_template(tokenizer, where: str) -> ChatFormat | None:
    """``tokenizer``'s chat template as a verified ChatFormat, or None when it has none.

    ``tokenizer``: a transformers fast tokenizer; ``where``: the template's file, named in the
    TemplateError raised when the template is not fixed text per role (module docstring).
    """
    if not tokenizer.chat_template:
        return None
    try:
        fmt = _reduce(tokenizer)
        _verify(tokenizer, fmt)
    except _Refused as exc:
        raise TemplateError(f"{where}: the chat template cannot be reduced to fixed text per role ({exc}); "
                            "RouteRM formats conversations without Jinja, so it takes templates that write "
                            "each message as fixed text around its content") from None
    return fmt
