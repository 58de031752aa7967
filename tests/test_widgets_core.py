"""qlib.widgets.interactive_figure and its helpers: what a learner sees when using any live widget."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as w  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from qlib.widgets import interactive_figure, number_text, parse_number  # noqa: E402


def _draw(x=1.0, n=1):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, x * n])
    return fig


def _image(box):
    return next(c for c in box.children if isinstance(c, w.Image))


def test_live_image_keeps_its_natural_size():
    """A flex column stretches its children to the full width: the 750 px figure of notebook 01 was
    shown ≈ 1.3-1.5× larger and blurry. The image must not stretch, only shrink to fit."""
    box = interactive_figure(_draw, {"x": w.FloatSlider(value=1.0, min=0, max=2)})
    layout = _image(box).layout
    assert layout.align_self == "flex-start"  # not stretched across the column
    assert layout.max_width == "100%" and layout.height == "auto"
    assert layout.width in (None, "", "auto")  # no forced width: the PNG's own pixels
    assert box.layout.align_items in (None, "", "flex-start", "stretch")


def test_control_descriptions_are_never_cut():
    """ipywidgets cuts descriptions at ~80 px ("activation bits" -> "activation ..."); dropdowns
    showed only the start of long options."""
    bits = w.IntSlider(value=4, min=2, max=8, description="activation bits")
    data = w.Dropdown(options=["Gaussian + 0.1 % outliers at +8..+12", "ReLU"], description="data")
    fixed = w.Dropdown(options=["a", "b"], description="x", layout=w.Layout(width="320px"))
    toggle = w.ToggleButtons(options=[8, 16], description="bitwidth")  # wraps below an "initial" label
    pick = w.SelectionSlider(options=[99.0, 99.9], description="percentile")
    box = w.BoundedFloatText(value=1.0, description="data min")
    interactive_figure(lambda bits, data, fixed, toggle, pick, box: _draw(),
                       {"bits": bits, "data": data, "fixed": fixed, "toggle": toggle, "pick": pick, "box": box})
    assert bits.style.description_width == "initial" and data.style.description_width == "initial"
    assert pick.style.description_width == "initial" and box.style.description_width == "initial"
    assert toggle.style.description_width == ""
    assert data.layout.width == "max-content" and data.layout.max_width == "100%"
    assert fixed.layout.width == "320px"  # an explicit width is kept


def test_no_pyplot_figure_is_left_open():
    before = len(plt.get_fignums())
    box = interactive_figure(_draw, {"x": w.FloatSlider(value=1.0, min=0, max=2)})
    box.children[0].children[0].value = 2.0
    assert len(plt.get_fignums()) == before


def test_no_figure_left_open_when_drawing_fails():
    """A draw that raises after creating its figure must not leave it for pyplot to show later
    (the inline backend then prints '<Figure size ... with 0 Axes>' or draws it under another cell)."""

    def bad(x):
        plt.figure(figsize=(9.5, 4.4))
        if x > 1:
            raise ValueError("bad x")
        return _draw(x)

    slider = w.FloatSlider(value=1.0, min=0, max=2)
    interactive_figure(bad, {"x": slider})
    before = len(plt.get_fignums())
    with pytest.raises(ValueError, match="bad x"):
        slider.value = 2.0
    assert len(plt.get_fignums()) == before


@pytest.mark.parametrize("text, value", [("1/3", 1 / 3), ("0.1", 0.1), ("-2.5e-3", -2.5e-3), ("2**-10", 2.0**-10),
                                         ("1e-7", 1e-7), (" 70000 ", 70000.0), ("-(1/8)", -0.125)])
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1,5", "1/0", "1e400", "9**9**9", "(-8)**0.5", "__import__('os')",
                                  "x + 1", "[1]", "True", "1 if 1 else 2"])
def test_parse_number_refuses_with_a_message(text):
    with pytest.raises(ValueError, match="number"):
        parse_number(text)


def test_number_text_accepts_a_fraction_and_says_when_it_cannot_read():
    box_value = number_text(0.1, "value x")
    seen = []

    def draw(value):
        seen.append(value)
        return _draw(value)

    box = interactive_figure(draw, {"value": box_value}, readout=lambda value: f"value = {value:.6f}")
    html = next(c for c in box.children if isinstance(c, w.HTML))
    assert seen == [0.1] and html.value == "value = 0.100000"
    box_value.value = "1/3"
    assert seen[-1] == 1 / 3 and html.value == "value = 0.333333"
    frame = _image(box).value
    box_value.value = "1/"
    assert "could not read '1/'" in html.value and "value x" in html.value  # said, not silently refused
    assert len(seen) == 2 and _image(box).value == frame  # the last good figure stays
    box_value.value = "2**-10"
    assert seen[-1] == 2.0**-10 and "0.000977" in html.value


def test_number_text_without_readout_still_shows_the_message():
    box_value = number_text(1.0, "x")
    box = interactive_figure(lambda x: _draw(x), {"x": box_value})
    html = [c for c in box.children if isinstance(c, w.HTML)]
    assert len(html) == 1 and html[0].value == ""
    box_value.value = "one"
    assert "could not read 'one'" in html[0].value
    box_value.value = "1"
    assert html[0].value == ""
