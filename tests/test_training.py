"""Each method trains, learns a separable preference set, and round-trips through save/load."""
import math

import numpy as np
import pytest
import torch

from core.manifest import METHODS
from models.checkpoint import load_checkpoint
from models.more import moe_blocks
from core.text import encode_pairs
from models.base import collate
from tiny import TINY_DOMAINS, tiny_base, tiny_config
from training.evaluate import evaluate, pair_rewards
from training.methods import train



@pytest.mark.parametrize("method", METHODS)
def test_method_learns_separable_preferences(tiny_checkpoints, tiny_splits, method):
    ckpt = load_checkpoint(tiny_checkpoints[method], method)
    res = evaluate(ckpt, tiny_splits)
    for domain, entry in res["method"]["domains"].items():
        assert entry["accuracy"] >= 0.9, (method, domain, entry)
        if method in ("rodos", "arliss"):
            assert entry["oracle_accuracy"] >= 0.9, (method, domain, entry)
    stats = ckpt.card.extra["train"]["runs"]
    for name, run in stats.items():
        # heads start as linear probes, already near-perfect on these separable pairs: the training
        # loss must stay far below ln 2 (a flat loss fails), and model choice never loses to the start
        assert run["loss_last"] < 0.5 * math.log(2), (method, name, run["loss_first"], run["loss_last"])
        if run["evals"]:
            chosen = next(e for e in run["evals"] if e["step"] == run["chosen_step"])
            assert chosen["accuracy"] >= run["evals"][0]["accuracy"], (method, name, run["evals"])
    if res["router"]:
        assert res["router"]["accuracy"] >= 0.6
        assert sum(map(sum, res["router"]["confusion"])) == sum(e["pairs"] for e in res["method"]["domains"].values())


@pytest.mark.parametrize("method", METHODS)
def test_save_and_reload_give_identical_rewards(tiny_checkpoints, tiny_splits, method):
    pairs = tiny_splits["beta"]["test"][:5]
    a = pair_rewards(load_checkpoint(tiny_checkpoints[method]), pairs, "beta")
    b = pair_rewards(load_checkpoint(tiny_checkpoints[method]), pairs, "beta")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_wrong_method_is_a_clear_error(tiny_checkpoints):
    with pytest.raises(ValueError, match="holds method 'baseline', not 'arliss'"):
        load_checkpoint(tiny_checkpoints["baseline"], "arliss")
    with pytest.raises(FileNotFoundError, match="python -m training train"):
        load_checkpoint(tiny_checkpoints["baseline"] / "nope")


def _chosen_batch(ckpt, pairs):
    """Padded (prompt, chosen) inputs for ``pairs`` at the tiny models' max length."""
    enc = encode_pairs(ckpt.tokenizer, [p.prompt for p in pairs], [p.chosen for p in pairs], 32)
    return collate(enc, ckpt.tokenizer.pad_token_id)


def test_more_routes_exactly_two_experts_per_token(tiny_checkpoints, tiny_splits):
    ckpt = load_checkpoint(tiny_checkpoints["more"])
    model = ckpt.models["reward"]
    pairs = tiny_splits["alpha"]["test"][:4]
    batch = _chosen_batch(ckpt, pairs)
    with torch.inference_mode():
        model(**batch)
    blocks = moe_blocks(model)
    assert blocks and all(b.num_experts == len(TINY_DOMAINS) for b in blocks)
    for b in blocks:
        tokens = int(batch["attention_mask"].sum())  # padding is not routed
        assert b.last_expert_ids.shape == (tokens, 2)
        assert (b.last_expert_ids[:, 0] != b.last_expert_ids[:, 1]).all()
        torch.testing.assert_close(b.last_weights.sum(-1), torch.ones(tokens))
    # reloading through the Auto classes (no trust_remote_code) gives the MoRE class back
    from transformers import AutoModelForSequenceClassification
    again = AutoModelForSequenceClassification.from_pretrained(str(tiny_checkpoints["more"]))
    assert type(again).__name__ == "RewardModel" and again.config.moe_layers == model.config.moe_layers


