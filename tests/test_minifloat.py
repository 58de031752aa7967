"""qlib.minifloat: bit-exact against ml_dtypes on every bit pattern and on dense float inputs."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qlib import minifloat as mf

NAMES = tuple(mf.FLOAT_FORMATS)
NO_NAN = ("e3m2", "e2m3", "e2m1")  # FP6/FP4: NaN input raises in qlib


def ml(fmt):
    return getattr(ml_dtypes, mf.ML_DTYPES_NAMES[fmt])


def ml_codes(x, fmt):
    """ml_dtypes' bit patterns for x (uint8)."""
    return np.asarray(x).astype(ml(fmt)).view(np.uint8)


def same_floats(a, b):
    """Equal as floats, NaN == NaN, and the sign bit of zeros and NaNs equal too."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))) and np.all(np.signbit(a) == np.signbit(b)))


@pytest.mark.parametrize("fmt", NAMES)
def test_decode_every_bit_pattern(fmt):
    f = mf.FLOAT_FORMATS[fmt]
    codes = np.arange(2**f.bits, dtype=np.uint8)
    ref = codes.view(ml(fmt)).astype(np.float32)
    assert same_floats(mf.decode(codes, fmt), ref)


@pytest.mark.parametrize("fmt", NAMES)
def test_format_table_agrees_with_ml_dtypes_finfo(fmt):
    f, fi = mf.FLOAT_FORMATS[fmt], ml_dtypes.finfo(ml(fmt))
    assert f.bits == fi.bits
    assert f.max_finite == float(fi.max)
    assert f.min_normal == float(fi.smallest_normal)
    assert f.min_subnormal == float(fi.smallest_subnormal)
    assert f.mantissa_bits == fi.nmant
    assert 2.0**f.emax <= f.max_finite < 2.0 ** (f.emax + 1)


def dense_inputs(fmt, dtype):
    """Every value of fmt, every midpoint between neighbours (the ties), points just beside the
    midpoints, values beyond the range, subnormals, +-0, +-inf, NaN, and a log-uniform cloud."""
    v = mf.all_values(fmt).astype(np.float64)
    v = v[v >= 0] if mf.FLOAT_FORMATS[fmt].signed else v
    mids = (v[1:] + v[:-1]) / 2
    f = mf.FLOAT_FORMATS[fmt]
    top = np.array([f.max_finite * k for k in (1.01, 1.0625, 1.1, 1.125, 1.2, 1.25, 1.5, 2.0, 1e3)])
    rng = np.random.default_rng(0)
    cloud = np.exp2(rng.uniform(-140, 140, 20000)) * rng.choice([-1, 1], 20000)
    pos = np.concatenate([v, mids, top, cloud[cloud > 0], [0.0, f.min_subnormal / 2, f.min_subnormal / 4]])
    with np.errstate(over="ignore"):  # 2^140 is beyond float32: inf, which is wanted too
        x = np.concatenate([pos, -pos, [np.inf, -np.inf, np.nan, -np.nan]]).astype(dtype)
    near = np.concatenate([np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])
    x = np.concatenate([x, near])
    if fmt in NO_NAN:
        x = x[~np.isnan(x)]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt", NAMES)
def test_encode_matches_ml_dtypes_on_dense_inputs(fmt, dtype):
    x = dense_inputs(fmt, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = ml_codes(x, fmt)
    got = mf.encode(x, fmt)
    bad = np.flatnonzero(got != ref)
    assert bad.size == 0, f"{bad.size} mismatches, e.g. x={x[bad[:5]]}: qlib {got[bad[:5]]}, ml_dtypes {ref[bad[:5]]}"
    assert same_floats(mf.cast(x, fmt), ref.view(ml(fmt)).astype(np.float32))


@given(hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(width=32, allow_nan=True)))
@settings(max_examples=200, deadline=None)
def test_encode_matches_ml_dtypes_on_random_float32(x):
    for fmt in NAMES:
        xx = x[~np.isnan(x)] if fmt in NO_NAN else x
        with np.errstate(over="ignore", invalid="ignore"):
            np.testing.assert_array_equal(mf.encode(xx, fmt), ml_codes(xx, fmt), err_msg=fmt)


def test_hand_values_cast_vs_saturate():
    # the course's headline: 500 has no E4M3FN value; cast -> NaN, saturate -> 448
    assert np.isnan(mf.cast([500.0], "e4m3fn")[0])
    assert mf.cast([500.0], "e4m3fn", saturate=True)[0] == 448.0
    assert mf.cast([-np.inf], "e4m3fn", saturate=True)[0] == -448.0
    # 464 = 448 + half a step (32/2): a tie, goes to the even mantissa 110 (448); just above -> NaN
    assert mf.cast([464.0], "e4m3fn")[0] == 448.0
    assert np.isnan(mf.cast([np.nextafter(np.float32(464), np.float32(1e9))], "e4m3fn")[0])
    # e5m2 overflows to inf from 61440 (57344 + half of 8192, a tie to the even 65536)
    assert mf.cast([61439.0], "e5m2")[0] == 57344.0 and mf.cast([61440.0], "e5m2")[0] == np.inf
    assert mf.cast([1e6], "e5m2", saturate=True)[0] == 57344.0
    # FP4: 0.25 ties to 0, 0.75 ties to 1, 2.5 ties to 2, 5 ties to 4, beyond 6 saturates
    np.testing.assert_array_equal(mf.cast([0.25, 0.75, 2.5, 5.0, 7.0, -9.0], "e2m1"), [0, 1, 2, 4, 6, -6])
    # e8m0 rounds ties up, has no zero and no sign
    np.testing.assert_array_equal(mf.encode([1.0, 1.5, 3.0, 2.0**-130], "e8m0"), [127, 128, 129, 0])
    assert np.isnan(mf.cast([0.0, -1.0, 2.0**128], "e8m0")).all()
    assert mf.cast([2.0**128], "e8m0", saturate=True)[0] == 2.0**127
    # subnormals of e4m3fn: 2^-9 is the smallest, 2^-10 is a tie to 0
    np.testing.assert_array_equal(mf.cast([2.0**-9, 2.0**-10, 3 * 2.0**-10], "e4m3fn"), [2.0**-9, 0, 2 * 2.0**-9])


def test_negative_zero_and_nan_sign_survive():
    assert mf.encode([-0.0], "e4m3fn")[0] == 0x80 and mf.encode([-0.0], "e2m1")[0] == 0x8
    assert mf.encode([-np.nan], "e4m3fn")[0] == 0xFF and mf.encode([np.nan], "e5m2")[0] == 0x7E


@pytest.mark.parametrize("fmt", NAMES)
def test_saturate_never_overflows_and_matches_cast_in_range(fmt):
    f = mf.FLOAT_FORMATS[fmt]
    x = np.concatenate([dense_inputs(fmt, np.float64)])
    x = x[~np.isnan(x)]
    if not f.signed:
        x = x[x > 0]
    sat = mf.cast(x, fmt, saturate=True)
    assert np.all(np.isfinite(sat)) and np.all(np.abs(sat) <= f.max_finite)
    inside = np.abs(x) <= f.max_finite
    np.testing.assert_array_equal(sat[inside], mf.cast(x[inside], fmt))


@pytest.mark.parametrize("fmt", NAMES)
def test_decode_encode_round_trip_on_all_codes(fmt):
    f = mf.FLOAT_FORMATS[fmt]
    codes = np.arange(2**f.bits, dtype=np.uint8)
    vals = mf.decode(codes, fmt)
    keep = ~np.isnan(vals)
    np.testing.assert_array_equal(mf.encode(vals[keep], fmt), codes[keep])


def test_all_values_counts():
    # 2^8 patterns - 2 NaNs - 1 duplicate zero; e5m2: -2 inf - 6 NaN - 1 zero; FP6: 64 - 1; FP4: 16 - 1
    assert [len(mf.all_values(n)) for n in NAMES] == [253, 247, 63, 63, 15, 255]


@pytest.mark.parametrize("call", [
    lambda: mf.encode([1.0], "fp8"),
    lambda: mf.encode([1.0], "float8_e4m3fn"),
    lambda: mf.cast(np.array([1, 2], np.int32), "e4m3fn"),
    lambda: mf.cast(["a"], "e4m3fn"),
    lambda: mf.cast([1 + 2j], "e4m3fn"),
    lambda: mf.cast([np.nan], "e2m1"),
    lambda: mf.decode(np.array([16], np.uint8), "e2m1"),
    lambda: mf.decode(np.array([-1]), "e4m3fn"),
    lambda: mf.decode(np.array([1.0]), "e4m3fn"),
    lambda: mf.decode(np.array([1.0]).astype(ml_dtypes.float8_e4m3fn), "e4m3fn"),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_inputs_not_modified_and_empty_ok():
    x = np.array([1.0, 500.0], np.float32)
    mf.cast(x, "e4m3fn", saturate=True)
    np.testing.assert_array_equal(x, [1.0, 500.0])
    assert mf.cast(np.zeros(0, np.float32), "e2m1").shape == (0,)
    assert mf.encode(np.ones((2, 3)), "e5m2").shape == (2, 3)
