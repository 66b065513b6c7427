"""RewardEngine: rewards for (prompt, response) pairs from a bundle, routed to each row's domain.

Routing follows the manifest (core.manifest) through core.scoring, the one route-and-score
path (training's evaluation and the export guard use it too):

* baseline, MoRE: graph ``reward`` once over all rows (no domain; ``.domains`` is None per row);
* ARLISS switchable: graph ``switchable`` on the prompt-only encodings with every ``adapter_ids``
  = the router's, argmax of ``router_logits`` -> domain; then ONE reward run over all rows with
  ``adapter_ids`` = each row's domain adapter;
* RODOS, ARLISS merged: graph ``router`` on the prompt-only encodings, then rows grouped by domain,
  graph ``reward/<domain>`` per group, results put back in input order.

The router sees the prompt alone (core.text.encode_prompts), so identical prompts are routed
once, and every response to a prompt (a chosen/rejected pair) is scored by the same domain.
``domains=`` given skips the router. Texts are encoded as in training (core.text, the bundle's
truncation policy) by the bundle's ``tokenizer.json`` on the ``tokenizers`` library
(runtime.tokenizer); lone surrogates become U+FFFD. Serving imports neither torch nor
transformers unless ``backend="torch"`` is asked for.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import scoring
from core.scoring import BatchLimits
from core.chat import ChatFormat
from core.formats import TextFormat, encode_router_prompts, encode_rows, row_key
from core.text import PROMPT_MIN_DIVISOR, TRUNCATION_POLICIES, UNNAMED_POLICY

from .backends import BACKENDS
from core.inputs import check_domains, check_row, check_rows
from core.errors import BundleError
from core.manifest import MANIFEST, Manifest, load_manifest
from .tokenizer import BundleTokenizer


@dataclass(frozen=True)
class ScoreResult:
    rewards: np.ndarray                 # float32 [B]
    domains: list                       # [B] domain used per row (None for baseline/MoRE)
    router_probs: np.ndarray | None     # float32 [B, n_domains] when the router ran, else None
    tokens: np.ndarray | None = None    # int64 [B] tokens each row's reward graph read (after truncation); None from route()

    def __len__(self) -> int:
        return len(self.rewards)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def _check_truncation(manifest: Manifest) -> str:
    """The bundle's truncation policy (bundles without one predate the field: the old policy)."""
    policy = manifest.truncation.get("policy", UNNAMED_POLICY)
    divisor = manifest.truncation.get("prompt_min_divisor", PROMPT_MIN_DIVISOR)
    if policy not in TRUNCATION_POLICIES or divisor != PROMPT_MIN_DIVISOR:
        raise BundleError(f"{manifest.path / MANIFEST}: truncation {manifest.truncation} is not one this runtime "
                          f"applies ({', '.join(TRUNCATION_POLICIES)}; prompt_min_divisor {PROMPT_MIN_DIVISOR})")
    return policy


def _load_tokenizer(manifest: Manifest, section: dict | None = None, field: str = "tokenizer") -> BundleTokenizer:
    """A tokenizer section's ``tokenizer.json`` (checksummed in the manifest) on the ``tokenizers`` library."""
    where = manifest.path / MANIFEST
    section = manifest.tokenizer if section is None else section
    files = section.get("files") or []
    if not files:
        raise BundleError(f"{where}: field '{field}.files' lists no files")
    for rel in files:
        if rel not in manifest.files:
            raise BundleError(f"{where}: tokenizer file '{rel}' has no checksum in 'files'")
    spec = [rel for rel in files if Path(rel).name == "tokenizer.json"]
    if len(spec) != 1:
        raise BundleError(f"{where}: field '{field}.files' must list one tokenizer.json, got {files} "
                          f"(re-export the bundle with a fast tokenizer)")
    if "pad_token_id" not in section:
        raise BundleError(f"{where}: field '{field}.pad_token_id' is missing")
    return BundleTokenizer(manifest.path / spec[0], section["pad_token_id"], bool(section.get("uses_token_type_ids", False)))


