"""CI smoke test of ``benchmarks/latency.py --quick`` on the tiny bundles, and its README block.

Benchmarks never assert performance: these tests check that the script runs end to end as users
run it (``python benchmarks/latency.py``), writes the issue's JSON shape, the markdown and the plot,
measures every engine that applies to each method, and that every fp32 engine of one method scores
the same model (same pairwise accuracy on the same requests, within one pair).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.latency_report import REQUIRED_KEYS, readme_block  # noqa: E402

# With --quick the fixture's fp32 bundles serve every fp32 engine (no export); int8 cannot be
# exported for the tiny domains (its accuracy check needs their validation split), so it is skipped.
PLAIN = {"routerm-ort-fp32", "routerm-ort-optimized", "routerm-torch", "optimum-ort"}
EXPECTED = {
    "baseline": PLAIN | {"hf-eager"},
    "more": PLAIN | {"hf-eager"},
    "rodos": PLAIN | {"hf-eager"},
    "arliss": PLAIN | {"routerm-ort-merged", "peft-eager"},
}
QUICK_BATCH_SIZES = {1, 4}
MACHINE_KEYS = ("cpu", "threads", "gemm_gflops_fp32")


@pytest.fixture(scope="module")
def quick_run(tiny_checkpoints, tiny_bundles, tmp_path_factory):
    """``results`` of one ``--quick`` run over copies of the tiny bundles (the fixture stays read-only)."""
    root = tmp_path_factory.mktemp("latency")
    bundles = root / "bundles"
    for name, path in tiny_bundles.items():
        shutil.copytree(path, bundles / name)   # copy2 keeps mtimes: still newer than the checkpoints
    checkpoints = Path(next(iter(tiny_checkpoints.values()))).parent
    out = root / "results"
    cmd = [sys.executable, "benchmarks/latency.py", "--quick", "--threads", "1",
           "--checkpoints", str(checkpoints), "--bundles", str(bundles), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"json": json.loads((out / "latency.json").read_text()), "out": out, "stdout": proc.stdout,
            "stderr": proc.stderr, "bundles": bundles}


def test_quick_run_writes_the_issue_shape(quick_run):
    results = quick_run["json"]
    for key in MACHINE_KEYS:
        assert key in results["machine"], key
    assert results["machine"]["gemm_gflops_fp32"] > 0
    assert results["machine"]["threads"] == 1
    assert results["records"], "no records"
    for record in results["records"]:
        missing = [k for k in REQUIRED_KEYS if k not in record]
        assert not missing, (record["engine"], missing)
        assert record["p95_ms"] >= record["p50_ms"] > 0
        assert record["pairs_per_s"] > 0 and record["gflops_effective"] > 0
        assert 0.0 <= record["accuracy"] <= 1.0
        assert record["params_total"] >= record["params_active"] > 0
        assert record["peak_rss_mb"] > 0 and record["load_s"] > 0
    lines = [json.loads(line) for line in quick_run["stdout"].splitlines() if line.startswith("{")]
    assert len(lines) == len(results["records"]), "one JSON line per setup on stdout"
    for name in ("latency.md", "latency.png"):
        assert (quick_run["out"] / name).stat().st_size > 0, name
    assert "| method | engine | batch |" in (quick_run["out"] / "latency.md").read_text()


def test_every_applicable_engine_is_measured_and_only_int8_skipped(quick_run, tiny_bundles):
    results = quick_run["json"]
    skipped = {(s["method"], s["engine"]) for s in results["skipped"]}
    assert skipped == {(m, "routerm-ort-int8") for m in EXPECTED}, results["skipped"]
    assert all("validation split" in s["reason"] for s in results["skipped"])
    measured = {}
    for r in results["records"]:
        measured.setdefault(r["method"], {}).setdefault(r["engine"], set()).add(r["batch_size"])
    assert {m: set(e) for m, e in measured.items()} == EXPECTED
    for method, engines in measured.items():
        for engine, sizes in engines.items():
            assert sizes == QUICK_BATCH_SIZES, (method, engine, sizes)
    # the fixture's bundles were found, nothing was exported beside them
    assert sorted(p.name for p in quick_run["bundles"].iterdir()) == sorted(tiny_bundles)


def test_fp32_engines_of_one_method_agree_on_accuracy(quick_run):
    results = quick_run["json"]
    requests = results["config"]["requests"]
    for method in EXPECTED:
        accuracies = {r["engine"]: r["accuracy"] for r in results["records"] if r["method"] == method}
        assert max(accuracies.values()) - min(accuracies.values()) <= 1 / requests + 1e-9, (method, accuracies)


def test_markdown_reads_inside_a_readme_section(quick_run):
    """No title in latency.md (the README embeds it under its own heading); the block is the tables."""
    md = (quick_run["out"] / "latency.md").read_text()
    assert not any(line.startswith(("# ", "## ", "### ")) for line in md.splitlines())
    block = readme_block(quick_run["json"], plot="results/latency.png")
    assert "| method | engine | batch |" in block and "| target |" in block
    assert block.rstrip().endswith("(results/latency.png)")
    assert "not a measurement" in block


def test_quick_run_says_its_preset_and_ends_with_a_summary(quick_run):
    err = quick_run["stderr"]
    assert "preset 'quick'" in err
    assert "load average at start" in err
    assert re.search(r"routerm-ort-optimized vs hf-eager: speed-up \d+\.\d\dx, (faster|SLOWER|within noise) \(rounds", err)
    assert "skipped baseline/routerm-ort-int8:" in err
    for record in quick_run["json"]["records"]:
        assert len(record["round_ms"]) == record["repeats"]


def test_default_preset_writes_a_run_folder_not_the_committed_results():
    from benchmarks.latency import DEFAULT, parse_args
    args = parse_args([])
    assert args.preset == "default" and args.out.parent == Path("results") / "runs"
    assert args.batch_sizes == sorted(DEFAULT["batch_sizes"]) and list(args.engines) == list(DEFAULT["engines"])
    full = parse_args(["--full", "--out", "results"])
    assert full.preset == "full" and full.out == Path("results") and full.repeats == 15
