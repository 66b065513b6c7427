"""ONNX export (export/to_onnx.py) on the tiny random checkpoints: parity, routing, manifest, spec, errors."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("optimum.exporters.onnx")

from export.graphs import graph_modules  # noqa: E402
from export.optimize import session  # noqa: E402
from export.bundle import bundle_mb  # noqa: E402
from export.spec import ExportSpec  # noqa: E402
from export.to_onnx import export_bundle, main  # noqa: E402
from export.validate import ort_runner, torch_runner  # noqa: E402
from models.checkpoint import load_checkpoint  # noqa: E402
from core.text import encode_pairs, encode_prompts  # noqa: E402
from models.base import collate  # noqa: E402
from core.errors import BundleError  # noqa: E402
from core.manifest import load_manifest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PARITY_ATOL = 1e-4          # fp32 ONNX Runtime vs PyTorch, max abs over every output
VARIANTS = [("baseline", "switchable"), ("more", "switchable"), ("rodos", "switchable"),
            ("arliss", "switchable"), ("arliss", "merged")]


@pytest.fixture(scope="module")
def bundles(tiny_checkpoints, tmp_path_factory):
    """fp32 bundles of every method and LoRA mode (unoptimized: fusion is covered by the int8 test)."""
    root = tmp_path_factory.mktemp("bundles")
    return {(m, lora): export_bundle(tiny_checkpoints[m], ExportSpec(m, lora=lora, optimize=False), root / f"{m}-{lora}")
            for m, lora in VARIANTS}


def _feeds(names, batch=5, seq=19, seed=1):
    """Shapes unlike both the trace (2 x 16) and the export's own check (3 x 37)."""
    rng = np.random.default_rng(seed)
    mask = (np.arange(seq)[None, :] < np.array([19, 1, 7, 12, 3])[:batch, None]).astype(np.int64)
    feeds = {"input_ids": rng.integers(1000, 30000, (batch, seq)) * mask, "attention_mask": mask,
             "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
             "adapter_ids": np.array([3, 0, 2, 1, 0])[:batch]}
    return {k: v.astype(np.int64) for k, v in feeds.items() if k in names}


@pytest.mark.parametrize("method,lora", VARIANTS)
def test_fp32_parity_every_graph(bundles, tiny_checkpoints, method, lora):
    manifest = load_manifest(bundles[(method, lora)])
    modules = graph_modules(load_checkpoint(tiny_checkpoints[method], method), lora)
    assert set(manifest.graphs) == set(modules)
    reference = torch_runner(modules)
    for role, graph in manifest.graphs.items():
        got = ort_runner({role: session(manifest.graph_path(role))})(role, _feeds(graph.inputs))
        want = reference(role, _feeds(graph.inputs))
        assert list(got) == list(graph.outputs)
        for name in graph.outputs:
            assert got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=PARITY_ATOL, err_msg=f"{role}/{name}")
        assert manifest.export["validation"]["max_abs_diff"][role] <= PARITY_ATOL


