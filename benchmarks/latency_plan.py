"""Which bundle each engine of ``benchmarks/latency.py`` runs: found under ``--bundles``, or exported first.

A bundle is used when its manifest matches the engine's export spec (method, precision, LoRA mode,
export-time optimization), names the checkpoint as its source and is newer than it; a missing one
is exported with ``export.to_onnx.export_bundle`` into ``<bundles>/<ExportSpec.default_out name>``,
saying so, with the libraries' output sent to ``<out>/export.log``. With ``--quick`` any fp32
bundle of the right LoRA mode serves every fp32 engine and a missing one is exported without
fusion timing (seconds).

``optimum-ort-int8-dynamic`` has no bundle of its own: its graphs are ONNX Runtime's dynamic
quantization of the graphs ``optimum-ort`` runs, made at the start of the run into a temporary
directory (:func:`build_dynamic_int8`).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from benchmarks.latency_run import captured_output, log
from core.manifest import METHODS
from export.spec import ExportSpec
from models.checkpoint import EVAL_FILE

DYNAMIC_INT8 = "optimum-ort-int8-dynamic"
# engine -> (methods it applies to, bundle it runs: (precision, lora, export-time fusion) or None)
PLAN = {
    "routerm-ort-fp32": (METHODS, ("fp32", "switchable", False)),
    "routerm-ort-optimized": (METHODS, ("fp32", "switchable", True)),
    "routerm-ort-int8": (METHODS, ("int8", "switchable", True)),
    "routerm-ort-merged": (("arliss",), ("fp32", "merged", True)),
    "routerm-torch": (METHODS, ("fp32", "switchable", True)),
    "hf-eager": (("baseline", "more", "rodos"), None),
    "peft-eager": (("arliss",), None),
    "optimum-ort": (METHODS, ("fp32", "merged", True)),
    DYNAMIC_INT8: (METHODS, ("fp32", "merged", True)),      # quantized at the start of the run
}
EXPORT_VAL_PAIRS = 60     # validation pairs per domain for an export's accuracy check, as scripts/post_reproduce.sh


def _checkpoint_mtime(checkpoint: Path) -> float:
    """When the checkpoint's exported content last changed: its newest file but the test evaluation
    (``make reproduce`` writes that after training; re-exporting for it would change nothing)."""
    return max(p.stat().st_mtime for p in checkpoint.rglob("*") if p.is_file() and p.name != EVAL_FILE)


def find_bundle(bundles: Path, spec: ExportSpec, checkpoint: Path, any_fusion: bool = False) -> Path | None:
    """A bundle under ``bundles`` exported as ``spec`` from ``checkpoint`` (and newer than it);
    ``any_fusion``: whatever its export-time optimization."""
    fresh_after = _checkpoint_mtime(checkpoint)
    for manifest in sorted(bundles.glob("*/manifest.json")):
        raw = json.loads(manifest.read_text(encoding="utf-8"))
        export = raw.get("export", {})
        if (raw.get("method") == spec.method and raw.get("precision") == spec.precision
                and raw.get("lora") == spec.lora_mode and (any_fusion or bool(export.get("optimize")) == spec.optimize)
                and Path(export.get("source_checkpoint", "")).resolve() == checkpoint.resolve()
                and export.get("more_experts") != "dense"        # older exports' dense MoRE graph, no longer measured
                and manifest.stat().st_mtime >= fresh_after):
            return manifest.parent
    return None


def export_missing(bundles: Path, spec: ExportSpec, checkpoint: Path, export_log: Path) -> Path:
    """Export ``spec`` into ``bundles/<default name>``; library output goes to ``export_log``."""
    from export.to_onnx import export_bundle
    out = bundles / spec.default_out.name
    why = "exists but was made from another or an older checkpoint" if (out / "manifest.json").is_file() else "is missing"
    log(f"bundle {out} ({spec.method} {spec.variant}) {why}: exporting it from {checkpoint}")
    start = time.perf_counter()
    with captured_output(export_log) as captured:
        export_bundle(checkpoint, spec, out, val_pairs=EXPORT_VAL_PAIRS)
    log(f"exported {out} in {time.perf_counter() - start:.0f}s ({captured[0]} lines of library output in {export_log})")
    return out


def plan_engines(args, method: str, checkpoint: Path) -> tuple[dict, list]:
    """``({engine: bundle path, None (no bundle) or an ExportSpec to export}, [(engine, spec) to export])``."""
    out, missing = {}, []
    for engine in args.engines:
        methods, bundle = PLAN[engine]
        if method not in methods:
            continue
        if bundle is None:
            out[engine] = None
            continue
        precision, lora, optimize = bundle
        spec = ExportSpec(method, precision, lora, optimize)       # the LoRA mode is ignored without adapters
        found = find_bundle(args.bundles, spec, checkpoint, any_fusion=args.quick)
        out[engine] = found if found is not None else spec
        if found is None and spec not in [s for _, s in missing]:
            missing.append((engine, spec))
    return out, missing


def build_bundles(args, plans: dict, missing: dict, skipped: list) -> None:
    """Export every missing bundle (one progress bar); a refused export is one line in ``skipped``."""
    from tqdm import tqdm

    from export.validate import ExportValidationError
    todo = [(method, engine, spec) for method, items in missing.items() for engine, spec in items]
    if not todo:
        return
    log(f"{len(todo)} bundle(s) to export first (existing bundles in {args.bundles} are reused)")
    made = {}
    for method, engine, spec in tqdm(todo, desc="exports", unit="bundle", file=sys.stderr):
        checkpoint = (args.checkpoints / method).resolve()
        quick = dataclasses.replace(spec, optimize=False) if args.quick else spec
        try:
            made[spec] = export_missing(args.bundles, quick, checkpoint, args.out / "export.log")
        except (ValueError, OSError, ExportValidationError) as exc:  # e.g. int8 refused by its guard: say why
            made[spec] = f"no bundle: {type(exc).__name__}: {exc}"
            log(f"{method}/{engine}: skipped, {made[spec]}")
    for method, plan in plans.items():
        for engine, target in list(plan.items()):
            if isinstance(target, ExportSpec):
                if isinstance(made[target], str):
                    skipped.append({"method": method, "engine": engine, "reason": made[target]})
                    del plan[engine]
                else:
                    plan[engine] = made[target]


def build_dynamic_int8(plans: dict, work: Path, export_log: Path, skipped: list) -> dict:
    """Quantize the bundle of every planned ``optimum-ort-int8-dynamic`` engine into ``work``:
    ``{method: {engine: graphs directory}}``; a failed quantization is one line in ``skipped``."""
    from benchmarks.latency_engines import quantize_dynamic_graphs
    out = {}
    for method, plan in plans.items():
        bundle = plan.get(DYNAMIC_INT8)
        if bundle is None:
            continue
        target = work / f"{bundle.name}-ort-dynamic-int8"
        try:
            if not target.is_dir():
                with captured_output(export_log) as captured:
                    quantize_dynamic_graphs(bundle, target)
                log(f"{method}/{DYNAMIC_INT8}: quantized {bundle}'s graphs into {target} "
                    f"({captured[0]} lines of library output in {export_log})")
            out.setdefault(method, {})[DYNAMIC_INT8] = target
        except Exception as exc:  # any quantizer failure: recorded as skipped, like an engine that fails to load
            skipped.append({"method": method, "engine": DYNAMIC_INT8, "reason": f"{type(exc).__name__}: {exc}"})
            log(f"{method}/{DYNAMIC_INT8}: skipped, {type(exc).__name__}: {exc}")
            del plan[DYNAMIC_INT8]
    return out
