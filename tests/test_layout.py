"""The codebase's shape, checked: the data path flows one way, modules and functions stay small,
nothing edits ``sys.path``, and no text cites a tracker number a reader cannot resolve."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("core", "models", "training", "export", "runtime", "kernels", "benchmarks", "routerm", "lab")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _imported_packages(path: Path) -> set[str]:
    """Top-level names this module imports (absolute imports only; relative ones stay in-package)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package, forbidden", [
    ("core", {"models", "training", "export", "runtime", "kernels", "benchmarks", "lab", "routerm",
              "torch", "transformers", "peft", "triton", "onnx", "onnxruntime"}),
    ("export", {"training", "benchmarks", "lab", "routerm"}),
    ("runtime", {"training", "export", "benchmarks", "lab", "routerm"}),
    ("models", {"training", "export", "runtime", "benchmarks", "lab", "routerm"}),
    ("training", {"export", "runtime", "benchmarks", "lab", "routerm"}),
    ("kernels", {"core", "models", "training", "export", "runtime", "benchmarks", "lab", "routerm"}),
])
def test_data_flows_one_way(package, forbidden):
    bad = {str(p.relative_to(ROOT)): sorted(_imported_packages(p) & forbidden) for p in _sources(package)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_modules_and_functions_stay_small():
    long_modules, long_functions = [], []
    for path in _sources(*LIBRARY) + sorted((ROOT / "scripts").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(ROOT))
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append((rel, text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append((rel, node.name, lines))
    assert long_modules == []
    assert long_functions == []


def test_nothing_edits_sys_path():
    pattern = re.compile(r"sys\.path\s*(\[[^\]]*\]\s*=|\.insert|\.append|\.extend|\s*=)")
    hits = [str(p.relative_to(ROOT)) for p in _sources(*LIBRARY, "scripts", "tests")
            if pattern.search(p.read_text(encoding="utf-8"))]
    assert hits == []


def test_no_tracker_numbers_in_text():
    """Docs and code state the reason for a choice; a bare tracker number means nothing to a reader."""
    pattern = re.compile(r"issue [0-9]+", re.IGNORECASE)
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    texts += _sources(*LIBRARY, "scripts", "tests")
    texts += [p for ext in ("*.cpp", "*.hpp", "*.h", "*.c", "*.cmake", "*.txt", "*.sh")
              for p in ROOT.glob(f"**/{ext}") if "third_party" not in p.parts and "build" not in p.parts
              and ".venv" not in p.parts]
    texts += [ROOT / "Makefile", ROOT / "pyproject.toml"]
    hits = [str(p.relative_to(ROOT)) for p in texts
            if p.is_file() and pattern.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert hits == []
