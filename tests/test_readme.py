"""The README and docs/: generated blocks are exactly what lab.render_docs makes of results/, the
README stays a front door (at most 200 lines), its links resolve, and its Python quickstart runs."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

from lab.render_docs import PAGES, SECTIONS, render

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 200
# The quickstart names this bundle; the test swaps in a tiny one (tests/conftest.py's tiny_bundles).
QUICKSTART_BUNDLE = '"bundles/arliss"'


def _block(text: str, heading: str, language: str) -> str:
    """The first fenced ``language`` block after the line ``heading``."""
    after = text.split(f"\n{heading}\n", 1)
    assert len(after) == 2, f"README.md has no heading {heading!r}"
    match = re.search(rf"^```{language}\n(.*?)^```", after[1], re.S | re.M)
    assert match, f"no ```{language} block under {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_blocks_match_the_results_files(page):
    text = (ROOT / page).read_text()
    for name in PAGES[page]:
        assert f"<!-- results:{name} -->" in text and f"<!-- /results:{name} -->" in text, (page, name)
    assert render(text, PAGES[page]) == text, f"{page} is stale: run `python -m lab.render_docs`"


def test_every_block_has_one_page():
    placed = [name for names in PAGES.values() for name in names]
    assert sorted(placed) == sorted(SECTIONS)


def test_render_is_idempotent_and_fills_empty_sections():
    empty = "".join(f"<!-- results:{n} -->\n<!-- /results:{n} -->\n" for n in SECTIONS)
    once = render(empty)
    assert once != empty and render(once) == once
    assert "_Not measured yet" not in render("<!-- results:summary -->\n<!-- /results:summary -->")


def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Install", "## Quickstart", "## Methods", "## Results", "## Documentation"]


def test_removed_options_are_not_offered():
    """Options that left the library appear only as the sentence telling why (tests/test_layout.py
    checks the same pages for tracker numbers)."""
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        assert not re.search(r"--router (warm|top)|--more-experts|--precision int8-dynamic|scripts/render_readme", text), path


def test_relative_links_resolve():
    missing = []
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if not re.match(r"[a-z]+:", target) and not (path.parent / target).exists():
                missing.append(f"{path.relative_to(ROOT)} -> {target}")
    assert missing == []


# A path into the repository named in the text: ``lab/render_docs.py``, ``results/latency.json``.
REPO_PATH = re.compile(r"(?<![\w/.-])((?:core|models|training|export|runtime|kernels|benchmarks|lab|scripts|tests|"
                       r"include|src|data|results)/[\w./-]*\w)")
MODULE = re.compile(r"python -m ((?:core|models|training|export|runtime|kernels|benchmarks|lab|routerm)\b[\w.]*)")


def test_named_files_and_modules_exist():
    """Files move (scripts/ -> lab/, ...): every repository path and ``python -m`` module the pages
    name must exist. Patterns (``results/kernels_<gpu>.json``, ``results/latency.{json,md}``) are skipped."""
    missing = []
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for match in REPO_PATH.finditer(text):
            if any(c in "<{*" for c in text[match.end():match.end() + 2]) or (ROOT / match.group(1)).exists():
                continue
            missing.append(f"{path.name}: {match.group(1)}")
        for module in MODULE.findall(text):
            where = ROOT / module.replace(".", "/")
            if not (where.with_suffix(".py").is_file() or (where / "__main__.py").is_file()):
                missing.append(f"{path.name}: python -m {module}")
    assert missing == []


def test_python_quickstart_runs(tiny_bundles):
    """The README's Python block, as printed, with the tiny ARLISS bundle in place of bundles/arliss."""
    code = _block(README.read_text(), "### Python", "python")
    assert code.count(QUICKSTART_BUNDLE) == 1, f"the quickstart should load {QUICKSTART_BUNDLE} once"
    code = code.replace(QUICKSTART_BUNDLE, repr(str(tiny_bundles["arliss"])))
    scope, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md (### Python)", "exec"), scope)
    engine, result = scope["engine"], scope["result"]
    assert len(result) == 2 and result.rewards.shape == (2,) and result.rewards.dtype == np.float32
    assert np.isfinite(result.rewards).all()
    assert len(result.domains) == 2 and all(d in engine.domains for d in result.domains)
    assert result.router_probs.shape == (2, len(engine.domains))
    lines = printed.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert 0.0 < float(lines[2]) < 1.0     # engine.compare: a probability
