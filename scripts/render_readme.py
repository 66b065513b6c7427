"""Regenerate the results sections of README.md from the committed results files.

Each section sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; the text in
between is replaced by the table rendered from the file, or by a line saying it is not measured yet.
Nothing in those sections is typed by hand.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def _md_file(name: str) -> str | None:
    path = RESULTS / name
    return path.read_text().strip() if path.is_file() else None


def export_table() -> str | None:
    path = RESULTS / "export.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    lines = ["| method | variant | max abs diff vs PyTorch | val. accuracy | Δ accuracy (points) | bundle MB | export s |",
             "|---|---|---|---|---|---|---|"]
    for method, variants in data.items():
        for variant, v in variants.items():
            acc = v.get("accuracy")
            delta = v.get("accuracy_delta")
            lines.append(f"| {method} | {variant} | {v['max_abs_diff']:.2e} | "
                         f"{'-' if acc is None else f'{100 * acc:.1f}'} | "
                         f"{'-' if delta is None else f'{100 * delta:+.2f}'} | {v['bundle_mb']:.1f} | {v['export_seconds']:.0f} |")
    return "\n".join(lines)


def engine_table() -> str | None:
    path = RESULTS / "engine_accuracy.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    lines = ["| bundle | backend | served mean accuracy | training-side mean | max abs diff (points) | router accuracy |",
             "|---|---|---|---|---|---|"]
    for name, r in data.items():
        served = sum(e["accuracy"] for e in r["domains"].values()) / len(r["domains"])
        train = sum(e["training_accuracy"] for e in r["domains"].values()) / len(r["domains"])
        router = "-" if r.get("router_accuracy") is None else f"{100 * r['router_accuracy']:.1f}"
        lines.append(f"| {name.split(':')[0]} | {r['backend']} | {100 * served:.2f} | {100 * train:.2f} | "
                     f"{r['max_abs_diff_points']:.2f} | {router} |")
    return "\n".join(lines)


def kernels_table() -> str | None:
    files = sorted(RESULTS.glob("kernels_*.json"))
    if not files:
        return None
    out = []
    for f in files:
        data = json.loads(f.read_text())
        out.append(f"`{f.name}`: {len(data.get('records', []))} cases on {data.get('machine', {}).get('gpu', '?')}")
    return "\n".join(out)


SECTIONS = {
    "accuracy": lambda: _md_file("accuracy.md"),
    "export": export_table,
    "engine": engine_table,
    "latency": lambda: _md_file("latency.md"),
    "kernels": kernels_table,
}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- results:{name} -->).*?(<!-- /results:{name} -->)", re.S)
        body = make() or f"_Not measured yet: `results/` has no {name} file._"
        text = pattern.sub(lambda m: f"{m.group(1)}\n{body}\n{m.group(2)}", text)
    return text


def main() -> int:
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
    print(f"rendered {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
