"""Checkers for the notebooks' "Check yourself" exercises.

Each checker prints a friendly verdict. A right answer prints why it is right; a wrong
one prints a hint and raises :class:`ExerciseError` (an ``AssertionError``), so a
notebook run with a wrong answer fails loudly instead of carrying on with bad numbers.
Checkers live in one module per notebook (``nb02``, ``nb03``, ...) and are re-exported here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ExerciseError", "passed", "failed", "expect_close", "expect_equal"]


class ExerciseError(AssertionError):
    """Raised by a checker when the answer is not right yet."""


def passed(message: str) -> None:
    """Print the success verdict."""
    print(f"✅ Correct! {message}")


def failed(message: str, hint: str = "") -> None:
    """Print the failure verdict with a hint, then raise :class:`ExerciseError`."""
    text = f"❌ Not yet: {message}" + (f"\n   Hint: {hint}" if hint else "")
    print(text)
    raise ExerciseError(text)


def expect_close(name: str, got, expected, rtol: float = 1e-6, atol: float = 0.0, hint: str = "") -> None:
    """Fail unless ``got`` is numerically close to ``expected`` (any shape).

    >>> expect_close("S", 0.1 + 0.2, 0.3)
    >>> try:
    ...     expect_close("S", 0.5, 0.3, hint="divide by 255")
    ... except ExerciseError:
    ...     print("raised")
    ❌ Not yet: S = 0.5, expected something else
       Hint: divide by 255
    raised
    """
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        failed(f"{name} should be a number or an array of numbers, got {type(got).__name__}", hint)
        return
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        failed(f"{name} has shape {g.shape}, expected shape {e.shape}", hint)
    if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=False):
        shown = np.array2string(g, precision=6) if g.ndim else f"{float(g):.6g}"
        failed(f"{name} = {shown}, expected something else", hint)


def expect_equal(name: str, got, expected, hint: str = "") -> None:
    """Fail unless ``got`` equals ``expected`` exactly (integers, codes, strings, shapes).

    >>> expect_equal("Z", 200, 200)
    """
    g, e = np.asarray(got), np.asarray(expected)
    if g.shape != e.shape or not np.array_equal(g, e):
        failed(f"{name} = {got!r}, expected something else", hint)


# Per-notebook checkers (each module defines __all__):
from .nb01 import *  # noqa: F401,F403,E402
from .nb02 import *  # noqa: F401,F403,E402
from .nb03 import *  # noqa: F401,F403,E402
from .nb05 import *  # noqa: F401,F403,E402
from .nb04 import *  # noqa: F401,F403,E402
from .nb07 import *  # noqa: F401,F403,E402
from .nb09 import *  # noqa: F401,F403,E402
from .nb06 import *  # noqa: F401,F403,E402
from .nb08 import *  # noqa: F401,F403,E402
