"""Error metrics: how far the quantized values are from the real ones."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_choice
from .linear import QParams, ROUNDING_MODES, _ROUNDERS, fake_quantize

__all__ = ["mse", "max_abs_error", "sqnr_db", "mean_square", "log10_sum_square", "ErrorSplit", "error_split"]


def _pair(x, x_hat):
    x = as_float_array(x, "x").astype(np.float64)
    x_hat = as_float_array(x_hat, "x_hat").astype(np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(f"x has shape {x.shape} but x_hat has shape {x_hat.shape}")
    return x, x_hat


def _difference(x, x_hat) -> np.ndarray:
    """``x_hat - x`` in float64, refused (ValueError) when it overflows (x = 1.7e308, x_hat = -1.7e308)."""
    with np.errstate(over="ignore"):
        d = x_hat - x
    if not np.isfinite(d).all():
        raise ValueError("the error x_hat - x overflows float64 (values near +-1.8e308 of opposite sign): "
                         "rescale the data before measuring the error")
    return d


def _pow2_exponent(a: np.ndarray, axis=None, keepdims=False) -> np.ndarray:
    """An integer ``e`` with ``max|a| / 2^e`` in [0.5, 1) (0 where ``a`` is all zero): dividing by ``2^e``
    is exact and keeps squares and sums away from float64's overflow and underflow."""
    m = np.max(np.abs(a), axis=axis, keepdims=keepdims) if a.size else np.zeros(())
    return np.frexp(m)[1]


def mean_square(a, axis=None) -> np.ndarray:
    """``mean(a^2)`` without overflow or underflow in the squares: ``a`` is first divided by a power
    of two (exact), the result multiplied back. Refuses (ValueError) a mean that float64 cannot hold.

    >>> print(mean_square(np.array([1e150, -1e150])), mean_square(np.array([3.0, 4.0])))
    1e+300 12.5
    """
    a = np.asarray(a, dtype=np.float64)
    e = _pow2_exponent(a, axis=axis, keepdims=True)
    m = np.mean(np.ldexp(a, -e) ** 2, axis=axis)
    e = e.reshape(np.shape(m)) if axis is not None else e.reshape(())
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(m, 2 * e)
    if not np.isfinite(out).all():
        raise ValueError("the mean squared error exceeds float64's range (about 1.8e308): the errors are "
                         "larger than 1.3e154; rescale the data before measuring the error")
    return out


def _sum_square(a) -> float:
    """``sum(a^2)`` like :func:`mean_square` (same bits as ``(a**2).sum()`` when that does not overflow)."""
    a = np.asarray(a, dtype=np.float64)
    e = int(_pow2_exponent(a))
    with np.errstate(over="ignore", under="ignore"):
        out = float(np.ldexp(np.sum(np.ldexp(a, -e) ** 2), 2 * e))
    if not np.isfinite(out):
        raise ValueError("the squared error exceeds float64's range (about 1.8e308): rescale the data first")
    return out


def log10_sum_square(a, axis=None) -> np.ndarray:
    """``log10(sum a^2)`` computed without overflow or underflow (``-inf`` where ``a`` is all zero).

    >>> print(f"{float(log10_sum_square(np.array([1e200, 1e200]))):.4f}", float(log10_sum_square(np.zeros(2))))
    400.3010 -inf
    """
    a = np.asarray(a, dtype=np.float64)
    e = _pow2_exponent(a, axis=axis, keepdims=True)
    ssum = np.sum(np.ldexp(a, -e) ** 2, axis=axis)
    e = e.reshape(np.shape(ssum)) if axis is not None else e.reshape(())
    with np.errstate(divide="ignore"):
        return np.log10(ssum) + 2 * e * np.log10(2.0)


def mse(x, x_hat) -> float:
    """Mean squared error ``mean((x_hat - x)^2)``.

    Computed without overflow in the squares; an MSE beyond float64's range is refused.

    >>> mse([1.0, 2.0], [1.5, 2.0])
    0.125
    """
    x, x_hat = _pair(x, x_hat)
    return float(mean_square(_difference(x, x_hat)))


def max_abs_error(x, x_hat) -> float:
    """Largest absolute error ``max|x_hat - x|``.

    >>> max_abs_error([1.0, 2.0], [1.5, 2.0])
    0.5
    """
    x, x_hat = _pair(x, x_hat)
    return float(np.max(np.abs(_difference(x, x_hat))))


def sqnr_db(x, x_hat) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum x^2 / sum (x_hat - x)^2)`` in dB.

    Each extra bit halves the step, quarters the noise power: about +6.02 dB per bit.
    Returns ``inf`` when there is no error at all (``-inf`` for an all-zero signal with
    error). Both sums are taken in the log domain, so values near 1e200 or 1e-200 give the
    right ratio instead of inf/inf = NaN or 0/0.

    >>> print(f"{sqnr_db([1.0, -1.0], [1.1, -0.9]):.2f} dB")
    20.00 dB
    >>> print(f"{sqnr_db([1e-300, -1e-300], [1.1e-300, -0.9e-300]):.2f} dB")
    20.00 dB
    """
    x, x_hat = _pair(x, x_hat)
    d = _difference(x, x_hat)
    if not d.any():
        return float("inf")
    if not x.any():
        return float("-inf")
    with np.errstate(over="ignore", under="ignore"):
        signal, noise = float(np.sum(x**2)), float(np.sum(d**2))
    if 0.0 < noise and np.isfinite(signal) and np.isfinite(signal / noise) and signal / noise > 0.0:
        return float(10.0 * np.log10(signal / noise))  # the plain formula whenever it is exact enough
    return float(10.0 * (log10_sum_square(x) - log10_sum_square(d)))


class ErrorSplit(NamedTuple):
    """MSE split by where the error comes from; ``rounding_mse + clipping_mse == total_mse``."""

    total_mse: float
    rounding_mse: float  # contribution of values whose code landed inside [qmin, qmax]
    clipping_mse: float  # contribution of values whose code had to be clamped
    n_clipped: int


def error_split(x, qp: QParams, rounding: str = "half_even") -> ErrorSplit:
    """Split the quantization MSE into rounding error and clipping error.

    A value is *clipped* when its unclamped code ``round(x / S) + Z`` lies outside
    ``[qmin, qmax]``; its whole error counts as clipping error. Every other value only
    suffers rounding, at most ``S / 2``. Both parts are contributions to the mean over
    all values, so they add up to the total MSE.

    >>> from qlib.linear import QParams
    >>> qp = QParams(scale=1.0, zero_point=0, qmin=-2, qmax=1, bits=2)
    >>> error_split([0.25, 5.0], qp)
    ErrorSplit(total_mse=8.03125, rounding_mse=0.03125, clipping_mse=8.0, n_clipped=1)
    """
    check_choice(rounding, "rounding", ROUNDING_MODES)
    x = as_float_array(x)
    x_hat = fake_quantize(x, qp, rounding)
    xv, s, z, _ = qp._blocked(x.astype(np.float64))
    with np.errstate(over="ignore", invalid="ignore"):  # x / S -> inf is a clipped value: right
        code = _ROUNDERS[rounding](xv / s) + z
    clipped = ((code < qp.qmin) | (code > qp.qmax)).reshape(x.shape)
    d = _difference(x, x_hat.astype(np.float64))
    n = d.size
    total = float(mean_square(d))
    clip = _sum_square(d[clipped]) / n
    rnd = _sum_square(d[~clipped]) / n
    return ErrorSplit(total, rnd, clip, int(clipped.sum()))
