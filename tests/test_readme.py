"""The README's results sections are exactly what scripts/render_readme.py makes of results/."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from render_readme import SECTIONS, render  # noqa: E402


def test_readme_results_are_generated_from_results_files():
    text = (ROOT / "README.md").read_text()
    for name in SECTIONS:
        assert f"<!-- results:{name} -->" in text and f"<!-- /results:{name} -->" in text, name
    assert render(text) == text, "README.md is stale: run `python scripts/render_readme.py`"


def test_render_is_idempotent_and_fills_empty_sections():
    empty = "".join(f"<!-- results:{n} -->\n<!-- /results:{n} -->\n" for n in SECTIONS)
    once = render(empty)
    assert once != empty and render(once) == once
