"""Interactive demos: widgets wired to plain, testable functions.

Pattern used by every notebook: a pure *compute* function (numbers only, fast, unit
tested at every slider extreme) and a *draw* function that turns its result into a
matplotlib figure. :func:`interactive_figure` connects controls to the draw function
and swaps the rendered PNG into an ``Image`` widget; each notebook also shows a static
figure first, so the page reads well where no kernel runs. Topic modules (``linear``, ``schemes``, ...) hold
the compute/draw pairs of each notebook.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["interactive_figure", "render_png"]


def render_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes once, at its own size and dpi.

    (IPython's inline display would crop it with ``bbox_inches="tight"``, which costs an
    extra full draw on every slider move.)
    """
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def interactive_figure(draw: Callable, controls: dict, readout: Callable | None = None):
    """Return a widget box: the ``controls`` above a live figure.

    ``draw(**values)`` must return a matplotlib Figure for the current control values;
    ``readout(**values)``, if given, returns an HTML string shown between controls and
    figure (numbers such as SQNR). Every change of any control redraws once: the figure is
    rendered to PNG a single time and swapped into an ``Image`` widget (no flicker), then
    closed if pyplot manages it.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
    text = w.HTML()

    def refresh(_change=None):
        values = {name: c.value for name, c in controls.items()}
        if readout is not None:
            text.value = readout(**values)
        fig = draw(**values)
        image.value = render_png(fig)
        if getattr(fig.canvas, "manager", None) is not None:  # a pyplot figure: free it
            plt.close(fig)

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    children = [w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))]
    if readout is not None:
        children.append(text)
    children.append(image)
    box = w.VBox(children)
    box.refresh = refresh  # lets tests and benchmarks time one update
    return box
