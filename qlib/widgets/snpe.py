"""Notebook 05's demo: type min, max and a bitwidth -> SNPE's encoding and a number line.

``snpe_state(...)`` computes everything (pure, fast, never raises on a learner's typo: a bad
range comes back with ``error`` set) and is what the tests call at every control extreme;
``draw_number_line(...)`` turns it into a figure and ``readout(...)`` into HTML.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..snpe import SnpeSteps, snpe_encoding_steps

__all__ = ["SnpeState", "snpe_state", "readout", "draw_number_line", "draw", "html", "controls", "VALUE_MIN", "VALUE_MAX",
           "BITWIDTHS"]

#: Limits of the min/max boxes in notebook 05 (and the extremes the tests use).
VALUE_MIN, VALUE_MAX = -100.0, 100.0
#: Bitwidths offered by the selector (SNPE's choices for activations and weights).
BITWIDTHS = (8, 16)
#: Codes shown either side of real 0 in the zoomed panel.
ZOOM_CODES = 3


class SnpeState(NamedTuple):
    x_min: float
    x_max: float
    bitwidth: int
    steps: SnpeSteps | None  # None when the range is invalid
    error: str  # "" when fine, else the message a learner sees
    widened: bool  # min or max moved to include 0
    min_range_applied: bool  # the 0.01 rule pushed max up


def snpe_state(x_min: float, x_max: float, bitwidth: int = 8) -> SnpeState:
    """Everything the demo shows for ``[x_min, x_max]`` at ``bitwidth`` bits; never raises on bad ranges."""
    x_min, x_max = float(x_min), float(x_max)
    try:
        s = snpe_encoding_steps(x_min, x_max, bitwidth)
    except ValueError as exc:
        return SnpeState(x_min, x_max, int(bitwidth), None, str(exc), False, False)
    widened = s.min != x_min or max(x_max, 0.0) != x_max
    min_range_applied = s.max != max(x_max, 0.0)
    return SnpeState(x_min, x_max, s.bitwidth, s, "", widened, min_range_applied)


def readout(st: SnpeState) -> str:
    """HTML with the numbers of every step."""
    if st.steps is None:
        return f"<b style='color:#b00'>⚠ {st.error}</b>"
    s = st.steps
    notes = []
    if st.widened:
        notes.append("range widened to include 0")
    if st.min_range_applied:
        notes.append("max pushed up to min + 0.01")
    note = f" &nbsp; <i>({'; '.join(notes)})</i>" if notes else ""
    return (f"<b>min, max</b> = [{s.min:.6g}, {s.max:.6g}]{note}<br>"
            f"<b>scale Δ</b> = (max − min)/{2**s.bitwidth - 1} = {s.delta:.6g} &nbsp; "
            f"(seed's S' = 1/Δ = {1 / s.delta:.6g})<br>"
            f"<b>−min/Δ</b> = {s.zero_real:.6f} → <b>Z</b> = {s.zero_point}, <b>offset</b> = {s.offset}<br>"
            f"<b>encoding-min</b> = {s.encoding_min:.6f}, <b>encoding-max</b> = {s.encoding_max:.6f}")


def _grid_ticks(start: float, delta: float, n_codes: int, max_ticks: int = 257):
    stride = max(1, int(np.ceil(n_codes / max_ticks)))
    k = np.arange(0, n_codes, stride)
    return start + k * delta, stride


def draw_number_line(st: SnpeState):
    """Two panels: the whole range (data, adjusted range, the code grid) and a zoom around real 0."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9.5, 4.4), gridspec_kw={"height_ratios": [1, 1.1]})
    if st.steps is None:
        for ax in (ax1, ax2):
            ax.set_axis_off()
        ax1.text(0.5, 0.5, f"⚠ {st.error}", ha="center", va="center", color="#b00", wrap=True,
                 transform=ax1.transAxes)
        fig.suptitle("SNPE encoding: invalid range")
        return fig
    s = st.steps
    n_codes = 2**s.bitwidth

    # (a) the whole range
    ax1.hlines(2, st.x_min, st.x_max, color="C0", lw=6, label=f"data [{st.x_min:g}, {st.x_max:g}]")
    ax1.hlines(1, s.min, s.max, color="C2", lw=6, label="after widening / 0.01 rule")
    ax1.hlines(0, s.encoding_min, s.encoding_max, color="C1", lw=6,
               label=f"encoding [{s.encoding_min:.4g}, {s.encoding_max:.4g}]")
    ticks, stride = _grid_ticks(s.encoding_min, s.delta, n_codes)
    ax1.vlines(ticks, -0.45, -0.12, color="0.35", lw=0.5)
    ax1.axvline(0.0, color="k", ls="--", lw=1)
    ax1.plot([0.0], [0], marker="*", ms=13, color="k", zorder=5, label=f"real 0 = code {s.zero_point}")
    ax1.set_yticks([0, 1, 2], ["encoding", "adjusted", "data"])
    ax1.set_ylim(-0.6, 2.6)
    every = "every code" if stride == 1 else f"every {stride}th code"
    ax1.set(xlabel="real value", title=f"(a) the range and the {s.bitwidth}-bit code grid ({every} ticked)")
    ax1.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))

    # (b) zoom around 0: before the adjustment 0 falls between codes, after it sits on one
    lo_code = max(0, int(np.floor(s.zero_real)) - ZOOM_CODES)
    hi_code = min(n_codes - 1, int(np.ceil(s.zero_real)) + ZOOM_CODES)
    codes = np.arange(lo_code, hi_code + 1)
    before = s.min + codes * s.delta  # grid anchored at the data's min (no adjustment)
    after = s.encoding_min + codes * s.delta
    ax2.vlines(before, 0.75, 1.25, color="C2", lw=1.5, label="grid from min (not adjusted)")
    ax2.vlines(after, -0.25, 0.25, color="C1", lw=1.5, label="SNPE grid (adjusted)")
    between = {int(np.floor(s.zero_real)), int(np.ceil(s.zero_real))}  # the codes 0 falls between
    for c, b, a in zip(codes, before, after):
        if c in between:
            ax2.text(b, 1.42, str(c), ha="center", va="bottom", fontsize=7, color="C2")
        box = {"fc": "white", "ec": "none", "pad": 0.3} if c == s.zero_point else None
        ax2.text(a, -0.42, str(c), ha="center", va="top", fontsize=7, color="C1", bbox=box)
    ax2.axvline(0.0, color="k", ls="--", lw=1)
    ax2.plot([0.0], [1], marker="*", ms=9, color="k", zorder=5)
    ax2.plot([0.0], [0], marker="*", ms=9, color="k", zorder=5,
             label=f"real 0: code {s.zero_real:.3f} → {s.zero_point}")
    ax2.set_yticks([0, 1], ["adjusted", "from min"])
    ax2.set_ylim(-1.0, 2.0)
    pad = s.delta * 0.6
    ax2.set_xlim(min(before[0], after[0]) - pad, max(before[-1], after[-1]) + pad)
    if s.zero_real == s.zero_point:
        title = f"(b) where 0 lands: already on code {s.zero_point}, nothing to adjust"
    else:
        title = f"(b) where 0 lands: between codes before, exactly on code {s.zero_point} after"
    ax2.set(xlabel="real value (zoom around 0; numbers are codes)", title=title)
    ax2.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.subplots_adjust(left=0.1, right=0.74, top=0.92, bottom=0.11, hspace=0.75)
    return fig


