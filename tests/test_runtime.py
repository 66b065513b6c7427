"""runtime.RewardEngine against the PyTorch models and training's evaluation, on tiny bundles.

Every method x both backends: rewards within 1e-4 of the checkpoint's PyTorch models (fp32),
routing equal to ``training.evaluate.route``, routed accuracy equal to ``training.evaluate``;
one engine shared by 8 threads x 50 calls equals serial calls; every bad input has its exact
error; a tampered, incomplete or foreign bundle is refused. The tests may import ``training``;
the runtime may not (checked in a subprocess).
"""
from __future__ import annotations

import json
import logging
import math
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from core.manifest import KINDS, MANIFEST, METHODS, SCHEMA_VERSION
from core.scoring import BatchLimits
from core.text import HEAD_TAIL, KEEP_HEAD, PROMPT_MIN_DIVISOR, TRUNCATION_POLICIES, clean_text, encode_pairs
from models.base import collate
from models.checkpoint import load_checkpoint
from runtime import BundleError, ProviderError, RewardEngine
from runtime.__main__ import DEFAULT_BATCH_SIZE, main as cli_main
from runtime.providers import select_ort_providers, select_torch_device
from training.evaluate import evaluate, route

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime"
BUNDLES = ("baseline", "more", "rodos", "arliss", "arliss-merged")
BACKENDS = ("onnxruntime", "torch")
TOL = {"rtol": 0, "atol": 1e-4}  # fp32 bundles vs PyTorch (the parity bound export checks a bundle by)
KNOWN = "['alpha', 'beta', 'gamma']"


@pytest.fixture(scope="module")
def engines(tiny_bundles):
    cache = {}

    def get(name: str, backend: str = "onnxruntime", **kwargs) -> RewardEngine:
        key = (name, backend, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = RewardEngine.from_bundle(tiny_bundles[name], backend=backend, threads=1, **kwargs)
        return cache[key]
    return get


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints):
    return {m: load_checkpoint(p) for m, p in tiny_checkpoints.items()}


@pytest.fixture(scope="module")
def rows(tiny_splits):
    """Mixed-domain (prompt, response, domain) rows with awkward texts: empty, over-long, surrogates."""
    out = []
    for d in ("alpha", "beta", "gamma"):
        for p in tiny_splits[d]["test"][:4]:
            out += [(p.prompt, p.chosen, d), (p.prompt, p.rejected, d)]
    out += [("", "", "beta"), ("word " * 300, "answer " * 300, "gamma"), ("caf\udce9?", "ok \ud800", "alpha")]
    return out


@torch.inference_mode()
def torch_rewards(ckpt, prompts, responses, domains=None) -> np.ndarray:
    """The reference: the checkpoint's training-side PyTorch models called directly, one row at a time
    (no batching, no padding, no core.scoring), texts encoded as in training (core.text)."""
    enc = encode_pairs(ckpt.tokenizer, [clean_text(p, "p") for p in prompts],
                       [clean_text(r, "r") for r in responses], ckpt.card.max_length, ckpt.card.truncation)
    m, out = ckpt.models, np.empty(len(prompts), np.float32)
    for i, e in enumerate(enc):
        batch = collate([e], ckpt.tokenizer.pad_token_id)
        d = None if domains is None else domains[i]
        if ckpt.method in ("baseline", "more"):
            out[i] = m["reward"](**batch).logits[0, 0]
        elif ckpt.method == "rodos":
            out[i] = m[f"reward/{d}"](**batch).logits[0, 0]
        else:
            out[i] = m["arliss"].rewards(batch, d)[0]
    return out


# --- parity and routing ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", BUNDLES)
def test_rewards_equal_pytorch(engines, checkpoints, rows, name, backend):
    engine, ckpt = engines(name, backend), checkpoints[name.split("-")[0]]
    prompts, responses, domains = map(list, zip(*rows))
    if engine.manifest.routed:
        result = engine.score(prompts, responses, domains)
        assert result.domains == domains and result.router_probs is None
        expected = torch_rewards(ckpt, prompts, responses, domains)
    else:
        result = engine.score(prompts, responses)
        assert result.domains == [None] * len(rows) and result.router_probs is None
        expected = torch_rewards(ckpt, prompts, responses)
    assert result.rewards.dtype == np.float32 and result.rewards.shape == (len(rows),)
    np.testing.assert_allclose(result.rewards, expected, **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ("rodos", "arliss", "arliss-merged"))
