"""Put generated result tables into the README between markers, never typed by hand.

    python scripts/render_results.py                 # README.md from results/*.json
    python scripts/render_results.py --check         # exit 1 when README.md is out of date

A block is the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` (each on its own
line); everything between them is replaced, the markers and the rest of the file are kept. A
README without a block's markers is left alone for that block (the README's owner places them).

Blocks: ``latency`` from ``results/latency.json`` (``benchmarks.latency_report.readme_block``: the
latency table, the targets and the plot).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def replace_block(text: str, name: str, body: str) -> tuple[str, bool]:
    """``text`` with the block ``name`` holding ``body``; (text, False) when the markers are absent.

    ValueError when the markers are there but malformed (end before start, or repeated).
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    n_start, n_end = text.count(start), text.count(end)
    if n_start == n_end == 0:
        return text, False
    if n_start != 1 or n_end != 1 or text.index(start) > text.index(end):
        raise ValueError(f"README markers for '{name}' are malformed: need one '{start}' before one '{end}' "
                         f"(found {n_start} start, {n_end} end)")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    return pattern.sub(lambda _: f"{start}\n{body.strip()}\n{end}", text, count=1), True


def blocks(results_dir: Path, readme_dir: Path) -> dict[str, str]:
    """{block name: markdown} for every results file present."""
    out = {}
    latency = results_dir / "latency.json"
    if latency.is_file():
        from benchmarks.latency_report import readme_block
        plot = (results_dir / "latency.png").resolve()
        try:
            rel = plot.relative_to(readme_dir.resolve()).as_posix()
        except ValueError:
            rel = plot.as_posix()
        out["latency"] = readme_block(json.loads(latency.read_text(encoding="utf-8")), rel)
    return out


def render_readme(readme: Path, results_dir: Path) -> tuple[str, list[str]]:
    """The README text with every block filled, and the names of the blocks that were placed."""
    text = readme.read_text(encoding="utf-8")
    placed = []
    for name, body in blocks(results_dir, readme.parent).items():
        text, found = replace_block(text, name, body)
        if found:
            placed.append(name)
    return text, placed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README differs from what would be written")
    args = parser.parse_args(argv)
    if not args.readme.is_file():
        print(f"error: no README at {args.readme}", file=sys.stderr)
        return 2
    try:
        text, placed = render_readme(args.readme, args.results)
    except ValueError as exc:
        print(f"error: {args.readme}: {exc}", file=sys.stderr)
        return 2
    missing = sorted(set(blocks(args.results, args.readme.parent)) - set(placed))
    for name in missing:
        print(f"note: {args.readme} has no <!-- {name}:start --> / <!-- {name}:end --> markers; block not placed",
              file=sys.stderr)
    current = args.readme.read_text(encoding="utf-8")
    if args.check:
        if text != current:
            print(f"{args.readme} is out of date: run python scripts/render_results.py", file=sys.stderr)
            return 1
        return 0
    if text != current:
        args.readme.write_text(text, encoding="utf-8")
    print(f"{args.readme}: blocks {placed or 'none'} rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
