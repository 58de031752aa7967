"""Notebook 01's dtype explorer: type a value, pick a format -> what gets stored, and the grid around it.

Formats: fp32, fp16, bf16, the small floats of 2025-26 (FP8 E4M3/E5M2, FP6 E3M2/E2M3, FP4 E2M1, from
:mod:`qlib.minifloat`) and symmetric int8/int4 grids. ``saturate`` switches the small floats from a plain
cast (e4m3: 500 -> NaN, e5m2: 70000 -> inf) to a saturating one (500 -> 448).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import minifloat
from .._validate import check_choice, check_flag
from ..formats import FORMATS, MINIFLOAT_OF, round_to_format, to_bfloat16_bits

__all__ = ["Stored", "store", "int_step", "spacing", "max_finite", "draw_spacing", "readout", "controls",
           "block_versions", "draw_small_formats", "cast_modes"]

FORMAT_NAMES = tuple(FORMATS)

# (mantissa bits, exponent of the smallest normal number) of the IEEE-style formats
_IEEE = {"fp32": (23, -126), "fp16": (10, -14), "bf16": (7, -126)}


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


def max_finite(fmt: str, int_range: float = 1.0) -> float:
    """Largest finite value of ``fmt`` (for int8/int4: the top of the grid, ``int_range``).

    >>> max_finite("fp16"), max_finite("fp8_e4m3"), max_finite("fp4_e2m1")
    (65504.0, 448.0, 6.0)
    """
    check_choice(fmt, "fmt", FORMAT_NAMES)
    if fmt in ("int8", "int4"):
        return float(int_range)
    if fmt in MINIFLOAT_OF:
        return minifloat.FLOAT_FORMATS[MINIFLOAT_OF[fmt]].max_finite
    return float({"fp32": np.finfo(np.float32).max, "fp16": 65504.0, "bf16": 3.3895313892515355e38}[fmt])


def spacing(value: float, fmt: str, int_range: float = 1.0) -> float:
    """Gap between neighbouring representable values of ``fmt`` near ``value``
    (the constant step ``int_range / qmax`` for int8/int4; ``2^(e - mantissa bits)`` for the float
    formats, with e = floor(log2 |value|) but at least the exponent of the smallest normal number).

    >>> spacing(1.0, "fp16"), spacing(1.0, "bf16"), spacing(1.0, "int8", int_range=63.5)
    (0.0009765625, 0.0078125, 0.5)
    >>> spacing(300.0, "fp8_e4m3"), spacing(5.0, "fp4_e2m1"), spacing(0.0, "fp4_e2m1")
    (32.0, 2.0, 0.5)
    """
    check_choice(fmt, "fmt", FORMAT_NAMES)
    if fmt in ("int8", "int4"):
        return int_step(fmt, int_range)
    if fmt in MINIFLOAT_OF:
        f = minifloat.FLOAT_FORMATS[MINIFLOAT_OF[fmt]]
        mant, min_exp = f.mantissa_bits, 1 - f.bias
    else:
        mant, min_exp = _IEEE[fmt]
    a = abs(float(value))
    e = max(int(np.floor(np.log2(a))) if a > 0 else min_exp, min_exp)  # subnormals share the smallest gap
    return float(2.0 ** (e - mant))


def _split(bits: str, e: int) -> str:
    return f"{bits[0]} {bits[1:1 + e]} {bits[1 + e:]}"


def store(value: float, fmt: str, int_range: float = 1.0, saturate: bool = False) -> Stored:
    """What ``fmt`` stores for ``value``: the nearest representable value and its bit pattern
    (``saturate`` applies to the FP8/FP6/FP4 formats only).

    >>> s = store(500.0, "fp8_e4m3")
    >>> s.bits, s.stored
    ('0 1111 111', nan)
    >>> store(500.0, "fp8_e4m3", saturate=True).bits
    '0 1111 110'
    """
    check_choice(fmt, "fmt", FORMAT_NAMES)
    saturate = check_flag(saturate, "saturate")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"value must be a finite number, got {value!r}")
    step = int_step(fmt, int_range) if fmt in ("int8", "int4") else 1.0
    stored = float(round_to_format(np.array([v]), fmt, step, saturate=saturate)[0])
    if fmt == "fp32":
        bits = _split(f"{np.array(v, np.float32).view(np.uint32):032b}", 8)
    elif fmt == "fp16":
        with np.errstate(over="ignore"):
            bits = _split(f"{np.array(v, np.float16).view(np.uint16):016b}", 5)
    elif fmt == "bf16":
        bits = _split(f"{int(to_bfloat16_bits(np.array([v]))[0]):016b}", 8)
    elif fmt in MINIFLOAT_OF:
        f = minifloat.FLOAT_FORMATS[MINIFLOAT_OF[fmt]]
        code = int(minifloat.encode([v], f.name, saturate=saturate)[0])
        bits = _split(format(code, f"0{f.bits}b"), f.exponent_bits)
    else:
        n = 8 if fmt == "int8" else 4
        code = int(round(stored / step))
        bits = format(code & (2**n - 1), f"0{n}b") + f"  (code {code})"
    err = abs(stored - v) if np.isfinite(stored) else float("inf")
    return Stored(fmt, v, stored, bits, err, spacing(v, fmt, int_range))


def readout(s: Stored) -> str:
    """HTML line for the explorer.

    >>> "NaN" in readout(store(500.0, "fp8_e4m3")), "448" in readout(store(500.0, "fp8_e4m3"))
    (True, True)
    """
    if np.isnan(s.stored):
        return (f"<b>{s.fmt}</b> stores <code>{s.bits}</code> = <b>NaN</b>: overflow! E4M3 has no infinity, "
                "so a plain cast of anything above 464 gives NaN; a <i>saturating</i> cast stores 448, "
                "its largest value (tick <i>saturate</i>)")
    if not np.isfinite(s.stored):
        why = ("fp16's largest finite value is 65504 — bf16 keeps fp32's range for exactly this reason"
               if s.fmt == "fp16" else
               f"{s.fmt}'s largest finite value is {max_finite(s.fmt):g}; a saturating cast stores that instead")
        return f"<b>{s.fmt}</b> stores <code>{s.bits}</code> = <b>{s.stored}</b>: overflow! {why}"
    rel = s.abs_error / abs(s.value) if s.value else 0.0
    note = ""
    if s.fmt in MINIFLOAT_OF and abs(s.value) > max_finite(s.fmt):
        note = f" &nbsp; (clamped to the largest value, {max_finite(s.fmt):g})"
    return (f"<b>{s.fmt}</b> stores <code>{s.bits}</code> = <b>{s.stored:.10g}</b> &nbsp; "
            f"error {s.abs_error:.3g} ({rel:.2%}) &nbsp; gap to the next value here: {s.spacing:.3g}{note}")


def draw_spacing(value: float, int_range: float = 1.0, fmt: str | None = None):
    """Log-log plot of the gap between neighbouring values vs magnitude, per format, with ``value``
    marked (``fmt``, if given, is drawn thicker). Each float curve stops at the format's largest value."""
    import matplotlib.pyplot as plt

    mags = np.logspace(-6, 5, 300)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    styles = {"fp32": "-", "fp16": "-", "bf16": "-", "int8": "--", "int4": "--"}
    for i, name in enumerate(FORMAT_NAMES):
        lw = 3.2 if name == fmt else 1.6
        keep = mags <= max_finite(name, int_range)  # beyond it the format overflows or runs out of codes
        gaps = np.array([spacing(m, name, int_range) for m in mags[keep]])
        label = name
        if name in ("int8", "int4"):
            label = f"{name} on [−{int_range:g}, {int_range:g}] (step {int_step(name, int_range):.3g})"
        ax.loglog(mags[keep], gaps, lw=lw, ls=styles.get(name, "-."), color=f"C{i}", label=label)
    ax.axvline(abs(value) if value else 1e-6, color="k", lw=1, ls=":", label=f"your value {value:g}")
    ax.set(xlabel="magnitude |x|", ylabel="gap to next representable value",
           title="Floats: relative precision, up to their largest value. Integers: one fixed step.")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.12, top=0.92)  # tight_layout costs a draw
    return fig


