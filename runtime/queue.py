"""The reward server's queue: concurrent requests coalesced into engine calls on one worker thread.

Requests wait in one queue bounded by ``max_queue_pairs`` pairs (beyond it a request is refused
at once, :class:`QueueFull`, rather than queued behind work it cannot outwait). The worker takes
everything queued, up to ``max_batch_pairs`` pairs, waiting at most ``max_wait_ms`` for more once
the first request is in, and scores it with one :meth:`RewardEngine.score` call per group (routed
rows together, rows with a given domain together), so many one-pair requests become one routed
run. Within a call the engine cuts rows into micro-batches by padded tokens (core.scoring's
``BatchLimits``): the queue bounds how many pairs one call holds, the engine how many tokens one
graph run computes. The engine never runs on the event loop's thread.

Nothing here speaks HTTP: failures are the typed errors below, which the HTTP layer
(runtime.server) turns into status codes.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .metrics import Metrics

if TYPE_CHECKING:
    from .engine import RewardEngine
    from .server import ServerConfig


class QueueError(Exception):
    """Why a request was not scored."""


class QueueFull(QueueError):
    """Its pairs would take the queue over ``max_queue_pairs``: retry later."""


class QueueClosed(QueueError):
    """The queue is draining for shutdown and takes no new requests."""


class QueueTimeout(QueueError):
    """Not scored within ``request_timeout_s`` (queue wait and scoring together)."""


class EngineFailed(QueueError):
    """The engine call that held this request raised ``cause`` (each request of the call gets one)."""

    def __init__(self, cause: Exception):
        super().__init__(str(cause))
        self.cause = cause


Scores = tuple[list[float], list, list[list[float]] | None, int]   # rewards [n], domains [n], router_probs [n, d] or None, tokens read


@dataclass
class _Job:
    prompts: list[str]
    responses: list[str]
    domains: list[str] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class Batcher:
    """Coalesces concurrent requests into engine calls on one worker thread (see module docstring)."""

    def __init__(self, engine: RewardEngine, config: ServerConfig, metrics: Metrics):
        self.engine, self.config, self.metrics = engine, config, metrics
        self._jobs: list[_Job] = []
        self._pairs = 0
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="routerm-batcher", daemon=True)
        self._thread.start()

    @property
    def queued_pairs(self) -> int:
        return self._pairs

    @property
    def closing(self) -> bool:
        """True once :meth:`close` began: no new requests are taken."""
        return self._closing

    async def score(self, prompts: list[str], responses: list[str], domains: list[str] | None) -> Scores:
        """``(rewards [n], domains [n], router_probs [n, d] or None, tokens read)`` for one request's pairs."""
        loop = asyncio.get_running_loop()
        job = _Job(prompts, responses, domains, loop, loop.create_future())
        with self._cond:
            if self._closing:
                raise QueueClosed("the server is shutting down")
            if self._pairs + len(prompts) > self.config.max_queue_pairs:
                raise QueueFull(f"queue full ({self._pairs} pairs waiting, limit {self.config.max_queue_pairs}); "
                                f"retry later")
            self._jobs.append(job)
            self._pairs += len(prompts)
            self._cond.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.config.request_timeout_s)
        except asyncio.TimeoutError:
            raise QueueTimeout(f"not scored within {self.config.request_timeout_s}s") from None

    def close(self, timeout: float = 60.0) -> None:
        """Take no new requests; finish the queued ones; stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
        """The next engine call's requests (None once closing and drained)."""
        with self._cond:
            while not self._jobs and not self._closing:
                self._cond.wait()
            if not self._jobs:
                return None
            deadline = time.monotonic() + self.config.max_wait_ms / 1000
            while self._pairs < self.config.max_batch_pairs and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken, pairs = [], 0
            # a request larger than max_batch_pairs still goes, alone: it passed max_request_pairs
            while self._jobs and (not taken or pairs + len(self._jobs[0].prompts) <= self.config.max_batch_pairs):
                job = self._jobs.pop(0)
                taken.append(job)
                pairs += len(job.prompts)
            self._pairs -= pairs
            return taken

    def _work(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            routed = [j for j in jobs if j.domains is None]
            given = [j for j in jobs if j.domains is not None]
            for group in (routed, given):
                if group:
                    self._run(group)

    def _run(self, group: list[_Job]) -> None:
        """One engine call for ``group`` (all routed or all with given domains); every job answered."""
        prompts = [p for j in group for p in j.prompts]
        responses = [r for j in group for r in j.responses]
        domains = None if group[0].domains is None else [d for j in group for d in j.domains]
        try:
            result = self.engine.score(prompts, responses, domains)
        except Exception as exc:  # noqa: BLE001 - answered to each request, never lost
            self.metrics.failed()
            for job in group:
                job.loop.call_soon_threadsafe(_settle, job.future, None, EngineFailed(exc))
            return
        self.metrics.scored(len(prompts))
        start = 0
        for job in group:
            end = start + len(job.prompts)
            probs = None if result.router_probs is None else result.router_probs[start:end].astype(float).tolist()
            value = (result.rewards[start:end].astype(float).tolist(), list(result.domains[start:end]), probs,
                     int(result.tokens[start:end].sum()))
            job.loop.call_soon_threadsafe(_settle, job.future, value, None)
            start = end


def _settle(future: asyncio.Future, value, error) -> None:
    if future.done():  # timed out or the client went away: nothing to answer
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


__all__ = ["Batcher", "EngineFailed", "QueueClosed", "QueueError", "QueueFull", "QueueTimeout"]
