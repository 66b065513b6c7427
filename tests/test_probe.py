"""Linear-probe head starts (training.probe), layer-mean pooling and single-segment encoding."""
import pytest
import torch

from models.base import default_base_model, load_tokenizer, pool_mean, pool_output
from core.text import encode_pairs, single_segment
from training.probe import FeatureCache, fit_pairwise_head, fit_router_head


def test_pairwise_probe_recovers_the_preference_direction():
    torch.manual_seed(0)
    truth = torch.randn(16)
    x = torch.randn(600, 16)
    flip = torch.rand(600) < torch.sigmoid(-(x @ truth))   # Bradley-Terry labels: flip some pairs
    diff = torch.where(flip.unsqueeze(1), -x, x)
    w, info = fit_pairwise_head(diff[:400], diff[400:])
    assert torch.nn.functional.cosine_similarity(w, truth, dim=0) > 0.9
    assert info["chosen_lambda"] in [t["lambda"] for t in info["trials"]]
    best = max(info["trials"], key=lambda t: t["val_accuracy"])
    assert best["val_accuracy"] > 0.7


def test_pairwise_probe_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\[N, H\]"):
        fit_pairwise_head(torch.zeros(4, 3), torch.zeros(4, 5))


def test_router_probe_separates_domains():
    torch.manual_seed(0)
    centers = torch.randn(3, 8) * 3
    y = torch.arange(300) % 3
    x = centers[y] + torch.randn(300, 8)
    weight, bias, info = fit_router_head(x[:200], y[:200], x[200:], y[200:], 3)
    assert weight.shape == (3, 8) and bias.shape == (3,)
    accuracy = float(((x[200:] @ weight.t() + bias).argmax(-1) == y[200:]).float().mean())
    assert accuracy > 0.95
    assert info["val_examples"] == 100
    assert info["val_accuracy"] == pytest.approx(accuracy, abs=1e-6)     # the returned head's, not another trial's
    assert info["val_accuracy"] == max(t["val_accuracy"] for t in info["trials"])
    pred = (x[200:] @ weight.t() + bias).argmax(-1)
    confusion = info["val_confusion"]
    assert [sum(row) for row in confusion] == [int((y[200:] == c).sum()) for c in range(3)]
    assert all(confusion[t][p] == int(((y[200:] == t) & (pred == p)).sum()) for t in range(3) for p in range(3))


def test_feature_cache_computes_once(tmp_path):
    calls = []
    cache = FeatureCache(tmp_path)

    def compute():
        calls.append(1)
        return torch.arange(6.0).reshape(2, 3)

    first = cache.get({"a": 1}, compute)
    again = cache.get({"a": 1}, compute)
    other = cache.get({"a": 2}, compute)
    assert len(calls) == 2 and torch.equal(first, again) and torch.equal(first, other)


def test_layer_mean_pooling_averages_layers_then_real_tokens():
    class Out:
        hidden_states = tuple(torch.randn(2, 4, 3) for _ in range(3))   # embeddings + 2 layers
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    got = pool_output(Out, mask, "layer_mean")
    want = (pool_mean(Out.hidden_states[1], mask) + pool_mean(Out.hidden_states[2], mask)) / 2
    torch.testing.assert_close(got, want)


def test_single_segment_drops_token_types_and_survives_save(tmp_path):
    tok = single_segment(load_tokenizer(default_base_model()))
    (enc,) = encode_pairs(tok, ["a prompt"], ["a response"], 32)
    assert enc.token_type_ids is None
    tok.save_pretrained(tmp_path)
    (again,) = encode_pairs(load_tokenizer(tmp_path), ["a prompt"], ["a response"], 32)
    assert again == enc
    (paired,) = encode_pairs(load_tokenizer(default_base_model()), ["a prompt"], ["a response"], 32)
    assert paired.token_type_ids is not None and paired.input_ids == enc.input_ids


