"""A checkpoint's PyTorch models behind the bundle-graph call ``run(role, feeds) -> {output: float32 array}``.

The roles and outputs are those of the bundle's ONNX graphs (core.manifest, core.scoring), so
the runtime's Torch backend serves a checkpoint and training.evaluate scores the test split through
the same route-and-score path (core.scoring) as ONNX Runtime:

* baseline, MoRE: ``reward``; RODOS: ``router`` and ``reward/<domain>`` (each an HF classifier,
  ``{"logits": ...}``);
* ARLISS: ``switchable`` on :class:`models.multi_adapter.SwitchableArliss` (every adapter stacked,
  one per row: Triton kernels on CUDA, their PyTorch references on the CPU).
"""
from __future__ import annotations

import threading

import numpy as np
import torch

from models.checkpoint import Checkpoint
from models.multi_adapter import SwitchableArliss
from core.scoring import Layout


class CheckpointRunner:
    """``runner(role, feeds)`` for a loaded checkpoint on ``device``; ``runner.layout`` names its roles."""

    def __init__(self, ckpt: Checkpoint, device: str = "cpu"):
        self.device = device
        self.models: dict[str, torch.nn.Module] = {}
        self.arliss = None
        if ckpt.method == "arliss":
            self.arliss = SwitchableArliss(ckpt.models["arliss"]).to(device)
            ids = ckpt.models["arliss"].config.adapter_ids
            self.layout = Layout(tuple(ckpt.domains), frozenset({"switchable"}), ids)
            # SwitchableArliss keeps adapter_ids on its layers for the length of a forward: one at a time
            self._lock = threading.Lock()
        else:
            self.models = {role: m.to(device).eval() for role, m in ckpt.models.items()}
            self.layout = Layout(tuple(ckpt.domains), frozenset(self.models))

    def __call__(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in feeds.items()}
        with torch.inference_mode():
            if self.arliss is None:
                return {"logits": self.models[role](**batch).logits.float().cpu().numpy()}
            if role != "switchable":
                raise KeyError(f"an ARLISS checkpoint answers role 'switchable', not {role!r}")
            with self._lock:
                rewards, router_logits = self.arliss(**batch)
            return {"rewards": rewards.float().cpu().numpy(), "router_logits": router_logits.float().cpu().numpy()}
