"""Checkers for notebook 09 (capstone: a real pretrained network)."""

from __future__ import annotations

import numpy as np

from . import _show, as_array, as_number, expect_close, failed, passed

__all__ = [
    "NB09_B",
    "NB09_EPS",
    "NB09_R1",
    "NB09_R2",
    "NB09_W",
    "NB09_WQ",
    "NB09_XMEAN",
    "check_bias_scale",
    "check_cle_scales",
    "check_conv_bias_correction",
    "check_folded_bias",
]


def _folded_bias(gamma, beta, mean, var, eps: float) -> np.ndarray:
    """The folded bias of a bias-free conv, through ``qlib.fold_batchnorm`` in float64."""
    from ..bn import fold_batchnorm

    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64) for v in (gamma, beta, mean, var))
    return fold_batchnorm(np.ones((gamma.size, 1)), None, gamma, beta, mean, var, eps=eps)[1]


#: Exercise 1: the epsilon attribute of the model's BatchNormalization nodes.
NB09_EPS = 1e-5


def _close_to(got, want, scale) -> bool:
    """``got`` equals ``want`` to 1e-6 of ``scale`` per channel (the size of the terms that were summed)."""
    return bool(np.all(np.abs(got - want) <= 1e-6 * scale))


def check_folded_bias(b_folded, gamma, beta, mean, var, eps: float = NB09_EPS) -> None:
    """Exercise 1: the bias a bias-free Conv gets when its BatchNorm is folded in:
    ``b' = beta - gamma * mean / sqrt(var + eps)`` (``qlib.fold_batchnorm`` with ``b = 0``), with the
    model's ``eps`` = :data:`NB09_EPS` (a learner's cell that changes ``eps`` is refused).

    Each channel is compared to 1e-6 of the size of its two terms, ``|beta| + |k * mean|``: float32
    arithmetic is ~1e-7 of that off even where the terms nearly cancel (3e-8 on the notebook's first
    conv), while forgetting eps moves three of that conv's 8 channels (variances 0.23 .. 1.8) by
    2.9e-6 .. 1.3e-5 of it.

    >>> g, b, mu, v = np.array([2.0, 1.0]), np.array([0.5, 0.1]), np.array([1.0, -2.0]), np.array([0.25, 0.04])
    >>> check_folded_bias(b - g * mu / np.sqrt(v + 1e-5), g, b, mu, v)
    ✅ Correct! the conv had no bias, so b' = k·(0 − mean) + beta with k = gamma/√(var+eps).
    >>> try:
    ...     check_folded_bias(b - g * mu / np.sqrt(v), g, b, mu, v)
    ... except AssertionError:
    ...     pass
    ❌ Not yet: you left eps out of the square root
       Hint: k = gamma / sqrt(var + eps): eps keeps tiny variances from blowing k up
    >>> try:
    ...     check_folded_bias(b - g * mu / np.sqrt(v), g, b, mu, v, eps=0.0)
    ... except AssertionError:
    ...     pass
    ❌ Not yet: eps = 0.0, but the model's BatchNormalization uses eps = 1e-05
       Hint: keep eps = 1e-5 (the node's epsilon attribute): it is part of what BN computes

    A float32 answer passes even where beta and the mean term nearly cancel:

    >>> g32, mu32, v32 = np.float32([1.5, 0.8]), np.float32([0.7, -0.3]), np.float32([0.3, 0.6])
    >>> b32 = (g32 / np.sqrt(v32.astype(np.float64) + 1e-5) * mu32 + [3e-7, 0.05]).astype(np.float32)
    >>> check_folded_bias(b32 - g32 * mu32 / np.sqrt(v32 + np.float32(1e-5)), g32, b32, mu32, v32)
    ✅ Correct! the conv had no bias, so b' = k·(0 − mean) + beta with k = gamma/√(var+eps).
    """
    e = as_number("eps", eps, hint="keep eps = 1e-5 (the node's epsilon attribute)")
    if e != NB09_EPS:
        failed(f"eps = {_show(eps)}, but the model's BatchNormalization uses eps = {NB09_EPS:g}",
               "keep eps = 1e-5 (the node's epsilon attribute): it is part of what BN computes")
    params = {"gamma": gamma, "beta": beta, "mean": mean, "var": var}
    arrays = [as_array(name, v, hint="re-run the cell that reads the BatchNormalization's parameters")
              for name, v in params.items()]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1 or (arrays[3] < 0).any():
        failed("gamma, beta, mean, var should be the BatchNormalization's four 1-D arrays of one value per "
               "channel (var >= 0)", "re-run the cell that reads the BatchNormalization's parameters")
    gamma, beta, mean, var = arrays
    truth = _folded_bias(gamma, beta, mean, var, NB09_EPS)
    got = as_array("b_folded", b_folded, shape=truth.shape, hint="one bias per output channel")
    k = gamma / np.sqrt(var + NB09_EPS)
    size = np.abs(beta) + np.abs(k * mean)
    if _close_to(got, truth, size):
        passed("the conv had no bias, so b' = k·(0 − mean) + beta with k = gamma/√(var+eps).")
        return
    with np.errstate(all="ignore"):   # var = 0 without eps: a diagnosis only
        diagnoses = _diagnoses(gamma, beta, mean, var, NB09_EPS, k)
    for wrong, msg, hint in diagnoses:
        if np.isfinite(wrong).all() and _close_to(got, wrong, size) and not _close_to(wrong, truth, size):
            failed(msg, hint)
    failed(f"b_folded = {_show(got)}, expected something else",
           "b' = k * (b - mean) + beta with b = 0 and k = gamma / sqrt(var + eps)")


