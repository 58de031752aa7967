"""qlib.llm.rtn: round-to-nearest group-wise weight quantization of the LLM's linear layers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_helpers import require_llm

require_llm()

import qlib  # noqa: E402
import qlib.llm as L  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return L.load_model()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), bits=st.sampled_from([2, 3, 4, 8]), g=st.sampled_from([8, 16, 32]),
       sym=st.booleans())
def test_rtn_is_the_course_block_quantizer(seed, bits, g, sym):
    w = np.random.default_rng(seed).standard_normal((3, 64)).astype(np.float32)
    got = L.rtn_weight(w, bits, g, sym)
    assert got.dtype == np.float32 and got.shape == w.shape
    # each group of g inputs uses at most 2^bits values and the error is at most half a step
    qp = qlib.qparams_from_tensor(w, bits=bits, symmetric=sym, axis=1, group_size=g)
    step = np.repeat(qp.scale, g, axis=1)
    assert (np.abs(got - w) <= step / 2 * (1 + 1e-5)).all()
    for row in got.reshape(-1, g):
        assert np.unique(row).size <= 2**bits


def test_rtn_hand_values():
    w = np.array([[-2.0, -1.0, 0.0, 1.2]], np.float32)
    # symmetric 3 bits: S = 2/3, codes round(w/S) = -3, -2 (−1.5 → −2, half-even), 0, 2
    np.testing.assert_allclose(L.rtn_weight(w, 3, 4, symmetric=True), [[-2.0, -4 / 3, 0.0, 4 / 3]], rtol=1e-6)


def test_bits_per_weight_counts_scales():
    assert L.rtn_bits_per_weight(4, 64) == 4 + 20 / 64
    assert L.rtn_bits_per_weight(3, 32, symmetric=True) == 3.5
    assert L.rtn_bits_per_weight(4, 128, symmetric=True) == 4.125


def test_rtn_model_replaces_every_linear_only(model):
    q = L.rtn_model(model, bits=4, group_size=64)
    names = L.linear_weight_names(model)
    assert len(names) == 30 * 7
    for n in names[:7]:
        assert not np.array_equal(q.weights[n], model.weights[n])
        assert q.weights[n].dtype == np.float32
    assert q.weights["token_embd.weight"] is model.weights["token_embd.weight"]
    assert q.weights["blk.0.attn_norm.weight"] is model.weights["blk.0.attn_norm.weight"]
    # 4-bit groups of 64 within each row of a Q4_1 (groups of 32) weight: at most 16 levels per group
    assert np.unique(q.weights[names[0]][0, :64]).size <= 16


def test_q4_1_grid_has_a_real_offset_not_an_integer_zero_point(model):
    w = model.weights["blk.0.ffn_gate.weight"].astype(np.float64).reshape(-1, 32)
    lo, hi = w.min(1, keepdims=True), w.max(1, keepdims=True)
    d = (hi - lo) / 15
    np.testing.assert_array_equal(lo + d * np.rint((w - lo) / d), w)  # x = d*q + m: exactly Q4_1's grid
    again = L.rtn_weight(model.weights["blk.0.ffn_gate.weight"], 4, 32).reshape(-1, 32)
    assert (again != w).mean() > 0.5  # integer Z (real 0 exact) shifts the grid


def test_fewer_bits_hurt_more(model):
    w = L.eval_windows(starts=(10_000,), length=32)
    fp = L.perplexity(model, w).perplexity
    w4 = L.perplexity(L.rtn_model(model, 4, 64), w).perplexity
    w2 = L.perplexity(L.rtn_model(model, 2, 64), w).perplexity
    assert fp < w4 < w2


def test_group_128_does_not_divide_576(model):
    with pytest.raises(ValueError, match="group_size=128 does not divide axis 1 of length 576"):
        L.rtn_model(model, 4, 128)


def test_bad_inputs():
    with pytest.raises(ValueError, match="2-D"):
        L.rtn_weight(np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="does not divide"):
        L.rtn_weight(np.zeros((2, 48), np.float32), group_size=64)
