"""The bundle contract: ``manifest.json``, parsed once into frozen dataclasses and validated.

A bundle is one directory written by ``export/to_onnx.py`` and read by ``runtime.RewardEngine``,
the C library and the benchmarks. Schema version 1::

    {
      "schema_version": 1,
      "method": "baseline" | "more" | "rodos" | "arliss",
      "domains": ["helpfulness", ...],                 # order = domain index everywhere
      "base_model": str,
      "max_length": int,                               # tokens per (prompt, response) pair
      "router_max_length": int,                        # tokens of prompt the router sees
      "truncation": {"policy": "prompt_tail_response_head_tail", "prompt_min_divisor": 4},
                                                       # or "keep_response_cut_prompt_start" (the
                                                       # policy of bundles without the field)
      "tokenizer": {"kind": "wordpiece" | "other", "files": [...], "pad_token_id": int,
                    "do_lower_case": bool, "uses_token_type_ids": bool,
                    "chat_template": {...} | null},            # core.chat.ChatFormat.to_dict(): rows
                                                       # are chat-formatted (core.formats)
      "parts": {"<role>": {"tokenizer": {...}, "max_length": int}},   # optional: graphs that read
                                                       # text their own way (RODOS of imported models)
      "precision": "fp32" | "fp16" | "int8" | "int8-blockwise" | "int4",   # PRECISIONS
      "lora": "switchable" | "merged" | null,          # ARLISS only
      "adapter_ids": {"<domain>": int, ..., "router": int} | null,   # ARLISS switchable only
      "graphs": {"<role>": {"file": str, "inputs": [str], "outputs": [str], "kind": str}},
      "files": {"<relative path>": "<sha256 hex>"},    # every file in the bundle but manifest.json
      "params": {"total": int, "active": int},
      "torch_weights": "torch" | null,                 # the Torch backend's checkpoint copy (opt-in)
      "export": {"source_checkpoint": str, ...}        # exporter, opset, library versions, validation
    }

``Manifest`` is that object, both ways: export builds one and writes ``Manifest.to_json()``;
``load_manifest`` parses the file back into an equal ``Manifest`` (the same JSON text again), and
validates it on the way.

``parts`` (absent or empty for bundles of one tokenizer) gives a graph role its own tokenizer
section (files under ``tokenizers/<name>/``) and token budget: a RODOS bundle of imported models
puts a DeBERTa reward model and a Qwen one under one router, each reading text as it was trained
to. ``parts["router"]["max_length"]`` equals ``router_max_length``. Roles without a part read text
as the top-level ``tokenizer`` and ``max_length`` say.

``torch_weights`` names a bundle directory holding the training checkpoint the graphs were
exported from (``export/to_onnx.py --torch-weights``: safetensors and JSON, the ARLISS base model
under ``torch/base``), checksummed in ``files`` like the graphs: the runtime's Torch backend serves
it, and only it (or a checkpoint passed explicitly). ``export.source_checkpoint`` is provenance
only (where the exporter read it); nothing loads from it. The ONNX backend and the C library
never read either.

Graph roles and kinds (all inputs int64 [batch, seq] unless noted; outputs float32):

* ``reward`` (baseline, MoRE), ``reward/<domain>`` (RODOS, ARLISS merged): kind ``reward``;
  inputs ``input_ids``, ``attention_mask`` (+ ``token_type_ids``); output ``logits`` [batch, 1].
* any graph may keep its weights in external-data files (``data``: bundle-relative names, each
  checksummed in ``files``), as graphs over protobuf's 2 GB limit must; the runtime reads the
  locations the graph file itself names and refuses one outside the bundle or unlisted before
  ONNX Runtime opens it (``check_graph_data``).
* ``router`` (RODOS, ARLISS merged): kind ``router``, same inputs over the *prompt-only*
  encoding (core.text.encode_prompts); output ``logits`` [batch, n_domains].
* ``switchable`` (ARLISS switchable): kind ``switchable``; inputs as above plus ``adapter_ids``
  int64 [batch]; outputs ``rewards`` [batch] and ``router_logits`` [batch, n_domains]. Routing
  runs it on the prompt encoding with every ``adapter_ids`` = ``adapter_ids["router"]``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BundleError
from .hashing import sha256_file
from .onnx_refs import GraphFileError, external_locations, outside

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
METHODS = ("baseline", "more", "rodos", "arliss")
ROUTED_METHODS = ("rodos", "arliss")       # an external router picks each prompt's domain
PRECISIONS = ("fp32", "fp16", "int8", "int8-blockwise", "int4")   # int8: rowwise; all: export.optimize
# Precisions older bundles may declare, refused by name with the reason RouteRM dropped them.
RETIRED_PRECISIONS = {
    "int8-dynamic": "one activation scale per tensor moved more validation decisions than export's 98% guard "
                    "allows; re-export the checkpoint with precision 'int8' (one scale per row)",
}
KINDS = {"reward": ("logits",), "router": ("logits",), "switchable": ("rewards", "router_logits")}


@dataclass(frozen=True)
class Graph:
    role: str
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kind: str
    data: tuple[str, ...] = ()      # external-data files its weights are in (bundle-relative; graphs over 2 GB)


@dataclass(frozen=True)
class Manifest:
    path: Path                      # the bundle directory
    method: str
    domains: tuple[str, ...]
    base_model: str
    max_length: int
    router_max_length: int
    truncation: dict
    tokenizer: dict
    precision: str
    lora: str | None
    adapter_ids: dict | None
    graphs: dict                    # role -> Graph
    files: dict                     # relative path -> sha256
    params: dict
    export: dict
    torch_weights: str | None = None  # bundle-relative directory of the Torch backend's checkpoint copy
    parts: dict = field(default_factory=dict)   # role -> {"tokenizer": section, "max_length": int}

    @property
    def routed(self) -> bool:
        return self.method in ROUTED_METHODS

    def graph_path(self, role: str) -> Path:
        return self.path / self.graphs[role].file

    def to_dict(self) -> dict:
        """The JSON object of ``manifest.json`` (schema v1, every field; ``path`` is where it lies, not in it)."""
        return {
            "schema_version": SCHEMA_VERSION, "method": self.method, "domains": list(self.domains),
            "base_model": self.base_model, "max_length": self.max_length,
            "router_max_length": self.router_max_length, "truncation": self.truncation,
            "tokenizer": self.tokenizer, "precision": self.precision, "lora": self.lora,
            "adapter_ids": self.adapter_ids,
            "graphs": {role: {"file": g.file, "kind": g.kind, "inputs": list(g.inputs), "outputs": list(g.outputs),
                              **({"data": list(g.data)} if g.data else {})}
                       for role, g in self.graphs.items()},
            "torch_weights": self.torch_weights, "params": self.params, "export": self.export, "files": self.files,
            **({"parts": self.parts} if self.parts else {}),
        }

    def to_json(self) -> str:
        """The text of ``manifest.json``; ``load_manifest`` reads it back into an equal ``Manifest``."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _inside(bundle: Path, rel: str, field: str) -> Path:
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise BundleError(f"{bundle / MANIFEST}: {field} names '{rel}', which is outside the bundle")
    full = (bundle / rel).resolve()
    if bundle.resolve() not in full.parents:
        raise BundleError(f"{bundle / MANIFEST}: {field} names '{rel}', which is outside the bundle")
    return full


