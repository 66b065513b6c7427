"""vLLM's classification dialect (``POST /classify``, ``/v1/classify``, ``GET /v1/models``), which
SGLang and lmdeploy share, so an RLHF stack that talks to any of them can talk to RouteRM.

Request, as vLLM's protocol defines it::

    {"model": str?, "input": str | [str]}                          # completion form
    {"model": str?, "messages": [{"role", "content"}, ...]}        # chat form: one conversation
    optional: "use_activation": bool (default true: probs = [sigmoid(reward)]; false: [reward])

Answer::

    {"id": "classify-<hex>", "object": "list", "created": int, "model": str,
     "data": [{"index": i, "label": domain, "probs": [float], "num_classes": 1}],
     "usage": {"prompt_tokens": int, "total_tokens": int, "completion_tokens": 0}}

``model`` names what to score with: the bundle (its directory name, or left out) routes each row as
usual; a domain's name scores every row with that domain (``GET /v1/models`` lists the names it
accepts, as vLLM and OpenAI-style servers do). An input text is one sequence the model reads as
vLLM reads it (``core.formats.Formatted``): for a bundle with a chat template (an imported decoder
reward model) the conversation as its template already wrote it, read as is, as RLHF stacks send
it; for other bundles a prompt with an empty response, as in TEI's single text. Either is routed
on. A chat conversation ends with the response being judged: its last assistant turn is the
response, the turns before it the prompt, written with the bundle's chat template, or else as the
preference data writes dialogue (``Human: ...`` / ``Assistant: ...``, ``core.chat.flatten``).

Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so the clients of
these stacks show the message: an unknown ``model`` is 404, a malformed body 400 (vLLM's status for
a request it cannot validate), overload 429 as on every route.
"""
from __future__ import annotations

import time
import uuid

from core.chat import check_messages
from core.formats import Formatted
from core.scoring import sigmoid

from .engine import RewardEngine


class ApiError(Exception):
    """A request answered with ``status`` and OpenAI's error object."""

    def __init__(self, status: int, message: str, kind: str = "BadRequestError", param: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.param = status, kind, param

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.status}}


def model_names(engine: RewardEngine) -> list[str]:
    """The names ``model`` accepts: the bundle's directory name, then each domain of a routed bundle."""
    return [engine.manifest.path.name, *(engine.domains if engine.manifest.routed else ())]


def models_list(engine: RewardEngine) -> dict:
    """``GET /v1/models`` in OpenAI's shape."""
    created = int(engine.manifest.path.stat().st_mtime)
    return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "routerm",
                                        "root": str(engine.manifest.path), "parent": None}
                                       for name in model_names(engine)]}


def _conversation(messages) -> tuple[list | str, str]:
    """(prompt messages, response) of one chat conversation whose last turn is the assistant's answer
    (the engine formats them with the bundle's chat template, or flattens them where it has none)."""
    try:
        messages = check_messages(messages, "field 'messages'")
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc), param="messages") from None
    if messages[-1]["role"] != "assistant":
        raise ApiError(400, "the last message must be the assistant's response to judge, "
                            f"got role '{messages[-1]['role']}'", param="messages")
    return (messages[:-1] if len(messages) > 1 else ""), messages[-1]["content"]


def parse_classify(body, engine: RewardEngine) -> tuple[list[str], list[str], list[str] | None, bool, str]:
    """vLLM ``/classify`` -> (prompts, responses, domains or None, use_activation, model name answered)."""
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    model = body.get("model")
    names = model_names(engine)
    if model is not None and model not in names:
        raise ApiError(404, f"The model `{model}` does not exist; this server serves {names}",
                       kind="NotFoundError", param="model")
    activation = body.get("use_activation", True)
    if activation is None:
        activation = True
    if not isinstance(activation, bool):
        raise ApiError(400, "field 'use_activation' must be a boolean", param="use_activation")
    if ("input" in body) == ("messages" in body):
        raise ApiError(400, "give either 'input' (a string or a list of strings) or 'messages'")
    if "messages" in body:
        pairs = [_conversation(body["messages"])]
    else:
        texts = body["input"]
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise ApiError(400, "field 'input' must be a string or a non-empty list of strings", param="input")
        pairs = [(Formatted(t), "") for t in texts]   # as vLLM reads it: the text the model reads
    domain = model if model is not None and model != names[0] else None
    domains = None if domain is None else [domain] * len(pairs)
    return [p for p, _ in pairs], [r for _, r in pairs], domains, activation, model or names[0]


def classify_response(model: str, rewards: list[float], labels: list, activation: bool, tokens: int) -> dict:
    """vLLM's ClassificationResponse for one reward per row (``num_classes`` 1)."""
    data = [{"index": i, "label": label if label is not None else "reward",
             "probs": [sigmoid(r) if activation else r], "num_classes": 1}
            for i, (r, label) in enumerate(zip(rewards, labels))]
    return {"id": f"classify-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": model,
            "data": data, "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
                                    "prompt_tokens_details": None}}
