"""The engines ``benchmarks/latency.py`` compares, and the worker process each one runs in.

Every engine answers one call: ``score(prompts, responses) -> rewards`` (float32 [rows]), text in,
rewards out, tokenization included. Every one encodes with ``core.text`` under the truncation
policy the bundle's manifest names (the checkpoint card's, for the engines that load a checkpoint:
export copies it into the manifest), so all engines score the same tokens and their accuracies
are comparable.

==========================  ==================================================================
routerm-ort-fp32/-optimized/-int8/-merged   ``runtime.RewardEngine`` on a bundle (ONNX Runtime)
routerm-torch               ``RewardEngine(backend="torch")``: the checkpoint through ``models/``
hf-eager                    the trained HF models in PyTorch eager (``models.checkpoint``):
                            baseline, MoRE one model; RODOS the router, then per domain group
                            its own model (as a user would chain n + 1 ``from_pretrained``)
peft-eager                  ARLISS as users run it with PEFT: ``set_adapter("router")`` over the
                            prompts, then ``set_adapter(domain)`` per domain group
optimum-ort                 ``optimum.onnxruntime.ORTModelForSequenceClassification`` on each
                            plain graph of the bundle (baseline, MoRE, RODOS, ARLISS merged),
                            routed as hf-eager; built from an ``InferenceSession`` of the graph
                            (``from_pretrained`` wants a config.json beside it; a bundle has none)
optimum-ort-int8-dynamic    optimum-ort on those graphs after ONNX Runtime's dynamic quantization
                            (:func:`quantize_dynamic_graphs`, made at benchmark time): what an
                            Optimum user gets from int8 dynamic quantization of the fp32 bundle
==========================  ==================================================================

Routed engines route each *unique* prompt once (the router sees the prompt alone), like
``RewardEngine``. Each engine lives in its own process (:func:`worker_main`), so its load time and
peak resident memory are its own; the parent sends row indices and gets timings back.

Peak RSS: the worker resets the kernel's high-water mark after the shared imports (write ``5`` to
``/proc/self/clear_refs``, Linux >= 4.0) and reads ``VmHWM`` from ``/proc/self/status`` at the end.
``peak_rss_mb`` is that peak (interpreter and libraries included, the same ~0.5 GB for every
engine); ``model_rss_mb`` is the peak minus the resident set after imports (what the engine added).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime  # every library is imported here, before a worker's RSS baseline
import peft  # noqa: F401
import torch
import transformers  # noqa: F401

from models.checkpoint import load_checkpoint
from core.text import UNNAMED_POLICY, check_policy, encode_pairs, encode_prompts
from models.base import collate
from runtime import RewardEngine, load_manifest

try:  # optional: only optimum-ort needs it
    from optimum.onnxruntime import ORTModelForSequenceClassification
except ImportError:  # pragma: no cover - optimum-onnx is in requirements.txt
    ORTModelForSequenceClassification = None

ENGINES = ("routerm-ort-fp32", "routerm-ort-optimized", "routerm-ort-int8", "routerm-ort-merged",
           "routerm-torch", "hf-eager", "peft-eager", "optimum-ort", "optimum-ort-int8-dynamic")
EXTERNAL_DATA_BYTES = 1_500_000_000     # graphs larger than this keep their weights in a .data file


def quantize_dynamic_graphs(bundle: Path, out: Path) -> Path:
    """Every graph of ``bundle`` through ``onnxruntime.quantization.quantize_dynamic`` into ``out``
    (same file names), the quantizer Optimum's ``ORTQuantizer`` runs for a dynamic config such as
    ``AutoQuantizationConfig.avx512_vnni(is_static=False)``: int8 weights per output channel, uint8
    activations with one scale per tensor per run (``DynamicQuantizeLinear`` + ``MatMulInteger``,
    fused by ONNX Runtime into ``DynamicQuantizeMatMul``). Returns ``out``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    manifest = load_manifest(bundle)
    if manifest.precision != "fp32":
        raise ValueError(f"{bundle}: a {manifest.precision} bundle; dynamic quantization starts from fp32 graphs")
    out.mkdir(parents=True, exist_ok=True)
    for role in manifest.graphs:
        src = manifest.graph_path(role)
        # DefaultTensorType: ONNX shape inference cannot type the outputs of fused com.microsoft ops.
        quantize_dynamic(str(src), str(out / src.name), per_channel=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                         use_external_data_format=src.stat().st_size > EXTERNAL_DATA_BYTES)
    return out


# --- engines ---------------------------------------------------------------------------------------