def test_pairwise_probe_scores_lambdas_by_the_domain_mean():
    # 90 validation rows of domain "a" all right and 10 of "b" all wrong under any w along +x:
    # share of rows 0.9, domain mean 0.5.
    train = torch.tensor([[1.0, 0.0]] * 50)
    val = torch.tensor([[1.0, 0.0]] * 90 + [[-1.0, 0.0]] * 10)
    _, by_rows = fit_pairwise_head(train, val)
    _, by_domain = fit_pairwise_head(train, val, val_domains=["a"] * 90 + ["b"] * 10)
    assert by_rows["trials"][0]["val_accuracy"] == pytest.approx(0.9)
    assert by_domain["trials"][0]["val_accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="3 domain names for 100 validation rows"):
        fit_pairwise_head(train, val, val_domains=["a"] * 3)


def test_pairwise_validation_reports_each_domain_and_their_mean():
    from core.text import Encoded
    from training.loop import pairwise_validation

    # the score is the row's first token id: chosen rows 2, rejected rows 1 (right) or 3 (wrong)
    rows = lambda ids: [Encoded([i], None) for i in ids]  # noqa: E731
    chosen, rejected = rows([2] * 6), rows([1, 1, 1, 1, 3, 3])
    domains = ["a", "a", "a", "a", "b", "b"]
    score = lambda batch: (batch["input_ids"][:, 0].float(), None)  # noqa: E731
    out = pairwise_validation(score, chosen, rejected, 0, domains)()
    assert out["domains"] == {"a": 1.0, "b": 0.0}
    assert out["accuracy"] == pytest.approx(0.5) and out["pair_accuracy"] == pytest.approx(4 / 6)
    assert pairwise_validation(score, chosen, rejected, 0)()["accuracy"] == pytest.approx(4 / 6)


def _domain_conditional_pairs(n: int, seed: int):
    """Pairs whose preferred direction flips with a 'domain' feature: no linear score can fit both."""
    g = torch.Generator().manual_seed(seed)
    domain = (torch.rand(n, generator=g) < 0.5).float()
    def feats():
        x = torch.randn(n, 8, generator=g)
        x[:, 0] = domain * 4 - 2                       # the domain, shared by both responses of a pair
        return x
    a, b = feats(), feats()
    sign = 1 - 2 * domain                              # domain 0 prefers a large x1, domain 1 a small one
    a_wins = (a[:, 1] - b[:, 1]) * sign > 0
    chosen = torch.where(a_wins.unsqueeze(1), a, b)
    rejected = torch.where(a_wins.unsqueeze(1), b, a)
    return chosen, rejected, ["d0" if d == 0 else "d1" for d in domain.tolist()]


def test_two_layer_probe_fits_a_domain_conditional_preference_a_linear_one_cannot():
    from models.reward import score_head
    from training.probe import fit_pairwise_mlp
    tc, tr, _ = _domain_conditional_pairs(2000, 0)
    vc, vr, names = _domain_conditional_pairs(400, 1)
    w, _ = fit_pairwise_head(tc - tr, vc - vr)
    linear = float(((vc - vr) @ w > 0).float().mean())
    state, info = fit_pairwise_mlp(tc, tr, vc, vr, hidden=16, val_domains=names, epochs=30)
    head = score_head(8, 1, 16)
    head.load_state_dict(state)                        # standardisation folded in: raw features in
    with torch.no_grad():
        margin = (head(vc) - head(vr)).squeeze(-1)
    by_domain = [float((margin[[i for i, n in enumerate(names) if n == d]] > 0).float().mean()) for d in ("d0", "d1")]
    assert linear < 0.65
    assert min(by_domain) > 0.85
    chosen = next(t for t in info["trials"] if t["epoch"] == info["chosen_epoch"])
    assert abs(chosen["val_accuracy"] - sum(by_domain) / 2) < 1e-6
    assert chosen["val_accuracy"] == max(t["val_accuracy"] for t in info["trials"])


def test_two_layer_probe_rejects_unpaired_features():
    from training.probe import fit_pairwise_mlp
    with pytest.raises(ValueError, match="train features"):
        fit_pairwise_mlp(torch.zeros(4, 3), torch.zeros(5, 3), torch.zeros(2, 3), torch.zeros(2, 3), hidden=4)
