"""Import the reward models people already have into bundles, and route between them.

    python export/to_onnx.py --from-hf DIR [--domain NAME]                         one model (method baseline)
    python export/to_onnx.py --method rodos --domain-model math=DIR ... --router DIR   RODOS over existing models
    python export/to_onnx.py --method arliss --base DIR --adapter math=PEFT_DIR ... --router-adapter PEFT_DIR

with ``--precision``, ``--out``, ``--max-length``, ``--opset``, ``--optimize`` as for a trained checkpoint.
Python API: ``import_bundle(ImportSpec(...), out)``. Steps:

1. **open** every folder and check it before any graph is made (export.hf_model: labels, head,
   architecture, remote code, tokenizer, chat template; export.peft_import: adapters and their base);
2. **graphs**: one PyTorch module per role, the model's own forward (``logits``, its pooling and
   head) or, for ARLISS, the base with every adapter stacked per row (export.peft_import);
3. **export + parity + precision pass**: the same steps as a trained checkpoint's (export.to_onnx);
4. **text**: the bundle's tokenizers (``tokenizers`` library, reduced chat template) must give the
   ids transformers gives (``apply_chat_template(..., tokenize=True)``, or the tokenizer's text
   pair) on sample rows of strings and of messages; then the bundle's graphs, fed as the engine
   feeds them (padded batches), must give the rewards the transformers model gives on its own ids
   one row at a time (bound ``PARITY_BOUND``; ARLISS is held to PEFT in its tests);
5. **write**: tokenizer files (RODOS: each part's under ``tokenizers/<role>/``) and the manifest.

Nothing is judged by accuracy here: an imported model comes without RouteRM's validation split, so
a reduced-precision import is written with ``export.validation.guard = "unvalidated"``.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core import scoring
from core.formats import TextFormat, encode_router_prompts, encode_rows
from core.manifest import Manifest
from core.text import PROMPT_MIN_DIVISOR, TRUNCATION_POLICY
from export import bundle, validate
from export.hf_model import HFModel, ImportModelError, open_model
from export.spec import ExportSpec

IMPORT_METHODS = ("baseline", "rodos", "arliss")
UNCUT = 1 << 20
# Rows the text and reward checks run: strings and messages, a system turn, several turns, non-ASCII.
SAMPLE_ROWS = (
    ("What is 12 * 7?", "12 * 7 = 84."),
    ("Write a haiku about rain.", "Soft rain on the roof\nthe garden drinks in silence\nmorning smells of earth"),
    ([{"role": "system", "content": "You are a careful assistant."},
      {"role": "user", "content": "Grüße! Wie spät ist es in Tokio? 你好"}],
     [{"role": "assistant", "content": "Ich kann die Uhrzeit nicht sehen, aber Tokio ist UTC+9. ☃"}]),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
      {"role": "user", "content": "Name a prime above 10."}], "11 is prime."),
    ("", "An empty prompt still gets a reward."),
)


@dataclass(frozen=True)
class ImportSpec:
    """What to import. ``models``: ((domain, folder), ...): one HF reward model (baseline), one per
    domain (rodos), or one PEFT adapter per domain (arliss). ``router``: an HF sequence classifier
    (rodos) or a PEFT adapter (arliss) whose labels name the domains. ``base``: the adapters' base."""

    method: str
    models: tuple[tuple[str, Path], ...]
    router: Path | None = None
    base: Path | None = None
    precision: str = "fp32"
    optimize: bool = True
    opset: int = 17
    max_length: int | None = None
    external_data: bool = False

    def __post_init__(self):
        if self.method not in IMPORT_METHODS:
            raise ValueError(f"an import makes one of {IMPORT_METHODS}, not '{self.method}'")
        names = [d for d, _ in self.models]
        if not names or len(set(names)) != len(names) or not all(isinstance(d, str) and d for d in names):
            raise ValueError(f"import domains must be unique non-empty names, got {names}")
        if self.method == "baseline" and (len(self.models) != 1 or self.router or self.base):
            raise ValueError("--from-hf imports one model: no --router, --base or further models")
        if self.method in ("rodos", "arliss") and self.router is None:
            raise ValueError(f"--method {self.method} routes between domains: give "
                             f"{'--router DIR' if self.method == 'rodos' else '--router-adapter PEFT_DIR'}")
        if (self.method == "arliss") != (self.base is not None):
            raise ValueError("--base names the base model of ARLISS adapters, and only of them")
        self.export_spec(False)  # the same checks as a trained checkpoint's export

    def export_spec(self, fusable: bool) -> ExportSpec:
        return ExportSpec(self.method, self.precision, optimize=self.optimize and fusable, opset=self.opset,
                          external_data=self.external_data)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.models)


