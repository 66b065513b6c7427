"""Export a trained RouteRM checkpoint to a self-describing ONNX bundle (issue 3).

    python export/to_onnx.py --method arliss [--checkpoint DIR] [--out DIR] [--lora switchable|merged]
                             [--precision fp32|fp16|int8|int8-blockwise|int8-dynamic] [--optimize/--no-optimize] [--opset 17]
                             [--torch-weights] [--more-experts sparse|dense]

Defaults: ``--checkpoint checkpoints/<method>`` (what ``make reproduce`` writes; a missing one is an
error naming the command that makes it, nothing is trained here), ``--out bundles/<method>`` with
``-<precision>`` (not fp32), ``-merged`` (ARLISS merged) and ``-noopt`` appended for non-default
variants, e.g. ``bundles/arliss-int8-merged``; ``-dense`` for MoRE's dense-masked experts
(``--more-experts dense``; the default graph gathers each expert's tokens, see ``models.more``). Figures are merged into ``results/export.json`` as
``{method: {variant: {max_abs_diff, accuracy, accuracy_delta, decision_agreement, reward_rank_correlation,
router_agreement, accuracy_delta_ci95, bundle_mb, export_seconds}}}`` with
variant ``<precision>[-<lora>][-dense][-noopt]`` (``fp32-switchable``, ``int8``, ...).

Python API: :func:`export_bundle`. Steps: load the checkpoint (``models.checkpoint``), build one
PyTorch module per graph role (``export.graphs``), export each through Optimum, check fp32 parity
of the raw graph, run the precision pass and the fastest fusion (``export.optimize``), check the
shipped graph again (parity; for fp16/int8 the validation-split accuracy, ``export.validate``),
copy the tokenizer (and, with ``--torch-weights``, the checkpoint's safetensors for the Torch
backend) and write ``manifest.json`` (``export.bundle``), read back by the runtime parser.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repo root, not from export/
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "export"]
    sys.path.insert(0, str(_ROOT))

from models.checkpoint import CARD, METHODS, Checkpoint, load_checkpoint  # noqa: E402
from models.more import EXPORT_MODES, moe_blocks  # noqa: E402
from core.scoring import Layout  # noqa: E402
from core.text import PROMPT_MIN_DIVISOR  # noqa: E402
from export.optimize import INT8_SCHEMES  # noqa: E402

LORA_MODES = ("switchable", "merged")
PRECISIONS = ("fp32", "fp16", *INT8_SCHEMES)   # int8 schemes: export.optimize
DEFAULT_OPSET = 17
DEFAULT_VAL_PAIRS = 100          # validation pairs per domain for the accuracy check
REPO = Path(__file__).resolve().parent.parent


def _tail(method: str, optimize: bool, more_experts: str) -> list[str]:
    """The name parts every non-default variant shares: ``dense`` (MoRE's dense graph), ``noopt``."""
    return (["dense"] if method == "more" and more_experts == "dense" else []) + ([] if optimize else ["noopt"])


def variant_name(method: str, lora: str, precision: str, optimize: bool, more_experts: str = "sparse") -> str:
    parts = [precision] + ([lora] if method == "arliss" else []) + _tail(method, optimize, more_experts)
    return "-".join(parts)


def default_out(method: str, lora: str, precision: str, optimize: bool, more_experts: str = "sparse") -> Path:
    parts = [method] + ([precision] if precision != "fp32" else []) + \
        (["merged"] if method == "arliss" and lora == "merged" else []) + _tail(method, optimize, more_experts)
    return Path("bundles") / "-".join(parts)


def graph_file(role: str) -> str:
    return role.replace("/", "_") + ".onnx"


def graph_kind(role: str) -> str:
    return role if role in ("switchable", "router") else "reward"


def open_checkpoint(checkpoint: Path, method: str | None) -> Checkpoint:
    if not (checkpoint / CARD).is_file():
        what = method or "METHOD"
        raise FileNotFoundError(
            f"no trained checkpoint at '{checkpoint}' (no {CARD}); make one with "
            f"`python -m training train --method {what}` (full, written to checkpoints/{what}) or "
            f"`python -m training train --method {what} --quick` (minutes, checkpoints/quick/{what})")
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


def _prepare_out(out: Path) -> Path:
    """A fresh staging dir beside ``out``; ``out`` itself may only be replaced if it is a bundle."""
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise FileExistsError(f"--out '{out}' exists and is not a RouteRM bundle (no manifest.json); refusing to overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def export_bundle(checkpoint, out, method: str | None = None, lora: str = "switchable", precision: str = "fp32",
                  optimize: bool = True, opset: int = DEFAULT_OPSET, *, splits: dict | None = None,
                  val_pairs: int | None = DEFAULT_VAL_PAIRS, torch_weights: bool = False,
                  more_experts: str = "sparse") -> Path:
    """Export ``checkpoint`` into the bundle directory ``out`` and return ``out``.

    ``splits``: ``{domain: {"validation": [Pair]}}`` for the accuracy check (default: the vendored
    data when it holds the checkpoint's domains). fp16/int8 need one; fp32 records accuracy when
    one exists. ``more_experts``: MoRE's graph, ``"sparse"`` (each expert runs on its own tokens)
    or ``"dense"`` (every expert on every token, masked; ``models.more``). Raises
    ``ExportValidationError`` when a graph is off its bound.
    """
    import onnxruntime  # noqa: F401  (fail here, before work, when the export extra is missing)
    from export import bundle, graphs, optimize as opt, validate
    from models.checkpoint import params_of

    if method is not None and method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got '{method}'")
    if lora not in LORA_MODES:
        raise ValueError(f"lora must be one of {LORA_MODES}, got '{lora}'")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got '{precision}'")
    if more_experts not in EXPORT_MODES:
        raise ValueError(f"more_experts must be one of {EXPORT_MODES}, got '{more_experts}'")
    if torch_weights and precision != "fp32":
        raise ValueError(f"torch_weights: the Torch backend runs fp32 weights; a {precision} bundle carrying them "
                         f"would be served at fp32 under backend='torch'. Export an fp32 bundle for that")
    if not isinstance(opset, int) or opset < 14:
        raise ValueError(f"opset must be an int >= 14 (attention export needs it), got {opset!r}")
    started = time.perf_counter()
    checkpoint, out = Path(checkpoint).resolve(), Path(out)
    ckpt = open_checkpoint(checkpoint, method)
    pairs = validation_pairs(ckpt, splits, val_pairs)
    if pairs is None and precision != "fp32":
        raise ValueError(f"{precision} export checks accuracy on a validation split, and the vendored data lacks "
                         f"domains {list(ckpt.domains)}: pass splits={{domain: {{'validation': [Pair, ...]}}}}")
    lora_mode = lora if ckpt.method == "arliss" else None
    if more_experts != "sparse" and ckpt.method != "more":
        raise ValueError(f"more_experts='{more_experts}' applies to MoRE only; '{checkpoint}' holds {ckpt.method}")
    for block in moe_blocks(ckpt.models["reward"]) if ckpt.method == "more" else ():
        block.export_mode = more_experts
    modules = graphs.graph_modules(ckpt, lora)
    adapter_ids = ckpt.models["arliss"].config.adapter_ids if "switchable" in modules else None
    layout = Layout(tuple(ckpt.domains), frozenset(modules), adapter_ids)
    token_types = "token_type_ids" in ckpt.tokenizer.model_input_names
    n_adapters = len(adapter_ids) if layout.switchable else None
    text_cfg = graphs.text_config(next(iter(modules.values())))
    router_len = int(ckpt.card.extra.get("router_max_length", ckpt.card.max_length))
    bench_seq = min(opt.BENCH_SEQ, ckpt.card.max_length)

    stage = _prepare_out(out)
    try:
        reference = validate.torch_runner(modules)
        graph_entries, sessions, diffs, optimization = {}, {}, {}, {}
        for role, module in modules.items():
            raw = stage / f".raw-{graph_file(role)}"
            inputs, outputs = graphs.export_graph(role, module, raw, opset, token_types, n_adapters)
            feeds = validate.parity_feeds(inputs, text_cfg.vocab_size, n_adapters)
            raw_diff = validate.max_abs_diff(reference, validate.ort_runner({role: opt.session(raw)}), role, feeds)
            validate.check_parity(role, raw_diff, "fp32")
            final = stage / graph_file(role)
            optimization[role] = opt.finish_graph(raw, final, precision, optimize, opt.bench_feeds(
                inputs, text_cfg.vocab_size, n_adapters, bench_seq), text_cfg.num_attention_heads, text_cfg.hidden_size)
            raw.unlink()
            sessions[role] = opt.session(final)
            diffs[role] = validate.max_abs_diff(reference, validate.ort_runner({role: sessions[role]}), role, feeds)
            validate.check_parity(role, diffs[role], precision)
            graph_entries[role] = {"file": graph_file(role), "kind": graph_kind(role),
                                   "inputs": [i.name for i in sessions[role].get_inputs()],
                                   "outputs": [o.name for o in sessions[role].get_outputs()]}

        accuracy = accuracy_ref = None
        guard = {}
        if pairs is not None:
            lengths = (ckpt.tokenizer, pairs, ckpt.card.max_length, router_len, ckpt.card.truncation)
            guard = validate.agreement(validate.pairwise_outcomes(reference, layout, *lengths),
                                       validate.pairwise_outcomes(validate.ort_runner(sessions), layout, *lengths))
            accuracy, accuracy_ref = guard["accuracy"], guard["accuracy_reference"]
            validate.check_agreement(precision, guard)

        files = bundle.copy_tokenizer(checkpoint, stage)
        torch_dir = bundle.copy_torch_weights(checkpoint, stage, ckpt.method) if torch_weights else None
        total, active = params_of(ckpt)
        figures = {
            "max_abs_diff": max(diffs.values()),
            "accuracy": accuracy,
            "accuracy_delta": None if accuracy is None else accuracy - accuracy_ref,
            **{k: guard[k] for k in ("decision_agreement", "reward_rank_correlation", "router_agreement",
                                     "accuracy_delta_ci95") if k in guard},
            "bundle_mb": round(bundle.bundle_mb(stage), 3),
            "export_seconds": round(time.perf_counter() - started, 2),
        }
        bundle.write_manifest(stage, {
            "method": ckpt.method, "domains": list(ckpt.domains), "base_model": ckpt.card.base_model,
            "max_length": ckpt.card.max_length, "router_max_length": router_len,
            "truncation": {"policy": ckpt.card.truncation, "prompt_min_divisor": PROMPT_MIN_DIVISOR},
            "tokenizer": bundle.tokenizer_section(ckpt.tokenizer, checkpoint, files, token_types),
            "precision": precision, "lora": lora_mode,
            "adapter_ids": adapter_ids,
            "graphs": graph_entries,
            "torch_weights": torch_dir,
            "params": {"total": total, "active": active},
            "export": {
                "exporter": "optimum.exporters.onnx.export (TorchScript, dynamo=False)",
                "opset": opset, "versions": bundle.library_versions(),
                "source_checkpoint": str(checkpoint), "optimize": optimize,
                "optimization": optimization,
                "more_experts": more_experts if ckpt.method == "more" else None,   # models.more.EXPORT_MODES
                "validation": {
                    "parity_shape": [validate.PARITY_BATCH, validate.PARITY_SEQ],
                    "max_abs_diff": diffs, "parity_bound": validate.PARITY_BOUND.get(precision),
                    "split": "validation" if pairs is not None else None,
                    "pairs_per_domain": {d: len(p) for d, p in pairs.items()} if pairs else None,
                    "accuracy_torch_fp32": accuracy_ref,
                    "decision_agreement_bound": validate.DECISION_AGREEMENT_BOUND.get(precision),
                },
                "figures": figures,
            },
        })
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    return out


def merge_results(path: Path, method: str, variant: str, figures: dict) -> None:
    """Update ``{method: {variant: figures}}`` in ``path``, keeping every other entry."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.setdefault(method, {})[variant] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python export/to_onnx.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--checkpoint", type=Path, help="default: checkpoints/<method>")
    parser.add_argument("--out", type=Path, help="default: bundles/<method>[-<precision>][-merged][-noopt]")
    parser.add_argument("--lora", choices=LORA_MODES, default="switchable", help="ARLISS only")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--optimize", action=argparse.BooleanOptionalAction, default=True,
                        help="ORT transformer fusion, kept where measured faster")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--torch-weights", action="store_true",
                        help="carry the checkpoint's safetensors in the bundle (torch/), for backend='torch'")
    parser.add_argument("--more-experts", choices=EXPORT_MODES, default="sparse",
                        help="MoRE only: 'sparse' runs each expert on its tokens (gather/scatter), "
                             "'dense' every expert on every token (fixed shapes)")
    parser.add_argument("--val-pairs", type=int, default=DEFAULT_VAL_PAIRS,
                        help="validation pairs per domain for the accuracy check (0: the whole split)")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "export.json",
                        help="merged figures; '-' to skip")
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint or Path("checkpoints") / args.method
    out = args.out or default_out(args.method, args.lora, args.precision, args.optimize, args.more_experts)
    from export.validate import ExportValidationError
    try:
        bundle_dir = export_bundle(checkpoint, out, args.method, args.lora, args.precision, args.optimize, args.opset,
                                   val_pairs=args.val_pairs or None, torch_weights=args.torch_weights,
                                   more_experts=args.more_experts)
    except (FileNotFoundError, FileExistsError, ValueError, ExportValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(exc, "figures", None) is not None and str(args.results) != "-":   # a refused variant, on record
            variant = variant_name(args.method, args.lora, args.precision, args.optimize, args.more_experts)
            merge_results(args.results, args.method, variant, {**exc.figures, "refused": str(exc)})
        return 2
    figures = json.loads((bundle_dir / "manifest.json").read_text())["export"]["figures"]
    variant = variant_name(args.method, args.lora, args.precision, args.optimize, args.more_experts)
    if str(args.results) != "-":
        merge_results(args.results, args.method, variant, figures)
    print(f"{args.method} {variant} -> {bundle_dir}: {json.dumps(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
