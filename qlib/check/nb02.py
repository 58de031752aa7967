"""Checkers for notebook 02 (linear quantization)."""

from __future__ import annotations

import numpy as np

from ..linear import QParams, qparams_from_range, quantize, round_half_away
from . import as_array, as_number, as_whole_number, call_learner, expect_close, failed, passed

__all__ = ["scale_and_zero_point", "my_quantize"]


def scale_and_zero_point(S, Z, x_min: float, x_max: float, bits: int = 8) -> None:
    """Check a hand-computed asymmetric (min-max, unsigned) step size S and zero point Z
    against ``qlib.qparams_from_range``: S to 1e-6 (it is a float), Z exactly.

    >>> scale_and_zero_point(2.9 / 255, 62, x_min=-0.7, x_max=2.2)
    ✅ Correct! S = 0.011373 and Z = 62: real 0 is exactly code 62.
    >>> try:
    ...     scale_and_zero_point(2.9 / 255, 61, x_min=-0.7, x_max=2.2)
    ... except AssertionError:
    ...     pass
    ❌ Not yet: Z = 61: -min / S = 61.55, and that rounds to 62
       Hint: Z = round(-min / S): round to the nearest integer; int() and floor cut the fraction off
    """
    qp = qparams_from_range(x_min, x_max, bits=bits)
    n = qp.qmax - qp.qmin
    s = as_number("S", S)
    hint = f"S is the step: (max - min) / (2^{bits} - 1), after widening the range to include 0"
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    for wrong, why in (((hi - lo) / (n + 1), f"divide by the number of steps, 2^{bits} - 1 = {n}, not by 2^{bits}"),
                       (hi / n, "the range is max - min, not max alone"),
                       ((hi + lo) / n, "max - min with min negative: the width is max + |min|")):
        if np.isclose(s, wrong, rtol=1e-6) and not np.isclose(wrong, qp.scale, rtol=1e-6):
            hint = why
    expect_close("S", s, qp.scale, rtol=1e-6, hint=hint)
    z = as_whole_number("Z", Z, hint="Z = round(-min / S) is a whole number: the code that real 0 lands on")
    if z != qp.zero_point:
        r = -lo / qp.scale
        why = f"-min / S = {r:.2f}, and that rounds to {qp.zero_point}"
        hint = "Z = round(-min / S): the code that real 0 lands on"
        if z == -qp.zero_point:
            why, hint = "the sign is flipped", "min is negative, so -min / S is positive"
        elif z in (int(np.floor(r)), int(np.ceil(r))):
            hint = "Z = round(-min / S): round to the nearest integer; int() and floor cut the fraction off"
        failed(f"Z = {z}: {why}", hint)
    passed(f"S = {qp.scale:.6f} and Z = {qp.zero_point}: real 0 is exactly code {qp.zero_point}.")


def _my_quantize_cases():
    rng = np.random.default_rng(2)
    return [
        (np.array([-1.8, -1.0, 0.0, 0.5]), qparams_from_range(-1.8, 0.5)),  # the seed's example
        (np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.7, -3.7, 4.2, -4.2]), QParams(1.0, 0, -128, 127, 8)),  # ties, signs
        (np.array([0.3, 1.4, -2.6, 0.5, 1.5]), QParams(0.5, 3, 0, 15, 4)),   # Z != 0, codes near both edges
        (rng.normal(0, 3, 200), qparams_from_range(-1.0, 1.0, bits=4)),  # lots of clipping
        (rng.uniform(-1, 1, 200), qparams_from_range(-1.0, 1.0, symmetric=True)),  # signed codes
    ]


def my_quantize(fn) -> None:
    """Compare the learner's ``fn(x, S, Z, qmin, qmax) -> codes`` with ``qlib.quantize`` exactly, on
    the seed's example, ties (half to even), negative values, Z != 0 and clipping.

    >>> my_quantize(lambda x, S, Z, qmin, qmax: np.clip(np.rint(x / S) + Z, qmin, qmax))
    ✅ Correct! your quantize agrees with qlib.quantize on the seed's example, on ties and when clipping.
    >>> try:
    ...     my_quantize(lambda x, S, Z, qmin, qmax: np.clip(np.floor(x / S) + Z, qmin, qmax))
    ... except AssertionError:
    ...     pass
    ❌ Not yet: for x = 1.5 (S = 1, Z = 0) you gave code 1, expected 2
       Hint: int(), astype(int), np.trunc cut the fraction off: round first with np.rint
    """
    for x, qp in _my_quantize_cases():
        out = call_learner(fn, x.copy(), qp.scale, qp.zero_point, qp.qmin, qp.qmax, name="your my_quantize",
                           expected_args="x, S, Z, qmin, qmax")
        want = quantize(x, qp).astype(np.float64)
        got = as_array("your function's result", out, shape=want.shape,
                       hint="return one code per input value, same shape as x")
        bad = np.flatnonzero(got != want)
        if bad.size:
            i = int(bad[0])
            hint = "divide by S, round half to even (np.rint), add Z, then clip to [qmin, qmax]"
            r = x[i] / qp.scale
            for wrong, why in ((np.trunc(r), "int(), astype(int), np.trunc cut the fraction off: round first with np.rint"),
                               (np.floor(r), "np.floor rounds down: use np.rint (round to nearest, ties to even)"),
                               (np.ceil(r), "np.ceil rounds up: use np.rint (round to nearest, ties to even)"),
                               (round_half_away(r), "ties go to the even code (np.rint), not away from 0"),
                               (r, "the codes must be rounded to whole numbers")):
                if np.clip(wrong + qp.zero_point, qp.qmin, qp.qmax) == got[i] and got[i] != want[i]:
                    hint = why
                    break
            failed(f"for x = {x[i]:.6g} (S = {qp.scale:.6g}, Z = {qp.zero_point}) you gave code {got[i]:.6g}, "
                   f"expected {want[i]:.0f}", hint=hint)
    passed("your quantize agrees with qlib.quantize on the seed's example, on ties and when clipping.")