def _text_format(manifest: Manifest, tokenizer: BundleTokenizer, section: dict, max_length: int, field: str,
                 policy: str) -> TextFormat:
    chat = section.get("chat_template")
    chat = None if chat is None else ChatFormat.from_dict(chat, f"{manifest.path / MANIFEST}: {field}.chat_template")
    return TextFormat(tokenizer, max_length, tokenizer.pad_token_id, policy, chat)


def text_formats(manifest: Manifest, tokenizer: BundleTokenizer) -> dict[str, TextFormat]:
    """How each graph role reads text: the bundle's tokenizer, or its own part's (``manifest.parts``).

    Key ``"router"`` is the routing pass (the ``router`` graph, or ``switchable`` with the router adapter).
    """
    policy = _check_truncation(manifest)
    default = _text_format(manifest, tokenizer, manifest.tokenizer, manifest.max_length, "tokenizer", policy)
    out = {role: default for role in manifest.graphs}
    if manifest.routed:
        out["router"] = dataclasses.replace(default, max_length=manifest.router_max_length)
    for role, part in manifest.parts.items():
        field = f"parts.{role}.tokenizer"
        out[role] = _text_format(manifest, _load_tokenizer(manifest, part["tokenizer"], field), part["tokenizer"],
                                 part["max_length"], field, policy)
    return out


