"""Growing ARLISS and RODOS by one domain (training.add_domain), on tiny models and synthetic pairs."""
import hashlib
import json
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
        out[method] = {"src": src, "dst": root / f"{method}-grown", "before": before, "stats": stats,
                       "full": root / f"{method}-full", "full_stats": full, "data": data}
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
    parts = "adapters" if method == "arliss" else "rewards"
    assert all(digests(run["src"] / parts / d) == digests(run["full"] / parts / d) for d in OLD), \
        "old reward parts must stay byte-identical under the full scheme too"
    result = evaluate(load_checkpoint(run["full"], method), {d: splits[d] for d in OLD + (NEW,)}, None)
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
    from export.spec import ExportSpec
    from export.to_onnx import export_bundle
    from runtime import RewardEngine
    runs, splits = grown
    bundle = export_bundle(runs[method]["dst"], ExportSpec(method, optimize=False), tmp_path / method)
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
    assert not (run["full"] / FILE).exists()                                 # its router body moved
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
        router = runs[method]["stats"]["runs"]["router"]
        routed, confusion = router["new_domain"], router["probe"]["val_confusion"]
        row = confusion[-1]                                     # the new domain's validation prompts, by routed domain
        assert routed["prompts"] == sum(row) == len({p.prompt for p in new_split["validation"]})
        assert routed["recall"] == pytest.approx(row[-1] / sum(row))
        assert routed["count"] == max(row[:-1])
        assert routed["most_confused_with"] == (OLD[row.index(max(row[:-1]))] if max(row[:-1]) else None)
        correct = sum(confusion[i][i] for i in range(len(confusion)))   # the confusion is the refit head's
        assert router["val_accuracy"] == pytest.approx(correct / sum(map(sum, confusion)))


def test_routing_note_says_to_use_the_full_scheme_when_the_new_domain_is_routed_elsewhere():
    from training.add_domain import LOW_RECALL, routing_note
    low = {"prompts": 50, "recall": 0.7, "most_confused_with": "alpha", "count": 12}
    note = routing_note(low, "gamma")
    assert note.startswith("router: 70.0% of 'gamma' validation prompts (50) route to it; 12 go to 'alpha'")
    assert "use --router full" in note and "overlap 'alpha''s" in note
    high = {"prompts": 50, "recall": LOW_RECALL, "most_confused_with": "alpha", "count": 5}
    assert routing_note(high, "gamma") == "router: 90.0% of 'gamma' validation prompts (50) route to it; 5 go to 'alpha'"
    perfect = {"prompts": 50, "recall": 1.0, "most_confused_with": None, "count": 0}
    assert routing_note(perfect, "gamma") == "router: 100.0% of 'gamma' validation prompts (50) route to it"
    assert "not measured" in routing_note({"prompts": 0, "recall": 0.0, "most_confused_with": None, "count": 0}, "gamma")


def test_router_schemes_are_the_table_and_the_cli_offers_them(capsys):
    from training.__main__ import main
    from training.add_domain import ROUTER_SCHEMES, SCHEMES
    assert ROUTER_SCHEMES == tuple(SCHEMES) == ("head", "full")
    with pytest.raises(SystemExit):
        main(["add-domain", "--router", "warm"])
    err = capsys.readouterr().err
    assert "--router: invalid choice: 'warm'" in err and "head" in err and "full" in err
