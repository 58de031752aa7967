"""Error metrics: how far the quantized values are from the real ones."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_choice
from .linear import QParams, ROUNDING_MODES, _ROUNDERS, fake_quantize

__all__ = ["mse", "max_abs_error", "sqnr_db", "ErrorSplit", "error_split"]


def _pair(x, x_hat):
    x = as_float_array(x, "x").astype(np.float64)
    x_hat = as_float_array(x_hat, "x_hat").astype(np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(f"x has shape {x.shape} but x_hat has shape {x_hat.shape}")
    return x, x_hat


def mse(x, x_hat) -> float:
    """Mean squared error ``mean((x_hat - x)^2)``.

    >>> mse([1.0, 2.0], [1.5, 2.0])
    0.125
    """
    x, x_hat = _pair(x, x_hat)
    return float(np.mean((x_hat - x) ** 2))


def max_abs_error(x, x_hat) -> float:
    """Largest absolute error ``max|x_hat - x|``.

    >>> max_abs_error([1.0, 2.0], [1.5, 2.0])
    0.5
    """
    x, x_hat = _pair(x, x_hat)
    return float(np.max(np.abs(x_hat - x)))


def sqnr_db(x, x_hat) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum x^2 / sum (x_hat - x)^2)`` in dB.

    Each extra bit halves the step, quarters the noise power: about +6.02 dB per bit.
    Returns ``inf`` when there is no error at all.

    >>> print(f"{sqnr_db([1.0, -1.0], [1.1, -0.9]):.2f} dB")
    20.00 dB
    """
    x, x_hat = _pair(x, x_hat)
    noise = float(np.sum((x_hat - x) ** 2))
    signal = float(np.sum(x**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * np.log10(signal / noise)


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
    code = _ROUNDERS[rounding](xv / s) + z
    clipped = ((code < qp.qmin) | (code > qp.qmax)).reshape(x.shape)
    err2 = (x_hat.astype(np.float64) - x) ** 2
    n = err2.size
    clip = float(err2[clipped].sum() / n)
    rnd = float(err2[~clipped].sum() / n)
    return ErrorSplit(float(err2.mean()), rnd, clip, int(clipped.sum()))
