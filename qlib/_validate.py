"""Input checks shared by every qlib function.

Each check raises ``ValueError`` with a message a learner can act on; none of
them modifies its input.
"""

from __future__ import annotations

import numbers

import numpy as np

#: Bit widths qlib accepts: 2..16 for weights and activations, 32 for biases.
ALLOWED_BITS = tuple(range(2, 17)) + (32,)


def as_float_array(x, name: str = "x", allow_empty: bool = False) -> np.ndarray:
    """Return ``x`` as a float ndarray (float32 stays float32, others become float64).

    Raises ValueError for integer/bool arrays, non-numeric input, NaN/inf and
    (unless ``allow_empty``) empty input. Never copies when not needed and never
    modifies ``x``.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind in "iub":
        if isinstance(x, np.ndarray):
            raise ValueError(
                f"{name} has integer dtype {arr.dtype}, but a float array is needed here "
                f"(did you pass quantized codes? convert with {name}.astype(np.float32) if you "
                "really mean real values)"
            )
        arr = arr.astype(np.float64)  # plain Python lists of ints like [0, 1, 2] are fine
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got complex dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: there is nothing to quantize")
    if not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite value(s); quantization needs "
            "finite numbers (look for a division by zero or an overflow upstream)"
        )
    return arr


def check_bits(bits, allowed=ALLOWED_BITS) -> int:
    """Return ``bits`` as an int, or raise ValueError when it is not an allowed width."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        if isinstance(bits, numbers.Real) and float(bits).is_integer():
            bits = int(bits)
        else:
            raise ValueError(f"bits must be a whole number, got {bits!r}")
    bits = int(bits)
    if bits not in allowed:
        raise ValueError(
            f"bits={bits} is out of range: qlib supports 2 to 16 bits for weights and "
            "activations, and 32 bits for biases"
        )
    return bits


def check_axis(axis, ndim: int, name: str = "axis") -> int:
    """Normalise ``axis`` (negative allowed) for an array with ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {axis!r}")
    axis = int(axis)
    if ndim == 0:
        raise ValueError(f"{name}={axis} makes no sense for a scalar: use axis=None (per-tensor)")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of bounds for an array with {ndim} dimension(s)")
    return axis % ndim


def check_choice(value, name: str, choices) -> str:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}")
    return value