def test_routing_equals_training(engines, checkpoints, rows, name, backend):
    engine, ckpt = engines(name, backend), checkpoints[name.split("-")[0]]
    prompts, responses, _ = map(list, zip(*rows))
    result = engine.score(prompts, responses)
    routed = [ckpt.domains[i] for i in route(ckpt, [clean_text(p, "p") for p in prompts]).tolist()]
    assert result.domains == routed
    assert result.router_probs.shape == (len(rows), 3)
    np.testing.assert_allclose(result.router_probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.rewards, torch_rewards(ckpt, prompts, responses, routed), **TOL)


@pytest.mark.parametrize("name", ("rodos", "arliss", "arliss-merged"))
def test_routed_accuracy_equals_training_evaluate(engines, checkpoints, tiny_splits, name):
    engine, ckpt = engines(name), checkpoints[name.split("-")[0]]
    expected = evaluate(ckpt, tiny_splits)["method"]["domains"]
    for d in ckpt.domains:
        pairs = tiny_splits[d]["test"]
        prompts = [p.prompt for p in pairs]
        result = engine.score(prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs])
        n = len(pairs)
        assert result.domains[:n] == result.domains[n:]  # routing sees the prompt only
        accuracy = float(np.mean(result.rewards[:n] > result.rewards[n:]))
        assert accuracy == pytest.approx(expected[d]["accuracy"], abs=1e-6), d  # fp32 mean vs fp64; a pair is 0.04


def test_router_runs_once_per_distinct_prompt(engines):
    engine = RewardEngine.from_bundle(engines("arliss").manifest.path, threads=1)
    calls = []
    run = engine.backend.run
    engine.backend.run = lambda role, feeds: calls.append((role, feeds["adapter_ids"].tolist())) or run(role, feeds)
    engine.score(["p one", "p two", "p one", "p one"], ["a", "b", "c", "d"])
    router_rows = [ids for _, ids in calls if ids and ids[0] == engine.manifest.adapter_ids["router"]]
    assert sum(len(ids) for ids in router_rows) == 2     # two distinct prompts
    assert len(calls) == 2                               # one router run, ONE reward run (mixed adapters)


def test_micro_batches_keep_input_order(tiny_bundles, engines, rows):
    prompts, responses, _ = map(list, zip(*rows))
    whole = engines("rodos").score(prompts, responses)
    tiny = RewardEngine.from_bundle(tiny_bundles["rodos"], threads=1, max_tokens=40, batch_size=3)
    cut = tiny.score(prompts, responses)
    assert cut.domains == whole.domains
    np.testing.assert_allclose(cut.rewards, whole.rewards, **TOL)


def test_compare_is_sigmoid_of_difference(engines):
    engine = engines("arliss")
    prompt, a, b = "recipe cook question", "correct clear helpful answer", "wrong rude useless nonsense"
    r = engine.score([prompt, prompt], [a, b]).rewards
    assert engine.compare(prompt, a, b) == pytest.approx(1 / (1 + math.exp(-(r[0] - r[1]))), abs=1e-6)
    assert engine.compare(prompt, a, a) == pytest.approx(0.5, abs=1e-7)
    assert engine.domains == ("alpha", "beta", "gamma")


# --- concurrency ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_match_serial(engines, rows, backend):
    engine = engines("arliss", backend)
    requests = [([p for p, _, _ in rows[i:i + 3]], [r for _, r, _ in rows[i:i + 3]]) for i in range(0, 24, 3)]
    serial = [engine.score(p, r) for p, r in requests]

    def worker(k):
        return [(j, engine.score(*requests[j])) for j in ((k + i) % len(requests) for i in range(50))]

    with ThreadPoolExecutor(8) as pool:
        results = [res for chunk in pool.map(worker, range(8)) for res in chunk]
    assert len(results) == 400
    for j, res in results:
        np.testing.assert_array_equal(res.rewards, serial[j].rewards)
        assert res.domains == serial[j].domains


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, error, message", [
    (("hello", ["a"]), TypeError, "prompts must be a list of str or of message lists, got str"),
    ((None, ["a"]), TypeError, "prompts must be a list of str or of message lists, got NoneType"),
    (([1], ["a"]), TypeError, "prompts[0] must be a str or a list of {'role', 'content'} messages, got int"),
    ((["p", "q"], ["a", b"b"]), TypeError, "responses[1] must be a str or a list of {'role', 'content'} messages, got bytes"),
    (([[{"role": "user"}]], ["a"]), ValueError, "prompts[0] message 0 has no 'content' string"),
    ((["p", "q"], ["a"]), ValueError, "responses has 1 items but prompts has 2"),
    ((["p"], ["a"], "alpha"), TypeError, "domains must be a list of str, got str"),
    ((["p", "q"], ["a", "b"], ["alpha"]), ValueError, "domains has 1 items but prompts has 2"),
    ((["p", "q"], ["a", "b"], ["alpha", "delta"]), ValueError,
     f"domains[1] is 'delta', not a domain of this bundle; known: {KNOWN}"),
    ((["p"], ["a"], [None]), TypeError, "domains[0] must be str, got NoneType"),
])
def test_bad_input_errors(engines, args, error, message):
    with pytest.raises(error) as info:
        engines("arliss").score(*args)
    assert str(info.value) == message


