"""export.rowwise_int8: the rewritten graph against its numpy reference and against fp32."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ort = pytest.importorskip("onnxruntime")

from export.rowwise_int8 import quantize_model, quantize_weight, reference  # noqa: E402

K, N, HIDDEN = 16, 24, 40


def _graph(opset: int, w_up: np.ndarray, w_down: np.ndarray) -> onnx.ModelProto:
    """x [B, S, K] -> h = x @ w_up twice (one weight, two MatMuls); att = h @ h^T (two activations); y = h @ w_down."""
    nodes = [helper.make_node("MatMul", ["x", "w_up"], ["h1"], name="up1"),
             helper.make_node("MatMul", ["x", "w_up"], ["h2"], name="up2"),          # the same weight again
             helper.make_node("Add", ["h1", "h2"], ["h"]),
             helper.make_node("Transpose", ["h"], ["ht"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["h", "ht"], ["att"], name="activation_product"),
             helper.make_node("MatMul", ["h", "w_down"], ["y"], name="down")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", HIDDEN]),
         helper.make_tensor_value_info("att", TensorProto.FLOAT, ["b", "s", "s"])],
        [numpy_helper.from_array(w_up, "w_up"), numpy_helper.from_array(w_down, "w_down")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(["y", "att"], sess.run(["y", "att"], {"x": x})))


@pytest.fixture
def weights():
    rng = np.random.default_rng(0)
    return ((rng.standard_normal((K, N)) * 0.2).astype(np.float32),
            (rng.standard_normal((N, HIDDEN)) * 0.2).astype(np.float32))


@pytest.mark.parametrize("opset", [17, 18])   # ReduceMax's axes: an attribute, then an input
def test_graph_equals_reference_and_keeps_what_it_should_fp32(weights, opset):
    w_up, w_down = weights
    model, rewritten = quantize_model(_graph(opset, w_up, w_down), keep_fp32=lambda name, k, n: name == "down")
    onnx.checker.check_model(model)
    assert rewritten == 2
    names = {t.name for t in model.graph.initializer}
    assert "w_up" not in names and "w_down" in names                    # fp32 copy dropped once unused
    assert sum(t.name.startswith("w_up_rowq_u8") for t in model.graph.initializer) == 1   # quantized once
    x = np.random.default_rng(1).standard_normal((2, 5, K)).astype(np.float32)
    x[1, 3] = 0.0                                                       # an all-zero row: no division by zero
    out = _run(model, x)
    h = 2 * reference(x, w_up)
    np.testing.assert_allclose(out["y"], h @ w_down, rtol=1e-5, atol=1e-5)   # down stayed fp32
    np.testing.assert_allclose(out["att"], h @ h.transpose(0, 2, 1), rtol=1e-5, atol=1e-5)
    assert np.isfinite(out["y"]).all() and not out["y"][1, 3].any()


def test_default_keeps_contracting_weights_fp32(weights):
    w_up, w_down = weights                      # K=16 < N=24: rewritten; N=24 < HIDDEN=40: rewritten too
    _, rewritten = quantize_model(_graph(17, w_up, w_down))
    assert rewritten == 3
    _, rewritten = quantize_model(_graph(17, w_up, np.ascontiguousarray(w_down[:, :8])))  # 24 -> 8 contracts
    assert rewritten == 2


def test_a_rows_reward_does_not_depend_on_the_other_rows(weights):
    w_up, w_down = weights
    model, _ = quantize_model(_graph(17, w_up, w_down))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, K)).astype(np.float32)
    alone = _run(model, x[:1])["y"]
    other = x.copy()
    other[1:] *= 1000.0                          # an outlier elsewhere would move a per-tensor scale
    np.testing.assert_array_equal(_run(model, other)["y"][:1], alone)


def test_error_against_fp32_is_small_per_row(weights):
    w_up, _ = weights
    x = np.random.default_rng(3).standard_normal((64, K)).astype(np.float32)
    x[::7, 2] *= 50.0                            # outlier channels in some rows
    exact, approx = x @ w_up, reference(x, w_up)
    row_err = np.abs(approx - exact).max(1) / np.abs(exact).max(1)
    assert row_err.max() < 0.05 and np.median(row_err) < 0.02


def test_weight_quantization_is_symmetric_per_output_channel():
    w = np.array([[1.0, 0.0, -2.0], [-0.5, 0.0, 1.0]], np.float32)
    q, scale = quantize_weight(w)
    assert q.dtype == np.int8 and q.shape == w.shape
    np.testing.assert_allclose(scale, [1 / 127, 1.0, 2 / 127])          # an all-zero column gets scale 1
    np.testing.assert_array_equal(q[:, 0], [127, -64])
    np.testing.assert_array_equal(q[:, 1], [0, 0])


def test_gemm_with_transposed_weight_and_bias_is_rewritten_and_odd_gemms_are_not():
    rng = np.random.default_rng(4)
    w_t = (rng.standard_normal((N, K)) * 0.2).astype(np.float32)     # Gemm weight [N, K], transB=1
    bias = rng.standard_normal(N).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w_t", "bias"], ["y"], name="expert", transB=1),
             helper.make_node("Gemm", ["x", "w_t"], ["z"], name="scaled", transB=1, alpha=0.5)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", N]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["m", N])],
        [numpy_helper.from_array(w_t, "w_t"), numpy_helper.from_array(bias, "bias")])
    model, rewritten = quantize_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    onnx.checker.check_model(model)
    assert rewritten == 1                                            # alpha != 1: left fp32
    assert "w_t" in {t.name for t in model.graph.initializer}        # still read by the fp32 Gemm
    x = rng.standard_normal((7, K)).astype(np.float32)
    y, z = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y", "z"], {"x": x})
    np.testing.assert_allclose(y, reference(x, np.ascontiguousarray(w_t.T)) + bias, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(z, 0.5 * x @ w_t.T, rtol=1e-5, atol=1e-5)
