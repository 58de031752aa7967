"""Checkers for notebook 08 (integer-only inference)."""

from __future__ import annotations

import numpy as np

from ..integer import accumulate_expanded, multiply_by_quantized_multiplier, quantize_multiplier, requantize
from . import as_whole_number, failed, passed

__all__ = ["multiplier_by_hand", "neuron_code"]


def multiplier_by_hand(M0, shift, M: float) -> None:
    """Check a hand-computed fixed-point multiplier: ``M ~= M0 * 2^(shift - 31)`` with ``2^30 <= M0 < 2^31``.

    >>> multiplier_by_hand(1610612736, 0, 0.75)
    ✅ Correct! M = 0.75 = 0.75 · 2^0, so M0 = round(0.75 · 2^31) = 1610612736 and shift = 0.
    """
    want_m0, want_shift = quantize_multiplier(M)
    q, e = np.frexp(float(M))
    m0 = as_whole_number("M0", M0, hint="M0 = round(q · 2^31) is a whole number (an int32)")
    sh = as_whole_number("shift", shift, hint="the shift is frexp's exponent, a whole number")
    if not (2**30 <= m0 < 2**31):
        failed(f"M0 = {m0} is outside [2^30, 2^31)",
               hint="write M = q · 2^shift with q in [0.5, 1) first (np.frexp does it), then M0 = round(q · 2^31)")
    if sh == -want_shift and sh != want_shift:
        failed(f"shift = {sh} has the wrong sign", hint=f"M = {q:.6f} · 2^{e}: the shift is the exponent of 2")
    if m0 == want_m0 and sh == want_shift - 31:
        failed(f"shift = {sh}: you already counted the 31", hint="the course's shift is frexp's exponent; M = M0 · 2^(shift − 31)")
    if sh != want_shift:
        failed(f"shift = {sh}, expected something else", hint=f"frexp(M) = ({q:.6f}, {e}): the exponent is the shift")
    if abs(m0 - want_m0) == 1:
        failed(f"M0 = {m0} is one off", hint=f"q · 2^31 = {q * 2.0**31:.3f}: round to the nearest integer")
    if m0 != want_m0:
        failed(f"M0 = {m0}, expected something else", hint=f"M0 = round({q:.6f} · 2^31)")
    passed(f"M = {M:g} = {q:g} · 2^{e}, so M0 = round({q:g} · 2^31) = {want_m0} and shift = {want_shift}.")


def neuron_code(code, x_codes, w_row, z_in: int, bias: int, M0: int, shift: int, z_out: int,
                qmin: int = 0, qmax: int = 255, relu: bool = True) -> None:
    """Check one neuron's output code computed integer-only:
    ``acc = sum_k (x_k - Z_in) w_k + bias``, ``code = clamp(Z_out + mbqm(acc, M0, shift), lo, qmax)``.

    The expected code comes from qlib (:func:`qlib.integer.accumulate_expanded`,
    :func:`qlib.integer.requantize`); the usual slips (Z_in or Z_out forgotten or with the wrong
    sign, the bias forgotten, a ReLU clamp on a layer without ReLU) get their own hint.

    >>> neuron_code(22, np.array([130, 120]), np.array([2, -3]), 128, 10, 1073741824, 0, 3)
    ✅ Correct! acc = 38, acc · M = 19.000 → 19, code = 22.
    """
    x = np.asarray(x_codes).astype(np.int64).reshape(1, -1)
    w = np.asarray(w_row).astype(np.int64).reshape(1, -1)
    z_in, z_out, bias, M0, shift = int(z_in), int(z_out), int(bias), int(M0), int(shift)

    def code_of(zx=z_in, b=bias, zy=z_out, fused_relu=relu):
        acc = int(accumulate_expanded(x, w, zx, 0, [b])[0, 0])
        return int(requantize(acc, M0, shift, zy, qmin, qmax, relu=fused_relu)), acc

    want, acc = code_of()
    y = int(multiply_by_quantized_multiplier(acc, M0, shift))
    real = acc * float(M0) * 2.0 ** (shift - 31)
    got = as_whole_number("code", code, hint="round acc · M, add the zero point, clamp: a whole number")
    if got != want:
        slips = [(code_of(zx=0)[0], f"did you forget to subtract the input zero point Z_in = {z_in}?",
                  "acc = Σ (x_k − Z_in) · w_k + bias: the codes are offset by Z_in"),
                 (code_of(zx=-z_in)[0], f"the input zero point Z_in = {z_in} was added, not subtracted",
                  "acc = Σ (x_k − Z_in) · w_k + bias"),
                 (code_of(zy=0)[0], f"add the output zero point Z_out = {z_out}",
                  "code = Z_out + round(acc · M), then clamp"),
                 (code_of(zy=-z_out)[0], f"the output zero point Z_out = {z_out} was subtracted, not added",
                  "code = Z_out + round(acc · M), then clamp"),
                 (code_of(b=0)[0], "did you forget the bias?", "acc = Σ (x_k − Z_in) · w_k + bias"),
                 (code_of(fused_relu=True)[0], f"this layer has no ReLU: do not clamp at Z_out = {z_out}",
                  f"clamp to [q_min, q_max] = [{qmin}, {qmax}] only")]
        for wrong, why, hint in slips:
            if got == wrong:
                failed(f"code = {got}: {why}", hint)
        if relu and got < max(qmin, z_out):
            failed(f"code = {got} is below Z_out = {z_out}", hint="the fused ReLU clamps at the output zero point")
        failed(f"code = {got}, expected something else",
               hint=f"acc = Σ (x_k − Z_in) · w_k + bias; then multiply_by_quantized_multiplier, + Z_out and clamp")
    passed(f"acc = {acc}, acc · M = {real:.3f} → {y}, code = {want}.")
