"""Checkers for notebook 03 (symmetric vs asymmetric quantization)."""

from __future__ import annotations

import numpy as np

from . import expect_close, expect_equal, failed, passed

__all__ = ["symmetric_scale_by_hand", "relu_wasted_levels", "zero_point_extra_ops"]


def _number(name, v):
    try:
        return float(np.asarray(v, dtype=np.float64))
    except (TypeError, ValueError):
        failed(f"{name} should be a single number, got {type(v).__name__}")


def symmetric_scale_by_hand(S, q, x_min: float = -2.54, x_max: float = 1.90, value: float = 1.90) -> None:
    """Exercise 1: 8-bit symmetric (max-abs, /127) scale of ``[x_min, x_max]`` and the code of ``value``.

    Expected ``S = max(|x_min|, |x_max|) / 127`` and ``q = round(value / S)`` (Z = 0).

    >>> symmetric_scale_by_hand(0.02, 95)
    ✅ Correct! S = max|x| / 127 = 2.54 / 127 = 0.02 and q = round(1.9 / 0.02) = 95, with Z = 0.
    """
    amax = max(abs(x_min), abs(x_max))
    s_ok = amax / 127
    s = _number("S", S)
    if not np.isclose(s, s_ok, rtol=1e-4):
        hint = "symmetric: S = max(|min|, |max|) / (2^(n-1) - 1), and 2^(8-1) - 1 = 127"
        for wrong, why in (((x_max - min(x_min, 0)) / 255, "that is the min-max (asymmetric) step, (max - min) / 255"),
                           (amax / 127.5, "that is PyTorch's /127.5 rule; here use ONNX Runtime's / TFLite's /127"),
                           (amax / 128, "divide by qmax = 127, not by 128"),
                           (amax / 255, "symmetric codes are signed: only 127 steps on each side of 0"),
                           (abs(x_max) / 127, "use the larger magnitude: |min| here, not max")):
            if np.isclose(s, wrong, rtol=1e-4):
                hint = why
                break
        expect_close("S", s, s_ok, rtol=1e-4, hint=hint)
    q_ok = int(np.rint(value / s_ok))
    qv = _number("q", q)
    expect_equal("q", qv, q_ok, hint="q = round(value / S) + Z, and Z = 0 for symmetric quantization")
    passed(f"S = max|x| / 127 = {amax:g} / 127 = {s_ok:.6g} and q = round({value:g} / {s_ok:.6g}) = {q_ok}, "
           "with Z = 0.")


def relu_wasted_levels(wasted_8bit, wasted_4bit) -> None:
    """Exercise 2: codes that ReLU data (min 0, max > 0) can never use under signed symmetric quantization.

    Every negative code is unreachable: ``2^(n-1)`` of them (full range ``[-2^(n-1), 2^(n-1) - 1]``).

    >>> relu_wasted_levels(128, 8)
    ✅ Correct! All negative codes are wasted: 128 of 256 at 8 bits, 8 of 16 at 4 bits -- one bit thrown away.
    """
    for bits, got in ((8, wasted_8bit), (4, wasted_4bit)):
        g = _number(f"wasted_{bits}bit", got)
        expect_ok = 2 ** (bits - 1)
        hint = f"list the signed {bits}-bit codes: [{-expect_ok}, {expect_ok - 1}]; ReLU outputs are >= 0, so which codes never occur?"
        if g == expect_ok - 1:
            hint = f"the full range includes code {-expect_ok} too: count every negative code"
        elif g == expect_ok + 1:
            hint = "code 0 is used: it is where every ReLU zero lands (Z = 0)"
        expect_equal(f"wasted_{bits}bit", g, expect_ok, hint=hint)
    passed("All negative codes are wasted: 128 of 256 at 8 bits, 8 of 16 at 4 bits -- one bit thrown away.")


def zero_point_extra_ops(extra_ops, batch: int = 32, in_features: int = 128, out_features: int = 64) -> None:
    """Exercise 3: run-time extra operations of a layer with asymmetric weights (Z_w != 0).

    ``N*K`` adds for the input row sums plus ``N*M`` multiply-adds to apply ``-Z_w * rowsum``.

    >>> zero_point_extra_ops(6144)
    ✅ Correct! N*(K + M) = 32*(128 + 64) = 6144 extra ops per call, vs 262144 MACs of the GEMM (2.3 %).
    """
    n, k, m = batch, in_features, out_features
    ok = n * (k + m)
    g = _number("extra_ops", extra_ops)
    hint = "the term -Z_w * sum_k q_x[n,k] needs the row sums of the input (N*K adds) and one multiply-add per output (N*M)"
    if g == 0:
        hint = "Z_w multiplies the input's row sums, which change with every input: they cannot be folded into the bias"
    elif g == n * m * k:
        hint = "that is the naive count (a subtraction inside the inner loop); expand the sum instead"
    elif g in (n * k, n * m):
        hint = "you have one of the two parts: the row sums (N*K) and applying them to each output (N*M)"
    elif g == m * k + m:
        hint = "that is the weight-sum term: it belongs to Z_x and is folded into the bias offline"
    expect_equal("extra_ops", g, ok, hint=hint)
    passed(f"N*(K + M) = {n}*({k} + {m}) = {ok} extra ops per call, vs {n * m * k} MACs of the GEMM "
           f"({100 * ok / (n * m * k):.1f} %).")
