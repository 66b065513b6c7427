"""core.scoring, the one route-and-score path, against a fake runner whose answers are known.

The fake graphs compute, per row, a number from its real tokens (sum of ids) and the domain it was
asked for, so a row scored by the wrong graph or adapter, or put back in the wrong place, shows.
"""
import numpy as np
import pytest

from core.scoring import BatchLimits, Layout, plan_batches, rewards, route_logits
from core.text import Encoded

DOMAINS = ("a", "b", "c")
IDS = {"a": 0, "b": 1, "c": 2, "router": 3}


def fake_run(calls: list):
    def run(role: str, feeds: dict) -> dict:
        mask = feeds["attention_mask"]
        assert feeds["input_ids"].dtype == np.int64 and mask.dtype == np.int64
        total = (feeds["input_ids"] * mask).sum(1).astype(np.float32)  # padding must not count
        calls.append((role, len(total), mask.shape[1]))
        logits = np.stack([total % 3 == d for d in range(3)], 1).astype(np.float32)  # route: sum mod 3
        if role == "switchable":
            ids = feeds["adapter_ids"]
            return {"rewards": total + 1000 * ids, "router_logits": logits}
        if role == "router":
            return {"logits": logits}
        offset = 0 if role == "reward" else 1000 * DOMAINS.index(role.split("/")[1])
        return {"logits": (total + offset)[:, None]}
    return run


def rows(n: int, seed: int = 0) -> list[Encoded]:
    rng = np.random.default_rng(seed)
    return [Encoded(list(rng.integers(1, 50, rng.integers(1, 40))), None) for _ in range(n)]


def sums(encoded) -> np.ndarray:
    return np.array([sum(e.input_ids) for e in encoded], np.float32)


@pytest.mark.parametrize("layout", [
    Layout(DOMAINS, frozenset({"switchable"}), IDS),
    Layout(DOMAINS, frozenset({"router", "reward/a", "reward/b", "reward/c"})),
])
def test_routed_rows_get_their_domain_in_input_order(layout):
    encoded, calls = rows(57), []
    limits = BatchLimits(max_tokens=200, max_rows=8)
    domain_ids = np.arange(57) % 3
    got = rewards(fake_run(calls), layout, encoded, 0, domain_ids, limits)
    np.testing.assert_array_equal(got, sums(encoded) + 1000 * domain_ids)
    assert all(n <= 8 and n * width <= 200 or n == 1 for _, n, width in calls)
    logits = route_logits(fake_run([]), layout, encoded, 0, limits)
    np.testing.assert_array_equal(logits.argmax(-1), sums(encoded) % 3)


def test_unrouted_layout_scores_without_domain_and_refuses_to_route():
    layout, encoded = Layout(DOMAINS, frozenset({"reward"})), rows(10)
    np.testing.assert_array_equal(rewards(fake_run([]), layout, encoded, 0, None), sums(encoded))
    with pytest.raises(ValueError, match="no router"):
        route_logits(fake_run([]), layout, encoded, 0)


def test_bad_layouts_and_missing_domains_are_named():
    with pytest.raises(ValueError, match="graph roles"):
        Layout(DOMAINS, frozenset({"router", "reward/a"}))
    with pytest.raises(ValueError, match="adapter_ids"):
        Layout(DOMAINS, frozenset({"switchable"}), {"a": 0})
    layout = Layout(DOMAINS, frozenset({"switchable"}), IDS)
    with pytest.raises(ValueError, match="domain_ids for 2 of 3 rows"):
        rewards(fake_run([]), layout, rows(3), 0, [0, 1])
    assert rewards(fake_run([]), layout, [], 0, []).shape == (0,)
    assert route_logits(fake_run([]), layout, [], 0).shape == (0, 3)


def test_plan_batches_respects_limits():
    lengths = [5, 30, 7, 7, 32, 1, 12, 30, 9]
    batches = plan_batches(lengths, BatchLimits(max_tokens=64, max_rows=3))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 3 and len(b) * max(lengths[i] for i in b) <= 64 for b in batches)
    assert plan_batches([100], BatchLimits(max_tokens=10)) == [[0]]  # one long row still runs
