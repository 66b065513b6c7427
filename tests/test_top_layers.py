"""training.top_layers: the top layers run from cached states give the model's own pooled features."""
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from models.base import pool_output, run_backbone
from core.text import encode_prompts
from models.base import collate
from tiny import tiny_base
from training.top_layers import TopLayers, classifier_check, classifier_step

PROMPTS = ["a short one", "a somewhat longer prompt about ovens and recipes", "x",
           "arithmetic sum of two numbers please, and be quick about it"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tiny_base(tmp_path_factory.mktemp("top"))
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    return model, tok, encode_prompts(tok, PROMPTS, 16)


@pytest.mark.parametrize("pooling", ["layer_mean", "mean"])
@pytest.mark.parametrize("k", [1, 2])
def test_cached_top_layers_reproduce_the_pooled_features(setup, pooling, k):
    model, tok, examples = setup
    batch = collate(examples, tok.pad_token_id)
    with torch.no_grad():
        want = pool_output(run_backbone(model, pooling, **batch), batch["attention_mask"], pooling)
    top = TopLayers(model, pooling, k)
    cache = top.cache(examples, [0, 1, 0, 1], tok.pad_token_id, batch_size=3, bf16=False)
    torch.testing.assert_close(cache.pooled, want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        got = top.pooled(cache, [3, 1, 2])        # another batch, another padding width
    torch.testing.assert_close(got, want[[3, 1, 2]], rtol=1e-5, atol=1e-5)


def test_only_the_top_layers_get_gradients_and_the_check_scores_as_the_step(setup):
    model, tok, examples = setup
    top = TopLayers(model, "layer_mean", 1)
    named = list(model.named_parameters())
    mine = top.parameters_of(named)
    assert mine and all(".1." in n for n, _ in mine) and len(mine) < len(named)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    cache = top.cache(examples, [0, 1, 0, 1], tok.pad_token_id, bf16=False)
    model.zero_grad()
    loss = classifier_step(top, head, cache)([0, 1, 2, 3])
    loss.backward()
    assert all(p.grad is not None for _, p in mine)
    assert all(p.grad is None for n, p in named if (n, p) not in mine)
    with torch.no_grad():
        result = classifier_check(top, head, cache)()
    assert set(result) == {"loss", "accuracy", "examples"} and result["examples"] == 4
    assert result["loss"] == pytest.approx(float(loss), rel=1e-4)
    model.zero_grad()


def test_pooling_without_cacheable_layers_is_refused(setup):
    model, _, _ = setup
    with pytest.raises(ValueError, match="pooling"):
        TopLayers(model, "last", 1)
    with pytest.raises(ValueError, match="top layers"):
        TopLayers(model, "mean", 3)
