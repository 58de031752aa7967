"""Checkers for notebook 01 (why quantize)."""

from __future__ import annotations

from . import expect_equal, passed

__all__ = ["int4_storage"]


def int4_storage(answer_bytes, n_weights: int) -> None:
    """Bytes to store ``n_weights`` int4 weights packed two per byte (no scales): ``ceil(n / 2)``."""
    expected = (n_weights + 1) // 2
    expect_equal("bytes", answer_bytes, expected,
                 hint="4 bits is half a byte: two weights share one byte (round up for an odd count)")
    passed(f"{n_weights:,} int4 weights take {expected:,} bytes, 1/8 of fp32's {4 * n_weights:,}.")
