"""The course's real data: scikit-learn's bundled handwritten digits (no download).

1,797 grey-scale 8x8 images of the digits 0-9, pixel values 0..16, shipped inside
scikit-learn. qlib scales them to [0, 1] (float32) and splits them once, stratified
and with a fixed seed (scikit-learn's ``train_test_split``), so every notebook sees the same
train and test sets. The CSV is read with numpy and the default split is stored
(``digits_split.txt``), so loading does not import scikit-learn.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["Digits", "load_digits"]


class Digits(NamedTuple):
    """Train/test split of the digits: ``X_*`` are (n, 64) float32 in [0, 1], ``y_*`` int64 labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


_SPLIT_FILE = Path(__file__).with_name("digits_split.txt")


def _digits_csv() -> np.ndarray:
    """scikit-learn's ``datasets/data/digits.csv.gz`` (64 pixels + the label per row), read with numpy:
    the same numbers as ``sklearn.datasets.load_digits`` without importing scikit-learn (about 1 s)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the digits data set ships with scikit-learn, which is not installed: "
                         "pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    return np.loadtxt(path, delimiter=",")


def _stored_split() -> tuple[np.ndarray, np.ndarray]:
    """The course's split (test_size 0.25, seed 0) as rows of the CSV, in train_test_split's order."""
    rows = {}
    for line in _SPLIT_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, *values = line.split()
            rows[name] = np.array(values, dtype=np.int64)
    return rows["train"], rows["test"]


def _sklearn_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    return tuple(train_test_split(np.arange(y.size), test_size=test_size, random_state=seed, stratify=y))


@lru_cache(maxsize=None)
def _load(test_size: float, seed: int) -> Digits:
    table = _digits_csv()
    X = (table[:, :-1] / 16.0).astype(np.float32)  # pixels are 0..16
    y = table[:, -1].astype(np.int64)
    train, test = _stored_split() if (test_size, seed) == (0.25, 0) else _sklearn_split(y, test_size, seed)
    X_tr, X_te, y_tr, y_te = X[train], X[test], y[train], y[test]
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
