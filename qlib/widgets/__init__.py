"""Interactive demos: widgets wired to plain, testable functions.

Pattern used by every notebook: a pure *compute* function (numbers only, fast, unit
tested at every slider extreme) and a *draw* function that turns its result into a
matplotlib figure. :func:`interactive_figure` connects controls to the draw function
and swaps the rendered PNG into an ``Image`` widget; each notebook also shows a static
figure first, so the page reads well where no kernel runs. Topic modules (``linear``, ``schemes``, ...) hold
the compute/draw pairs of each notebook.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Callable

__all__ = ["interactive_figure", "render_png", "parse_number", "number_text", "image_layout"]

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_NUMBER_HELP = "type digits with '.', e or E, and + - * / ** ( ), e.g. 0.1, 1/3, -2.5e-3 or 2**-10"


def parse_number(text) -> float:
    """Read a number a learner typed: a decimal or scientific literal, or arithmetic on them
    (``+ - * / **`` and parentheses), so ``"1/3"`` and ``"2**-10"`` work as well as ``"0.1"``.

    Raises ValueError with a message saying what can be typed; the result is always a finite float.

    >>> parse_number("1/3"), parse_number(" 2**-10 "), parse_number("-1.5e3"), parse_number("(1 + 2) * 0.5")
    (0.3333333333333333, 0.0009765625, -1500.0, 1.5)
    >>> parse_number("1,5")
    Traceback (most recent call last):
    ...
    ValueError: could not read '1,5' as a number: type digits with '.', e or E, and + - * / ** ( ), e.g. 0.1, 1/3, -2.5e-3 or 2**-10
    >>> parse_number("1/0")
    Traceback (most recent call last):
    ...
    ValueError: '1/0' is not a finite number (division by zero)
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a number, got the boolean {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return value
    if not isinstance(text, str):
        raise ValueError(f"expected a number or text such as '1/3', got {type(text).__name__}")
    src = text.strip()

    def ev(node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return float(node.value)  # floats throughout: 9**9**9 overflows at once instead of hanging
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        raise ValueError(f"could not read {text!r} as a number: {_NUMBER_HELP}")

    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError):
        raise ValueError(f"could not read {text!r} as a number: {_NUMBER_HELP}") from None
    try:
        value = ev(tree.body)
    except ZeroDivisionError:
        raise ValueError(f"{text!r} is not a finite number (division by zero)") from None
    except OverflowError:
        raise ValueError(f"{text!r} is not a finite number (too large)") from None
    if isinstance(value, complex) or not math.isfinite(value):  # (-8) ** 0.5 is complex
        raise ValueError(f"{text!r} is not a finite real number")
    return float(value)


def number_text(value: float, description: str, **kwargs):
    """A text box for a real number that also accepts ``1/3``, ``2**-10``, ``1e-7`` (see :func:`parse_number`).

    The box's ``value`` is the text; :func:`interactive_figure` passes the parsed float to the draw and
    readout functions, and shows a message instead of redrawing when the text is not a number
    (a plain ``FloatText`` silently refuses ``1/3``). Updates on Enter or when the box loses focus.
    """
    import ipywidgets as w

    kwargs.setdefault("style", {"description_width": "initial"})
    kwargs.setdefault("continuous_update", False)
    kwargs.setdefault("placeholder", "e.g. 0.1, 1/3, 2**-10")
    box = w.Text(value=f"{value:g}", description=description, tooltip=_NUMBER_HELP, **kwargs)
    box.qlib_parse = parse_number  # interactive_figure reads the float through this
    return box


def image_layout():
    """Layout of the live figure: the PNG at its natural pixel size (sharp, as the static figure),
    shrunk to the cell's width if wider, never stretched (a flex column would stretch it to the
    full width, ≈ 1.3-1.5× and blurry for a 7.5-inch figure)."""
    import ipywidgets as w

    return w.Layout(max_width="100%", height="auto", width="auto", align_self="flex-start")


def render_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes once, at its own size and dpi.

    (IPython's inline display would crop it with ``bbox_inches="tight"``, which costs an
    extra full draw on every slider move.)
    """
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _show_whole_labels(control) -> None:
    """Let a control's description take the width it needs (ipywidgets cuts it at ~80 px:
    "activation bits" became "activation ...") and a dropdown as wide as its longest option.

    Sliders, dropdowns and text boxes only: toggle buttons, radio buttons and checkboxes lay their label
    out differently (toggle buttons wrap below a label of width "initial")."""
    import ipywidgets as w

    style = getattr(control, "style", None)
    inline = isinstance(control, (w.IntSlider, w.FloatSlider, w.FloatLogSlider, w.IntRangeSlider,
                                  w.FloatRangeSlider, w.IntText, w.FloatText, w.BoundedIntText, w.BoundedFloatText,
                                  w.Dropdown, w.SelectionSlider, w.SelectionRangeSlider, w.Text))
    if (inline and getattr(control, "description", "") and style is not None
            and "description_width" in style.trait_names()):
        if not style.description_width:
            style.description_width = "initial"
    if isinstance(control, w.Dropdown) and not control.layout.width:
        control.layout.width = "max-content"
        control.layout.max_width = control.layout.max_width or "100%"


def interactive_figure(draw: Callable, controls: dict, readout: Callable | None = None):
    """Return a widget box: the ``controls`` above a live figure.

    ``draw(**values)`` must return a matplotlib Figure for the current control values;
    ``readout(**values)``, if given, returns an HTML string shown between controls and
    figure (numbers such as SQNR). Every change of any control redraws once: the figure is
    rendered to PNG a single time and swapped into an ``Image`` widget (no flicker), then
    closed if pyplot manages it (also when drawing fails, so no figure is left for pyplot
    to show later). A :func:`number_text` box passes its parsed number; while its text is not
    a number, the readout says so and the figure stays. Control descriptions are never cut.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    image = w.Image(format="png", layout=image_layout())
    text = w.HTML()
    for c in controls.values():
        _show_whole_labels(c)
    parses = any(hasattr(c, "qlib_parse") for c in controls.values())

    def refresh(_change=None):
        values, problems = {}, []
        for name, c in controls.items():
            if hasattr(c, "qlib_parse"):
                try:
                    values[name] = c.qlib_parse(c.value)
                except ValueError as exc:
                    problems.append(f"{c.description or name}: {exc}")
            else:
                values[name] = c.value
        if problems:
            import html

            text.value = "".join(f"<b style='color:#b00'>⚠ {html.escape(p, quote=False)}</b><br>" for p in problems)
            return
        if readout is not None:
            text.value = readout(**values)
        elif parses:
            text.value = ""
        before = set(plt.get_fignums())
        try:
            fig = draw(**values)
            image.value = render_png(fig)
        finally:
            for num in set(plt.get_fignums()) - before:  # every pyplot figure this update made: free it
                plt.close(num)

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    children = [w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))]
    if readout is not None or parses:
        children.append(text)
    children.append(image)
    box = w.VBox(children)
    box.refresh = refresh  # lets tests and benchmarks time one update
    return box
