"""qlib.metrics: hand values, the 6.02 dB/bit rule, the rounding/clipping split."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qlib import fake_quantize, qparams_from_range, qparams_from_tensor
from qlib.linear import QParams
from qlib.metrics import error_split, max_abs_error, mse, sqnr_db


def test_hand_values():
    assert mse([0.0, 0.0], [1.0, -3.0]) == pytest.approx(5.0)
    assert max_abs_error([0.0, 0.0], [1.0, -3.0]) == 3.0
    assert sqnr_db([3.0, 4.0], [3.0, 4.5]) == pytest.approx(10 * np.log10(25 / 0.25))
    assert sqnr_db([1.0], [1.0]) == float("inf")


def test_sqnr_grows_about_6_db_per_bit_on_uniform_data():
    x = np.random.default_rng(0).uniform(-1, 1, 200_000)
    s = [sqnr_db(x, fake_quantize(x, qparams_from_range(-1, 1, bits=b))) for b in (6, 7, 8, 9, 10)]
    slopes = np.diff(s)
    assert np.all(np.abs(slopes - 6.02) < 0.15)


def test_error_split_hand_values():
    qp = QParams(scale=1.0, zero_point=0, qmin=-2, qmax=1, bits=2)
    es = error_split([0.25, 5.0, -2.4, 1.4], qp)
    # 0.25 -> 0 (round, 0.0625); 5.0 -> 1 (clip, 16); -2.4 -> -2 (round, 0.16); 1.4 -> 1 (round, 0.16)
    assert es.n_clipped == 1
    assert es.clipping_mse == pytest.approx(16 / 4)
    assert es.rounding_mse == pytest.approx((0.0625 + 0.16 + 0.16) / 4)


@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(-100, 100)), st.integers(2, 8),
       st.floats(0.01, 50))
@settings(max_examples=100, deadline=None)
def test_error_split_adds_up_and_rounding_part_is_bounded(x, bits, clip_at):
    qp = qparams_from_range(-clip_at, clip_at, bits=bits, symmetric=True)
    es = error_split(x, qp)
    assert es.rounding_mse + es.clipping_mse == pytest.approx(es.total_mse, rel=1e-9, abs=1e-15)
    assert es.total_mse == pytest.approx(mse(x, fake_quantize(x, qp)), rel=1e-9, abs=1e-15)
    assert es.rounding_mse <= (qp.scale / 2) ** 2 * (1 + 1e-9)


def test_error_split_per_channel():
    w = np.array([[0.1, -0.2], [3.0, 1.0]])
    qp = qparams_from_tensor(w, bits=4, symmetric=True, axis=0)
    es = error_split(w, qp)
    assert es.n_clipped == 0 and es.clipping_mse == 0.0


@pytest.mark.parametrize("call", [
    lambda: mse([1.0, 2.0], [1.0]),
    lambda: sqnr_db([], []),
    lambda: max_abs_error([np.nan], [1.0]),
    lambda: error_split([1.0], qparams_from_range(-1, 1), rounding="nearest"),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------------------- no silent inf / NaN

def test_sqnr_of_tiny_and_huge_signals_is_the_ratio_not_inf_or_nan():
    # 10 % error on every element is 20 dB whatever the magnitude (squares under/overflow float64)
    for mag in (1e-300, 1e-170, 1.0, 1e170, 1e300):
        x = np.array([mag, -mag])
        assert sqnr_db(x, x * 1.1) == pytest.approx(20.0, abs=1e-9), mag


def test_mse_of_huge_errors_is_exact_or_refused():
    assert mse([1e150, -1e150], [0.0, 0.0]) == pytest.approx(1e300)     # squares overflow, mean does not
    with pytest.raises(ValueError, match="float64"):
        mse([1e200], [-1e200])                                          # 4e400: not representable
    with pytest.raises(ValueError, match="overflows"):
        max_abs_error([1.7e308], [-1.7e308])                            # the difference itself overflows


def test_error_split_of_huge_values_adds_up():
    qp = qparams_from_range(-1e150, 1e150, bits=8)   # squared errors ~1e300: their squares overflow
    split = error_split(np.array([-3e150, 0.5e150, 2e150]), qp)
    assert np.isfinite([split.total_mse, split.rounding_mse, split.clipping_mse]).all() and split.n_clipped == 2
    assert split.rounding_mse + split.clipping_mse == pytest.approx(split.total_mse)
