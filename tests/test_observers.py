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
def entropy_like_scipy(p, q):
    """``scipy.stats.entropy(p, q)``: both normalised by their sums, then
    ``sum p_j log(p_j / q_j)`` with ``0 log(0/q) = 0`` and ``p log(p/0) = inf`` (NaN if q sums to 0)."""
    p = np.asarray(p, np.float64) / np.sum(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.asarray(q, np.float64) / np.sum(q)
        terms = np.where(p > 0, p * np.log(p / q), np.where(p == 0, 0.0, np.nan))
    return float(np.sum(terms))


def kl_threshold_loop(hist, bin_edges, num_bits=8, unsigned=False, start_bin=128, stride=1):
    """NVIDIA pytorch-quantization's entropy calibration (``_compute_amax_entropy``), written
    from its algorithm, one candidate at a time:

    * ``bins = hist`` with ``bins[0] = bins[1]``; ``nq = 2^(bits-1)`` (``2^bits`` unsigned) levels;
    * for ``i in range(start_bin, len(bins) + 1, stride)``: bin ``j < i`` joins level
      ``digitize(j, linspace(0, i, nq + 1)) - 1`` (empty bins join none); a level's count is
      spread evenly over its members -> Q; P = ``bins[:i]`` with ``sum(bins[i:])`` added to its
      last bin; divergence = ``scipy.stats.entropy(P, Q)``;
    * the threshold is ``bin_edges[i]`` of the *last* minimum (exact comparison, no tolerance).

    Returns ``(threshold, i)``; ``(bin_edges[-1], len(bins))`` when there is no candidate.
    The input is not modified (the original writes ``bins[0]`` into the caller's histogram)."""
    bins = np.array(hist, dtype=np.float64)
    bins[0] = bins[1]
    nq = 1 << (num_bits - 1 + int(unsigned))
    divergences, arguments = [], []
    for i in range(start_bin, len(bins) + 1, stride):
        level = np.digitize(np.arange(i), np.linspace(0, i, num=nq + 1)) - 1
        level[bins[:i] == 0] = -1
        member = level >= 0
        level_sum = np.bincount(level[member], weights=bins[:i][member], minlength=nq)
        level_size = np.bincount(level[member], minlength=nq)
        q = np.zeros(i)
        q[member] = level_sum[level[member]] / level_size[level[member]]
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        divergences.append(entropy_like_scipy(p, q))
        arguments.append(i)
    if not arguments:
        return float(bin_edges[-1]), len(bins)
    divergences = np.array(divergences)
    last = len(divergences) - 1 - int(np.argmin(divergences[::-1]))
    return float(bin_edges[arguments[last]]), arguments[last]


def test_entropy_helper_is_scipy():
    stats = pytest.importorskip("scipy.stats")
    p, q = [0.1, 0.0, 3.0, 2.0], [0.5, 1.0, 1.0, 0.2]
    assert entropy_like_scipy(p, q) == pytest.approx(float(stats.entropy(p, q)), rel=1e-12)
    assert entropy_like_scipy([1.0, 1.0], [1.0, 0.0]) == float(stats.entropy([1.0, 1.0], [1.0, 0.0])) == np.inf


def test_loop_reference_groups_like_digitize_not_array_split():
    # i = 10 bins into nq = 4 levels: linspace(0, 10, 5) = [0, 2.5, 5, 7.5, 10] -> sizes 3, 2, 3, 2
    level = np.digitize(np.arange(10), np.linspace(0, 10, 5)) - 1
    assert np.bincount(level).tolist() == [3, 2, 3, 2]
    assert ((np.arange(10) * 4) // 10).tolist() == level.tolist()    # qlib's floor(j nq / i)


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


def test_onnxruntime_moving_average_is_a_plain_mean_within_one_call():
    pytest.importorskip("onnxruntime")
    from qlib.ptq import onnxruntime_minmax_range

    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(16, 4)) + 0.2 * i).astype(np.float32) for i in range(8)]
    mins, maxs = [float(b.min()) for b in batches], [float(b.max()) for b in batches]
    lo, hi = onnxruntime_minmax_range(batches)                       # one collect_data call
    assert lo == pytest.approx(np.mean(mins), rel=1e-6) and hi == pytest.approx(np.mean(maxs), rel=1e-6)
    ema = MovingAverageMinMaxObserver()
    for b in batches:
        ema.observe(b)
    assert abs(hi - ema.range()[1]) > 0.05                          # not the per-batch EMA ...
    lo1, hi1 = onnxruntime_minmax_range(batches, batches_per_call=1)  # ... unless one call per batch
    assert (lo1, hi1) == pytest.approx(ema.range(), rel=1e-6)
    assert onnxruntime_minmax_range(batches, moving_average=False) == pytest.approx((min(mins), max(maxs)))


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
    with pytest.raises(ValueError, match="narrow_range"):
        MinMaxObserver(narrow_range="no")
    with pytest.raises(ValueError, match="signed"):
        EntropyObserver(signed=1)
    with pytest.raises(ValueError, match="max_bins"):
        AbsHistogram(max_bins=None)
    with pytest.raises(ValueError, match="n_candidates"):
        MSEObserver(n_candidates=0)