class RoutermScorer:
    def __init__(self, bundle: Path, backend: str, threads: int, checkpoint: Path):
        extra = {"checkpoint": checkpoint} if backend == "torch" else {}
        self.engine = RewardEngine.from_bundle(bundle, backend=backend, threads=threads, **extra)

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        return self.engine.score(prompts, responses).rewards


class _Routed:
    """Text -> padded batches, and router-then-group-by-domain for RODOS/ARLISS-style engines."""

    def __init__(self, tokenizer, max_length: int, router_max_length: int, domains: tuple[str, ...], truncation: str):
        self.tokenizer, self.max_length, self.router_max_length = tokenizer, max_length, router_max_length
        self.domains, self.pad_id, self.truncation = domains, int(tokenizer.pad_token_id), check_policy(truncation)

    def pair_batch(self, prompts, responses) -> dict:
        encoded = encode_pairs(self.tokenizer, prompts, responses, self.max_length, policy=self.truncation)
        return collate(encoded, self.pad_id)

    def routed(self, prompts, responses, router_logits, rewards_for) -> np.ndarray:
        """router_logits(batch) -> [U, n]; rewards_for(domain, batch) -> [rows]."""
        unique = list(dict.fromkeys(prompts))
        enc = encode_prompts(self.tokenizer, unique, self.router_max_length)
        choice = router_logits(collate(enc, self.pad_id)).argmax(-1).tolist()
        domain_of = {p: self.domains[c] for p, c in zip(unique, choice)}
        out = np.empty(len(prompts), np.float32)
        for domain in dict.fromkeys(domain_of[p] for p in prompts):
            rows = [i for i, p in enumerate(prompts) if domain_of[p] == domain]
            batch = self.pair_batch([prompts[i] for i in rows], [responses[i] for i in rows])
            out[rows] = np.asarray(rewards_for(domain, batch), np.float32).reshape(-1)
        return out


class HfEagerScorer(_Routed):
    def __init__(self, checkpoint: Path):
        ckpt = load_checkpoint(checkpoint)
        if ckpt.method == "arliss":
            raise ValueError("hf-eager does not apply to ARLISS (its adapters run through PEFT: peft-eager)")
        super().__init__(ckpt.tokenizer, ckpt.card.max_length,
                         int(ckpt.card.extra.get("router_max_length", ckpt.card.max_length)), ckpt.domains,
                         ckpt.card.truncation)
        self.models = ckpt.models

    @torch.inference_mode()
    def score(self, prompts, responses) -> np.ndarray:
        if "reward" in self.models:
            return self.models["reward"](**self.pair_batch(prompts, responses)).logits.squeeze(-1).numpy()
        return self.routed(prompts, responses, lambda b: self.models["router"](**b).logits,
                           lambda d, b: self.models[f"reward/{d}"](**b).logits.squeeze(-1).numpy())


class PeftEagerScorer(_Routed):
    def __init__(self, checkpoint: Path):
        ckpt = load_checkpoint(checkpoint)
        if ckpt.method != "arliss":
            raise ValueError(f"peft-eager applies to ARLISS only, not {ckpt.method}")
        super().__init__(ckpt.tokenizer, ckpt.card.max_length,
                         int(ckpt.card.extra.get("router_max_length", ckpt.card.max_length)), ckpt.domains,
                         ckpt.card.truncation)
        self.model = ckpt.models["arliss"]      # ArlissModel: PeftModel.set_adapter per pass

    @torch.inference_mode()
    def score(self, prompts, responses) -> np.ndarray:
        return self.routed(prompts, responses, self.model.router_logits,
                           lambda d, b: self.model.rewards(b, d).numpy())


