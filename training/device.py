"""Where training runs: ``python -m training train --device cuda|cpu`` (default: CUDA when available).

A run binds one device for its length (:func:`use`); what builds models moves them there
(:func:`place`), and what turns token ids into batches sends them there (:func:`to_device`). Losses
are computed where the model is; what leaves the loop (validation figures, probe features, the
router feature store) comes back to the CPU, where the probes fit and checkpoints are written.
Outside a run, everything stays on the CPU, as export and the Torch backend expect.
"""
from __future__ import annotations

import contextlib
import contextvars

import torch

DEVICES = ("cuda", "cpu")
_CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("routerm_training_device", default="cpu")


def resolve(asked: str | None) -> str:
    """``asked`` checked against this machine; None: ``cuda`` when PyTorch sees a GPU, else ``cpu``."""
    if asked is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if asked not in DEVICES:
        raise ValueError(f"--device must be one of {DEVICES}, got {asked!r}")
    if asked == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False; "
                         f"this torch is {torch.__version__}); train with --device cpu or install a CUDA build of torch")
    return asked


@contextlib.contextmanager
def use(device: str):
    """Bind ``device`` (a :func:`resolve` result) for the training run inside the block."""
    token = _CURRENT.set(device)
    try:
        yield device
    finally:
        _CURRENT.reset(token)


def current() -> str:
    return _CURRENT.get()


def place(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` on the run's device."""
    return module.to(current())


def to_device(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A collated batch on the run's device (a no-op on the CPU)."""
    device = current()
    return batch if device == "cpu" else {k: v.to(device, non_blocking=True) for k, v in batch.items()}
