"""The course's real data: scikit-learn's bundled handwritten digits (no download).

1,797 grey-scale 8x8 images of the digits 0-9, pixel values 0..16, shipped inside
scikit-learn. qlib scales them to [0, 1] (float32) and splits them once, stratified
and with a fixed seed, so every notebook sees the same train and test sets.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

__all__ = ["Digits", "load_digits"]


class Digits(NamedTuple):
    """Train/test split of the digits: ``X_*`` are (n, 64) float32 in [0, 1], ``y_*`` int64 labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@lru_cache(maxsize=None)
def _load(test_size: float, seed: int) -> Digits:
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    d = _sk_load_digits()
    X = (d.data / 16.0).astype(np.float32)  # pixels are 0..16
    y = d.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    for a in (X_tr, X_te, y_tr, y_te):
        a.setflags(write=False)  # cached and shared: nobody may change them in place
    return Digits(X_tr, y_tr, X_te, y_te)


def load_digits(test_size: float = 0.25, seed: int = 0) -> Digits:
    """Load the digits, scaled to [0, 1], split stratified into train and test (fixed seed).

    The arrays are read-only (they are cached and shared); copy them to modify.

    >>> d = load_digits()
    >>> d.X_train.shape, d.X_test.shape, d.X_train.dtype, float(d.X_train.max())
    ((1347, 64), (450, 64), dtype('float32'), 1.0)
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must lie strictly between 0 and 1, got {test_size!r}")
    return _load(float(test_size), int(seed))
