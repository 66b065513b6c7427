"""A copy of a bundle whose manifest names another truncation policy, for the C parity tests.

    python tests/c/policy_bundle.py --bundle DIR --out DIR --policy NAME

The tiny test bundles are exported with the checkpoint card's policy (new checkpoints:
core.text.HEAD_TAIL); the copy lets dump_reference.py and test_parity check that both engines
encode a bundle that says ``keep_response_cut_prompt_start`` that way, not by their default.
manifest.json is the one bundle file without a checksum (core/manifest.py: ``files`` lists
every file but it), so the copy still verifies. The copy is remade on every run.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from core.manifest import load_manifest
from core.text import PROMPT_MIN_DIVISOR, TRUNCATION_POLICIES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--policy", required=True, choices=TRUNCATION_POLICIES)
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.bundle, args.out)
    where = args.out / "manifest.json"
    manifest = json.loads(where.read_text(encoding="utf-8"))
    before = manifest.get("truncation")
    manifest["truncation"] = {"policy": args.policy, "prompt_min_divisor": PROMPT_MIN_DIVISOR}
    where.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    load_manifest(args.out, verify=True)
    print(f"{args.out}: copy of {args.bundle}, truncation {before} -> {manifest['truncation']}")


if __name__ == "__main__":
    main()
