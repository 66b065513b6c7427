"""HTTP reward server for RLHF loops: ``python -m runtime serve --bundle DIR [--host 127.0.0.1] [--port 8080]``.

Routes (JSON in and out; errors are ``{"error": str, "error_type": str}``):

* ``POST /`` and ``POST /predict`` (Text Embeddings Inference, a classification model; ``/`` is the
  route ``huggingface_hub.InferenceClient(model=URL).text_classification`` posts to): ``{"inputs":
  SEQ | [SEQ, ...], "raw_scores": bool, "truncate": bool, "domain": str?, "parameters": {...}?}``
  where a SEQ is ``[prompt, response]`` or one text, read as TEI reads it: a list of exactly two
  strings is one pair, any other list a batch. One text is read as TEI reads it: for a bundle with
  a chat template (an imported decoder reward model), as the conversation its template already
  wrote, as is; for others, a prompt with an empty response. Either is routed on.
  Answer: ``[{"score", "label"}]`` for one SEQ, a list of such lists for a batch. ``score`` is the
  reward (``raw_scores``: true, or ``parameters.function_to_apply``: "none") or sigmoid(reward);
  ``label`` is the routed domain (``"reward"`` for baseline/MoRE). Inputs are always cut to the
  bundle's ``max_length`` by its truncation policy (``truncate`` is accepted, not needed).
* ``POST /get_reward`` (OpenRLHF remote reward model): ``{"query": [prompt + response], "prompts":
  [prompt], "labels": [...]?}`` -> ``{"rewards": [f], "scores": [f], "extra_logs": {"domain_index":
  [int]}}``; each query must start with its prompt (the response is the rest).
* ``POST /v1/rewards``: ``{"pairs": [{"prompt", "response", "domain"?}]}`` (prompt and response
  each a string or chat messages: a bundle with a chat template formats them with it) -> ``{"rewards",
  "domains", "router_probs"}`` (router_probs: a row per pair when the router ran, else null).
* ``POST /classify``, ``POST /v1/classify``, ``GET /v1/models`` (vLLM's classification dialect,
  shared by SGLang and lmdeploy): see runtime.vllm_api.
* ``GET /health``, ``GET /metrics`` (Prometheus text format, runtime.metrics), ``GET /info``: TEI's
  fields (``model_type.classifier.id2label`` names the labels ``/predict`` answers with) and RouteRM's.

Three layers, as in Text Embeddings Inference's router: the HTTP handlers here validate a request
and translate the answer; the queue (runtime.queue) batches requests and bounds its depth; the
engine (runtime.engine) scores. Status codes: 400 (not JSON), 413 (body over ``max_body_bytes``
or more than ``max_request_pairs`` pairs), 422 (bad fields, an unknown domain: the message names
the known ones), 429 (queue full), 503 (shutting down), 504 (request timed out in the queue). On
shutdown the server stops taking requests and finishes the queued ones.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field

from core.formats import Formatted
from core.inputs import check_row
from core.scoring import sigmoid

from .engine import RewardEngine
from .metrics import Metrics
from .queue import Batcher, EngineFailed, QueueClosed, QueueError, QueueFull, QueueTimeout, Scores
from .vllm_api import ApiError, classify_response, models_list, parse_classify

DEFAULT_HOST = "127.0.0.1"   # loopback: listening beyond the machine is the user's choice (--host 0.0.0.0)
DEFAULT_PORT = 8080


def _limit(default, text: str):
    """A ServerConfig field whose help text the CLI shows (runtime.__main__ makes a flag of each)."""
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class ServerConfig:
    """The server's limits, each default here only: ``python -m runtime serve`` has a flag per field."""

    max_batch_pairs: int = _limit(64, "pairs per engine call the queue assembles")
    max_wait_ms: float = _limit(5.0, "milliseconds the first queued request waits for company")
    max_queue_pairs: int = _limit(4096, "pairs waiting at most; beyond: 429")
    max_request_pairs: int = _limit(256, "pairs in one request; beyond: 413")
    max_body_bytes: int = _limit(8 << 20, "bytes in a request body; beyond: 413")
    request_timeout_s: float = _limit(60.0, "seconds in the queue and scoring; beyond: 504")

    def __post_init__(self):
        for name in ("max_batch_pairs", "max_queue_pairs", "max_request_pairs", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.request_timeout_s <= 0:
            raise ValueError("max_wait_ms must be >= 0 and request_timeout_s > 0")


class HttpError(Exception):
    """A request answered with ``status`` and ``{"error": message, "error_type": error_type}`` (TEI's kinds)."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type = status, error_type


# a bundle's precision as TEI names a model's dtype in /info
_DTYPES = {"fp32": "float32", "fp16": "float16", "int8": "int8", "int8-blockwise": "int8", "int4": "int4"}

_QUEUE_STATUS = {QueueFull: (429, "Overloaded"), QueueClosed: (503, "Unhealthy"), QueueTimeout: (504, "Timeout")}


def _from_queue(exc: QueueError) -> HttpError:
    """The status of a request the queue did not score: a bad request (the engine's ValueError or
    TypeError) is the client's 422, any other engine failure the server's 500."""
    if isinstance(exc, EngineFailed):
        if isinstance(exc.cause, (ValueError, TypeError)):
            return HttpError(422, "Validation", str(exc))
        return HttpError(500, "Backend", str(exc))
    status, error_type = _QUEUE_STATUS[type(exc)]
    return HttpError(status, error_type, str(exc))


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


def _sequence(item, where: str) -> tuple[str, str] | None:
    """One TEI sequence as (prompt, response): ``[p, r]`` is a pair, a text a prompt with no response."""
    if isinstance(item, str):
        return Formatted(item), ""     # one text, as TEI reads it (core.formats.Formatted)
    if isinstance(item, list) and len(item) == 2 and all(isinstance(t, str) for t in item):
        return item[0], item[1]
    raise HttpError(422, "Validation", f"{where} must be a text or [prompt, response] (two strings)")


def _raw_scores(body: dict) -> bool:
    """Whether to answer rewards as they are: ``raw_scores`` (TEI) or ``parameters.function_to_apply``
    "none" (huggingface_hub's text_classification); sigmoid(reward) otherwise."""
    raw = body.get("raw_scores", False)
    if not isinstance(raw, bool):
        raise HttpError(422, "Validation", "field 'raw_scores' must be a boolean")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise HttpError(422, "Validation", "field 'parameters' must be an object")
    function = parameters.get("function_to_apply")
    if function not in (None, "sigmoid", "none"):
        raise HttpError(422, "Validation", f"parameters.function_to_apply is {function!r}: a reward is one score, "
                                           f"so 'sigmoid' (the default) or 'none' (the raw reward)")
    return raw or function == "none"


def parse_predict(body, engine: RewardEngine) -> tuple[list[str], list[str], list[str] | None, bool, bool]:
    """TEI ``/predict`` and ``/`` -> (prompts, responses, domains or None, batched, raw_scores)."""
    if not isinstance(body, dict) or "inputs" not in body:
        raise HttpError(422, "Validation", "body must be an object with field 'inputs'")
    inputs = body["inputs"]
    if isinstance(inputs, list) and not inputs:
        raise HttpError(422, "Validation", "field 'inputs' is an empty list")
    pair = isinstance(inputs, list) and len(inputs) == 2 and all(isinstance(t, str) for t in inputs)
    batched = isinstance(inputs, list) and not pair       # TEI's reading: two strings are one pair
    items = inputs if batched else [inputs]
    seqs = [_sequence(item, f"inputs[{i}]" if batched else "inputs") for i, item in enumerate(items)]
    domain = body.get("domain")
    _check_domain(domain, engine, "field 'domain'")
    domains = None if domain is None else [domain] * len(seqs)
    return [p for p, _ in seqs], [r for _, r in seqs], domains, batched, _raw_scores(body)


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
        if not isinstance(pair, dict) or "prompt" not in pair or "response" not in pair:
            raise HttpError(422, "Validation", f"pairs[{i}] must be an object with fields 'prompt' and 'response' "
                                               f"(each a string or a list of {{'role', 'content'}} messages)")
        try:
            prompts.append(check_row(pair["prompt"], f"pairs[{i}].prompt"))
            responses.append(check_row(pair["response"], f"pairs[{i}].response"))
        except (TypeError, ValueError) as exc:
            raise HttpError(422, "Validation", str(exc)) from None
        _check_domain(pair.get("domain"), engine, f"pairs[{i}].domain")
        domains.append(pair.get("domain"))
    given = [d is not None for d in domains]
    if any(given) and not all(given):
        raise HttpError(422, "Validation", "give 'domain' for every pair of a request or for none")
    return prompts, responses, (domains if domains and all(given) else None)


# --- handlers --------------------------------------------------------------------------------------

class _Handlers:
    """The routes: each reads and checks its request, queues the pairs, and returns a JSON value."""

    def __init__(self, engine: RewardEngine, config: ServerConfig, metrics: Metrics, provider: str | None):
        self.engine, self.config, self.metrics, self.provider = engine, config, metrics, provider
        self.batcher: Batcher | None = None   # made when the app starts (its lifespan), closed when it stops

    async def read_json(self, request):
        limit = self.config.max_body_bytes
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limit:
            raise HttpError(413, "Payload", f"body of {size} bytes is over the limit of {limit}")
        body = bytearray()  # appended in place: chunks of a large body do not copy what came before
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HttpError(413, "Payload", f"body is over the limit of {limit} bytes")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "Validation", f"body is not valid JSON ({exc})") from None

    async def score(self, prompts: list[str], responses: list[str], domains: list[str] | None) -> Scores:
        if len(prompts) > self.config.max_request_pairs:
            raise HttpError(413, "Payload", f"{len(prompts)} pairs in one request; the limit is "
                                            f"{self.config.max_request_pairs}")
        if not prompts:
            return [], [], None, 0
        try:
            return await self.batcher.score(prompts, responses, domains)
        except QueueError as exc:
            raise _from_queue(exc) from None

    async def predict(self, request):
        prompts, responses, domains, batched, raw = parse_predict(await self.read_json(request), self.engine)
        rewards, names, _, _ = await self.score(prompts, responses, domains)
        rows = [[{"score": r if raw else sigmoid(r), "label": d if d is not None else "reward"}]
                for r, d in zip(rewards, names)]
        return rows if batched else rows[0]

    async def get_reward(self, request):
        prompts, responses = parse_get_reward(await self.read_json(request))
        rewards, names, _, _ = await self.score(prompts, responses, None)
        index = [self.engine.domains.index(d) if d is not None else -1 for d in names]
        return {"rewards": rewards, "scores": rewards, "extra_logs": {"domain_index": index}}

    async def rewards(self, request):
        prompts, responses, domains = parse_rewards(await self.read_json(request), self.engine)
        values, names, probs, _ = await self.score(prompts, responses, domains)
        return {"rewards": values, "domains": names, "router_probs": probs}

    async def classify(self, request):
        prompts, responses, domains, activation, model = parse_classify(await self.read_json(request), self.engine)
        rewards, names, _, tokens = await self.score(prompts, responses, domains)
        return classify_response(model, rewards, names, activation, tokens)

    async def models(self, request):
        return models_list(self.engine)

    async def health(self, request):
        if self.batcher is None or self.batcher.closing:
            raise HttpError(503, "Unhealthy", "not serving")
        return {"status": "ok"}

    async def info(self, request):
        """RouteRM's fields and Text Embeddings Inference's (which its clients and tooling read)."""
        from importlib.metadata import PackageNotFoundError, version
        try:
            release = version("routerm")
        except PackageNotFoundError:
            release = None
        m, engine = self.engine.manifest, self.engine
        labels = list(m.domains) if m.routed else ["reward"]   # what /predict answers in "label"
        tei = {"model_id": str(m.path), "model_sha": None, "model_dtype": _DTYPES.get(m.precision, m.precision),
               "model_type": {"classifier": {"id2label": {str(i): d for i, d in enumerate(labels)},
                                             "label2id": {d: i for i, d in enumerate(labels)}}},
               "max_concurrent_requests": self.config.max_queue_pairs, "max_input_length": m.max_length,
               "max_batch_tokens": engine.limits.max_tokens, "max_batch_requests": self.config.max_batch_pairs,
               "max_client_batch_size": self.config.max_request_pairs, "auto_truncate": True,
               "tokenization_workers": 1, "sha": None, "docker_label": None}
        return {**tei, "method": m.method, "domains": list(m.domains), "max_length": m.max_length,
                "router_max_length": m.router_max_length, "precision": m.precision, "lora": m.lora,
                "truncation": engine.truncation, "provider": self.provider, "backend": engine.backend.name,
                "limits": asdict(self.config), "version": release}

    def metrics_text(self) -> str:
        return self.metrics.text(self.batcher.queued_pairs if self.batcher else 0)


def _json_endpoint(route: str, handler, metrics: Metrics, openai: bool = False):
    """A Starlette endpoint: the handler's value as JSON, an error as its status; both counted.
    Errors take the shape the route's clients parse: TEI's ``{"error", "error_type"}``, or with
    ``openai`` (vLLM's routes) OpenAI's ``{"error": {"message", "type", "param", "code"}}``."""
    from starlette.responses import JSONResponse

    async def endpoint(request):
        start = time.perf_counter()
        try:
            response = JSONResponse(await handler(request))
        except ApiError as exc:
            response = JSONResponse(exc.body(), status_code=exc.status)
        except HttpError as exc:
            body = ApiError(exc.status, str(exc), exc.error_type).body() if openai else \
                {"error": str(exc), "error_type": exc.error_type}
            response = JSONResponse(body, status_code=exc.status)
        metrics.request(route, response.status_code, time.perf_counter() - start)
        return response
    return endpoint


# --- the ASGI app ----------------------------------------------------------------------------------

def create_app(engine: RewardEngine, config: ServerConfig = ServerConfig(), provider: str | None = None):
    """A Starlette app serving ``engine``; the queue starts with the app and drains on shutdown."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    metrics = Metrics()
    handlers = _Handlers(engine, config, metrics, provider)

    @asynccontextmanager
    async def lifespan(app):
        handlers.batcher = Batcher(engine, config, metrics)
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, handlers.batcher.close)

    async def metrics_text(request):
        return PlainTextResponse(handlers.metrics_text(), media_type="text/plain; version=0.0.4")

    json_routes = (("/", "POST", handlers.predict), ("/predict", "POST", handlers.predict),
                   ("/get_reward", "POST", handlers.get_reward),
                   ("/v1/rewards", "POST", handlers.rewards), ("/health", "GET", handlers.health),
                   ("/info", "GET", handlers.info))
    vllm_routes = (("/classify", "POST", handlers.classify), ("/v1/classify", "POST", handlers.classify),
                   ("/v1/models", "GET", handlers.models))
    routes = [Route(path, _json_endpoint(path, handler, metrics), methods=[method])
              for path, method, handler in json_routes]
    routes += [Route(path, _json_endpoint(path, handler, metrics, openai=True), methods=[method])
               for path, method, handler in vllm_routes]
    routes.append(Route("/metrics", metrics_text, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    return app


def bundle_app(bundle: str, config: ServerConfig = ServerConfig(), threads: int | None = None, providers=None):
    """:func:`create_app` over a new engine on ``bundle`` (the provider it got reported by ``/info``)."""
    engine = RewardEngine.from_bundle(bundle, threads=threads, providers=providers)
    providers_used = getattr(engine.backend, "providers", None)
    return create_app(engine, config, provider=providers_used[0] if providers_used else None)


def serve(bundle: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, config: ServerConfig = ServerConfig(),
          threads: int | None = None, providers=None) -> None:
    """Load ``bundle`` and serve it with uvicorn until SIGINT/SIGTERM (in-flight requests finish)."""
    import uvicorn

    app = bundle_app(bundle, config, threads, providers)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "HttpError", "ServerConfig", "bundle_app", "create_app", "serve"]
