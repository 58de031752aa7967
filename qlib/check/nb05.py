"""Checkers for notebook 05 (SNPE encodings)."""

from __future__ import annotations

import numpy as np

from ..snpe import snpe_encoding, snpe_encoding_steps
from . import as_array, as_number, as_whole_number, expect_close, failed, passed

__all__ = ["snpe_encoding_by_hand", "snpe_tie_offsets", "snpe_bias_codes"]


def snpe_encoding_by_hand(scale, offset, encoding_min, encoding_max, x_min: float = -0.7,
                          x_max: float = 2.2, bitwidth: int = 8) -> None:
    """Check a hand-computed SNPE encoding (scale Δ, offset, encoding-min, encoding-max) of [x_min, x_max].

    >>> snpe_encoding_by_hand(2.9 / 255, -62, -62 * 2.9 / 255, -62 * 2.9 / 255 + 2.9)
    ✅ Correct! [-0.7, 2.2] → Δ = 0.011373, offset = -62, [-0.705098, 2.194902]; real 0 is code 62 exactly.
    >>> try:
    ...     snpe_encoding_by_hand(2.9 / 255, -61, -61 * 2.9 / 255, -61 * 2.9 / 255 + 2.9)
    ... except AssertionError:
    ...     pass
    ❌ Not yet: offset = -61: −min/Δ = 61.5517 rounds to 62, so offset = -62
       Hint: round to the nearest integer; int() and math.floor cut the fraction off
    """
    s = snpe_encoding_steps(x_min, x_max, bitwidth)
    n = 2**bitwidth - 1
    width = s.encoding_max - s.encoding_min
    sc = as_number("scale", scale)
    hint = f"Δ = (max − min) / {n}, after widening the range to include 0"
    if np.isclose(sc, width / (n + 1), rtol=1e-6):
        hint = f"divide by the number of steps, 2^{bitwidth} − 1 = {n}, not by 2^{bitwidth}"
    elif np.isclose(sc, n / width, rtol=1e-6):
        hint = "that is the seed's S' = 1/Δ (steps per real unit); SNPE's scale is the step Δ itself"
    expect_close("scale", sc, s.delta, rtol=1e-6, hint=hint)
    off = as_whole_number("offset", offset, hint="round −min/Δ to the nearest integer, then change the sign")
    if off != s.offset:
        if off == -s.offset:
            failed(f"offset = {off} has the wrong sign",
                   hint="SNPE's offset is minus the zero point: offset = −round(−min/Δ) ≤ 0")
        if -off in (int(np.floor(s.zero_real)), int(np.ceil(s.zero_real))) and abs(off - s.offset) == 1:
            failed(f"offset = {off}: −min/Δ = {s.zero_real:.4f} rounds to {s.zero_point}, so offset = {s.offset}",
                   hint="round to the nearest integer; int() and math.floor cut the fraction off")
        failed(f"offset = {off}, expected something else",
               hint=f"−min/Δ = {s.zero_real:.4f}; round it (half away from zero) and change the sign")
    lo = as_number("encoding_min", encoding_min)
    if np.isclose(lo, min(x_min, 0.0), rtol=1e-9) and not np.isclose(lo, s.encoding_min, rtol=1e-6):
        failed(f"encoding_min = {lo:.6f} is the data's min, not yet adjusted",
               hint="encoding-min = offset · Δ: the range slides so that real 0 is exactly a code")
    expect_close("encoding_min", lo, s.encoding_min, rtol=1e-6, hint="encoding-min = offset · Δ")
    hi = as_number("encoding_max", encoding_max)
    hint = "encoding-max = encoding-min + (max − min): the width of the range does not change"
    if np.isclose(hi, max(x_max, 0.0), rtol=1e-9):
        hint = "that is the data's max; the whole range slides with encoding-min: " + hint
    expect_close("encoding_max", hi, s.encoding_max, rtol=1e-6, hint=hint)
    passed(f"[{x_min:g}, {x_max:g}] → Δ = {s.delta:.6f}, offset = {s.offset}, "
           f"[{s.encoding_min:.6f}, {s.encoding_max:.6f}]; real 0 is code {s.zero_point} exactly.")


