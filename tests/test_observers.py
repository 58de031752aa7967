"""Tests for qlib.observers: hand-computed values, a loop-by-loop KL reference, properties, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import qlib
from qlib.linear import MIN_SCALE, quantize
from qlib.observers import (
    AbsHistogram,
    EntropyObserver,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
    PerChannelMinMaxObserver,
    ema_update,
    kl_distributions,
    kl_divergence,
    kl_divergence_curve,
    kl_levels,
    kl_threshold,
    make_observer,
    mse_curve,
    percentile_threshold,
)

ALL = ["minmax", "ema", "percentile", "entropy", "mse"]


# ----------------------------------------------------------------------------- loop reference
def kl_threshold_loop(hist, bin_edges, num_bits=8, unsigned=False, start_bin=None):
    """TensorRT's entropy calibration written out loop by loop, in the order of NVIDIA
    pytorch-quantization's ``_compute_amax_entropy`` (np.linspace + np.digitize for the
    groups, explicit per-bin loops, KL on normalised P and Q, last minimiser).
    Differences, on purpose: the input is not modified, and a candidate whose Q is all zero
    gets an infinite divergence (the original produces NaN there)."""
    bins = np.array(hist, dtype=np.float64)  # copy
    bins[0] = bins[1]
    nq = 1 << (num_bits - 1 + int(unsigned))
    start = nq if start_bin is None else start_bin
    divergences, arguments = [], []
    for i in range(start, len(bins) + 1):
        space = np.linspace(0, i, num=nq + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[bins[:i] == 0] = -1
        counts = np.zeros(nq)
        members = np.zeros(nq)
        for idx in range(i):
            if digitized[idx] != -1:
                counts[digitized[idx]] += bins[idx]
                members[digitized[idx]] += 1
        q = np.zeros(i)
        for idx in range(i):
            if digitized[idx] != -1:
                q[idx] = counts[digitized[idx]] / members[digitized[idx]]
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        if q.sum() == 0:
            kl = np.inf
        else:
            p, q = p / p.sum(), q / q.sum()
            kl = 0.0
            for pj, qj in zip(p, q):
                if pj > 0:
                    kl = np.inf if qj == 0 else kl + pj * np.log(pj / qj)
        divergences.append(kl)
        arguments.append(i)
    if not arguments:
        return float(bin_edges[-1]), len(bins)
    divergences = np.array(divergences)
    last = len(divergences) - 1 - int(np.argmin(divergences[::-1]))
    return float(bin_edges[arguments[last]]), arguments[last]


# ----------------------------------------------------------------------------- min-max family
def test_pytorch_minmax_example_unsigned_and_signed():
    # PyTorch docs: [1,2,2,3,4,5,6] then [4,5,5,6,7,8] -> min 1, max 8; widened to [0, 8]:
    # S = (8 - 0) / 255, Z = qmin + round(0 / S) = 0 (quint8) or -128 (qint8, affine).
    obs = MinMaxObserver(bits=8)
    obs.observe(np.array([1, 2, 2, 3, 4, 5, 6], np.float32)).observe(np.array([4, 5, 5, 6, 7, 8], np.float32))
    assert obs.range() == (1.0, 8.0)
    qp = obs.qparams()
    assert qp.scale == pytest.approx(8 / 255, rel=1e-12) and qp.scale == pytest.approx(0.0313725, abs=1e-7)
    assert qp.zero_point == 0 and (qp.qmin, qp.qmax) == (0, 255)
    obs_s = MinMaxObserver(bits=8, signed=True)
    obs_s.observe([1.0, 2, 2, 3, 4, 5, 6]).observe([4.0, 5, 5, 6, 7, 8])
    qs = obs_s.qparams()
    assert qs.scale == pytest.approx(8 / 255, rel=1e-12) and qs.zero_point == -128


def test_minmax_symmetric_uses_max_abs():
    obs = MinMaxObserver(bits=8, symmetric=True).observe([-2.54, 1.0])
    qp = obs.qparams()
    assert qp.zero_point == 0 and qp.scale == pytest.approx(2.54 / 127)


def test_ema_hand_values():
    assert ema_update(1.0, 101.0, 0.01) == pytest.approx(2.0)
    obs = MovingAverageMinMaxObserver()  # c = 0.01
    obs.observe([-1.0, 1.0])          # first batch initialises: (-1, 1)
    obs.observe([-1.0, 101.0])        # max: 1 + 0.01 * (101 - 1) = 2
    obs.observe([-3.0, 2.0])          # min: -1 + 0.01 * (-3 + 1) = -1.02; max: 2 + 0.01 * 0 = 2
    lo, hi = obs.range()
    assert lo == pytest.approx(-1.02) and hi == pytest.approx(2.0)
    mm = MinMaxObserver().observe([-1.0, 1.0]).observe([-1.0, 101.0]).observe([-3.0, 2.0])
    assert mm.range() == (-3.0, 101.0)


def test_per_channel_unequal_batches():
    obs = PerChannelMinMaxObserver(axis=1, symmetric=True)
    obs.observe(np.array([[1.0, -2.0, 0.0]]))
    obs.observe(np.array([[3.0, -1.0, 0.0], [0.5, -4.0, 0.0], [2.0, 0.0, 0.0]]))
    lo, hi = obs.range()
    assert lo.tolist() == [0.5, -4.0, 0.0] and hi.tolist() == [3.0, 0.0, 0.0]
    qp = obs.qparams()
    assert qp.axis == 1 and qp.scale.shape == (3,)
    assert qp.scale[:2] == pytest.approx([3 / 127, 4 / 127])
    assert qp.scale[2] == MIN_SCALE  # dead channel: legal, falls back to the minimum scale
    with pytest.raises(ValueError, match="channels"):
        obs.observe(np.zeros((2, 4)))


@pytest.mark.parametrize("name", ALL)
def test_unequal_batch_sizes_and_shapes(name):
    rng = np.random.default_rng(1)
    obs = make_observer(name, bits=8)
    for n in (7, 300, 1, 64):
        obs.observe(rng.normal(size=(n, 5)).astype(np.float32))
    obs.observe(rng.normal(size=11))
    lo, hi = obs.range()
    assert lo < 0 < hi and obs.n_batches == 5 and obs.n_values == 7 * 5 + 300 * 5 + 5 + 64 * 5 + 11


@pytest.mark.parametrize("name", ALL)
def test_all_zero_batch_is_legal(name):
    obs = make_observer(name, bits=8)
    obs.observe(np.zeros((4, 3)))
    lo, hi = obs.range()
    assert (lo, hi) == (0.0, 0.0)
    qp = obs.qparams()
    assert qp.scale == MIN_SCALE
    assert (quantize(np.zeros(3), qp) == qp.zero_point).all()


def test_zeros_before_data_go_into_bin_zero():
    obs = HistogramObserver(num_bins=4)
    obs.observe(np.zeros(5)).observe([0.0, 4.0])
    assert obs.hist.counts.tolist() == [6, 0, 0, 1]
    assert obs.range() == (0.0, 4.0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [[], np.zeros((0, 3)), [1.0, np.nan], [np.inf, 1.0], np.array([1, 2], np.int32)])
def test_bad_batches_raise(name, bad):
    obs = make_observer(name)
    with pytest.raises(ValueError):
        obs.observe(bad)


@pytest.mark.parametrize("name", ALL)
def test_range_before_data_raises(name):
    with pytest.raises(ValueError, match="observe"):
        make_observer(name).range()


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="bits"):
        MinMaxObserver(bits=1)
    with pytest.raises(ValueError, match="bits"):
        EntropyObserver(bits=17)
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(averaging_constant=0.0)
    with pytest.raises(ValueError, match="percentile"):
        PercentileObserver(percentile=100.5)
    with pytest.raises(ValueError, match="calibrator"):
        make_observer("median")
    with pytest.raises(ValueError, match="num_bins"):
        AbsHistogram(num_bins=1)
    with pytest.raises(ValueError, match="symmetric"):
        MinMaxObserver(symmetric="yes")


def test_inputs_not_mutated():
    x = np.array([-3.0, 0.0, 1.0, 2.0])
    keep = x.copy()
    for name in ALL:
        make_observer(name).observe(x).qparams()
    assert np.array_equal(x, keep)
    h = np.array([9, 3, 2, 1])
    kl_threshold(h, np.arange(5.0), bits=2)
    assert h.tolist() == [9, 3, 2, 1]  # pytorch-quantization's bins[0] = bins[1] writes into its input


def test_reset():
    obs = EntropyObserver().observe([1.0, 2.0])
    obs.reset()
    with pytest.raises(ValueError):
        obs.range()
    assert obs.observe([0.0, 5.0]).range()[1] <= 5.0


# ----------------------------------------------------------------------------- histogram collector
def test_histogram_grows_with_same_width():
    h = AbsHistogram(num_bins=4)
    h.add(np.array([0.5, -1.5, 4.0]))      # width 1: bins [0,1) [1,2) [2,3) [3,4]
    h.add(np.array([5.5, 0.2]))            # grows to 6 bins of width 1
    assert h.counts.tolist() == [2, 1, 0, 1, 0, 1] and h.width == 1.0
    assert h.min_val == -1.5 and h.max_val == 5.5


def test_histogram_merges_pairs_beyond_max_bins():
    h = AbsHistogram(num_bins=4, max_bins=8)
    h.add(np.array([0.5, 1.5, 2.5, 4.0]))
    h.add(np.array([10.0]))                # needs 10 bins of width 1 -> 5 bins of width 2
    # [1, 1, 1, 1] (4.0 sat in the closed last bin [3, 4]) merges pairwise into [2, 2]
    assert h.width == 2.0 and h.counts.tolist() == [2, 2, 0, 0, 1] and h.total == 5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=5), st.integers(0, 10_000))
def test_histogram_counts_every_value(sizes, seed):
    rng = np.random.default_rng(seed)
    h = AbsHistogram(num_bins=16, max_bins=64)
    n = 0
    for k, size in enumerate(sizes):
        h.add(rng.normal(scale=1 + 3 * k, size=size))
        n += size
    assert h.total == n and h.edges[-1] >= max(abs(h.min_val), abs(h.max_val)) - 1e-12


# ----------------------------------------------------------------------------- KL, by hand
def test_kl_levels():
    assert [kl_levels(b, False) for b in (2, 4, 8)] == [2, 8, 128]
    assert [kl_levels(b, True) for b in (2, 4, 8)] == [4, 16, 256]


def test_kl_distributions_hand_example():
    # bins [4, 2, 0, 2, 1, 1] -> zero spike removed -> [2, 2, 0, 2, 1, 1] (total 8), i = 4, nq = 2:
    # P = [2, 2, 0, 2 + (1 + 1)] / 8; groups {0,1} (4 over 2 non-empty), {2,3} (2 over 1 non-empty)
    P, Q = kl_distributions(np.array([2.0, 2, 0, 2, 1, 1]), i=4, nq=2)
    assert P.tolist() == [0.25, 0.25, 0.0, 0.5]
    assert Q == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3])
    assert kl_divergence(P, Q) == pytest.approx(0.5 * np.log(0.75) + 0.5 * np.log(1.5))


def test_kl_curve_hand_example():
    cand, kl = kl_divergence_curve([4, 2, 0, 2, 1, 1], nq=2, start_bin=2)
    expected = [
        0.25 * np.log(0.5) + 0.75 * np.log(1.5),              # i=2: P=[.25,.75], Q=[.5,.5]
        np.inf,                                               # i=3: tail lands on an empty bin
        0.5 * np.log(0.75) + 0.5 * np.log(1.5),               # i=4
        0.5 * np.log(0.25 * 7 / 2) + 0.5 * np.log(0.25 * 7 / 1.5),  # i=5: Q=[2,2,0,1.5,1.5]/7
        0.25 * np.log(1.5) + 0.25 * np.log(0.75),             # i=6: nothing clipped
    ]
    assert cand.tolist() == [2, 3, 4, 5, 6]
    assert kl == pytest.approx(expected, rel=1e-12)
    assert kl_threshold([4, 2, 0, 2, 1, 1], np.linspace(0, 6, 7), bits=2) == 5.0


def test_kl_flat_histogram_clips_nothing():
    # flat data: only the full range has Q = P (KL = 0); every clipped candidate piles the tail up
    cand, kl = kl_divergence_curve(np.ones(16), nq=4)
    assert kl[-1] == pytest.approx(0.0, abs=1e-15) and (kl[:-1] > 1e-3).all()
    assert kl_threshold(np.ones(16), np.arange(17.0), bits=3) == 16.0


def test_kl_last_minimiser_wins_exact_ties():
    # one occupied bin (index 7): every candidate i >= 8 gives P = Q (KL = 0) -> the last one
    h = np.zeros(16)
    h[7] = 1
    cand, kl = kl_divergence_curve(h, nq=8)
    assert np.allclose(kl, 0.0, atol=1e-15)
    assert kl_threshold(h, np.arange(17.0), bits=3, unsigned=True) == 16.0


def test_kl_clips_a_far_outlier():
    h = np.zeros(64)
    h[:8] = [100, 80, 60, 40, 20, 10, 5, 2]
    h[63] = 1
    assert kl_threshold(h, np.arange(65.0), bits=3, unsigned=True) < 16


def test_kl_too_few_bins_clips_nothing():
    assert kl_threshold([5, 4, 3, 2], np.linspace(0, 1, 5), bits=8) == 1.0


@pytest.mark.parametrize("bits,unsigned", [(2, False), (3, True), (4, False), (4, True)])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_kl_matches_loop_reference_on_random_histograms(bits, unsigned, data):
    n = data.draw(st.integers(16, 80))
    hist = data.draw(arrays(np.int64, n, elements=st.integers(0, 50)))
    hist[1] = max(hist[1], 1)
    edges = np.linspace(0, 3.0, n + 1)
    t_ref, i_ref = kl_threshold_loop(hist, edges, bits, unsigned)
    t = kl_threshold(hist, edges, bits, unsigned)
    assert abs(t - t_ref) <= (edges[1] - edges[0]) * 1.000001


@pytest.mark.parametrize("kind", ["gauss", "relu", "laplace"])
def test_kl_matches_loop_reference_2048_bins(kind):
    rng = np.random.default_rng(3)
    x = rng.normal(size=50_000) if kind != "laplace" else rng.laplace(size=50_000)
    if kind == "relu":
        x = np.maximum(x, 0)
    obs = EntropyObserver(bits=8).observe(x)
    t_ref, _ = kl_threshold_loop(obs.hist.counts, obs.hist.edges, 8, unsigned=kind == "relu")
    assert abs(obs.threshold() - t_ref) <= obs.hist.width * 1.000001


# ----------------------------------------------------------------------------- percentile / MSE
def test_percentile_hand_example():
    # counts [5, 3, 1, 1]: cumulative [5, 8, 9, 10]; 80 % of 10 = 8 reached in bin 1 -> edge 2
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 80) == 2.0
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 100) == 4.0
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 50) == 1.0


def test_mse_curve_is_u_shaped_on_outlier_data():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.abs(rng.normal(size=20_000)), [40.0]])
    obs = MSEObserver(bits=4).observe(x)
    thr, err = obs.error_curve()
    k = int(np.argmin(err))
    assert 0 < k < len(thr) - 1 and err[0] > err[k] < err[-1]
    assert obs.threshold() == pytest.approx(thr[k])


def test_mse_signed_matches_direct_fake_quant():
    h = np.array([0, 4, 0, 2])
    edges = np.arange(5.0)
    thr, err = mse_curve(h, edges, bits=3, signed_data=True, symmetric=True)
    qp = qlib.qparams_from_range(-thr[1], thr[1], bits=3, symmetric=True)
    c = np.array([1.5, 3.5])
    e_pos = (qlib.fake_quantize(c, qp) - c) ** 2
    e_neg = (qlib.fake_quantize(-c, qp) + c) ** 2
    assert err[1] == pytest.approx(((e_pos + e_neg) / 2 * np.array([4, 2])).sum() / 6)


# ----------------------------------------------------------------------------- properties
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=30, deadline=None)
@given(x=arrays(np.float32, st.integers(1, 300), elements=finite), bits=st.sampled_from([2, 4, 8]))
def test_range_within_data_range(name, x, bits):
    obs = make_observer(name, bits=bits).observe(x)
    lo, hi = obs.range()
    amax = float(np.abs(x).max())
    assert lo <= hi
    if name in ("minmax", "ema"):
        assert (lo, hi) == (float(x.min()), float(x.max()))
    else:
        assert 0.0 <= hi <= amax and -amax <= lo <= 0.0
        if x.min() >= 0:
            assert lo == 0.0


@settings(max_examples=40, deadline=None)
@given(x=arrays(np.float64, st.integers(2, 500), elements=st.floats(-50, 50)),
       p=st.lists(st.floats(1.0, 100.0), min_size=2, max_size=4))
def test_higher_percentile_never_smaller(x, p):
    obs_t = []
    for q in sorted(p):
        obs = PercentileObserver(percentile=q, num_bins=64).observe(x)
        obs_t.append(obs.threshold())
    assert all(a <= b for a, b in zip(obs_t, obs_t[1:]))


def test_top_level_exports():
    for name in ("MinMaxObserver", "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver", "HistogramObserver",
                 "PercentileObserver", "EntropyObserver", "MSEObserver"):
        obs = getattr(qlib, name)(bits=4, symmetric=True)
        assert hasattr(obs, "observe") and hasattr(obs, "range") and hasattr(obs, "qparams")
