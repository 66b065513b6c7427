"""Triton kernels against their PyTorch references: parametrized grids, one tolerance table.

Without CUDA the kernels run on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1``, set in
conftest.py before anything imports ``kernels``); with CUDA the same grid runs on the GPU. bf16
``tl.dot`` is wrong in the interpreter, so bf16 multi-LoRA and the large shapes are GPU-only tests
(marked ``gpu``). The kernels are called through their Triton modules directly, so a test never
compares the reference with itself whatever the dispatch decides.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import kernels
from kernels import reference
from kernels.multi_lora_triton import multi_lora as triton_multi_lora
from kernels.topk_gating_triton import topk_gating as triton_topk_gating

HAS_CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda" if HAS_CUDA else "cpu")
requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
REPO_ROOT = Path(__file__).resolve().parents[1]

PATTERNS = ["distinct", "uniform", "zipf", "identical", "skewed", "partial", "none"]


def make_adapter_ids(pattern: str, num_tokens: int, n_adapters: int, order: str, seed: int):
    """[T] int32 adapter ids with a given popularity (Punica's test patterns, plus -1 rows).

    distinct: row t -> t % N; uniform: iid uniform; zipf: P(i) ~ 1 / (i + 1)^1.5; identical:
    all rows on one adapter; skewed: 7/8 of rows on adapter 0, the rest spread; partial: uniform
    over [-1, N) (some rows without adapter); none: every row -1. ``order`` "sorted" sorts the
    ids, "shuffled" permutes them.
    """
    gen = torch.Generator().manual_seed(seed)
    if pattern == "distinct":
        ids = torch.arange(num_tokens) % n_adapters
    elif pattern == "uniform":
        ids = torch.randint(0, n_adapters, (num_tokens,), generator=gen)
    elif pattern == "zipf":
        popularity = 1.0 / (torch.arange(n_adapters, dtype=torch.float64) + 1) ** 1.5
        ids = torch.multinomial(popularity, num_tokens, replacement=True, generator=gen)
    elif pattern == "identical":
        ids = torch.full((num_tokens,), n_adapters - 1)
    elif pattern == "skewed":
        ids = torch.zeros(num_tokens, dtype=torch.int64)
        n_rest = num_tokens // 8
        ids[:n_rest] = torch.randint(1, n_adapters, (n_rest,), generator=gen)
    elif pattern == "partial":
        ids = torch.randint(-1, n_adapters, (num_tokens,), generator=gen)
    elif pattern == "none":
        ids = torch.full((num_tokens,), -1)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    if order == "sorted":
        ids = ids.sort().values
    else:
        ids = ids[torch.randperm(num_tokens, generator=gen)]
    return ids.to(torch.int32).to(DEVICE)


def make_lora(num_tokens, d_in, d_out, rank, n_adapters, dtype, seed):
    """x [T, D_in], lora_a [N, D_in, R], lora_b [N, R, D_out], scaled so the delta is O(1)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_tokens, d_in, generator=gen)
    lora_a = torch.randn(n_adapters, d_in, rank, generator=gen) / d_in**0.5
    lora_b = torch.randn(n_adapters, rank, d_out, generator=gen) / rank**0.5
    return tuple(t.to(dtype).to(DEVICE) for t in (x, lora_a, lora_b))


def scaling_tensor(n_adapters):
    return torch.linspace(0.5, 2.0, n_adapters, device=DEVICE)


def assert_matches(actual, expected, tolerances):
    torch.testing.assert_close(actual, expected, **tolerances[expected.dtype])


