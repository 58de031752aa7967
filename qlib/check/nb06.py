"""Checkers for notebook 06 (post-training quantization and calibration)."""

from __future__ import annotations

import numbers

import numpy as np

from . import _show, as_array, as_number, call_learner, expect_name, failed, passed

__all__ = ["ema_minmax_function", "kl_levels_by_hand", "outlier_winner", "bias_correction_function"]


def _outlier_batches(seed: int = 0):
    """Signed batches whose minima differ from batch to batch (shifted Gaussians), one batch
    with an outlier max (25) and one with a very negative min, plus a legal all-zero batch."""
    rng = np.random.default_rng(seed)
    shifts = rng.uniform(-1.5, 0.5, 12)
    batches = [(rng.normal(size=(int(n), 8)) + s).astype(np.float32)
               for n, s in zip(rng.integers(5, 40, 12), shifts)]
    batches[6] = batches[6].copy()
    batches[6][0, 0] = 25.0     # one outlier batch (max)
    batches[9] = batches[9].copy()
    batches[9][1, 2] = -12.0    # one outlier batch (min)
    batches.insert(3, np.zeros((3, 8), np.float32))  # an all-zero batch is legal
    return batches


def _ema_hint(lo, hi, batches, c, ref_lo, ref_hi):
    """The most likely mistake behind a wrong ``(lo, hi)``."""
    mins = [float(b.min()) for b in batches]
    maxs = [float(b.max()) for b in batches]

    def ema(vals, init):
        r = init
        for v in vals[1:]:
            r += c * (v - r)
        return r

    near = lambda a, b: np.isclose(a, b, rtol=1e-6, atol=1e-9)  # noqa: E731
    if near(hi, max(maxs)) or near(lo, min(mins)):
        return "that is the running (plain) min/max; the EMA moves only a fraction c towards each batch's value"
    if near(hi, np.mean(maxs)) or near(lo, np.mean(mins)):
        return "that is the plain average of the batch values; the EMA weights them by c, the first batch initialises"
    if near(hi, ref_hi) and not near(lo, ref_lo):
        if near(lo, 0.0) or near(lo, mins[0]):
            return "the min is not tracked: update it like the max, lo += c * (batch_min - lo)"
        return "max is right, min is not: update the min with each batch's min, lo += c * (batch_min - lo)"
    if near(hi, ema(maxs, 0.0)) or near(lo, ema(mins, 0.0)):
        return "start from the first batch's min and max, not from 0"
    if near(hi, maxs[0] + sum(c * (v - maxs[0]) for v in maxs[1:])):
        return "each step moves from the *running* value, not from the first batch's value"
    if near(hi, ema(maxs, maxs[0]) if len(maxs) < 2 else maxs[0] + c * (maxs[1] - maxs[0])):
        return "every later batch must update the running value, not only the second one"
    return "start from the first batch's min and max, then x_run += c * (batch_x - x_run) for each later batch"


def ema_minmax_function(fn, averaging_constant: float = 0.01) -> None:
    """Exercise 1: ``fn(batches, c)`` must return the ``(min, max)`` of an EMA min-max observer:
    the first batch sets them, each later batch moves them by ``c * (batch value - running value)``.
    The test batches are signed and their minima vary, so the min is checked as hard as the max.

    >>> from qlib.observers import MovingAverageMinMaxObserver as M
    >>> def ema(batches, c):
    ...     o = M(averaging_constant=c)
    ...     for b in batches:
    ...         o.observe(b)
    ...     return o.range()
    >>> ema_minmax_function(ema)
    ✅ Correct! The outlier batch moved max by only 1 % of its excess; running min-max would jump to 25.
    """
    from ..observers import MovingAverageMinMaxObserver

    batches = _outlier_batches()
    ref = MovingAverageMinMaxObserver(averaging_constant=averaging_constant)
    for b in batches:
        ref.observe(b)
    lo_ok, hi_ok = ref.range()
    got = call_learner(fn, [b.copy() for b in batches], averaging_constant, expected_args="batches, c")
    if isinstance(got, (str, bytes, dict, set)) or not hasattr(got, "__len__") or len(got) != 2:
        failed(f"your function returned {_show(got)}; it should return two numbers, (min, max)",
               "end with: return lo, hi")
    lo = as_number("the min you returned", got[0])
    hi = as_number("the max you returned", got[1])
    if lo > hi:
        failed(f"you returned min = {lo:.6g} > max = {hi:.6g}", "return (min, max) in this order")
    if not (np.isclose(hi, hi_ok, rtol=1e-6) and np.isclose(lo, lo_ok, rtol=1e-6, atol=1e-12)):
        which = "max" if not np.isclose(hi, hi_ok, rtol=1e-6) else "min"
        failed(f"the {which} is off: you returned ({lo:.6g}, {hi:.6g})",
               _ema_hint(lo, hi, batches, averaging_constant, lo_ok, hi_ok))
    passed("The outlier batch moved max by only 1 % of its excess; running min-max would jump to 25.")


