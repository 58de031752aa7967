"""qlib.linear: hand-computed values, the seed's worked examples, properties and bad inputs."""

import numpy as np
import pytest
from hypothesis import given, settings, assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qlib
from qlib.linear import (
    MIN_SCALE,
    QParams,
    code_dtype,
    dequantize,
    fake_quantize,
    integer_range,
    qparams_from_range,
    qparams_from_tensor,
    quantize,
    round_half_away,
    round_half_even,
    seed_scale,
    step_from_seed_scale,
)

# ----------------------------------------------------------------------------- the seed's examples


def test_seed_example_codes_and_dequantized_values():
    # [-1.8, -1.0, 0, 0.5]: S' = 255 / 2.3, Z = 199.565217 -> 200, Q = [0, 89, 200, 255]
    x = np.array([-1.8, -1.0, 0.0, 0.5])
    qp = qparams_from_range(x.min(), x.max(), bits=8)
    assert qp.zero_point == 200
    assert qp.qmin == 0 and qp.qmax == 255
    assert 1 / qp.scale == pytest.approx(110.869565, abs=1e-6)
    assert -qp.zero_point * qp.scale == pytest.approx(-1.803922, abs=1e-6)  # encoding-min
    assert (255 - qp.zero_point) * qp.scale == pytest.approx(0.496078, abs=1e-6)  # encoding-max
    q = quantize(x, qp)
    np.testing.assert_array_equal(q, [0, 89, 200, 255])
    assert q.dtype == np.uint8
    np.testing.assert_allclose(np.round(dequantize(q, qp), 4), [-1.8039, -1.0012, 0.0, 0.4961])


def test_seed_tie_example_zero_point_128_computed_aimets_way():
    qp = qparams_from_range(-5.1, 5.1, bits=8)
    assert qp.scale == pytest.approx(0.04)
    assert qp.zero_point == 128
    assert -qp.zero_point * qp.scale == pytest.approx(-5.12)
    assert (255 - qp.zero_point) * qp.scale == pytest.approx(5.08)
    # The trap the notebook shows: the seed's own order of operations lands just below the tie.
    assert seed_scale(-5.1, 5.1) * 5.1 < 127.5
    assert np.rint(seed_scale(-5.1, 5.1) * 5.1) == 127
    assert 5.1 / qp.scale > 127.5


def test_seed_all_positive_and_all_negative_ranges():
    pos = qparams_from_range(5.0, 10.0)
    assert pos.zero_point == 0 and pos.range[0] == 0.0 and pos.range[1] == pytest.approx(10.0)
    neg = qparams_from_range(-20.0, -6.0)
    assert neg.zero_point == 255 and neg.range[0] == pytest.approx(-20.0) and neg.range[1] == 0.0


def test_seed_scale_conversion():
    assert seed_scale(-1.8, 0.5) == pytest.approx(255 / 2.3)
    assert step_from_seed_scale(seed_scale(-1.8, 0.5)) == pytest.approx(qparams_from_range(-1.8, 0.5).scale)


# ----------------------------------------------------------------------------- hand-computed values


def test_integer_ranges():
    assert integer_range(8) == (0, 255)
    assert integer_range(8, signed=True) == (-128, 127)
    assert integer_range(8, signed=True, narrow_range=True) == (-127, 127)
    assert integer_range(4, signed=True) == (-8, 7)
    assert integer_range(2) == (0, 3)
    assert integer_range(16, signed=True) == (-32768, 32767)
    assert integer_range(32, signed=True) == (-(2**31), 2**31 - 1)


def test_code_dtypes():
    assert code_dtype(0, 15) == np.uint8
    assert code_dtype(-32768, 32767) == np.int16
    assert code_dtype(-(2**31), 2**31 - 1) == np.int32


def test_symmetric_scale_rules():
    qp = qparams_from_range(-2.0, 1.0, symmetric=True)  # max|x| = 2
    assert (qp.qmin, qp.qmax, qp.zero_point) == (-128, 127, 0)
    assert qp.scale == pytest.approx(2.0 / 127)
    pt = qparams_from_range(-2.0, 1.0, symmetric=True, scale_rule="half_range")
    assert pt.scale == pytest.approx(2.0 / 127.5)  # PyTorch
    nr = qparams_from_range(-2.0, 1.0, symmetric=True, narrow_range=True)
    assert (nr.qmin, nr.qmax) == (-127, 127) and nr.scale == pytest.approx(2.0 / 127)