def block_versions(block) -> dict:
    """One block of weights in the block formats of qlib.blockfloat, each with its block size set to the
    block's length (MXFP4: E8M0 scale; NVFP4: E4M3 scale + fp32 tensor scale; NF4: fp32 absmax) and,
    for comparison, int4 with one symmetric scale max|w| / 7.

    >>> v = block_versions(np.array([0.1, -0.2, 0.3, 0.45]))
    >>> [f"{x:.4f}" for x in v["MXFP4"]]
    ['0.0938', '-0.1875', '0.2500', '0.3750']
    """
    from .. import blockfloat

    b = np.asarray(block, np.float64).ravel()
    n = b.size
    step = np.abs(b).max() / 7 if np.abs(b).max() > 0 else 1.0
    return {
        "int4 (scale max/7)": np.clip(np.rint(b / step), -8, 7) * step,
        "MXFP4": blockfloat.fake_quantize_mx(b, block_size=n),
        "NVFP4": blockfloat.fake_quantize_nvfp4(b, block_size=n),
        "NF4": blockfloat.fake_quantize_nf4(b, block_size=n),
    }


def draw_small_formats(block=None):
    """Left: the non-negative values of FP4 E2M1, FP6 E2M3 and E3M2 (up to 8) and a uniform int4 grid
    with the same largest value 6, as ticks on one axis. Right (when ``block`` is given): one block
    of weights and its versions from :func:`block_versions`."""
    import matplotlib.pyplot as plt

    ncols = 1 if block is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(11 if block is not None else 6, 3.4), squeeze=False)
    ax = axes[0, 0]
    rows = [("int4 (×6/7)", np.arange(0, 8) * 6 / 7)]
    for name in ("e2m1", "e2m3", "e3m2"):
        v = minifloat.all_values(name).astype(np.float64)
        rows.append((f"{name} ({'FP4' if name == 'e2m1' else 'FP6'})", v[(v >= 0) & (v <= 8)]))
    for i, (name, v) in enumerate(rows):
        ax.plot(v, np.full(v.size, i), "|", ms=16, mew=2, color=f"C{i}")
        ax.text(8.2, i, f"{v.size} values", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set(xlim=(-0.2, 9.6), ylim=(-0.7, len(rows) - 0.3), xlabel="value (non-negative half; signs mirror it)",
           title="Small floats crowd near 0, int4 is uniform")
    ax.grid(alpha=0.3, axis="x")
    if block is not None:
        ax = axes[0, 1]
        b = np.asarray(block, np.float64).ravel()
        idx = np.arange(b.size)
        ax.plot(idx, b, "ko", ms=5, label="fp32 weight", zorder=3)
        for i, (name, v) in enumerate(block_versions(b).items()):
            ax.plot(idx, v, "_", ms=9, mew=2, color=f"C{i}", label=f"{name}: SQNR {_sqnr(b, v):.1f} dB")
        ax.set(xlabel="position in the block", ylabel="weight",
               title=f"one block of {b.size} weights, stored four ways")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.2 if block is None else 0.11, right=0.98, bottom=0.16, top=0.88, wspace=0.3)
    return fig


