"""Notebook 09's widget (qlib.widgets.capstone): control orientation and the chart's order."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from qlib.widgets import capstone as demo  # noqa: E402
from widget_checks import cut_off  # noqa: E402

pytest.importorskip("ipywidgets")


def _grid():
    keys = [(b, g, c, k) for b in demo.BITS for g in demo.GRANULARITIES for c in (False, True)
            for k in demo.GRID_CALIBRATORS]
    acc = {key: 0.5 + key[0] / 20 for key in keys}
    return demo.Grid(acc, dict(acc), {key: 1 - v for key, v in acc.items()}, 1.0, 10)


def test_bits_slider_runs_from_fewest_bits_at_the_left_to_most_at_the_right():
    """Home / the left end is the smallest value on every slider; End gave 4 bits here."""
    box = demo.capstone_widget(_grid())
    bits = box.children[0].children[0]
    assert bits.description == "weight bits"
    assert list(bits.options) == sorted(demo.BITS)  # End = 8 bits, Home = 4 bits
    assert bits.value == max(demo.BITS)  # starts at W8, as before
    plt.close("all")


def test_chart_bars_in_the_slider_order():
    v = demo.grid_view(_grid(), 8, "per-tensor", False, "min-max")
    assert v["bits"] == sorted(demo.BITS)
    assert v["curves"]["per-tensor"] == [0.5 + b / 20 for b in sorted(demo.BITS)]
    fig = demo.draw_capstone(_grid(), 8, "per-tensor", False, "min-max")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [f"W{b}" for b in sorted(demo.BITS)]
    assert cut_off(fig) == []
    plt.close(fig)
