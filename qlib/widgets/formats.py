"""Notebook 01's dtype explorer: type a value, pick a format -> what gets stored, and the grid around it."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import check_choice
from ..formats import FORMATS, round_to_format, to_bfloat16_bits

__all__ = ["Stored", "store", "int_step", "spacing", "draw_spacing", "readout", "controls"]

FORMAT_NAMES = tuple(FORMATS)


class Stored(NamedTuple):
    fmt: str
    value: float
    stored: float
    bits: str  # the stored bit pattern, as hardware holds it
    abs_error: float
    spacing: float  # distance to the next representable value at this magnitude


def int_step(fmt: str, int_range: float = 1.0) -> float:
    """Step of a symmetric integer grid covering ``[-int_range, int_range]``: ``int_range / qmax``
    (qmax = 127 for int8, 7 for int4).

    >>> int_step("int8"), int_step("int4", 7.0)
    (0.007874015748031496, 1.0)
    """
    return float(int_range) / (127 if fmt == "int8" else 7)


def spacing(value: float, fmt: str, int_range: float = 1.0) -> float:
    """Gap between neighbouring representable values of ``fmt`` near ``value``
    (the constant step ``int_range / qmax`` for int8/int4; ``2^(e - mantissa bits)`` for the float formats).

    >>> spacing(1.0, "fp16"), spacing(1.0, "bf16"), spacing(1.0, "int8", int_range=63.5)
    (0.0009765625, 0.0078125, 0.5)
    """
    check_choice(fmt, "fmt", FORMAT_NAMES)
    if fmt in ("int8", "int4"):
        return int_step(fmt, int_range)
    mant = {"fp32": 23, "fp16": 10, "bf16": 7}[fmt]
    min_exp = {"fp32": -126, "fp16": -14, "bf16": -126}[fmt]
    a = abs(float(value))
    e = max(int(np.floor(np.log2(a))) if a > 0 else min_exp, min_exp)  # subnormals share the smallest gap
    return float(2.0 ** (e - mant))


def store(value: float, fmt: str, int_range: float = 1.0) -> Stored:
    """What ``fmt`` stores for ``value``: the nearest representable value and its bit pattern."""
    check_choice(fmt, "fmt", FORMAT_NAMES)
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"value must be a finite number, got {value!r}")
    step = int_step(fmt, int_range) if fmt in ("int8", "int4") else 1.0
    stored = float(round_to_format(np.array([v]), fmt, step)[0])
    if fmt == "fp32":
        bits = f"{np.array(v, np.float32).view(np.uint32):032b}"
        bits = f"{bits[0]} {bits[1:9]} {bits[9:]}"
    elif fmt == "fp16":
        with np.errstate(over="ignore"):
            bits = f"{np.array(v, np.float16).view(np.uint16):016b}"
        bits = f"{bits[0]} {bits[1:6]} {bits[6:]}"
    elif fmt == "bf16":
        bits = f"{int(to_bfloat16_bits(np.array([v]))[0]):016b}"
        bits = f"{bits[0]} {bits[1:9]} {bits[9:]}"
    else:
        n = 8 if fmt == "int8" else 4
        code = int(round(stored / step))
        bits = format(code & (2**n - 1), f"0{n}b") + f"  (code {code})"
    return Stored(fmt, v, stored, bits, abs(stored - v), spacing(v, fmt, int_range))


def readout(s: Stored) -> str:
    """HTML line for the explorer."""
    if not np.isfinite(s.stored):
        return (f"<b>{s.fmt}</b> stores <code>{s.bits}</code> = <b>{s.stored}</b>: overflow! "
                "fp16's largest finite value is 65504 — bf16 keeps fp32's range for exactly this reason")
    rel = s.abs_error / abs(s.value) if s.value else 0.0
    return (f"<b>{s.fmt}</b> stores <code>{s.bits}</code> = <b>{s.stored:.10g}</b> &nbsp; "
            f"error {s.abs_error:.3g} ({rel:.2%}) &nbsp; gap to the next value here: {s.spacing:.3g}")


def draw_spacing(value: float, int_range: float = 1.0):
    """Log-log plot of the gap between neighbouring values vs magnitude, per format, with ``value`` marked."""
    import matplotlib.pyplot as plt

    mags = np.logspace(-6, 5, 400)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for i, fmt in enumerate(FORMAT_NAMES):
        gaps = np.array([spacing(m, fmt, int_range) for m in mags])
        if fmt in ("int8", "int4"):
            keep = mags <= int_range  # beyond the range the codes run out
            ax.loglog(mags[keep], gaps[keep], lw=2, ls="--", color=f"C{i}",
                      label=f"{fmt} on [−{int_range:g}, {int_range:g}] (step {int_step(fmt, int_range):.3g})")
        else:
            keep = mags <= (65504.0 if fmt == "fp16" else np.inf)  # fp16 overflows beyond 65504
            ax.loglog(mags[keep], gaps[keep], lw=2, color=f"C{i}", label=fmt)
    ax.axvline(abs(value) if value else 1e-6, color="k", lw=1, ls=":", label=f"your value {value:g}")
    ax.set(xlabel="magnitude |x|", ylabel="gap to next representable value",
           title="Floats: relative precision everywhere. Integers: one fixed step, a short range.")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.14, top=0.9)  # tight_layout costs a draw
    return fig


def controls():
    import ipywidgets as w

    style = {"description_width": "initial"}
    return {
        "value": w.FloatText(value=0.1, description="value x", style=style),
        "fmt": w.Dropdown(options=FORMAT_NAMES, value="bf16", description="format", style=style),
    }

