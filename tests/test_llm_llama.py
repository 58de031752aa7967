"""qlib.llm.llama and qlib.llm.perplexity: the numpy Llama forward pass of SmolLM2-135M."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_helpers import require_llm

require_llm()

import qlib.llm as L  # noqa: E402
from qlib.llm import llama as M  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return L.load_model()


# ----------------------------------------------------------------------------- pieces on tiny data
def test_rms_norm_unit_rms():
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32) * 5
    y = M.rms_norm(x, np.ones(8, np.float32), 0.0)
    np.testing.assert_allclose(np.sqrt((y**2).mean(axis=1)), 1.0, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(m=st.integers(0, 50), n=st.integers(0, 50), shift=st.integers(0, 1000), style=st.sampled_from(["normal", "neox"]))
def test_rope_scores_depend_on_position_difference_only(m, n, shift, style):
    rng = np.random.default_rng(m * 7 + n)
    q, k = rng.standard_normal((2, 1, 8)).astype(np.float32)

    def score(pq, pk):
        cq, sq = M.rope_angles([pq], 8, 10000.0)
        ck, sk = M.rope_angles([pk], 8, 10000.0)
        return (M.apply_rope(q, cq, sq, style) @ M.apply_rope(k, ck, sk, style).T).item()

    assert score(m, n) == pytest.approx(score(m + shift, n + shift), rel=1e-3, abs=1e-3)
    c, s = M.rope_angles([m], 8, 10000.0)
    assert np.linalg.norm(M.apply_rope(q, c, s, style)) == pytest.approx(np.linalg.norm(q), rel=1e-5)


def test_rope_styles_pair_different_elements():
    x = np.array([[1, 0, 0, 0]], np.float32)   # rotates into element 1 (adjacent) or 2 (halves)
    c, s = M.rope_angles([1], 4, 1.0)
    assert np.nonzero(np.round(M.apply_rope(x, c, s, "normal"), 6))[1].tolist() == [0, 1]
    assert np.nonzero(np.round(M.apply_rope(x, c, s, "neox"), 6))[1].tolist() == [0, 2]
    with pytest.raises(ValueError, match="adjacent pairs"):
        M.apply_rope(x, c, s, "gptj")


def _naive_attention(q, k, v):
    n_head, t, d = q.shape
    rep = n_head // k.shape[0]
    out = np.zeros_like(q, dtype=np.float64)
    for h in range(n_head):
        for i in range(t):
            sc = np.array([q[h, i] @ k[h // rep, j] / np.sqrt(d) for j in range(i + 1)], np.float64)
            p = np.exp(sc - sc.max())
            out[h, i] = (p / p.sum()) @ v[h // rep, :i + 1]
    return out


def test_gqa_attention_matches_a_loop():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((6, 5, 4)).astype(np.float32)
    k, v = rng.standard_normal((2, 2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(M.attention(q, k, v), _naive_attention(q, k, v), rtol=1e-5, atol=1e-6)
    # the last 2 queries with the 3 earlier keys already cached
    np.testing.assert_allclose(M.attention(q[:, 3:], k, v, past=3), _naive_attention(q, k, v)[:, 3:],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="evenly"):
        M.attention(q[:5], k, v)


# ----------------------------------------------------------------------------- the real model
def test_full_forward_equals_incremental_with_kv_cache(model):
    ids = L.encode("Quantization maps real numbers to a small set of integers.")
    full = M.forward(model, ids)
    cache = M.KVCache()
    parts = [M.forward(model, ids[:4], cache)] + [M.forward(model, [i], cache) for i in ids[4:]]
    assert cache.length == len(ids) and len(cache.k) == model.config.n_layer
    inc = np.concatenate(parts)
    assert full.shape == (len(ids), 49152) and full.dtype == np.float32
    np.testing.assert_allclose(inc, full, rtol=0, atol=1e-3 * np.abs(full).max())
    np.testing.assert_array_equal(inc.argmax(1), full.argmax(1))


def test_greedy_continuation_is_sensible_english(model):
    new = M.generate(model, L.encode("The capital of France is"), 3)
    assert L.decode(new).startswith(" Paris")


def test_rope_ordering_decided_by_perplexity(model):
    # llama.cpp's "normal" RoPE (adjacent pairs) on the converter-permuted Wq/Wk; halves break it
    w = L.eval_windows(starts=(10_000,), length=48)
    right = L.perplexity(model, w).perplexity
    wrong = L.perplexity(model, w, rope_style="neox").perplexity
    assert right < 40 and wrong > 5 * right


def test_tied_output_head(model):
    assert "output.weight" not in model.weights
    assert model.output_weight is model.weights["token_embd.weight"]


def test_bad_tokens(model):
    with pytest.raises(ValueError, match=r"\[0, 49151\]"):
        M.forward(model, [49152])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        M.forward(model, [])
    with pytest.raises(ValueError, match="n_new"):
        M.generate(model, [1], -1)


# ----------------------------------------------------------------------------- perplexity
def test_nll_and_perplexity_by_hand():
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
    nll = L.token_nll(logits, [0, 2])
    np.testing.assert_allclose(nll, [np.log(2), -np.log(0.8)])
    assert L.perplexity_from_nll(nll) == pytest.approx(np.sqrt(2 / 0.8))
    with pytest.raises(ValueError, match="at least one"):
        L.perplexity_from_nll([])
    with pytest.raises(ValueError, match="targets"):
        L.token_nll(logits, [0, 3])


def test_windows_fixed_and_checked():
    w = L.eval_windows()
    assert w.shape == (2, 256)
    np.testing.assert_array_equal(w[1], L.evaluation_tokens()[60_000:60_256])
    with pytest.raises(ValueError, match="does not fit"):
        L.eval_windows(starts=(10**7,))
    with pytest.raises(ValueError, match="at least 2 tokens"):
        L.eval_windows(length=1)