def test_compare_bad_input(engines):
    with pytest.raises(TypeError, match=r"^response_b must be a str or a list of \{'role', 'content'\} messages, got int$"):
        engines("rodos").compare("p", "a", 3)
    with pytest.raises(ValueError, match=r"^domains\[0\] is 'x', not a domain of this bundle"):
        engines("rodos").compare("p", "a", "b", domain="x")


@pytest.mark.parametrize("name", ("baseline", "arliss"))
def test_empty_batch_gives_empty_result(engines, name):
    result = engines(name).score([], [])
    assert result.rewards.shape == (0,) and result.rewards.dtype == np.float32 and result.domains == []
    assert (result.router_probs is None) == (name == "baseline")
    if name == "arliss":
        assert result.router_probs.shape == (0, 3)


def test_empty_strings_are_scored(engines, checkpoints):
    result = engines("baseline").score(["", "x"], ["", ""])
    assert np.isfinite(result.rewards).all()
    np.testing.assert_allclose(result.rewards, torch_rewards(checkpoints["baseline"], ["", "x"], ["", ""]), **TOL)


def test_over_long_keeps_response_head_and_tail_and_cuts_prompt_start(engines):
    # max_length 32 -> 30 text tokens: the prompt keeps its last 30 // 4 = 7, the response its first
    # 12 and last 11 tokens (policy prompt_tail_response_head_tail, core.text)
    engine = engines("baseline")
    tail = " tail words here" * 3                      # 9 tokens, more than the prompt keeps
    long_a, long_b = "alpha " * 100 + tail, "beta " * 100 + tail
    head, end = "correct clear helpful answer " * 5, " the final result is four" * 3   # 20 and 15 tokens
    r = engine.score([long_a, long_b, long_a, long_a, long_a],
                     [head + "alpha " * 30 + end, head + "beta " * 30 + end, head + "gamma " * 40 + end,
                      "wrong " + head + "alpha " * 30 + end, head + "alpha " * 30 + end.replace("four", "five")]).rewards
    assert r[0] == r[1] == r[2]                        # prompt starts and response middles are cut
    assert abs(r[0] - r[3]) > 1e-4                     # the response's start is kept
    assert abs(r[0] - r[4]) > 1e-4                     # and its end


def test_lone_surrogates_become_replacement_char(engines):
    r = engines("arliss").score(["caf\udce9", "caf\ufffd"], ["ok \ud800", "ok \ufffd"])
    assert r.rewards[0] == r.rewards[1] and r.domains[0] == r.domains[1]


def test_engine_argument_errors(tiny_bundles):
    with pytest.raises(ValueError, match=r"^backend must be one of \['onnxruntime', 'torch'\], got 'tf'$"):
        RewardEngine.from_bundle(tiny_bundles["baseline"], backend="tf")
    with pytest.raises(ValueError, match=r"^threads must be a positive int or None, got 0$"):
        RewardEngine.from_bundle(tiny_bundles["baseline"], threads=0)
    with pytest.raises(ValueError, match=r"^max_tokens must be a positive int, got 0$"):
        RewardEngine.from_bundle(tiny_bundles["baseline"], max_tokens=0)


# --- providers -----------------------------------------------------------------------------------

