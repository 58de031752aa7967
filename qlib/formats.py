"""Number formats: what fp32, fp16, bf16, FP8, FP6, FP4, int8 and int4 cost in bytes and what they can represent.

numpy has no bfloat16 and no 8-, 6- or 4-bit float types, so qlib stores them the way hardware does:
bf16 as the upper 16 bits of a float32 (in a uint16 array), FP8 as one code per byte, FP6 as four
6-bit codes packed into three bytes, int4 and FP4 as two codes packed into each byte (uint8 arrays).
``nbytes`` then measures the real storage. The small float formats (FP8 E4M3/E5M2, FP6 E3M2/E2M3,
FP4 E2M1) are :mod:`qlib.minifloat`'s, named here with their width: ``fp8_e4m3`` is ``e4m3fn``.
"""

from __future__ import annotations

import numpy as np

from . import minifloat
from ._validate import as_float_array, check_choice, check_flag

__all__ = [
    "FORMATS",
    "to_bfloat16_bits",
    "from_bfloat16_bits",
    "MINIFLOAT_OF",
    "pack_int4",
    "unpack_int4",
    "pack_6bit",
    "unpack_6bit",
    "storage_bytes",
    "round_to_format",
    "ENERGY_PJ_45NM",
]

#: Bits per value of each storage format the course compares (element bits only: the scales of
#: int8/int4 and of block formats such as MXFP4 come on top, see qlib.blockfloat.bits_per_weight).
FORMATS = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8_e4m3": 8, "fp8_e5m2": 8, "int8": 8,
           "fp6_e3m2": 6, "fp6_e2m3": 6, "fp4_e2m1": 4, "int4": 4}

#: The qlib.minifloat name behind each small float format.
MINIFLOAT_OF = {"fp8_e4m3": "e4m3fn", "fp8_e5m2": "e5m2", "fp6_e3m2": "e3m2", "fp6_e2m3": "e2m3",
                "fp4_e2m1": "e2m1"}

#: Energy per operation at 45 nm, 0.9 V, in picojoules: M. Horowitz, "Computing's energy
#: problem (and what we can do about it)", ISSCC 2014; the two memory rows as tabulated from
#: it for 32-bit reads by S. Han et al., "Learning both Weights and Connections for Efficient
#: Neural Networks", NeurIPS 2015 (Table 1).
ENERGY_PJ_45NM = {
    "int8 add": 0.03,
    "int32 add": 0.1,
    "fp16 add": 0.4,
    "fp32 add": 0.9,
    "int8 multiply": 0.2,
    "int32 multiply": 3.1,
    "fp16 multiply": 1.1,
    "fp32 multiply": 3.7,
    "read 32 bits from 8 KB SRAM": 5.0,
    "read 32 bits from DRAM": 640.0,
}


def to_bfloat16_bits(x) -> np.ndarray:
    """float -> bfloat16 bit patterns (uint16): keep the top 16 bits of float32, rounded to nearest even.

    bf16 = float32's sign and 8 exponent bits + 7 mantissa bits: fp32's range, 3 significant digits.

    >>> to_bfloat16_bits(np.array([1.0, -2.0, 3.140625], np.float32))
    array([16256, 49152, 16457], dtype=uint16)
    """
    x = as_float_array(x).astype(np.float32)
    u = x.view(np.uint32)
    # round to nearest even on the 16 dropped bits: add 0x7FFF plus the lowest kept bit
    # (cannot overflow uint32 for finite inputs: the largest finite pattern is 0xFF7FFFFF)
    u = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return u.astype(np.uint16)


