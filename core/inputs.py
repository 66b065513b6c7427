"""Checking a scoring request at the boundary: texts and domain names, with errors naming the field.

Cutting rows into micro-batches is core.scoring's (``BatchLimits``, ``plan_batches``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from core.chat import check_messages
from core.formats import Formatted
from core.text import clean_text


def json_object(text: str, where: str, error: type[Exception] = ValueError) -> dict:
    """One JSON line that must be an object; ``error`` (the caller's typed error) names ``where``."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise error(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def check_texts(value, name: str, length: int | None = None, other: str = "prompts") -> list[str]:
    """A list (or tuple) of str, lone surrogates replaced by U+FFFD; TypeError/ValueError naming ``name``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of str, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} has {len(value)} items but {other} has {length}")
    return [clean_text(text, f"{name}[{i}]") for i, text in enumerate(value)]


def check_row(item, name: str):
    """One prompt or response: a str, or a list of chat messages (``core.chat.check_messages``);
    lone surrogates become U+FFFD. TypeError/ValueError naming ``name`` otherwise."""
    if isinstance(item, str):
        text = clean_text(item, name)
        return Formatted(text) if isinstance(item, Formatted) else text
    if isinstance(item, list):
        return [{"role": m["role"], "content": clean_text(m["content"], f"{name} content")}
                for m in check_messages(item, name)]
    raise TypeError(f"{name} must be a str or a list of {{'role', 'content'}} messages, got {type(item).__name__}")


def check_rows(value, name: str, length: int | None = None, other: str = "prompts") -> list:
    """A list (or tuple) of rows (``check_row``), as ``core.formats`` reads them; errors name ``name[i]``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of str or of message lists, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} has {len(value)} items but {other} has {length}")
    return [check_row(item, f"{name}[{i}]") for i, item in enumerate(value)]


def check_domains(value, known: Sequence[str], length: int) -> list[int]:
    """Domain names -> indices into ``known``; an unknown name is a ValueError listing the known ones."""
    names = check_texts(value, "domains", length)
    index = {d: i for i, d in enumerate(known)}
    out = []
    for i, name in enumerate(names):
        if name not in index:
            raise ValueError(f"domains[{i}] is '{name}', not a domain of this bundle; known: {list(known)}")
        out.append(index[name])
    return out
