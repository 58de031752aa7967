"""Tests for qlib.ptq: the integer-exact simulation by hand, the pipeline's structure, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from qlib.data import load_digits
from qlib.linear import QParams, dequantize, fake_quantize, quantize
from qlib.nn import MLP, Linear, ReLU, reference_model
from qlib.ptq import (
    QuantLinear,
    QuantizedMLP,
    calibration_batches,
    collect_activations,
    dynamic_quant_accuracy,
    layer_sensitivity,
    quantize_bias,
    quantize_mlp,
    requantize,
    weight_only_model,
)


@pytest.fixture(scope="module")
def setup():
    d = load_digits()
    m = reference_model()
    acts = collect_activations(m, d.X_train[:256])
    return d, m, acts


def _qp(scale, zp, bits=8, signed=False):
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return QParams(scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, bits=bits)


# ----------------------------------------------------------------------------- by hand
def test_requantize_by_hand():
    # 100 * 0.01 = 1 -> +3 = 4; -7 * 0.01 = -0.07 -> 0 -> 3; 1000 * 0.01 = 10 -> 13
    assert requantize(np.array([[100, -7, 1000]]), 0.01, 3, 0, 255).tolist() == [[4, 3, 13]]
    # 2.5 -> 2 and -2.5 -> -2 (ties to even); clamp at the ends
    assert requantize(np.array([250, -250, 99999, -99999]), 0.01, 0, -128, 127).tolist() == [2, -2, 127, -128]
    with pytest.raises(ValueError, match="integers"):
        requantize(np.array([1.5]), 0.1, 0, 0, 255)


def test_quant_linear_by_hand():
    # in codes [3, 5] with Z_in = 1 -> [2, 4]; weights [[2, -1], [1, 1]] (Z = 0); bias [10, -3]
    # acc = [2*2 - 4 + 10, 2 + 4 - 3] = [10, 3]; M = 0.5 * 0.2 / 0.1 = 1.0 -> codes [10 + 5, 3 + 5]
    layer = QuantLinear("fc", np.array([[2, -1], [1, 1]], np.int8), _qp(0.2, 0, signed=True),
                        np.array([10, -3], np.int32), np.array([0.1, 0.1]), _qp(0.5, 1), _qp(0.1, 5), relu=False)
    assert layer.multiplier == pytest.approx(1.0)
    assert layer.accumulate(np.array([[3, 5]], np.uint8)).tolist() == [[10, 3]]
    assert layer.forward_codes(np.array([[3, 5]], np.uint8)).tolist() == [[15, 8]]
    # a negative accumulator: plain clamps at qmin = 0, a fused ReLU clamps at Z_out = 5
    q = np.array([[1, 30]], np.uint8)               # [0, 29]: acc = [-29 + 10, 29 - 3] = [-19, 26]
    assert layer.forward_codes(q).tolist() == [[0, 31]]
    layer.relu = True
    assert layer.forward_codes(q).tolist() == [[5, 31]]


def test_no_uint8_or_int8_wraparound():
    # 200 * -100 = -20000 would wrap in int8/uint8/int16 arithmetic
    layer = QuantLinear("fc", np.array([[-100]], np.int8), _qp(1.0, 0, signed=True), np.array([0], np.int32),
                        np.array([1.0]), _qp(1.0, 0), _qp(100.0, 200), relu=False)
    assert layer.accumulate(np.array([[200]], np.uint8)).tolist() == [[-20000]]
    assert layer.forward_codes(np.array([[200]], np.uint8)).tolist() == [[0]]   # -200 + 200


def test_quantize_bias_32_and_8_bits():
    b, s = np.array([0.5, -0.2]), np.array([1e-4, 1e-4])
    codes, own, own_qp = quantize_bias(b, s, 32)
    assert codes.dtype == np.int32 and codes.tolist() == [5000, -2000] and own is None
    codes8, own8, qb = quantize_bias(b, s, 8)
    # own encoding [-0.2, 0.5]: S_b = 0.7/255, Z_b = round(0.2 / S_b) = round(72.86) = 73
    assert qb.zero_point == 73 and own8.dtype == np.uint8 and own8.tolist() == [255, 0]
    assert codes8.tolist() == [round(182 * 0.7 / 255 / 1e-4), round(-73 * 0.7 / 255 / 1e-4)]
    zero_codes, _, _ = quantize_bias(np.zeros(3), np.ones(3), 8)      # zero bias: legal
    assert zero_codes.tolist() == [0, 0, 0]


def test_tiny_mlp_against_fake_quant_float_path():
    rng = np.random.default_rng(0)
    m = MLP(layers=[Linear(rng.normal(size=(6, 4)), rng.normal(size=6) * 0.1, "fc1"), ReLU("relu1"),
                    Linear(rng.normal(size=(3, 6)), rng.normal(size=3) * 0.1, "fc2")])
    x = rng.normal(size=(200, 4)).astype(np.float32)
    for per_channel in (False, True):
        qm = quantize_mlp(m, x, w_bits=8, a_bits=8, per_channel=per_channel, batch_size=37)
        # float path: dequantize every integer quantity and redo the layer in float64
        codes = qm.tensor_codes(x)
        for k, L in enumerate(qm.layers):
            q_in = codes["input"] if k == 0 else codes[qm.layers[k - 1].name]
            xin = dequantize(q_in, L.in_qp)
            y = xin @ L.dequantized_weight().T + L.dequantized_bias()
            if L.relu:
                y = np.maximum(y, 0.0)
            expect = quantize(y, L.out_qp).astype(np.int64)
            got = codes[L.name].astype(np.int64)
            assert np.abs(got - expect).max() <= 1 and (got != expect).mean() < 0.01


# ----------------------------------------------------------------------------- pipeline
def test_structure_and_chaining(setup):
    d, m, acts = setup
    qm = quantize_mlp(m, d.X_train[:256], w_bits=8, a_bits=8, per_channel=True)
    assert [L.name for L in qm.layers] == ["fc1", "fc2", "fc3"]
    assert [L.relu for L in qm.layers] == [True, True, False]
    for prev, nxt in zip(qm.layers, qm.layers[1:]):
        assert nxt.in_qp is prev.out_qp
    for L, lin in zip(qm.layers, m.linear_layers):
        assert L.w_codes.shape == lin.W.shape and L.w_codes.dtype == np.int8
        assert np.all(np.asarray(L.w_qp.zero_point) == 0) and L.w_qp.axis == 0
        assert L.bias_codes.dtype == np.int32 and L.bias_scale.dtype == np.float64
        assert L.bias_scale == pytest.approx(L.in_qp.scale * L.w_qp.scale)
    # post-ReLU tensors are unsigned with Z = 0; the logits are not
    assert qm.layers[0].out_qp.zero_point == 0 and qm.layers[0].out_qp.qmin == 0
    assert qm.layers[2].out_qp.zero_point > 0
    assert set(qm.observers) == {"input", "relu1", "relu2", "fc3"}


def test_per_tensor_bias_scale_is_broadcast(setup):
    d, m, acts = setup
    qm = quantize_mlp(m, None, activations=acts)
    L = qm.layers[1]
    assert L.bias_scale.shape == (64,) and np.all(L.bias_scale == L.bias_scale[0])


def test_accuracy_w8a8_close_to_fp32_and_2bit_hurts(setup):
    d, m, acts = setup
    fp32 = m.accuracy(d.X_test, d.y_test)
    w8a8 = quantize_mlp(m, None, 8, 8, activations=acts).accuracy(d.X_test, d.y_test)
    w2a8 = quantize_mlp(m, None, 2, 8, activations=acts).accuracy(d.X_test, d.y_test)
    assert abs(w8a8 - fp32) <= 0.01
    assert w2a8 < fp32 - 0.1


@pytest.mark.parametrize("cal", ["minmax", "ema", "percentile", "entropy", "kl", "mse"])
def test_every_calibrator_runs(setup, cal):
    d, m, acts = setup
    qm = quantize_mlp(m, None, 8, 8, calibrator=cal, activations=acts, input_calibrator="minmax")
    assert qm.accuracy(d.X_test, d.y_test) > 0.95
    assert qm.observers["input"].__class__.__name__ == "MinMaxObserver"


def test_mixed_precision_bits(setup):
    d, m, acts = setup
    qm = quantize_mlp(m, None, w_bits=8, a_bits=8, layer_bits={"fc2": (4, 3)}, activations=acts)
    assert [L.w_qp.bits for L in qm.layers] == [8, 4, 8]
    assert [L.out_qp.bits for L in qm.layers] == [8, 3, 8]
    assert qm.layers[2].in_qp.bits == 3 and qm.layers[0].in_qp.bits == 8
    assert quantize_mlp(m, None, 8, 4, input_bits=8, activations=acts).layers[0].in_qp.bits == 8


def test_bias_8_bits_changes_codes(setup):
    d, m, acts = setup
    q32 = quantize_mlp(m, None, activations=acts, bias_bits=32)
    q8 = quantize_mlp(m, None, activations=acts, bias_bits=8)
    for a, b, lin in zip(q32.layers, q8.layers, m.linear_layers):
        err32 = np.abs(a.dequantized_bias() - lin.b).max()
        err8 = np.abs(b.dequantized_bias() - lin.b).max()
        assert err32 <= a.bias_scale.max() / 2 * 1.0001 and err8 >= err32
        assert b.bias_own_codes.dtype == np.uint8 and b.bias_bits == 8


def test_fewer_calibration_batches(setup):
    d, m, acts = setup
    qm = quantize_mlp(m, d.X_train, batch_size=50, n_batches=2)
    assert qm.observers["input"].n_batches == 2 and qm.observers["input"].n_values == 100 * 64
    assert [b.shape[0] for b in calibration_batches(d.X_train[:130], 50)] == [50, 50, 30]


def test_inputs_not_mutated(setup):
    d, m, _ = setup
    x = np.array(d.X_train[:64])
    w = [lin.W.copy() for lin in m.linear_layers]
    quantize_mlp(m, x, 4, 4, per_channel=True, calibrator="entropy")
    assert np.array_equal(x, d.X_train[:64])
    assert all(np.array_equal(a, lin.W) for a, lin in zip(w, m.linear_layers))


def test_bad_inputs(setup):
    d, m, acts = setup
    with pytest.raises(ValueError, match="layer_bits"):
        quantize_mlp(m, None, layer_bits={"fc9": (4, 4)}, activations=acts)
    with pytest.raises(ValueError, match="pair"):
        quantize_mlp(m, None, layer_bits={"fc1": 4}, activations=acts)
    with pytest.raises(ValueError, match="bits"):
        quantize_mlp(m, None, w_bits=1, activations=acts)
    with pytest.raises(ValueError, match="calibrator"):
        quantize_mlp(m, None, calibrator="magic", activations=acts)
    with pytest.raises(ValueError):
        quantize_mlp(m, np.full((4, 64), np.nan))
    with pytest.raises(ValueError, match="empty"):
        quantize_mlp(m, np.zeros((0, 64), np.float32))
    with pytest.raises(ValueError, match="MLP"):
        quantize_mlp("model", d.X_train[:8])
    with pytest.raises(ValueError, match="batch_size"):
        calibration_batches(d.X_train[:8], batch_size=0)


# ----------------------------------------------------------------------------- helpers
def test_weight_only_and_dynamic(setup):
    d, m, _ = setup
    w4 = weight_only_model(m, bits=4)
    assert all(len(np.unique(lin.W[0])) <= 16 for lin in w4.linear_layers)
    assert np.array_equal(m.linear_layers[0].W, reference_model().linear_layers[0].W)
    assert dynamic_quant_accuracy(m, d.X_test, d.y_test, 8, 8) >= m.accuracy(d.X_test, d.y_test) - 0.01


def test_layer_sensitivity_rows(setup):
    d, m, acts = setup
    rows = layer_sensitivity(m, None, d.X_test, d.y_test, w_bits=2, a_bits=8, activations=acts)
    assert [r[0] for r in rows] == ["fc1", "fc2", "fc3"]
    for name, sqnr, acc in rows:
        assert np.isfinite(sqnr) and 0.0 <= acc <= 1.0
    # near-float baseline: every layer at 16 bits is practically lossless
    base = quantize_mlp(m, None, 16, 16, activations=acts)
    assert abs(base.accuracy(d.X_test, d.y_test) - m.accuracy(d.X_test, d.y_test)) <= 0.005
    assert isinstance(base, QuantizedMLP)


def test_fake_quant_float_path_matches_whole_model(setup):
    d, m, acts = setup
    qm = quantize_mlp(m, None, 4, 4, per_channel=True, activations=acts)
    # the dequantized logits are the out_qp grid values
    out = qm.forward(d.X_test[:50])
    assert np.array_equal(out, fake_quantize(out, qm.layers[-1].out_qp))