def test_symmetric_unsigned_uses_middle_code():
    qp = qparams_from_range(-1.0, 1.0, symmetric=True, signed=False)
    assert qp.zero_point == 128 and qp.scale == pytest.approx(1.0 / 127)
    pt = qparams_from_range(-1.0, 1.0, symmetric=True, signed=False, scale_rule="half_range")
    assert pt.zero_point == 128 and pt.scale == pytest.approx(1.0 / 127.5)


def test_asymmetric_signed_codes():
    qp = qparams_from_range(-1.0, 3.0, signed=True)
    assert qp.scale == pytest.approx(4.0 / 255)
    assert qp.zero_point == -128 + round(1.0 / (4.0 / 255))  # -128 + 64 = -64
    assert qp.zero_point == -64


def test_quantize_hand_values_and_clipping():
    qp = QParams(scale=0.5, zero_point=2, qmin=0, qmax=7, bits=3)
    np.testing.assert_array_equal(quantize([-1.0, -0.2, 0.0, 0.74, 0.76, 2.5, 100.0], qp), [0, 2, 2, 3, 4, 7, 7])
    np.testing.assert_array_equal(dequantize(np.array([0, 2, 7]), qp), [-1.0, 0.0, 2.5])


def test_rounding_modes_differ_only_at_ties():
    qp = QParams(scale=1.0, zero_point=0, qmin=-128, qmax=127, bits=8)
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4, 0.6, -0.6])
    np.testing.assert_array_equal(quantize(x, qp), [-2, -2, 0, 0, 2, 2, 0, 1, -1])
    np.testing.assert_array_equal(quantize(x, qp, rounding="half_away"), [-3, -2, -1, 1, 2, 3, 0, 1, -1])


def test_round_half_away_avoids_the_floor_plus_half_trap():
    v = np.array([0.49999999999999994, -0.49999999999999994, 2.5, -2.5])
    np.testing.assert_array_equal(round_half_away(v), [0.0, 0.0, 3.0, -3.0])
    np.testing.assert_array_equal(round_half_even(np.array([2.5, 3.5])), [2.0, 4.0])


def test_float32_stays_float32_and_divides_in_float32():
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    qp = qparams_from_range(-1.0, 1.0)
    y = fake_quantize(x, qp)
    assert y.dtype == np.float32
    # same rule as ONNX Runtime: float32 x / float32 scale, rounded half to even
    expected = np.clip(np.rint(x / np.float32(qp.scale)) + qp.zero_point, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(quantize(x, qp), expected)


def test_dequantize_float32_matches_onnx_formula():
    qp = qparams_from_range(-1.0, 2.0)
    q = np.arange(256, dtype=np.uint8)
    expected = (q.astype(np.int32) - qp.zero_point).astype(np.float32) * np.float32(qp.scale)
    np.testing.assert_array_equal(dequantize(q, qp, dtype=np.float32), expected)


def test_dequantize_uint8_does_not_wrap():
    qp = qparams_from_range(-1.8, 0.5)
    q = np.array([0], dtype=np.uint8)
    assert dequantize(q, qp)[0] < 0  # uint8(0) - 200 would wrap to 56 without the int64 cast


def test_zero_width_range_is_legal():
    qp = qparams_from_range(0.0, 0.0)
    assert qp.scale == MIN_SCALE and qp.zero_point == 0
    np.testing.assert_array_equal(fake_quantize(np.zeros(5), qp), np.zeros(5))
    sym = qparams_from_range(0.0, 0.0, symmetric=True)
    assert sym.scale == MIN_SCALE and quantize([0.0], sym)[0] == 0
    # a dead channel next to live ones, per-channel
    w = np.array([[0.0, 0.0], [1.0, -2.0]])
    pc = qparams_from_tensor(w, symmetric=True, axis=0)
    np.testing.assert_array_equal(fake_quantize(w, pc)[0], [0.0, 0.0])


def test_bias_at_32_bits():
    s_in, s_w = 0.02, 0.003
    qp = QParams(scale=s_in * s_w, zero_point=0, qmin=-(2**31), qmax=2**31 - 1, bits=32)
    b = np.array([0.5, -0.25, 0.0], dtype=np.float32)
    q = quantize(b, qp)
    assert q.dtype == np.int32
    np.testing.assert_array_equal(q, np.rint(np.array([0.5, -0.25, 0.0]) / (s_in * s_w)).astype(np.int32))


def test_per_channel_hand_values():
    w = np.array([[0.1, -0.2, 0.4], [2.0, -1.0, 0.5]], dtype=np.float32)
    qp = qparams_from_tensor(w, bits=8, symmetric=True, axis=0)
    np.testing.assert_allclose(qp.scale, [0.4 / 127, 2.0 / 127], rtol=1e-6)
    q = quantize(w, qp)
    np.testing.assert_array_equal(q[0], [32, -64, 127])  # 0.1/(0.4/127) = 31.75 -> 32
    np.testing.assert_array_equal(q[1], [127, -64, 32])  # 1.0/(2/127) = 63.5 -> 64 (tie, even)


def test_block_wise_hand_values():
    w = np.array([[1.0, -1.0, 10.0, 5.0]])
    qp = qparams_from_tensor(w, bits=8, symmetric=True, axis=1, group_size=2)
    assert qp.scale.shape == (1, 2)
    np.testing.assert_allclose(qp.scale, [[1.0 / 127, 10.0 / 127]])
    np.testing.assert_array_equal(quantize(w, qp), [[127, -127, 127, 64]])  # 5/(10/127) = 63.5 -> 64


def test_inputs_are_not_modified():
    x = np.array([0.3, -0.7, 1.2], dtype=np.float32)
    before = x.copy()
    qp = qparams_from_tensor(x)
    quantize(x, qp)
    fake_quantize(x, qp)
    q = quantize(x, qp)
    q_before = q.copy()
    dequantize(q, qp)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(q, q_before)


def test_top_level_api_names():
    for name in ("qparams_from_range", "quantize", "dequantize", "fake_quantize", "QParams", "sqnr_db"):
        assert hasattr(qlib, name)


# ----------------------------------------------------------------------------- properties

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=64)
bits_st = st.integers(2, 16)