@dataclass(frozen=True)
class Part:
    """One graph role: its module and the model whose tokenizer, chat template and lengths it reads with."""

    role: str
    module: object
    hf: HFModel


def open_parts(spec: ImportSpec) -> tuple[list[Part], dict | None]:
    """Step 1-2: every folder opened and checked, one module per role; ARLISS's adapter ids."""
    from export.graphs import ClassifierLogits
    if spec.method == "baseline":
        hf = open_model(spec.models[0][1], 1, spec.max_length)
        return [Part("reward", ClassifierLogits(hf.model), hf)], None
    if spec.method == "rodos":
        router = open_model(spec.router, len(spec.domains), spec.max_length)
        if set(router.labels) != set(spec.domains):
            raise ImportModelError(f"{Path(spec.router) / 'config.json'}: the router's id2label names {list(router.labels)}, "
                                   f"the domain models are {list(spec.domains)}; they must be the same names")
        order = {d: i for i, d in enumerate(router.labels)}
        models = sorted(spec.models, key=lambda dm: order[dm[0]])
        parts = [Part("router", ClassifierLogits(router.model), router)]
        for domain, path in models:
            hf = open_model(path, 1, spec.max_length)
            parts.append(Part(f"reward/{domain}", ClassifierLogits(hf.model), hf))
        return parts, None
    from export.peft_import import switchable_module
    base = open_model(spec.base, 1, spec.max_length)
    module, adapter_ids = switchable_module(base, dict(spec.models), spec.router)
    return [Part("switchable", module, base)], adapter_ids


def domains_of(parts: list[Part], spec: ImportSpec, adapter_ids: dict | None) -> tuple[str, ...]:
    """Domain order: the router's label order (rodos, arliss), else the flag's."""
    if spec.method == "rodos":
        return tuple(p.role.split("/", 1)[1] for p in parts if p.role.startswith("reward/"))
    if adapter_ids:
        return tuple(sorted((d for d in adapter_ids if d != "router"), key=adapter_ids.get))
    return spec.domains


def graphs_for(part: Part, layout: scoring.Layout, adapter_ids: dict | None):
    from export.to_onnx import Graphs
    config = part.hf.model.config
    heads = getattr(config, "num_attention_heads", 1)
    return Graphs({part.role: part.module}, layout, adapter_ids, part.hf.token_types, config.vocab_size, heads,
                  config.hidden_size, min(64, part.hf.max_length), part.hf.pad_id)


def export_parts(parts: list[Part], spec: ImportSpec, layout: scoring.Layout, adapter_ids: dict | None, stage: Path):
    """Step 3: each role through Optimum, checked at fp32, then its precision pass (export.to_onnx)."""
    from export.to_onnx import Shipped, export_raw, finish
    shipped = Shipped()
    for part in parts:
        g = graphs_for(part, layout, adapter_ids)
        xspec = spec.export_spec(part.hf.fusable)
        reference = validate.torch_runner(g.modules)
        raw, inputs, feeds = export_raw(part.role, stage, xspec, g, reference)
        finish(part.role, raw, inputs, feeds, xspec, g, reference, shipped)
    return shipped


# --- step 4: text and reward parity --------------------------------------------------------------

def sample_rows(fmt: TextFormat) -> tuple[list, list]:
    """SAMPLE_ROWS, leaving out rows with roles the template does not know (Gemma's has no system)."""
    known = set(fmt.chat.roles) if fmt.chat is not None else None
    rows = [(p, r) for p, r in SAMPLE_ROWS
            if known is None or all(m["role"] in known for side in (p, r) if isinstance(side, list) for m in side)]
    return [p for p, _ in rows], [r for _, r in rows]


def reference_inputs(hf: HFModel, fmt: TextFormat, prompt, response, router: bool) -> dict:
    """What transformers feeds the model for a row (``router``: the prompt alone): ``input_ids``
    and, for models with segment embeddings, ``token_type_ids`` (lists)."""
    from core.chat import conversation, flatten
    if fmt.chat is not None:
        prompt_msgs, response_msgs = conversation(prompt, response)
        ids = hf.tokenizer.apply_chat_template(prompt_msgs + ([] if router else response_msgs), tokenize=True)
        return {"input_ids": list(ids["input_ids"] if isinstance(ids, dict) else ids)}
    text = [flatten(prompt, "prompt")] if router else [flatten(prompt, "prompt"), flatten(response, "response")]
    enc = hf.tokenizer(*text)
    return {k: list(enc[k]) for k in ("input_ids", "token_type_ids") if k in enc and (k == "input_ids" or hf.token_types)}