def test_switchable_mixed_batch_equals_merged_graphs(bundles, tiny_checkpoints):
    """One run of the switchable graph over rows of every domain and the router == per-row merged graphs."""
    switch = load_manifest(bundles[("arliss", "switchable")])
    merged = load_manifest(bundles[("arliss", "merged")])
    tok = load_checkpoint(tiny_checkpoints["arliss"], "arliss").tokenizer
    prompts = ["arithmetic sum of two numbers", "a poem about rhyme", "cook an oven recipe", "sum again", "verse"]
    responses = ["correct clear helpful answer 3", "wrong rude", "precise kind thorough", "junk", "accurate polite"]
    batch = {k: v.numpy() for k, v in collate(encode_pairs(tok, prompts, responses, 32), tok.pad_token_id).items()}
    ids = np.array([0, 1, 2, switch.adapter_ids["router"], 1], dtype=np.int64)
    out = ort_runner({"switchable": session(switch.graph_path("switchable"))})("switchable", {**batch, "adapter_ids": ids})
    runs = ort_runner({role: session(merged.graph_path(role)) for role in merged.graphs})
    for row, adapter in enumerate(ids):
        one = {k: v[row:row + 1] for k, v in batch.items()}
        if adapter == switch.adapter_ids["router"]:
            np.testing.assert_allclose(out["router_logits"][row], runs("router", one)["logits"][0], atol=PARITY_ATOL)
        else:
            domain = switch.domains[adapter]
            np.testing.assert_allclose(out["rewards"][row], runs(f"reward/{domain}", one)["logits"][0, 0], atol=PARITY_ATOL)
    # routing on the prompt encoding agrees too
    enc = {k: v.numpy() for k, v in collate(encode_prompts(tok, prompts, 16), tok.pad_token_id).items()}
    routed = ort_runner({"switchable": session(switch.graph_path("switchable"))})(
        "switchable", {**enc, "adapter_ids": np.full(5, switch.adapter_ids["router"], dtype=np.int64)})
    np.testing.assert_allclose(routed["router_logits"], runs("router", enc)["logits"], atol=PARITY_ATOL)


def test_manifest_contents(bundles, tiny_checkpoints):
    m = load_manifest(bundles[("arliss", "switchable")])
    assert m.method == "arliss" and m.lora == "switchable" and m.precision == "fp32"
    assert m.domains == ("alpha", "beta", "gamma")
    assert m.adapter_ids == {"alpha": 0, "beta": 1, "gamma": 2, "router": 3}
    # one segment (core.text.single_segment): the graph has no token_type_ids input
    assert m.graphs["switchable"].inputs == ("input_ids", "attention_mask", "adapter_ids")
    assert m.tokenizer["uses_token_type_ids"] is False
    assert m.tokenizer["kind"] == "wordpiece" and m.tokenizer["do_lower_case"] is True
    assert {"tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"} <= set(m.files)
    assert (m.tokenizer["cls_token_id"], m.tokenizer["sep_token_id"], m.tokenizer["pad_token_id"]) == (101, 102, 0)
    assert m.max_length == 32 and m.router_max_length == 16
    assert m.truncation == {"policy": "prompt_tail_response_head_tail", "prompt_min_divisor": 4}
    assert Path(m.export["source_checkpoint"]) == Path(tiny_checkpoints["arliss"]).resolve()
    assert m.export["opset"] == 17 and m.export["versions"]["onnxruntime"]
    assert 0 < m.params["active"] < m.params["total"]
    rodos = load_manifest(bundles[("rodos", "switchable")])
    assert rodos.lora is None and set(rodos.graphs) == {"router", "reward/alpha", "reward/beta", "reward/gamma"}
    assert rodos.graphs["router"].kind == "router" and rodos.graphs["reward/beta"].kind == "reward"


def test_more_graph_runs_each_expert_on_its_tokens(bundles):
    """MoRE's graph gathers each expert's tokens (NonZero) and scatters its output back (ScatterND);
    its parity with the eager model, padded rows included, is test_fp32_parity_every_graph's."""
    more = load_manifest(bundles[("more", "switchable")])
    ops = {n.op_type for n in onnx.load(more.graph_path("reward")).graph.node}
    assert "NonZero" in ops and "ScatterND" in ops


def test_checksums_catch_changed_and_missing_files(bundles, tmp_path):
    bundle = shutil.copytree(bundles[("baseline", "switchable")], tmp_path / "b")
    load_manifest(bundle)
    graph = bundle / "reward.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="'reward.onnx'.*does not match its checksum"):
        load_manifest(bundle)
    bundle = shutil.copytree(bundles[("baseline", "switchable")], tmp_path / "c")
    (bundle / "vocab.txt").unlink()
    with pytest.raises(BundleError, match="'vocab.txt' is missing"):
        load_manifest(bundle)