@st.composite
def range_and_params(draw, symmetric=None):
    lo = draw(finite)
    hi = draw(finite)
    lo, hi = min(lo, hi), max(lo, hi)
    sym = draw(st.booleans()) if symmetric is None else symmetric
    bits = draw(bits_st)
    signed = draw(st.sampled_from([None, True, False]))
    narrow = draw(st.booleans())
    rule = draw(st.sampled_from(["qmax", "half_range"]))
    qp = qparams_from_range(lo, hi, bits=bits, symmetric=sym, signed=signed, narrow_range=narrow, scale_rule=rule)
    return lo, hi, qp


@given(range_and_params(), st.lists(st.floats(0, 1), min_size=1, max_size=50))
@settings(max_examples=200, deadline=None)
def test_round_trip_error_at_most_half_a_step_inside_the_range(args, fractions):
    lo, hi, qp = args
    r_lo, r_hi = qp.range
    x = r_lo + np.array(fractions) * (r_hi - r_lo)  # inside the representable range
    err = np.abs(fake_quantize(x, qp) - x)
    assert np.all(err <= qp.scale / 2 * (1 + 1e-9) + 1e-12)


@given(range_and_params(), hnp.arrays(np.float64, st.integers(1, 40), elements=finite))
@settings(max_examples=200, deadline=None)
def test_codes_stay_inside_qmin_qmax(args, x):
    _, _, qp = args
    q = quantize(x, qp).astype(np.int64)
    assert q.min() >= qp.qmin and q.max() <= qp.qmax
    assert quantize(x, qp, rounding="half_away").astype(np.int64).max() <= qp.qmax


@given(range_and_params())
@settings(max_examples=200, deadline=None)
def test_real_zero_is_exactly_representable(args):
    _, _, qp = args
    assert quantize([0.0], qp)[0] == qp.zero_point
    assert fake_quantize(np.array([0.0]), qp)[0] == 0.0


@given(range_and_params(), hnp.arrays(np.float64, st.integers(1, 40), elements=finite))
@settings(max_examples=200, deadline=None)
def test_quantize_dequantize_quantize_is_quantize(args, x):
    _, _, qp = args
    q = quantize(x, qp)
    np.testing.assert_array_equal(quantize(dequantize(q, qp), qp), q)


@given(range_and_params(), hnp.arrays(np.float64, st.integers(1, 40), elements=finite))
@settings(max_examples=200, deadline=None)
def test_fake_quantize_is_idempotent(args, x):
    _, _, qp = args
    y = fake_quantize(x, qp)
    np.testing.assert_array_equal(fake_quantize(y, qp), y)


@given(range_and_params(), hnp.arrays(np.float64, st.integers(2, 40), elements=finite))
@settings(max_examples=200, deadline=None)
def test_quantize_is_monotonic(args, x):
    _, _, qp = args
    xs = np.sort(x)
    q = quantize(xs, qp).astype(np.int64)
    assert np.all(np.diff(q) >= 0)


