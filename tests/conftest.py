"""Shared pytest setup. Sections are owned by the modules they serve; add, do not rewrite."""

import os

import pytest
import torch

# --- kernels -------------------------------------------------------------------------------------
# Without CUDA, Triton kernels run on CPU tensors in Triton's interpreter. triton.jit reads this
# flag when a kernel module is imported, so it must be set before anything imports kernels.*.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# The one tolerance table for kernel-vs-reference checks, keyed by the dtype of the compared
# output. float32: both sides accumulate in fp32 (the GPU kernel uses IEEE fp32 dots, not TF32).
# float16 / bfloat16: both sides round the result once, the kernel also rounds the [T, R] LoRA
# intermediate to the input dtype for the tensor-core dot: a couple of ulps of the output dtype.
KERNEL_TOLERANCES = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.float16: {"rtol": 2e-3, "atol": 2e-3},
    torch.bfloat16: {"rtol": 1.6e-2, "atol": 1.6e-2},
}


@pytest.fixture
def kernel_tolerances():
    """``{dtype: {"rtol": ..., "atol": ...}}`` for ``torch.testing.assert_close``."""
    return KERNEL_TOLERANCES


# --- models / training ---------------------------------------------------------------------------
# Tiny random checkpoints of every method, trained once per session on synthetic separable data;
# export, runtime and C tests build on them. Read-only for tests: copy before changing files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def tiny_splits():
    from tiny import synthetic_splits
    return synthetic_splits()


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_root, tiny_splits):
    """``{method: checkpoint dir}`` for baseline, more, rodos, arliss on a tiny random BERT."""
    from tiny import tiny_base, tiny_config
    from training.methods import train
    cfg = tiny_config(tiny_root, tiny_base(tiny_root, "bert"))
    out = {}
    for method in ("baseline", "more", "rodos", "arliss"):
        train(method, tiny_splits, cfg)
        out[method] = cfg.method_dir(method)
    return out


# --- runtime -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_bundles(tiny_root, tiny_checkpoints):
    """``{name: bundle dir}``: fp32 bundles of every method, 'arliss' switchable and 'arliss-merged',
    each carrying its Torch weights (``torch_weights``) for the Torch backend.

    ``optimize=False``: the fusion pass only rewrites graph internals (same inputs, outputs and
    manifest), and the export tests cover it; skipping it keeps this fixture to seconds.
    Read-only for tests: copy a bundle before changing its files.
    """
    from export.spec import ExportSpec
    from export.to_onnx import export_bundle
    root = tiny_root / "bundles"
    out = {m: export_bundle(path, ExportSpec(m, optimize=False), root / m, torch_weights=True)
           for m, path in tiny_checkpoints.items()}
    out["arliss-merged"] = export_bundle(tiny_checkpoints["arliss"], ExportSpec("arliss", lora="merged", optimize=False),
                                         root / "arliss-merged", torch_weights=True)
    return out
