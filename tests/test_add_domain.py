"""Growing ARLISS and RODOS by one domain (training.add_domain), on tiny models and synthetic pairs."""
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointCard, load_checkpoint
from tiny import synthetic_splits, tiny_base, tiny_config
from training.add_domain import add_domain
from core.data import load_pairs_file, split_pairs
from training.evaluate import evaluate, pair_rewards
from training.methods import train

OLD, NEW = ("alpha", "beta"), "gamma"


def digests(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    root = tmp_path_factory.mktemp("add_domain")
    base = tiny_base(root)
    splits = {**synthetic_splits(OLD), **synthetic_splits((NEW,), n_train=200, n_test=60, seed=1)}  # >= 100 test pairs
    cfg = tiny_config(root, base, domains=OLD)
    data = root / f"{NEW}.jsonl"
    with open(data, "w", encoding="utf-8") as fh:
        for split in ("train", "validation", "test"):
            for p in splits[NEW][split]:
                fh.write(json.dumps({"id": p.id, "domain": NEW, "prompt": p.prompt, "chosen": p.chosen,
                                     "rejected": p.rejected}) + "\n")
    out = {}
    for method in ("arliss", "rodos"):
        train(method, {d: splits[d] for d in OLD}, cfg)
        src = cfg.method_dir(method)
        before = digests(src)
        stats = add_domain(src, NEW, data, root / f"{method}-grown", method=method,
                           old_splits={d: splits[d] for d in OLD})
        full = add_domain(src, NEW, data, root / f"{method}-full", method=method,
                          old_splits={d: splits[d] for d in OLD}, router="full")
        warm = add_domain(src, NEW, data, root / f"{method}-warm", method=method,
                          old_splits={d: splits[d] for d in OLD}, router="warm")
        with pytest.MonkeyPatch.context() as mp:                 # the tiny model has 2 layers: train the top one
            mp.setattr("training.add_domain.TOP_LAYERS", 1)
            top = add_domain(src, NEW, data, root / f"{method}-top", method=method,
                             old_splits={d: splits[d] for d in OLD}, router="top")
        out[method] = {"src": src, "dst": root / f"{method}-grown", "before": before, "stats": stats,
                       "full": root / f"{method}-full", "full_stats": full, "warm": root / f"{method}-warm",
                       "warm_stats": warm, "top": root / f"{method}-top", "top_stats": top, "data": data}
    return out, splits


@pytest.mark.parametrize("method", ["arliss", "rodos"])
def test_old_parts_are_byte_identical_and_the_card_has_lineage(grown, method):
    runs, _ = grown
    run = runs[method]
    assert digests(run["src"]) == run["before"], "the source checkpoint was modified"
    after = digests(run["dst"])
    old_parts = "adapters" if method == "arliss" else "rewards"
    for domain in OLD:
        mine = {k: v for k, v in run["before"].items() if k.startswith(f"{old_parts}/{domain}/")}
        assert mine and all(after[k] == v for k, v in mine.items()), domain
    card = CheckpointCard.load(run["dst"])
    assert card.domains == OLD + (NEW,)
    (entry,) = card.extra["lineage"]
    assert entry["added"] == NEW and len(entry["data_sha256"]) == 64 and entry["seconds"] > 0


@pytest.mark.parametrize("method", ["arliss", "rodos"])
def test_grown_checkpoint_scores_old_domains_as_before_and_learns_the_new_one(grown, method):
    runs, splits = grown
    old = load_checkpoint(runs[method]["src"], method)
    new = load_checkpoint(runs[method]["dst"], method)
    pairs = splits["alpha"]["test"][:8]
    before = pair_rewards(old, pairs, "alpha")
    after = pair_rewards(new, pairs, "alpha")
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1.3e-6, atol=1e-5)
    result = evaluate(new, {d: splits[d] for d in OLD + (NEW,)}, None)
    assert result["method"]["domains"][NEW]["oracle_accuracy"] >= 0.9, result["method"]["domains"][NEW]
    assert result["router"]["accuracy"] >= 0.9


@pytest.mark.parametrize("method", ["arliss", "rodos"])
def test_head_scheme_keeps_the_router_body_and_full_scheme_retrains_it(grown, method):
    from safetensors.torch import load_file
    runs, splits = grown
    run = runs[method]
    assert run["stats"]["runs"]["router"]["scheme"] == "head" and run["stats"]["runs"]["router"]["steps"] == 0
    if method == "arliss":
        before, head, full = (digests(p / "adapters" / "router") for p in (run["src"], run["dst"], run["full"]))
        assert head == before and full != before
    else:
        before, head, full = (load_file(p / "router" / "model.safetensors") for p in (run["src"], run["dst"], run["full"]))
        body = [k for k in before if not k.startswith("score.")]
        assert body and all(torch.equal(before[k], head[k]) for k in body)
        assert not all(torch.equal(before[k], full[k]) for k in body)
        assert head["score.weight"].shape[0] == len(OLD) + 1
    result = evaluate(load_checkpoint(run["full"], method), {d: splits[d] for d in OLD + (NEW,)}, None)
    assert result["router"]["accuracy"] >= 0.9


