"""Tests for qlib.adaround: the rectified sigmoid, the start point, the rounding's bounds, the loss, the MLP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlib.adaround import (
    GAMMA,
    ZETA,
    adaround_layer,
    adaround_mlp,
    beta_schedule,
    hard_codes,
    init_v,
    rectified_sigmoid,
    rectified_sigmoid_grad,
    reconstruction_loss,
    rounding_regularizer,
    rtn_mlp,
    soft_weight,
)
from qlib.data import load_digits
from qlib.linear import QParams, qparams_from_tensor, quantize
from qlib.nn import reference_model


@pytest.fixture(scope="module")
def mlp_w2():
    d = load_digits()
    m = reference_model()
    q, res = adaround_mlp(m, d.X_train[:256], bits=2, snapshots=(0, 1000))
    return d, m, q, res


def _layer(seed, n_out=6, n_in=12, n=96):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_out, n_in)), np.abs(rng.normal(size=(n, n_in)))


# ----------------------------------------------------------------------------- formulas
def test_rectified_sigmoid_by_hand():
    assert rectified_sigmoid(np.array(0.0)) == pytest.approx(0.5)                     # 0.5 * 1.2 - 0.1
    v = np.log(0.25 / 0.75)                                                           # sigmoid = 0.25
    assert rectified_sigmoid(np.array(v)) == pytest.approx(0.25 * (ZETA - GAMMA) + GAMMA)
    assert rectified_sigmoid(np.array([-5.0, 5.0])).tolist() == [0.0, 1.0]           # exactly 0 and 1
    assert rectified_sigmoid_grad(np.array([-5.0, 5.0])).tolist() == [0.0, 0.0]      # clipped: no gradient


def test_rectified_sigmoid_grad_matches_finite_differences():
    v = np.linspace(-2.0, 2.0, 9)
    eps = 1e-6
    num = (rectified_sigmoid(v + eps) - rectified_sigmoid(v - eps)) / (2 * eps)
    np.testing.assert_allclose(rectified_sigmoid_grad(v), num, rtol=1e-5)


def test_regularizer_and_beta_schedule():
    assert rounding_regularizer(np.array([0.0, 1.0, 0.5, 0.25]), 2.0) == pytest.approx(0 + 0 + 1 + 0.75)
    assert beta_schedule(19, 100) is None and beta_schedule(20, 100) == 20.0 and beta_schedule(100, 100) == 2.0
    betas = [beta_schedule(t, 100) for t in range(20, 101)]
    assert all(a >= b for a, b in zip(betas, betas[1:]))                             # monotone decay


def test_init_reproduces_w_before_any_step():
    W, _ = _layer(1)
    for qp in (qparams_from_tensor(W, bits=2, symmetric=True, axis=0), qparams_from_tensor(W, bits=4, symmetric=True)):
        V = init_v(W, qp)
        np.testing.assert_allclose(soft_weight(W, V, qp), W, rtol=0, atol=1e-12)
        h = rectified_sigmoid(V)
        r = W / (np.asarray(qp.scale).reshape(-1, 1) if qp.axis == 0 else qp.scale)
        np.testing.assert_allclose(h, r - np.floor(r), atol=1e-12)


def test_soft_weight_with_a_zero_point():
    qp = QParams(scale=0.5, zero_point=2, qmin=0, qmax=3, bits=2)     # codes 0..3 represent -1.0 .. 0.5
    W = np.array([[-0.9, 0.2, 0.45]])
    np.testing.assert_allclose(soft_weight(W, init_v(W, qp), qp), W, atol=1e-12)
    assert hard_codes(W, np.full((1, 3), 10.0), qp).tolist() == [[1, 3, 3]]          # all up; 0.45 up to 0.5


def test_reconstruction_loss_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert reconstruction_loss(np.eye(2), np.zeros((2, 2)), x) == pytest.approx((1 + 4) / 2)


# ----------------------------------------------------------------------------- properties
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.sampled_from([2, 3, 4]), per_channel=st.booleans())
def test_rounding_stays_within_floor_and_ceil(seed, bits, per_channel):
    W, x = _layer(seed)
    r = adaround_layer(W, x, bits=bits, per_channel=per_channel, iterations=60, seed=seed)
    qp = r.qp
    s = np.asarray(qp.scale).reshape(-1, 1) if qp.axis == 0 else qp.scale
    fl = np.floor(W / s)
    assert ((r.codes == fl) | (r.codes == fl + 1)).all()                  # down or up, nothing else
    assert (np.abs(r.weight - W) < s + 1e-12).all()                         # never a full step away
    assert r.codes.min() >= qp.qmin and r.codes.max() <= qp.qmax
    assert r.flipped <= 1.0 and r.h.min() >= 0 and r.h.max() <= 1


def test_adaround_beats_round_to_nearest_on_the_calibration_data():
    for seed in range(3):
        W, x = _layer(seed, n_out=16, n_in=32, n=256)
        r = adaround_layer(W, x, bits=3, seed=seed)
        assert r.loss_adaround <= r.loss_rtn
        assert r.loss_rtn == pytest.approx(reconstruction_loss(W, quantize(W, r.qp) * np.asarray(r.qp.scale).reshape(-1, 1), x))


def test_regularizer_pushes_h_to_zero_or_one():
    W, x = _layer(3, n_out=16, n_in=32, n=256)
    undecided = lambda h: float(((h > 0) & (h < 1)).mean())   # noqa: E731
    runs = {reg: adaround_layer(W, x, bits=3, reg=reg, snapshots=(0,)) for reg in (0.0, 0.01, 0.1, 1.0)}
    assert undecided(runs[0.1].h_history[0]) > 0.9          # the start: h = frac(W / S), almost never 0 or 1
    assert undecided(runs[0.0].h) > 0.9                      # without the regulariser almost all stay in between
    left = [undecided(runs[reg].h) for reg in (0.0, 0.01, 0.1, 1.0)]
    assert all(a > b for a, b in zip(left, left[1:]))        # the stronger lambda, the more are decided ...
    assert left[-1] == 0.0                                   # ... lambda = 1: every h is exactly 0 or 1


def test_deterministic_for_a_seed():
    W, x = _layer(4)
    a, b = adaround_layer(W, x, bits=2, iterations=50, seed=7), adaround_layer(W, x, bits=2, iterations=50, seed=7)
    assert np.array_equal(a.codes, b.codes) and a.loss_history == b.loss_history


# ----------------------------------------------------------------------------- the MLP
def test_mlp_w2_layers_beat_rtn_and_reach_the_target(mlp_w2):
    d, m, q, res = mlp_w2
    assert list(res) == ["fc1", "fc2", "fc3"]
    assert all(r.loss_adaround <= r.loss_rtn for r in res.values())
    assert q.accuracy(d.X_test, d.y_test) >= 0.85                                  # issue 15's target
    assert rtn_mlp(m, bits=2).accuracy(d.X_test, d.y_test) < 0.75                  # RTN breaks it (about 65 %)
    assert all(np.array_equal(lq.b, lf.b) for lq, lf in zip(q.linear_layers, m.linear_layers))


def test_mlp_layers_see_the_quantized_inputs(mlp_w2):
    """fc2's AdaRound loss is measured with inputs from the AdaRounded fc1 (not the float ones)."""
    d, m, q, res = mlp_w2
    X = d.X_train[:256]
    x_f = m.activations(X)["relu1"]
    x_q = q.activations(X)["relu1"]
    assert res["fc2"].loss_adaround == pytest.approx(reconstruction_loss(m.layers[2].W, res["fc2"].weight, x_f, x_q))


