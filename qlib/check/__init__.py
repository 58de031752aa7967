"""Checkers for the notebooks' "Check yourself" exercises.

Each checker prints a friendly verdict. A right answer prints why it is right; a wrong
one prints a hint and raises :class:`ExerciseError` (an ``AssertionError``), so a
notebook run with a wrong answer fails loudly instead of carrying on with bad numbers.
In Jupyter the error shows as one short line under the printed verdict, never as a
traceback through the checker (which would give the solution's qlib call away).

Every checker treats junk the same way, through the shared helpers below:

* :func:`as_number`, :func:`as_whole_number`, :func:`as_array` turn an answer into a
  number/array or fail with one line (None, strings, ragged lists, objects, wrong shape);
* :func:`expect_close` / :func:`expect_equal` compare with a tolerance / exactly;
* :func:`call_learner` calls a learner's function, reporting a wrong number of arguments,
  an exception it raised or an unfinished ``NotImplementedError`` in one line;
* :func:`normalize_name` / :func:`expect_name` accept equivalent spellings of names
  ("Percentile", "min-max", "MinMax", "minmax").

In IPython, importing this package also turns a ``NameError`` raised by a checker cell's own
arguments (``check.f(S, Z)`` before ``S`` exists: the exercise is not done yet) into an
:class:`ExerciseError` with a one-line verdict.

Checkers live in one module per notebook (``nb02``, ``nb03``, ...) and are re-exported here.
"""

from __future__ import annotations

import ast
import inspect
import numbers
import re
import sys

import numpy as np

__all__ = ["ExerciseError", "passed", "failed", "expect_close", "expect_equal", "as_number",
           "as_whole_number", "as_array", "call_learner", "normalize_name", "expect_name", "answers_defined"]


class ExerciseError(AssertionError):
    """Raised by a checker when the answer is not right yet.

    The verdict was already printed; in IPython/Jupyter the error itself renders as one
    line (:meth:`_render_traceback_`), without the frames of the checker.

    >>> ExerciseError("❌ Not yet: S = 1").__str__()
    '❌ Not yet: S = 1'
    >>> ExerciseError("❌ Not yet: S = 1")._render_traceback_()
    ['ExerciseError: not right yet -- read the hint above, fix your answer, run both cells again.']
    """

    def _render_traceback_(self):   # IPython shows this list instead of a traceback
        return ["ExerciseError: not right yet -- read the hint above, fix your answer, run both cells again."]


def passed(message: str) -> None:
    """Print the success verdict."""
    print(f"✅ Correct! {message}")


def failed(message: str, hint: str = "") -> None:
    """Print the failure verdict with a hint, then raise :class:`ExerciseError`.

    >>> try:
    ...     failed("S = 0.5", hint="divide by 255")
    ... except ExerciseError as e:
    ...     print("raised:", str(e).splitlines()[0])
    ❌ Not yet: S = 0.5
       Hint: divide by 255
    raised: ❌ Not yet: S = 0.5
    """
    text = f"❌ Not yet: {message}" + (f"\n   Hint: {hint}" if hint else "")
    print(text)
    raise ExerciseError(text) from None


def _show(v, limit: int = 60) -> str:
    """A short repr of a learner's answer, for a one-line verdict.

    >>> _show(None), _show("abc"), _show(list(range(100)))[-3:]
    ('None', "'abc'", '...')
    """
    if isinstance(v, np.ndarray):
        text = np.array2string(v, precision=6, threshold=8)
    else:
        try:
            text = repr(v)
        except Exception:   # a learner's object with a broken __repr__
            text = f"<{type(v).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_array(name: str, got, shape=None, hint: str = "") -> np.ndarray:
    """``got`` as a float64 array, or a one-line failure for anything that is not numbers.

    Refused: None, strings (also inside lists), bools, ragged lists, objects, complex
    numbers, NaN/inf, and (when ``shape`` is given) any other shape -- no silent ravel.

    >>> as_array("scales", [1, 2.5])
    array([1. , 2.5])
    >>> try:
    ...     as_array("scales", [[1, 2], [3]])
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: scales should be numbers (a number or an array of them), got [[1, 2], [3]]
    >>> try:
    ...     as_array("scales", [[1, 2], [3, 4]], shape=(4,))
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: scales has shape (2, 2), expected shape (4,)
    """
    bad = got is None or isinstance(got, (str, bytes, bool, np.bool_, dict, set))
    if not bad and isinstance(got, (list, tuple)):
        bad = any(isinstance(v, (str, bytes, bool, np.bool_)) or v is None for v in np.ravel(np.asarray(got, dtype=object))) \
            if _regular(got) else True
    arr = None
    if not bad:
        try:
            arr = np.asarray(got)
            bad = arr.dtype.kind not in "iuf"
            arr = arr.astype(np.float64)
        except Exception:   # ragged, objects, a learner's class with a broken __array__
            bad = True
    if bad:
        failed(f"{name} should be numbers (a number or an array of them), got {_show(got)}", hint)
    if shape is not None and arr.shape != tuple(shape):
        failed(f"{name} has shape {arr.shape}, expected shape {tuple(shape)}", hint)
    if not np.isfinite(arr).all():
        failed(f"{name} contains NaN or inf: {_show(got)}", hint)
    return arr


