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


@pytest.mark.parametrize("test_size, seed", [(0.25, 0), (0.3, 1)])
def test_same_arrays_as_scikit_learn(test_size, seed):
    # the CSV read with numpy and the stored split give exactly scikit-learn's arrays, in its order
    from sklearn.datasets import load_digits as sk_load
    from sklearn.model_selection import train_test_split

    d = sk_load()
    expected = train_test_split((d.data / 16.0).astype(np.float32), d.target.astype(np.int64),
                                test_size=test_size, random_state=seed, stratify=d.target)
    got = load_digits(test_size=test_size, seed=seed)
    for a, b in zip((got.X_train, got.X_test, got.y_train, got.y_test), expected):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_loading_does_not_import_scikit_learn():
    import subprocess
    import sys

    code = "import sys, qlib; qlib.load_digits(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
