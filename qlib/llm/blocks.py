"""GGML's block formats Q8_0, Q4_0 and Q4_1, decoded by hand with numpy.

A GGUF tensor row of ``n`` weights is stored as ``n / 32`` blocks of 32 consecutive weights.
Every block starts with its own float16 scale ``d`` (and, for Q4_1, a float16 minimum ``m``),
followed by the 32 integer codes:

* **Q8_0** (34 bytes): fp16 ``d`` + 32 int8 codes ``q``;            ``x = d * q``
* **Q4_0** (18 bytes): fp16 ``d`` + 16 bytes of 4-bit codes;      ``x = d * (q - 8)``
* **Q4_1** (20 bytes): fp16 ``d``, fp16 ``m`` + 16 bytes of codes; ``x = d * q + m``

The 4-bit codes are packed two per byte in ggml's order: the **low** nibbles of the 16 bytes are
elements 0..15 of the block, the **high** nibbles elements 16..31. In the course's notation
(docs/conventions.md §1, "Scale, zero point, codes"): Q8_0 and Q4_0 are symmetric block-wise (group 32)
with scale S = d (Q4_0 stores ``q - 8`` on an unsigned grid, i.e. zero point Z = 8); Q4_1 is
asymmetric with S = d and the real offset ``m`` (the value of code 0) instead of an integer Z.

Bits per weight, scales included: Q8_0 = 34*8/32 = 8.5, Q4_0 = 18*8/32 = 4.5, Q4_1 = 20*8/32 = 5.0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK_SIZE", "BLOCK_BYTES", "bits_per_weight", "unpack_nibbles", "dequantize_q8_0",
           "dequantize_q4_0", "dequantize_q4_1", "dequantize_blocks"]

#: Weights per block in Q8_0, Q4_0 and Q4_1.
BLOCK_SIZE = 32
#: Bytes per block of each format.
BLOCK_BYTES = {"Q8_0": 2 + 32, "Q4_0": 2 + 16, "Q4_1": 2 + 2 + 16}


def bits_per_weight(fmt: str) -> float:
    """Storage per weight of a block format, scales included: ``8 * block_bytes / 32``.

    >>> [bits_per_weight(f) for f in ("Q8_0", "Q4_0", "Q4_1")]
    [8.5, 4.5, 5.0]
    """
    return 8 * BLOCK_BYTES[_check_format(fmt)] / BLOCK_SIZE


def _check_format(fmt) -> str:
    if fmt not in BLOCK_BYTES:
        raise ValueError(f"unknown block format {fmt!r}; qlib decodes {', '.join(BLOCK_BYTES)} "
                         "(other GGUF types: use gguf.quants.dequantize)")
    return fmt


def _blocks(raw, fmt: str) -> np.ndarray:
    """View ``raw`` (uint8, last axis = bytes of a row) as ``(..., n_blocks, block_bytes)``."""
    nbytes = BLOCK_BYTES[fmt]
    raw = np.asarray(raw)
    if raw.dtype != np.uint8:
        raise ValueError(f"{fmt} data must be raw bytes (dtype uint8), got dtype {raw.dtype}")
    if raw.ndim == 0 or raw.shape[-1] == 0 or raw.shape[-1] % nbytes:
        n = raw.shape[-1] if raw.ndim else 0
        raise ValueError(f"a {fmt} row must be a whole number of {nbytes}-byte blocks, "
                         f"got {n} bytes per row")
    raw = np.ascontiguousarray(raw)
    return raw.reshape(raw.shape[:-1] + (raw.shape[-1] // nbytes, nbytes))


def _fp16(two_bytes: np.ndarray) -> np.ndarray:
    """Little-endian float16 from the last axis of 2 bytes, widened to float32 (exact)."""
    return np.ascontiguousarray(two_bytes).view("<f2").astype(np.float32)


def unpack_nibbles(qs) -> np.ndarray:
    """The 32 4-bit codes of blocks of 16 packed bytes: low nibbles first, then high nibbles.

    ``codes[..., j] = qs[..., j] & 0xF`` and ``codes[..., 16 + j] = qs[..., j] >> 4`` for j < 16.

    >>> unpack_nibbles(np.array([0x21] + [0] * 15, dtype=np.uint8))[[0, 1, 16, 17]]
    array([1, 0, 2, 0], dtype=uint8)
    """
    qs = np.asarray(qs)
    if qs.dtype != np.uint8 or qs.ndim == 0 or qs.shape[-1] != BLOCK_SIZE // 2:
        raise ValueError(f"packed 4-bit codes must be uint8 with 16 bytes per block, got dtype {qs.dtype} "
                         f"and shape {qs.shape}")
    return np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=-1)


def _flatten(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[:-2] + (x.shape[-2] * BLOCK_SIZE,))


def dequantize_q8_0(raw) -> np.ndarray:
    """Decode Q8_0 blocks (fp16 ``d`` + 32 int8 ``q``): ``x = d * q``, float32.

    ``raw`` is uint8 with a last axis of whole 34-byte blocks; the result has 32 floats per block.

    >>> block = np.frombuffer(np.float16(0.5).tobytes() + bytes([1, 2, 255]) + bytes(29), np.uint8)
    >>> dequantize_q8_0(block)[:4]
    array([ 0.5,  1. , -0.5,  0. ], dtype=float32)
    """
    b = _blocks(raw, "Q8_0")
    d = _fp16(b[..., 0:2])
    q = b[..., 2:].view(np.int8).astype(np.float32)
    return _flatten(q * d)


def dequantize_q4_0(raw) -> np.ndarray:
    """Decode Q4_0 blocks (fp16 ``d`` + 16 bytes of nibbles): ``x = d * (q - 8)``, float32.

    Byte 0x9F holds code 15 (element 0, low nibble) and code 9 (element 16, high nibble):

    >>> block = np.frombuffer(np.float16(0.25).tobytes() + bytes([0x9F]) + bytes(15), np.uint8)
    >>> x = dequantize_q4_0(block)
    >>> x[0], x[16], x[1]
    (np.float32(1.75), np.float32(0.25), np.float32(-2.0))
    """
    b = _blocks(raw, "Q4_0")
    d = _fp16(b[..., 0:2])
    q = unpack_nibbles(b[..., 2:]).astype(np.int8) - np.int8(8)
    return _flatten(d * q.astype(np.float32))


def dequantize_q4_1(raw) -> np.ndarray:
    """Decode Q4_1 blocks (fp16 ``d``, fp16 ``m`` + 16 bytes of nibbles): ``x = d * q + m``, float32.

    >>> block = np.frombuffer(np.float16(0.5).tobytes() + np.float16(-1).tobytes() + bytes([0x21]) + bytes(15),
    ...                       np.uint8)
    >>> x = dequantize_q4_1(block)
    >>> x[0], x[16], x[1]
    (np.float32(-0.5), np.float32(0.0), np.float32(-1.0))
    """
    b = _blocks(raw, "Q4_1")
    d = _fp16(b[..., 0:2])
    m = _fp16(b[..., 2:4])
    q = unpack_nibbles(b[..., 4:]).astype(np.float32)
    return _flatten(d * q + m)


_DECODERS = {"Q8_0": dequantize_q8_0, "Q4_0": dequantize_q4_0, "Q4_1": dequantize_q4_1}


def dequantize_blocks(raw, fmt: str) -> np.ndarray:
    """Decode raw bytes of format ``fmt`` ("Q8_0", "Q4_0", "Q4_1", or "F32"/"F16" for plain floats).

    >>> dequantize_blocks(np.frombuffer(np.float16(2).tobytes() + bytes(32), np.uint8), "Q8_0").shape
    (32,)
    >>> dequantize_blocks(np.zeros(5, np.uint8), "Q4_1")
    Traceback (most recent call last):
    ...
    ValueError: a Q4_1 row must be a whole number of 20-byte blocks, got 5 bytes per row
    """
    if fmt in ("F32", "F16"):
        return np.asarray(raw).astype(np.float32)
    return _DECODERS[_check_format(fmt)](raw)
