"""Checkers for notebook 05 (SNPE encodings)."""

from __future__ import annotations

import numpy as np

from ..snpe import snpe_encoding, snpe_encoding_steps
from . import expect_close, expect_equal, failed, passed

__all__ = ["snpe_encoding_by_hand", "snpe_tie_offsets", "snpe_bias_codes"]


def snpe_encoding_by_hand(scale, offset, encoding_min, encoding_max, x_min: float = -0.7,
                          x_max: float = 2.2, bitwidth: int = 8) -> None:
    """Check a hand-computed SNPE encoding (scale Δ, offset, encoding-min, encoding-max) of [x_min, x_max]."""
    s = snpe_encoding_steps(x_min, x_max, bitwidth)
    n = 2**bitwidth - 1
    expect_close("scale", scale, s.delta, rtol=1e-6, hint=f"Δ = (max − min) / {n}, after widening the range to include 0")
    if isinstance(offset, (float, np.floating)) and not float(offset).is_integer():
        failed(f"offset = {offset} is not a whole number", hint="round −min/Δ to the nearest integer first")
    if offset == -s.offset and offset != 0:
        failed(f"offset = {offset} has the wrong sign",
               hint="SNPE's offset is minus the zero point: offset = −round(−min/Δ) ≤ 0")
    expect_equal("offset", offset, s.offset,
                 hint=f"−min/Δ = {s.zero_real:.4f}; round it (half away from zero) and change the sign")
    expect_close("encoding_min", encoding_min, s.encoding_min, rtol=1e-6, hint="encoding-min = offset · Δ")
    expect_close("encoding_max", encoding_max, s.encoding_max, rtol=1e-6,
                 hint="encoding-max = encoding-min + (max − min): the width of the range does not change")
    passed(f"[{x_min:g}, {x_max:g}] → Δ = {s.delta:.6f}, offset = {s.offset}, "
           f"[{s.encoding_min:.6f}, {s.encoding_max:.6f}]; real 0 is code {s.zero_point} exactly.")


def snpe_tie_offsets(offset_snpe, offset_half_even, x_min: float = -2.5, x_max: float = 252.5) -> None:
    """Check the offsets of a tie case: SNPE/AIMET (half away from zero) vs numpy's half-to-even."""
    s = snpe_encoding_steps(x_min, x_max, 8)
    if s.zero_real != np.floor(s.zero_real) + 0.5:
        raise ValueError(f"[{x_min}, {x_max}] is not an exact tie at 8 bits")
    expect_equal("offset_snpe", offset_snpe, s.offset,
                 hint=f"−min/Δ = {s.zero_real}; C's round (half away from zero) rounds it up in magnitude")
    even = -int(np.rint(s.zero_real))
    expect_equal("offset_half_even", offset_half_even, even,
                 hint=f"np.rint({s.zero_real}) rounds to the even neighbour")
    passed(f"−min/Δ = {s.zero_real} is a tie: SNPE/AIMET give offset {s.offset}, half-to-even would give {even}. "
           "One code apart, so the whole encoding shifts by one step Δ.")


def snpe_bias_codes(q_bias, model=None, x_calib=None) -> None:
    """Check int32 bias codes of fc1: ``round(b / (S_in · S_w))`` with the notebook's encodings.

    S_in: SNPE encoding of the network input over ``x_calib`` (default: the digits training
    set); S_w: SNPE encoding (8-bit, per tensor) of fc1's weight.
    """
    from ..data import load_digits
    from ..nn import reference_model

    model = reference_model() if model is None else model
    x = load_digits().X_train if x_calib is None else x_calib
    fc1 = model.linear_layers[0]
    s_in = snpe_encoding(float(x.min()), float(x.max())).scale
    s_w = snpe_encoding(float(fc1.W.min()), float(fc1.W.max())).scale
    want = np.rint(fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64)
    got = np.asarray(q_bias)
    if got.shape != want.shape:
        failed(f"q_bias has shape {got.shape}, expected {want.shape} (one code per output channel)")
    if got.dtype.kind == "f":
        failed("q_bias holds floats; the bias codes are integers", hint="finish with .astype(np.int64)")
    if np.abs(got.astype(np.int64) - want).max() > 1:
        failed("the codes are off", hint="bias scale = S_in · S_w (input scale times weight scale), zero point 0")
    passed(f"fc1's bias as int32 codes: {want.min()} … {want.max()}, far inside ±2^31, and each code is "
           "exactly in the accumulator's units, so it is added with no rescale.")
