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

Conversations pass through as messages: a bundle with a chat template (an imported decoder reward
model) formats them as the model was trained to read them; one without (RouteRM-trained bundles)
flattens them the way its preference data is written (``core.chat.flatten``: ``Human: ...`` /
``Assistant: ...`` turns).
"""
from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request

from core.inputs import check_row


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
        # checked here, so a bad item fails before any request is sent
        return ([check_row(p, f"prompts[{i}]") for i, p in enumerate(prompts)],
                [check_row(c, f"completions[{i}]") for i, c in enumerate(completions)])

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
