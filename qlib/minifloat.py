"""Small floating-point formats of 2025-26: FP8 (E4M3FN, E5M2), FP6 (E3M2, E2M3), FP4 (E2M1), E8M0 scales.

A float with E exponent bits and M mantissa bits stores a sign s, an exponent field e and a
mantissa field m. With ``bias = 2^(E-1) - 1`` (127 for E8M0) it means:

    normal     (e >= 1):  value = (-1)^s * 2^(e - bias) * (1 + m / 2^M)
    subnormal  (e == 0):  value = (-1)^s * 2^(1 - bias) * (m / 2^M)

Special patterns differ from format to format (that is what the suffixes say: ``fn`` = finite,
no infinities; ``fnu`` = finite, NaN, unsigned):

    e4m3fn   bias 7,   no inf, NaN = S.1111.111, max 448         (OCP 8-bit FP spec v1.0)
    e5m2     bias 15,  IEEE-like: inf = S.11111.00, NaN = S.11111.xx (xx != 0), max 57344
    e3m2     bias 3,   FP6, no inf, no NaN, max 28               (OCP MX spec v1.0)
    e2m3     bias 1,   FP6, no inf, no NaN, max 7.5
    e2m1     bias 1,   FP4, no inf, no NaN, max 6: the 8 magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6
    e8m0     bias 127, scale format: no sign, no mantissa, no zero: value = 2^(e - 127), NaN = 0xFF

Codes are stored one per uint8 (the 6- and 4-bit codes in the low bits), like ml_dtypes does.
qlib does the bit work itself (``encode``/``decode``) in plain numpy; the tests prove it bit-exact
against ml_dtypes (float8_e4m3fn, float8_e5m2, float6_e3m2fn, float6_e2m3fn, float4_e2m1fn,
float8_e8m0fnu) on every bit pattern and on dense float32/float64 inputs.

Rounding and overflow of ``encode``/``cast`` (``saturate=False`` is ml_dtypes' ``astype``):

    round to nearest, ties to even (e8m0: ties round up, as ml_dtypes does; it has no mantissa)
    e4m3fn  |x| >= 464 (448 + half a step) and +-inf -> NaN;   saturate=True: -> +-448, inf too
    e5m2    |x| >= 61440 and +-inf -> +-inf;                    saturate=True: -> +-57344, inf too
    FP6/FP4 always saturate to +-max (they have no inf or NaN): 100 -> e2m1 6.0 in both modes
    e8m0    x > about 1.5 * 2^127 and +inf -> NaN; saturate=True: -> 2^127.  x <= 0 -> NaN (no sign,
            no zero); 0 < x < 2^-127 -> 2^-127, the smallest value (ml_dtypes does the same)
    NaN input: NaN for e4m3fn/e5m2/e8m0. FP6/FP4 cannot represent NaN: ValueError (ml_dtypes 0.7
            silently turns NaN into a signed zero there; qlib refuses to invent a number)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_choice

__all__ = ["FloatFormat", "FLOAT_FORMATS", "ML_DTYPES_NAMES", "encode", "decode", "cast", "all_values"]


class FloatFormat(NamedTuple):
    """Description of one small float format (all fields are plain Python numbers)."""

    name: str
    bits: int  # total storage bits of one code
    exponent_bits: int
    mantissa_bits: int
    bias: int
    signed: bool
    has_inf: bool
    has_nan: bool
    max_finite: float
    min_normal: float
    min_subnormal: float  # smallest positive value (== min_normal when there are no subnormals)
    emax: int  # exponent of the largest normal number: max_finite = 2^emax * (1 + ...)


def _fmt(name, e_bits, m_bits, signed, has_inf, has_nan, max_finite, bias=None):
    bias = 2 ** (e_bits - 1) - 1 if bias is None else bias
    emin = 1 - bias  # exponent of the smallest normal number
    min_sub = 2.0 ** (emin - m_bits) if m_bits else 2.0 ** -bias
    min_normal = 2.0 ** emin if m_bits else 2.0 ** -bias
    emax = int(np.floor(np.log2(max_finite)))
    return FloatFormat(name, int(signed) + e_bits + m_bits, e_bits, m_bits, bias, signed, has_inf,
                       has_nan, float(max_finite), min_normal, min_sub, emax)


#: The formats by name. max_finite: e4m3fn 1.75 * 2^8 (S.1111.111 is NaN, so .110 is the largest);
#: e5m2 1.75 * 2^15 (exponent 11111 is inf/NaN); FP6/FP4 use every pattern for numbers.
FLOAT_FORMATS = {
    "e4m3fn": _fmt("e4m3fn", 4, 3, True, False, True, 448.0),
    "e5m2": _fmt("e5m2", 5, 2, True, True, True, 57344.0),
    "e3m2": _fmt("e3m2", 3, 2, True, False, False, 28.0),
    "e2m3": _fmt("e2m3", 2, 3, True, False, False, 7.5),
    "e2m1": _fmt("e2m1", 2, 1, True, False, False, 6.0),
    "e8m0": _fmt("e8m0", 8, 0, False, False, True, 2.0**127, bias=127),
}

#: The matching ml_dtypes type names (for the tests and for learners who want to compare).
ML_DTYPES_NAMES = {
    "e4m3fn": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "e3m2": "float6_e3m2fn",
    "e2m3": "float6_e2m3fn",
    "e2m1": "float4_e2m1fn",
    "e8m0": "float8_e8m0fnu",
}


def _info(fmt) -> FloatFormat:
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, str) and fmt not in FLOAT_FORMATS:
        for short, long in ML_DTYPES_NAMES.items():
            if fmt == long:
                raise ValueError(f"fmt={fmt!r} is ml_dtypes' name; qlib calls this format {short!r}")
    check_choice(fmt, "fmt", tuple(FLOAT_FORMATS))
    return FLOAT_FORMATS[fmt]


def _real_input(x, name="x") -> np.ndarray:
    """x as float64 (exact for float16/float32 input); NaN/inf allowed, integer arrays refused."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "iub":
        raise ValueError(f"{name} has integer dtype {x.dtype}: codes? use decode(codes, fmt) to turn "
                         "bit patterns into values; cast/encode take real numbers")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    if arr.dtype == object or arr.dtype.kind in "USVcbmM":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "V" or (arr.dtype.kind == "f" and arr.dtype.itemsize < 2):
        raise ValueError(f"{name} has dtype {arr.dtype}; convert it with .astype(np.float32) first")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype} ({exc})") from None


