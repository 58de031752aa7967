"""Notebook 05's widget: compute at every control extreme, readout and figure never crash."""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from qlib.widgets import snpe as ws  # noqa: E402
from widget_checks import cut_off  # noqa: E402

EXTREMES = [ws.VALUE_MIN, -1.8, 0.0, 0.5, ws.VALUE_MAX]


@pytest.mark.parametrize("x_min,x_max,bits", list(itertools.product(EXTREMES, EXTREMES, ws.BITWIDTHS)))
def test_state_at_extremes(x_min, x_max, bits):
    st = ws.snpe_state(x_min, x_max, bits)
    if x_min > x_max:
        assert st.steps is None and "upside down" in st.error
        assert "upside down" in ws.readout(st)
        return
    s = st.steps
    assert st.error == ""
    assert s.encoding_min <= 0.0 <= s.encoding_max
    assert 0 <= s.zero_point <= 2**bits - 1
    assert s.encoding_min + s.delta * s.zero_point == 0.0
    assert st.widened == (x_min > 0 or x_max < 0)
    assert st.min_range_applied == (max(x_max, 0) - min(x_min, 0) < 0.01)
    assert f"Z</b> = {s.zero_point}" in ws.readout(st)


def test_seed_example_readout():
    html = ws.html(-1.8, 0.5, 8)
    assert "199.565217 → <b>Z</b> = 200" in html and "-1.803922" in html and "0.496078" in html
    assert "128" in ws.html(-5.1, 5.1, 8)
    assert "0.01" in ws.html(0.0, 0.0, 8)


@pytest.mark.parametrize("x_min,x_max,bits", [
    (ws.VALUE_MIN, ws.VALUE_MAX, 16), (ws.VALUE_MIN, ws.VALUE_MIN, 8), (ws.VALUE_MAX, ws.VALUE_MAX, 16),
    (0.0, 0.0, 8), (-1.8, 0.5, 8), (5.0, 10.0, 8), (1.0, -1.0, 8), (-126.5, 128.5, 8),
])
def test_figure_at_extremes(x_min, x_max, bits):
    fig = ws.draw(x_min, x_max, bits)
    try:
        axes = fig.get_axes()
        assert len(axes) == 2
        if x_min <= x_max:
            assert axes[0].get_xlabel() and axes[1].get_xlabel() and axes[0].get_title()
            assert axes[0].get_legend() is not None
        assert cut_off(fig) == []
    finally:
        plt.close(fig)


def test_zoom_labels_stay_in_code_range():
    fig = ws.draw(ws.VALUE_MIN, -1.0, 8)  # 0 sits on the top code 255: no label beyond it
    try:
        labels = [t.get_text() for t in fig.get_axes()[1].texts]
        assert "255" in labels and "256" not in labels
    finally:
        plt.close(fig)


def test_controls_match_limits():
    c = ws.controls()
    assert set(c) == {"x_min", "x_max", "bitwidth"}
    assert (c["x_min"].min, c["x_min"].max) == (ws.VALUE_MIN, ws.VALUE_MAX)
    assert list(c["bitwidth"].options) == list(ws.BITWIDTHS)
    assert c["x_min"].value == -1.8 and c["x_max"].value == 0.5