def _whole(name: str, got) -> int:
    """An integer answer: ints (or floats with no fractional part, like 8.0); 8.9, "8", True, None refused."""
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (numbers.Real, np.ndarray)):
        failed(f"{name} should be a whole number (a count of levels), got {_show(got)}")
    v = as_number(name, got)
    if v != np.floor(v):
        failed(f"{name} = {_show(got)} is not a whole number: a count of levels is an integer")
    return int(v)


def kl_levels_by_hand(nq_signed, nq_unsigned, bits: int = 4) -> None:
    """Exercise 2: how many levels ``nq`` does the KL method merge into at ``bits`` bits?

    >>> kl_levels_by_hand(8, 16)
    ✅ Correct! Signed 4-bit codes put 2^3 = 8 levels on [0, T]; unsigned codes put all 2^4 = 16 there.
    """
    s = _whole("nq for signed data", nq_signed)
    u = _whole("nq for unsigned (post-ReLU) data", nq_unsigned)
    if (s, u) == (2**bits, 2 ** (bits - 1)):
        failed(f"you swapped them: ({s}, {u})", "which codes spend half of their levels on negative values?")
    if s != 2 ** (bits - 1):
        hint = "signed codes spend half their 2^bits levels on negative values"
        if s in (2 ** (bits - 1) - 1, 2**bits - 1):
            hint = "count levels, not the largest code: 2^(bits-1) levels, not 2^(bits-1) - 1"
        failed(f"nq for signed data = {s}", hint)
    if u != 2**bits:
        hint = "unsigned codes spend all 2^bits levels on [0, T]"
        if u == 2**bits - 1:
            hint = "count levels, not the largest code (2^bits - 1): there are 2^bits of them"
        failed(f"nq for unsigned (post-ReLU) data = {u}", hint)
    passed(f"Signed {bits}-bit codes put 2^{bits - 1} = {2 ** (bits - 1)} levels on [0, T]; "
           f"unsigned codes put all 2^{bits} = {2 ** bits} there.")


def outlier_winner(answer: str, bits: int = 4) -> None:
    """Exercise 3: on ReLU data with one huge outlier, which calibrator gives the smaller
    quantization MSE at ``bits`` bits, ``"minmax"`` or ``"percentile"`` (99.99)?
    Equivalent spellings ("Percentile", "min-max", "MinMax") are accepted.

    >>> outlier_winner("Percentile")
    ✅ Correct! min-max stretches the grid to the outlier: MSE 0.431 vs 0.0342 with the 99.99th percentile.
    """
    from ..linear import fake_quantize
    from ..metrics import mse
    from ..observers import MinMaxObserver, PercentileObserver

    answer = expect_name("answer", answer, ("minmax", "percentile"),
                         hint='write answer = "minmax" or answer = "percentile" (with the quotes)')
    rng = np.random.default_rng(6)
    x = np.maximum(rng.normal(size=100_000), 0)
    x[123] = 60.0
    errs = {}
    for name, obs in (("minmax", MinMaxObserver(bits=bits)), ("percentile", PercentileObserver(bits=bits))):
        obs.observe(x)
        errs[name] = mse(x, fake_quantize(x, obs.qparams()))
    winner = min(errs, key=errs.get)
    if answer != winner:
        failed(f"{answer} loses here: MSE {errs[answer]:.3g} vs {errs[winner]:.3g}",
               "with one value at 60, how large is min-max's step at 4 bits, and how many values lie near 0..3?")
    passed(f"min-max stretches the grid to the outlier: MSE {errs['minmax']:.3g} vs {errs['percentile']:.3g} "
           "with the 99.99th percentile.")