def controls(x_min: float = -1.8, x_max: float = 0.5, bitwidth: int = 8) -> dict:
    """The notebook's controls: two number boxes and a bitwidth selector."""
    import ipywidgets as w

    style = {"description_width": "initial"}
    return {
        "x_min": w.BoundedFloatText(value=x_min, min=VALUE_MIN, max=VALUE_MAX, step=0.1,
                                    description="data min", style=style, layout=w.Layout(width="170px")),
        "x_max": w.BoundedFloatText(value=x_max, min=VALUE_MIN, max=VALUE_MAX, step=0.1,
                                    description="data max", style=style, layout=w.Layout(width="170px")),
        "bitwidth": w.ToggleButtons(options=list(BITWIDTHS), value=bitwidth, description="bitwidth",
                                    style={"button_width": "50px"}),
    }


def draw(x_min: float, x_max: float, bitwidth: int = 8):
    """``draw_number_line(snpe_state(...))``: the callback :func:`qlib.widgets.interactive_figure` calls."""
    return draw_number_line(snpe_state(x_min, x_max, bitwidth))


def html(x_min: float, x_max: float, bitwidth: int = 8) -> str:
    """``readout(snpe_state(...))``: the readout callback."""
    return readout(snpe_state(x_min, x_max, bitwidth))
