"""Checkers for notebook 03 (symmetric vs asymmetric quantization)."""

from __future__ import annotations

import numpy as np

from ..linear import integer_range, qparams_from_range, quantize, round_half_away
from . import as_array, as_number, as_whole_number, expect_close, failed, passed

__all__ = ["NB03_VALUES", "symmetric_scale_by_hand", "relu_wasted_levels", "zero_point_extra_ops"]

#: Exercise 1's weights to encode. Their codes x / S = 63.7, -47.7 and 2.5 tell round-half-to-even
#: apart from int()/trunc (63, -47), floor (63, -48), ceil (64, -47) and half-away-from-zero (3).
NB03_VALUES = (1.274, -0.954, 0.05)


def symmetric_scale_by_hand(S, q, x_min: float = -2.54, x_max: float = 1.90, values=NB03_VALUES) -> None:
    """Exercise 1: 8-bit symmetric (max-abs, /127) scale of ``[x_min, x_max]`` and the codes of ``values``,
    both as ``qlib.qparams_from_range(x_min, x_max, symmetric=True)`` and ``qlib.quantize`` give them:
    ``S = max(|x_min|, |x_max|) / 127`` (to 1e-6) and ``q = round(v / S)`` exactly (Z = 0, ties to even).

    >>> symmetric_scale_by_hand(0.02, [64, -48, 2])
    ✅ Correct! S = max|x| / 127 = 2.54 / 127 = 0.02; q = 64, -48, 2 (2.5 is a tie: it goes to the even code 2), with Z = 0.
    >>> try:
    ...     symmetric_scale_by_hand(0.02, [63, -47, 2])
    ... except AssertionError:
    ...     pass
    ❌ Not yet: q = [63, -47, 2]: 1.274 / S = 63.7 gives 64, not 63
       Hint: int() cuts the fraction off (towards 0): round to the nearest code instead
    """
    qp = qparams_from_range(x_min, x_max, bits=8, symmetric=True)
    amax = max(abs(x_min), abs(x_max))
    s = as_number("S", S)
    if not np.isclose(s, qp.scale, rtol=1e-6):
        hint = "symmetric: S = max(|min|, |max|) / (2^(n-1) - 1), and 2^(8-1) - 1 = 127"
        for wrong, why in (((max(x_max, 0) - min(x_min, 0)) / 255, "that is the min-max (asymmetric) step, (max - min) / 255"),
                           (amax / 127.5, "that is PyTorch's /127.5 rule; here use ONNX Runtime's / TFLite's /127"),
                           (amax / 128, "divide by qmax = 127, not by 128"),
                           (amax / 255, "symmetric codes are signed: only 127 steps on each side of 0"),
                           (min(abs(x_min), abs(x_max)) / 127, "use the larger magnitude, max(|min|, |max|)")):
            if np.isclose(s, wrong, rtol=1e-6):
                hint = why
                break
        expect_close("S", s, qp.scale, rtol=1e-6, hint=hint)
    v = np.asarray(values, dtype=np.float64)
    want = quantize(v, qp).astype(np.float64)
    got = as_array("q", q, shape=want.shape, hint=f"one code per weight: a list of {want.size} whole numbers")
    shown = "[" + ", ".join(f"{g:.6g}" for g in got) + "]"
    for i in np.flatnonzero(got != want):
        r = v[i] / qp.scale
        hint = "q = round(v / S) + Z, with Z = 0 for symmetric quantization"
        rules = ((np.trunc, "int() cuts the fraction off (towards 0): round to the nearest code instead"),
                 (np.floor, "floor rounds down (-47.7 -> -48 is right, but 63.7 -> 63 is not): round to nearest"),
                 (np.ceil, "ceil rounds up: round to the nearest code"),
                 (round_half_away, "a tie (x.5) goes to the even code, as np.rint and Python's round do"),
                 (lambda a: -np.rint(a), "the sign is flipped: Z = 0, so a negative weight has a negative code"))
        # name the rule that explains every code if there is one, else the first that explains this code
        r_all = v / qp.scale
        whole = [why for rule, why in rules if np.array_equal(got, rule(r_all))]
        here = [why for rule, why in rules if got[i] == rule(r)]
        if whole or here:
            hint = (whole or here)[0]
        failed(f"q = {shown}: {v[i]:g} / S = {r:.4g} gives {want[i]:.0f}, not {got[i]:.6g}", hint)
    codes = ", ".join(f"{w:.0f}" for w in want)
    passed(f"S = max|x| / 127 = {amax:g} / 127 = {qp.scale:.6g}; q = {codes} (2.5 is a tie: it goes to the even "
           "code 2), with Z = 0.")