@given(range_and_params(symmetric=False))
@settings(max_examples=200, deadline=None)
def test_asymmetric_range_covers_the_data_range_up_to_half_a_step(args):
    lo, hi, qp = args
    r_lo, r_hi = qp.range
    lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
    assert r_lo <= lo0 + qp.scale / 2 * (1 + 1e-9) + 1e-12
    assert r_hi >= hi0 - qp.scale / 2 * (1 + 1e-9) - 1e-12


@given(st.floats(1e-3, 1e3), bits_st, st.booleans())
@settings(max_examples=100, deadline=None)
def test_symmetric_grid_is_symmetric_around_zero(amax, bits, narrow):
    qp = qparams_from_range(-amax / 3, amax, bits=bits, symmetric=True, narrow_range=narrow)
    assume(qp.scale > MIN_SCALE)  # below that, the documented PyTorch-style floor on S applies
    x = np.array([amax, -amax, amax / 3, -amax / 3])
    y = fake_quantize(x, qp)
    assert y[0] == -y[1] and y[2] == -y[3]
    assert y[0] == pytest.approx(amax)


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5), elements=finite),
       st.data(), bits_st, st.booleans())
@settings(max_examples=100, deadline=None)
def test_per_axis_equals_looping_per_tensor(x, data, bits, sym):
    axis = data.draw(st.integers(0, x.ndim - 1))
    qp = qparams_from_tensor(x, bits=bits, symmetric=sym, axis=axis)
    y = fake_quantize(x, qp)
    for c in range(x.shape[axis]):
        xc = np.take(x, c, axis=axis)
        qc = qparams_from_tensor(xc, bits=bits, symmetric=sym)
        np.testing.assert_array_equal(np.take(y, c, axis=axis), fake_quantize(xc, qc))


@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), bits_st, st.booleans(), st.data())
@settings(max_examples=100, deadline=None)
def test_block_wise_equals_looping_per_tensor(rows, n_blocks, g, bits, sym, data):
    x = data.draw(hnp.arrays(np.float64, (rows, n_blocks * g), elements=finite))
    qp = qparams_from_tensor(x, bits=bits, symmetric=sym, axis=1, group_size=g)
    y = fake_quantize(x, qp)
    for r in range(rows):
        for b in range(n_blocks):
            blk = x[r, b * g:(b + 1) * g]
            np.testing.assert_array_equal(y[r, b * g:(b + 1) * g], fake_quantize(blk, qparams_from_tensor(blk, bits=bits, symmetric=sym)))


@given(range_and_params(), hnp.arrays(np.float32, st.integers(1, 30), elements=st.floats(-1e4, 1e4, width=32)))
@settings(max_examples=100, deadline=None)
def test_half_even_and_half_away_differ_by_at_most_one_code(args, x):
    _, _, qp = args
    a = quantize(x, qp).astype(np.int64)
    b = quantize(x, qp, rounding="half_away").astype(np.int64)
    assert np.all(np.abs(a - b) <= 1)