def _diagnoses(gamma, beta, mean, var, eps, k):
    """Classic wrong folded biases, each with what went wrong and a hint."""
    return [
        (_folded_bias(gamma, beta, mean, var, 0.0), "you left eps out of the square root",
         "k = gamma / sqrt(var + eps): eps keeps tiny variances from blowing k up"),
        (beta - mean, "you subtracted the mean but forgot to scale it", "multiply the mean by k = gamma / sqrt(var + eps)"),
        (beta + k * mean, "the sign of the mean term is flipped", "BN computes (z − mean), so the mean enters with a minus"),
        (-k * mean, "you forgot beta", "BN adds beta after scaling: b' = k * (0 - mean) + beta"),
        (beta - gamma * mean / (var + eps), "divide by the standard deviation sqrt(var + eps), not by the variance",
         "k = gamma / sqrt(var + eps)"),
        (beta - gamma * mean / (np.sqrt(var) + eps),
         "eps goes inside the square root", "sqrt(var + eps), not sqrt(var) + eps"),
        (k * (beta - mean), "beta is added after the scaling, not scaled by k", "b' = k * (0 - mean) + beta"),
    ]


#: Exercise 2: the channel ranges of layer 1 (r1) and of layer 2's matching inputs (r2).
NB09_R1 = (4.0, 0.5, 2.0)
NB09_R2 = (1.0, 2.0, 0.5)