class RewardEngine:
    """Score pairs from a bundle; safe to share between threads (see module docstring for routing)."""

    def __init__(self, manifest: Manifest, backend, tokenizer, limits: BatchLimits = BatchLimits()):
        self.manifest = manifest
        self.backend = backend
        self.tokenizer = tokenizer
        self.limits = limits
        self.truncation = _check_truncation(manifest)
        self.layout = scoring.Layout(manifest.domains, frozenset(manifest.graphs), manifest.adapter_ids)
        self.texts = text_formats(manifest, tokenizer)
        self.pad_ids = {role: fmt.pad_id for role, fmt in self.texts.items()}
        # One format for every reward graph (all but RODOS of imported models): rows encode in one call.
        self._one_format = len({id(self.texts[r]) for r in self.layout.roles if r != "router"}) == 1
        # A tokenizers.Tokenizer may raise "Already borrowed" when one instance encodes in two threads.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_bundle(cls, path: str | Path, backend: str = "onnxruntime", providers=None, threads: int | None = None,
                    allow_fallback: bool = False, max_tokens: int = scoring.DEFAULT_MAX_TOKENS, batch_size: int = 256,
                    checkpoint: str | Path | None = None) -> "RewardEngine":
        """Load and verify a bundle (every file's sha256) and make the backend's sessions once.

        ``providers``: ONNX Runtime provider names or 'tensorrt'/'cuda'/'cpu' (default: best available);
        ``threads``: intra-op threads; ``max_tokens``/``batch_size``: micro-batch limits (padded tokens, rows);
        ``checkpoint``: the torch backend's training checkpoint, when the bundle carries none (``torch_weights``).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        limits = BatchLimits(max_tokens, batch_size)
        manifest = load_manifest(path, verify=True)
        _check_truncation(manifest)  # before any session is made: a bad policy fails fast
        tokenizer = _load_tokenizer(manifest)
        extra = {"checkpoint": checkpoint} if backend == "torch" else {}
        runner = BACKENDS[backend](manifest, providers=providers, threads=threads, allow_fallback=allow_fallback, **extra)
        return cls(manifest, runner, tokenizer, limits)

    @property
    def domains(self) -> tuple[str, ...]:
        return self.manifest.domains

    @property
    def method(self) -> str:
        return self.manifest.method

    # --- public API ------------------------------------------------------------------------------

    def score(self, prompts: list, responses: list, domains: list[str] | None = None) -> ScoreResult:
        """Rewards [B] in input order, the domain per row, and router probabilities when it ran.

        Each prompt and response is a str or a list of chat messages ``[{"role", "content"}]``
        (core.formats says how each graph reads them).
        """
        prompts = check_rows(prompts, "prompts")
        responses = check_rows(responses, "responses", len(prompts))
        ids = None if domains is None else check_domains(domains, self.domains, len(prompts))
        n = len(self.domains)
        if not prompts:
            probs = np.zeros((0, n), np.float32) if self.manifest.routed and ids is None else None
            return ScoreResult(np.zeros(0, np.float32), [], probs, np.zeros(0, np.int64))
        probs = None
        if self.manifest.routed and ids is None:
            ids, probs = self._route(prompts)
        rewards, tokens = self._rewards(prompts, responses, ids)
        names = [None] * len(prompts) if ids is None else [self.domains[i] for i in ids]
        return ScoreResult(rewards, names, probs, tokens)

    def compare(self, prompt, response_a, response_b, domain: str | None = None) -> float:
        """P(a preferred over b) = sigmoid(r_a - r_b); both scored with the prompt's one domain."""
        prompt, response_a, response_b = (check_row(v, name) for v, name in (
            (prompt, "prompt"), (response_a, "response_a"), (response_b, "response_b")))
        result = self.score([prompt, prompt], [response_a, response_b], None if domain is None else [domain] * 2)
        return scoring.sigmoid(float(result.rewards[0]) - float(result.rewards[1]))

    def route(self, prompts: list[str]) -> ScoreResult:
        """Domain per prompt (router only); rewards are NaN. ValueError for unrouted methods."""
        if not self.manifest.routed:
            raise ValueError(f"method '{self.method}' has no router")
        prompts = check_rows(prompts, "prompts")
        if not prompts:
            return ScoreResult(np.zeros(0, np.float32), [], np.zeros((0, len(self.domains)), np.float32))
        ids, probs = self._route(prompts)
        return ScoreResult(np.full(len(prompts), np.nan, np.float32), [self.domains[i] for i in ids], probs)

    # --- internals -------------------------------------------------------------------------------

    def _route(self, prompts: list) -> tuple[list[int], np.ndarray]:
        keys = [row_key(p) for p in prompts]
        first = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        unique = [prompts[i] for i in first.values()]
        with self._tokenizer_lock:
            encoded = encode_router_prompts(self.texts["router"], unique)
        try:
            logits = scoring.route_logits(self.backend.run, self.layout, encoded, self.texts["router"].pad_id, self.limits)
        except ValueError as exc:  # a router graph of the wrong shape: the bundle is broken, not the request
            raise BundleError(f"{self.manifest.path / MANIFEST}: {exc}") from exc
        where = {key: i for i, key in enumerate(first)}
        back = np.asarray([where[k] for k in keys])
        return logits.argmax(-1)[back].tolist(), _softmax(logits)[back]

    def _encode(self, prompts: list, responses: list, ids: list[int] | None) -> list:
        """Each row encoded as the graph that scores it reads text (one format for all, or per domain)."""
        with self._tokenizer_lock:
            if self._one_format:
                return encode_rows(self.texts[next(r for r in self.layout.roles if r != "router")], prompts, responses)
            encoded = [None] * len(prompts)
            for d in sorted(set(ids)):
                rows = [i for i, x in enumerate(ids) if x == d]
                fmt = self.texts[f"reward/{self.domains[d]}"]
                for i, e in zip(rows, encode_rows(fmt, [prompts[i] for i in rows], [responses[i] for i in rows])):
                    encoded[i] = e
            return encoded

    def _rewards(self, prompts: list, responses: list, ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(rewards [B] float32, tokens read per row [B] int64)."""
        encoded = self._encode(prompts, responses, ids)
        tokens = np.fromiter((len(e.input_ids) for e in encoded), np.int64, len(encoded))
        return scoring.rewards(self.backend.run, self.layout, encoded, self.pad_ids, ids, self.limits), tokens