def _need(raw: dict, key: str, types, where: Path):
    if key not in raw:
        raise BundleError(f"{where}: missing field '{key}'")
    if not isinstance(raw[key], types):
        raise BundleError(f"{where}: field '{key}' has the wrong type ({type(raw[key]).__name__})")
    return raw[key]


def expected_roles(method: str, lora: str | None, domains: tuple[str, ...]) -> set[str]:
    if method in ("baseline", "more"):
        return {"reward"}
    if method == "arliss" and lora == "switchable":
        return {"switchable"}
    return {"router", *(f"reward/{d}" for d in domains)}


def _parts(parts, bundle: Path, graphs: dict, where: Path) -> dict:
    """The optional ``parts`` field: per graph role, its own tokenizer section and ``max_length``."""
    if not isinstance(parts, dict):
        raise BundleError(f"{where}: field 'parts' must be an object of graph roles")
    for role, part in parts.items():
        if role not in graphs:
            raise BundleError(f"{where}: field 'parts' names '{role}', which is not a graph of this bundle")
        if not isinstance(part, dict) or not isinstance(part.get("tokenizer"), dict):
            raise BundleError(f"{where}: parts.{role} needs a 'tokenizer' object")
        if isinstance(part.get("max_length"), bool) or not isinstance(part.get("max_length"), int):
            raise BundleError(f"{where}: parts.{role}.max_length must be an int")
        for rel in part["tokenizer"].get("files", []):
            _inside(bundle, rel, f"parts.{role}.tokenizer.files")
    return parts