@pytest.mark.parametrize("name", ALL)
def test_make_observer_unknown_option_is_a_value_error(name):
    with pytest.raises(ValueError, match="no option 'foo'"):
        make_observer(name, foo=1)
    with pytest.raises(ValueError, match="symmetric"):
        make_observer(name, symmetric="yes")
    assert make_observer("percentile", percentile=99.9).percentile == 99.9
    assert make_observer("entropy", start_bin=16, stride=2, num_bins=512).start_bin == 16


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


def test_histogram_merges_neighbours_beyond_max_bins():
    h = AbsHistogram(num_bins=4, max_bins=8)
    h.add(np.array([0.5, 1.5, 2.5, -4.0]))
    h.add(np.array([10.0]))                # needs 10 bins of width 1 > 8: k = ceil(10 / 4) = 3 neighbours
    # [1, 1, 1, 1] (4.0 sat in the closed last bin [3, 4]) -> [1+1+1, 1+0+0] of width 3, then [9, 12) holds 10
    assert h.width == 3.0 and h.counts.tolist() == [3, 1, 0, 1] and h.total == 5
    assert h.neg_counts.tolist() == [0, 1, 0, 0]


def test_histogram_memory_is_bounded_whatever_the_batch_order():
    # the old collector asked for 2e12 bins (14.9 TiB) here
    o = EntropyObserver()
    o.observe([0.0, 1e-9])
    o.observe([0.5, 1.0])
    # every old bin merges into the first new one; the new range [0, 1] gets num_bins = 2048 bins again
    assert o.hist.counts.size == 2048 and o.hist.total == 4 and o.hist.counts[0] == 2
    assert o.hist.edges[-1] == pytest.approx(1.0)
    assert 0.0 < o.threshold() <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-12, 12), st.integers(1, 40)), min_size=1, max_size=8), st.integers(0, 99))
def test_histogram_bounded_and_exact_total(batches, seed):
    rng = np.random.default_rng(seed)
    h = AbsHistogram(num_bins=16, max_bins=64)
    n = n_neg = 0
    amax = 0.0
    for exponent, size in batches:
        x = rng.normal(size=size) * 10.0 ** exponent
        h.add(x)
        n, n_neg, amax = n + size, n_neg + int((x < 0).sum()), max(amax, float(np.abs(x).max()))
        assert h.counts.size <= 64
    assert h.total == n and int(h.neg_counts.sum()) == n_neg
    assert h.edges[-1] >= amax * (1 - 1e-12)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [[1.0, np.nan], [], "abc", [[1.0], [2.0, 3.0]], [True, False]])
def test_refused_batch_leaves_the_observer_unchanged(name, bad):
    import copy

    obs = make_observer(name).observe([-1.0, 0.5, 2.0]).observe([0.25, 3.0])
    before = copy.deepcopy(vars(obs))
    hist_before = copy.deepcopy(vars(obs.hist)) if hasattr(obs, "hist") else None
    with pytest.raises(ValueError):
        obs.observe(bad)
    after = vars(obs)
    assert before.keys() == after.keys() and obs.n_batches == 2 and obs.n_values == 5
    if hist_before is not None:
        for k, v in hist_before.items():
            assert np.array_equal(np.asarray(v), np.asarray(vars(obs.hist)[k])), k
    assert obs.range() == make_observer(name).observe([-1.0, 0.5, 2.0]).observe([0.25, 3.0]).range()


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
    assert kl_threshold([4, 2, 0, 2, 1, 1], np.linspace(0, 6, 7), bits=2, start_bin=2) == 5.0


