"""Checkers for notebook 06 (post-training quantization and calibration)."""

from __future__ import annotations

import numpy as np

from . import expect_close, expect_equal, failed, passed

__all__ = ["ema_minmax_function", "kl_levels_by_hand", "outlier_winner"]


def _outlier_batches(seed: int = 0):
    rng = np.random.default_rng(seed)
    batches = [np.maximum(rng.normal(size=(int(n), 8)), 0).astype(np.float32) for n in rng.integers(5, 40, 12)]
    batches[6] = batches[6].copy()
    batches[6][0, 0] = 25.0  # one outlier batch
    batches.insert(3, np.zeros((3, 8), np.float32))  # an all-zero batch is legal
    return batches


def ema_minmax_function(fn, averaging_constant: float = 0.01) -> None:
    """Exercise 1: ``fn(batches, c)`` must return the ``(min, max)`` of an EMA min-max observer:
    the first batch sets them, each later batch moves them by ``c * (batch value - running value)``.

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
    try:
        got = fn([b.copy() for b in batches], averaging_constant)
        lo, hi = (float(v) for v in got)
    except Exception as exc:  # noqa: BLE001 - show the learner what went wrong
        failed(f"your function raised {type(exc).__name__}: {exc}",
               "it takes (batches, c) and returns (min, max) as two numbers")
        return
    hint = "start from the first batch's min and max, then x_run += c * (batch_x - x_run) for each later batch"
    if np.isclose(hi, max(float(b.max()) for b in batches)):
        hint = "that is the running (plain) max; the EMA moves only a fraction c towards each batch's max"
    elif np.isclose(hi, np.mean([float(b.max()) for b in batches])):
        hint = "that is the plain average of the batch maxima; the EMA weights recent batches by c"
    expect_close("max", hi, hi_ok, rtol=1e-6, hint=hint)
    expect_close("min", lo, lo_ok, rtol=1e-6, atol=1e-12, hint=hint)
    passed("The outlier batch moved max by only 1 % of its excess; running min-max would jump to 25.")


def kl_levels_by_hand(nq_signed, nq_unsigned, bits: int = 4) -> None:
    """Exercise 2: how many levels ``nq`` does the KL method merge into at ``bits`` bits?

    >>> kl_levels_by_hand(8, 16)
    ✅ Correct! Signed 4-bit codes put 2^3 = 8 levels on [0, T]; unsigned codes put all 2^4 = 16 there.
    """
    expect_equal("nq for signed data", int(nq_signed), 2 ** (bits - 1),
                 hint="signed codes spend half their 2^bits levels on negative values")
    expect_equal("nq for unsigned (post-ReLU) data", int(nq_unsigned), 2**bits,
                 hint="unsigned codes spend all 2^bits levels on [0, T]")
    passed(f"Signed {bits}-bit codes put 2^{bits - 1} = {2 ** (bits - 1)} levels on [0, T]; "
           f"unsigned codes put all 2^{bits} = {2 ** bits} there.")


def outlier_winner(answer: str, bits: int = 4) -> None:
    """Exercise 3: on ReLU data with one huge outlier, which calibrator gives the smaller
    quantization MSE at ``bits`` bits, ``"minmax"`` or ``"percentile"`` (99.99)?

    >>> outlier_winner("percentile")
    ✅ Correct! min-max stretches the grid to the outlier: MSE 0.431 vs 0.0342 with the 99.99th percentile.
    """
    from ..linear import fake_quantize
    from ..metrics import mse
    from ..observers import MinMaxObserver, PercentileObserver

    if answer not in ("minmax", "percentile"):
        failed(f"answer {answer!r} should be the string 'minmax' or 'percentile'")
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