def test_provider_preference_and_errors(caplog):
    everything = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert select_ort_providers(None, everything) == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                      "CPUExecutionProvider"]
    assert select_ort_providers(None, ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    assert select_ort_providers(["cuda", "cpu"], everything) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ProviderError) as info:
        select_ort_providers(["cuda"], ["CPUExecutionProvider"])
    assert str(info.value) == ("execution provider 'cuda' is not available (available: ['CPUExecutionProvider']); "
                               "pass allow_fallback=True to fall back to the next one")
    with caplog.at_level(logging.WARNING, logger="runtime"):
        assert select_ort_providers(["cuda"], ["CPUExecutionProvider"], allow_fallback=True) == ["CPUExecutionProvider"]
    assert "execution provider 'cuda' is not available" in caplog.text
    with pytest.raises(TypeError, match="^providers must be a non-empty list of str"):
        select_ort_providers([], everything)
    assert select_torch_device(None, cuda_available=False) == "cpu"
    with pytest.raises(ProviderError, match="^execution provider 'cuda' is not available"):
        select_torch_device(["cuda"], cuda_available=False)
    assert select_torch_device(["cuda", "cpu"], cuda_available=False, allow_fallback=True) == "cpu"


def test_missing_provider_refused_then_fallback(tiny_bundles):
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider present: nothing is missing")
    with pytest.raises(ProviderError, match="^execution provider 'CUDAExecutionProvider' is not available"):
        RewardEngine.from_bundle(tiny_bundles["baseline"], providers=["CUDAExecutionProvider"])
    engine = RewardEngine.from_bundle(tiny_bundles["baseline"], providers=["CUDAExecutionProvider"], allow_fallback=True)
    assert engine.backend.sessions["reward"].get_providers() == ["CPUExecutionProvider"]


# --- bundles -------------------------------------------------------------------------------------

def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / bundle.name))


def _edit_manifest(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_tampered_bundle_refused(tiny_bundles, tmp_path):
    bundle = _copy(tiny_bundles["arliss"], tmp_path)
    with open(bundle / "switchable.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match=r"^bundle file 'switchable.onnx' in .* does not match its checksum"):
        RewardEngine.from_bundle(bundle)
    (bundle / "switchable.onnx").unlink()
    with pytest.raises(BundleError, match=r"^bundle file 'switchable.onnx' is missing from "):
        RewardEngine.from_bundle(bundle)


def test_changed_tokenizer_refused(tiny_bundles, tmp_path):
    bundle = _copy(tiny_bundles["baseline"], tmp_path)
    with open(bundle / "vocab.txt", "a", encoding="utf-8") as fh:
        fh.write("extra\n")
    with pytest.raises(BundleError, match=r"^bundle file 'vocab.txt' in .* does not match its checksum"):
        RewardEngine.from_bundle(bundle, backend="torch")


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(schema_version=2), r"unknown schema_version 2 \(this runtime reads 1\)$"),
    (lambda m: m["files"].update({"../outside.onnx": "0" * 64}), r"files names '../outside.onnx', which is outside the bundle$"),
    (lambda m: m["graphs"]["reward"].update(file="/etc/passwd"), r"graphs.reward.file names '/etc/passwd', which is outside the bundle$"),
    (lambda m: m["truncation"].update(policy="cut_response"), r"truncation .* is not one this runtime applies"),
])
def test_bad_manifest_refused(tiny_bundles, tmp_path, change, message):
    bundle = _copy(tiny_bundles["baseline"], tmp_path)
    _edit_manifest(bundle, change)
    with pytest.raises(BundleError, match=message):
        RewardEngine.from_bundle(bundle)


def test_not_a_bundle_and_unloadable_graph(tiny_bundles, tmp_path):
    with pytest.raises(BundleError, match=r"no manifest \(is '.*' a RouteRM bundle\?\)$"):
        RewardEngine.from_bundle(tmp_path)
    bundle = _copy(tiny_bundles["baseline"], tmp_path)
    from core.hashing import sha256_file
    for content, why in ((b"not onnx", "is not a readable ONNX graph"),          # not even protobuf
                         (b"\x08\x07", "could not be loaded by ONNX Runtime")):   # ir_version 7, no graph
        (bundle / "reward.onnx").write_bytes(content)
        _edit_manifest(bundle, lambda m: m["files"].update({"reward.onnx": sha256_file(bundle / "reward.onnx")}))
        with pytest.raises(BundleError, match=rf"^bundle file 'reward.onnx' {why}"):
            RewardEngine.from_bundle(bundle)


