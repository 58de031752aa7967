"""Tests for qlib.bias_correction: hand-computed shifts, the Gaussian-ReLU mean, the MLP pipeline, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlib.bias_correction import (
    analytic_output_shift,
    bias_correct_mlp,
    correct_bias,
    empirical_output_shift,
    mean_output_shift,
    normal_cdf,
    relu_gaussian_mean,
)
from qlib.data import load_digits
from qlib.nn import reference_model
from qlib.ptq import weight_only_model


@pytest.fixture(scope="module")
def setup():
    d = load_digits()
    m = reference_model()
    return d, m, weight_only_model(m, bits=2, per_channel=True)


# ----------------------------------------------------------------------------- formulas by hand
def test_analytic_shift_by_hand():
    W = np.array([[1.0, 2.0, -1.0], [0.3, 0.0, 0.7]])
    W_q = np.array([[1.25, 1.75, -1.0], [0.5, 0.0, 0.5]])     # errors +0.25, -0.25, 0 | +0.2, 0, -0.2
    shift = analytic_output_shift(W, W_q, [2.0, 1.0, 5.0])
    np.testing.assert_allclose(shift, [0.25 * 2 - 0.25 * 1, 0.2 * 2 - 0.2 * 5], atol=1e-12)   # [0.25, -0.6]


def test_empirical_shift_by_hand_with_quantized_inputs():
    W = np.array([[1.0, 2.0]])
    W_q = np.array([[1.5, 2.0]])
    x = np.array([[1.0, 0.0], [3.0, 2.0]])                    # float outputs 1, 7: mean 4
    x_q = np.array([[1.0, 1.0], [3.0, 3.0]])                  # quantized outputs 3.5, 10.5: mean 7
    assert empirical_output_shift(W, W_q, x, x_q).tolist() == [3.0]
    assert empirical_output_shift(W, W_q, x).tolist() == [1.0]  # same inputs: 0.5 * mean(x_0) = 0.5 * 2


def test_correct_bias_subtracts_and_keeps_dtype():
    b = np.array([1.0, -2.0], np.float32)
    out = correct_bias(b, [0.5, -0.5])
    assert out.dtype == np.float32 and out.tolist() == [0.5, -1.5] and b.tolist() == [1.0, -2.0]


def test_relu_gaussian_mean_by_hand():
    # mu = 0: E = sigma * phi(0) = sigma / sqrt(2 pi); mu = 1, sigma = 1: Phi(1) + phi(1)
    assert relu_gaussian_mean(0.0, 2.0) == pytest.approx(2.0 / math.sqrt(2 * math.pi), rel=1e-12)
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    Phi1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    assert relu_gaussian_mean(1.0, 1.0) == pytest.approx(Phi1 + phi1, rel=1e-12)
    assert relu_gaussian_mean(-30.0, 1.0) == pytest.approx(0.0, abs=1e-12)   # all mass below 0
    assert relu_gaussian_mean(30.0, 1.0) == pytest.approx(30.0, rel=1e-12)   # all mass above 0
    assert normal_cdf(0.0) == 0.5


def test_relu_gaussian_mean_matches_samples():
    rng = np.random.default_rng(0)
    mu, sigma = np.array([-1.0, 0.0, 0.5, 2.0]), np.array([1.0, 0.5, 2.0, 0.3])
    z = rng.normal(mu, sigma, size=(400_000, 4))
    np.testing.assert_allclose(np.maximum(z, 0).mean(axis=0), relu_gaussian_mean(mu, sigma), atol=5e-3)


# ----------------------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_out=st.integers(1, 6), n_in=st.integers(1, 8), n=st.integers(1, 40))
def test_empirical_correction_zeroes_the_mean_shift(seed, n_out, n_in, n):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_out, n_in))
    W_q = np.round(W * 2) / 2
    b = rng.normal(size=n_out)
    x = np.abs(rng.normal(size=(n, n_in)))
    x_q = x + rng.normal(scale=0.1, size=x.shape)
    b_c = correct_bias(b, empirical_output_shift(W, W_q, x, x_q))
    after = (x_q @ W_q.T + b_c).mean(axis=0) - (x @ W.T + b).mean(axis=0)
    np.testing.assert_allclose(after, 0.0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_out=st.integers(1, 6), n_in=st.integers(1, 8), n=st.integers(1, 40))
def test_analytic_equals_empirical_when_the_mean_is_the_data_mean(seed, n_out, n_in, n):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_out, n_in))
    W_q = np.round(W * 4) / 4
    x = np.abs(rng.normal(size=(n, n_in)))
    np.testing.assert_allclose(analytic_output_shift(W, W_q, x.mean(axis=0)),
                               empirical_output_shift(W, W_q, x), atol=1e-10)


# ----------------------------------------------------------------------------- the MLP
@pytest.mark.parametrize("inputs", ["quantized", "float"])
def test_bias_correct_mlp_zeroes_the_shift_it_measures(setup, inputs):
    d, m, q = setup
    X = d.X_train[:256]
    bc = bias_correct_mlp(m, q, X, inputs=inputs)
    if inputs == "quantized":      # end to end through the corrected network: every layer's mean matches
        assert max(mean_output_shift(m, bc, X).values()) < 1e-5
    else:                           # each layer fed the float activations
        acts = m.activations(X)
        prev = "input"
        for lf, lq in zip(m.linear_layers, bc.linear_layers):
            y_f = acts[prev] @ lf.W.T + lf.b
            y_q = acts[prev] @ lq.W.T + lq.b
            assert np.abs(y_q.mean(axis=0) - y_f.mean(axis=0)).max() < 1e-4
            prev = {"fc1": "relu1", "fc2": "relu2"}.get(lf.name)
    assert all(np.array_equal(a.W, b.W) for a, b in zip(q.linear_layers, bc.linear_layers))   # weights untouched
    assert not np.array_equal(q.layers[0].b, bc.layers[0].b)                                  # qmodel not modified


def test_bias_correction_cuts_the_held_out_shift_5x_at_w2(setup):
    d, m, q = setup
    bc = bias_correct_mlp(m, q, d.X_train[:256])
    before = np.mean(list(mean_output_shift(m, q, d.X_test).values()))
    after = np.mean(list(mean_output_shift(m, bc, d.X_test).values()))
    assert after * 5 <= before


def test_gaussian_assumption_gives_close_input_means(setup):
    """Analytic correction with E[relu1] from fc1's per-channel mean/std (Gaussian assumption)."""
    d, m, q = setup
    a = m.activations(d.X_train[:256])
    z = a["fc1"].astype(np.float64)
    est = relu_gaussian_mean(z.mean(axis=0), z.std(axis=0))
    shift_a = analytic_output_shift(m.layers[2].W, q.layers[2].W, est)
    shift_e = empirical_output_shift(m.layers[2].W, q.layers[2].W, a["relu1"])
    assert np.corrcoef(shift_a, shift_e)[0, 1] > 0.9


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_value_errors(setup):
    d, m, q = setup
    W = np.ones((2, 3))
    with pytest.raises(ValueError, match="same shape|has shape"):
        analytic_output_shift(W, np.ones((3, 2)), [1, 1, 1])
    with pytest.raises(ValueError, match="one mean per input"):
        analytic_output_shift(W, W, [1, 1])
    with pytest.raises(ValueError, match="inputs of the layer"):
        empirical_output_shift(W, W, np.ones((4, 2)))
    with pytest.raises(ValueError, match="sigma"):
        relu_gaussian_mean(0.0, -1.0)
    with pytest.raises(ValueError, match="NaN|inf|finite"):
        relu_gaussian_mean(np.nan, 1.0)
    with pytest.raises(ValueError, match="one shift per output"):
        correct_bias(np.zeros(2), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="'quantized' or 'float'"):
        bias_correct_mlp(m, q, d.X_train[:8], inputs="both")
    with pytest.raises(ValueError, match="qlib.nn.MLP"):
        bias_correct_mlp(m, "model", d.X_train[:8])
    with pytest.raises(ValueError, match="empty|at least one sample"):
        bias_correct_mlp(m, q, np.zeros((0, 64)))
