"""Chat conversations as the model's chat template writes them, with fixed text instead of Jinja.

A Hugging Face chat template is a Jinja program, but the templates reward models ship (ChatML as
Qwen writes it, Llama 3, Gemma 2, ...) write every message as fixed text around its content. Export
reduces a template to that text and checks the reduction against ``apply_chat_template``
(``export.chat_template.reduce_template``); the runtime and the C library format with it, free of
transformers and Jinja. For messages ``m[0..n-1]``::

    render(m) = (start if m[0].role == "system" else start_without_system)
                + concat over i of  f.prefix + CONTENT_TRANSFORMS[f.content](m[i].content) + f.suffix
    where f = last_assistant  if i == n - 1, m[i].role == "assistant" and last_assistant is not None
              roles[m[i].role] otherwise

which equals ``tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=False)`` for
every conversation export verified: roles alternating from the first user turn, an optional system
turn first. A system turn anywhere but first is refused (templates such as Llama 3.1's write the
first one into a header of their own, and later ones are not verified), as is a role the template
does not know (Gemma 2's raises on a system turn). Message indices in errors count from 0.

JSON form (``to_dict``/``from_dict``, stored in the manifest; every field required, no others)::

    {"start": "<|begin_of_text|>",                   # before a first system turn
     "start_without_system": "<|begin_of_text|>",    # before any other first turn
     "roles": {"system": {"prefix": "<|start_header_id|>system<|end_header_id|>\\n\\n",
                          "suffix": "<|eot_id|>", "content": "strip"},
               "user": {...}, "assistant": {...}},   # "user" and "assistant" always present
     "last_assistant": null}                         # or {"prefix", "suffix", "content"}

Bundles without a template read messages flattened to ``Human:`` / ``Assistant:`` text (``flatten``).
Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import BundleError

# How a template writes a message's content. A closed set: the C library implements each by name.
CONTENT_TRANSFORMS = {
    "as-is": lambda text: text,
    "strip": str.strip,                             # Jinja's |trim is Python's str.strip()
    "lstrip-newlines": lambda text: text.lstrip("\n"),  # Qwen3's content.lstrip('\n') after </think>
}
SYSTEM, USER, ASSISTANT = "system", "user", "assistant"
FLAT_ROLES = {USER: "Human", ASSISTANT: "Assistant", SYSTEM: "System"}
_FIELDS = ("start", "start_without_system", "roles", "last_assistant")
_ROLE_FIELDS = ("prefix", "suffix", "content")


@dataclass(frozen=True)
class RoleFormat:
    """One message of a role is written ``prefix + CONTENT_TRANSFORMS[content](text) + suffix``."""

    prefix: str
    suffix: str
    content: str

    def __post_init__(self):
        if self.content not in CONTENT_TRANSFORMS:
            raise ValueError(f"content transform '{self.content}' is not one of {', '.join(CONTENT_TRANSFORMS)}")

    def body(self, text: str) -> str:
        return CONTENT_TRANSFORMS[self.content](text)

    def to_dict(self) -> dict:
        return {"prefix": self.prefix, "suffix": self.suffix, "content": self.content}


@dataclass(frozen=True)
class ChatFormat:
    """A chat template reduced to fixed text (module docstring: the formula and the JSON form)."""

    start: str
    start_without_system: str
    roles: dict[str, RoleFormat]
    last_assistant: RoleFormat | None = None

    def _turns(self, messages: list[dict]) -> tuple[str, list[tuple[str, str, str]]]:
        """(text before the first message, [(prefix, transformed content, suffix)] per message)."""
        turns = []
        for i, message in enumerate(messages):
            role = message["role"]
            if role not in self.roles:
                raise ValueError(f"message {i} has role '{role}', which this model's chat template does not "
                                 f"know (it knows: {', '.join(self.roles)})")
            if role == SYSTEM and i > 0:
                raise ValueError(f"message {i} is a system turn; this model's chat template is reduced for a "
                                 "system turn as the first message only")
            fmt = self.roles[role]
            if i == len(messages) - 1 and role == ASSISTANT and self.last_assistant is not None:
                fmt = self.last_assistant
            turns.append((fmt.prefix, fmt.body(message["content"]), fmt.suffix))
        lead = self.start if messages[0]["role"] == SYSTEM else self.start_without_system
        return lead, turns

    def render(self, messages: list[dict]) -> str:
        """The text ``apply_chat_template(messages, tokenize=False, add_generation_prompt=False)`` gives."""
        lead, turns = self._turns(check_messages(messages, "messages"))
        return lead + "".join(p + b + s for p, b, s in turns)

    def render_pair(self, prompt: list[dict], response: list[dict]) -> tuple[str, str]:
        """``render(prompt + response)`` cut where the first response message's (transformed) content
        starts: (prompt text with the response turn's prefix, response text from its content on)."""
        prompt, response = check_messages(prompt, "prompt"), check_messages(response, "response")
        lead, turns = self._turns(prompt + response)
        head = lead + "".join(p + b + s for p, b, s in turns[:len(prompt)]) + turns[len(prompt)][0]
        tail = "".join(p + b + s for p, b, s in turns[len(prompt):])[len(turns[len(prompt)][0]):]
        return head, tail

    def to_dict(self) -> dict:
        """The JSON object of the manifest (module docstring)."""
        return {"start": self.start, "start_without_system": self.start_without_system,
                "roles": {name: fmt.to_dict() for name, fmt in self.roles.items()},
                "last_assistant": None if self.last_assistant is None else self.last_assistant.to_dict()}

    @classmethod
    def from_dict(cls, d: dict, where: str) -> ChatFormat:
        """Parse ``to_dict``'s object; BundleError naming ``where`` and the field when it is malformed."""
        _fields(d, _FIELDS, where, "")
        start = _string(d, "start", where, "start")
        start_without_system = _string(d, "start_without_system", where, "start_without_system")
        raw_roles = d["roles"]
        if not isinstance(raw_roles, dict):
            raise BundleError(f"{where}: field 'roles' must be an object, got {type(raw_roles).__name__}")
        roles = {name: _role(raw, where, f"roles.{name}") for name, raw in raw_roles.items()}
        for need in (USER, ASSISTANT):
            if need not in roles:
                raise BundleError(f"{where}: field 'roles' has no '{need}' (it has: {', '.join(roles) or 'none'})")
        last = d["last_assistant"]
        return cls(start, start_without_system, roles, None if last is None else _role(last, where, "last_assistant"))


def _fields(d, names: tuple[str, ...], where: str, field: str) -> None:
    """``d`` is an object with exactly the keys ``names``; ``field`` is its path ("" at the top)."""
    path = f"{field}." if field else ""
    if not isinstance(d, dict):
        raise BundleError(f"{where}: {f'field {field!r}' if field else 'the chat template'} must be a JSON "
                          f"object, got {type(d).__name__}")
    missing, unknown = [k for k in names if k not in d], [k for k in d if k not in names]
    if missing:
        raise BundleError(f"{where}: missing field '{path}{missing[0]}'")
    if unknown:
        raise BundleError(f"{where}: unknown field '{path}{unknown[0]}' (written by a newer RouteRM?)")


def _string(d: dict, key: str, where: str, field: str) -> str:
    if not isinstance(d[key], str):
        raise BundleError(f"{where}: field '{field}' must be a string, got {type(d[key]).__name__}")
    return d[key]


def _role(d, where: str, field: str) -> RoleFormat:
    _fields(d, _ROLE_FIELDS, where, field)
    prefix, suffix = _string(d, "prefix", where, f"{field}.prefix"), _string(d, "suffix", where, f"{field}.suffix")
    content = _string(d, "content", where, f"{field}.content")
    if content not in CONTENT_TRANSFORMS:
        raise BundleError(f"{where}: field '{field}.content' is '{content}', expected one of "
                          f"{', '.join(CONTENT_TRANSFORMS)}")
    return RoleFormat(prefix, suffix, content)


def check_messages(value, name: str) -> list[dict]:
    """A non-empty list of ``{"role": str, "content": str}`` dicts, copied to plain two-key dicts;
    TypeError/ValueError naming ``name`` and the message index otherwise."""
    if not isinstance(value, list):
        raise TypeError(f"{name} must be a list of {{'role', 'content'}} messages, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} has no messages")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise TypeError(f"{name} message {i} must be a {{'role', 'content'}} dict, got {type(message).__name__}")
        for key in ("role", "content"):
            if key not in message:
                raise ValueError(f"{name} message {i} has no '{key}' string")
            if not isinstance(message[key], str):
                raise TypeError(f"{name} message {i} has no '{key}' string (got {type(message[key]).__name__})")
        out.append({"role": message["role"], "content": message["content"]})
    return out


def _messages(value, name: str, role: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list):
        return check_messages(value, name)
    raise TypeError(f"{name} must be a string or a list of {{'role', 'content'}} messages, got {type(value).__name__}")


def conversation(prompt, response) -> tuple[list[dict], list[dict]]:
    """A row as users hold it -> (prompt messages, response messages). A string prompt is one user
    turn, a string response one assistant turn; lists are messages (TRL's conversational form)."""
    return _messages(prompt, "prompt", USER), _messages(response, "response", ASSISTANT)


def flatten(value, name: str) -> str:
    """Text for bundles without a chat template: a string as it is; messages as ``Human: ...`` /
    ``Assistant: ...`` / ``System: ...`` turns (other roles title-cased) joined by blank lines, or,
    when ``name`` is ``"completion"`` or ``"response"``, their contents joined by blank lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in value):
        if name in ("completion", "response"):
            return "\n\n".join(m["content"] for m in value)
        return "\n\n".join(f"{FLAT_ROLES.get(m.get('role'), str(m.get('role')).title())}: {m['content']}"
                           for m in value)
    raise TypeError(f"{name} must be a string or a list of {{'role', 'content'}} messages, got {type(value).__name__}")
