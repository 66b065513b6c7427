"""The ``routerm`` console script: its subcommands, each a thin front over an existing entry point,
and the design card's uses (``python export/to_onnx.py``, ``python benchmarks/latency.py``,
``from runtime import RewardEngine``) from any working directory, without sys.path edits."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from routerm.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
ROUTERM = Path(sys.executable).parent / "routerm"    # the console script pip installed beside python


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_help_lists_every_subcommand(tmp_path):
    out = _run([str(ROUTERM), "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    # argparse lists each subcommand indented by four spaces; its help may wrap onto a deeper line
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("    ") and line[4] != " "]
    assert listed == ["serve", "score", "export", "train", "add-domain", "bench"] == list(SUBCOMMANDS)


@pytest.mark.parametrize("name, flag", [("serve", "--max-queue-pairs"), ("score", "--input"),
                                        ("export", "--precision"), ("train", "--quick"),
                                        ("add-domain", "--domain"), ("bench", "--engines")])
def test_each_subcommand_hands_its_flags_to_the_entry_point(name, flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert flag in capsys.readouterr().out


def test_unknown_subcommand_is_named(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate-everything"])
    assert exit_.value.code == 2
    assert "invalid choice: 'evaluate-everything'" in capsys.readouterr().err


def test_help_imports_nothing_heavy(tmp_path):
    code = ("import sys, contextlib, io\nfrom routerm.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
            "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime') if m in sys.modules))")
    out = _run([sys.executable, "-c", code], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_score_equals_the_engine(tiny_bundles, tmp_path):
    from runtime import RewardEngine
    rows = [{"prompt": "poem verse question", "response": "precise kind reply"},
            {"prompt": "recipe cook question", "response": "junk"}]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bundle = tiny_bundles["rodos"]
    out = _run([str(ROUTERM), "score", "--bundle", str(bundle), "--input", str(src), "--output", str(dst),
                "--quiet"], tmp_path)
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in dst.read_text().splitlines()]
    want = RewardEngine.from_bundle(bundle).score([r["prompt"] for r in rows], [r["response"] for r in rows])
    assert [g["domain"] for g in got] == list(want.domains)
    assert [g["reward"] for g in got] == pytest.approx([float(x) for x in want.rewards], abs=1e-6)


def test_score_names_a_missing_bundle(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "p", "response": "r"}\n')
    out = _run([str(ROUTERM), "score", "--bundle", str(tmp_path / "nowhere"), "--input", str(src),
                "--output", "-", "--quiet"], tmp_path)
    assert out.returncode != 0
    assert f"{tmp_path / 'nowhere'}/manifest.json: no manifest" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("script, flag", [("export/to_onnx.py", "--method"), ("benchmarks/latency.py", "--engines")])
def test_design_card_scripts_run_from_any_directory(script, flag, tmp_path):
    out = _run([sys.executable, str(ROOT / script), "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert flag in out.stdout


def test_runtime_import_from_any_directory(tmp_path):
    out = _run([sys.executable, "-c", "from runtime import RewardEngine; print(RewardEngine.__name__)"], tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "RewardEngine", out.stderr