@given(st.integers(2, 16), st.booleans())
@settings(max_examples=50, deadline=None)
def test_more_bits_never_increase_the_step(bits, sym):
    assume(bits < 16)
    a = qparams_from_range(-1.3, 2.7, bits=bits, symmetric=sym)
    b = qparams_from_range(-1.3, 2.7, bits=bits + 1, symmetric=sym)
    assert b.scale < a.scale


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: qparams_from_range(1.0, -1.0), "upside down"),
        (lambda: qparams_from_range(np.nan, 1.0), "NaN"),
        (lambda: qparams_from_range(-np.inf, 1.0), "infinite"),
        (lambda: qparams_from_range(-1.0, 1.0, bits=1), "bits=1 is out of range"),
        (lambda: qparams_from_range(-1.0, 1.0, bits=17), "bits=17 is out of range"),
        (lambda: qparams_from_range(-1.0, 1.0, bits=8.5), "whole number"),
        (lambda: qparams_from_range(-1.0, 1.0, scale_rule="foo"), "scale_rule"),
        (lambda: qparams_from_range([-1.0, -2.0], [1.0, 2.0]), "per-tensor quantization needs a single"),
        (lambda: qparams_from_range(-1.0, 1.0, axis=0), "needs arrays"),
        (lambda: qparams_from_range(-1.0, 1.0, group_size=4), "group_size needs an axis"),
        (lambda: qparams_from_range([-1.0], [1.0, 2.0], axis=0), "shape"),
        (lambda: qparams_from_tensor(np.zeros((4, 6)), axis=2), "out of bounds"),
        (lambda: qparams_from_tensor(np.zeros((4, 6)), axis=1, group_size=4), "does not divide"),
        (lambda: qparams_from_tensor(np.zeros((4, 6)), axis=1, group_size=0), "positive integer"),
        (lambda: qparams_from_tensor(np.zeros((4, 6)), axis=1.5), "axis must be an integer"),
        (lambda: quantize([], qparams_from_range(-1, 1)), "empty"),
        (lambda: quantize([1.0, np.nan], qparams_from_range(-1, 1)), "NaN"),
        (lambda: quantize(np.array([1, 2], dtype=np.int32), qparams_from_range(-1, 1)), "integer dtype"),
        (lambda: quantize(["a"], qparams_from_range(-1, 1)), "real numbers"),
        (lambda: quantize([1.0], qparams_from_range(-1, 1), rounding="up"), "rounding"),
        (lambda: quantize([1.0], {"scale": 1.0}), "QParams"),
        (lambda: dequantize(np.array([256]), qparams_from_range(-1, 1)), r"\[qmin, qmax\]"),
        (lambda: dequantize(np.array([-1]), qparams_from_range(-1, 1)), r"\[qmin, qmax\]"),
        (lambda: dequantize(np.array([0.5]), qparams_from_range(-1, 1)), "integer codes"),
        (lambda: dequantize(np.array([], dtype=np.int8), qparams_from_range(-1, 1)), "empty"),
        (lambda: QParams(scale=0.0, zero_point=0, qmin=0, qmax=255, bits=8), "scale must be > 0"),
        (lambda: QParams(scale=-1.0, zero_point=0, qmin=0, qmax=255, bits=8), "scale must be > 0"),
        (lambda: QParams(scale=1.0, zero_point=300, qmin=0, qmax=255, bits=8), "outside"),
        (lambda: QParams(scale=1.0, zero_point=1.5, qmin=0, qmax=255, bits=8), "whole numbers"),
        (lambda: QParams(scale=1.0, zero_point=0, qmin=0, qmax=300, bits=8), "valid 8-bit"),
        (lambda: QParams(scale=[1.0, 2.0], zero_point=[0], qmin=0, qmax=255, bits=8, axis=0), "must match"),
        (lambda: fake_quantize(np.zeros((3, 4)), qparams_from_tensor(np.ones((4, 4)), axis=0)), "4 channels"),
        (lambda: seed_scale(0.0, 0.0), "zero-width"),
        (lambda: step_from_seed_scale(0.0), "positive"),
    ],
)
def test_bad_input_gives_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("qp", [qparams_from_range(-2.0, 1.5), qparams_from_range(-2.0, 2.0, symmetric=True),
                                qparams_from_range(-2.0, 2.0, bits=16, symmetric=True)])
def test_blocked_fast_path_equals_the_formula_on_large_tensors(dtype, qp):
    from qlib.linear import _BLOCK

    x = (np.random.default_rng(1).normal(0, 1.5, (3, _BLOCK + 5)) * 2).astype(dtype)
    x_view = x[:, ::2]  # non-contiguous input
    for arr in (x, x_view):
        want = np.clip(np.rint(arr / dtype(qp.scale)) + qp.zero_point, qp.qmin, qp.qmax).astype(qp.dtype)
        got = quantize(arr, qp)
        assert got.dtype == qp.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, want)


def test_scalar_input_works():
    qp = qparams_from_range(-1.0, 1.0)
    for x in (0.3, np.float32(0.3), np.array(0.3)):
        q = quantize(x, qp)
        assert q.shape == () and int(q) == 38 + 128  # 0.3 / (2/255) = 38.25
        assert fake_quantize(x, qp).shape == ()
        assert dequantize(q, qp).shape == ()
    assert np.asarray(fake_quantize(np.float32(0.3), qp)).dtype == np.float32


# ----------------------------------------------------------------------------- no silent inf/NaN (issue 11, item 12)
F32_MAX = float(np.finfo(np.float32).max)


