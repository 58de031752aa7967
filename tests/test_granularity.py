"""Granularity: per-axis and block-wise qparams for any axis of N-d arrays (qlib.linear),
the seed's G channel groups, storage cost, per-channel error and the BN-folded layer (qlib.granularity)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qlib
from qlib.granularity import (
    GRANULARITIES,
    bn_folded_model,
    channel_group_qparams,
    channel_groups,
    effective_bits_per_weight,
    group_size_sweep,
    per_channel_error,
    quantize_model_weights,
    weight_only_accuracy,
    weight_qparams,
    weights_per_scale,
)
from qlib.linear import QParams, fake_quantize, qparams_from_range, qparams_from_tensor, quantize

FLOATS = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32)
SCHEMES = st.sampled_from([dict(symmetric=False), dict(symmetric=True), dict(symmetric=True, narrow_range=True),
                           dict(symmetric=True, scale_rule="half_range"), dict(symmetric=False, signed=True)])


@st.composite
def array_and_axis(draw, max_dims=4, dtype=np.float32):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=5))
    x = draw(hnp.arrays(dtype, shape, elements=FLOATS))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return x, axis


@st.composite
def array_axis_group(draw, max_dims=4):
    """An array whose `axis` length is a multiple of the drawn group size."""
    ndim = draw(st.integers(1, max_dims))
    axis = draw(st.integers(0, ndim - 1))
    g = draw(st.integers(1, 4))
    n_blocks = draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 3)) for _ in range(ndim)]
    shape[axis] = g * n_blocks
    x = draw(hnp.arrays(np.float32, tuple(shape), elements=FLOATS))
    return x, axis, g


def _slice(ndim, axis, index):
    s = [slice(None)] * ndim
    s[axis] = index
    return tuple(s)


# ----------------------------------------------------------------------------- per-axis == loop over channels
@settings(max_examples=150, deadline=None)
@given(array_and_axis(), st.integers(2, 8), SCHEMES)
def test_per_axis_equals_per_tensor_on_each_channel(xa, bits, scheme):
    x, axis = xa
    qp = qparams_from_tensor(x, bits=bits, axis=axis, **scheme)
    assert qp.granularity == "per-channel"
    n = x.shape[axis]
    assert np.shape(qp.scale) == (n,) and np.shape(qp.zero_point) == (n,)
    fq, q = fake_quantize(x, qp), quantize(x, qp)
    assert fq.dtype == x.dtype and fq.shape == x.shape
    for c in range(n):
        sl = _slice(x.ndim, axis, [c])  # keeps the axis: a 1-D x gives a 1-element array, not a scalar
        qc = qparams_from_tensor(x[sl], bits=bits, **scheme)
        assert qp.scale[c] == qc.scale and qp.zero_point[c] == qc.zero_point
        np.testing.assert_array_equal(fq[sl], fake_quantize(x[sl], qc))
        np.testing.assert_array_equal(q[sl], quantize(x[sl], qc))


@settings(max_examples=150, deadline=None)
@given(array_axis_group(), st.integers(2, 8), SCHEMES)
def test_block_wise_equals_per_tensor_on_each_block(xag, bits, scheme):
    x, axis, g = xag
    qp = qparams_from_tensor(x, bits=bits, axis=axis, group_size=g, **scheme)
    assert qp.granularity == "block-wise"
    expected_shape = list(x.shape)
    expected_shape[axis] //= g
    assert qp.scale.shape == tuple(expected_shape) == qp.zero_point.shape
    fq = fake_quantize(x, qp)
    q = quantize(x, qp)
    # every 1-D block: fix all other indices, take g consecutive elements along axis
    for idx in np.ndindex(*qp.scale.shape):
        j = idx[axis]
        sl = tuple(slice(j * g, (j + 1) * g) if d == axis else i for d, i in enumerate(idx))
        qb = qparams_from_tensor(x[sl], bits=bits, **scheme)
        assert qp.scale[idx] == qb.scale and qp.zero_point[idx] == qb.zero_point
        np.testing.assert_array_equal(fq[sl], fake_quantize(x[sl], qb))
        np.testing.assert_array_equal(q[sl], quantize(x[sl], qb))


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8), elements=FLOATS),
       st.integers(2, 8), st.booleans())
def test_group_size_equal_to_axis_length_is_per_channel_along_the_other_axis(w, bits, symmetric):
    blk = qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=1, group_size=w.shape[1])
    pc = qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=0)
    assert blk.scale.shape == (w.shape[0], 1)
    np.testing.assert_array_equal(blk.scale[:, 0], pc.scale)
    np.testing.assert_array_equal(fake_quantize(w, blk), fake_quantize(w, pc))
    # and the same along the other axis
    blk0 = qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=0, group_size=w.shape[0])
    pc1 = qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=1)
    np.testing.assert_array_equal(fake_quantize(w, blk0), fake_quantize(w, pc1))


@settings(max_examples=80, deadline=None)
@given(array_and_axis(), st.integers(2, 8), st.booleans())
def test_one_channel_or_one_block_is_per_tensor(xa, bits, symmetric):
    x, axis = xa
    xs = np.take(x, [0], axis=axis)  # length 1 along axis: per-channel == per-tensor
    pt = qparams_from_tensor(xs, bits=bits, symmetric=symmetric)
    pc = qparams_from_tensor(xs, bits=bits, symmetric=symmetric, axis=axis)
    np.testing.assert_array_equal(fake_quantize(xs, pc), fake_quantize(xs, pt))
    v = x.ravel()  # a 1-D tensor in one block == per-tensor
    blk = qparams_from_tensor(v, bits=bits, symmetric=symmetric, axis=0, group_size=v.size)
    np.testing.assert_array_equal(fake_quantize(v, blk), fake_quantize(v, qparams_from_tensor(v, bits=bits,
                                                                                            symmetric=symmetric)))


@settings(max_examples=80, deadline=None)
@given(array_and_axis(dtype=np.float64), st.integers(2, 8))
def test_finer_granularity_never_increases_max_error(xa, bits):
    x, axis = xa
    # symmetric per-channel: each channel's max-abs <= the tensor's, so its step and error bound are smaller
    e_t = np.abs(fake_quantize(x, qparams_from_tensor(x, bits=bits, symmetric=True)) - x)
    qp = qparams_from_tensor(x, bits=bits, symmetric=True, axis=axis)
    e_c = np.abs(fake_quantize(x, qp) - x)
    s_t = qparams_from_tensor(x, bits=bits, symmetric=True).scale
    assert np.all(qp.scale <= s_t)
    assert e_c.max() <= s_t / 2 * (1 + 1e-9) + 1e-12
    assert e_t.max() <= s_t / 2 * (1 + 1e-9) + 1e-12


@st.composite
def conv_weight(draw):
    """A conv weight (out, in, kh, kw) whose input-channel count is a multiple of the drawn group size."""
    g = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 4)), g * draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return draw(hnp.arrays(np.float32, shape, elements=FLOATS)), g


@settings(max_examples=80, deadline=None)
@given(conv_weight(), st.integers(2, 8), st.booleans())
def test_conv_weights_per_output_channel_and_block_wise_over_input_channels(wg, bits, symmetric):
    w, g = wg
    pc = qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=0)
    fq = fake_quantize(w, pc)
    for o in range(w.shape[0]):  # per output channel == per-tensor on the filter w[o]
        np.testing.assert_array_equal(fq[o], fake_quantize(w[o], qparams_from_tensor(w[o], bits=bits,
                                                                                     symmetric=symmetric)))
    blk = qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=1, group_size=g)
    assert blk.scale.shape == (w.shape[0], w.shape[1] // g, w.shape[2], w.shape[3])
    fb = fake_quantize(w, blk)
    for o, j, h, k in np.ndindex(*blk.scale.shape):  # g consecutive input channels at one kernel tap
        v = w[o, j * g:(j + 1) * g, h, k]
        np.testing.assert_array_equal(fb[o, j * g:(j + 1) * g, h, k],
                                      fake_quantize(v, qparams_from_tensor(v, bits=bits, symmetric=symmetric)))


@settings(max_examples=60, deadline=None)
@given(array_and_axis(dtype=np.float64), st.integers(2, 8), st.booleans())
def test_group_size_one_reproduces_every_value(xa, bits, symmetric):
    x, axis = xa  # one scale per element: each value is a grid end point, exact up to float rounding
    qp = qparams_from_tensor(x, bits=bits, symmetric=symmetric, axis=axis, group_size=1)
    assert qp.scale.shape == x.shape
    # (a value below MIN_SCALE gets the fallback step MIN_SCALE, hence the absolute tolerance)
    np.testing.assert_allclose(fake_quantize(x, qp), x, rtol=1e-12, atol=qlib.MIN_SCALE / 2)
    tiny = np.array([1e-10, -3e-9, 0.0])
    np.testing.assert_array_equal(fake_quantize(tiny, qparams_from_tensor(tiny, bits=bits, axis=0, group_size=1)),
                                  [0.0, 0.0, 0.0])


def test_conv_weights_per_output_channel_hand_values():
    # (out=2, in=2, kh=2, kw=2): channel 0 has max|w| 0.5, channel 1 has 4.0
    w = np.zeros((2, 2, 2, 2))
    w[0, 1, 0, 1] = -0.5
    w[0, 0, 1, 1] = 0.25
    w[1, 0, 0, 0] = 4.0
    qp = qparams_from_tensor(w, bits=4, symmetric=True, axis=0)
    np.testing.assert_allclose(qp.scale, [0.5 / 7, 4.0 / 7])
    q = quantize(w, qp)
    assert q[0, 1, 0, 1] == -7 and q[0, 0, 1, 1] == 4 and q[1, 0, 0, 0] == 7  # 0.25/(0.5/7) = 3.5 -> 4 (even)
    # block-wise along the input channels (groups of 2 = all of them): one scale per (out, kh, kw)
    blk = qparams_from_tensor(w, bits=4, symmetric=True, axis=1, group_size=2)
    assert blk.scale.shape == (2, 1, 2, 2)
    assert blk.scale[0, 0, 0, 1] == pytest.approx(0.5 / 7) and blk.scale[1, 0, 0, 0] == pytest.approx(4.0 / 7)
    assert blk.scale[1, 0, 1, 1] == qlib.MIN_SCALE  # an all-zero block is legal


def test_block_wise_hand_values_along_input_axis():
    w = np.array([[0.1, -0.2, 0.4, 0.3], [2.0, -1.0, 0.5, 0.0]])
    qp = qparams_from_tensor(w, bits=8, symmetric=True, axis=1, group_size=2)
    np.testing.assert_allclose(qp.scale * 127, [[0.2, 0.4], [2.0, 0.5]])
    qp = qparams_from_tensor(w, bits=8, symmetric=True, axis=-1, group_size=2)
    assert qp.axis == 1


# ----------------------------------------------------------------------------- bad inputs (qlib.linear)
W2 = np.arange(12, dtype=np.float64).reshape(3, 4) - 5.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(axis=2), "out of bounds"),
    (dict(axis=-3), "out of bounds"),
    (dict(axis=1.5), "axis must be an integer"),
    (dict(axis=True), "axis must be an integer"),
    (dict(axis=1, group_size=3), "does not divide axis 1 of length 4"),
    (dict(axis=0, group_size=2), "does not divide axis 0 of length 3"),
    (dict(axis=1, group_size=0), "positive integer"),
    (dict(axis=1, group_size=-2), "positive integer"),
    (dict(axis=1, group_size=2.0), "positive integer"),
    (dict(axis=1, group_size=True), "positive integer"),
    (dict(group_size=2), "needs an axis"),
])
def test_qparams_from_tensor_bad_axis_and_group_size(kwargs, match):
    with pytest.raises(ValueError, match=match):
        qparams_from_tensor(W2, **kwargs)


def test_scalar_with_axis_is_rejected():
    with pytest.raises(ValueError, match="scalar"):
        qparams_from_tensor(np.float64(1.0), axis=0)


def test_qparams_applied_to_a_tensor_of_another_shape():
    pc = qparams_from_tensor(W2, axis=0)  # 3 channels
    with pytest.raises(ValueError, match="3 channels"):
        quantize(W2.T.copy(), pc)  # (4, 3): 4 along axis 0
    with pytest.raises(ValueError, match="scalar"):
        fake_quantize(np.float64(1.0), pc)
    blk = qparams_from_tensor(W2, axis=1, group_size=2)  # shape (3, 2)
    with pytest.raises(ValueError, match="needs parameters of shape"):
        quantize(np.zeros((2, 4)), blk)
    with pytest.raises(ValueError, match="dimensions"):
        quantize(np.zeros((3, 4, 1)), blk)
    with pytest.raises(ValueError, match="does not divide"):
        quantize(np.zeros((3, 5)), blk)
    with pytest.raises(ValueError, match="out of bounds"):
        quantize(np.zeros(3), qparams_from_range(np.zeros(3) - 1, np.ones(3), axis=1))


def test_qparams_from_range_shape_checks():
    with pytest.raises(ValueError, match="one per channel"):
        qparams_from_range(-1.0, 1.0, axis=0)
    with pytest.raises(ValueError, match="1-D"):
        qparams_from_range(-np.ones((2, 2)), np.ones((2, 2)), axis=0)
    with pytest.raises(ValueError, match="shape"):
        qparams_from_range(-np.ones(3), np.ones(2), axis=0)
    with pytest.raises(ValueError, match="out of bounds"):
        qparams_from_range(-np.ones((2, 2)), np.ones((2, 2)), axis=2, group_size=2)


def test_inputs_are_not_mutated():
    w = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    before = w.copy()
    for g in GRANULARITIES:
        fake_quantize(w, weight_qparams(w, g, bits=3, groups=4, group_size=2))
    per_channel_error(w, w * 0.5)
    np.testing.assert_array_equal(w, before)


# ----------------------------------------------------------------------------- the seed's G channel groups
def test_channel_groups_even_and_uneven_split():
    np.testing.assert_array_equal(channel_groups(6, 3), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(channel_groups(6, 1), [0] * 6)
    np.testing.assert_array_equal(channel_groups(6, 6), range(6))
    # 10 channels, 4 groups: sizes 3, 3, 2, 2 (numpy.array_split)
    np.testing.assert_array_equal(np.bincount(channel_groups(10, 4)), [3, 3, 2, 2])
    assert [len(a) for a in np.array_split(np.arange(10), 4)] == [3, 3, 2, 2]


@pytest.mark.parametrize("n, g, match", [(4, 5, "only 4 channels"), (4, 0, "positive"), (4, 1.5, "positive"),
                                         (0, 1, "positive"), (4, True, "positive")])
def test_channel_groups_bad_inputs(n, g, match):
    with pytest.raises(ValueError, match=match):
        channel_groups(n, g)


def test_channel_group_qparams_hand_values():
    w = np.array([[0.1, -0.2], [0.4, 0.0], [1.0, -3.0], [0.5, 0.5]])
    qp = channel_group_qparams(w, groups=2, bits=4, symmetric=True)
    assert qp.granularity == "per-channel" and qp.axis == 0
    np.testing.assert_allclose(qp.scale, [0.4 / 7, 0.4 / 7, 3.0 / 7, 3.0 / 7])
    np.testing.assert_array_equal(qp.zero_point, [0, 0, 0, 0])
    # asymmetric: group 1 spans [-0.2, 0.4], group 2 spans [-3, 1]
    qa = channel_group_qparams(w, groups=2, bits=8)
    np.testing.assert_allclose(qa.scale, [0.6 / 255] * 2 + [4.0 / 255] * 2)
    np.testing.assert_array_equal(qa.zero_point, [85, 85, 191, 191])  # round(0.2/0.6*255)=85, round(3/4*255)=191


@settings(max_examples=100, deadline=None)
@given(array_and_axis(), st.integers(2, 8), SCHEMES, st.data())
def test_channel_groups_g1_is_per_tensor_gc_is_per_channel_and_groups_match_slices(xa, bits, scheme, data):
    x, axis = xa
    n = x.shape[axis]
    pt = qparams_from_tensor(x, bits=bits, **scheme)
    g1 = channel_group_qparams(x, 1, axis=axis, bits=bits, **scheme)
    assert np.all(g1.scale == pt.scale) and np.all(g1.zero_point == pt.zero_point)
    np.testing.assert_array_equal(fake_quantize(x, g1), fake_quantize(x, pt))
    gc = channel_group_qparams(x, n, axis=axis, bits=bits, **scheme)
    pc = qparams_from_tensor(x, bits=bits, axis=axis, **scheme)
    np.testing.assert_array_equal(gc.scale, pc.scale)
    np.testing.assert_array_equal(gc.zero_point, pc.zero_point)
    G = data.draw(st.integers(1, n))
    qp = channel_group_qparams(x, G, axis=axis, bits=bits, **scheme)
    fq = fake_quantize(x, qp)
    for chans in np.array_split(np.arange(n), G):  # each group == per-tensor on its slice of channels
        sl = _slice(x.ndim, axis, chans)
        qg = qparams_from_tensor(x[sl], bits=bits, **scheme)
        assert np.all(qp.scale[chans] == qg.scale) and np.all(qp.zero_point[chans] == qg.zero_point)
        np.testing.assert_array_equal(fq[sl], fake_quantize(x[sl], qg))


def test_channel_group_qparams_bad_inputs():
    with pytest.raises(ValueError, match="only 3 channels"):
        channel_group_qparams(W2, 4)
    with pytest.raises(ValueError, match="out of bounds"):
        channel_group_qparams(W2, 1, axis=2)
    with pytest.raises(ValueError, match="NaN"):
        channel_group_qparams(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ValueError, match="bits"):
        channel_group_qparams(W2, 1, bits=1)


def test_weight_qparams_dispatch_and_errors():
    w = np.array([[0.1, -0.2, 0.4, 0.3], [2.0, -1.0, 0.5, 0.0]])
    assert weight_qparams(w, "per-tensor", bits=8).scale == pytest.approx(2.0 / 127)
    np.testing.assert_allclose(weight_qparams(w, "per-channel", bits=8).scale * 127, [0.4, 2.0])
    np.testing.assert_allclose(weight_qparams(w, "channel-groups", bits=8, groups=1).scale * 127, [2.0, 2.0])
    assert weight_qparams(w, "block-wise", bits=8, group_size=2).scale.shape == (2, 2)
    with pytest.raises(ValueError, match="needs groups"):
        weight_qparams(w, "channel-groups")
    with pytest.raises(ValueError, match="needs group_size"):
        weight_qparams(w, "block-wise")
    with pytest.raises(ValueError, match="granularity"):
        weight_qparams(w, "per-row")


# ----------------------------------------------------------------------------- storage cost
def test_effective_bits_hand_values():
    assert effective_bits_per_weight(4, 128) == 4.125  # 4-bit, group 128, fp16 scale
    assert effective_bits_per_weight(4, 32) == 4.5
    assert effective_bits_per_weight(3, 64, scale_bits=16, zero_point_bits=8) == 3.375
    assert effective_bits_per_weight(8, 1, scale_bits=32) == 40.0
    assert effective_bits_per_weight(4, 128, scale_bits=0) == 4.0


@pytest.mark.parametrize("args, match", [((4, 0), "group_size"), ((4, -1), "group_size"), ((4, True), "group_size"),
                                         ((1, 32), "bits"), ((4, 32, -16), "scale_bits"),
                                         ((4, 32, 16, 100), "zero_point_bits"), ((4, float("nan")), "group_size")])
def test_effective_bits_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        effective_bits_per_weight(*args)


def test_weights_per_scale_hand_values():
    assert weights_per_scale((128, 64), "per-tensor") == 8192
    assert weights_per_scale((128, 64), "per-channel") == 64
    assert weights_per_scale((10, 64), "channel-groups", groups=4) == 160  # uneven groups: 640 / 4 on average
    assert weights_per_scale((16, 8, 3, 3), "per-channel") == 72
    assert weights_per_scale((128, 64), "block-wise", group_size=32) == 32
    with pytest.raises(ValueError, match="group_size"):
        weights_per_scale((128, 64), "block-wise")
    with pytest.raises(ValueError, match="groups"):
        weights_per_scale((128, 64), "channel-groups", groups=200)


def test_group_size_sweep_points():
    w = np.random.default_rng(1).normal(size=(8, 16))
    pts = group_size_sweep(w, bits_list=(3, 4))
    assert [p.group_size for p in pts] == [1, 2, 4, 8, 16] * 2
    for p in pts:
        assert p.effective_bits == p.bits + 16 / p.group_size
    assert pts[0].mse < 1e-20  # one weight per scale: exact up to float rounding
    assert pts[-1].mse == pytest.approx(np.mean((fake_quantize(w, weight_qparams(w, "per-channel", bits=4)) - w) ** 2))


# ----------------------------------------------------------------------------- per-channel error
def test_per_channel_error_hand_values():
    w = np.array([[1.0, -1.0], [0.1, 0.2], [0.0, 0.0], [0.0, 0.0]])
    w_hat = np.array([[1.1, -0.9], [0.1, 0.2], [0.0, 0.0], [0.5, 0.0]])
    np.testing.assert_allclose(per_channel_error(w, w_hat), [0.01, 0.0, 0.0, 0.125])
    np.testing.assert_allclose(per_channel_error(w, w_hat, metric="max_abs"), [0.1, 0.0, 0.0, 0.5])
    s = per_channel_error(w, w_hat, metric="sqnr_db")
    assert s[0] == pytest.approx(20.0) and s[1] == np.inf and s[2] == np.inf and s[3] == -np.inf
    np.testing.assert_allclose(per_channel_error(w, w_hat, axis=1), [(0.01 + 0.25) / 4, 0.01 / 4])


def test_per_channel_error_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        per_channel_error(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="metric"):
        per_channel_error(np.zeros((2, 2)), np.zeros((2, 2)), metric="rmse")
    with pytest.raises(ValueError, match="out of bounds"):
        per_channel_error(np.zeros((2, 2)), np.zeros((2, 2)), axis=2)


# ----------------------------------------------------------------------------- model level
@pytest.fixture(scope="module")
def model_and_data():
    return qlib.reference_model(), qlib.load_digits()


def test_bn_folded_model_keeps_the_function_and_spreads_the_ranges(model_and_data):
    m, d = model_and_data
    W1 = m.linear_layers[0].W.copy()
    fm, info = bn_folded_model(m, d.X_train, n_quiet=4, shrink=1e-2)
    np.testing.assert_array_equal(m.linear_layers[0].W, W1)  # the original is untouched
    np.testing.assert_allclose(fm.forward(d.X_test), m.forward(d.X_test), rtol=1e-4, atol=1e-4)
    k = info.gamma / np.sqrt(info.var + 1e-5)
    np.testing.assert_allclose(info.k, k)
    np.testing.assert_allclose(fm.linear_layers[0].W, W1 * k[:, None].astype(np.float32), rtol=1e-6)
    assert np.all(info.k > 0)
    assert set(np.argsort(info.k)[-4:]) == set(info.quiet)  # the quiet channels get the largest k
    r = np.abs(fm.linear_layers[0].W).max(axis=1)
    assert r.max() / np.median(r) > 5  # a few channels with large ranges
    with pytest.raises(ValueError, match="layer"):
        bn_folded_model(m, d.X_train, layer="fc3")
    with pytest.raises(ValueError, match="shrink"):
        bn_folded_model(m, d.X_train, shrink=0)


def test_quantize_model_weights(model_and_data):
    m, d = model_and_data
    before = [lay.W.copy() for lay in m.linear_layers]
    q = quantize_model_weights(m, 4, "channel-groups", groups=16)  # fc3 has 10 channels: per-channel there
    for lay, w in zip(m.linear_layers, before):
        np.testing.assert_array_equal(lay.W, w)
    W3 = m.linear_layers[2].W
    np.testing.assert_array_equal(q.linear_layers[2].W, fake_quantize(W3, weight_qparams(W3, "per-channel", 4)))
    only = quantize_model_weights(m, 2, "per-tensor", layers=["fc2"])
    np.testing.assert_array_equal(only.linear_layers[0].W, before[0])
    assert not np.array_equal(only.linear_layers[1].W, before[1])
    fp32 = m.accuracy(d.X_test, d.y_test)
    assert weight_only_accuracy(m, d.X_test, d.y_test, 16, "per-tensor") == pytest.approx(fp32, abs=0.005)
    with pytest.raises(ValueError, match="not one of"):
        quantize_model_weights(m, 4, layers=["fc9"])
    with pytest.raises(ValueError, match="does not divide"):
        quantize_model_weights(m, 4, "block-wise", group_size=3)


# ----------------------------------------------------------------------------- notebook 04's checkers
def test_nb04_checkers_accept_right_and_reject_wrong_answers(model_and_data, capsys):
    from qlib import check

    w = np.array([[0.1, -0.2], [0.4, 0.0], [1.0, -3.0], [0.5, 0.5]])
    check.check_group_scales([0.4 / 7, 0.4 / 7, 3 / 7, 3 / 7], w, groups=2, bits=4)
    for wrong in ([0.4 / 7, 3 / 7], np.abs(w).max(axis=1) / 7, [3 / 7] * 4, [0.4 / 127] * 2 + [3 / 127] * 2):
        with pytest.raises(check.ExerciseError):
            check.check_group_scales(wrong, w, groups=2, bits=4)
    check.check_effective_bits(3.375)
    for wrong in (3.0, 3.25, 3.5, "three"):
        with pytest.raises(check.ExerciseError):
            check.check_effective_bits(wrong)
    W2 = model_and_data[0].linear_layers[1].W
    check.check_best_config((4, "block-wise", 64), W2)
    for wrong in ((4, "block-wise", 32), (4, "per-channel", None), ("best",), 7):
        with pytest.raises(check.ExerciseError):
            check.check_best_config(wrong, W2)
    out = capsys.readouterr().out
    assert "over the budget" in out and "Correct" in out


def test_per_channel_sqnr_of_tiny_and_huge_channels():
    # each channel has 10 % error: 20 dB, even where the squares under/overflow float64
    w = np.array([[1e-300, -1e-300], [1.0, -1.0], [1e300, -1e300], [0.0, 0.0]])
    w_hat = w * 1.1
    w_hat[3] = [0.0, 1e-3]                                  # a silent channel with an error: -inf
    got = per_channel_error(w, w_hat, axis=0, metric="sqnr_db")
    np.testing.assert_allclose(got[:3], 20.0, atol=1e-9)
    assert got[3] == -np.inf
    assert per_channel_error(w[:3], w[:3], axis=0, metric="sqnr_db").tolist() == [np.inf] * 3
