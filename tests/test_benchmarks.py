"""CI smoke test of ``benchmarks/latency.py --quick`` on the tiny bundles, and its README block.

Benchmarks never assert performance: these tests check that the script runs end to end as users
run it (``python benchmarks/latency.py``), writes the documented JSON shape, the markdown and the
plot, measures every engine that applies to each method, and that every fp32 engine of one method
scores the same model (same pairwise accuracy on the same requests, within one pair).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.latency_report import REQUIRED_KEYS, readme_block

REPO = Path(__file__).resolve().parent.parent

# With --quick the fixture's fp32 bundles serve every fp32 engine (no export); int8 cannot be
# exported for the tiny domains (its accuracy check needs their validation split), so it is skipped.
# ONNX Runtime's dynamic int8 needs no export: it quantizes optimum-ort's graphs at the start.
FP32 = {"routerm-ort-fp32", "routerm-ort-optimized", "routerm-torch", "optimum-ort"}
PLAIN = FP32 | {"optimum-ort-int8-dynamic"}
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


def test_quick_run_writes_the_documented_shape(quick_run):
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
        accuracies = {r["engine"]: r["accuracy"] for r in results["records"]
                      if r["method"] == method and r["engine"] != "optimum-ort-int8-dynamic"}
        assert set(accuracies) == EXPECTED[method] - {"optimum-ort-int8-dynamic"}
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


# --- benchmarks/profile_score.py ---------------------------------------------------------------

def test_profile_sums_a_real_ort_trace_by_kind_with_gemm_flops(tmp_path):
    """A weight MatMul [4, 8] x [8, 16], an activation MatMul [4, 16] x [16, 3] and a Softmax, run
    under ONNX Runtime's profiler: each lands in its kind with its exact FLOPs."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from benchmarks.profile_score import summarize_trace

    w = numpy_helper.from_array(np.ones((8, 16), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"]), helper.make_node("MatMul", ["Y", "Z"], ["P"]),
         helper.make_node("Softmax", ["P"], ["O"], axis=-1)], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 8]),
         helper.make_tensor_value_info("Z", TensorProto.FLOAT, [16, 3])],
        [helper.make_tensor_value_info("O", TensorProto.FLOAT, [4, 3])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "ort")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    for _ in range(2):
        sess.run(None, {"X": np.ones((4, 8), np.float32), "Z": np.ones((16, 3), np.float32)})
    summary = summarize_trace(json.loads(Path(sess.end_profiling()).read_text()))
    assert summary["gemm-weight"]["calls"] == 2 and summary["gemm-weight"]["flops"] == 2 * (2 * 4 * 8 * 16)
    assert summary["gemm-activation"]["calls"] == 2 and summary["gemm-activation"]["flops"] == 2 * (2 * 4 * 16 * 3)
    assert summary["Softmax"]["calls"] == 2 and summary["Softmax"]["flops"] == 0
    assert all(rec["ms"] >= 0 for rec in summary.values())


def test_profile_script_splits_a_call_on_the_tiny_bundles(tiny_bundles, tmp_path):
    bundles = tmp_path / "bundles"
    for name in ("baseline", "arliss"):
        shutil.copytree(tiny_bundles[name], bundles / name)
    out = tmp_path / "out"
    cmd = [sys.executable, "benchmarks/profile_score.py", "--methods", "baseline,arliss", "--bundles", str(bundles),
           "--requests", "8", "--batch-size", "4", "--repeats", "1", "--threads", "1", "--gemm-gflops", "100",
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "profile.json").read_text())
    assert set(results["methods"]) == {"baseline", "arliss"}
    for method, r in results["methods"].items():
        per_call = r["per_call_ms"]
        assert per_call["score"] > 0 and per_call["tokenize"] > 0, method
        assert set(per_call["graphs"]) == ({"reward"} if method == "baseline" else {"switchable"}), per_call["graphs"]
        assert 0.0 <= r["padding_share"] < 1.0
        assert r["ops_ms_per_call"]["gemm-weight"] > 0 and r["gemm_weight_flops_per_call"] > 0
        assert r["gemm_weight_gflops"] > 0
    assert "| baseline |" in (out / "profile.md").read_text()


# --- benchmarks/int8_sensitivity.py --------------------------------------------------------------

def test_int8_sensitivity_measures_each_keep_choice_on_a_tiny_bundle(tiny_bundles, tiny_splits):
    from benchmarks.int8_sensitivity import KEEP_FP32, measure, render
    pairs = {d: tiny_splits[d]["test"][:6] for d in tiny_splits}
    r = measure(tiny_bundles["arliss"], pairs, threads=1)
    variants = r["variants"]
    assert set(variants) == set(KEEP_FP32) and r["pairs"] == 6 * len(pairs)
    assert variants["every"]["rewritten"] > variants["contracting"]["rewritten"] > 0
    for name in KEEP_FP32:
        v = variants[name]
        assert 0.0 <= v["decision_agreement"] <= 1.0 and v["router_agreement"] is not None
        assert v["pairs"] == r["pairs"]
    text = render({"load_average_start": 0.1, "methods": {"arliss": r}})
    assert text.count("| arliss |") == len(KEEP_FP32)


