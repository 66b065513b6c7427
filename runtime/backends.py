"""Two ways to run a bundle's graphs, behind one call: ``backend.run(role, feeds) -> {output: array}``.

``feeds`` are the graph's inputs as int64 numpy arrays (``input_ids``, ``attention_mask`` [B, S],
``token_type_ids`` [B, S] where the graph takes it, ``adapter_ids`` [B] for ``switchable``); the
result holds the outputs the manifest names for the graph's kind (core.manifest.KINDS), float32.

* :class:`OrtBackend` runs the ONNX graphs, one ``InferenceSession`` per graph made once (ORT
  sessions are safe to ``run`` from many threads at once).
* :class:`TorchBackend` runs the training checkpoint the bundle carries (``torch_weights``, opt-in
  at export) with models.runner.CheckpointRunner: Triton kernels on CUDA (MoRE gating, multi-LoRA), their PyTorch
  references on the CPU. It loads safetensors only (never pickle) and fp32 bundles only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import BundleError
from core.manifest import Manifest, check_graph_data
from .providers import log_once, select_ort_providers, select_torch_device


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, manifest: Manifest, providers=None, threads: int | None = None, allow_fallback: bool = False):
        import onnxruntime as ort

        self.providers = select_ort_providers(providers, ort.get_available_providers(), allow_fallback)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.sessions = {}
        self.outputs = {}
        for role, graph in manifest.graphs.items():
            path = manifest.graph_path(role)
            check_graph_data(manifest, role)
            try:
                session = ort.InferenceSession(str(path), options, providers=self.providers)
            except Exception as exc:  # ORT raises its own Fail/InvalidGraph types; name the file
                raise BundleError(f"bundle file '{graph.file}' could not be loaded by ONNX Runtime: {exc}") from exc
            names = [i.name for i in session.get_inputs()]
            if sorted(names) != sorted(graph.inputs):
                raise BundleError(f"bundle file '{graph.file}' takes inputs {names}, the manifest says {list(graph.inputs)}")
            self.sessions[role] = session
            self.outputs[role] = list(graph.outputs)
        first = next(iter(self.sessions.values()))
        log_once(f"runtime: onnxruntime runs on {first.get_providers()[0]} (asked {self.providers})")

    def run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.sessions[role]
        wanted = {i.name for i in session.get_inputs()}
        values = session.run(self.outputs[role], {k: v for k, v in feeds.items() if k in wanted})
        return {name: np.asarray(v, dtype=np.float32) for name, v in zip(self.outputs[role], values)}


def checkpoint_path(manifest: Manifest, override: str | Path | None = None) -> Path:
    """The Torch backend's checkpoint: ``override`` if given, else the bundle's ``torch_weights`` copy."""
    where = manifest.path / "manifest.json"
    if override is not None:
        path = Path(override)
    elif manifest.torch_weights is None:
        raise BundleError(f"{where}: this bundle carries no Torch weights; export it with "
                          f"`python export/to_onnx.py --torch-weights ...` to serve it with backend='torch' "
                          f"(or pass checkpoint=DIR), or serve it with backend='onnxruntime'")
    else:
        path = manifest.path / manifest.torch_weights
    if not (path / "routerm.json").is_file():
        raise BundleError(f"checkpoint '{path}' for the torch backend of {where} is not a RouteRM checkpoint "
                          f"(no routerm.json)")
    return path


class TorchBackend:
    name = "torch"

    def __init__(self, manifest: Manifest, providers=None, threads: int | None = None,
                 allow_fallback: bool = False, checkpoint: str | Path | None = None):
        import torch

        from models.checkpoint import load_checkpoint
        from models.runner import CheckpointRunner

        if manifest.precision != "fp32":
            raise BundleError(f"{manifest.path / 'manifest.json'}: a {manifest.precision} bundle; the torch backend "
                              f"runs fp32 weights and would not serve it at {manifest.precision}. Serve it with "
                              f"backend='onnxruntime', or an fp32 bundle with backend='torch'")
        self.device = select_torch_device(providers, torch.cuda.is_available(), allow_fallback)
        if threads is not None:
            torch.set_num_threads(threads)  # process-wide in PyTorch: there is no per-module setting
        path = checkpoint_path(manifest, checkpoint)
        ckpt = load_checkpoint(path)
        if ckpt.method != manifest.method or tuple(ckpt.domains) != manifest.domains:
            raise BundleError(f"checkpoint '{path}' holds {ckpt.method} over {list(ckpt.domains)}, the bundle "
                              f"{manifest.method} over {list(manifest.domains)}")
        self.runner = CheckpointRunner(ckpt, self.device)
        ids = self.runner.layout.adapter_ids
        if manifest.adapter_ids is not None and manifest.adapter_ids != ids:
            raise BundleError(f"bundle adapter_ids {manifest.adapter_ids} disagree with checkpoint '{path}' ({ids})")
        log_once(f"runtime: torch runs on {self.device} ({'Triton kernels' if self.device == 'cuda' else 'PyTorch references'})")

    def run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if role in self.runner.layout.roles:
            return self.runner(role, feeds)
        # an ARLISS merged bundle's roles on the stacked model: one adapter for the whole batch
        name = "router" if role == "router" else role.split("/", 1)[1]
        ids = np.full(len(feeds["input_ids"]), self.runner.layout.adapter_ids[name], np.int64)
        out = self.runner("switchable", {**feeds, "adapter_ids": ids})
        return {"logits": out["router_logits"] if role == "router" else out["rewards"][:, None]}


BACKENDS = {"onnxruntime": OrtBackend, "torch": TorchBackend}
