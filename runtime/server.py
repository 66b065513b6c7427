"""HTTP reward server for RLHF loops: ``python -m runtime serve --bundle DIR [--host 127.0.0.1] [--port 8080]``.

Routes (JSON in and out; errors are ``{"error": str, "error_type": str}``):

* ``POST /predict`` (Text Embeddings Inference): ``{"inputs": [prompt, response] | [[p, r], ...],
  "raw_scores": bool, "truncate": bool, "domain": str?}`` -> ``[{"score", "label"}]`` for one pair,
  a list of such lists for a batch. ``score`` is the reward (``raw_scores``: true) or
  sigmoid(reward); ``label`` is the routed domain (``"reward"`` for baseline/MoRE). Inputs are always
  cut to the bundle's ``max_length`` by its truncation policy (``truncate`` is accepted, not needed).
* ``POST /get_reward`` (OpenRLHF remote reward model): ``{"query": [prompt + response], "prompts":
  [prompt], "labels": [...]?}`` -> ``{"rewards": [f], "scores": [f], "extra_logs": {"domain_index":
  [int]}}``; each query must start with its prompt (the response is the rest).
* ``POST /v1/rewards``: ``{"pairs": [{"prompt", "response", "domain"?}]}`` -> ``{"rewards",
  "domains", "router_probs"}`` (router_probs: a row per pair when the router ran, else null).
* ``GET /health``, ``GET /info``, ``GET /metrics`` (Prometheus text format).

Dynamic batching (:class:`Batcher`): requests wait in one bounded queue; a single worker thread
takes everything queued (up to ``max_batch_pairs``, waiting at most ``max_wait_ms`` for more once
the first request is in) and scores it with one :meth:`RewardEngine.score` call per group
(routed rows together, rows with a given domain together), so many one-pair requests become one
routed run. The ONNX session never runs on the event-loop thread. Status codes: 400 (not JSON),
413 (body over ``max_body_bytes`` or more than ``max_request_pairs`` pairs), 422 (bad fields, an
unknown domain: the message names the known ones), 429 (queue full), 503 (shutting down), 504
(request timed out in the queue). On shutdown the server stops taking requests and finishes the
queued ones.
"""
from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from .engine import RewardEngine

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class ServerConfig:
    max_batch_pairs: int = 64        # pairs per engine call the batcher assembles
    max_wait_ms: float = 5.0         # how long the first queued request waits for company
    max_queue_pairs: int = 4096      # pairs waiting at most; beyond: 429
    max_request_pairs: int = 256     # pairs in one request; beyond: 413
    max_body_bytes: int = 8 << 20    # request body; beyond: 413
    request_timeout_s: float = 60.0  # queue + scoring; beyond: 504

    def __post_init__(self):
        for name in ("max_batch_pairs", "max_queue_pairs", "max_request_pairs", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.request_timeout_s <= 0:
            raise ValueError("max_wait_ms must be >= 0 and request_timeout_s > 0")


class HttpError(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type = status, error_type


# --- metrics ---------------------------------------------------------------------------------------

class Histogram:
    def __init__(self, buckets):
        self.buckets, self.counts, self.total, self.n = tuple(buckets), [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{edge}"}} {count}' for edge, count in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        brace = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{brace} {self.total}", f"{name}_count{brace} {self.n}"]


@dataclass
class Metrics:
    requests: Counter = field(default_factory=Counter)          # (route, status) -> count
    latency: dict = field(default_factory=dict)                 # route -> Histogram
    batch_pairs: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    pairs_scored: int = 0
    engine_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS_S)).observe(seconds)

    def text(self, queue_pairs: int) -> str:
        with self.lock:
            out = ["# TYPE routerm_requests_total counter"]
            out += [f'routerm_requests_total{{route="{r}",status="{s}"}} {n}' for (r, s), n in sorted(self.requests.items())]
            out.append("# TYPE routerm_request_duration_seconds histogram")
            for route, hist in sorted(self.latency.items()):
                out += hist.lines("routerm_request_duration_seconds", f'route="{route}"')
            out.append("# TYPE routerm_batch_pairs histogram")
            out += self.batch_pairs.lines("routerm_batch_pairs")
            out += ["# TYPE routerm_pairs_scored_total counter", f"routerm_pairs_scored_total {self.pairs_scored}",
                    "# TYPE routerm_engine_failures_total counter", f"routerm_engine_failures_total {self.engine_failures}",
                    "# TYPE routerm_queue_pairs gauge", f"routerm_queue_pairs {queue_pairs}"]
        return "\n".join(out) + "\n"


