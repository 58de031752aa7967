"""Checkers for notebook 09 (capstone: a real pretrained network)."""

from __future__ import annotations

import numpy as np

from . import expect_close, failed, passed

__all__ = ["check_folded_bias", "check_cle_scales", "check_bias_scale"]


def check_folded_bias(b_folded, gamma, beta, mean, var, eps: float = 1e-5) -> None:
    """Exercise 1: the bias a bias-free Conv gets when its BatchNorm is folded in:
    ``b' = beta - gamma * mean / sqrt(var + eps)``."""
    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64) for v in (gamma, beta, mean, var))
    truth = beta - gamma * mean / np.sqrt(var + eps)
    got = np.asarray(b_folded, dtype=np.float64)
    if got.shape == truth.shape and np.allclose(got, truth, rtol=1e-5, atol=1e-6):
        passed("the conv had no bias, so b' = k·(0 − mean) + beta with k = gamma/√(var+eps).")
        return
    if got.shape == truth.shape and np.allclose(got, beta - mean, rtol=1e-5, atol=1e-6):
        failed("you subtracted the mean but forgot to scale it", "multiply the mean by k = gamma / sqrt(var + eps)")
    if got.shape == truth.shape and np.allclose(got, beta + gamma * mean / np.sqrt(var + eps), rtol=1e-5):
        failed("the sign of the mean term is flipped", "BN computes (z − mean), so the mean enters with a minus")
    expect_close("b_folded", got, truth, rtol=1e-5, atol=1e-6,
                 hint="b' = k * (b - mean) + beta with b = 0 and k = gamma / sqrt(var + eps)")


def check_cle_scales(s, r1, r2) -> None:
    """Exercise 2: cross-layer equalization scales ``s = sqrt(r1 / r2)`` that make both layers'
    channel ranges equal to ``sqrt(r1 * r2)``."""
    r1, r2 = np.asarray(r1, dtype=np.float64), np.asarray(r2, dtype=np.float64)
    truth = np.sqrt(r1 / r2)
    got = np.asarray(s, dtype=np.float64)
    if got.shape == truth.shape and np.allclose(got, truth, rtol=1e-6):
        passed("after dividing layer 1 by s and multiplying layer 2 by s, both ranges are √(r1·r2).")
        return
    if got.shape == truth.shape and np.allclose(got, 1 / truth, rtol=1e-6):
        failed("these are the reciprocals", "layer 1's range r1 / s and layer 2's range r2 · s must be equal: s² = r1 / r2")
    if got.shape == truth.shape and np.allclose(got, np.sqrt(r1 * r2), rtol=1e-6):
        failed("√(r1·r2) is the common range after equalization, not the scale", "s = √(r1 / r2)")
    expect_close("s", got, truth, rtol=1e-6, hint="solve r1 / s = r2 · s for s")


def check_bias_scale(s_bias, s_in, s_w) -> None:
    """Exercise 3: the int32 bias of a quantized Conv uses ``S_bias = S_in * S_w`` (per output channel
    when the weights are per-channel) and zero point 0, so it adds straight into the accumulator."""
    truth = np.float64(s_in) * np.asarray(s_w, dtype=np.float64)
    got = np.asarray(s_bias, dtype=np.float64)
    if got.shape == truth.shape and np.allclose(got, truth, rtol=1e-6):
        passed("the accumulator holds Σ q_in·q_w in units of S_in·S_w, so the bias must use the same unit.")
        return
    expect_close("S_bias", got, truth, rtol=1e-6,
                 hint="the accumulator counts in steps of S_in * S_w (one value per output channel)")