def test_a_bundle_stays_fresh_when_only_the_checkpoints_test_evaluation_is_newer(tmp_path):
    import os
    from benchmarks.latency_plan import find_bundle
    from export.spec import ExportSpec
    from models.checkpoint import EVAL_FILE
    ckpt, bundles = tmp_path / "ckpt", tmp_path / "bundles"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights")
    (bundles / "baseline").mkdir(parents=True)
    manifest = bundles / "baseline" / "manifest.json"
    manifest.write_text(json.dumps({"method": "baseline", "precision": "fp32",
                                    "export": {"optimize": True, "source_checkpoint": str(ckpt)}}))
    t = manifest.stat().st_mtime
    os.utime(ckpt / "model.safetensors", (t - 10, t - 10))
    spec = ExportSpec("baseline")
    assert find_bundle(bundles, spec, ckpt) == manifest.parent
    (ckpt / EVAL_FILE).write_text("{}")
    os.utime(ckpt / EVAL_FILE, (t + 10, t + 10))                 # evaluated after the export
    assert find_bundle(bundles, spec, ckpt) == manifest.parent
    os.utime(ckpt / "model.safetensors", (t + 10, t + 10))       # retrained after the export
    assert find_bundle(bundles, spec, ckpt) is None


def test_paired_speedup_calls_straddling_rounds_noise_and_the_int8_table_uses_it():
    from benchmarks.latency_report import int8_table, paired_speedup
    assert paired_speedup([100, 100, 100], [150, 130, 120])["verdict"] == "faster"
    assert paired_speedup([100, 100, 100], [90, 110, 105])["verdict"] == "within noise"
    slower = paired_speedup([100, 100], [80, 70])
    assert slower["verdict"] == "SLOWER" and slower["low"] == 0.7 and slower["high"] == 0.8
    assert paired_speedup([], []) is None
    rec = {"method": "baseline", "batch_size": 32, "accuracy": 0.6}
    table = int8_table([dict(rec, engine="routerm-ort-fp32", round_ms=[130, 140]),
                        dict(rec, engine="routerm-ort-int8", round_ms=[100, 100])])
    assert "| baseline | 32 | 1.35x | 1.30-1.40x | faster |" in table
    assert int8_table([dict(rec, engine="routerm-ort-fp32", round_ms=[1])]) is None


# --- running the scripts, and the engines' own pieces ------------------------------------------

@pytest.mark.parametrize("script", ["latency.py", "kernel_speed.py", "profile_score.py", "serve_load.py",
                                    "int8_sensitivity.py"])
def test_scripts_run_from_another_directory_without_path_edits(script, tmp_path):
    """Run as files, benchmarks/ comes first on sys.path: no module there may shadow a top-level package."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "usage:" in proc.stdout
    assert "--more-experts" not in proc.stdout


def test_dynamic_int8_engine_quantizes_optimums_graphs_and_scores_with_them(tiny_bundles, tiny_splits, tmp_path):
    import numpy as np
    import onnx

    from benchmarks.latency_engines import OptimumOrtScorer, quantize_dynamic_graphs
    bundle = tiny_bundles["rodos"]
    graphs = quantize_dynamic_graphs(bundle, tmp_path / "q")
    for name in ("router.onnx", "reward_alpha.onnx"):
        ops = {n.op_type for n in onnx.load(str(graphs / name)).graph.node}
        assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops, (name, ops)
    pairs = [p for d in tiny_splits for p in tiny_splits[d]["test"][:4]]
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    fp32 = OptimumOrtScorer(bundle, threads=1).score(prompts, responses)
    int8 = OptimumOrtScorer(bundle, threads=1, graphs=graphs).score(prompts, responses)
    assert int8.shape == fp32.shape == (len(pairs),) and np.isfinite(int8).all()
    assert not np.array_equal(int8, fp32) and np.corrcoef(int8, fp32)[0, 1] > 0.9


def test_an_older_dense_more_bundle_is_not_picked(tmp_path):
    from benchmarks.latency_plan import find_bundle
    from export.spec import ExportSpec
    ckpt, bundles = tmp_path / "ckpt", tmp_path / "bundles"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights")
    for name, experts in (("more-dense", "dense"), ("more", "sparse")):
        (bundles / name).mkdir(parents=True)
        (bundles / name / "manifest.json").write_text(json.dumps({
            "method": "more", "precision": "fp32", "lora": None,
            "export": {"optimize": True, "source_checkpoint": str(ckpt), "more_experts": experts}}))
    assert find_bundle(bundles, ExportSpec("more"), ckpt) == bundles / "more"
    (bundles / "more" / "manifest.json").unlink()
    assert find_bundle(bundles, ExportSpec("more"), ckpt) is None