def test_fake_quantize_float32_near_max_refuses_instead_of_returning_inf():
    # the grid's top value 128 * S = 3.41e38 does not exist in float32: before, the result held inf
    x = np.array([-3.4e38, 0.0, 3.4e38], np.float32)
    qp = qparams_from_tensor(x)
    with pytest.raises(ValueError, match="overflows float32"):
        fake_quantize(x, qp)
    with pytest.raises(ValueError, match="overflows float32"):
        dequantize(quantize(x, qp), qp, dtype=np.float32)
    # the same grid in float64 is fine, and codes are right in float32 too
    got = fake_quantize(x.astype(np.float64), qp)
    assert np.isfinite(got).all() and np.all(np.abs(got - x) <= qp.scale / 2)
    assert quantize(x, qp).tolist() == [0, qp.zero_point, 255]
    # a grid that stays below float32's max still works right up to it
    qp_ok = qparams_from_range(-3.0e38, 3.0e38)
    y = np.array([-3.0e38, 1e38, 3.0e38], np.float32)
    out = fake_quantize(y, qp_ok)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert np.all(np.abs(out.astype(np.float64) - y) <= qp_ok.scale / 2 + 2 * np.finfo(np.float32).eps * np.abs(y))


def test_ranges_wider_than_float64_max_give_a_finite_scale():
    # hi - lo = 3.4e308 overflowed to inf: before, QParams refused its own scale ("infinite")
    qp = qparams_from_range(-1.7e308, 1.7e308)
    assert np.isfinite(qp.scale) and qp.scale == pytest.approx(1.7e308 / 127.5, rel=1e-12)
    assert qp.zero_point == 128
    x = np.array([-1.7e308, -1e300, 0.0, 1e307, 1.7e308])
    out = fake_quantize(x, qp)
    assert np.isfinite(out).all() and out[2] == 0.0
    assert np.all(np.abs(out - x) <= qp.scale / 2 * (1 + 1e-12))
    qp_sym = qparams_from_range(-1.7e308, 1.7e308, symmetric=True)
    assert qp_sym.scale == pytest.approx(1.7e308 / 127)
    # a huge range of the seed's S' used to give S' = 0.0 silently
    assert seed_scale(-1.7e308, 1.7e308) == pytest.approx(127.5 / 1.7e308)


@pytest.mark.parametrize("scale", [1e-50, 1e-40, 1e60])
def test_scale_float32_cannot_hold_is_refused_for_float32_data(scale):
    # float32(1e-50) = 0 and float32(1e60) = inf: before, 0/0 and 0*inf gave NaN
    qp = QParams(scale=scale, zero_point=0, qmin=-128, qmax=127, bits=8)
    x = np.array([0.0, 1.0, -2.0], np.float32)
    for call in (lambda: fake_quantize(x, qp), lambda: quantize(x, qp),
                 lambda: dequantize(np.array([0, 5]), qp, dtype=np.float32)):
        with pytest.raises(ValueError, match="cannot be used with float32"):
            call()
    # float64 data: computed correctly
    out = fake_quantize(x.astype(np.float64), qp)
    want = np.clip(np.rint(x.astype(np.float64) / scale), -128, 127) * scale
    np.testing.assert_array_equal(out, want)
    assert np.isfinite(dequantize(np.array([0, 5]), qp)).all()


def test_dequantize_refuses_overflowing_output_dtype():
    qp = QParams(scale=1.0, zero_point=0, qmin=-(2**31), qmax=2**31 - 1, bits=32)
    with pytest.raises(ValueError, match="overflows float16"):
        dequantize(np.array([100000]), qp, dtype=np.float16)  # 1e5 > float16's 65504
    assert dequantize(np.array([1000]), qp, dtype=np.float16).tolist() == [1000.0]
    with pytest.raises(ValueError, match="overflows float64"):
        dequantize(np.array([255]), QParams(scale=1e307, zero_point=0, qmin=0, qmax=255, bits=8))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_fake_quantize_returns_the_input_dtype(dtype):
    qp = qparams_from_range(-1.0, 2.0)
    x = np.array([-1.0, 0.3, 0.0, 1.7, 2.5], dtype)
    out = fake_quantize(x, qp)
    assert out.dtype == dtype  # float16 used to come back as float64
    ct = np.float32 if dtype == np.float32 else np.float64  # float32 is computed in float32, float16 in float64
    S = ct(qp.scale)
    want = (S * np.clip(np.rint(x.astype(ct) / S), qp.qmin - qp.zero_point, qp.qmax - qp.zero_point)).astype(dtype)
    np.testing.assert_array_equal(out, want)
    assert fake_quantize(x[1], qp).dtype == dtype  # numpy scalar
    assert fake_quantize(x.reshape(5, 1), QParams(scale=[0.1] * 5, zero_point=[0] * 5, qmin=-8, qmax=7,
                                                  bits=4, axis=0)).dtype == dtype