def snpe_tie_offsets(offset_snpe, offset_half_even, x_min: float = -2.5, x_max: float = 252.5) -> None:
    """Check the offsets of a tie case: SNPE/AIMET (half away from zero) vs numpy's half-to-even.

    >>> snpe_tie_offsets(-3, -2)
    ✅ Correct! −min/Δ = 2.5 is a tie: SNPE/AIMET give offset -3, half-to-even would give -2. One code apart, so the whole encoding shifts by one step Δ.
    """
    s = snpe_encoding_steps(x_min, x_max, 8)
    if s.zero_real != np.floor(s.zero_real) + 0.5:
        raise ValueError(f"[{x_min}, {x_max}] is not an exact tie at 8 bits")
    even = -int(np.rint(s.zero_real))
    a = as_whole_number("offset_snpe", offset_snpe, hint="the offset is a whole number ≤ 0: −round(−min/Δ)")
    b = as_whole_number("offset_half_even", offset_half_even, hint="the offset is a whole number ≤ 0")
    for name, got, want in (("offset_snpe", a, s.offset), ("offset_half_even", b, even)):
        if got == -want and got != want:
            failed(f"{name} = {got} has the wrong sign", hint="SNPE's offset is minus the zero point (≤ 0)")
    if (a, b) == (even, s.offset):
        failed(f"offset_snpe = {a} and offset_half_even = {b} are swapped",
               hint=f"half away from zero rounds {s.zero_real} up in magnitude; half to even picks the even neighbour")
    if a != s.offset:
        failed(f"offset_snpe = {a}, expected something else",
               hint=f"−min/Δ = {s.zero_real}; C's round (half away from zero) rounds it up in magnitude; "
                    "Python's round() and np.rint round ties to even")
    if b != even:
        failed(f"offset_half_even = {b}, expected something else",
               hint=f"np.rint({s.zero_real}) rounds to the even neighbour")
    passed(f"−min/Δ = {s.zero_real} is a tie: SNPE/AIMET give offset {s.offset}, half-to-even would give {even}. "
           "One code apart, so the whole encoding shifts by one step Δ.")


def snpe_bias_codes(q_bias, model=None, x_calib=None) -> None:
    """Check int32 bias codes of fc1: ``round(b / (S_in · S_w))`` with the notebook's encodings, exactly.

    S_in: SNPE encoding of the network input over ``x_calib`` (default: the digits training
    set); S_w: SNPE encoding (8-bit, per tensor) of fc1's weight. Integer arrays and float
    arrays of whole numbers (``np.rint``'s result) are accepted; truncation, floor, ceil or a
    code off by one are not (no tie occurs here, so every rounding to nearest agrees).
    """
    from ..data import load_digits
    from ..nn import reference_model

    model = reference_model() if model is None else model
    x = load_digits().X_train if x_calib is None else x_calib
    fc1 = model.linear_layers[0]
    s_in = snpe_encoding(float(x.min()), float(x.max())).scale
    s_w = snpe_encoding(float(fc1.W.min()), float(fc1.W.max())).scale
    exact = fc1.b.astype(np.float64) / (s_in * s_w)
    want = np.rint(exact).astype(np.int64)
    got = as_array("q_bias", q_bias, shape=want.shape,
                   hint=f"one code per output channel of fc1: {want.size} integers")
    if not (got == np.rint(got)).all():
        failed("q_bias holds numbers with a fraction; the bias codes are integers",
               hint="round b / (S_in · S_w) to the nearest integer (np.rint), then .astype(np.int64)")
    if np.array_equal(got, want):
        passed(f"fc1's bias as int32 codes: {want.min()} … {want.max()}, far inside ±2^31, and each code is "
               "exactly in the accumulator's units, so it is added with no rescale.")
        return
    bad = np.flatnonzero(got != want)
    k = int(bad[0])
    hint = "bias scale = S_in · S_w (input step times weight step), zero point 0; then round to the nearest integer"
    for wrong, why in ((np.trunc(exact), "int() / astype(int) truncate toward zero: round first with np.rint"),
                       (np.floor(exact), "np.floor rounds down: round to the nearest integer with np.rint"),
                       (np.ceil(exact), "np.ceil rounds up: round to the nearest integer with np.rint"),
                       (-want, "the sign is flipped: the zero point is 0, so q_b = round(b / (S_in · S_w))")):
        if np.array_equal(got, wrong):
            hint = why
            break
    else:
        if np.abs(got - want).max() == 1 and np.abs(got - want).min() == 1:
            hint = "every code is one off: round b / (S_in · S_w) to the nearest integer, add nothing"
    failed(f"q_bias[{k}] = {got[k]:.0f}, expected something else ({bad.size} of {want.size} codes differ)", hint)