def check_cle_scales(s, r1=NB09_R1, r2=NB09_R2) -> None:
    """Exercise 2: cross-layer equalization scales ``s = sqrt(r1 / r2)`` (``qlib.cle.cle_scales``) that
    make both layers' channel ranges equal to ``sqrt(r1 * r2)``. Judged on the exercise's ranges
    :data:`NB09_R1`, :data:`NB09_R2`: a cell that changes ``r1`` or ``r2`` (swaps them, say) is refused.

    >>> check_cle_scales([2.0, 0.5, 2.0])
    ✅ Correct! after dividing layer 1 by s and multiplying layer 2 by s, both ranges are √(r1·r2).
    >>> try:
    ...     check_cle_scales([0.5, 2.0, 0.5], r1=NB09_R2, r2=NB09_R1)
    ... except AssertionError:
    ...     pass
    ❌ Not yet: r1 and r2 are not the exercise's ranges anymore: r1 = [4, 0.5, 2], r2 = [1, 2, 0.5]
       Hint: do not change r1 and r2: run the exercise cell as given, with only s computed by you
    """
    hint = "do not change r1 and r2: run the exercise cell as given, with only s computed by you"
    given = [as_array(name, r, hint=hint) for name, r in (("r1", r1), ("r2", r2))]
    if any(g.shape != (len(NB09_R1),) for g in given) or not (np.array_equal(given[0], NB09_R1)
                                                           and np.array_equal(given[1], NB09_R2)):
        failed("r1 and r2 are not the exercise's ranges anymore: r1 = [4, 0.5, 2], r2 = [1, 2, 0.5]", hint)
    from ..cle import cle_scales

    r1, r2 = np.asarray(r1, dtype=np.float64), np.asarray(r2, dtype=np.float64)
    truth = cle_scales(r1, r2)
    got = as_array("s", s, shape=truth.shape, hint="one scale per channel")
    if np.allclose(got, truth, rtol=1e-9):
        passed("after dividing layer 1 by s and multiplying layer 2 by s, both ranges are √(r1·r2).")
        return
    for wrong, msg, hint in (
            (1 / truth, "these are the reciprocals",
             "layer 1's range r1 / s and layer 2's range r2 · s must be equal: s² = r1 / r2"),
            (np.sqrt(r1 * r2), "√(r1·r2) is the common range after equalization, not the scale", "s = √(r1 / r2)"),
            (r1 / r2, "that is s², the ratio of the ranges", "take the square root: s = √(r1 / r2)")):
        if np.allclose(got, wrong, rtol=1e-9):
            failed(msg, hint)
    expect_close("s", got, truth, rtol=1e-9, hint="solve r1 / s = r2 · s for s")


def check_bias_scale(s_bias, s_in, s_w) -> None:
    """Exercise 3: the int32 bias of a quantized Conv uses ``S_bias = S_in * S_w`` (per output channel
    when the weights are per-channel) and zero point 0, so it adds straight into the accumulator.

    >>> check_bias_scale([0.02, 0.04], 0.1, [0.2, 0.4])
    ✅ Correct! the accumulator holds Σ q_in·q_w in units of S_in·S_w, so the bias must use the same unit.

    ``s_in`` must be one positive number and ``s_w`` the per-channel weight scales (a 1-D array of
    several positive numbers): a cell that replaces them by a per-tensor scale is refused.

    >>> try:
    ...     check_bias_scale(0.02, 0.1, 0.2)
    ... except AssertionError:
    ...     pass
    ❌ Not yet: s_w should be the conv's per-channel weight scales (one per output channel), got 0.2
       Hint: keep s_w as the exercise cell sets it: og.weight_qparams(..., "per-channel").scale
    """
    keep = "keep s_in and s_w as the exercise cell sets them"
    s_in = as_number("s_in", s_in, hint=keep)
    s_w = as_array("s_w", s_w, hint=keep)
    if s_w.ndim != 1 or s_w.size < 2:
        failed(f"s_w should be the conv's per-channel weight scales (one per output channel), got {_show(s_w if s_w.ndim else float(s_w))}",
               'keep s_w as the exercise cell sets it: og.weight_qparams(..., "per-channel").scale')
    if s_in <= 0 or (s_w <= 0).any():
        failed("scales are positive: s_in and s_w should be the exercise's scales", keep)
    truth = s_in * s_w
    got = as_array("S_bias", s_bias, shape=truth.shape,
                   hint=f"one scale per output channel ({truth.size}), like the weights' scales")
    if np.allclose(got, truth, rtol=1e-6):
        passed("the accumulator holds Σ q_in·q_w in units of S_in·S_w, so the bias must use the same unit.")
        return
    for wrong, msg in ((s_w, "that is the weights' scale alone"),
                       (np.full_like(s_w, s_in), "that is the input's scale alone"),
                       (s_w / s_in, "divide? the accumulator's unit is the product S_in * S_w"),
                       (s_in + s_w, "add? the accumulator's unit is the product S_in * S_w")):
        if np.allclose(got, wrong, rtol=1e-6):
            failed(msg, "the accumulator counts in steps of S_in * S_w (one value per output channel)")
    expect_close("S_bias", got, truth, rtol=1e-6,
                 hint="the accumulator counts in steps of S_in * S_w (one value per output channel)")