def from_bfloat16_bits(b) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32 values.

    >>> from_bfloat16_bits(np.array([16256, 49152], np.uint16))
    array([ 1., -2.], dtype=float32)
    """
    b = np.asarray(b)
    if b.dtype != np.uint16:
        raise ValueError(f"bfloat16 bit patterns must be a uint16 array, got {b.dtype}")
    return (b.astype(np.uint32) << 16).view(np.float32)


def pack_int4(q) -> np.ndarray:
    """Pack signed 4-bit codes (-8..7) two per byte: element 2k in the low nibble, 2k+1 in the high one.

    An odd count is padded with one zero code. The result is a flat uint8 array of ``ceil(n/2)`` bytes.

    >>> pack_int4(np.array([1, -1, 7], np.int8))
    array([241,   7], dtype=uint8)
    """
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise ValueError(f"pack_int4 needs integer codes, got dtype {q.dtype}")
    q = q.astype(np.int64).ravel()
    if q.size and (q.min() < -8 or q.max() > 7):
        raise ValueError(f"int4 codes must lie in [-8, 7], got {q.min()}..{q.max()}")
    if q.size % 2:
        q = np.append(q, 0)
    nib = (q & 0xF).astype(np.uint8)
    return nib[0::2] | (nib[1::2] << 4)


def unpack_int4(packed, n: int) -> np.ndarray:
    """Inverse of :func:`pack_int4`: the first ``n`` signed 4-bit codes as int8.

    >>> unpack_int4(pack_int4(np.array([1, -1, 7], np.int8)), 3)
    array([ 1, -1,  7], dtype=int8)
    """
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise ValueError(f"packed int4 data must be uint8, got {p.dtype}")
    if not 0 <= n <= 2 * p.size:
        raise ValueError(f"n={n} codes do not fit in {p.size} packed bytes")
    nib = np.empty(2 * p.size, np.int16)
    nib[0::2], nib[1::2] = p & 0xF, p >> 4
    nib = np.where(nib >= 8, nib - 16, nib)  # sign-extend the nibble
    return nib[:n].astype(np.int8)


def pack_6bit(codes) -> np.ndarray:
    """Pack 6-bit codes (0..63, e.g. FP6) four into three bytes: c0 | c1 << 6 | c2 << 12 | c3 << 18,
    little-endian. A count that is not a multiple of 4 is padded with zero codes.

    >>> pack_6bit(np.array([1, 2, 3, 63], np.uint8))
    array([129,  48, 252], dtype=uint8)
    """
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"pack_6bit needs integer codes, got dtype {c.dtype}")
    c = c.astype(np.int64).ravel()
    if c.size and (c.min() < 0 or c.max() > 63):
        raise ValueError(f"6-bit codes must lie in [0, 63], got {c.min()}..{c.max()}")
    c = np.concatenate([c, np.zeros(-c.size % 4, np.int64)]).reshape(-1, 4)
    word = c[:, 0] | (c[:, 1] << 6) | (c[:, 2] << 12) | (c[:, 3] << 18)  # 24 bits
    return np.stack([word & 0xFF, (word >> 8) & 0xFF, word >> 16], axis=1).astype(np.uint8).ravel()


def unpack_6bit(packed, n: int) -> np.ndarray:
    """Inverse of :func:`pack_6bit`: the first ``n`` codes (uint8).

    >>> unpack_6bit(pack_6bit(np.array([1, 2, 3, 63], np.uint8)), 4)
    array([ 1,  2,  3, 63], dtype=uint8)
    """
    p = np.asarray(packed)
    if p.dtype != np.uint8 or p.size % 3:
        raise ValueError(f"packed 6-bit data must be uint8 in groups of 3 bytes, got {p.dtype} x {p.size}")
    if not 0 <= n <= 4 * (p.size // 3):
        raise ValueError(f"n={n} codes do not fit in {p.size} packed bytes")
    b = p.astype(np.int64).reshape(-1, 3)
    word = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    c = np.stack([(word >> k) & 0x3F for k in (0, 6, 12, 18)], axis=1).ravel()
    return c[:n].astype(np.uint8)


def storage_bytes(x, fmt: str) -> int:
    """Bytes needed to store the real tensor ``x`` in format ``fmt``, measured with ``nbytes``
    on an actual array of that format (scales of int formats not included).

    >>> w = np.zeros((128, 64), np.float32)
    >>> [storage_bytes(w, f) for f in ("fp32", "fp16", "bf16", "int8", "int4")]
    [32768, 16384, 16384, 8192, 4096]
    >>> [storage_bytes(w, f) for f in ("fp8_e4m3", "fp6_e3m2", "fp4_e2m1")]
    [8192, 6144, 4096]
    """
    check_choice(fmt, "fmt", tuple(FORMATS))
    x = as_float_array(x)
    if fmt == "fp32":
        return int(x.astype(np.float32).nbytes)
    if fmt == "fp16":
        return int(x.astype(np.float16).nbytes)
    if fmt == "bf16":
        return int(to_bfloat16_bits(x).nbytes)
    if fmt == "int8":
        return int(np.zeros(x.shape, np.int8).nbytes)
    if fmt in MINIFLOAT_OF:
        # the codes of an actual ml_dtypes array (one byte each; its cast is C, qlib.minifloat.encode is
        # the readable numpy reference, ~0.3 us per value): the byte count does not depend on the values
        import ml_dtypes

        codes = x.astype(getattr(ml_dtypes, minifloat.ML_DTYPES_NAMES[MINIFLOAT_OF[fmt]])).view(np.uint8)
        if FORMATS[fmt] == 8:
            return int(codes.nbytes)
        if FORMATS[fmt] == 6:
            return int(pack_6bit(codes).nbytes)
        return int(pack_int4((codes.astype(np.int16) ^ 8) - 8).nbytes)  # the nibble as a signed code
    return int(pack_int4(np.zeros(x.size, np.int8)).nbytes)


def round_to_format(x, fmt: str, int_scale: float = 1.0, saturate: bool = False) -> np.ndarray:
    """The nearest value ``fmt`` can represent (float64 result), rounding to nearest even.

    Integer formats use a symmetric grid with step ``int_scale``: ``clip(round(x / scale), qmin, qmax) * scale``.
    fp16 overflows to ``inf`` from 65520 on, as in hardware: 65504 is its largest value and 65520 lies
    exactly halfway to the next step (65536), a tie that rounds to the even side, infinity; below
    65520 values round down to 65504. FP8/FP6/FP4 follow :func:`qlib.minifloat.cast`: fp8_e4m3
    overflows to NaN (from 464), fp8_e5m2 to inf (from 61440), FP6/FP4 saturate; ``saturate=True``
    clamps every small float to its largest finite value instead (fp32/fp16/bf16 ignore it).

    >>> round_to_format(np.array([0.1]), "fp16"), round_to_format(np.array([0.1]), "bf16")
    (array([0.09997559]), array([0.10009766]))
    >>> round_to_format(np.array([65519.0, 65520.0]), "fp16")
    array([65504.,    inf])
    >>> round_to_format(np.array([500.0]), "fp8_e4m3"), round_to_format(np.array([500.0]), "fp8_e4m3", saturate=True)
    (array([nan]), array([448.]))
    """
    check_choice(fmt, "fmt", tuple(FORMATS))
    saturate = check_flag(saturate, "saturate")
    x = as_float_array(x).astype(np.float64)
    if fmt in MINIFLOAT_OF:
        return minifloat.cast(x, MINIFLOAT_OF[fmt], saturate=saturate).astype(np.float64)
    if fmt == "fp32":
        return x.astype(np.float32).astype(np.float64)
    if fmt == "fp16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float64)
    if fmt == "bf16":
        return from_bfloat16_bits(to_bfloat16_bits(x)).astype(np.float64)
    if not (np.isfinite(int_scale) and int_scale > 0):
        raise ValueError(f"int_scale must be a positive step size, got {int_scale!r}")
    lo, hi = (-128, 127) if fmt == "int8" else (-8, 7)
    return np.clip(np.rint(x / int_scale), lo, hi) * int_scale