def test_rtn_mlp_equals_nearest_rounding():
    m = reference_model()
    r = rtn_mlp(m, bits=3)
    for lf, lq in zip(m.linear_layers, r.linear_layers):
        qp = qparams_from_tensor(lf.W, bits=3, symmetric=True, axis=0)
        np.testing.assert_allclose(lq.W, quantize(lf.W, qp) * qp.scale.reshape(-1, 1), rtol=1e-6)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_value_errors():
    W, x = _layer(0)
    with pytest.raises(ValueError, match="2-D"):
        adaround_layer(W[0], x)
    with pytest.raises(ValueError, match="n_samples"):
        adaround_layer(W, x[:, :3])
    with pytest.raises(ValueError, match="iterations"):
        adaround_layer(W, x, iterations=0)
    with pytest.raises(ValueError, match="beta_range"):
        adaround_layer(W, x, beta_range=(2, 20))
    with pytest.raises(ValueError, match="lr"):
        adaround_layer(W, x, lr=-1)
    with pytest.raises(ValueError, match="bits"):
        adaround_layer(W, x, bits=1)
    with pytest.raises(ValueError, match="axis=0"):
        adaround_layer(W, x, qp=qparams_from_tensor(W, symmetric=True, axis=1))
    with pytest.raises(ValueError, match="zeta"):
        rectified_sigmoid(np.zeros(2), zeta=0.9)
    with pytest.raises(ValueError, match="beta"):
        rounding_regularizer(np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="qlib.nn.MLP"):
        adaround_mlp("net", x)
    with pytest.raises(ValueError, match="'quantized' or 'float'"):
        adaround_mlp(reference_model(), np.zeros((4, 64)), inputs="mixed")
