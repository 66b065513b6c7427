"""Score one held-out example per domain with every bundle: reward, routed domain, latency.

``make demo`` calls :func:`demo` with the test split's examples (the runtime never imports
``training``: the caller passes the examples in). As a script::

    python -m runtime.demo --bundles bundles --examples heldout.jsonl   # lines: domain, prompt, chosen, rejected
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from pathlib import Path

from .engine import RewardEngine
from core.manifest import MANIFEST


def bundle_dirs(root: Path) -> list[Path]:
    root = Path(root)
    if (root / MANIFEST).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if (p / MANIFEST).is_file())


def one_per_domain(examples: Iterable[dict]) -> list[dict]:
    """The first example of each domain, in order of first appearance (lines without one are skipped)."""
    seen: dict[str, dict] = {}
    for ex in examples:
        if ex.get("domain"):
            seen.setdefault(ex["domain"], ex)
    return list(seen.values())


def demo(bundles: str | Path, examples: Iterable[dict], backend: str = "onnxruntime", threads: int | None = None) -> list[dict]:
    """Rows ``{bundle, domain, routed, reward_chosen, reward_rejected, p_chosen, ms}``, printed as a table."""
    picked = one_per_domain(examples)
    rows = []
    for path in bundle_dirs(Path(bundles)):
        engine = RewardEngine.from_bundle(path, backend=backend, threads=threads)
        engine.score([picked[0]["prompt"]], [picked[0]["chosen"]])  # warm-up: first runs allocate
        for ex in picked:
            start = time.perf_counter()
            result = engine.score([ex["prompt"]] * 2, [ex["chosen"], ex["rejected"]])
            ms = (time.perf_counter() - start) * 1e3
            r_c, r_r = (float(r) for r in result.rewards)
            rows.append({"bundle": path.name, "domain": ex["domain"], "routed": result.domains[0] or "-",
                         "reward_chosen": r_c, "reward_rejected": r_r, "chosen_wins": r_c > r_r, "ms": ms})
    print(f"{'bundle':<16} {'domain':<22} {'routed':<22} {'r(chosen)':>10} {'r(rejected)':>12} {'ok':>3} {'ms (pair)':>10}")
    for r in rows:
        print(f"{r['bundle']:<16} {r['domain']:<22} {r['routed']:<22} {r['reward_chosen']:>10.3f} "
              f"{r['reward_rejected']:>12.3f} {'y' if r['chosen_wins'] else 'n':>3} {r['ms']:>10.1f}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runtime.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", default="bundles", help="a bundle, or a folder of bundles")
    parser.add_argument("--examples", required=True, help="JSONL with domain, prompt, chosen, rejected per line")
    parser.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime")
    args = parser.parse_args(argv)
    with open(args.examples, encoding="utf-8") as fh:
        examples = [json.loads(line) for line in fh if line.strip()]
    demo(args.bundles, examples, args.backend)


if __name__ == "__main__":
    main()