def _regular(seq) -> bool:
    """True if nested lists/tuples form a regular (non-ragged) block.

    >>> _regular([[1, 2], [3, 4]]), _regular([[1, 2], [3]]), _regular([1, [2]])
    (True, False, False)
    """
    if not isinstance(seq, (list, tuple)):
        return True
    kinds = {isinstance(v, (list, tuple, np.ndarray)) for v in seq}
    if len(kinds) > 1:
        return False
    if kinds == {True}:
        lens = {len(v) for v in seq}
        return len(lens) == 1 and all(_regular(v) for v in seq)
    return True


def as_number(name: str, got, hint: str = "") -> float:
    """``got`` as one real number (Python or NumPy scalar, or a 0-d array); strings, None, bools,
    lists and NaN are refused with a one-line verdict.

    >>> as_number("S", np.float32(0.5))
    0.5
    >>> try:
    ...     as_number("S", "0.5")
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: S should be a single number, got '0.5'
    """
    ok = isinstance(got, numbers.Real) and not isinstance(got, (bool, np.bool_))
    if isinstance(got, np.ndarray) and got.shape == () and got.dtype.kind in "iuf":
        got, ok = got.item(), True
    if not ok or not np.isfinite(float(got)):
        failed(f"{name} should be a single number, got {_show(got)}", hint)
    return float(got)


def as_whole_number(name: str, got, hint: str = "") -> int:
    """``got`` as an integer: ints, or floats with no fractional part (62.0); 61.6 and "62" are refused.

    >>> as_whole_number("Z", 62.0), as_whole_number("Z", np.int64(-3))
    (62, -3)
    >>> try:
    ...     as_whole_number("Z", 8.9)
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: Z = 8.9 is not a whole number
    """
    v = as_number(name, got, hint)
    if v != np.floor(v):
        failed(f"{name} = {_show(got)} is not a whole number", hint)
    return int(v)


def expect_close(name: str, got, expected, rtol: float = 1e-6, atol: float = 0.0, hint: str = "") -> None:
    """Fail unless ``got`` has exactly ``expected``'s shape and is numerically close to it.

    >>> expect_close("S", 0.1 + 0.2, 0.3)
    >>> try:
    ...     expect_close("S", 0.5, 0.3, hint="divide by 255")
    ... except ExerciseError:
    ...     print("raised")
    ❌ Not yet: S = 0.5, expected something else
       Hint: divide by 255
    raised
    >>> try:
    ...     expect_close("S", None, 0.3)
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: S should be numbers (a number or an array of them), got None
    """
    e = np.asarray(expected, dtype=np.float64)
    g = as_array(name, got, shape=e.shape, hint=hint)
    if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=False):
        shown = _show(g) if g.ndim else f"{float(g):.6g}"
        failed(f"{name} = {shown}, expected something else", hint)


def expect_equal(name: str, got, expected, hint: str = "") -> None:
    """Fail unless ``got`` equals ``expected`` exactly: same shape, same values (62.0 counts as 62,
    62.4 and "62" do not); a string answer must be the same string.

    >>> expect_equal("Z", 200, 200)
    >>> expect_equal("codes", np.array([1.0, -2.0]), [1, -2])
    >>> try:
    ...     expect_equal("Z", "200", 200)
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: Z should be numbers (a number or an array of them), got '200'
    """
    e = np.asarray(expected)
    if e.dtype.kind in "US":
        if not isinstance(got, str) or got != str(expected):
            failed(f"{name} = {_show(got)}, expected something else", hint)
        return
    g = as_array(name, got, shape=e.shape, hint=hint)
    if not np.array_equal(g, e.astype(np.float64)):
        failed(f"{name} = {_show(got)}, expected something else", hint)


