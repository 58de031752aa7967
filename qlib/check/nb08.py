"""Checkers for notebook 08 (integer-only inference)."""

from __future__ import annotations

import numpy as np

from ..integer import multiply_by_quantized_multiplier, quantize_multiplier
from . import expect_equal, failed, passed

__all__ = ["multiplier_by_hand", "neuron_code"]


def multiplier_by_hand(M0, shift, M: float) -> None:
    """Check a hand-computed fixed-point multiplier: ``M ~= M0 * 2^(shift - 31)`` with ``2^30 <= M0 < 2^31``.

    >>> multiplier_by_hand(1610612736, 0, 0.75)
    ✅ Correct! M = 0.75 = 0.75 · 2^0, so M0 = round(0.75 · 2^31) = 1610612736 and shift = 0.
    """
    want_m0, want_shift = quantize_multiplier(M)
    q, e = np.frexp(float(M))
    try:
        m0, sh = int(M0), int(shift)
    except (TypeError, ValueError):
        failed(f"M0 and shift must be whole numbers, got {M0!r} and {shift!r}")
        return
    if float(M0) != m0:
        failed(f"M0 = {M0!r} is not a whole number", hint="round q · 2^31 to the nearest integer")
    if not (2**30 <= m0 < 2**31):
        failed(f"M0 = {m0} is outside [2^30, 2^31)",
               hint="write M = q · 2^shift with q in [0.5, 1) first (np.frexp does it), then M0 = round(q · 2^31)")
    if sh == -want_shift and sh != want_shift:
        failed(f"shift = {sh} has the wrong sign", hint=f"M = {q:.6f} · 2^{e}: the shift is the exponent of 2")
    if m0 == want_m0 and sh == want_shift - 31:
        failed(f"shift = {sh}: you already counted the 31", hint="the course's shift is frexp's exponent; M = M0 · 2^(shift − 31)")
    expect_equal("shift", sh, want_shift, hint=f"frexp(M) = ({q:.6f}, {e}): the exponent is the shift")
    if abs(m0 - want_m0) == 1:
        failed(f"M0 = {m0} is one off", hint=f"q · 2^31 = {q * 2.0**31:.3f}: round to the nearest integer")
    expect_equal("M0", m0, want_m0, hint=f"M0 = round({q:.6f} · 2^31)")
    passed(f"M = {M:g} = {q:g} · 2^{e}, so M0 = round({q:g} · 2^31) = {want_m0} and shift = {want_shift}.")


def neuron_code(code, x_codes, w_row, z_in: int, bias: int, M0: int, shift: int, z_out: int,
                qmin: int = 0, qmax: int = 255, relu: bool = True) -> None:
    """Check one neuron's output code computed integer-only:
    ``acc = sum_k (x_k - Z_in) w_k + bias``, ``code = clamp(Z_out + mbqm(acc, M0, shift), lo, qmax)``.

    >>> neuron_code(19, np.array([130, 120]), np.array([2, -3]), 128, 10, 1073741824, 0, 0)
    ✅ Correct! acc = 38, acc · M = 19.000 → 19, code = 19.
    """
    x = np.asarray(x_codes).astype(np.int64)
    w = np.asarray(w_row).astype(np.int64)
    acc = int(((x - int(z_in)) * w).sum() + int(bias))
    y = int(multiply_by_quantized_multiplier(acc, M0, shift))
    lo = max(qmin, z_out) if relu else qmin
    want = int(np.clip(y + z_out, lo, qmax))
    real = acc * float(M0) * 2.0 ** (int(shift) - 31)
    try:
        got = int(code)
    except (TypeError, ValueError):
        failed(f"code must be a whole number, got {code!r}")
        return
    if got != code:
        failed(f"code = {code!r} is not a whole number", hint="round acc · M, then add the zero point")
    acc_no_z = int((x * w).sum() + int(bias))
    no_z = int(np.clip(int(multiply_by_quantized_multiplier(acc_no_z, M0, shift)) + z_out, lo, qmax))
    if got == no_z != want:
        failed(f"code = {got}: did you forget to subtract the input zero point Z_in = {z_in}?")
    if got == y and z_out != 0 and got != want:
        failed(f"code = {got}: add the output zero point Z_out = {z_out}")
    if relu and got < lo:
        failed(f"code = {got} is below Z_out = {z_out}", hint="the fused ReLU clamps at the output zero point")
    expect_equal("code", got, want, hint=f"acc = {acc}; acc · M = {real:.3f}; then + Z_out and clamp")
    passed(f"acc = {acc}, acc · M = {real:.3f} → {y}, code = {want}.")
