"""Number formats: what fp32, fp16, bf16, int8 and int4 cost in bytes and what they can represent.

numpy has no bfloat16 and no 4-bit type, so qlib stores them the way hardware does:
bf16 as the upper 16 bits of a float32 (in a uint16 array), int4 as two codes packed
into each byte (in a uint8 array). ``nbytes`` then measures the real storage.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array, check_choice

__all__ = [
    "FORMATS",
    "to_bfloat16_bits",
    "from_bfloat16_bits",
    "pack_int4",
    "unpack_int4",
    "storage_bytes",
    "round_to_format",
    "ENERGY_PJ_45NM",
]

#: Bits per value of each storage format the course compares.
FORMATS = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "int4": 4}

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


def storage_bytes(x, fmt: str) -> int:
    """Bytes needed to store the real tensor ``x`` in format ``fmt``, measured with ``nbytes``
    on an actual array of that format (scales of int formats not included).

    >>> w = np.zeros((128, 64), np.float32)
    >>> [storage_bytes(w, f) for f in ("fp32", "fp16", "bf16", "int8", "int4")]
    [32768, 16384, 16384, 8192, 4096]
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
    return int(pack_int4(np.zeros(x.size, np.int8)).nbytes)


def round_to_format(x, fmt: str, int_scale: float = 1.0) -> np.ndarray:
    """The nearest value ``fmt`` can represent (float64 result). Integer formats use a
    symmetric grid with step ``int_scale``: ``clip(round(x / scale), qmin, qmax) * scale``.
    Values beyond fp16's largest finite value (65504) become ``inf``, as in hardware.

    >>> round_to_format(np.array([0.1]), "fp16"), round_to_format(np.array([0.1]), "bf16")
    (array([0.09997559]), array([0.10009766]))
    """
    check_choice(fmt, "fmt", tuple(FORMATS))
    x = as_float_array(x).astype(np.float64)
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
