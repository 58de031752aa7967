"""qlib.formats and notebook 01's dtype explorer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qlib.formats import (
    from_bfloat16_bits,
    pack_int4,
    round_to_format,
    storage_bytes,
    to_bfloat16_bits,
    unpack_int4,
)
from qlib.widgets import formats as explorer


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
    lambda: explorer.store(float("nan"), "fp16"),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("fmt", explorer.FORMAT_NAMES)
@pytest.mark.parametrize("value", [0.0, 1e-7, -0.1, 1.5, 70000.0, -3.0e38])
def test_explorer_at_extremes(fmt, value):
    import matplotlib.pyplot as plt

    s = explorer.store(value, fmt)
    html = explorer.readout(s)
    assert fmt in html
    if fmt == "fp16" and abs(value) > 65504:
        assert np.isinf(s.stored) and "overflow" in html
    else:
        assert np.isfinite(s.stored)
        if fmt.startswith("fp") or fmt == "bf16":
            assert s.abs_error <= s.spacing / 2 * (1 + 1e-9) or abs(value) > 1e38
    fig = explorer.draw_spacing(value)
    assert fig.axes[0].get_xlabel() == "magnitude |x|"
    plt.close(fig)


def test_explorer_integer_codes():
    s = explorer.store(0.1, "int8")
    assert s.bits.endswith("(code 13)") and s.stored == pytest.approx(13 / 127)
    assert explorer.store(1.5, "int4").stored == pytest.approx(1.0)  # clipped to code 7 of a [-1, 1] grid