def test_more_export_path_equals_the_eager_model(tiny_checkpoints, tiny_splits, monkeypatch):
    """The graph's MoE (gathered per expert) is the eager top-2 function, padding included."""
    import models.more
    ckpt = load_checkpoint(tiny_checkpoints["more"])
    model = ckpt.models["reward"]
    pairs = tiny_splits["gamma"]["test"][:3]
    batch = _chosen_batch(ckpt, pairs)
    batch["attention_mask"][1, 5:] = 0              # a padded row: the traced path must skip its padding
    batch["input_ids"][1, 5:] = ckpt.tokenizer.pad_token_id
    blocks = moe_blocks(model)
    outputs = []                                    # each MoE block's [B, S, H] output on the traced path
    with torch.inference_mode():
        eager = model(**batch).logits
        monkeypatch.setattr(models.more, "exporting", lambda: True)
        hooks = [b.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for b in blocks]
        traced_path = model(**batch).logits
        for hook in hooks:
            hook.remove()
    torch.testing.assert_close(traced_path, eager, atol=1e-5, rtol=1e-5)
    padding = ~batch["attention_mask"].bool()
    assert outputs and padding.any()
    for out in outputs:   # padding goes through no expert (0, as in eager)
        assert bool((out[padding] == 0).all()), out[padding].abs().max()


@pytest.mark.parametrize("method", METHODS)
def test_decoder_base_model_trains(tmp_path_factory, tiny_splits, method):
    """Not BERT-only: a tiny random Llama (last-token pooling, `mlp` experts) trains every method."""
    root = tmp_path_factory.mktemp(f"llama-{method}")
    cfg = tiny_config(root, tiny_base(root, "llama"), epochs=1, train_pairs_per_domain=24,
                      router_examples_per_domain=24)
    stats = train(method, tiny_splits, cfg)
    for run in stats["runs"].values():
        assert run["loss_last"] < run["loss_first"], (method, stats["runs"])
    ckpt = load_checkpoint(cfg.method_dir(method), method)
    c, r = pair_rewards(ckpt, tiny_splits["alpha"]["test"][:4], "alpha")
    assert c.shape == (4,) and np.isfinite(c).all() and np.isfinite(r).all()


def test_reproduce_resumes_a_method_whose_settings_did_not_change(tmp_path):
    """A router setting retrains the routed methods only; a learning rate retrains everything."""
    import json

    from models.checkpoint import CARD
    from training.config import TrainConfig
    from lab.reproduce import trained_with

    old = TrainConfig(out_dir=str(tmp_path))
    for method in ("baseline", "more", "rodos", "arliss"):
        (tmp_path / method).mkdir()
        (tmp_path / method / CARD).write_text(json.dumps({"train_config": old.to_dict()}))
    router = old.with_(router_max_length=old.router_max_length * 2)
    assert [m for m in ("baseline", "more", "rodos", "arliss") if trained_with(router, m)] == ["baseline", "more"]
    lora = old.with_(lora_r=old.lora_r * 2)
    assert [m for m in ("baseline", "more", "rodos", "arliss") if trained_with(lora, m)] == ["baseline", "more", "rodos"]
    assert not any(trained_with(old.with_(lr=old.lr / 2), m) for m in ("baseline", "more", "rodos", "arliss"))
    assert all(trained_with(old, m) for m in ("baseline", "more", "rodos", "arliss"))


def test_router_batches_mix_classes_whose_lengths_differ():
    """Length-sorted windows put one class per batch when length tells the class; window 1 does not."""
    from training.loop import length_batches

    labels = [i % 4 for i in range(640)]
    lengths = [10 * label + (i % 3) for i, label in enumerate(labels)]   # class 3 is always the longest

    def purity(batches):
        return sum(max(sum(labels[i] == c for i in b) for c in range(4)) / len(b) for b in batches) / len(batches)

    sorted_windows, plain = length_batches(lengths, 16, 0), length_batches(lengths, 16, 0, bucket_window=1)
    for batches in (sorted_windows, plain):
        assert sorted(i for b in batches for i in b) == list(range(640))
    assert purity(sorted_windows) > 0.9 and purity(plain) < 0.6


def test_bf16_autocast_only_where_the_cpu_multiplies_bf16(capsys):
    """bf16 is emulated (tens of times slower than fp32) without AVX512-BF16 or AMX: train in fp32 there."""
    from contextlib import nullcontext

    from training.loop import autocast, native_bf16
    ctx = autocast(True)
    if native_bf16():
        assert isinstance(ctx, torch.autocast)
    else:
        assert isinstance(ctx, nullcontext)
    assert isinstance(autocast(False), nullcontext)
