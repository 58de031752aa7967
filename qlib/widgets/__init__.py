"""Interactive demos: widgets wired to plain, testable functions.

Pattern used by every notebook: a pure *compute* function (numbers only, fast, unit
tested at every slider extreme) and a *draw* function that turns its result into a
matplotlib figure. :func:`interactive_figure` connects controls to the draw function
and redraws into an ``Output`` widget, so the page keeps a static figure in the saved
notebook and a live one in JupyterLab. Topic modules (``linear``, ``schemes``, ...) hold
the compute/draw pairs of each notebook.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["interactive_figure"]


def interactive_figure(draw: Callable, controls: dict, readout: Callable | None = None):
    """Return a widget box: the ``controls`` above a live figure.

    ``draw(**values)`` must return a matplotlib Figure for the current control values;
    ``readout(**values)``, if given, returns an HTML string shown between controls and
    figure (numbers such as SQNR). Every change of any control redraws once.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = w.Output()
    text = w.HTML()

    def refresh(_change=None):
        values = {name: c.value for name, c in controls.items()}
        if readout is not None:
            text.value = readout(**values)
        with out:
            out.clear_output(wait=True)
            fig = draw(**values)
            display(fig)
            plt.close(fig)

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    children = [w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))]
    if readout is not None:
        children.append(text)
    children.append(out)
    return w.VBox(children)