def router_weights_with_old_parts_identical(run: dict, method: str, key: str) -> tuple[dict, dict]:
    """The router's weights (RODOS: its body) in the source and in grown checkpoint ``run[key]``,
    after checking that the old reward parts of the two are byte-identical."""
    from safetensors.torch import load_file
    if method == "arliss":
        src = load_file(run["src"] / "adapters" / "router" / "adapter_model.safetensors")
        out = load_file(run[key] / "adapters" / "router" / "adapter_model.safetensors")
    else:
        src = {k: v for k, v in load_file(run["src"] / "router" / "model.safetensors").items() if not k.startswith("score.")}
        out = load_file(run[key] / "router" / "model.safetensors")
    parts = "adapters" if method == "arliss" else "rewards"
    assert all(digests(run["src"] / parts / d) == digests(run[key] / parts / d) for d in OLD), \
        "old reward parts must stay byte-identical"
    return src, out


@pytest.mark.parametrize("method", ["arliss", "rodos"])
def test_warm_scheme_fine_tunes_the_head_refit_on_a_sample_and_keeps_the_better(grown, method):
    from training.add_domain import WARM_FRACTION
    runs, splits = grown
    run = runs[method]
    stats = run["warm_stats"]["runs"]
    head, warm = stats["router_head"], stats["router"]
    assert head["scheme"] == "head" and warm["scheme"] == "warm" and warm["steps"] > 0
    new_split = split_pairs(load_pairs_file(run["data"], NEW))                 # add_domain splits the file itself
    unique = {d: len({p.prompt for p in (new_split if d == NEW else splits[d])["train"]}) for d in OLD + (NEW,)}
    assert warm["examples"] == {d: math.ceil(WARM_FRACTION * n) for d, n in unique.items()}
    assert sum(warm["examples"].values()) < sum(unique.values())
    start = next(e for e in warm["evals"] if e["step"] == 0)
    assert start["accuracy"] == pytest.approx(head["val_accuracy"], abs=1e-6)      # it starts from the head refit
    assert warm["chosen_step"] in (0, warm["steps"]) and warm["val_accuracy"] >= start["accuracy"]
    src, out = router_weights_with_old_parts_identical(run, method, "warm")
    moved = not all(torch.equal(v, out[k]) for k, v in src.items())
    assert moved == (warm["chosen_step"] > 0), warm["chosen_step"]
    result = evaluate(load_checkpoint(run["warm"], method), {d: splits[d] for d in OLD + (NEW,)}, None)
    assert result["router"]["accuracy"] >= 0.9


@pytest.mark.parametrize("method", ["arliss", "rodos"])
def test_top_scheme_trains_only_the_routers_top_layers_from_the_head_refit(grown, method):
    runs, splits = grown
    run = runs[method]
    top = run["top_stats"]["runs"]["router"]
    assert top["scheme"] == "top" and top["layers"] == 1 and top["steps"] > 0 and top["trained_parameters"] > 0
    start = next(e for e in top["evals"] if e["step"] == 0)
    assert start["accuracy"] == pytest.approx(top["head_val_accuracy"], abs=1e-6)   # it starts from the head refit
    assert top["chosen_step"] in (0, top["steps"]) and top["val_accuracy"] >= start["accuracy"]
    src, out = router_weights_with_old_parts_identical(run, method, "top")
    upper = [k for k in src if ".layer.1." in k]
    assert upper and len(upper) < len(src)
    assert all(torch.equal(v, out[k]) for k, v in src.items() if k not in upper), "the frozen layers moved"
    moved = not all(torch.equal(src[k], out[k]) for k in upper)
    assert moved == (top["chosen_step"] > 0), top["chosen_step"]
    result = evaluate(load_checkpoint(run["top"], method), {d: splits[d] for d in OLD + (NEW,)}, None)
    assert result["router"]["accuracy"] >= 0.9


def test_unknown_router_scheme_is_a_clear_error(grown, tmp_path):
    runs, _ = grown
    with pytest.raises(ValueError, match="router scheme"):
        add_domain(runs["arliss"]["src"], NEW, tmp_path / "x.jsonl", tmp_path / "out", router="fast")


def test_single_models_refuse_with_a_clear_message(tmp_path):
    CheckpointCard("baseline", OLD, 32, "base").save(tmp_path)
    with pytest.raises(ValueError, match="retraining"):
        add_domain(tmp_path, NEW, tmp_path / "x.jsonl", tmp_path / "out")


def test_bad_new_data_names_file_and_line(grown, tmp_path):
    runs, _ = grown
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "domain": "gamma", "prompt": "p", "chosen": "a"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing field 'rejected'"):
        add_domain(runs["arliss"]["src"], NEW, bad, tmp_path / "out", old_splits={})