#: Exercise 4: a 1x1 conv's float weights (2 output, 3 input channels), the same weights rounded to
#: nearest on a grid of step 0.25, the mean of its input channels over images and pixels, its bias.
NB09_W = ((0.26, -0.74, 0.12), (0.55, 0.1, -0.33))
NB09_WQ = ((0.25, -0.75, 0.0), (0.5, 0.0, -0.25))
NB09_XMEAN = (1.0, 0.5, 2.0)
NB09_B = (0.1, -0.2)


def check_conv_bias_correction(b_corrected, W=NB09_W, W_q=NB09_WQ, x_mean=NB09_XMEAN, b=NB09_B) -> None:
    """Exercise 4: empirical bias correction of one conv, ``b_corrected = b - (W_q - W) @ x_mean``
    (``qlib.bias_correction.analytic_output_shift`` with the measured input mean, then
    ``correct_bias``). Judged on the exercise's arrays :data:`NB09_W`, :data:`NB09_WQ`,
    :data:`NB09_XMEAN`, :data:`NB09_B`: a cell that changes them is refused.

    >>> check_conv_bias_correction([0.355, -0.26])
    ✅ Correct! each channel's mean moved by (W_q − W)·E[x]; subtracting it from the bias puts the mean back.
    >>> try:
    ...     check_conv_bias_correction([-0.155, -0.14])
    ... except AssertionError:
    ...     pass
    ❌ Not yet: that adds the shift: the quantized conv's mean is already too high by the shift where it is positive
       Hint: b_corrected = b - shift, shift = (W_q - W) @ x_mean
    """
    hint = "do not change W, W_q, x_mean and b: run the exercise cell as given, with only b_corrected computed by you"
    given = [as_array(name, v, hint=hint) for name, v in (("W", W), ("W_q", W_q), ("x_mean", x_mean), ("b", b))]
    for g, want in zip(given, (NB09_W, NB09_WQ, NB09_XMEAN, NB09_B)):
        if g.shape != np.shape(want) or not np.array_equal(g, np.asarray(want, dtype=np.float64)):
            failed("W, W_q, x_mean and b are not the exercise's arrays anymore", hint)
    from ..bias_correction import analytic_output_shift, correct_bias

    W, W_q, x_mean, b = given
    shift = analytic_output_shift(W, W_q, x_mean)
    truth = correct_bias(b, shift)
    how = "b_corrected = b - shift, shift = (W_q - W) @ x_mean"
    got = as_array("b_corrected", b_corrected, shape=truth.shape, hint="one bias per output channel (2)")
    if np.allclose(got, truth, rtol=1e-9, atol=1e-12):
        passed("each channel's mean moved by (W_q − W)·E[x]; subtracting it from the bias puts the mean back.")
        return
    E = W_q - W
    for wrong, msg in (
            (b + shift, "that adds the shift: the quantized conv's mean is already too high by the shift where it is positive"),
            (b, "that is the bias unchanged"),
            (-shift, "the bias b itself is missing: correct it, do not replace it"),
            (b - E.sum(axis=1), "the rounding errors must be weighted by the mean input of their channel (x_mean)"),
            (b - (E @ x_mean) / E.shape[1], "the shift is a sum over the input channels, not a mean"),
            (b - W_q @ x_mean, "W_q @ x_mean is the quantized conv's mean output, not its shift"),
            (b - W @ x_mean, "W @ x_mean is the float conv's mean output, not the shift"),
            (b - np.abs(E) @ x_mean, "keep the sign of each rounding error: errors of opposite sign cancel")):
        if np.allclose(got, wrong, rtol=1e-9, atol=1e-12):
            failed(msg, how)
    expect_close("b_corrected", got, truth, rtol=1e-9, atol=1e-12, hint=how)