def _nan_code(f: FloatFormat, sign):
    """The NaN pattern ml_dtypes writes: e4m3fn S.1111.111, e5m2 S.11111.10 (quiet), e8m0 0xFF."""
    if f.name == "e4m3fn":
        return (sign << 7) | 0x7F
    if f.name == "e5m2":
        return (sign << 7) | 0x7E
    return np.full_like(sign, 0xFF)


def encode(x, fmt: str, saturate: bool = False) -> np.ndarray:
    """Real numbers -> bit patterns of ``fmt`` (uint8, one code per element), rounded to nearest even.

    Steps, per element (x is taken as float64, which holds every float32 exactly):
      1. sign s = signbit(x), a = |x|
      2. exponent e = floor(log2 a), raised to emin = 1 - bias for subnormals (they share emin's step)
      3. step = 2^(e - M); n = round_half_even(a / step)   (n = 2^M ... 2^(M+1): 1.mmm times 2^M)
      4. n == 2^(M+1) means rounding carried into the next binade: e += 1, n = 2^M
      5. normal (n >= 2^M): exponent field = e + bias, mantissa field = n - 2^M;
         subnormal (n < 2^M, only when e == emin): exponent field 0, mantissa field n
      6. results above max_finite overflow (see the module docstring for what each format does)

    >>> encode([1.0, -1.5, 448.0, 500.0], "e4m3fn")   # 500 overflows: NaN
    array([ 56, 188, 126, 127], dtype=uint8)
    >>> encode([500.0], "e4m3fn", saturate=True)      # saturating: the largest finite value
    array([126], dtype=uint8)
    >>> encode([0.75, 5.0, 100.0], "e2m1")   # ties 0.75 (0.5 or 1) and 5 (4 or 6) go to the even mantissa
    array([2, 6, 7], dtype=uint8)
    """
    f = _info(fmt)
    x = _real_input(x)
    if not f.has_nan and np.isnan(x).any():
        raise ValueError(f"x contains NaN, and {f.name} has no NaN pattern (nor can any number stand for "
                         "it): remove the NaNs first")
    M = f.mantissa_bits
    emin = -f.bias if f.name == "e8m0" else 1 - f.bias  # exponent of the smallest normal number
    sign = np.signbit(x).astype(np.int64)
    a = np.abs(x)
    finite = np.isfinite(a)
    a_f = np.where(finite, a, 0.0)
    # 2. exponent: frexp gives a = frac * 2^k with frac in [0.5, 1), so floor(log2 a) = k - 1
    _, k = np.frexp(a_f)
    e = np.maximum(k.astype(np.int64) - 1, emin)
    # 3. round the significand on the grid of this binade; /step is exact (a power of two)
    scaled = np.ldexp(a_f, -(e - M))
    if f.name == "e8m0":
        n = np.floor(scaled + 0.5)  # no mantissa bit to be even: ml_dtypes rounds ties up
        n = np.maximum(n, 1.0)  # no zero and no subnormals: tiny values become 2^-127
    else:
        n = np.rint(scaled)  # half to even
    n = n.astype(np.int64)
    # 4. carry into the next binade
    carry = n == 2 ** (M + 1)
    e = np.where(carry, e + 1, e)
    n = np.where(carry, 2**M, n)
    # 5. fields
    normal = n >= 2**M
    exp_field = np.where(normal, e + f.bias, 0)
    man_field = np.where(normal, n - 2**M, n)
    mag = (exp_field << M) | man_field
    # 6. overflow (and inf input), and the special inputs
    with np.errstate(over="ignore"):  # float64 inputs near 1.8e308 may carry past float64's range
        value = np.ldexp(n.astype(np.float64), e - M)
    over = (value > f.max_finite) | ~finite
    max_code = _max_code(f)
    if saturate or not f.has_nan:  # FP6/FP4 always saturate
        mag = np.where(over, max_code, mag)
    elif f.has_inf:  # e5m2: infinity
        mag = np.where(over, 0x7C, mag)
    if f.signed:
        code = (sign << (f.bits - 1)) | mag
    else:
        code = mag
    if f.has_nan:
        nan = np.isnan(x)
        if not saturate and not f.has_inf:
            nan |= over  # e4m3fn / e8m0 overflow -> NaN
        if not f.signed:
            nan |= (x <= 0) | np.signbit(x)  # e8m0 has no sign and no zero
        code = np.where(nan, _nan_code(f, sign), code)
    return code.astype(np.uint8)