def load_manifest(bundle: str | Path, verify: bool = True) -> Manifest:
    """Parse and validate ``bundle/manifest.json``; with ``verify``, check every file's sha256."""
    bundle = Path(bundle)
    where = bundle / MANIFEST
    if not where.is_file():
        raise BundleError(f"{where}: no manifest (is '{bundle}' a RouteRM bundle?)")
    try:
        raw = json.loads(where.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{where}: expected a JSON object")
    version = _need(raw, "schema_version", int, where)
    if version != SCHEMA_VERSION:
        raise BundleError(f"{where}: unknown schema_version {version} (this runtime reads {SCHEMA_VERSION})")
    method = _need(raw, "method", str, where)
    if method not in METHODS:
        raise BundleError(f"{where}: field 'method' is '{method}', expected one of {METHODS}")
    domains = tuple(_need(raw, "domains", list, where))
    if not domains or not all(isinstance(d, str) for d in domains) or len(set(domains)) != len(domains):
        raise BundleError(f"{where}: field 'domains' must be a non-empty list of unique names")
    precision = raw.get("precision", "fp32")
    if not isinstance(precision, str) or precision not in PRECISIONS:
        why = RETIRED_PRECISIONS.get(precision) if isinstance(precision, str) else None
        raise BundleError(f"{where}: field 'precision' is {precision!r}, " +
                          (f"which RouteRM no longer serves: {why}" if why else f"expected one of {PRECISIONS}"))
    lora = raw.get("lora")
    files = _need(raw, "files", dict, where)
    for rel in files:
        _inside(bundle, rel, "files")
    graphs = {}
    for role, g in _need(raw, "graphs", dict, where).items():
        if not isinstance(g, dict) or g.get("kind") not in KINDS:
            raise BundleError(f"{where}: graph '{role}' has no valid 'kind' (one of {sorted(KINDS)})")
        _inside(bundle, g.get("file"), f"graphs.{role}.file")
        if g["file"] not in files:
            raise BundleError(f"{where}: graph file '{g['file']}' has no checksum in 'files'")
        missing = [o for o in KINDS[g["kind"]] if o not in g.get("outputs", [])]
        if missing:
            raise BundleError(f"{where}: graph '{role}' lacks output(s) {missing}")
        data = g.get("data", [])
        if not isinstance(data, list) or not all(isinstance(d, str) for d in data):
            raise BundleError(f"{where}: graphs.{role}.data must be a list of file names")
        for rel in data:
            _inside(bundle, rel, f"graphs.{role}.data")
            if rel not in files:
                raise BundleError(f"{where}: graph data file '{rel}' has no checksum in 'files'")
        graphs[role] = Graph(role, g["file"], tuple(g.get("inputs", [])), tuple(g["outputs"]), g["kind"], tuple(data))
    want = expected_roles(method, lora, domains)
    if set(graphs) != want:
        raise BundleError(f"{where}: method '{method}' (lora={lora}) needs graphs {sorted(want)}, has {sorted(graphs)}")
    adapter_ids = raw.get("adapter_ids")
    if "switchable" in graphs:
        if not isinstance(adapter_ids, dict) or set(adapter_ids) != {*domains, "router"}:
            raise BundleError(f"{where}: field 'adapter_ids' must map every domain and 'router' to an index")
    tokenizer = _need(raw, "tokenizer", dict, where)
    for rel in tokenizer.get("files", []):
        _inside(bundle, rel, "tokenizer.files")
    parts = _parts(raw.get("parts") or {}, bundle, graphs, where)
    torch_weights = raw.get("torch_weights")
    if torch_weights is not None:
        _inside(bundle, torch_weights, "torch_weights")
    manifest = Manifest(
        path=bundle, method=method, domains=domains, base_model=str(raw.get("base_model", "")),
        max_length=int(_need(raw, "max_length", int, where)),
        router_max_length=int(raw.get("router_max_length", raw["max_length"])),
        truncation=raw.get("truncation", {}), tokenizer=tokenizer,
        precision=precision, lora=lora, adapter_ids=adapter_ids,
        graphs=graphs, files=files, params=raw.get("params", {}), export=raw.get("export", {}),
        torch_weights=torch_weights, parts=parts)
    if verify:
        verify_files(manifest)
    return manifest


def check_graph_data(manifest: Manifest, role: str) -> None:
    """The external-data files graph ``role`` names (read from the graph file itself, before ONNX
    Runtime opens it) are the ones the manifest lists and checksums, inside the bundle."""
    graph = manifest.graphs[role]
    path = manifest.graph_path(role)
    try:
        locations = external_locations(path)
    except (OSError, GraphFileError) as exc:
        raise BundleError(f"bundle file '{graph.file}' is not a readable ONNX graph ({exc})") from None
    for location in sorted(locations):
        rel = (Path(graph.file).parent / location).as_posix() if not outside(location) else None
        if rel is None or rel not in graph.data:
            raise BundleError(f"bundle file '{graph.file}' keeps weights in '{location}', which "
                              + ("is outside the bundle" if rel is None else "the manifest does not list in "
                                 f"graphs.{role}.data") + "; refusing to open it")


def verify_files(manifest: Manifest) -> None:
    """Every listed file exists and matches its sha256 (BundleError naming the file otherwise)."""
    for rel, digest in manifest.files.items():
        path = manifest.path / rel
        if not path.is_file():
            raise BundleError(f"bundle file '{rel}' is missing from {manifest.path}")
        if sha256_file(path) != digest:
            raise BundleError(f"bundle file '{rel}' in {manifest.path} does not match its checksum (changed?)")
