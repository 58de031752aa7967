"""Helpers shared by the widget tests (imported by tests/test_widgets_*.py)."""


def cut_off(fig, tol_inches: float = 0.01) -> list:
    """Sides of ``fig`` where drawn text (titles, axis and tick labels, legends) sticks out of the
    figure, so the rendered PNG cuts it off: a list such as ``["bottom"]``, empty when all is inside.

    Uses the tight bounding box of everything drawn (what ``bbox_inches="tight"`` would keep); costs a draw.
    """
    r = fig.canvas.get_renderer()
    bb = fig.get_tightbbox(r)  # inches
    w, h = fig.get_size_inches()
    sides = (("left", bb.x0 < -tol_inches), ("bottom", bb.y0 < -tol_inches),
             ("right", bb.x1 > w + tol_inches), ("top", bb.y1 > h + tol_inches))
    return [side for side, out in sides if out]
