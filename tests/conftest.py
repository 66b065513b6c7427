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