def test_former_type_errors_are_value_errors():
    with pytest.raises(ValueError, match="single x_min and x_max"):
        seed_scale(np.zeros(3), np.ones(3))
    for bad in (None, "3", [1.0, 2.0], True, object()):
        with pytest.raises(ValueError, match="S'"):
            step_from_seed_scale(bad)
    with pytest.raises(ValueError, match="dtype must be a float dtype"):
        dequantize(np.array([1]), qparams_from_range(-1, 1), dtype="bogus")
    with pytest.raises(ValueError, match="overflows float64"):
        step_from_seed_scale(1e-320)
    assert step_from_seed_scale(np.float32(4.0)) == 0.25 and step_from_seed_scale(np.array([2.0])) == 0.5


_QP = qparams_from_range(-1.0, 1.0)
_DATES = [np.array(["2020-01-01", "2021-06-01"], dtype="datetime64[D]"), np.datetime64("2020-01-01"),
          np.array([1, 2], dtype="timedelta64[s]"), np.timedelta64(5, "s")]
_BOOLS = [np.array([True, False]), [True, False], True, np.bool_(False)]


@pytest.mark.parametrize("bad", _DATES + _BOOLS + [__import__("datetime").datetime(2020, 1, 1),
                                                   [__import__("datetime").timedelta(days=1)]])
def test_dates_time_spans_and_booleans_are_not_real_values(bad):
    for call in (lambda: quantize(bad, _QP), lambda: fake_quantize(bad, _QP),
                 lambda: qparams_from_range(bad, bad), lambda: qparams_from_tensor(bad),
                 lambda: qlib._validate.as_float_array(bad)):
        with pytest.raises(ValueError, match="dates|booleans|real numbers"):
            call()


@pytest.mark.parametrize("bad", [np.array([1, 2], dtype="datetime64[s]"), np.array([True]),
                                 np.array([1], dtype="timedelta64[s]")])
def test_dequantize_refuses_non_integer_codes(bad):
    with pytest.raises(ValueError, match="integer codes"):
        dequantize(bad, _QP)


@pytest.mark.parametrize("flag, value", [("symmetric", "yes"), ("symmetric", 1), ("narrow_range", 1.5),
                                         ("narrow_range", "no"), ("signed", "no"), ("signed", 0)])
def test_flags_must_be_booleans(flag, value):
    with pytest.raises(ValueError, match=f"{flag} must be True or False"):
        qparams_from_range(-1.0, 1.0, **{flag: value})
    with pytest.raises(ValueError, match=f"{flag} must be True or False"):
        qparams_from_tensor(np.array([-1.0, 1.0]), **{flag: value})
    if flag != "symmetric":
        with pytest.raises(ValueError, match=f"{flag} must be True or False"):
            integer_range(8, **{flag: value})
    else:
        with pytest.raises(ValueError, match="symmetric must be True or False"):
            QParams(scale=1.0, zero_point=0, qmin=0, qmax=3, bits=2, symmetric=value)
    # numpy's bool_ is a real boolean
    qparams_from_range(-1.0, 1.0, **{flag: np.bool_(True)})


def test_uint64_codes_beyond_int64_are_not_wrapped():
    qp = QParams(scale=1.0, zero_point=0, qmin=-128, qmax=127, bits=8)
    with pytest.raises(ValueError, match=r"\[qmin, qmax\]"):
        dequantize(np.array([2**64 - 1], np.uint64), qp)  # used to wrap to -1, a valid code


# property tests of the design for float16 / float32 / float64 inputs, over wide magnitudes
_DTYPES = [np.float16, np.float32, np.float64]


@st.composite
def typed_case(draw, max_bits=16):
    dtype = draw(st.sampled_from(_DTYPES))
    info = np.finfo(dtype)
    top = float(info.max) / 8
    mag = draw(st.sampled_from([1e-6, 1.0, 1e3, top]))
    lo = draw(st.floats(-mag, mag, allow_nan=False, width=64))
    hi = draw(st.floats(-mag, mag, allow_nan=False, width=64))
    lo, hi = min(lo, hi), max(lo, hi)
    bits = draw(st.integers(2, 8 if dtype == np.float16 else max_bits))
    sym = draw(st.booleans())
    qp = qparams_from_range(lo, hi, bits=bits, symmetric=sym, signed=draw(st.sampled_from([None, True, False])),
                            narrow_range=draw(st.booleans()), scale_rule=draw(st.sampled_from(["qmax", "half_range"])))
    fr = draw(hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 1)))
    r_lo, r_hi = (float(v) for v in qp.range)
    x = (r_lo + fr * (r_hi - r_lo)).astype(dtype)
    x = np.clip(x, r_lo, r_hi).astype(dtype)
    return dtype, qp, x


