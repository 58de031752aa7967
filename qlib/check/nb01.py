"""Checkers for notebook 01 (why quantize)."""

from __future__ import annotations

import numpy as np

from . import as_whole_number, failed, passed

__all__ = ["int4_storage"]


def int4_storage(answer_bytes, n_weights: int) -> None:
    """Bytes to store ``n_weights`` int4 weights packed two per byte (no scales), as
    ``qlib.storage_bytes(w, "int4")`` measures it on a packed array: ``ceil(n / 2)``.

    >>> int4_storage(4096, n_weights=128 * 64)
    ✅ Correct! 8,192 int4 weights take 4,096 bytes, 1/8 of fp32's 32,768.
    >>> try:
    ...     int4_storage(8192, n_weights=128 * 64)
    ... except AssertionError:
    ...     pass
    ❌ Not yet: 8192 bytes is one byte per weight: that is int8
       Hint: 4 bits is half a byte: two weights share one byte (round up for an odd count)
    """
    from ..formats import storage_bytes

    expected = storage_bytes(np.zeros(n_weights, np.float32), "int4")
    hint = "4 bits is half a byte: two weights share one byte (round up for an odd count)"
    got = as_whole_number("bytes", answer_bytes, hint)
    if got != expected:
        why = {n_weights: "is one byte per weight: that is int8",
               4 * n_weights: "is 4 per weight: fp32's bytes, or int4's bits (divide bits by 8)",
               expected + 1: "is one too many", expected - 1: "is one too few"}.get(got, "is not the packed size")
        failed(f"{got} bytes {why}", hint)
    passed(f"{n_weights:,} int4 weights take {expected:,} bytes, 1/8 of fp32's {4 * n_weights:,}.")
