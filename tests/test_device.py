"""``python -m training train --device cuda|cpu``: the choice is checked before any work, carried to
every model and batch of the run, and recorded; CUDA runs are marked and skipped without a GPU."""
from __future__ import annotations

import pytest
import torch

from tiny import synthetic_splits, tiny_base, tiny_config
from training import device
from training.__main__ import main
from training.methods import train

CUDA = torch.cuda.is_available()


@pytest.mark.skipif(CUDA, reason="checks the CPU-only answers")
def test_the_device_resolves_to_the_cpu_here_and_a_missing_gpu_is_named():
    assert device.resolve(None) == "cpu" and device.resolve("cpu") == "cpu"
    with pytest.raises(ValueError, match=r"--device cuda: PyTorch sees no CUDA GPU here"):
        device.resolve("cuda")
    with pytest.raises(ValueError, match=r"--device must be one of \('cuda', 'cpu'\), got 'tpu'"):
        device.resolve("tpu")


@pytest.mark.skipif(CUDA, reason="checks the CPU-only answers")
def test_the_command_line_refuses_a_missing_gpu_before_reading_data(capsys, tmp_path):
    assert main(["train", "--method", "baseline", "--quick", "--device", "cuda", "--out-dir", str(tmp_path)]) == 2
    assert "--device cuda: PyTorch sees no CUDA GPU" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_batches_and_models_follow_the_bound_device():
    from core.text import Encoded
    from training.loop import batch_of
    with device.use("cpu"):
        assert batch_of([Encoded([1, 2, 3], None)], 0)["input_ids"].device.type == "cpu"
    if CUDA:
        with device.use("cuda"):
            assert batch_of([Encoded([1, 2, 3], None)], 0)["input_ids"].device.type == "cuda"
            assert next(device.place(torch.nn.Linear(2, 2)).parameters()).device.type == "cuda"
    assert device.current() == "cpu"              # outside a run: the CPU


@pytest.mark.parametrize("where", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs a GPU"))])
def test_a_run_records_its_device_and_saves_a_checkpoint_the_cpu_reads(tmp_path, where):
    from models.checkpoint import load_checkpoint
    cfg = tiny_config(tmp_path, tiny_base(tmp_path), epochs=1, eval_points=1, device=where)
    stats = train("baseline", synthetic_splits(n_train=16, n_test=8), cfg)
    assert stats["device"] == where
    ckpt = load_checkpoint(cfg.method_dir("baseline"), "baseline")
    assert all(p.device.type == "cpu" for p in ckpt.models["reward"].parameters())