def check_text(part: Part, fmt: TextFormat, router: bool) -> list:
    """The bundle's ids (and segment ids) of the sample rows, each equal to transformers'; returns them."""
    prompts, responses = sample_rows(fmt)
    encoded = encode_router_prompts(fmt, prompts) if router else encode_rows(fmt, prompts, responses)
    for i, (p, r, e) in enumerate(zip(prompts, responses, encoded)):
        want = reference_inputs(part.hf, fmt, p, r, router)
        ours = {"input_ids": list(e.input_ids), **({"token_type_ids": list(e.token_type_ids)} if "token_type_ids" in want else {})}
        if ours != want:
            raise ImportModelError(f"'{part.hf.path}': the bundle's tokenizer gives other ids than transformers for "
                                   f"sample row {i} ({len(e.input_ids)} vs {len(want['input_ids'])} tokens); refusing "
                                   f"to write a bundle that would score other text than the model reads")
    return encoded


def check_rewards(part: Part, fmt: TextFormat, encoded: list, session) -> float:
    """max |bundle - transformers| over the sample rows (``encoded``: check_text's): ONNX on padded
    batches, the model one row at a time on transformers' own inputs."""
    import torch
    prompts, responses = sample_rows(fmt)
    router = part.role == "router"
    got = scoring.run_rows(validate.ort_runner({part.role: session}), part.role, "logits", encoded, fmt.pad_id)
    want = []
    with torch.inference_mode():
        for p, r in zip(prompts, responses):
            feeds = {k: torch.tensor([v]) for k, v in reference_inputs(part.hf, fmt, p, r, router).items()}
            logits = part.hf.model(**feeds, attention_mask=torch.ones_like(feeds["input_ids"])).logits
            want.append(logits[0].float().numpy())
    return float(np.abs(got - np.stack(want)).max())


# --- step 5: write -----------------------------------------------------------------------------------

def tokenizer_files(part: Part, stage: Path, under: str) -> tuple[dict, TextFormat]:
    """Copy ``part``'s tokenizer into ``stage/under``; its manifest section and the TextFormat the
    engine will build from those files (the runtime's BundleTokenizer, so step 4 checks what serves),
    uncut: the sample rows are short, and cutting is core.text's, tested on its own."""
    from runtime.tokenizer import BundleTokenizer
    hf = part.hf
    files = bundle.copy_tokenizer(hf.path, stage, under)
    section = bundle.tokenizer_section(hf.tokenizer, hf.path, files, hf.token_types)
    section["pad_token_id"] = hf.pad_id
    section["chat_template"] = None if hf.chat is None else hf.chat.to_dict()
    spec = next(f for f in files if Path(f).name == "tokenizer.json")
    tok = BundleTokenizer(stage / spec, hf.pad_id, hf.token_types)
    return section, TextFormat(tok, UNCUT, hf.pad_id, TRUNCATION_POLICY, hf.chat)


def texts_and_checks(parts: list[Part], stage: Path, shipped, precision: str) -> tuple[dict, dict, dict]:
    """Tokenizer sections (top level: the first non-router part's; ``parts``: the others), checked."""
    first = next(p for p in parts if p.role != "router")
    sections, checks, reward_diffs = {}, {}, {}
    for part in parts:
        under = "" if part is first else f"tokenizers/{part.role.replace('/', '_')}"
        section, fmt = tokenizer_files(part, stage, under)
        sections[part.role] = (section, part.hf.max_length)
        routers = [True, False] if part.role == "switchable" else [part.role == "router"]
        encoded = {router: check_text(part, fmt, router) for router in routers}
        checks[part.role] = sum(len(e) for e in encoded.values())
        if part.role != "switchable":
            reward_diffs[part.role] = check_rewards(part, fmt, encoded[part.role == "router"], shipped.sessions[part.role])
            validate.check_parity(f"{part.role} (sample rows against transformers)", reward_diffs[part.role], precision)
    return sections, checks, reward_diffs


def export_section(spec: ImportSpec, shipped, checks: dict, reward_diffs: dict, stage: Path, started: float) -> dict:
    """``manifest["export"]`` of an import: provenance, the checks it passed, its figures."""
    from export.to_onnx import EXPORTER
    return {
        "exporter": EXPORTER, "opset": spec.opset, "versions": bundle.library_versions(),
        "source": {"kind": "huggingface", "method": spec.method, "models": {d: str(Path(p).resolve()) for d, p in spec.models},
                   "router": None if spec.router is None else str(Path(spec.router).resolve()),
                   "base": None if spec.base is None else str(Path(spec.base).resolve())},
        "optimization": shipped.optimization,
        "validation": {"parity_shape": [validate.PARITY_BATCH, validate.PARITY_SEQ], "max_abs_diff": shipped.diffs,
                       "text_rows_checked": checks, "sample_reward_max_abs_diff": reward_diffs,
                       "guard": ("unvalidated: an imported model has no RouteRM validation split"
                                 if spec.precision != "fp32" else None)},
        "figures": {"max_abs_diff": max(shipped.diffs.values()), "bundle_mb": round(bundle.bundle_mb(stage), 3),
                    "export_seconds": round(time.perf_counter() - started, 2)},
    }