def test_torch_backend_serves_the_weights_the_bundle_carries(tiny_bundles, rows, tmp_path):
    """A copied bundle (training checkpoint out of reach) serves on torch as on ORT; nothing else is read."""
    for name in ("rodos", "arliss"):
        bundle = _copy(tiny_bundles[name], tmp_path / "moved")
        _edit_manifest(bundle, lambda m: m["export"].update(source_checkpoint=str(tmp_path / "gone")))
        prompts, responses = [r[0] for r in rows[:6]], [r[1] for r in rows[:6]]
        on_torch = RewardEngine.from_bundle(bundle, backend="torch").score(prompts, responses).rewards
        on_ort = RewardEngine.from_bundle(bundle).score(prompts, responses).rewards
        np.testing.assert_allclose(on_torch, on_ort, atol=1e-4)


def test_torch_backend_refuses_a_bundle_without_weights_or_not_fp32(tiny_bundles, tmp_path):
    bundle = _copy(tiny_bundles["rodos"], tmp_path / "bare")
    _edit_manifest(bundle, lambda m: m.update(torch_weights=None))
    with pytest.raises(BundleError, match=r"this bundle carries no Torch weights; export it with .*--torch-weights"):
        RewardEngine.from_bundle(bundle, backend="torch")
    RewardEngine.from_bundle(bundle)   # the ONNX backend does not need them
    bundle = _copy(tiny_bundles["baseline"], tmp_path / "int8")
    _edit_manifest(bundle, lambda m: m.update(precision="int8"))
    with pytest.raises(BundleError, match=r"a int8 bundle; the torch backend runs fp32 weights"):
        RewardEngine.from_bundle(bundle, backend="torch")
    bundle = _copy(tiny_bundles["arliss"], tmp_path / "tampered")
    with open(bundle / "torch" / "heads.safetensors", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(BundleError, match=r"bundle file 'torch/heads.safetensors' in .* does not match its checksum"):
        RewardEngine.from_bundle(bundle, backend="torch")


def test_export_refuses_torch_weights_beside_a_reduced_precision(tiny_checkpoints, tmp_path):
    from export.spec import ExportSpec
    from export.to_onnx import export_bundle
    with pytest.raises(ValueError, match=r"torch_weights: the Torch backend runs fp32 weights; a int8 bundle"):
        export_bundle(tiny_checkpoints["baseline"], ExportSpec("baseline", precision="int8"), tmp_path / "b",
                      torch_weights=True)


def test_no_pickle_loading(tiny_bundles, rows, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load (pickle) called")
    monkeypatch.setattr(torch, "load", refuse)
    for name in ("more", "arliss"):
        for backend in BACKENDS:
            engine = RewardEngine.from_bundle(tiny_bundles[name], backend=backend)
            assert engine.score([rows[0][0]], [rows[0][1]]).rewards.shape == (1,)


def test_runtime_never_imports_training_export_benchmarks_or_lab():
    """Every runtime module, imported in a fresh process, loads none of the packages upstream of it."""
    modules = sorted("runtime." + ".".join(p.relative_to(RUNTIME).with_suffix("").parts)
                     for p in RUNTIME.rglob("*.py") if p.name != "__init__.py")
    code = (f"import sys, runtime, runtime.integrations, {', '.join(modules)}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'export', 'benchmarks', 'lab')); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_scores_pairs_and_singles(tiny_bundles, engines, tmp_path):
    lines = [{"id": 1, "prompt": "poem verse question", "chosen": "precise kind reply", "rejected": "junk"},
             {"prompt": "recipe cook question", "response": "accurate polite useful reply"}]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert cli_main(["score", "--bundle", str(tiny_bundles["arliss"]), "--input", str(src), "--output", str(dst),
                     "--quiet", "--batch-size", "1"]) == 0
    out = [json.loads(x) for x in dst.read_text().splitlines()]
    engine = engines("arliss")
    pair = engine.score([lines[0]["prompt"]] * 2, [lines[0]["chosen"], lines[0]["rejected"]])
    assert out[0]["id"] == 1 and out[0]["domain"] == pair.domains[0]
    assert out[0]["p_chosen"] == pytest.approx(engine.compare(lines[0]["prompt"], lines[0]["chosen"], lines[0]["rejected"]), abs=1e-6)
    assert out[1]["reward"] == pytest.approx(float(engine.score([lines[1]["prompt"]], [lines[1]["response"]]).rewards[0]), abs=1e-6)


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
    ('["a"]', "line 2: expected a JSON object, got list"),
    ('{"prompt": "p"}', "line 2: missing field 'response' (a line needs 'prompt' and 'response', "
                        "or 'prompt', 'chosen' and 'rejected')"),
    ('{"prompt": "p", "chosen": "a"}', "line 2: missing field 'rejected'"),
    ('{"prompt": 3, "response": "r"}', "line 2: field 'prompt' must be a string, got int"),
])
def test_cli_bad_line_names_its_number(tiny_bundles, tmp_path, capsys, line, message):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "p", "response": "r"}\n' + line + "\n")
    code = cli_main(["score", "--bundle", str(tiny_bundles["baseline"]), "--input", str(src),
                     "--output", str(tmp_path / "out.jsonl"), "--quiet"])
    assert code == 2
    assert f"error: {src} {message}" in capsys.readouterr().err


