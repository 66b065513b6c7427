"""lab/add_domain_experiment.py: the results row and the reuse check, on fake evaluations (no training)."""
from pathlib import Path

import pytest

import lab.add_domain_experiment as lodo
from core.data import DOMAINS
from models.checkpoint import CheckpointCard

HELD = "harmlessness"


def evaluation(accuracy: dict, oracle: dict, router: float, held_router: float, n: int = 20) -> dict:
    """training.evaluate's shape, ``n`` pairs per domain (one prompt each), ``accuracy`` as the share correct."""
    domains = {}
    for d in DOMAINS:
        k = round(accuracy[d] * n)
        domains[d] = {"pairs": n, "accuracy": k / n, "oracle_accuracy": oracle[d], "correct": [1] * k + [0] * (n - k),
                      "groups": list(range(n)), "router_accuracy": held_router if d == HELD else 1.0}
    return {"method": {"domains": domains}, "router": {"accuracy": router}}


def parts(root: Path, tag: str) -> Path:
    for d in DOMAINS:
        (root / "adapters" / d).mkdir(parents=True)
        (root / "adapters" / d / "w.bin").write_bytes(b"same" if d != HELD else tag.encode())
    return root


def test_result_row_compares_the_grown_checkpoint_with_the_five_domain_one(tmp_path):
    five = parts(tmp_path / "five", "five")
    grown_dir = parts(tmp_path / "grown", "grown")
    full = evaluation({d: 0.6 for d in DOMAINS}, {d: 0.65 for d in DOMAINS}, 0.95, 0.85)
    grown = evaluation({**{d: 0.6 for d in DOMAINS}, HELD: 0.5, "math": 0.65},
                       {**{d: 0.65 for d in DOMAINS}, "math": 0.66}, 0.93, 0.75)
    stats = {"add_seconds": 300.0, "train_seconds": 290.0,
             "runs": {"router": {"scheme": "full", "steps": 5, "losses": [1.0], "probe": {}}}}
    four_router = {"evals": [{"step": 0, "accuracy": 0.97}, {"step": 9, "accuracy": 0.99}]}
    store = {"seconds": 20.0, "prompts": 3730}
    row = lodo.result_row("arliss", HELD, "full", grown, full, stats, 1200.0, four_router, grown_dir, five, store)
    assert row["added_accuracy"] == 0.5 and row["full_accuracy"] == 0.6
    assert row["added_minus_full"]["difference"] == pytest.approx(-0.1)
    assert row["old_max_abs_change"] == pytest.approx(1.0)                  # math's oracle moved 1 point
    assert row["old_routed_accuracy_change"]["math"] == pytest.approx(5.0) and HELD not in row["old_routed_accuracy_change"]
    assert row["old_weights_identical"] is True                            # the held-out part differs, the old ones not
    assert (row["added_router_accuracy"], row["full_added_router_accuracy"]) == (0.75, 0.85)
    assert row["add_over_retrain"] == pytest.approx(0.25) and row["four_domain_router_val_accuracy"] == 0.99
    assert "losses" not in row["router_run"] and "probe" not in row["router_run"]
    assert row["four_domain_router_features"] == store
    (grown_dir / "adapters" / "math" / "w.bin").write_bytes(b"changed")
    assert lodo.result_row("arliss", HELD, "full", grown, full, stats, 1200.0, four_router, grown_dir,
                       five, None)["old_weights_identical"] is False


def test_reuse_refuses_a_four_domain_checkpoint_of_another_source(tmp_path):
    four = tmp_path / "four"
    four.mkdir()
    run = {"evals": [], "seconds": 1.0}
    CheckpointCard("arliss", tuple(d for d in DOMAINS if d != HELD), 32, "base", extra={
        "train": {"derived_from": "checkpoints/arliss", "held_out": HELD, "runs": {"router": run}}}).save(four)
    assert lodo.reused_four_domain_checkpoint(Path("checkpoints/arliss"), four, HELD) == run
    with pytest.raises(ValueError, match="without --reuse-four"):
        lodo.reused_four_domain_checkpoint(Path("checkpoints/arliss"), four, "math")
    with pytest.raises(ValueError, match="checkpoints/rodos"):
        lodo.reused_four_domain_checkpoint(Path("checkpoints/rodos"), four, HELD)