@pytest.mark.parametrize("method", ["arliss", "rodos"])
def test_grown_checkpoint_exports_and_serves_n_plus_one_domains(grown, method, tmp_path):
    from export.to_onnx import export_bundle
    from runtime import RewardEngine
    runs, splits = grown
    bundle = export_bundle(runs[method]["dst"], tmp_path / method, optimize=False)
    engine = RewardEngine.from_bundle(bundle)
    assert engine.domains == OLD + (NEW,)
    pairs = splits[NEW]["test"][:6]
    served = engine.score([p.prompt for p in pairs], [p.chosen for p in pairs], [NEW] * len(pairs)).rewards
    chosen, _ = pair_rewards(load_checkpoint(runs[method]["dst"], method), pairs, NEW)
    assert abs(served - chosen).max() < 1e-4


@pytest.mark.parametrize("method", ["arliss", "rodos"])
def test_head_scheme_runs_the_router_over_the_new_domain_only_and_passes_its_store_on(grown, method, tmp_path):
    import shutil
    from safetensors.torch import load_file
    from training.add_domain import write_router_features
    from training.router_store import FILE
    runs, splits = grown
    run = runs[method]
    entries = lambda domains: {f"{d}/{s}" for d in domains for s in ("train", "validation")}
    assert set(load_file(run["src"] / FILE)) == entries(OLD)                 # training wrote the source's
    features = run["stats"]["runs"]["router"]["features"]
    assert set(features["reused"]) == entries(OLD) and set(features["computed"]) == entries((NEW,))
    for key in ("full", "warm", "top"):                                     # their router body moved (or may have)
        assert not (run[key] / FILE).exists(), key
    # The grown store equals the grown body's own features, computed from scratch.
    fresh = tmp_path / "fresh"
    shutil.copytree(run["dst"], fresh)
    (fresh / FILE).unlink()
    new_split = split_pairs(load_pairs_file(run["data"], NEW))
    stats = write_router_features(fresh, {**{d: splits[d] for d in OLD}, NEW: new_split})
    assert stats["prompts"] > 0
    stored, recomputed = load_file(run["dst"] / FILE), load_file(fresh / FILE)
    assert set(stored) == set(recomputed) == entries(OLD + (NEW,))
    for key in stored:
        torch.testing.assert_close(stored[key], recomputed[key], rtol=0, atol=1e-5)


def test_router_store_ignores_another_bodys_features_and_changed_prompts(tmp_path):
    from training.router_store import RouterFeatures
    context = {"body_sha256": "a" * 64, "tokenizer_sha256": "t", "router_max_length": 16, "pooling": "mean",
               "bf16": True}
    store = RouterFeatures(context)
    x = torch.randn(3, 4)
    store.get("alpha", "train", ["p1", "p2", "p3"], lambda: x)
    store.save(tmp_path, ["alpha"])
    same = RouterFeatures.load(tmp_path, context)
    calls = []
    got = same.get("alpha", "train", ["p1", "p2", "p3"], lambda: calls.append(1) or torch.zeros(3, 4))
    assert torch.equal(got, x) and not calls and same.report()["reused"] == {"alpha/train": 3}
    got = same.get("alpha", "train", ["p1", "p2", "p4"], lambda: torch.zeros(3, 4))     # other prompts: recomputed
    assert torch.equal(got, torch.zeros(3, 4)) and same.report()["computed"] == {"alpha/train": 3}
    other = RouterFeatures.load(tmp_path, {**context, "body_sha256": "b" * 64})
    assert "body_sha256" in other.report()["source"] and not other.entries
    with pytest.raises(ValueError, match=r"alpha/validation must be \[2, H\]"):
        other.get("alpha", "validation", ["p1", "p2"], lambda: torch.zeros(3, 4))


def test_router_features_command_names_missing_data(grown, capsys):
    from training.__main__ import main
    runs, _ = grown
    assert main(["router-features", "--from", str(runs["arliss"]["src"])]) == 2
    assert "not vendored" in capsys.readouterr().err


def test_routing_of_names_where_a_domains_prompts_go():
    from training.add_domain import routing_of
    confusion = [[8, 2, 0], [1, 9, 0], [0, 6, 4]]
    assert routing_of(confusion, ("a", "b", "c"), "c") == {"prompts": 10, "recall": 0.4, "most_confused_with": "b",
                                                           "count": 6}
    assert routing_of([[5, 0], [0, 5]], ("a", "b"), "b")["most_confused_with"] is None


def test_head_scheme_reports_where_the_new_domains_prompts_go(grown):
    runs, _ = grown
    new_split = split_pairs(load_pairs_file(runs["arliss"]["data"], NEW))
    for method in ("arliss", "rodos"):
        routed = runs[method]["stats"]["runs"]["router"]["new_domain"]
        assert routed["prompts"] == len({p.prompt for p in new_split["validation"]})
        assert 0.0 <= routed["recall"] <= 1.0 and routed["count"] <= routed["prompts"]