# --- dynamic batching ------------------------------------------------------------------------------

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

    async def score(self, prompts: list[str], responses: list[str], domains: list[str] | None):
        """``(rewards [n], domains [n], router_probs [n, d] or None)`` for one request's pairs."""
        loop = asyncio.get_running_loop()
        job = _Job(prompts, responses, domains, loop, loop.create_future())
        with self._cond:
            if self._closing:
                raise HttpError(503, "Unhealthy", "the server is shutting down")
            if self._pairs + len(prompts) > self.config.max_queue_pairs:
                raise HttpError(429, "Overloaded", f"queue full ({self._pairs} pairs waiting, limit "
                                                   f"{self.config.max_queue_pairs}); retry later")
            self._jobs.append(job)
            self._pairs += len(prompts)
            self._cond.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.config.request_timeout_s)
        except asyncio.TimeoutError:
            raise HttpError(504, "Timeout", f"not scored within {self.config.request_timeout_s}s") from None

    def close(self, timeout: float = 60.0) -> None:
        """Take no new requests; finish the queued ones; stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
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
            self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        groups = {"routed": [j for j in jobs if j.domains is None], "given": [j for j in jobs if j.domains is not None]}
        for kind, group in groups.items():
            if not group:
                continue
            prompts = [p for j in group for p in j.prompts]
            responses = [r for j in group for r in j.responses]
            domains = None if kind == "routed" else [d for j in group for d in j.domains]
            try:
                result = self.engine.score(prompts, responses, domains)
            except Exception as exc:  # noqa: BLE001 - answered to each request, never lost
                with self.metrics.lock:
                    self.metrics.engine_failures += 1
                for job in group:
                    error = HttpError(422 if isinstance(exc, (ValueError, TypeError)) else 500,
                                      "Validation" if isinstance(exc, (ValueError, TypeError)) else "Backend", str(exc))
                    job.loop.call_soon_threadsafe(_settle, job.future, None, error)
                continue
            with self.metrics.lock:
                self.metrics.batch_pairs.observe(len(prompts))
                self.metrics.pairs_scored += len(prompts)
            start = 0
            for job in group:
                end = start + len(job.prompts)
                probs = None if result.router_probs is None else result.router_probs[start:end]
                value = (result.rewards[start:end].astype(float).tolist(), list(result.domains[start:end]),
                         None if probs is None else probs.astype(float).tolist())
                job.loop.call_soon_threadsafe(_settle, job.future, value, None)
                start = end


def _settle(future: asyncio.Future, value, error) -> None:
    if future.done():  # timed out or the client went away: nothing to answer
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


# --- request parsing -------------------------------------------------------------------------------

def _str_list(value, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HttpError(422, "Validation", f"field '{name}' must be a list of strings")
    return value


def _check_domain(domain, engine: RewardEngine, where: str) -> None:
    if domain is None:
        return
    if not isinstance(domain, str):
        raise HttpError(422, "Validation", f"{where} must be a string")
    if not engine.manifest.routed:
        raise HttpError(422, "Validation", f"method '{engine.method}' has no domains; leave out {where}")
    if domain not in engine.domains:
        raise HttpError(422, "Validation", f"{where} is '{domain}', not a domain of this bundle; known: {list(engine.domains)}")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def parse_predict(body, engine: RewardEngine) -> tuple[list[str], list[str], list[str] | None, bool, bool]:
    """TEI ``/predict`` -> (prompts, responses, domains or None, batched, raw_scores)."""
    if not isinstance(body, dict) or "inputs" not in body:
        raise HttpError(422, "Validation", "body must be an object with field 'inputs'")
    inputs = body["inputs"]
    batched = isinstance(inputs, list) and bool(inputs) and all(isinstance(x, list) for x in inputs)
    items = inputs if batched else [inputs]
    for i, item in enumerate(items):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(t, str) for t in item)):
            raise HttpError(422, "Validation", f"inputs{f'[{i}]' if batched else ''} must be [prompt, response] "
                                               f"(two strings)")
    domain = body.get("domain")
    _check_domain(domain, engine, "field 'domain'")
    raw = body.get("raw_scores", False)
    if not isinstance(raw, bool):
        raise HttpError(422, "Validation", "field 'raw_scores' must be a boolean")
    domains = None if domain is None else [domain] * len(items)
    return [p for p, _ in items], [r for _, r in items], domains, batched, raw


def parse_get_reward(body) -> tuple[list[str], list[str]]:
    """OpenRLHF ``/get_reward`` -> (prompts, responses): each query is its prompt followed by the response."""
    if not isinstance(body, dict):
        raise HttpError(422, "Validation", "body must be a JSON object")
    queries = _str_list(body.get("query"), "query")
    prompts = _str_list(body.get("prompts"), "prompts")
    if len(prompts) != len(queries):
        raise HttpError(422, "Validation", f"'prompts' has {len(prompts)} items but 'query' has {len(queries)}")
    responses = []
    for i, (q, p) in enumerate(zip(queries, prompts)):
        if not q.startswith(p):
            raise HttpError(422, "Validation", f"query[{i}] does not start with prompts[{i}]")
        responses.append(q[len(p):])
    return prompts, responses


def parse_rewards(body, engine: RewardEngine) -> tuple[list[str], list[str], list[str] | None]:
    """RouteRM ``/v1/rewards`` -> (prompts, responses, domains or None); domains all given or none."""
    pairs = body.get("pairs") if isinstance(body, dict) else None
    if not isinstance(pairs, list):
        raise HttpError(422, "Validation", "body must be an object with field 'pairs' (a list)")
    prompts, responses, domains = [], [], []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not isinstance(pair.get("prompt"), str) or not isinstance(pair.get("response"), str):
            raise HttpError(422, "Validation", f"pairs[{i}] must be an object with string fields 'prompt' and 'response'")
        _check_domain(pair.get("domain"), engine, f"pairs[{i}].domain")
        prompts.append(pair["prompt"])
        responses.append(pair["response"])
        domains.append(pair.get("domain"))
    given = [d is not None for d in domains]
    if any(given) and not all(given):
        raise HttpError(422, "Validation", "give 'domain' for every pair of a request or for none")
    return prompts, responses, (domains if domains and all(given) else None)


# --- the ASGI app ----------------------------------------------------------------------------------

def create_app(engine: RewardEngine, config: ServerConfig = ServerConfig(), provider: str | None = None):
    """A Starlette app serving ``engine``; the batcher starts with the app and drains on shutdown."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    metrics = Metrics()
    state = {}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = Batcher(engine, config, metrics)
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, state["batcher"].close)

    async def read_json(request: Request):
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > config.max_body_bytes:
            raise HttpError(413, "Payload", f"body of {size} bytes is over the limit of {config.max_body_bytes}")
        body = bytearray()  # appended in place: chunks of a large body do not copy what came before
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_body_bytes:
                raise HttpError(413, "Payload", f"body is over the limit of {config.max_body_bytes} bytes")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "Validation", f"body is not valid JSON ({exc})") from None

    async def score(prompts, responses, domains):
        if len(prompts) > config.max_request_pairs:
            raise HttpError(413, "Payload", f"{len(prompts)} pairs in one request; the limit is {config.max_request_pairs}")
        if not prompts:
            return [], [], None
        return await state["batcher"].score(prompts, responses, domains)

    def route(name: str, handler):
        async def endpoint(request: Request):
            start = time.perf_counter()
            try:
                response = await handler(request)
            except HttpError as exc:
                response = JSONResponse({"error": str(exc), "error_type": exc.error_type}, status_code=exc.status)
            metrics.request(name, response.status_code, time.perf_counter() - start)
            return response
        return endpoint

    async def predict(request):
        prompts, responses, domains, batched, raw = parse_predict(await read_json(request), engine)
        rewards, names, _ = await score(prompts, responses, domains)
        rows = [[{"score": r if raw else _sigmoid(r), "label": d if d is not None else "reward"}]
                for r, d in zip(rewards, names)]
        return JSONResponse(rows if batched else rows[0])

    async def get_reward(request):
        prompts, responses = parse_get_reward(await read_json(request))
        rewards, names, _ = await score(prompts, responses, None)
        index = [engine.domains.index(d) if d is not None else -1 for d in names]
        return JSONResponse({"rewards": rewards, "scores": rewards, "extra_logs": {"domain_index": index}})

    async def rewards(request):
        prompts, responses, domains = parse_rewards(await read_json(request), engine)
        values, names, probs = await score(prompts, responses, domains)
        return JSONResponse({"rewards": values, "domains": names, "router_probs": probs})

    async def health(request):
        batcher = state.get("batcher")
        if batcher is None or batcher.closing:
            raise HttpError(503, "Unhealthy", "not serving")
        return JSONResponse({"status": "ok"})

    async def info(request):
        from importlib.metadata import PackageNotFoundError, version
        try:
            release = version("routerm")
        except PackageNotFoundError:
            release = None
        m = engine.manifest
        return JSONResponse({"method": m.method, "domains": list(m.domains), "max_length": m.max_length,
                             "router_max_length": m.router_max_length, "precision": m.precision,
                             "lora": m.lora, "truncation": engine.truncation, "provider": provider,
                             "backend": engine.backend.name, "limits": asdict(config), "version": release})

    async def metrics_text(request):
        batcher = state.get("batcher")
        return PlainTextResponse(metrics.text(batcher.queued_pairs if batcher else 0),
                                 media_type="text/plain; version=0.0.4")

    routes = [Route("/predict", route("/predict", predict), methods=["POST"]),
              Route("/get_reward", route("/get_reward", get_reward), methods=["POST"]),
              Route("/v1/rewards", route("/v1/rewards", rewards), methods=["POST"]),
              Route("/health", route("/health", health), methods=["GET"]),
              Route("/info", route("/info", info), methods=["GET"]),
              Route("/metrics", metrics_text, methods=["GET"])]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    return app


def bundle_app(bundle: str, config: ServerConfig = ServerConfig(), threads: int | None = None, providers=None):
    """:func:`create_app` over a new engine on ``bundle`` (the provider it got reported by ``/info``)."""
    engine = RewardEngine.from_bundle(bundle, threads=threads, providers=providers)
    providers_used = getattr(engine.backend, "providers", None)
    return create_app(engine, config, provider=providers_used[0] if providers_used else None)


def serve(bundle: str, host: str = "127.0.0.1", port: int = 8080, config: ServerConfig = ServerConfig(),
          threads: int | None = None, providers=None) -> None:
    """Load ``bundle`` and serve it with uvicorn until SIGINT/SIGTERM (in-flight requests finish)."""
    import uvicorn

    app = bundle_app(bundle, config, threads, providers)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)


__all__ = ["ServerConfig", "Batcher", "bundle_app", "create_app", "serve"]
