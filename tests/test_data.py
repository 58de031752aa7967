"""qlib.data: the bundled digits, split once, stratified, read-only."""

import numpy as np
import pytest

from qlib.data import load_digits


def test_shapes_ranges_and_stratification():
    d = load_digits()
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    assert d.X_train.dtype == np.float32 and 0.0 <= d.X_train.min() and d.X_train.max() == 1.0
    assert set(np.unique(d.y_test)) == set(range(10))
    # stratified: every class gets ~25 % of its ~180 images, i.e. 43-46 test images
    counts = np.bincount(d.y_test)
    assert counts.min() >= 43 and counts.max() <= 46


def test_deterministic_and_read_only():
    a, b = load_digits(), load_digits()
    np.testing.assert_array_equal(a.X_test, b.X_test)
    with pytest.raises(ValueError):
        a.X_train[0, 0] = 5.0


def test_bad_test_size():
    with pytest.raises(ValueError, match="test_size"):
        load_digits(test_size=1.5)