def relu_wasted_levels(wasted_8bit, wasted_4bit) -> None:
    """Exercise 2: codes that ReLU data (min 0, max > 0) can never use under signed symmetric quantization:
    every negative code of ``qlib.integer_range(bits, signed=True)``, i.e. ``-qmin = 2^(n-1)`` of them.

    >>> relu_wasted_levels(128, 8)
    ✅ Correct! All negative codes are wasted: 128 of 256 at 8 bits, 8 of 16 at 4 bits -- one bit thrown away.
    """
    for bits, got in ((8, wasted_8bit), (4, wasted_4bit)):
        qmin, qmax = integer_range(bits, signed=True)
        expect_ok = -qmin
        hint = f"list the signed {bits}-bit codes: [{qmin}, {qmax}]; ReLU outputs are >= 0, so which codes never occur?"
        g = as_whole_number(f"wasted_{bits}bit", got, hint)
        if g == expect_ok - 1:
            hint = f"the full range includes code {qmin} too: count every negative code"
        elif g == expect_ok + 1:
            hint = "code 0 is used: it is where every ReLU zero lands (Z = 0)"
        elif g == 2 * expect_ok:
            hint = "that is all the codes; ReLU still uses 0 and the positive ones"
        if g != expect_ok:
            failed(f"wasted_{bits}bit = {g}, expected something else", hint)
    passed("All negative codes are wasted: 128 of 256 at 8 bits, 8 of 16 at 4 bits -- one bit thrown away.")


def _zero_point_extra_ops(n: int, k: int, m: int) -> int:
    """Extra run-time ops of ``Y = (X_q)(W_q - Z_w)^T`` over the plain GEMM, counted from the expansion
    ``sum_k x[n,k] (w[m,k] - Z_w) = sum_k x w - Z_w * rowsum(x)[n]``: the row sums (``k - 1`` adds per
    row, counted as ``k``: one accumulate per element) and one multiply-add per output.

    >>> _zero_point_extra_ops(32, 128, 64)
    6144
    """
    rowsum_ops = n * k          # accumulate every input element once per row
    apply_ops = n * m           # one multiply-add -Z_w * rowsum per output
    return rowsum_ops + apply_ops


def zero_point_extra_ops(extra_ops, batch: int = 32, in_features: int = 128, out_features: int = 64) -> None:
    """Exercise 3: run-time extra operations of a layer with asymmetric weights (Z_w != 0):
    ``N*K`` adds for the input row sums plus ``N*M`` multiply-adds to apply ``-Z_w * rowsum``. Exact.

    >>> zero_point_extra_ops(6144)
    ✅ Correct! N*(K + M) = 32*(128 + 64) = 6144 extra ops per call, vs 262144 MACs of the GEMM (2.3 %).
    """
    n, k, m = batch, in_features, out_features
    ok = _zero_point_extra_ops(n, k, m)
    hint = "the term -Z_w * sum_k q_x[n,k] needs the row sums of the input (N*K adds) and one multiply-add per output (N*M)"
    g = as_whole_number("extra_ops", extra_ops, hint)
    if g == 0:
        hint = "Z_w multiplies the input's row sums, which change with every input: they cannot be folded into the bias"
    elif g == n * m * k:
        hint = "that is the naive count (a subtraction inside the inner loop); expand the sum instead"
    elif g in (n * k, n * m):
        hint = "you have one of the two parts: the row sums (N*K) and applying them to each output (N*M)"
    elif g in (m * k + m, m * k):
        hint = "that is the weight-sum term: it belongs to Z_x and is folded into the bias offline"
    elif g == n * (k - 1) + n * m:
        hint = "count the row sum as K accumulates per row (one per element), as the course does"
    if g != ok:
        failed(f"extra_ops = {g}, expected something else", hint)
    passed(f"N*(K + M) = {n}*({k} + {m}) = {ok} extra ops per call, vs {n * m * k} MACs of the GEMM "
           f"({100 * ok / (n * m * k):.1f} %).")
