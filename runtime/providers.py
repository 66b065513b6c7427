"""Choosing where a bundle runs: ONNX Runtime execution providers, or the Torch backend's device.

Default order (fastest first): TensorRT, then CUDA, then CPU, among what this ONNX Runtime build
offers. A provider asked for by name that is not offered is a :class:`ProviderError`, unless
``allow_fallback`` is set: then the fallback is logged (a warning) and the rest of the list runs.
Which provider runs is logged once per process and choice, not on every engine.
"""
from __future__ import annotations

import logging
import threading

from core.errors import ProviderError

log = logging.getLogger("runtime")

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
ALIASES = {"tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider",
           "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
TORCH_DEVICES = ("cuda", "cpu")

_logged: set = set()
_logged_lock = threading.Lock()


def log_once(message: str) -> None:
    with _logged_lock:
        if message in _logged:
            return
        _logged.add(message)
    log.info(message)


def _names(requested, known_hint: str) -> list[str]:
    if isinstance(requested, str):
        requested = [requested]
    if not isinstance(requested, (list, tuple)) or not requested or not all(isinstance(p, str) for p in requested):
        raise TypeError(f"providers must be a non-empty list of str (e.g. {known_hint}), got {requested!r}")
    return list(requested)


def select_ort_providers(requested, available: list[str], allow_fallback: bool = False) -> list[str]:
    """ONNX Runtime provider names to use, best first; ``available`` from ``ort.get_available_providers()``."""
    if requested is None:
        chosen = [p for p in PREFERENCE if p in available] or ["CPUExecutionProvider"]
        return chosen
    chosen = []
    for name in _names(requested, "['cuda', 'cpu'] or ['CUDAExecutionProvider']"):
        full = ALIASES.get(name.lower(), name)
        if full in available:
            chosen.append(full)
        elif allow_fallback:
            log.warning("execution provider '%s' is not available (available: %s); falling back", name, available)
        else:
            raise ProviderError(f"execution provider '{name}' is not available (available: {available}); "
                                f"pass allow_fallback=True to fall back to the next one")
    if not chosen:  # only reachable with allow_fallback
        log.warning("none of the requested providers %s is available; falling back to CPUExecutionProvider", requested)
        chosen = ["CPUExecutionProvider"]
    return chosen


def select_torch_device(requested, cuda_available: bool, allow_fallback: bool = False) -> str:
    """'cuda' or 'cpu' for the Torch backend; ``providers`` may name ORT providers or devices."""
    if requested is None:
        return "cuda" if cuda_available else "cpu"
    for name in _names(requested, "['cuda'] or ['cpu']"):
        full = ALIASES.get(name.lower(), name)
        device = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda",
                  "CPUExecutionProvider": "cpu"}.get(full)
        if device is None:
            raise ValueError(f"providers names '{name}', which the torch backend does not know; use one of {TORCH_DEVICES}")
        if device == "cpu" or cuda_available:
            return device
        if not allow_fallback:
            raise ProviderError(f"execution provider '{name}' is not available (no CUDA device for torch); "
                                f"pass allow_fallback=True to fall back to the next one")
        log.warning("execution provider '%s' is not available (no CUDA device for torch); falling back", name)
    log.warning("none of the requested providers %s is available; falling back to cpu", requested)
    return "cpu"