def _max_code(f: FloatFormat) -> int:
    """Magnitude bits of the largest finite value (without the sign bit)."""
    e, M = f.emax, f.mantissa_bits
    n = int(round(f.max_finite / 2.0 ** (e - M)))
    return ((e + f.bias) << M) | (n - 2**M)


def decode(codes, fmt: str) -> np.ndarray:
    """Bit patterns of ``fmt`` -> float32 values.

    sign = code >> (E + M), exponent field e = (code >> M) & (2^E - 1), mantissa field m = code & (2^M - 1);
    value = (-1)^sign * 2^(e - bias) * (1 + m / 2^M) for e >= 1, (-1)^sign * 2^(1 - bias) * m / 2^M for e = 0;
    then the special patterns (NaN, inf; for e8m0 value = 2^(e - 127) and 0xFF = NaN).

    >>> decode(np.array([56, 188, 126, 127], np.uint8), "e4m3fn")
    array([  1. ,  -1.5, 448. ,   nan], dtype=float32)
    >>> decode(np.arange(8, dtype=np.uint8), "e2m1")   # the positive FP4 values
    array([0. , 0.5, 1. , 1.5, 2. , 3. , 4. , 6. ], dtype=float32)
    >>> decode(np.array([127, 130, 255], np.uint8), "e8m0")
    array([ 1.,  8., nan], dtype=float32)
    """
    f = _info(fmt)
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        hint = " (an ml_dtypes array? take its bits with .view(np.uint8))" if c.dtype.kind == "V" else ""
        raise ValueError(f"codes must be an integer array of bit patterns, got dtype {c.dtype}{hint}")
    c = c.astype(np.int64)
    if c.size and (c.min() < 0 or c.max() >= 2**f.bits):
        raise ValueError(f"{f.name} codes have {f.bits} bits and lie in [0, {2**f.bits - 1}], "
                         f"got {c.min()}..{c.max()}")
    E, M = f.exponent_bits, f.mantissa_bits
    sign = (c >> (E + M)) & 1 if f.signed else np.zeros_like(c)
    exp_field = (c >> M) & (2**E - 1)
    man_field = c & (2**M - 1)
    if f.name == "e8m0":
        mag = np.ldexp(1.0, exp_field - f.bias)
    else:
        normal = np.ldexp(1.0 + man_field / 2.0**M, exp_field - f.bias)
        subnormal = np.ldexp(man_field / 2.0**M, 1 - f.bias)
        mag = np.where(exp_field > 0, normal, subnormal)
    if f.name == "e4m3fn":
        mag = np.where((exp_field == 15) & (man_field == 7), np.nan, mag)
    elif f.name == "e5m2":
        mag = np.where(exp_field == 31, np.where(man_field == 0, np.inf, np.nan), mag)
    elif f.name == "e8m0":
        mag = np.where(exp_field == 255, np.nan, mag)
    return np.where(sign == 1, -mag, mag).astype(np.float32)