def import_bundle(spec: ImportSpec, out) -> Path:
    """Import as ``spec`` says into the bundle directory ``out``; a failed import leaves ``out`` as it was."""
    from export.to_onnx import graph_entries, staged
    started = time.perf_counter()
    out = Path(out)
    parts, adapter_ids = open_parts(spec)
    domains = domains_of(parts, spec, adapter_ids)
    layout = scoring.Layout(domains, frozenset(p.role for p in parts), adapter_ids)
    with staged(out) as stage:
        shipped = export_parts(parts, spec, layout, adapter_ids, stage)
        sections, checks, reward_diffs = texts_and_checks(parts, stage, shipped, spec.precision)
        top = next(p for p in parts if p.role != "router")
        router = next((p for p in parts if p.role == "router"), top)
        total = sum(sum(t.numel() for t in p.hf.model.parameters()) for p in parts)
        export = export_section(spec, shipped, checks, reward_diffs, stage, started)
        bundle.write_manifest(Manifest(
            path=stage, method=spec.method, domains=domains, base_model=str(top.hf.model.config.name_or_path or top.hf.path.name),
            max_length=top.hf.max_length, router_max_length=router.hf.max_length,
            truncation={"policy": TRUNCATION_POLICY, "prompt_min_divisor": PROMPT_MIN_DIVISOR},
            tokenizer=sections[top.role][0], precision=spec.precision, lora="switchable" if adapter_ids else None,
            adapter_ids=adapter_ids, graphs=graph_entries(stage, shipped), files={}, params={"total": int(total), "active": int(total)},
            export=export,
            parts={role: {"tokenizer": sec, "max_length": n} for role, (sec, n) in sections.items() if role != top.role}))
    return out


# --- command line (export/to_onnx.py's import flags) -----------------------------------------------

def add_import_flags(parser: argparse.ArgumentParser) -> None:
    imports = parser.add_argument_group("import Hugging Face / TRL / PEFT reward models (export.from_hf)")
    imports.add_argument("--from-hf", type=Path, metavar="DIR", help="one local *ForSequenceClassification reward model")
    imports.add_argument("--domain", default="general", help="--from-hf: the name of its one domain")
    imports.add_argument("--domain-model", action="append", default=[], metavar="DOMAIN=DIR",
                         help="--method rodos: a reward model per domain")
    imports.add_argument("--router", type=Path, metavar="DIR", help="--method rodos: a sequence classifier whose "
                         "id2label names the domains")
    imports.add_argument("--base", type=Path, metavar="DIR", help="--method arliss: the adapters' base model")
    imports.add_argument("--adapter", action="append", default=[], metavar="DOMAIN=PEFT_DIR",
                         help="--method arliss: a LoRA reward adapter per domain (task_type SEQ_CLS)")
    imports.add_argument("--router-adapter", type=Path, metavar="PEFT_DIR", help="--method arliss: the router adapter")
    imports.add_argument("--max-length", type=int, help="tokens a graph reads (default: the model's, at most 2048)")


def _pairs(flags: list[str], name: str) -> tuple[tuple[str, Path], ...]:
    out = []
    for flag in flags:
        domain, sep, path = flag.partition("=")
        if not sep or not domain or not path:
            raise ValueError(f"{name} takes DOMAIN=DIR, got '{flag}'")
        out.append((domain, Path(path)))
    return tuple(out)


def import_spec_of(args: argparse.Namespace):
    """The ImportSpec the import flags ask for, or None when they ask for none (a trained checkpoint)."""
    if not any(getattr(args, flag, None) for flag in ("from_hf", "domain_model", "adapter", "base", "router",
                                                      "router_adapter")):
        return None
    common = dict(precision=args.precision, optimize=args.optimize, opset=args.opset, max_length=args.max_length,
                  external_data=args.external_data)
    if args.from_hf:
        if args.method not in (None, "baseline"):
            raise ValueError(f"--from-hf imports one reward model (method baseline); --method {args.method} imports "
                             f"with --domain-model/--router (rodos) or --base/--adapter/--router-adapter (arliss)")
        return ImportSpec("baseline", ((args.domain, args.from_hf),), **common)
    if args.method == "rodos":
        return ImportSpec("rodos", _pairs(args.domain_model, "--domain-model"), router=args.router, **common)
    if args.method == "arliss":
        return ImportSpec("arliss", _pairs(args.adapter, "--adapter"), router=args.router_adapter, base=args.base, **common)
    raise ValueError(f"the import flags make a baseline (--from-hf), rodos or arliss bundle, not --method {args.method}")