def test_kl_candidates_with_fewer_bins_than_levels_keep_every_bin():
    # i <= nq: every bin is its own level, Q = bins[:i]. bins [3, 3, 1, 2] (after the spike), i = 2, nq = 4:
    # P = [3, 3 + 3] / 9, Q = [3, 3] / 6 -> KL = 1/3 ln(2/3) + 2/3 ln(4/3)
    cand, kl = kl_divergence_curve([7, 3, 1, 2], nq=4, start_bin=2)
    assert cand.tolist() == [2, 3, 4]
    assert kl[0] == pytest.approx(np.log(2 / 3) / 3 + 2 / 3 * np.log(4 / 3), rel=1e-12)
    assert kl[2] == pytest.approx(0.0, abs=1e-15)


def test_kl_default_start_bin_is_nvidias_128():
    assert EntropyObserver().start_bin == 128 and EntropyObserver(bits=4).start_bin == 128
    # a sparse 4-bit histogram whose lowest candidates (i < 128) diverge least: NVIDIA never looks there
    h = np.zeros(2048, np.int64)
    h[[1, 2, 3, 40, 900, 2047]] = [50, 30, 20, 3, 1, 1]
    edges = np.linspace(0.0, 2.048, 2049)
    t_ref, i_ref = kl_threshold_loop(h, edges, num_bits=4)
    assert i_ref >= 128 and kl_threshold(h, edges, bits=4) == pytest.approx(t_ref, abs=1e-15)
    obs = EntropyObserver(bits=4, num_bins=2048)
    obs.observe(np.repeat(edges[:-1] + 5e-4, h))
    assert obs.threshold() >= edges[128] - 1e-12
    assert kl_threshold(h, edges, bits=4, start_bin=8) < edges[128]      # the old start (nq) clips far harder


def test_kl_flat_histogram_clips_nothing():
    # flat data: only the full range has Q = P (KL = 0); every clipped candidate piles the tail up
    cand, kl = kl_divergence_curve(np.ones(16), nq=4, start_bin=4)
    assert kl[-1] == pytest.approx(0.0, abs=1e-15) and (kl[:-1] > 1e-3).all()
    assert kl_threshold(np.ones(16), np.arange(17.0), bits=3, start_bin=4) == 16.0


def test_kl_last_minimiser_wins_exact_ties():
    # one occupied bin (index 7): every candidate i >= 8 gives P = Q (KL = 0) -> the last one
    h = np.zeros(16)
    h[7] = 1
    cand, kl = kl_divergence_curve(h, nq=8, start_bin=8)
    assert np.allclose(kl, 0.0, atol=1e-15)
    assert kl_threshold(h, np.arange(17.0), bits=3, unsigned=True, start_bin=8) == 16.0


def test_kl_clips_a_far_outlier():
    h = np.zeros(64)
    h[:8] = [100, 80, 60, 40, 20, 10, 5, 2]
    h[63] = 1
    assert kl_threshold(h, np.arange(65.0), bits=3, unsigned=True, start_bin=8) < 16


def test_kl_too_few_bins_clips_nothing():
    assert kl_threshold([5, 4, 3, 2], np.linspace(0, 1, 5), bits=8) == 1.0
    assert kl_threshold(np.ones(100), np.linspace(0, 1, 101), bits=4) == 1.0   # 100 < start_bin = 128


def test_kl_bad_start_and_stride():
    for bad in (0, -3, 2.5, True, "128"):
        with pytest.raises(ValueError, match="start_bin"):
            EntropyObserver(start_bin=bad)
        with pytest.raises(ValueError, match="stride"):
            EntropyObserver(stride=bad)
    with pytest.raises(ValueError, match="unsigned"):
        kl_threshold([1, 2, 3], np.arange(4.0), unsigned="yes")