def cast(x, fmt: str, saturate: bool = False) -> np.ndarray:
    """Round ``x`` to the nearest value of ``fmt``: ``decode(encode(x, fmt, saturate), fmt)`` (float32).

    Same as ml_dtypes' ``x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)`` etc. for
    ``saturate=False`` (except NaN into FP6/FP4, which raises). See the module docstring for overflow.

    >>> cast([500.0, 460.0, 3.3], "e4m3fn")                 # 460 < 464 still rounds down to 448
    array([ nan, 448. ,   3.25], dtype=float32)
    >>> cast([500.0, -1e9], "e4m3fn", saturate=True)
    array([ 448., -448.], dtype=float32)
    >>> cast([70000.0], "e5m2"), cast([7.0, 100.0], "e2m1")
    (array([inf], dtype=float32), array([6., 6.], dtype=float32))
    """
    f = _info(fmt)
    return decode(encode(x, f, saturate), f)


def all_values(fmt: str) -> np.ndarray:
    """Every finite value of ``fmt``, sorted, without duplicates (-0 and +0 count once).

    >>> all_values("e2m1")
    array([-6. , -4. , -3. , -2. , -1.5, -1. , -0.5,  0. ,  0.5,  1. ,  1.5,  2. ,  3. ,  4. ,  6. ],
          dtype=float32)
    >>> len(all_values("e4m3fn")), len(all_values("e5m2"))
    (253, 247)
    """
    f = _info(fmt)
    v = decode(np.arange(2**f.bits), f)
    v = v[np.isfinite(v)]
    return np.unique(v + np.float32(0.0))  # -0 + 0 = +0