def _bias_layer(seed: int = 15):
    """A 5 x 7 layer (out != in != n, so a wrong axis shows), its 2-bit per-channel RTN weights,
    a bias, and 40 post-ReLU inputs with a clearly non-zero mean."""
    from ..linear import fake_quantize, qparams_from_tensor

    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.5, size=(5, 7))
    W_q = fake_quantize(W, qparams_from_tensor(W, bits=2, symmetric=True, axis=0))
    b = rng.normal(0.0, 0.1, size=5)
    x = np.maximum(rng.normal(0.5, 1.0, size=(40, 7)), 0.0)
    return W, W_q, b, x


def _bias_hint(got, W, W_q, b, x, shift):
    near = lambda a: np.shape(a) == got.shape and np.allclose(got, a, rtol=1e-6, atol=1e-9)  # noqa: E731
    if near(b + shift):
        return "wrong sign: the quantized layer's outputs are higher by the shift, so subtract it from b"
    if near(shift) or near(-shift):
        return "return the corrected bias, b - shift, not the shift itself"
    if near(b - (W_q - W) @ x.sum(axis=0)):
        return "average over the samples (mean), not the sum"
    if near(b - (x @ W_q.T).mean(axis=0)):
        return "the shift is mean(x @ W_q.T) - mean(x @ W.T): subtract the float layer's mean output too"
    if near(b - np.abs(W_q - W) @ x.mean(axis=0)):
        return "keep the sign of the rounding errors: errors up and down partly cancel"
    if near(b - np.full_like(b, shift.mean())):
        return "one shift per output channel: do not average over the channels"
    return "shift = mean over the samples (axis 0) of x @ W_q.T - x @ W.T; return b - shift"


def bias_correction_function(fn) -> None:
    """Exercise 4: ``fn(W, W_q, b, x)`` must return the empirically corrected bias
    ``b - shift``, ``shift = mean_n(x @ W_q.T) - mean_n(x @ W.T)`` (one value per output channel),
    without modifying its inputs.

    >>> from qlib.bias_correction import correct_bias, empirical_output_shift
    >>> bias_correction_function(lambda W, W_q, b, x: correct_bias(b, empirical_output_shift(W, W_q, x)))
    ✅ Correct! Shifts of up to 0.45 per channel undone; the corrected layer's mean output equals the float one.
    """
    from ..bias_correction import correct_bias, empirical_output_shift

    W, W_q, b, x = _bias_layer()
    shift = empirical_output_shift(W, W_q, x)
    ref = correct_bias(b, shift)
    args = [a.copy() for a in (W, W_q, b, x)]
    got = call_learner(fn, *args, expected_args="W, W_q, b, x")
    if any(not np.array_equal(a, o) for a, o in zip(args, (W, W_q, b, x))):
        failed("your function changed its inputs (W, W_q, b or x)", "compute a new array: return b - shift")
    got = as_array("the corrected bias", got, hint="return one number per output channel, shape (5,)")
    if got.shape != ref.shape:
        failed(f"the corrected bias has shape {got.shape}, expected {ref.shape} (one per output channel)",
               "average over the samples, axis 0: x @ W.T has shape (n_samples, out)")
    if not np.allclose(got, ref, rtol=1e-6, atol=1e-9):
        failed(f"corrected bias = {_show(got)}", _bias_hint(got, W, W_q, b, x, shift))
    passed(f"Shifts of up to {np.abs(shift).max():.2f} per channel undone; the corrected layer's mean output "
           "equals the float one.")
