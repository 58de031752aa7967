"""Checkers for notebook 02 (linear quantization)."""

from __future__ import annotations

import numpy as np

from ..linear import QParams, qparams_from_range, quantize
from . import expect_close, expect_equal, failed, passed

__all__ = ["scale_and_zero_point", "my_quantize"]


def scale_and_zero_point(S, Z, x_min: float, x_max: float, bits: int = 8) -> None:
    """Check a hand-computed asymmetric (min-max, unsigned) step size S and zero point Z."""
    qp = qparams_from_range(x_min, x_max, bits=bits)
    expect_close("S", S, qp.scale, rtol=1e-6,
                 hint=f"S is the step: (max - min) / (2^{bits} - 1), after widening the range to include 0")
    expect_equal("Z", Z, qp.zero_point, hint="Z = round(-min / S): the code that real 0 lands on")
    passed(f"S = {qp.scale:.6f} and Z = {qp.zero_point}: real 0 is exactly code {qp.zero_point}.")


def my_quantize(fn) -> None:
    """Compare the learner's ``fn(x, S, Z, qmin, qmax) -> codes`` with qlib.quantize on tricky inputs."""
    rng = np.random.default_rng(2)
    cases = [
        (np.array([-1.8, -1.0, 0.0, 0.5]), qparams_from_range(-1.8, 0.5)),  # the seed's example
        (np.array([0.5, 1.5, 2.5, -0.5, -2.5]), QParams(1.0, 0, -128, 127, 8)),  # ties: half to even
        (rng.normal(0, 3, 200), qparams_from_range(-1.0, 1.0, bits=4)),  # lots of clipping
        (rng.uniform(-1, 1, 200), qparams_from_range(-1.0, 1.0, symmetric=True)),  # signed codes
    ]
    for x, qp in cases:
        got = np.asarray(fn(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax))
        want = quantize(x, qp)
        if got.shape != want.shape:
            failed(f"your function returned shape {got.shape} for an input of shape {x.shape}")
        if not np.array_equal(got.astype(np.int64), want.astype(np.int64)):
            i = int(np.flatnonzero(got.astype(np.int64) != want.astype(np.int64))[0])
            failed(f"for x = {x[i]:.6g} (S = {qp.scale:.6g}, Z = {qp.zero_point}) you gave code {got[i]}, "
                   f"expected {want[i]}",
                   hint="divide by S, round half to even (np.rint), add Z, then clip to [qmin, qmax]")
    passed("your quantize agrees with qlib.quantize on the seed's example, on ties and when clipping.")
