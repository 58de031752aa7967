"""Tests for qlib.adaround_conv: im2col convs equal ONNX Runtime's Conv, AdaRound codes stay
within floor/ceil, bias correction zeroes the mean per-channel output shift on the calibration data."""

from __future__ import annotations

import numpy as np
import pytest

from qlib import adaround_conv as ac
from qlib.onnx_graph import initializers, weight_qparams


def _conv_model(W, b, strides, pads, dilations, group, shape, relu_first=False):
    """A tiny ONNX graph: x -> (Relu) -> Conv(W, b) -> y, and optionally a second 1x1 conv."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inp = [], "x"
    if relu_first:
        nodes.append(helper.make_node("Relu", ["x"], ["xr"]))
        inp = "xr"
    ins = [inp, "W"] + (["b"] if b is not None else [])
    nodes.append(helper.make_node("Conv", ins, ["y"], strides=list(strides), pads=list(pads),
                                  dilations=list(dilations), group=group, kernel_shape=list(W.shape[2:])))
    inits = [numpy_helper.from_array(W.astype(np.float32), "W")]
    if b is not None:
        inits.append(numpy_helper.from_array(b.astype(np.float32), "b"))
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _two_convs(seed=0):
    """x -> Relu -> Conv 3x3 (stride 2, pad 1, 6 -> 8) -> Relu -> depthwise 3x3 -> Relu -> 1x1 (no bias)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    W1, b1 = rng.normal(size=(8, 6, 3, 3)) * 0.3, rng.normal(size=8) * 0.1
    W2, b2 = rng.normal(size=(8, 1, 3, 3)) * 0.3, rng.normal(size=8) * 0.1
    W3 = rng.normal(size=(4, 8, 1, 1)) * 0.3
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Conv", ["a", "W1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=8),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "W3"], ["y"])]
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in
             (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2), ("W3", W3))]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6, 10, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m, rng.normal(size=(6, 6, 10, 12)).astype(np.float32) + 0.3


