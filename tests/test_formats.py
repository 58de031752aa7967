"""qlib.formats (notebook 01's byte tables; the explorer is tested in test_widgets_formats.py)."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qlib.formats import (
    FORMATS,
    from_bfloat16_bits,
    pack_6bit,
    pack_int4,
    round_to_format,
    storage_bytes,
    to_bfloat16_bits,
    unpack_6bit,
    unpack_int4,
)


def test_bfloat16_hand_values():
    # 1 + 2^-8 is exactly halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to even (1.0)
    x = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, -0.0], np.float32)
    np.testing.assert_array_equal(from_bfloat16_bits(to_bfloat16_bits(x)), [1.0, 1.0, 1 + 2**-6, -0.0])


@given(hnp.arrays(np.float32, st.integers(1, 50), elements=st.floats(-2.0**100, 2.0**100, width=32)))
@settings(max_examples=100, deadline=None)
def test_bfloat16_is_the_nearest_bf16_value(x):
    y = from_bfloat16_bits(to_bfloat16_bits(x)).astype(np.float64)
    # relative error at most half a bf16 ulp (2^-8); among subnormals (below 2^-126) the gap is
    # a fixed 2^-133, so the error there is at most 2^-134. The result keeps 7 mantissa bits only.
    assert np.all(np.abs(y - x) <= np.abs(x.astype(np.float64)) * 2.0**-8 + 2.0**-134)
    assert np.all((y.astype(np.float32).view(np.uint32) & 0xFFFF) == 0)


@given(hnp.arrays(np.int8, st.integers(0, 41), elements=st.integers(-8, 7)))
@settings(max_examples=100, deadline=None)
def test_int4_pack_round_trip(q):
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and packed.size == (q.size + 1) // 2
    np.testing.assert_array_equal(unpack_int4(packed, q.size), q)


def test_storage_bytes_are_measured_ratios():
    w = np.ones((10, 7), np.float32)  # 70 values: int4 needs 35 bytes
    assert [storage_bytes(w, f) for f in ("fp32", "fp16", "bf16", "int8", "int4")] == [280, 140, 140, 70, 35]


def test_round_to_format_integer_grid_clips():
    np.testing.assert_array_equal(round_to_format(np.array([0.26, 5.0, -5.0]), "int4", 0.5), [0.5, 3.5, -4.0])


@pytest.mark.parametrize("call", [
    lambda: pack_int4(np.array([8])),
    lambda: pack_int4(np.array([0.5])),
    lambda: unpack_int4(np.array([1], np.uint8), 3),
    lambda: from_bfloat16_bits(np.array([1], np.int32)),
    lambda: storage_bytes(np.ones(3), "fp8"),
    lambda: round_to_format(np.ones(3), "int8", int_scale=0.0),
    lambda: to_bfloat16_bits(np.array([np.inf])),
    lambda: round_to_format(np.ones(3), "fp8_e4m3", saturate="yes"),
    lambda: pack_6bit(np.array([64])),
    lambda: pack_6bit(np.array([1.0])),
    lambda: unpack_6bit(np.zeros(4, np.uint8), 1),
    lambda: unpack_6bit(np.zeros(3, np.uint8), 5),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_fp16_overflows_from_65520_not_beyond_65504():
    # 65504 is fp16's largest value; the next step would be 65536, so the tie point is 65520:
    # below it values round down to 65504, from it on (a tie to the even side) to inf
    np.testing.assert_array_equal(round_to_format(np.array([65504.0, 65519.0, 65519.99, 65520.0, -65520.0]), "fp16"),
                                  [65504.0, 65504.0, 65504.0, np.inf, -np.inf])
    assert "65520" in round_to_format.__doc__ and "beyond 65504" not in round_to_format.__doc__


@pytest.mark.parametrize("fmt, ml_name", [("fp8_e4m3", "float8_e4m3fn"), ("fp8_e5m2", "float8_e5m2"),
                                          ("fp6_e3m2", "float6_e3m2fn"), ("fp6_e2m3", "float6_e2m3fn"),
                                          ("fp4_e2m1", "float4_e2m1fn")])
def test_round_to_format_small_floats_are_ml_dtypes_casts(fmt, ml_name):
    x = np.random.default_rng(0).standard_normal(2000) * 50
    with np.errstate(over="ignore"):
        ref = x.astype(getattr(ml_dtypes, ml_name)).astype(np.float64)
    np.testing.assert_array_equal(round_to_format(x, fmt), ref)
    sat = round_to_format(np.array([1e6, -1e6]), fmt, saturate=True)
    assert np.all(np.isfinite(sat)) and sat[0] == -sat[1] == ml_dtypes.finfo(getattr(ml_dtypes, ml_name)).max


def test_storage_bytes_of_the_small_floats():
    w = np.ones((10, 7), np.float32)  # 70 values: FP8 70 bytes, FP6 ceil(70/4)*3 = 54, FP4 35
    assert [storage_bytes(w, f) for f in ("fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1")] == \
        [70, 70, 54, 54, 35]
    assert set(FORMATS) >= {"fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1"}
    assert [FORMATS[f] for f in ("fp8_e4m3", "fp6_e2m3", "fp4_e2m1")] == [8, 6, 4]


@given(hnp.arrays(np.uint8, st.integers(0, 41), elements=st.integers(0, 63)))
@settings(max_examples=100, deadline=None)
def test_6bit_pack_round_trip(c):
    packed = pack_6bit(c)
    assert packed.dtype == np.uint8 and packed.size == 3 * ((c.size + 3) // 4)
    np.testing.assert_array_equal(unpack_6bit(packed, c.size), c)


def test_6bit_pack_hand_value():
    # 1 | 2 << 6 | 3 << 12 | 63 << 18 = 0xFC3081 -> bytes 0x81, 0x30, 0xFC (little-endian)
    np.testing.assert_array_equal(pack_6bit(np.array([1, 2, 3, 63])), [0x81, 0x30, 0xFC])