def _sqnr(x, x_hat) -> float:
    from ..metrics import sqnr_db

    return sqnr_db(x, x_hat)


def cast_modes(value: float, fmt: str, saturate: bool) -> str:
    """HTML line: what a plain and a saturating cast store for ``value``, the chosen one in bold.

    >>> cast_modes(500.0, "fp8_e4m3", saturate=True)
    'plain cast: nan &nbsp;·&nbsp; <b>saturating cast: 448</b>'
    >>> cast_modes(0.1, "int8", saturate=False)
    '<i>saturate</i> (not ticked) applies to FP8/FP6/FP4 only (int8 always clips to its range)'
    """
    check_choice(fmt, "fmt", FORMAT_NAMES)
    saturate = check_flag(saturate, "saturate")
    if fmt not in MINIFLOAT_OF:
        rule = "always clips to its range" if fmt in ("int8", "int4") else "overflows to inf"
        return f"<i>saturate</i> ({'ticked' if saturate else 'not ticked'}) applies to FP8/FP6/FP4 only ({fmt} {rule})"
    plain, sat = (f"{store(value, fmt, saturate=m).stored:.10g}" for m in (False, True))
    parts = [f"plain cast: {plain}", f"saturating cast: {sat}"]
    parts[int(saturate)] = f"<b>{parts[int(saturate)]}</b>"
    return " &nbsp;·&nbsp; ".join(parts)


def controls():
    """The explorer's controls: a number box that reads ``1/3`` or ``2**-10`` as well as ``0.1``
    (:func:`qlib.widgets.number_text`), a format dropdown and the saturate box."""
    import ipywidgets as w

    from . import number_text

    style = {"description_width": "initial"}
    return {
        "value": number_text(0.1, "value x", style=style),
        "fmt": w.Dropdown(options=FORMAT_NAMES, value="bf16", description="format", style=style),
        "saturate": w.Checkbox(value=False, description="saturate (FP8/FP6/FP4)", style=style),
    }
