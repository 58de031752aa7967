"""Checkers for notebook 04 (granularity)."""

from __future__ import annotations

import numpy as np

from . import expect_close, failed, passed

__all__ = ["NB04_CANDIDATES", "NB04_BUDGET", "check_group_scales", "check_effective_bits", "check_best_config"]

#: Exercise 3: (bits, granularity, group_size) candidates for fc2's weights, and the bit budget.
NB04_CANDIDATES = (
    (4, "per-tensor", None),
    (4, "per-channel", None),
    (4, "block-wise", 64),
    (4, "block-wise", 32),
    (3, "block-wise", 16),
    (3, "block-wise", 8),
    (2, "block-wise", 8),
)
NB04_BUDGET = 4.25


def check_group_scales(scales, w, groups: int, bits: int = 4) -> None:
    """Exercise 1: symmetric scales of the seed's G channel groups, one per channel (axis 0)."""
    from ..granularity import channel_group_qparams

    w = np.asarray(w, dtype=np.float64)
    truth = channel_group_qparams(w, groups, axis=0, bits=bits, symmetric=True).scale
    got = np.asarray(scales, dtype=np.float64).ravel()
    qmax = 2 ** (bits - 1) - 1
    if got.shape == truth.shape and np.allclose(got, truth, rtol=1e-9):
        passed(f"each group of channels shares S = max|w over the group| / {qmax}.")
        return
    if got.shape == (groups,):
        failed(f"you gave {groups} scales, one per group; the QParams holds one per channel ({w.shape[0]})",
               "repeat each group's scale for every channel of the group (np.repeat)")
    if got.shape == truth.shape and np.allclose(got, np.abs(w).max(axis=1) / qmax):
        failed("these are per-channel scales: every channel got its own",
               "take max|w| over all channels of a group, then share it")
    if got.shape == truth.shape and np.allclose(got, np.abs(w).max() / qmax):
        failed("these are per-tensor scales: one max over the whole matrix", "one max per group of channels")
    expect_close("scales", got, truth, rtol=1e-9,
                 hint=f"symmetric: S = max|w over the group| / (2^(bits-1) - 1) = max / {qmax}")


def check_effective_bits(answer) -> None:
    """Exercise 2: 3-bit asymmetric weights, groups of 64, fp16 scale + 8-bit zero point per group."""
    try:
        a = float(answer)
    except (TypeError, ValueError):
        failed(f"answer should be a number of bits, got {answer!r}")
        return
    if np.isclose(a, 3.0):
        failed("3.0 forgets the storage of the scales and zero points", "add (16 + 8) / 64 bits")
    if np.isclose(a, 3 + 16 / 64):
        failed("that counts the fp16 scale but not the zero point",
               "asymmetric: every group also stores its 8-bit zero point")
    expect_close("effective bits per weight", a, 3 + 24 / 64, rtol=1e-9,
                 hint="bits + (scale_bits + zero_point_bits) / group_size")
    passed("3 + (16 + 8) / 64 = 3.375 bits per weight: the 8-bit zero points alone add 0.125 bits (4 % more).")


def check_best_config(answer, w) -> None:
    """Exercise 3: the candidate of :data:`NB04_CANDIDATES` with the smallest MSE within the budget."""
    from ..granularity import effective_bits_per_weight, weight_qparams, weights_per_scale
    from ..linear import fake_quantize

    w = np.asarray(w, dtype=np.float32)
    best, best_err = None, np.inf
    for bits, gran, gs in NB04_CANDIDATES:
        eb = effective_bits_per_weight(bits, weights_per_scale(w.shape, gran, group_size=gs))
        if eb > NB04_BUDGET:
            continue
        err = float(np.mean((fake_quantize(w, weight_qparams(w, gran, bits=bits, group_size=gs)) - w) ** 2))
        if err < best_err:
            best, best_err = (bits, gran, gs), err
    try:
        ans = tuple(answer)
    except TypeError:
        ans = None
    if ans is None or ans not in NB04_CANDIDATES:
        failed(f"answer should be one of the candidate tuples, got {answer!r}", "copy one from NB04_CANDIDATES")
    bits, gran, gs = ans
    eb = effective_bits_per_weight(bits, weights_per_scale(w.shape, gran, group_size=gs))
    if eb > NB04_BUDGET:
        failed(f"{ans} costs {eb:.3f} bits per weight, over the budget of {NB04_BUDGET}",
               "compute qlib.effective_bits_per_weight for each candidate first and drop those over budget")
    if ans != best:
        failed(f"{ans} fits the budget, but another candidate within budget has a smaller MSE",
               "compare the weight MSE of every candidate that fits")
    passed(f"{best} has the smallest weight MSE ({best_err:.3e}) at {eb:.3f} bits per weight.")
