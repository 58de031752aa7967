"""Notebook 02's demo: S, Z and bits -> staircase, error curve and error histogram on real weights.

``staircase(...)`` computes everything (pure numpy, no plotting) and is what the tests
call at every slider extreme; ``draw_staircase(...)`` turns it into a figure and
``readout(...)`` into one line of HTML.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..linear import QParams, fake_quantize, integer_range
from ..metrics import error_split, sqnr_db

__all__ = ["StaircaseResult", "staircase", "draw_staircase", "readout", "controls"]

#: Slider limits used by notebook 02 (and by the tests at each extreme).
SCALE_MIN, SCALE_MAX = 0.001, 0.5
BITS_MIN, BITS_MAX = 2, 8
#: The S slider's readout: 3 significant digits, so neighbouring positions (2.3 % apart) read differently
#: (".4f" showed 0.0010 for every S from 0.00100 to 0.00105).
READOUT_FORMAT = ".3g"


class StaircaseResult(NamedTuple):
    qp: QParams
    x: np.ndarray  # the real axis of the staircase plot
    x_hat: np.ndarray  # its quantized-dequantized values
    data: np.ndarray  # real data (e.g. the reference model's weights)
    data_err: np.ndarray  # fake_quantize(data) - data
    sqnr_db: float
    mse: float
    rounding_mse: float
    clipping_mse: float
    n_clipped: int


def staircase(scale: float, zero_point: int, bits: int, data: np.ndarray, x_lim: float = 1.0) -> StaircaseResult:
    """Quantize a dense real axis ``[-x_lim, x_lim]`` and the ``data`` with unsigned ``bits``-bit
    codes, step ``scale`` and zero point ``zero_point`` (clamped into ``[0, 2^bits - 1]``, as the
    Z slider's range follows the bits selector).
    """
    qmin, qmax = integer_range(bits)
    z = int(min(max(int(zero_point), qmin), qmax))
    qp = QParams(scale=float(scale), zero_point=z, qmin=qmin, qmax=qmax, bits=bits)
    # ~20 samples per step so the sawtooth is drawn without aliasing (capped for speed)
    n_points = int(min(40_001, max(2_001, 20 * 2 * x_lim / qp.scale)))
    x = np.linspace(-x_lim, x_lim, n_points)
    x_hat = fake_quantize(x, qp)
    data_hat = fake_quantize(data, qp)
    es = error_split(data, qp)
    return StaircaseResult(qp, x, x_hat, data, data_hat - data, sqnr_db(data, data_hat), es.total_mse,
                           es.rounding_mse, es.clipping_mse, es.n_clipped)


def readout(r: StaircaseResult) -> str:
    """One line of HTML with the numbers the learner watches."""
    lo, hi = r.qp.range
    return (f"<b>codes</b> [{r.qp.qmin}, {r.qp.qmax}] &nbsp; <b>representable range</b> "
            f"[{lo:+.3f}, {hi:+.3f}] &nbsp; <b>SQNR</b> {r.sqnr_db:.1f} dB &nbsp; <b>MSE</b> {r.mse:.2e} "
            f"(rounding {r.rounding_mse:.1e} + clipping {r.clipping_mse:.1e}; "
            f"{r.n_clipped} of {r.data.size} weights clipped)")


def draw_staircase(r: StaircaseResult, title: str | None = None):
    """Three panels: the staircase r -> r_hat, the error r_hat - r, the error histogram on the data."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    lo, hi = r.qp.range
    ax = axes[0]
    ax.plot(r.x, r.x, color="0.7", lw=1, label="ideal  r̂ = r")
    ax.plot(r.x, r.x_hat, color="C0", lw=1.5, label="quantized  r̂")
    ax.axvspan(max(lo, r.x[0]), min(hi, r.x[-1]), color="C2", alpha=0.08, label="representable range")
    ax.set(xlabel="real value r", ylabel="dequantized value r̂", title="(a) staircase")
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1]
    err = r.x_hat - r.x
    ax.plot(r.x, err, color="C1", lw=1)
    ax.axhline(r.qp.scale / 2, color="k", ls=":", lw=1, label="±S/2")
    ax.axhline(-r.qp.scale / 2, color="k", ls=":", lw=1)
    ax.set(xlabel="real value r", ylabel="error r̂ − r", title="(b) error: sawtooth, then clipping")
    ax.set_ylim(-max(2 * r.qp.scale, 1e-3), max(2 * r.qp.scale, 1e-3))
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[2]
    half = r.qp.scale / 2  # a value is clipped when it lies beyond the last code by more than half a step
    inside = (r.data >= lo - half) & (r.data <= hi + half)
    rel = r.data_err / r.qp.scale  # error in units of the step: rounding stays within ±0.5
    bins = np.linspace(-1.5, 1.5, 31)
    ax.hist(np.clip(rel[inside], -1.5, 1.5), bins=bins, color="C0", alpha=0.8, label="rounded (|err| ≤ S/2)")
    if (~inside).any():
        ax.hist(np.clip(rel[~inside], -1.5, 1.5), bins=bins, color="C3", alpha=0.8,
                label="clipped (piled at ±1.5)")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.4)  # headroom so the legend never hides the bars
    ax.set(xlabel="error (r̂ − r) / S on the weights", ylabel="count",
           title=f"(c) real weights: SQNR {r.sqnr_db:.1f} dB")
    ax.legend(fontsize=8)
    fig.suptitle(title or f"S = {r.qp.scale:.3g}, Z = {r.qp.zero_point}, {r.qp.bits} bits (unsigned codes)",
                 fontsize=11)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.82, wspace=0.3)  # tight_layout costs a draw
    return fig


def controls():
    """The notebook's sliders: log-scale S, integer Z whose range follows the bits dropdown."""
    import ipywidgets as w

    style = {"description_width": "initial"}
    s = w.FloatLogSlider(value=0.1, base=10, min=np.log10(SCALE_MIN), max=np.log10(SCALE_MAX), step=0.01,
                         description="scale S", readout_format=READOUT_FORMAT, style=style, continuous_update=True)
    bits = w.Dropdown(options=list(range(BITS_MIN, BITS_MAX + 1)), value=3, description="bits", style=style)
    z = w.IntSlider(value=4, min=0, max=7, description="zero point Z", style=style, continuous_update=True)

    def follow_bits(change):
        z.max = 2 ** change["new"] - 1
        z.value = min(z.value, z.max)

    bits.observe(follow_bits, names="value")
    return {"scale": s, "zero_point": z, "bits": bits}

