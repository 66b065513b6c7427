"""Export a trained RouteRM checkpoint to a self-describing ONNX bundle.

    python export/to_onnx.py --method arliss [--checkpoint DIR] [--out DIR] [--lora switchable|merged]
                             [--precision fp32|fp16|int8|int8-blockwise|int4] [--optimize/--no-optimize] [--opset 17]
                             [--torch-weights] [--val-pairs N]

Defaults: ``--checkpoint checkpoints/<method>`` (what ``make reproduce`` writes; a missing one is an
error naming the command that makes it, nothing is trained here), ``--out`` the spec's default
folder, ``bundles/<method>`` with ``-<precision>`` (not fp32), ``-merged`` (ARLISS merged) and
``-noopt`` appended for non-default variants, e.g. ``bundles/arliss-int8-merged``
(``export.spec.ExportSpec``).

Python API: ``export_bundle(checkpoint, ExportSpec(method, precision, lora, optimize, opset), out)``.
Its steps, one function each:

1. **load** (:func:`load`): the checkpoint (``models.checkpoint``) and its validation pairs;
2. **build graphs** (:func:`build_graphs`): one PyTorch module per graph role (``export.graphs``);
3. **export + parity** (:func:`export_raw`): each module through Optimum, the raw graph checked
   against PyTorch at fp32 on untraced shapes (``export.validate``);
4. **precision pass + optimise** (:func:`finish`): the precision pass and the fastest fusion
   (``export.optimize``), the shipped graph checked again;
5. **validate** (:func:`check_decisions`): for fp16/int8, the share of validation decisions equal to
   PyTorch fp32 (the guard), and the accuracy when a split is at hand;
6. **write bundle** (:func:`write_bundle`): the tokenizer (and, with ``torch_weights``, the
   checkpoint's safetensors for the Torch backend) and ``manifest.json`` (``core.manifest.Manifest``,
   written by ``export.bundle`` and read back by the runtime's parser).

Reward models trained elsewhere (Hugging Face, TRL, PEFT) import through the same steps with
``--from-hf DIR``, ``--method rodos --domain-model D=DIR ... --router DIR`` or ``--method arliss
--base DIR --adapter D=DIR ... --router-adapter DIR`` (``export.from_hf``).

The validation figures go into the manifest's ``export.figures``; recording them across exports
(``results/export.json``) is reporting, ``lab/export_results.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.manifest import METHODS, PRECISIONS, Graph, Manifest, load_manifest
from core.scoring import Layout
from core.text import PROMPT_MIN_DIVISOR
from export import bundle, validate
from export.spec import DEFAULT_OPSET, LORA_MODES, ExportSpec
from export.validate import ExportValidationError
from models.checkpoint import CARD, Checkpoint, load_checkpoint, params_of

# export.graphs and export.optimize (Optimum, ONNX, ONNX Runtime: the export extra) load when an
# export starts, so that `--help` and the error paths stay quick.

DEFAULT_VAL_PAIRS = 100          # validation pairs per domain for the accuracy check
EXPORTER = "optimum.exporters.onnx.export (TorchScript, dynamo=False)"


def graph_file(role: str) -> str:
    return role.replace("/", "_") + ".onnx"


def graph_kind(role: str) -> str:
    return role if role in ("switchable", "router") else "reward"


def router_length(ckpt: Checkpoint) -> int:
    """Tokens of prompt the router sees (the card's ``router_max_length``, else its ``max_length``)."""
    return int(ckpt.card.extra.get("router_max_length", ckpt.card.max_length))


# --- 1. load --------------------------------------------------------------------------------------

def open_checkpoint(checkpoint: Path, method: str) -> Checkpoint:
    if not (checkpoint / CARD).is_file():
        raise FileNotFoundError(
            f"no trained checkpoint at '{checkpoint}' (no {CARD}); make one with "
            f"`python -m training train --method {method}` (full, written to checkpoints/{method}) or "
            f"`python -m training train --method {method} --quick` (minutes, checkpoints/quick/{method})")
    return load_checkpoint(checkpoint, expect_method=method)


def validation_pairs(ckpt: Checkpoint, splits: dict | None, val_pairs: int | None) -> dict | None:
    """``{domain: [Pair]}`` from the validation split, or None when no split holds these domains."""
    from core.data import DOMAINS, load_splits, take
    if splits is None:
        if not set(ckpt.domains) <= set(DOMAINS):
            return None
        splits = load_splits(ckpt.domains)
    missing = [d for d in ckpt.domains if d not in splits]
    if missing:
        raise ValueError(f"splits lack the checkpoint's domain(s) {missing}")
    return {d: take(splits[d]["validation"], val_pairs) for d in ckpt.domains}


def load(checkpoint: Path, spec: ExportSpec, splits: dict | None, val_pairs: int | None) -> tuple[Checkpoint, dict | None]:
    """The checkpoint (of ``spec.method``) and its validation pairs (None: no split at hand)."""
    ckpt = open_checkpoint(checkpoint, spec.method)
    pairs = validation_pairs(ckpt, splits, val_pairs)
    if pairs is None and spec.reduced:
        raise ValueError(f"{spec.precision} export checks accuracy on a validation split, and the vendored data lacks "
                         f"domains {list(ckpt.domains)}: pass splits={{domain: {{'validation': [Pair, ...]}}}}")
    return ckpt, pairs


# --- 2. build graphs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Graphs:
    """One PyTorch module per graph role and what exporting them needs."""

    modules: dict                   # role -> nn.Module (export.graphs.graph_modules)
    layout: Layout
    adapter_ids: dict | None        # ARLISS switchable: {domain: index, "router": index}
    token_types: bool               # the tokenizer emits token_type_ids (two segments)
    vocab_size: int
    num_heads: int
    hidden_size: int
    bench_seq: int                  # sequence length the fusion candidates are timed at
    pad_id: int = 0                 # what parity rows are padded with (a decoder pools its last non-pad token)

    @property
    def n_adapters(self) -> int | None:
        return len(self.adapter_ids) if self.adapter_ids else None


def build_graphs(ckpt: Checkpoint, spec: ExportSpec) -> Graphs:
    from export import graphs, optimize
    modules = graphs.graph_modules(ckpt, spec.lora)
    adapter_ids = ckpt.models["arliss"].config.adapter_ids if "switchable" in modules else None
    text = graphs.text_config(next(iter(modules.values())))
    return Graphs(modules, Layout(tuple(ckpt.domains), frozenset(modules), adapter_ids), adapter_ids,
                  "token_type_ids" in ckpt.tokenizer.model_input_names, text.vocab_size,
                  text.num_attention_heads, text.hidden_size, min(optimize.BENCH_SEQ, ckpt.card.max_length))


# --- 3. export + parity, 4. precision pass + optimise ---------------------------------------------

@dataclass
class Shipped:
    """Per role: the shipped graph's session, its max |onnx - torch| and what the fusion pass measured."""

    sessions: dict = field(default_factory=dict)
    diffs: dict = field(default_factory=dict)
    optimization: dict = field(default_factory=dict)


def export_raw(role: str, stage: Path, spec: ExportSpec, g: Graphs, reference) -> tuple[Path, list[str], dict]:
    """Export ``role`` through Optimum into ``stage/.raw-<file>`` and check it at fp32.

    Returns (raw graph path, its input names, the parity feeds: batch 3 x seq 37, untraced).
    """
    from export import graphs, optimize
    raw = stage / f".raw-{graph_file(role)}"
    inputs, _ = graphs.export_graph(role, g.modules[role], raw, spec.opset, g.token_types, g.n_adapters)
    feeds = validate.parity_feeds(inputs, g.vocab_size, g.n_adapters, pad_id=g.pad_id)
    diff = validate.max_abs_diff(reference, validate.ort_runner({role: optimize.session(raw)}), role, feeds)
    validate.check_parity(role, diff, "fp32")
    return raw, inputs, feeds


def finish(role: str, raw: Path, inputs: list[str], feeds: dict, spec: ExportSpec, g: Graphs, reference,
           shipped: Shipped) -> None:
    """Precision pass and fastest fusion of ``raw`` into ``<stage>/<file>``; the shipped graph's parity."""
    from export import optimize
    final = raw.parent / graph_file(role)
    bench = optimize.bench_feeds(inputs, g.vocab_size, g.n_adapters, g.bench_seq)
    shipped.optimization[role] = optimize.finish_graph(raw, final, spec.precision, spec.optimize, bench,
                                                       g.num_heads, g.hidden_size, spec.external_data)
    optimize.remove_graph(raw)
    shipped.sessions[role] = optimize.session(final)
    diff = validate.max_abs_diff(reference, validate.ort_runner({role: shipped.sessions[role]}), role, feeds)
    validate.check_parity(role, diff, spec.precision)
    shipped.diffs[role] = diff


# --- 5. validate ----------------------------------------------------------------------------------

def check_decisions(ckpt: Checkpoint, pairs: dict | None, g: Graphs, reference, shipped: Shipped, precision: str) -> dict:
    """Route and score the validation pairs through PyTorch fp32 and the shipped graphs: the guard's
    figures (``export.validate.agreement``), raising ``ExportValidationError`` below its bound; {} without pairs."""
    if pairs is None:
        return {}
    lengths = (ckpt.tokenizer, pairs, ckpt.card.max_length, router_length(ckpt), ckpt.card.truncation)
    guard = validate.agreement(validate.pairwise_outcomes(reference, g.layout, *lengths),
                               validate.pairwise_outcomes(validate.ort_runner(shipped.sessions), g.layout, *lengths))
    validate.check_agreement(precision, guard)
    return guard


# --- 6. write bundle ------------------------------------------------------------------------------

def export_section(checkpoint: Path, spec: ExportSpec, shipped: Shipped, guard: dict, pairs: dict | None,
                   figures: dict) -> dict:
    """``manifest["export"]``: provenance, what the fusion pass measured, the validation and its figures."""
    return {
        "exporter": EXPORTER, "opset": spec.opset, "versions": bundle.library_versions(),
        "source_checkpoint": str(checkpoint), "optimize": spec.optimize, "optimization": shipped.optimization,
        "validation": {
            "parity_shape": [validate.PARITY_BATCH, validate.PARITY_SEQ],
            "max_abs_diff": shipped.diffs, "parity_bound": validate.PARITY_BOUND.get(spec.precision),
            "split": "validation" if pairs is not None else None,
            "pairs_per_domain": {d: len(p) for d, p in pairs.items()} if pairs else None,
            "accuracy_torch_fp32": guard.get("accuracy_reference"),
            "decision_agreement_bound": validate.DECISION_AGREEMENT_BOUND.get(spec.precision),
        },
        "figures": figures,
    }


def write_bundle(stage: Path, checkpoint: Path, ckpt: Checkpoint, spec: ExportSpec, g: Graphs, shipped: Shipped, guard: dict,
                 pairs: dict | None, torch_weights: bool, started: float) -> Manifest:
    """Copy the tokenizer (and the Torch weights) into ``stage`` and write its manifest."""
    files = bundle.copy_tokenizer(checkpoint, stage)
    torch_dir = bundle.copy_torch_weights(checkpoint, stage, ckpt.method) if torch_weights else None
    total, active = params_of(ckpt)
    accuracy = guard.get("accuracy")
    figures = {
        "max_abs_diff": max(shipped.diffs.values()),
        "accuracy": accuracy,
        "accuracy_delta": None if accuracy is None else accuracy - guard["accuracy_reference"],
        **{k: guard[k] for k in ("decision_agreement", "reward_rank_correlation", "router_agreement",
                                 "accuracy_delta_ci95") if k in guard},
        "bundle_mb": round(bundle.bundle_mb(stage), 3),
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    return bundle.write_manifest(Manifest(
        path=stage, method=ckpt.method, domains=tuple(ckpt.domains), base_model=ckpt.card.base_model,
        max_length=ckpt.card.max_length, router_max_length=router_length(ckpt),
        truncation={"policy": ckpt.card.truncation, "prompt_min_divisor": PROMPT_MIN_DIVISOR},
        tokenizer=bundle.tokenizer_section(ckpt.tokenizer, checkpoint, files, g.token_types),
        precision=spec.precision, lora=spec.lora_mode, adapter_ids=g.adapter_ids, graphs=graph_entries(stage, shipped), files={},
        params={"total": total, "active": active},
        export=export_section(checkpoint, spec, shipped, guard, pairs, figures), torch_weights=torch_dir))


def graph_entries(stage: Path, shipped: Shipped) -> dict:
    """The manifest's ``graphs``: per shipped role its file, inputs, outputs, kind and external-data files."""
    from core.onnx_refs import external_locations
    return {role: Graph(role, graph_file(role), tuple(i.name for i in sess.get_inputs()),
                        tuple(o.name for o in sess.get_outputs()), graph_kind(role),
                        tuple(sorted(external_locations(stage / graph_file(role)))))
            for role, sess in shipped.sessions.items()}


@contextlib.contextmanager
def staged(out: Path):
    """A fresh staging directory beside ``out``, moved to ``out`` (replacing the bundle there) when
    the block ends without error and removed otherwise: a failed export leaves ``out`` as it was."""
    stage = _prepare_out(out)
    try:
        yield stage
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)


def _prepare_out(out: Path) -> Path:
    """A fresh staging dir beside ``out``; ``out`` itself may only be replaced if it is a bundle."""
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise FileExistsError(f"--out '{out}' exists and is not a RouteRM bundle (no manifest.json); refusing to overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def export_bundle(checkpoint, spec: ExportSpec, out=None, *, splits: dict | None = None,
                  val_pairs: int | None = DEFAULT_VAL_PAIRS, torch_weights: bool = False) -> Path:
    """Export ``checkpoint`` as ``spec`` says into the bundle directory ``out`` (default
    ``spec.default_out``) and return ``out``; a failed export leaves ``out`` as it was.

    ``splits``: ``{domain: {"validation": [Pair]}}`` for the accuracy check (default: the vendored
    data when it holds the checkpoint's domains); fp16/int8 need one, fp32 records accuracy when one
    exists. ``val_pairs``: pairs per domain (None: all). ``torch_weights``: carry the checkpoint's
    safetensors for ``backend="torch"`` (fp32 only). Raises ``ExportValidationError`` when a graph
    is off its bound.
    """
    import onnxruntime  # noqa: F401  (fail here, before work, when the export extra is missing)
    if not isinstance(spec, ExportSpec):
        raise TypeError(f"spec must be an export.spec.ExportSpec, got {type(spec).__name__}")
    if torch_weights and spec.reduced:
        raise ValueError(f"torch_weights: the Torch backend runs fp32 weights; a {spec.precision} bundle carrying them "
                         f"would be served at fp32 under backend='torch'. Export an fp32 bundle for that")
    started = time.perf_counter()
    checkpoint = Path(checkpoint).resolve()
    out = Path(out) if out is not None else spec.default_out
    ckpt, pairs = load(checkpoint, spec, splits, val_pairs)
    g = build_graphs(ckpt, spec)
    with staged(out) as stage:
        reference, shipped = validate.torch_runner(g.modules), Shipped()
        for role in g.modules:
            raw, inputs, feeds = export_raw(role, stage, spec, g, reference)
            finish(role, raw, inputs, feeds, spec, g, reference, shipped)
        guard = check_decisions(ckpt, pairs, g, reference, shipped, spec.precision)
        write_bundle(stage, checkpoint, ckpt, spec, g, shipped, guard, pairs, torch_weights, started)
    return out


# --- command line ---------------------------------------------------------------------------------

def build_parser(prog: str = "python export/to_onnx.py", imports: bool = True) -> argparse.ArgumentParser:
    """The export flags; ``imports``: also the flags that import Hugging Face / PEFT models (export.from_hf)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=METHODS, required=not imports,
                        help="required unless --from-hf (which imports one model)" if imports else None)
    parser.add_argument("--checkpoint", type=Path, help="default: checkpoints/<method>")
    parser.add_argument("--out", type=Path, help="default: bundles/<method>[-<precision>][-merged][-noopt]")
    parser.add_argument("--lora", choices=LORA_MODES, default="switchable", help="ARLISS only")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--optimize", action=argparse.BooleanOptionalAction, default=True,
                        help="ORT transformer fusion, kept where measured faster")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--external-data", action="store_true",
                        help="keep weights in <graph>.onnx.data beside each graph (always done past 2 GB)")
    parser.add_argument("--torch-weights", action="store_true",
                        help="carry the checkpoint's safetensors in the bundle (torch/), for backend='torch'")
    parser.add_argument("--val-pairs", type=int, default=DEFAULT_VAL_PAIRS,
                        help="validation pairs per domain for the accuracy check (0: the whole split)")
    if imports:
        from export.from_hf import add_import_flags
        add_import_flags(parser)
    return parser


def spec_of(args: argparse.Namespace) -> ExportSpec:
    return ExportSpec(args.method, args.precision, args.lora, args.optimize, args.opset, args.external_data)


def export_from_args(args: argparse.Namespace) -> Path:
    """What the command line asks for: ``export_bundle`` with the parsed flags (``build_parser``), or
    ``export.from_hf.import_bundle`` with the import flags."""
    from export.from_hf import import_bundle, import_spec_of
    imported = import_spec_of(args)
    if imported is not None:
        name = "-".join([imported.domains[0] if imported.method == "baseline" else imported.method, "imported"] +
                        ([args.precision] if args.precision != "fp32" else []))
        return import_bundle(imported, args.out or Path("bundles") / name)
    if args.method is None:
        raise ValueError("give --method (a trained checkpoint) or --from-hf DIR (a Hugging Face reward model)")
    spec = spec_of(args)
    return export_bundle(args.checkpoint or Path("checkpoints") / args.method, spec, args.out or spec.default_out,
                         val_pairs=args.val_pairs or None, torch_weights=args.torch_weights)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = export_from_args(args)
    except (FileNotFoundError, FileExistsError, ValueError, ExportValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = load_manifest(out, verify=False)
    print(f"{manifest.method} {manifest.precision} -> {out}: {json.dumps(manifest.export['figures'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