@pytest.mark.parametrize("strides,pads,dilations,group,k", [
    ((1, 1), (0, 0, 0, 0), (1, 1), 1, (1, 1)),
    ((2, 2), (1, 1, 1, 1), (1, 1), 1, (3, 3)),
    ((2, 1), (2, 0, 1, 2), (1, 1), 2, (3, 2)),
    ((1, 2), (2, 2, 2, 2), (2, 1), 4, (5, 3)),          # depthwise (C = group = 4), dilation
])
def test_im2col_conv_equals_onnx_runtime(strides, pads, dilations, group, k):
    from qlib.realmodel import session

    rng = np.random.default_rng(1)
    C, out = 4, 4 if group == 4 else 6
    W = rng.normal(size=(out, C // group) + k).astype(np.float32)
    b = rng.normal(size=out).astype(np.float32)
    x = rng.normal(size=(2, C, 9, 11)).astype(np.float32)
    y_ort = session(_conv_model(W, b, strides, pads, dilations, group, x.shape)).run(None, {"x": x})[0]
    y = ac.conv2d(x, W, b, strides, pads, dilations, group)
    assert y.shape == y_ort.shape
    np.testing.assert_allclose(y, y_ort, rtol=1e-4, atol=1e-4)


def test_im2col_by_hand_and_bad_inputs():
    cols, (oh, ow) = ac.im2col(np.arange(9.0).reshape(1, 1, 3, 3), (2, 2), pads=(1, 1, 0, 0))
    assert (oh, ow) == (3, 3) and cols[0].tolist() == [0.0, 0.0, 0.0, 0.0] and cols[4].tolist() == [0.0, 1.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="N, C, H, W"):
        ac.im2col(np.ones((3, 3)), (1, 1))
    with pytest.raises(ValueError, match="does not fit"):
        ac.im2col(np.ones((1, 1, 2, 2)), (3, 3))
    with pytest.raises(ValueError, match="pads"):
        ac.im2col(np.ones((1, 1, 4, 4)), (1, 1), pads=(1, 1))
    with pytest.raises(ValueError, match="groups must divide"):
        ac.group_slices(4, 6, 4)


def test_conv_specs_of_the_small_graph():
    m, _ = _two_convs()
    specs = ac.conv_specs(m)
    assert [s.weight for s in specs] == ["W1", "W2", "W3"]
    assert [s.depthwise for s in specs] == [False, True, False]
    assert specs[0].strides == (2, 2) and specs[0].pads == (1, 1, 1, 1) and specs[2].bias is None


@pytest.fixture(scope="module")
def adarounded():
    m, x = _two_convs()
    rtn = ac.rtn_convs(m, bits=3)
    ar, res = ac.adaround_convs(m, rtn, x, bits=3, iterations=150, max_rows=256, skip_depthwise=False)
    return m, x, rtn, ar, res


def test_adaround_codes_within_floor_and_ceil(adarounded):
    m, _, _, ar, res = adarounded
    init, init_ar = initializers(m), initializers(ar)
    assert sorted(res) == ["W1", "W2", "W3"] and len(res["W2"]) == 8      # depthwise: one result per group
    for name in res:
        W = init[name].astype(np.float64)
        qp = weight_qparams(W, 3, "per-channel")
        s = np.asarray(qp.scale).reshape(-1, 1, 1, 1)
        codes = np.rint(init_ar[name] / s)
        np.testing.assert_allclose(codes * s, init_ar[name], rtol=0, atol=1e-6)   # on the grid
        assert (codes >= np.floor(W / s) - 1e-9).all() and (codes <= np.ceil(W / s) + 1e-9).all()
        assert (np.abs(codes) <= qp.qmax).all()


def test_adaround_reconstructs_better_than_rtn_and_skips_depthwise(adarounded):
    m, x, rtn, _, res = adarounded
    assert res["W1"][0].loss_adaround < 0.8 * res["W1"][0].loss_rtn       # 3x3 conv, 54 weights per row
    everything = [r for v in res.values() for r in v]
    assert sum(r.loss_adaround for r in everything) < sum(r.loss_rtn for r in everything)
    ar2, res2 = ac.adaround_convs(m, rtn, x, bits=3, iterations=20, max_rows=64)
    assert sorted(res2) == ["W1", "W3"]
    assert np.array_equal(initializers(ar2)["W2"], initializers(rtn)["W2"])


@pytest.mark.parametrize("inputs", ["float", "quantized"])
def test_bias_correction_zeroes_the_mean_output_shift(inputs):
    m, x = _two_convs()
    rtn = ac.rtn_convs(m, bits=3)
    bc, shifts = ac.bias_correct_convs(m, rtn, x, inputs=inputs)
    assert sorted(shifts) == ["W1", "W2", "W3"]
    assert "W3_bias" in initializers(bc)                     # the bias-less conv got a bias
    before = ac.conv_output_shifts(m, rtn, x)
    after = ac.conv_output_shifts(m, bc, x)
    assert before["W1"] > 1e-3
    if inputs == "quantized":         # every conv's mean output equals the float one on the calibration data
        assert max(after.values()) < 1e-5
    else:                             # the first conv sees float inputs either way; later ones only their own error
        assert after["W1"] < 1e-5
        assert sum(after.values()) < sum(before.values())


def test_bad_inputs_raise_value_errors():
    m, x = _two_convs()
    rtn = ac.rtn_convs(m, bits=3)
    with pytest.raises(ValueError, match="unknown conv"):
        ac.bias_correct_convs(m, rtn, x, layers=["nope"])
    with pytest.raises(ValueError, match="inputs must be"):
        ac.bias_correct_convs(m, rtn, x, inputs="fp32")
    with pytest.raises(ValueError, match="batch of images"):
        ac.adaround_convs(m, rtn, x[0], iterations=5)
    with pytest.raises(ValueError, match="max_rows"):
        ac.adaround_convs(m, rtn, x, max_rows=0)


@pytest.mark.parametrize("k,strides,pads,dilations", [((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
                                                     ((5, 3), (2, 1), (2, 0, 1, 2), (1, 2))])
def test_patch_means_equal_the_mean_of_im2col(k, strides, pads, dilations):
    x = np.random.default_rng(3).normal(size=(3, 4, 9, 11))
    np.testing.assert_allclose(ac.patch_means(x, k, strides, pads, dilations),
                               ac.im2col(x, k, strides, pads, dilations)[0].mean(axis=0), rtol=1e-12, atol=1e-12)
