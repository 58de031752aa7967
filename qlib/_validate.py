"""Input checks shared by every qlib function.

Each check raises ``ValueError`` with a message a learner can act on; none of
them modifies its input.
"""

from __future__ import annotations

import numbers

import numpy as np

#: Bit widths qlib accepts: 2..16 for weights and activations, 32 for biases.
ALLOWED_BITS = tuple(range(2, 17)) + (32,)


def as_float_array(x, name: str = "x", allow_empty: bool = False, check_finite: bool = True) -> np.ndarray:
    """Return ``x`` as a float ndarray (float32 stays float32, others become float64).

    Raises ValueError for integer arrays, bool input (arrays, lists or scalars: True/False
    are not real values), datetime/timedelta input, non-numeric input, NaN/inf and
    (unless ``allow_empty``) empty input. Never copies when not needed and never
    modifies ``x``.

    >>> as_float_array([1, 2]).dtype, as_float_array(np.float16([1.5])).dtype
    (dtype('float64'), dtype('float64'))
    >>> as_float_array([True, False])
    Traceback (most recent call last):
    ...
    ValueError: x holds booleans (True/False), not real numbers: convert them on purpose, e.g. x.astype(np.float64)
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
    if arr.dtype.kind in "mM":
        raise ValueError(
            f"{name} holds dates or time spans (dtype {arr.dtype}), not real numbers: convert them "
            "to a number of seconds (or days) first"
        )
    if arr.dtype.kind == "b":
        raise ValueError(
            f"{name} holds booleans (True/False), not real numbers: convert them on purpose, "
            f"e.g. {name}.astype(np.float64)"
        )
    if arr.dtype.kind in "iu":
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
    if check_finite and not np.isfinite(arr).all():
        refuse_non_finite(arr, name)
    return arr


def refuse_non_finite(arr: np.ndarray, name: str = "x") -> None:
    """Raise the ValueError for NaN/inf in ``arr`` (``as_float_array``'s message); no-op when all finite.
    Fast paths that check finiteness block by block call it with the whole array on a hit."""
    if not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite value(s); quantization needs "
            "finite numbers (look for a division by zero or an overflow upstream)"
        )


def float_dtype_of(x) -> np.dtype:
    """The float dtype a result computed from ``x`` should have: ``x``'s own dtype when it is a
    numpy float (float16, float32, float64, longdouble), float64 otherwise (lists, Python numbers).

    >>> float_dtype_of(np.float16([1.0])), float_dtype_of(np.float32(2.0)), float_dtype_of([1, 2])
    (dtype('float16'), dtype('float32'), dtype('float64'))
    """
    dt = getattr(x, "dtype", None)
    if isinstance(dt, np.dtype) and dt.kind == "f":
        return dt
    return np.dtype(np.float64)


def check_flag(value, name: str, allow_none: bool = False):
    """Return ``value`` as a Python bool; only True/False (or numpy's bool_) are accepted.

    ``"yes"``, ``"no"``, ``1.5`` or ``1`` are refused: ``bool("no")`` is True, so guessing
    would silently pick the wrong setting. ``allow_none`` also lets ``None`` through.

    >>> check_flag(np.bool_(True), "symmetric"), check_flag(None, "signed", allow_none=True)
    (True, None)
    >>> check_flag("no", "signed")
    Traceback (most recent call last):
    ...
    ValueError: signed must be True or False, got 'no'
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False{', or None' if allow_none else ''}, got {value!r}")


def _normal_range(dtype):
    info = np.finfo(dtype)
    _NORMAL_RANGE[dtype] = (float(info.tiny), float(info.max))
    return _NORMAL_RANGE[dtype]


_NORMAL_RANGE: dict = {}


def check_scale_fits(scale, dtype, what: str = "scale") -> np.ndarray:
    """Return ``scale`` cast to ``dtype``, or raise ValueError when ``dtype`` cannot hold it as
    a normal number (it would become 0, a subnormal with few significant digits, or inf).

    float32 data is divided by a float32 scale (as ONNX Runtime and TFLite do), so a scale of
    1e-50 or 1e60 would turn into 0 or inf there and the result into NaN.

    >>> float(check_scale_fits(0.5, np.float32))
    0.5
    >>> check_scale_fits(1e-50, np.float32)
    Traceback (most recent call last):
    ...
    ValueError: scale 1e-50 cannot be used with float32 data: float32 holds normal numbers from 1.18e-38 to 3.4e+38 only (it would become 0 or inf, or lose its digits), and the division r / S happens in float32 as in ONNX Runtime; use a scale inside that range or float64 data
    """
    dtype = np.dtype(dtype)
    tiny, big = _NORMAL_RANGE.get(dtype) or _normal_range(dtype)
    if isinstance(scale, float):  # per-tensor: plain float comparisons, no array round trip
        if tiny <= scale <= big:
            s = dtype.type(scale)
            if tiny <= s <= big:  # rounding to the dtype can still cross a limit
                return np.asarray(s)
    s64 = np.asarray(scale, dtype=np.float64)
    info = np.finfo(dtype)
    with np.errstate(over="ignore", under="ignore"):
        s = s64.astype(dtype)
    bad = ~np.isfinite(s) | (s < info.tiny)
    if bad.any():
        v = float(s64[bad].ravel()[0]) if s64.ndim else float(s64)
        raise ValueError(
            f"{what} {v:g} cannot be used with {dtype.name} data: {dtype.name} holds normal numbers "
            f"from {float(info.tiny):.3g} to {float(info.max):.3g} only (it would become 0 or inf, or lose its digits), "
            f"and the division r / S happens in {dtype.name} as in ONNX Runtime; use a scale inside that "
            "range or float64 data"
        )
    return s


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


def calibration_batch(calib_x, inputs: str, name: str = "calib_x") -> np.ndarray:
    """The checks of a layer-by-layer PTQ pass (bias correction, AdaRound) in one place: ``inputs``
    is ``"quantized"`` or ``"float"`` and ``calib_x`` a float32 (n_samples, n_features) batch, n >= 1.

    >>> calibration_batch([[0.0, 1.0]], "float").dtype
    dtype('float32')
    """
    if inputs not in ("quantized", "float"):
        raise ValueError(f"inputs must be 'quantized' or 'float', got {inputs!r}")
    x = as_float_array(calib_x, name).astype(np.float32)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must be (n_samples, n_features) with at least one sample, got shape {x.shape}")
    return x


def check_choice(value, name: str, choices) -> str:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}")
    return value