def test_wrong_method_is_a_clear_error(tiny_checkpoints, tmp_path):
    with pytest.raises(ValueError, match="holds method 'baseline', not 'arliss'"):
        export_bundle(tiny_checkpoints["baseline"], ExportSpec("arliss"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_checkpoint_names_the_command(tmp_path, capsys):
    rc = main(["--method", "rodos", "--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "python -m training train --method rodos" in capsys.readouterr().err


def test_refuses_to_overwrite_a_non_bundle_dir(tiny_checkpoints, tmp_path):
    (tmp_path / "keep.txt").write_text("not a bundle")
    with pytest.raises(FileExistsError, match="not a RouteRM bundle"):
        export_bundle(tiny_checkpoints["baseline"], ExportSpec("baseline", optimize=False), tmp_path)


def test_script_runs_from_repo_root_and_reports_wrong_method(tiny_checkpoints, tmp_path):
    proc = subprocess.run([sys.executable, "export/to_onnx.py", "--method", "more", "--checkpoint",
                           str(tiny_checkpoints["rodos"]), "--out", str(tmp_path / "o")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "holds method 'rodos', not 'more'" in proc.stderr


QUANT_OPS = {"int8": ("MatMulInteger", "DynamicQuantizeLinear"), "int8-blockwise": ("MatMulNBits", "MatMulInteger"),
             "int4": ("GatherBlockQuantized", "MatMulInteger")}


@pytest.mark.parametrize("method,lora,precision", [("arliss", "switchable", "int8"), ("more", "switchable", "int8-blockwise"),
                                                   ("arliss", "merged", "fp16")])
def test_reduced_precision_exports_keep_accuracy(tiny_checkpoints, tiny_splits, tmp_path, method, lora, precision):
    out = export_bundle(tiny_checkpoints[method], ExportSpec(method, precision, lora, optimize=True), tmp_path / "b",
                        splits=tiny_splits, val_pairs=8)
    m = load_manifest(out)
    figures = m.export["figures"]
    assert m.precision == precision
    if precision in QUANT_OPS:                    # each int8 scheme runs its own quantized op, not the other's
        has, lacks = QUANT_OPS[precision]
        ops = {n.op_type for role in m.graphs for n in onnx.load(str(m.graph_path(role))).graph.node}
        assert has in ops and lacks not in ops
    assert figures["decision_agreement"] >= 0.98 and figures["accuracy"] > 0.5
    assert figures["reward_rank_correlation"] > 0.99
    assert figures["router_agreement"] is None if method in ("baseline", "more") else figures["router_agreement"] >= 0.98
    assert 0 < figures["max_abs_diff"] < 0.1      # reduced precision: not exact, not wild
    for role, graph in m.graphs.items():          # inputs int64, outputs fp32 whatever the precision
        sess = session(m.graph_path(role))
        assert [o.type for o in sess.get_outputs()] == ["tensor(float)"] * len(graph.outputs)


def test_int4_faces_the_guard_and_quantizes_the_embedding_too(tiny_checkpoints, tiny_splits, tmp_path):
    out = export_bundle(tiny_checkpoints["baseline"], ExportSpec("baseline", "int4"), tmp_path / "b",
                        splits=tiny_splits, val_pairs=8)
    m = load_manifest(out)
    assert m.export["figures"]["decision_agreement"] >= 0.98
    ops = [n.op_type for n in onnx.load(str(m.graph_path("reward"))).graph.node]
    assert ops.count("GatherBlockQuantized") >= 1 and "MatMulNBits" in ops and "MatMulInteger" not in ops
    fp32 = export_bundle(tiny_checkpoints["baseline"], ExportSpec("baseline"), tmp_path / "f", splits=tiny_splits, val_pairs=8)
    assert bundle_mb(out) < 0.5 * bundle_mb(fp32)


def test_int8_guard_refuses_on_disagreement_not_on_accuracy_noise():
    from export.validate import ExportValidationError, agreement, check_agreement
    ref = {"domain": np.zeros(100, int), "routed": np.zeros(100, int), "chosen": np.linspace(0, 1, 100),
           "rejected": np.linspace(1, 0, 100)}
    same_decisions = {**ref, "chosen": ref["chosen"] * 1.01}
    check_agreement("int8", agreement(ref, same_decisions))            # rewards moved, decisions kept: accepted
    flipped = {**ref, "chosen": ref["chosen"].copy()}
    flipped["chosen"][:3] = 2.0                                          # 3 of 100 decisions flip
    figures = agreement(ref, flipped)
    assert figures["decision_agreement"] == 0.97
    with pytest.raises(ExportValidationError, match="97.0% of 100 validation decisions") as refused:
        check_agreement("int8", figures)
    assert refused.value.figures == figures


# --- lab/export_results.py: recording the figures is reporting, apart from export/ -----------------

def test_a_refused_variant_is_recorded_with_its_figures(tmp_path, monkeypatch, capsys):
    import export.to_onnx as to_onnx
    from export.validate import ExportValidationError
    from lab import export_results
    figures = {"decision_agreement": 0.966, "accuracy": 0.61, "pairs": 1457}

    def refuse(*args, **kwargs):
        raise ExportValidationError("int8 export agrees with PyTorch fp32 on 96.6%", figures)

    monkeypatch.setattr(to_onnx, "export_bundle", refuse)
    results = tmp_path / "export.json"
    assert export_results.main(["--method", "baseline", "--precision", "int8", "--results", str(results)]) == 2
    assert json.loads(results.read_text()) == {"baseline": {"int8": {**figures, "refused": "int8 export agrees with "
                                                                     "PyTorch fp32 on 96.6%"}}}
    assert "error: int8 export agrees" in capsys.readouterr().err


def test_export_results_records_the_manifests_figures_under_the_variant(bundles, tmp_path, monkeypatch):
    import export.to_onnx as to_onnx
    from lab import export_results
    made = bundles[("arliss", "merged")]
    seen = {}

    def export(checkpoint, spec, out, **kwargs):
        seen.update(spec=spec, out=out, **kwargs)
        return made

    monkeypatch.setattr(to_onnx, "export_bundle", export)
    results = tmp_path / "export.json"
    assert export_results.main(["--method", "arliss", "--lora", "merged", "--no-optimize", "--val-pairs", "0",
                                "--results", str(results)]) == 0
    assert seen["spec"] == ExportSpec("arliss", lora="merged", optimize=False)
    assert seen["out"] == Path("bundles/arliss-merged-noopt") and seen["val_pairs"] is None
    assert json.loads(results.read_text()) == {"arliss": {"fp32-merged-noopt": load_manifest(made).export["figures"]}}


def test_results_merge_keeps_other_methods(tmp_path):
    from lab.export_results import merge_results
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"rodos": {"fp32": {"accuracy": 0.7}}}))
    merge_results(path, "arliss", "int8-switchable", {"accuracy": 0.8})
    merge_results(path, "arliss", "fp32-switchable", {"accuracy": 0.81})
    assert json.loads(path.read_text()) == {"rodos": {"fp32": {"accuracy": 0.7}},
                                            "arliss": {"int8-switchable": {"accuracy": 0.8},
                                                       "fp32-switchable": {"accuracy": 0.81}}}


# --- the spec and the manifest ---------------------------------------------------------------------

@pytest.mark.parametrize("spec, variant, out", [
    (ExportSpec("arliss"), "fp32-switchable", "bundles/arliss"),
    (ExportSpec("arliss", "int8", "merged"), "int8-merged", "bundles/arliss-int8-merged"),
    (ExportSpec("arliss", "fp16", optimize=False), "fp16-switchable-noopt", "bundles/arliss-fp16-noopt"),
    (ExportSpec("baseline", lora="merged", optimize=False), "fp32-noopt", "bundles/baseline-noopt"),
    (ExportSpec("more", "int8-blockwise"), "int8-blockwise", "bundles/more-int8-blockwise"),
    (ExportSpec("rodos", "int8"), "int8", "bundles/rodos-int8"),
])
def test_spec_names_its_variant_and_default_folder(spec, variant, out):
    assert spec.variant == variant and spec.default_out == Path(out)
    assert spec.lora_mode == (spec.lora if spec.method == "arliss" else None)


@pytest.mark.parametrize("fields, error, match", [
    ({"method": "moe"}, ValueError, r"ExportSpec.method must be one of .*'moe'"),
    ({"method": "baseline", "precision": "int8-dynamic"}, ValueError, r"ExportSpec.precision must be one of .*'int8-dynamic'"),
    ({"method": "arliss", "lora": "dense"}, ValueError, r"ExportSpec.lora must be one of .*'dense'"),
    ({"method": "arliss", "optimize": "yes"}, TypeError, r"ExportSpec.optimize must be a bool, got str"),
    ({"method": "arliss", "opset": 13}, ValueError, r"ExportSpec.opset must be an int >= 14 .*got 13"),
    ({"method": "arliss", "opset": True}, ValueError, r"ExportSpec.opset must be an int >= 14"),
])
def test_spec_refuses_a_bad_field_by_name(fields, error, match):
    with pytest.raises(error, match=match):
        ExportSpec(**fields)


def test_the_cli_refuses_the_removed_options(capsys):
    for argv in (["--precision", "int8-dynamic"], ["--more-experts", "dense"], ["--results", "-"]):
        with pytest.raises(SystemExit):
            main(["--method", "baseline", *argv])
    assert "invalid choice: 'int8-dynamic'" in capsys.readouterr().err


@pytest.mark.parametrize("method,lora", VARIANTS)
def test_manifest_reads_back_as_the_json_export_wrote(bundles, tmp_path, method, lora):
    """One dataclass both ways: parsing manifest.json and writing it again gives the same text, and a
    Manifest written elsewhere reads back equal."""
    bundle = bundles[(method, lora)]
    manifest = load_manifest(bundle)
    assert manifest.to_json() == (bundle / "manifest.json").read_text(encoding="utf-8")
    assert json.loads(manifest.to_json())["schema_version"] == 1
    copy = shutil.copytree(bundle, tmp_path / "copy")
    (copy / "manifest.json").unlink()
    moved = dataclasses.replace(manifest, path=copy)
    (copy / "manifest.json").write_text(moved.to_json(), encoding="utf-8")
    assert load_manifest(copy) == moved


@pytest.mark.parametrize("precision, match", [
    ("int8-dynamic", r"field 'precision' is 'int8-dynamic', which RouteRM no longer serves: one activation scale "
                     r"per tensor .* re-export the checkpoint with precision 'int8'"),
    ("int3", r"field 'precision' is 'int3', expected one of \('fp32', 'fp16', 'int8', 'int8-blockwise', 'int4'\)"),
    (8, r"field 'precision' is 8, expected one of"),
])
def test_manifest_refuses_a_precision_routerm_does_not_serve(bundles, tmp_path, precision, match):
    bundle = shutil.copytree(bundles[("baseline", "switchable")], tmp_path / "b")
    raw = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**raw, "precision": precision}))
    with pytest.raises(BundleError, match=match):
        load_manifest(bundle)


@pytest.mark.parametrize("script", ["export/to_onnx.py", "lab/export_results.py"])
def test_help_runs_from_the_repo_root_and_from_elsewhere(tmp_path, script):
    for cwd, path in ((REPO, script), (tmp_path, str(REPO / script))):
        proc = subprocess.run([sys.executable, path, "--help"], cwd=cwd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "--precision {fp32,fp16,int8,int8-blockwise,int4}" in proc.stdout