@pytest.mark.parametrize("bits,unsigned", [(2, False), (3, True), (4, False), (4, True), (8, False)])
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_kl_matches_loop_reference_on_random_histograms(bits, unsigned, data):
    n = data.draw(st.integers(16, 300))
    start = data.draw(st.sampled_from([1, 2, 5, 16, 128]))
    stride = data.draw(st.sampled_from([1, 1, 3]))
    hist = data.draw(arrays(np.int64, n, elements=st.integers(0, 50)))
    hist[1] = max(hist[1], 1)
    edges = np.linspace(0, 3.0, n + 1)
    t_ref, i_ref = kl_threshold_loop(hist, edges, bits, unsigned, start_bin=start, stride=stride)
    t = kl_threshold(hist, edges, bits, unsigned, start_bin=start, stride=stride)
    assert abs(t - t_ref) <= (edges[1] - edges[0]) * stride * 1.000001


@pytest.mark.parametrize("kind,bits", [("gauss", 8), ("relu", 8), ("laplace", 8), ("relu", 4), ("gauss", 3)])
def test_kl_matches_loop_reference_2048_bins(kind, bits):
    rng = np.random.default_rng(3)
    x = rng.normal(size=50_000) if kind != "laplace" else rng.laplace(size=50_000)
    if kind == "relu":
        x = np.maximum(x, 0)
    obs = EntropyObserver(bits=bits).observe(x)
    t_ref, _ = kl_threshold_loop(obs.hist.counts, obs.hist.edges, bits, unsigned=kind == "relu")
    assert obs.threshold() == pytest.approx(t_ref, rel=1e-12)


def test_kl_group_table_cache_is_bounded_by_bytes():
    from qlib.observers import _GROUP_EDGES

    _GROUP_EDGES.clear()
    rng = np.random.default_rng(0)
    for n in (2048, 3000, 4096, 6000, 8192):
        h = rng.integers(1, 100, n)
        for bits in (8, 9, 10, 11):
            kl_divergence_curve(h, nq=kl_levels(bits, False))
    assert _GROUP_EDGES.nbytes <= 64 * 2**20
    assert sum(_GROUP_EDGES._items[k].nbytes for k in _GROUP_EDGES) == _GROUP_EDGES.nbytes
    # a table above the per-table limit (8192 bins, nq = 1024: 29 MiB) is computed block by block, same result
    assert (8192, 1024, 128, 1) not in set(_GROUP_EDGES)
    h = rng.integers(1, 100, 300)
    cand, kl = kl_divergence_curve(h, nq=64, start_bin=65)
    _GROUP_EDGES.max_item_bytes = 0
    try:
        cand2, kl2 = kl_divergence_curve(h, nq=64, start_bin=66)
    finally:
        _GROUP_EDGES.max_item_bytes = 16 * 2**20
    assert np.array_equal(kl[1:], kl2)


# ----------------------------------------------------------------------------- percentile / MSE
def test_percentile_hand_example_left_edge():
    # counts [5, 3, 1, 1]: cdf [0.5, 0.8, 0.9, 1.0]. ORT / pytorch-quantization: k = first bin with
    # cdf >= p / 100, T = bin_edges[k] (the left edge of the bin holding the percentile)
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 80) == 1.0     # k = 1
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 85) == 2.0     # k = 2
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 100) == 3.0    # k = 3
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 50) == 0.0     # k = 0
    assert percentile_threshold([5, 3, 1, 1], [0, 1, 2, 3, 4.0], 49) == 0.0


def test_percentile_equals_onnxruntime_compute_percentile():
    calibrate = pytest.importorskip("onnxruntime.quantization.calibrate")
    rng = np.random.default_rng(5)
    for p in (90.0, 99.0, 99.9, 99.99, 100.0):
        hist = rng.integers(0, 40, 300)
        hist[-1] = 1
        edges = np.linspace(0, 6.0, 301).astype(np.float32)
        col = calibrate.HistogramCollector(method="percentile", symmetric=True, num_bins=300,
                                           num_quantized_bins=128, percentile=p, scenario="same")
        col.histogram_dict = {"x": (hist, edges, np.float32(0.0), np.float32(6.0))}
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            ort = col.compute_percentile()["x"]
        assert percentile_threshold(hist, edges, p) == float(ort[1])


