"""Notebook 01's dtype explorer (qlib.widgets.formats) at every control extreme."""

import numpy as np
import pytest

from qlib import minifloat
from qlib.formats import MINIFLOAT_OF
from qlib.widgets import formats as explorer
from widget_checks import cut_off

VALUES = [0.0, 1e-7, -0.1, 1.5, 300.0, 500.0, 70000.0, -3.0e38]


@pytest.mark.parametrize("saturate", [False, True])
@pytest.mark.parametrize("fmt", explorer.FORMAT_NAMES)
@pytest.mark.parametrize("value", VALUES)
def test_explorer_at_extremes(fmt, value, saturate):
    s = explorer.store(value, fmt, saturate=saturate)
    html = explorer.readout(s)
    assert fmt in html and s.bits.replace(" ", "")[:1] in "01"
    top = explorer.max_finite(fmt)
    if fmt == "fp16" and abs(value) >= 65520:
        assert np.isinf(s.stored) and "overflow" in html
    elif fmt == "fp8_e4m3" and abs(value) > 464 and not saturate:
        assert np.isnan(s.stored) and "NaN" in html and "448" in html
    elif fmt == "fp8_e5m2" and abs(value) >= 61440 and not saturate:
        assert np.isinf(s.stored) and "overflow" in html
    elif fmt in ("int8", "int4"):
        assert abs(s.stored) <= top + explorer.int_step(fmt) * (1 + 1e-12)  # code -128 (-8) is one step beyond
    else:
        assert np.isfinite(s.stored)
        if abs(value) <= top:
            assert s.abs_error <= s.spacing / 2 * (1 + 1e-9)
        else:  # saturated, or the FP6/FP4 formats that have no inf: the largest value
            assert abs(s.stored) == top and "clamped" in html
    if fmt in MINIFLOAT_OF:  # the bit string is the code minifloat.encode writes
        f = minifloat.FLOAT_FORMATS[MINIFLOAT_OF[fmt]]
        code = int(s.bits.replace(" ", ""), 2)
        assert len(s.bits.replace(" ", "")) == f.bits
        assert code == int(minifloat.encode([value], f.name, saturate=saturate)[0])


@pytest.mark.parametrize("fmt", [None, "fp8_e4m3", "int4"])
@pytest.mark.parametrize("value", [0.0, -0.1, 500.0, -3.0e38])
def test_draw_spacing(value, fmt):
    import matplotlib.pyplot as plt

    fig = explorer.draw_spacing(value, fmt=fmt)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "magnitude |x|"
    assert len(ax.get_lines()) == len(explorer.FORMAT_NAMES) + 1  # one curve per format + the marker
    # each float curve stops at its largest value: e.g. FP4's at 6
    fp4 = ax.get_lines()[explorer.FORMAT_NAMES.index("fp4_e2m1")]
    assert fp4.get_xdata().max() <= 6.0
    assert cut_off(fig) == []
    plt.close(fig)


def test_explorer_hand_values():
    s = explorer.store(0.1, "int8")
    assert s.bits.endswith("(code 13)") and s.stored == pytest.approx(13 / 127)
    assert explorer.store(1.5, "int4").stored == pytest.approx(1.0)  # clipped to code 7 of a [-1, 1] grid
    assert explorer.store(500.0, "fp8_e4m3", saturate=True).stored == 448.0
    assert explorer.store(0.1, "fp4_e2m1").stored == 0.0  # below 0.25: rounds to 0 (0.5 is the smallest step)
    assert explorer.store(0.3, "fp4_e2m1").stored == 0.5
    assert explorer.store(1.0, "fp8_e4m3").bits == "0 0111 000"
    assert explorer.spacing(300.0, "fp8_e4m3") == 32.0 and explorer.spacing(0.0, "fp8_e4m3") == 2.0**-9


def test_controls_cover_every_format():
    ctl = explorer.controls()
    assert set(ctl) == {"value", "fmt", "saturate"}
    assert tuple(ctl["fmt"].options) == explorer.FORMAT_NAMES


@pytest.mark.parametrize("call", [
    lambda: explorer.store(float("nan"), "fp16"),
    lambda: explorer.store(1.0, "fp8"),
    lambda: explorer.store(1.0, "fp8_e4m3", saturate=1),
    lambda: explorer.spacing(1.0, "int2"),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("fmt", explorer.FORMAT_NAMES)
@pytest.mark.parametrize("value", [0.1, 500.0, -70000.0])
def test_saturate_box_always_changes_what_is_shown(fmt, value):
    # a learner who ticks the box must see something change, and the numbers must be the casts'
    off, on = explorer.cast_modes(value, fmt, False), explorer.cast_modes(value, fmt, True)
    assert off != on
    if fmt in MINIFLOAT_OF:
        assert f"{explorer.store(value, fmt, saturate=True).stored:.10g}" in on


def test_value_box_reads_one_third():
    """The prose says "try 0.1, 1/3, 300": a FloatText silently refused 1/3."""
    import ipywidgets as w

    from qlib.widgets import interactive_figure

    ctl = explorer.controls()
    box = interactive_figure(lambda value, fmt, saturate: explorer.draw_spacing(value, fmt=fmt), ctl,
                             readout=lambda value, fmt, saturate: explorer.readout(explorer.store(value, fmt)))
    html = next(c for c in box.children if isinstance(c, w.HTML))
    ctl["value"].value = "1/3"
    assert explorer.readout(explorer.store(1 / 3, "bf16")) == html.value and "0.333984375" in html.value


def test_format_dropdown_changes_the_figure():
    import matplotlib.pyplot as plt

    from qlib.widgets import render_png

    widths = {}
    for fmt in ("bf16", "int4"):
        fig = explorer.draw_spacing(0.1, fmt=fmt)
        widths[fmt] = [ln.get_linewidth() for ln in fig.axes[0].get_lines()]
        png = render_png(fig)
        plt.close(fig)
        widths[fmt + "png"] = png
    assert widths["bf16"] != widths["int4"] and widths["bf16png"] != widths["int4png"]
    assert widths["int4"][explorer.FORMAT_NAMES.index("int4")] > widths["bf16"][explorer.FORMAT_NAMES.index("int4")]
