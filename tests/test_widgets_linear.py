"""Notebook 02's demo at every slider extreme: numbers right, figure drawn."""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qlib import fake_quantize, reference_model  # noqa: E402
from qlib.widgets import linear as demo  # noqa: E402
from widget_checks import cut_off  # noqa: E402

W = reference_model().linear_layers[1].W


@pytest.mark.parametrize("scale, zero_point, bits", list(itertools.product(
    [demo.SCALE_MIN, demo.SCALE_MAX], [0, 255], [demo.BITS_MIN, demo.BITS_MAX])))
def test_extremes(scale, zero_point, bits):
    r = demo.staircase(scale, zero_point, bits, data=W)
    assert r.qp.qmin == 0 and r.qp.qmax == 2**bits - 1
    assert r.qp.qmin <= r.qp.zero_point <= r.qp.qmax  # Z is clamped when bits shrink
    np.testing.assert_array_equal(r.x_hat, fake_quantize(r.x, r.qp))
    assert r.rounding_mse + r.clipping_mse == pytest.approx(r.mse)
    assert "SQNR" in demo.readout(r)
    fig = demo.draw_staircase(r)
    assert len(fig.axes) == 3
    assert cut_off(fig) == []
    plt.close(fig)


def test_clipping_shows_up_when_the_range_slides_off_the_data():
    centred = demo.staircase(0.01, 128, 8, data=W)
    slid = demo.staircase(0.01, 0, 8, data=W)  # range [0, 2.55]: every negative weight is clipped
    assert centred.n_clipped == 0 and slid.n_clipped == int((W < -0.005).sum())
    assert slid.sqnr_db < centred.sqnr_db


def test_controls_follow_bits():
    c = demo.controls()
    c["zero_point"].value = 7
    c["bits"].value = 2
    assert c["zero_point"].max == 3 and c["zero_point"].value == 3
    c["bits"].value = 8
    assert c["zero_point"].max == 255


def test_scale_readout_tells_every_slider_position_apart():
    """".4f" showed 0.0010 for every S from 0.00100 to 0.00105: the readout must differ between any two
    positions of the slider (Python's format spec reads like the d3 format the browser uses)."""
    s = demo.controls()["scale"]
    n = int(round((s.max - s.min) / s.step))
    shown = [format(s.base ** (s.min + k * s.step), s.readout_format) for k in range(n + 1)]
    assert len(set(shown)) == len(shown)
    assert format(demo.SCALE_MIN, s.readout_format) == "0.001" and format(0.00102, s.readout_format) == "0.00102"


def test_title_shows_the_scale_with_its_significant_digits():
    fig = demo.draw_staircase(demo.staircase(0.00102, 0, 8, data=W))
    assert fig._suptitle.get_text().startswith("S = 0.00102,")
    plt.close(fig)
