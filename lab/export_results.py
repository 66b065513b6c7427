"""Export a bundle and record its validation figures in ``results/export.json`` (reporting, not the library).

    python -m lab.export_results --method arliss [every flag of export/to_onnx.py] [--results FILE]

Runs the export the flags ask for (``export.to_onnx``'s own command line), then merges the figures
the bundle's manifest records (``export.figures``) into ``--results`` as
``{method: {variant: {max_abs_diff, accuracy, accuracy_delta, decision_agreement,
reward_rank_correlation, router_agreement, accuracy_delta_ci95, bundle_mb, export_seconds}}}``,
variant ``ExportSpec.variant`` (``fp32-switchable``, ``int8``, ``fp32-noopt`` ...). A variant
the validation guard refuses is recorded too: its guard figures and ``"refused"``, the reason.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core.manifest import load_manifest
from export.to_onnx import build_parser, export_from_args, spec_of
from export.validate import ExportValidationError

DEFAULT_RESULTS = Path(__file__).resolve().parent.parent / "results" / "export.json"


def merge_results(path: Path, method: str, variant: str, figures: dict) -> None:
    """Update ``{method: {variant: figures}}`` in ``path``, keeping every other entry."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.setdefault(method, {})[variant] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> int:
    parser = build_parser(prog="python -m lab.export_results", imports=False)
    parser.description = __doc__.split("\n\n")[0]
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="the JSON file the figures merge into")
    args = parser.parse_args(argv)
    variant = None
    try:
        variant = spec_of(args).variant
        out = export_from_args(args)
    except (FileNotFoundError, FileExistsError, ValueError, ExportValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(exc, "figures", None) is not None:              # a refused variant, on record
            merge_results(args.results, args.method, variant, {**exc.figures, "refused": str(exc)})
        return 2
    figures = load_manifest(out, verify=False).export["figures"]
    merge_results(args.results, args.method, variant, figures)
    print(f"{args.method} {variant} -> {out}: {json.dumps(figures)}; recorded in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