class OptimumOrtScorer(_Routed):
    """``graphs``: a directory holding other versions of the bundle's graph files (the same names) to run instead."""

    def __init__(self, bundle: Path, threads: int, graphs: Path | None = None):
        if ORTModelForSequenceClassification is None:
            raise ValueError("optimum-ort needs optimum-onnx (`pip install optimum-onnx`)")
        manifest = load_manifest(bundle)
        if "switchable" in manifest.graphs:
            raise ValueError("optimum-ort runs plain classifier graphs; a switchable ARLISS graph takes adapter_ids")
        from transformers import AutoConfig
        from models.base import load_tokenizer
        # A manifest without truncation.policy predates it (core.text.UNNAMED_POLICY).
        super().__init__(load_tokenizer(bundle), manifest.max_length, manifest.router_max_length, manifest.domains,
                         manifest.truncation.get("policy", UNNAMED_POLICY))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        base = AutoConfig.from_pretrained(manifest.base_model).to_dict()  # Optimum wants a config; the graph needs none
        for key in ("id2label", "label2id"):
            base.pop(key, None)
        self.models = {}
        for role, graph in manifest.graphs.items():
            config = AutoConfig.for_model(**{**base, "num_labels": len(manifest.domains) if role == "router" else 1})
            # ORTModel.from_pretrained infers the library from a config.json beside the graph, which a
            # bundle does not carry: build the model from its session, as from_pretrained does in the end.
            path = graphs / graph.file if graphs is not None else manifest.graph_path(role)
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.models[role] = ORTModelForSequenceClassification(config=config, session=session, use_io_binding=False,
                                                                  model_save_dir=str(bundle))

    def _logits(self, role: str, batch: dict) -> torch.Tensor:
        return self.models[role](**batch).logits

    def score(self, prompts, responses) -> np.ndarray:
        if "reward" in self.models:
            return self._logits("reward", self.pair_batch(prompts, responses)).squeeze(-1).numpy()
        return self.routed(prompts, responses, lambda b: self._logits("router", b),
                           lambda d, b: self._logits(f"reward/{d}", b).squeeze(-1).numpy())


def make_scorer(engine: str, checkpoint: Path, bundle: Path | None, threads: int, graphs: Path | None = None):
    if engine.startswith("routerm-ort"):
        return RoutermScorer(bundle, "onnxruntime", threads, checkpoint)
    if engine == "routerm-torch":
        return RoutermScorer(bundle, "torch", threads, checkpoint)
    if engine == "hf-eager":
        return HfEagerScorer(checkpoint)
    if engine == "peft-eager":
        return PeftEagerScorer(checkpoint)
    if engine == "optimum-ort":
        return OptimumOrtScorer(bundle, threads)
    if engine == "optimum-ort-int8-dynamic":
        if graphs is None:
            raise ValueError("optimum-ort-int8-dynamic runs quantized graphs (quantize_dynamic_graphs); none given")
        return OptimumOrtScorer(bundle, threads, graphs)
    raise ValueError(f"unknown engine '{engine}'; known: {ENGINES}")


# --- the worker process ----------------------------------------------------------------------------

def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0     # kB
    except OSError:
        pass
    return None


def _peak_rss_mb() -> float:
    peak = _status_mb("VmHWM")
    if peak is None:  # not Linux: ru_maxrss (bytes on macOS, kB elsewhere), never reset
        import resource
        import sys
        raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = raw / 2**20 if sys.platform == "darwin" else raw / 1024.0
    return peak


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def worker_main(conn, spec: dict) -> None:
    """Load one engine, then serve ``("score"|"time", rows)`` until ``("stop",)``.

    ``spec``: engine, checkpoint, bundle (or None), graphs (a directory of graphs built at benchmark
    time, or None), threads, requests as (prompt, chosen, rejected).
    Replies: load ``{"ok", "load_s"|"error"}``; score ``{"chosen", "rejected"}`` (untimed);
    time ``{"ms"}`` (the ``score`` call alone); stop ``{"peak_rss_mb", "model_rss_mb", "peak_reset"}``.
    """
    torch.set_num_threads(spec["threads"])
    requests = spec["requests"]
    reset = _reset_peak()
    base = _status_mb("VmRSS") or _peak_rss_mb()
    start = time.perf_counter()
    try:
        scorer = make_scorer(spec["engine"], Path(spec["checkpoint"]), Path(spec["bundle"]) if spec["bundle"] else None,
                             spec["threads"], Path(spec["graphs"]) if spec.get("graphs") else None)
    except Exception as exc:  # reported to the parent, which records the engine as skipped
        conn.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"ok": True, "load_s": time.perf_counter() - start})

    def call(rows):
        prompts = [requests[i][0] for i in rows]
        return scorer.score(prompts + prompts, [requests[i][1] for i in rows] + [requests[i][2] for i in rows])

    while True:
        message = conn.recv()
        if message[0] == "score":
            rewards = call(message[1])
            n = len(message[1])
            conn.send({"chosen": rewards[:n].tolist(), "rejected": rewards[n:].tolist()})
        elif message[0] == "time":
            t0 = time.perf_counter()
            call(message[1])
            conn.send({"ms": (time.perf_counter() - t0) * 1e3})
        else:
            peak = _peak_rss_mb()
            conn.send({"peak_rss_mb": peak, "model_rss_mb": peak - base, "peak_reset": reset})
            return