def test_percentile_observer_matches_the_rule_on_data():
    x = np.append((np.arange(10) + 0.5) / 10, 1.0)          # 0.05, 0.15, ..., 0.95 and 1.0
    obs = PercentileObserver(percentile=80.0, num_bins=10).observe(x)
    # bins of width 0.1 hold [1, 1, ..., 1, 2]: cdf (k + 1) / 11 first reaches 0.8 at k = 8 -> T = 0.8
    assert obs.hist.counts.tolist() == [1] * 9 + [2]
    assert obs.threshold() == pytest.approx(0.8, rel=1e-12)


def test_mse_curve_is_u_shaped_on_outlier_data():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.abs(rng.normal(size=20_000)), [40.0]])
    obs = MSEObserver(bits=4).observe(x)
    thr, err = obs.error_curve()
    k = int(np.argmin(err))
    assert 0 < k < len(thr) - 1 and err[0] > err[k] < err[-1]
    assert obs.threshold() == pytest.approx(thr[k])


def test_mse_signed_matches_direct_fake_quant():
    h, neg = np.array([0, 4, 0, 2]), np.array([0, 1, 0, 2])     # bin [1,2): 3 positive, 1 negative
    edges = np.arange(5.0)
    thr, err = mse_curve(h, edges, bits=3, neg_hist=neg, symmetric=False)
    qp = qlib.qparams_from_range(-thr[1], thr[1], bits=3)
    data = np.array([1.5, 1.5, 1.5, -1.5, -3.5, -3.5])
    assert err[1] == pytest.approx(np.mean((qlib.fake_quantize(data, qp) - data) ** 2), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(pos=arrays(np.int64, st.integers(2, 24), elements=st.integers(0, 30)), data=st.data(),
       bits=st.sampled_from([2, 3, 4]), symmetric=st.booleans())
def test_mse_threshold_is_the_argmin_of_the_true_mse(pos, data, bits, symmetric):
    neg = data.draw(arrays(np.int64, pos.size, elements=st.integers(0, 30)))
    pos[-1] += 1                                            # some data in the last bin
    edges = np.arange(pos.size + 1) * 0.25
    centers = 0.5 * (edges[:-1] + edges[1:])
    values = np.concatenate([np.repeat(centers, pos), -np.repeat(centers, neg)])
    thr, _ = mse_curve(pos + neg, edges, bits=bits, neg_hist=neg, symmetric=symmetric)
    lo = (lambda t: -t) if neg.sum() else (lambda t: 0.0)

    def true_mse(t):
        qp = qlib.qparams_from_range(lo(t), t, bits=bits, symmetric=symmetric)
        return float(np.mean((qlib.fake_quantize(values, qp) - values) ** 2))

    best = min(true_mse(t) for t in thr)
    t = qlib.observers.mse_threshold(pos + neg, edges, bits=bits, neg_hist=neg, symmetric=symmetric)
    assert true_mse(t) <= best * (1 + 1e-9) + 1e-15


def test_mse_observer_skewed_signed_data_picks_its_best_candidate():
    # Gaussian with mean 0.3, 3-bit asymmetric grid on (-T, T): the positive side clips first.
    # The old |x|-histogram error (half of each bin assumed negative) picked a range ~30 % worse.
    x = np.random.default_rng(0).normal(0.3, 1.0, size=20_000)
    obs = MSEObserver(bits=3).observe(x)
    thr, _ = obs.error_curve()

    def true_mse(t):
        return float(np.mean((qlib.fake_quantize(x, qlib.qparams_from_range(-t, t, bits=3)) - x) ** 2))

    best = min(true_mse(t) for t in thr)
    assert true_mse(obs.threshold()) <= 1.01 * best
    assert obs.hist.neg_counts.sum() == (x < 0).sum()


def test_mse_bad_neg_hist():
    with pytest.raises(ValueError, match="neg_hist"):
        mse_curve([1, 2], [0.0, 1.0, 2.0], neg_hist=[2, 0])        # more negatives than values
    with pytest.raises(ValueError, match="neg_hist"):
        mse_curve([1, 2], [0.0, 1.0, 2.0], neg_hist=[0])


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