def _arity_text(fn, n: int) -> str | None:
    """None if ``fn`` accepts ``n`` positional arguments, else what is wrong.

    >>> _arity_text(lambda x, S: 0, 2) is None, _arity_text(lambda x: 0, 2)
    (True, 'your function takes (x), but the checker calls it with 2 arguments')
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):   # builtins without a signature: just try
        return None
    try:
        sig.bind(*range(n))
    except TypeError:
        params = ", ".join(sig.parameters)
        return f"your function takes ({params}), but the checker calls it with {n} arguments"
    return None


def call_learner(fn, *args, name: str = "your function", expected_args: str = ""):
    """Call the learner's ``fn(*args)``; a non-function, a wrong number of parameters, an exception
    inside it (including the unfinished ``NotImplementedError``) or a None result becomes a
    one-line verdict.

    >>> call_learner(lambda a, b: a + b, 1, 2)
    3
    >>> def f(x):
    ...     raise NotImplementedError("your turn")
    >>> try:
    ...     call_learner(f, 1.0)
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: your function is not written yet (it raises NotImplementedError)
       Hint: replace the raise NotImplementedError line by your code, run the cell, then run the check again
    >>> try:
    ...     call_learner(lambda x: 1 / 0, 1.0)
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: your function raised ZeroDivisionError: division by zero
    """
    if not callable(fn) or isinstance(fn, type):
        failed(f"{name} should be a function, got {_show(fn)}",
               "pass the function itself, without calling it: check.something(my_function)")
    arity = _arity_text(fn, len(args))
    if arity:
        failed(arity, expected_args and f"define it as def ...({expected_args})")
    try:
        out = fn(*args)
    except NotImplementedError:
        failed(f"{name} is not written yet (it raises NotImplementedError)",
               "replace the raise NotImplementedError line by your code, run the cell, then run the check again")
    except Exception as exc:   # the learner's bug, shown in one line
        msg = " ".join(str(exc).split())
        failed(f"{name} raised {type(exc).__name__}: {msg[:120]}")
    if out is None:
        failed(f"{name} returned None", "did you forget the return statement?")
    return out


def normalize_name(text) -> str:
    """Lower-case ``text`` and drop everything but letters and digits, so equivalent spellings of
    a name compare equal.

    >>> [normalize_name(s) for s in ("Percentile", "min-max", "MinMax", "min_max", " per-channel ")]
    ['percentile', 'minmax', 'minmax', 'minmax', 'perchannel']
    """
    return re.sub(r"[^0-9a-z]", "", str(text).lower())


def expect_name(name: str, got, choices, hint: str = "") -> str:
    """The element of ``choices`` that ``got`` spells (see :func:`normalize_name`), or a one-line failure.

    >>> expect_name("answer", "Min-Max", ("minmax", "percentile"))
    'minmax'
    >>> try:
    ...     expect_name("answer", 3, ("minmax", "percentile"))
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: answer should be one of 'minmax', 'percentile', got 3
    """
    if isinstance(got, str):
        for c in choices:
            if normalize_name(got) == normalize_name(c):
                return c
    failed(f"{name} should be one of {', '.join(repr(c) for c in choices)}, got {_show(got)}", hint)


class answers_defined:
    """Context manager: a ``NameError`` raised right in the ``with`` body (not inside a function
    it calls) becomes a one-line :class:`ExerciseError`: the exercise was not done yet.

    >>> try:
    ...     with answers_defined():
    ...         print(undefined_answer)
    ... except ExerciseError:
    ...     pass
    ❌ Not yet: undefined_answer is not defined yet
       Hint: finish the exercise cell above (replace the raise NotImplementedError line), run it, then run this check
    """

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        if etype is not None and issubclass(etype, NameError) and tb is not None and tb.tb_next is None:
            missing = getattr(exc, "name", None) or str(exc)
            failed(f"{missing} is not defined yet",
                   "finish the exercise cell above (replace the raise NotImplementedError line), run it, "
                   "then run this check")
        return False


class _GuardCheckerCalls(ast.NodeTransformer):
    """IPython AST transformer: wraps each top-level ``check.name(...)`` statement of a cell in
    ``with check.answers_defined():`` so a not-yet-defined answer gives a verdict, not a NameError.

    >>> tree = _GuardCheckerCalls().visit(ast.parse("check.f(S, Z)\\nx = 1"))
    >>> print(ast.unparse(tree))
    with __import__('qlib.check').check.answers_defined():
        check.f(S, Z)
    x = 1
    """

    def visit_Module(self, node):
        body = []
        for stmt in node.body:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Name) and call.func.value.id == "check"):
                ctx = ast.parse("__import__('qlib.check').check.answers_defined()", mode="eval").body
                stmt = ast.With(items=[ast.withitem(context_expr=ctx)], body=[stmt])
                ast.copy_location(stmt, stmt.body[0])
                ast.fix_missing_locations(stmt)
            body.append(stmt)
        node.body = body
        return node


def _install_ipython_guard() -> None:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "ast_transformers"):
        return
    if not any(type(t).__name__ == "_GuardCheckerCalls" for t in shell.ast_transformers):
        shell.ast_transformers.append(_GuardCheckerCalls())


_install_ipython_guard()

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