# --- constants the C library restates from Python ---------------------------------------------------

def _c_match(rel: str, pattern: str) -> re.Match:
    text = (ROOT / rel).read_text(encoding="utf-8")
    match = re.search(pattern, text, re.S)
    assert match, f"{rel}: no match for {pattern!r} (renamed? update this test with it)"
    return match


def _c_strings(rel: str, pattern: str) -> tuple[str, ...]:
    return tuple(re.findall(r'"([^"]*)"', _c_match(rel, pattern).group(1)))


def _python_unnamed_policy() -> str:
    """The policy the Python engine applies to a bundle whose manifest names none."""
    from types import SimpleNamespace
    from runtime.engine import _check_truncation
    return _check_truncation(SimpleNamespace(truncation={}, path=Path(".")))


C_POLICY = {"HeadTail": HEAD_TAIL, "KeepHead": KEEP_HEAD}   # src/encode.hpp's enum -> core.text's names


@pytest.mark.parametrize("what, c_value, python_value", [
    ("schema version", lambda: int(_c_match("include/routerm.h", r"#define ROUTERM_SCHEMA_VERSION (\d+)")[1]),
     lambda: SCHEMA_VERSION),
    ("batch rows", lambda: int(_c_match("include/routerm.h", r"#define ROUTERM_DEFAULT_MAX_BATCH_ROWS (\d+)")[1]),
     lambda: BatchLimits().max_rows),
    ("batch tokens", lambda: int(_c_match("include/routerm.h", r"#define ROUTERM_DEFAULT_MAX_BATCH_TOKENS (\d+)")[1]),
     lambda: BatchLimits().max_tokens),
    ("prompt min divisor", lambda: int(_c_match("src/encode.hpp", r"kPromptMinDivisor = (\d+);")[1]),
     lambda: PROMPT_MIN_DIVISOR),
    ("truncation policies, in order", lambda: _c_strings("src/encode.hpp", r"kTruncationPolicies\[\] = \{(.*?)\};"),
     lambda: TRUNCATION_POLICIES),
    ("each policy's enum", lambda: dict(re.findall(r'\{Truncation::(\w+), "(\w+)"\}',
                                                   _c_match("src/encode.hpp", r"kTruncationPolicies\[\] = \{(.*?)\};")[1])),
     lambda: C_POLICY),
    ("policy of a manifest naming none",
     lambda: C_POLICY[_c_match("src/manifest.hpp", r"Truncation truncation = Truncation::(\w+);")[1]],
     _python_unnamed_policy),
    ("manifest file name", lambda: _c_match("src/manifest.cpp", r'kManifestName = "([^"]+)";')[1], lambda: MANIFEST),
    ("methods", lambda: _c_strings("src/manifest.cpp", r"kMethods\[\] = \{(.*?)\};"), lambda: METHODS),
    ("graph kinds and their outputs",
     lambda: {kind: tuple(re.findall(r'"(\w+)"', outs)) for kind, outs in re.findall(
         r'\{"(\w+)", \{([^}]*)\}\}', _c_match("src/manifest.cpp", r"kKindOutputs = \{(.*?)\};")[1])},
     lambda: KINDS),
    ("CLI lines per engine call", lambda: int(_c_match("src/cli/routerm_score.cpp", r"kDefaultBatch = (\d+);")[1]),
     lambda: DEFAULT_BATCH_SIZE),
])
def test_c_library_restates_python_constants_exactly(what, c_value, python_value):
    assert c_value() == python_value(), what
