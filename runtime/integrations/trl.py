"""TRL reward functions (GRPOTrainer, RLOOTrainer): ``reward_funcs=[reward_func]``.

TRL calls ``reward_func(prompts, completions, completion_ids=None, **kwargs) -> list[float | None]``
with ``prompts``/``completions`` as strings, or (conversational datasets) as lists of chat messages
``[{"role": ..., "content": ...}]``; an ``async def`` reward function is awaited concurrently with
the others. Both are here, scoring either through a running server (``python -m runtime serve``:
``ROUTERM_URL=http://127.0.0.1:8080``) or an in-process engine (``ROUTERM_BUNDLE=DIR``)::

    from runtime.integrations.trl import reward_func            # reads ROUTERM_URL or ROUTERM_BUNDLE
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_func], ...)

    from runtime.integrations.trl import make_reward_func        # or explicit, with a fixed domain
    rf = make_reward_func(url="http://127.0.0.1:8080", domain="math")

Conversations become text the way the preference data is written (``Human: ...`` /
``Assistant: ...`` turns, blank lines between); a completion's messages are joined by blank lines.
"""
from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request

ROLES = {"user": "Human", "assistant": "Assistant", "system": "System"}


def to_text(value, name: str) -> str:
    """A string, or chat messages rendered as ``Role: content`` turns."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in value):
        if name == "completion":
            return "\n\n".join(m["content"] for m in value)
        return "\n\n".join(f"{ROLES.get(m.get('role'), str(m.get('role')).title())}: {m['content']}" for m in value)
    raise TypeError(f"{name} must be a string or a list of {{'role', 'content'}} messages, got {type(value).__name__}")


class RouteRMRewards:
    """Callable TRL reward function; ``url`` (a server) or ``bundle`` (in-process engine), one of them."""

    def __init__(self, url: str | None = None, bundle: str | None = None, domain: str | None = None,
                 timeout: float = 120.0):
        if (url is None) == (bundle is None):
            raise ValueError("give exactly one of url (a RouteRM server) or bundle (a bundle directory)")
        self.url, self.domain, self.timeout = url and url.rstrip("/"), domain, timeout
        self.engine = None
        if bundle is not None:
            from runtime import RewardEngine
            self.engine = RewardEngine.from_bundle(bundle)
        self.__name__ = "routerm_reward"  # TRL logs rewards under the function's name

    def _pairs(self, prompts, completions) -> tuple[list[str], list[str]]:
        if len(prompts) != len(completions):
            raise ValueError(f"prompts has {len(prompts)} items but completions has {len(completions)}")
        return [to_text(p, "prompt") for p in prompts], [to_text(c, "completion") for c in completions]

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        texts, answers = self._pairs(prompts, completions)
        if self.engine is not None:
            domains = None if self.domain is None else [self.domain] * len(texts)
            return [float(r) for r in self.engine.score(texts, answers, domains).rewards]
        pairs = [{"prompt": p, "response": r, **({"domain": self.domain} if self.domain else {})}
                 for p, r in zip(texts, answers)]
        request = urllib.request.Request(f"{self.url}/v1/rewards", data=json.dumps({"pairs": pairs}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return [float(r) for r in json.loads(response.read())["rewards"]]
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise RuntimeError(f"RouteRM server {self.url} answered {exc.code}: {detail}") from None

    async def acall(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        return await asyncio.to_thread(self, prompts, completions, completion_ids, **kwargs)


def make_reward_func(url: str | None = None, bundle: str | None = None, domain: str | None = None) -> RouteRMRewards:
    return RouteRMRewards(url=url, bundle=bundle, domain=domain)


_default: RouteRMRewards | None = None


def _from_env() -> RouteRMRewards:
    global _default
    if _default is None:
        url, bundle = os.environ.get("ROUTERM_URL"), os.environ.get("ROUTERM_BUNDLE")
        if not url and not bundle:
            raise RuntimeError("set ROUTERM_URL (a running `python -m runtime serve`) or ROUTERM_BUNDLE (a bundle "
                               "directory), or build one with make_reward_func(...)")
        _default = RouteRMRewards(url=url or None, bundle=None if url else bundle)
    return _default


def reward_func(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
    """TRL reward function configured by ``ROUTERM_URL`` or ``ROUTERM_BUNDLE``."""
    return _from_env()(prompts, completions, completion_ids, **kwargs)


async def async_reward_func(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
    """The ``async def`` variant TRL awaits concurrently with other reward functions."""
    return await _from_env().acall(prompts, completions, completion_ids, **kwargs)