# --- multi_lora ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("order", ["shuffled", "sorted"])
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("num_tokens", [1, 7, 33, 133])
def test_multi_lora_patterns(num_tokens, pattern, order, dtype, kernel_tolerances):
    x, lora_a, lora_b = make_lora(num_tokens, 48, 56, 8, 5, dtype, seed=num_tokens)
    ids = make_adapter_ids(pattern, num_tokens, 5, order, seed=num_tokens + 1)
    expected = reference.multi_lora(x, lora_a, lora_b, ids, 0.5)
    actual = triton_multi_lora(x, lora_a, lora_b, ids, 0.5)
    assert actual.shape == (num_tokens, 56) and actual.dtype == dtype
    assert_matches(actual, expected, kernel_tolerances)
    # Rows without an adapter get exactly zero.
    assert torch.all(actual[ids < 0] == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("d_in,d_out", [(48, 96), (96, 48)])
@pytest.mark.parametrize("n_adapters", [2, 5])
@pytest.mark.parametrize("rank", [8, 16])
@pytest.mark.parametrize("num_tokens", [7, 133])
def test_multi_lora_shapes(num_tokens, rank, n_adapters, d_in, d_out, dtype, kernel_tolerances):
    x, lora_a, lora_b = make_lora(num_tokens, d_in, d_out, rank, n_adapters, dtype, seed=rank)
    ids = make_adapter_ids("partial", num_tokens, n_adapters, "shuffled", seed=d_in)
    scaling = scaling_tensor(n_adapters)
    expected = reference.multi_lora(x, lora_a, lora_b, ids, scaling)
    assert_matches(triton_multi_lora(x, lora_a, lora_b, ids, scaling), expected, kernel_tolerances)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_multi_lora_hidden_384(dtype, kernel_tolerances):
    # The smallest hidden size of the target regime: several K blocks and K splits.
    x, lora_a, lora_b = make_lora(33, 384, 384, 16, 5, dtype, seed=384)
    ids = make_adapter_ids("zipf", 33, 5, "shuffled", seed=385)
    expected = reference.multi_lora(x, lora_a, lora_b, ids, 2.0)
    assert_matches(triton_multi_lora(x, lora_a, lora_b, ids, 2.0), expected, kernel_tolerances)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("scaling_kind", ["float", "tensor"])
@pytest.mark.parametrize("num_tokens", [7, 133])
def test_multi_lora_accumulates_into_out(num_tokens, scaling_kind, dtype, kernel_tolerances):
    x, lora_a, lora_b = make_lora(num_tokens, 48, 40, 8, 5, dtype, seed=7)
    ids = make_adapter_ids("partial", num_tokens, 5, "shuffled", seed=8)
    scaling = 0.25 if scaling_kind == "float" else scaling_tensor(5)
    base = torch.randn(num_tokens, 40, generator=torch.Generator().manual_seed(9))
    base = base.to(dtype).to(DEVICE)
    out = base.clone()
    expected = reference.multi_lora(x, lora_a, lora_b, ids, scaling, out=base.clone())
    returned = triton_multi_lora(x, lora_a, lora_b, ids, scaling, out=out)
    assert returned is out
    assert_matches(out, expected, kernel_tolerances)
    assert torch.equal(out[ids < 0], base[ids < 0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_multi_lora_strided_inputs(dtype, kernel_tolerances):
    # x and lora_a every other input feature, out a column slice of a wider buffer.
    x_wide, lora_a_wide, lora_b = make_lora(33, 96, 56, 16, 5, dtype, seed=11)
    x = x_wide[:, ::2]                                      # [33, 48], strides (96, 2)
    lora_a = lora_a_wide[:, ::2, :]                         # [5, 48, 16], strides (1536, 32, 1)
    assert not x.is_contiguous() and not lora_a.is_contiguous()
    ids = make_adapter_ids("uniform", 33, 5, "shuffled", seed=12)
    out_wide = torch.zeros(33, 112, dtype=dtype, device=DEVICE)
    out = out_wide[:, 56:]
    expected = reference.multi_lora(x, lora_a, lora_b, ids, 1.5)
    triton_multi_lora(x, lora_a, lora_b, ids, 1.5, out=out)
    assert_matches(out, expected, kernel_tolerances)
    assert torch.all(out_wide[:, :56] == 0)


def test_multi_lora_is_deterministic():
    x, lora_a, lora_b = make_lora(7, 384, 48, 8, 2, torch.float32, seed=13)
    ids = make_adapter_ids("uniform", 7, 2, "shuffled", seed=14)
    first = triton_multi_lora(x, lora_a, lora_b, ids, 1.0)
    assert torch.equal(first, triton_multi_lora(x, lora_a, lora_b, ids, 1.0))


def test_multi_lora_empty_batch():
    x, lora_a, lora_b = make_lora(0, 48, 40, 8, 2, torch.float32, seed=15)
    ids = torch.empty(0, dtype=torch.int32, device=DEVICE)
    for fn in (triton_multi_lora, reference.multi_lora, reference.multi_lora_loop):
        assert fn(x, lora_a, lora_b, ids, 1.0).shape == (0, 40)


@pytest.mark.parametrize("use_out", [False, True])
@pytest.mark.parametrize("pattern", ["zipf", "partial"])
def test_multi_lora_loop_matches_reference(pattern, use_out, kernel_tolerances):
    x, lora_a, lora_b = make_lora(33, 48, 40, 8, 5, torch.float32, seed=16)
    ids = make_adapter_ids(pattern, 33, 5, "shuffled", seed=17)
    out = torch.ones(33, 40, device=DEVICE) if use_out else None
    expected = reference.multi_lora(x, lora_a, lora_b, ids, scaling_tensor(5),
                                    out=None if out is None else out.clone())
    actual = reference.multi_lora_loop(x, lora_a, lora_b, ids, scaling_tensor(5), out=out)
    assert_matches(actual, expected, kernel_tolerances)


# --- topk_gating ---------------------------------------------------------------------------------


@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("num_experts", [4, 5, 16])
@pytest.mark.parametrize("num_tokens", [1, 7, 33, 133])
def test_topk_gating(num_tokens, num_experts, k, dtype, renormalize, kernel_tolerances):
    # topk_gating has no tl.dot, so bf16 is exact in the interpreter too.
    gen = torch.Generator().manual_seed(num_tokens * 31 + num_experts)
    logits = (3 * torch.randn(num_tokens, num_experts, generator=gen)).to(dtype).to(DEVICE)
    weights, ids = triton_topk_gating(logits, k, renormalize)
    ref_weights, ref_ids = reference.topk_gating(logits, k, renormalize)
    assert weights.dtype == torch.float32 and ids.dtype == torch.int32
    assert weights.shape == ids.shape == (num_tokens, k)
    assert torch.equal(ids, ref_ids)
    assert_matches(weights, ref_weights, kernel_tolerances)
    if renormalize:
        torch.testing.assert_close(weights.sum(-1), torch.ones(num_tokens, device=DEVICE))


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("num_experts", [5, 16])
def test_topk_gating_ties_pick_lowest_index(num_experts, k, kernel_tolerances):
    gen = torch.Generator().manual_seed(num_experts)
    logits = torch.randint(-1, 2, (133, num_experts), generator=gen).float()
    logits[0] = 0.0                                   # all experts tied
    logits[1, :] = float("-inf")                      # all but two experts masked out
    logits[1, [3, 1]] = 2.0
    logits = logits.to(DEVICE)
    weights, ids = triton_topk_gating(logits, k, True)
    ref_weights, ref_ids = reference.topk_gating(logits, k, True)
    assert torch.equal(ids, ref_ids)
    assert ids[0].tolist() == list(range(k))
    assert ids[1].tolist() == [1, 3][:k]
    assert_matches(weights, ref_weights, kernel_tolerances)
    # Ties everywhere: within each row, equal logits must come out in ascending expert order.
    chosen = logits.gather(1, ids.long())
    same = chosen[:, 1:] == chosen[:, :-1]
    assert torch.all(ids[:, 1:][same] > ids[:, :-1][same])


def test_topk_gating_strided_logits(kernel_tolerances):
    logits = torch.randn(16, 33, generator=torch.Generator().manual_seed(3)).to(DEVICE).t()
    assert not logits.is_contiguous()                 # [33, 16], stride (1, 33)
    weights, ids = triton_topk_gating(logits, 2, False)
    ref_weights, ref_ids = reference.topk_gating(logits, 2, False)
    assert torch.equal(ids, ref_ids)
    assert_matches(weights, ref_weights, kernel_tolerances)


def test_topk_gating_empty_batch():
    logits = torch.empty(0, 8, device=DEVICE)
    for fn in (triton_topk_gating, reference.topk_gating):
        weights, ids = fn(logits, 2)
        assert weights.shape == ids.shape == (0, 2)


# --- sort_by_expert ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("num_experts", [4, 5, 16])
@pytest.mark.parametrize("num_tokens", [1, 7, 133])
def test_sort_by_expert(num_tokens, num_experts, k):
    gen = torch.Generator().manual_seed(num_tokens + num_experts)
    logits = torch.randn(num_tokens, num_experts, generator=gen).to(DEVICE)
    _, expert_ids = reference.topk_gating(logits, k)
    order, counts, offsets = kernels.sort_by_expert(expert_ids, num_experts)
    flat = expert_ids.flatten().tolist()
    # Naive definition: for each expert in turn, its slots in ascending order.
    expected = [s for e in range(num_experts) for s in range(len(flat)) if flat[s] == e]
    assert order.tolist() == expected
    assert counts.tolist() == [flat.count(e) for e in range(num_experts)]
    assert offsets.tolist() == [0] + torch.cumsum(counts, 0).tolist()
    assert order.dtype == counts.dtype == offsets.dtype == torch.int64


# --- argument checks -----------------------------------------------------------------------------


def _lora_args(**overrides):
    x, lora_a, lora_b = make_lora(7, 48, 40, 8, 3, torch.float32, seed=0)
    args = {"x": x, "lora_a": lora_a, "lora_b": lora_b,
            "adapter_ids": torch.zeros(7, dtype=torch.int32, device=DEVICE),
            "scaling": 1.0, "out": None}
    args.update(overrides)
    return args


def _ids(*values):
    return torch.tensor(values, dtype=torch.int32, device=DEVICE)


BAD_LORA_ARGS = {
    "x not a tensor": (dict(x=[[1.0]]), TypeError, "x must be a torch.Tensor"),
    "x 1-D": (dict(x=torch.zeros(48)), ValueError, r"x must be 2-D \[T, D_in\]"),
    "x int": (dict(x=torch.zeros(7, 48, dtype=torch.int32)), ValueError, "x must have dtype"),
    "lora_a 2-D": (dict(lora_a=torch.zeros(48, 8)), ValueError, "lora_a must be 3-D"),
    "lora_a D_in": (dict(lora_a=torch.zeros(3, 47, 8)), ValueError,
                    r"lora_a has shape \(3, 47, 8\) but x has shape \(7, 48\)"),
    "lora_b rank": (dict(lora_b=torch.zeros(3, 4, 40)), ValueError,
                    r"lora_b has shape \(3, 4, 40\) .* must be \[N=3, R=8, D_out\]"),
    "lora_b N": (dict(lora_b=torch.zeros(2, 8, 40)), ValueError, r"lora_b has shape \(2, 8, 40\)"),
    "lora_a dtype": (dict(lora_a=torch.zeros(3, 48, 8, dtype=torch.float16)), ValueError,
                     "lora_a has dtype torch.float16 but x has dtype torch.float32"),
    "ids length": (dict(adapter_ids=_ids(0, 1)), ValueError,
                   r"adapter_ids has shape \(2,\) but x has shape \(7, 48\)"),
    "ids 2-D": (dict(adapter_ids=torch.zeros(7, 1, dtype=torch.int32)), ValueError,
                "adapter_ids must be 1-D"),
    "ids float": (dict(adapter_ids=torch.zeros(7)), ValueError, "adapter_ids must have dtype"),
    "id == N": (dict(adapter_ids=_ids(0, 1, 2, 3, 0, 0, -1)), ValueError,
                r"adapter_ids must lie in \[-1, 3\) .* got values in \[-1, 3\]"),
    "id < -1": (dict(adapter_ids=_ids(0, -2, 0, 0, 0, 0, 0)), ValueError,
                r"adapter_ids must lie in \[-1, 3\)"),
    "scaling shape": (dict(scaling=torch.ones(2)), ValueError,
                      r"scaling must be a float or a \[N=3\] tensor, got shape \(2,\)"),
    "scaling int tensor": (dict(scaling=torch.ones(3, dtype=torch.int64)), ValueError,
                           "scaling must be a floating-point tensor"),
    "scaling str": (dict(scaling="1.0"), TypeError, "scaling must be a float or a torch.Tensor"),
    "out shape": (dict(out=torch.zeros(7, 41)), ValueError,
                  r"out has shape \(7, 41\) but must be \[T=7, D_out=40\]"),
    "out dtype": (dict(out=torch.zeros(7, 40, dtype=torch.float16)), ValueError,
                  "out has dtype torch.float16 but x has dtype torch.float32"),
}


@pytest.mark.parametrize("fn", [kernels.multi_lora, triton_multi_lora, reference.multi_lora,
                                reference.multi_lora_loop],
                         ids=["dispatch", "triton", "reference", "loop"])
@pytest.mark.parametrize("case", list(BAD_LORA_ARGS))
def test_multi_lora_rejects_bad_arguments(case, fn):
    overrides, error, message = BAD_LORA_ARGS[case]
    overrides = {k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v
                 for k, v in overrides.items()}
    with pytest.raises(error, match=message):
        fn(**_lora_args(**overrides))


BAD_GATING_ARGS = {
    "not a tensor": (dict(router_logits=[[0.0, 1.0]]), TypeError, "router_logits must be a torch"),
    "1-D": (dict(router_logits=torch.zeros(4)), ValueError, r"router_logits must be 2-D \[T, E\]"),
    "3-D": (dict(router_logits=torch.zeros(2, 3, 4)), ValueError, "router_logits must be 2-D"),
    "int logits": (dict(router_logits=torch.zeros(3, 4, dtype=torch.int64)), ValueError,
                   "router_logits must have dtype"),
    "k = 0": (dict(k=0), ValueError, r"k must be in \[1, E=4\] .* got k=0"),
    "k > E": (dict(k=5), ValueError, r"k must be in \[1, E=4\] for router_logits of shape \(3, 4\)"),
    "k float": (dict(k=1.0), TypeError, "k must be an int, got float"),
    "renormalize int": (dict(renormalize=1), TypeError, "renormalize must be a bool"),
}


@pytest.mark.parametrize("fn", [kernels.topk_gating, triton_topk_gating, reference.topk_gating],
                         ids=["dispatch", "triton", "reference"])
@pytest.mark.parametrize("case", list(BAD_GATING_ARGS))
def test_topk_gating_rejects_bad_arguments(case, fn):
    overrides, error, message = BAD_GATING_ARGS[case]
    args = {"router_logits": torch.zeros(3, 4, device=DEVICE), "k": 2, "renormalize": True}
    args.update(overrides)
    with pytest.raises(error, match=message):
        fn(**args)


@pytest.mark.parametrize("expert_ids,num_experts,error,message", [
    (torch.tensor([[0, 4]]), 4, ValueError, r"expert_ids must lie in \[0, 4\), got values in \[0, 4\]"),
    (torch.tensor([[-1, 0]]), 4, ValueError, r"expert_ids must lie in \[0, 4\)"),
    (torch.tensor([0, 1]), 4, ValueError, r"expert_ids must be 2-D \[T, k\]"),
    (torch.tensor([[0.0, 1.0]]), 4, ValueError, "expert_ids must have dtype"),
    (torch.tensor([[0, 1]]), 0, ValueError, "num_experts must be >= 1"),
    ([[0, 1]], 4, TypeError, "expert_ids must be a torch.Tensor"),
], ids=["id == E", "id < 0", "1-D", "float", "no experts", "list"])
def test_sort_by_expert_rejects_bad_arguments(expert_ids, num_experts, error, message):
    with pytest.raises(error, match=message):
        kernels.sort_by_expert(expert_ids, num_experts)


# --- package hygiene and dispatch ----------------------------------------------------------------


def test_import_is_cheap_and_not_hf_kernels():
    # transformers does `from kernels import Device, LayerRepository, ...` and must get ImportError.
    script = (
        "import sys, kernels\n"
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules, 'heavy import'\n"
        "for name in ('Device', 'LayerRepository', 'Mode', 'get_kernel', 'kernelize',\n"
        "             'register_kernel_mapping', 'use_kernel_forward_from_hub'):\n"
        "    assert not hasattr(kernels, name), name\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True)


def test_dispatch_follows_device_and_interpreter_flag(monkeypatch):
    calls = []
    monkeypatch.setattr(reference, "multi_lora", lambda *args: calls.append("reference"))
    monkeypatch.setattr(reference, "topk_gating", lambda *args: calls.append("reference"))
    args = _lora_args()
    logits = torch.zeros(3, 4, device=DEVICE)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    kernels.multi_lora(*args.values())
    kernels.topk_gating(logits, 2)
    assert calls == []
    monkeypatch.delenv("TRITON_INTERPRET")
    kernels.multi_lora(*args.values())
    kernels.topk_gating(logits, 2)
    assert calls == ([] if HAS_CUDA else ["reference", "reference"])


def test_dispatch_sends_autograd_to_reference(monkeypatch):
    # The kernels are forward-only: a call that autograd records must go to the reference.
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x, lora_a, lora_b = make_lora(7, 48, 40, 8, 3, torch.float32, seed=0)
    lora_a.requires_grad_(True)
    ids = make_adapter_ids("partial", 7, 3, "shuffled", seed=1)
    logits = torch.randn(7, 4, device=DEVICE, requires_grad=True)
    delta = kernels.multi_lora(x, lora_a, lora_b, ids, 0.5)
    weights, _ = kernels.topk_gating(logits, 2)
    (delta.sum() + weights[:, 0].sum()).backward()
    assert lora_a.grad is not None and logits.grad is not None
    with torch.no_grad():
        calls = []
        monkeypatch.setattr(reference, "multi_lora", lambda *args: calls.append("reference"))
        monkeypatch.setattr(reference, "topk_gating", lambda *args: calls.append("reference"))
        assert kernels.multi_lora(x, lora_a, lora_b, ids, 0.5).grad_fn is None
        kernels.topk_gating(logits, 2)
        assert calls == []


# Compiles (not runs) every kernel for an H100/H200 (sm_90) with the launch configs a small and a
# large batch get, in a fresh process: the interpreter accepts code that the compiler rejects, and
# this needs no GPU, only the ptxas that ships with triton.
AOT_COMPILE_SCRIPT = """
import torch, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from kernels import multi_lora_triton as ml, topk_gating_triton as tg

def build(fn, pointers, constexprs, num_warps, num_stages=3):
    sig = {n: pointers.get(n, "constexpr" if n in constexprs else "i32") for n in fn.arg_names}
    options = {"num_warps": num_warps, "num_stages": num_stages}
    triton.compile(ASTSource(fn, sig, constexprs), target=GPUTarget("cuda", 90, 32), options=options)

for dtype, ty, tokens in ((torch.float16, "fp16", 1), (torch.float16, "fp16", 4096),
                          (torch.bfloat16, "bf16", 1), (torch.float32, "fp32", 4096)):
    c = ml._launch_config(tokens, 16, 1024, 1024, 64, dtype)
    idx = {"rows_ptr": "*i32", "seg_start_ptr": "*i32", "seg_count_ptr": "*i32"}
    build(ml._multi_lora_shrink_kernel,
          {"x_ptr": "*" + ty, "a_ptr": "*" + ty, "h_ptr": "*fp32", **idx},
          {k: c[k] for k in ("BLOCK_M", "BLOCK_K", "BLOCK_R")} | {"FP32_DOT": ty == "fp32"},
          c["num_warps"], c["num_stages"])
    build(ml._multi_lora_expand_kernel,
          {"h_ptr": "*fp32", "b_ptr": "*" + ty, "scale_ptr": "*fp32", "out_ptr": "*" + ty, **idx},
          {k: c[k] for k in ("SPLIT_K", "BLOCK_M", "BLOCK_N", "BLOCK_R")}
          | {"FP32_DOT": ty == "fp32", "ACCUMULATE": tokens == 1},
          c["num_warps"])
for ty, experts, k in (("fp32", 4, 1), ("bf16", 16, 2)):
    c = tg._launch_config(4096, experts, k)
    build(tg._topk_gating_kernel,
          {"logits_ptr": "*" + ty, "weights_ptr": "*fp32", "ids_ptr": "*i32"},
          {k_: c[k_] for k_ in ("BLOCK_T", "BLOCK_E", "BLOCK_K")} | {"K": k, "RENORMALIZE": True},
          c["num_warps"])
print("compiled")
"""


def test_kernels_compile_for_sm90(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)           # compile for real, not from a cache
    result = subprocess.run([sys.executable, "-c", AOT_COMPILE_SCRIPT], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "compiled" in result.stdout, result.stderr[-4000:]


# --- GPU only: bf16 and the large shapes of the target regime ------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("pattern", ["uniform", "partial", "identical"])
@pytest.mark.parametrize("num_tokens,d_model,rank,n_adapters", [
    (1, 1024, 64, 16), (33, 768, 16, 4), (4096, 1024, 64, 16), (4096, 384, 8, 2),
])
@pytest.mark.gpu
@requires_cuda
def test_gpu_multi_lora_large(num_tokens, d_model, rank, n_adapters, pattern, dtype,
                              kernel_tolerances):
    x, lora_a, lora_b = make_lora(num_tokens, d_model, d_model, rank, n_adapters, dtype, seed=1)
    ids = make_adapter_ids(pattern, num_tokens, n_adapters, "shuffled", seed=2)
    expected = reference.multi_lora(x, lora_a, lora_b, ids, scaling_tensor(n_adapters))
    actual = kernels.multi_lora(x, lora_a, lora_b, ids, scaling_tensor(n_adapters))
    assert_matches(actual, expected, kernel_tolerances)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.gpu
@requires_cuda
def test_gpu_multi_lora_accumulate(dtype, kernel_tolerances):
    x, lora_a, lora_b = make_lora(133, 1024, 1024, 32, 8, dtype, seed=3)
    ids = make_adapter_ids("zipf", 133, 8, "shuffled", seed=4)
    base = torch.randn(133, 1024, device=DEVICE).to(dtype)
    out = base.clone()
    expected = reference.multi_lora(x, lora_a, lora_b, ids, 0.5, out=base.clone())
    kernels.multi_lora(x, lora_a, lora_b, ids, 0.5, out=out)
    assert_matches(out, expected, kernel_tolerances)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("num_experts", [4, 16, 64])
@pytest.mark.gpu
@requires_cuda
def test_gpu_topk_gating_large(num_experts, dtype, kernel_tolerances):
    logits = torch.randn(4096, num_experts, device=DEVICE).to(dtype)
    for k in (1, 2):
        weights, ids = kernels.topk_gating(logits, k)
        ref_weights, ref_ids = reference.topk_gating(logits, k)
        assert torch.equal(ids, ref_ids)
        assert_matches(weights, ref_weights, kernel_tolerances)