@given(typed_case())
@settings(max_examples=300, deadline=None)
def test_typed_round_trip_error_at_most_half_a_step(case):
    dtype, qp, x = case
    out = fake_quantize(x, qp)
    assert out.dtype == dtype and np.isfinite(out).all()
    eps = float(np.finfo(dtype).eps)
    x64, o64 = x.astype(np.float64), out.astype(np.float64)
    # S/2 from rounding, plus the dtype's own rounding of x / S and of S * q
    bound = qp.scale / 2 + 2 * eps * np.maximum(np.abs(x64), np.abs(o64)) + float(np.finfo(dtype).smallest_subnormal)
    assert np.all(np.abs(o64 - x64) <= bound)


@given(typed_case())
@settings(max_examples=300, deadline=None)
def test_typed_codes_inside_range_zero_exact_and_requantize_stable(case):
    dtype, qp, x = case
    q = quantize(x, qp)
    assert q.dtype == qp.dtype and qp.qmin <= int(q.min()) and int(q.max()) <= qp.qmax
    zero = np.zeros(3, dtype)
    assert quantize(zero, qp).tolist() == [qp.zero_point] * 3
    assert np.all(fake_quantize(zero, qp) == 0)
    # quantize o dequantize o quantize = quantize, dequantizing in the data's own precision
    deq_dtype = np.float32 if dtype == np.float32 else np.float64
    r = dequantize(q, qp, dtype=deq_dtype).astype(dtype)
    np.testing.assert_array_equal(quantize(r, qp), q)
    # fake_quantize is idempotent
    fq = fake_quantize(x, qp)
    np.testing.assert_array_equal(fake_quantize(fq, qp), fq)


@given(st.sampled_from(_DTYPES), st.sampled_from([(), (0,), (3, 0)]))
@settings(max_examples=20, deadline=None)
def test_zero_d_and_empty_inputs(dtype, shape):
    qp = qparams_from_range(-1.0, 1.0)
    x = np.zeros(shape, dtype) + dtype(0.25)
    if x.size == 0:
        with pytest.raises(ValueError, match="empty"):
            fake_quantize(x, qp)
        with pytest.raises(ValueError, match="empty"):
            quantize(x, qp)
    else:
        out = fake_quantize(x, qp)
        assert out.shape == () and out.dtype == dtype
        assert quantize(x, qp).shape == ()


@settings(max_examples=25, deadline=None)
@given(pos=st.integers(0, 3 * 2**16), bad=st.sampled_from([np.nan, np.inf, -np.inf]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_large_tensor_fast_path_refuses_nan_and_inf(pos, bad, dtype):
    # tensors >= 65536 values take the blocked fast path, which checks finiteness block by block
    x = np.linspace(-1, 1, 3 * 2**16 + 1).astype(dtype)
    qp = qparams_from_range(-1.0, 1.0, bits=8)
    x[pos] = bad
    with pytest.raises(ValueError, match="NaN|infinite"):
        quantize(x, qp)


def test_large_tensor_fast_path_huge_finite_values_clamp():
    # x / S overflowing to inf is not bad input: it clamps, as on the small path
    x = np.full(2**17, 3e38, np.float32)
    x[::2] = -3e38
    qp = qparams_from_range(-1.0, 1.0, bits=8)
    np.testing.assert_array_equal(quantize(x, qp), np.where(x > 0, qp.qmax, qp.qmin))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), bits=st.integers(2, 16), symmetric=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(2**16, 3 * 2**16 + 7))
def test_blocked_fast_paths_equal_the_formula_bit_for_bit(seed, bits, symmetric, dtype, n):
    # quantize / fake_quantize of >= 65536 values run block by block: same numbers as the one-line path
    x = np.random.default_rng(seed).standard_normal(n).astype(dtype) * 3
    qp = qparams_from_range(-2.0, 1.5, bits=bits, symmetric=symmetric)   # some values clip
    small = lambda f: np.concatenate([f(x[i:i + 4096], qp) for i in range(0, n, 4096)])  # noqa: E731
    got_q, got_fq = quantize(x, qp), fake_quantize(x, qp)
    assert got_fq.dtype == dtype
    np.testing.assert_array_equal(got_q, small(quantize))
    np.testing.assert_array_equal(got_fq, small(fake_quantize))


def test_fake_quantize_fast_path_refuses_nan():
    x = np.zeros(2**17, np.float32)
    x[100_000] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fake_quantize(x, qparams_from_range(-1.0, 1.0, bits=8))
