"""The checkers of the "Check yourself" exercises (qlib.check) judge honestly and speak briefly.

Each notebook with exercises is executed once, cell by cell, in one fresh kernel. Right after
each exercise's solution cell, and before the notebook goes on, its checker cell is run against:

* the generic perturbation: every name the solution sets is replaced by a perturbed value
  (floats scaled and shifted, integers + 3, arrays offset, strings changed, functions whose
  results are perturbed the same way, ...);
* the classic wrong answers of ``tests/checker_wrong_answers/nbNN.py``, one at a time (off by
  one, floor/trunc instead of round, wrong sign, a forgotten term, the wrong axis, S' for S, ...);
* junk, one name at a time: None, a wrongly shaped array, a string, a ragged list, a short list,
  a function that raises, a function with the wrong number of parameters, functions returning
  junk; and the untouched student version (the ``raise NotImplementedError("your turn")`` stub,
  with the exercise's names never defined).

Every one must fail with ``qlib.check.ExerciseError`` -- never pass, never crash with another
exception from inside qlib or numpy -- and the failure must be short: at most a few lines of
verdict, no traceback frames (which would show the solution's qlib call). After each trial the
right answer is restored.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "tests"))
from checker_wrong_answers import path_for, wrong_answers  # noqa: E402


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


build_student = sys.modules.get("build_student") or _load("build_student")


def _exercise_notebooks():
    out = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        if any("solution" in c.metadata.get("tags", []) for c in nb.cells):
            out.append(path)
    return out


EXERCISE_NOTEBOOKS = _exercise_notebooks()

# --------------------------------------------------------------------------- helpers run in the kernel

PERTURB = textwrap.dedent('''
    def __qlib_perturb(v, _depth=0):
        """A deliberately wrong version of v (same type where possible)."""
        import dataclasses, numbers, functools
        import numpy as _np
        if _depth > 4:
            return None
        if v is None:
            return 1
        if isinstance(v, (bool, _np.bool_)):
            return not v
        if isinstance(v, numbers.Integral):     # +3: some checkers accept codes off by 1 (ties)
            return type(v)(v + 3) if not isinstance(v, _np.integer) else _np.int64(v) + 3
        if isinstance(v, numbers.Real):
            return v * 1.25 + 0.37
        if isinstance(v, numbers.Complex):
            return v * 1.25 + 0.37
        if isinstance(v, str):
            return v + "_wrong"
        if isinstance(v, _np.ndarray):
            if v.dtype == bool:
                return ~v
            if _np.issubdtype(v.dtype, _np.integer):
                return v.astype(_np.int64) + 3
            if _np.issubdtype(v.dtype, _np.number):
                return v * 1.25 + 0.37
            return v
        if isinstance(v, (list, tuple)):
            items = [__qlib_perturb(x, _depth + 1) for x in v]
            return type(v)(items) if isinstance(v, list) or type(v) is tuple else type(v)(*items)
        if isinstance(v, dict):
            return {k: __qlib_perturb(x, _depth + 1) for k, x in v.items()}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            changes = {f.name: __qlib_perturb(getattr(v, f.name), _depth + 1) for f in dataclasses.fields(v)
                       if isinstance(getattr(v, f.name), (float, _np.ndarray)) and f.name != "bits"}
            try:
                return dataclasses.replace(v, **changes)
            except Exception:
                return None
        if callable(v) and not isinstance(v, type):
            @functools.wraps(v)
            def wrong(*args, **kwargs):
                return __qlib_perturb(v(*args, **kwargs), _depth + 1)
            return wrong
        return None
''')

#: Junk answers, by label: an expression evaluated in the kernel (``__orig`` is the right answer).
JUNK = {
    "None": "None",
    "wrong shape": "__qlib_np.zeros((3, 7, 2))",
    "a string": "'0.5'",
    "a ragged list": "[[1.0, 2.0], [3.0]]",
    "a short list": "[1.0, 2.0]",
    "a list with a string": "[1.0, 'two', 3.0]",
    "an object": "object()",
    "a function that raises": "(lambda *a, **k: (_ for _ in ()).throw(ValueError('boom')))",
    "a function with the wrong arity": "(lambda only_one: only_one)",
}
#: More junk for function answers: a function with the right parameters returning junk.
JUNK_RETURNED = {
    "a function returning None": "None",
    "a function returning a wrongly shaped array": "__qlib_np.zeros((3, 7, 2))",
    "a function returning a string": "'0.5'",
    "a function returning a ragged list": "[[1.0, 2.0], [3.0]]",
}
JUNK_SETUP = textwrap.dedent('''
    import numpy as __qlib_np
    def __qlib_returning(fn, value):
        import functools
        @functools.wraps(fn)
        def wrong(*args, **kwargs):
            return value
        return wrong
''')


def assigned_names(region: str, cell_source: str) -> list[str]:
    """Names an exercise defines: assignments inside the solution block, or the function around it.

    >>> assigned_names("S = 1\\nZ, q = 2, 3", "S = 1\\nZ, q = 2, 3")
    ['S', 'Z', 'q']
    >>> assigned_names("    return x", "def f(x):\\n    # BEGIN SOLUTION\\n    return x\\n    # END SOLUTION")
    ['f']
    """
    lines = cell_source.split("\n")
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "# BEGIN SOLUTION") + 1
        end = next(i for i, ln in enumerate(lines) if ln.strip() == "# END SOLUTION") + 1
    except StopIteration:
        start, end = 1, len(lines)
    tree = ast.parse(cell_source)
    names: list[str] = []
    for node in tree.body:
        last = getattr(node, "end_lineno", node.lineno)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.lineno < start <= last:
            names.append(node.name)
        elif start <= node.lineno <= end:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.append(sub.id)
                elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.append(sub.name)
                elif isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(sub.ctx, ast.Store):
                    base = sub.value
                    while isinstance(base, (ast.Subscript, ast.Attribute)):
                        base = base.value
                    if isinstance(base, ast.Name):
                        names.append(base.id)
    return list(dict.fromkeys(names))


def answer_names(ex) -> list[str]:
    """The names an exercise's checker judges: those the solution sets and the checker cell reads
    (loop variables and helpers of the solution are left out).

    >>> class Ex: pass
    >>> ex = Ex(); ex.region = "for b in B:\\n    best = b"; ex.solution = ex.region; ex.checker = "check.f(best, W2)"
    >>> answer_names(ex)
    ['best']
    """
    used = {n.id for n in ast.walk(ast.parse(ex.checker)) if isinstance(n, ast.Name)}
    names = assigned_names(ex.region, ex.solution)
    return [n for n in names if n in used] or names


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_text_problems(cell) -> list[str]:
    """What is wrong with a failed checker cell's output: a traceback with frames, or too long.

    >>> err = {"output_type": "error", "ename": "ExerciseError", "evalue": "x", "traceback": ["ExerciseError: x"]}
    >>> failure_text_problems({"outputs": [{"output_type": "stream", "name": "stdout", "text": "❌ Not yet\\n"}, err]})
    []
    >>> bad = dict(err, traceback=["Traceback", '  File "qlib/check/nb02.py", line 3', "    qlib.quantize(x)", "E"])
    >>> failure_text_problems({"outputs": [bad]})[0][:31]
    'the error shows 4 lines (max 3)'
    """
    problems = []
    for out in cell["outputs"]:
        if out["output_type"] == "error":
            lines = ANSI.sub("", "\n".join(out["traceback"])).splitlines()
            if len(lines) > 3 or any("qlib" in ln or "File " in ln or "Traceback" in ln for ln in lines):
                problems.append(f"the error shows {len(lines)} lines (max 3) or frames: " + " | ".join(lines[:6])[:300])
        elif out["output_type"] == "stream":
            lines = out["text"].splitlines()
            if len(lines) > 4 or "Traceback" in out["text"]:
                problems.append(f"the verdict is {len(lines)} lines long (max 4): " + " | ".join(lines[:6])[:300])
    return problems


# --------------------------------------------------------------------------- the test

class _Runner:
    """Runs trial cells in the notebook's kernel and records what the checker cell did."""

    def __init__(self, client, path):
        self.client, self.path, self.failures, self.trials = client, path, [], 0

    def run(self, source, index):
        """Execute ``source``; return the CellExecutionError or None."""
        from nbclient.exceptions import CellExecutionError

        cell = nbformat.v4.new_code_cell(source)
        try:
            self.client.execute_cell(cell, index, store_history=False)
        except CellExecutionError as exc:
            return exc, cell
        return None, cell

    def expect_rejected(self, ex, what: str) -> None:
        self.trials += 1
        exc, cell = self.run(ex.checker, ex.checker_index)
        where = f"exercise {ex.number} ({', '.join(ex.checker_names)}), {what}"
        if exc is None:
            self.failures.append(f"{where}: the checker ACCEPTED it")
        elif exc.ename != "ExerciseError":
            self.failures.append(f"{where}: the checker crashed with {exc.ename}: {str(exc.evalue)[:200]} "
                                 "instead of a friendly ExerciseError")
        else:
            self.failures.extend(f"{where}: {p}" for p in failure_text_problems(cell))


def _trials(runner, ex, cell_source, wrong):
    run, restore = runner.run, (lambda: runner.run(cell_source, ex.cell_index))
    names = answer_names(ex)
    if not names:
        runner.failures.append(f"exercise {ex.number}: cannot tell which names the solution sets")
        return
    # 1. the generic perturbation, all names at once
    run("\n".join(f"{n} = __qlib_perturb({n})" for n in names), ex.cell_index)
    runner.expect_rejected(ex, f"perturbed {', '.join(names)}")
    restore()
    # 2. the classic wrong answers, one at a time
    for label, code in wrong.get(ex.number, []):
        exc, _ = run(code, ex.cell_index)
        if exc is not None:
            runner.failures.append(f"exercise {ex.number}, wrong answer {label!r}: the snippet itself failed: "
                                   f"{exc.ename}: {str(exc.evalue)[:200]}")
        else:
            runner.expect_rejected(ex, f"wrong answer {label!r}")
        restore()
    # 3. junk, one name at a time
    run(JUNK_SETUP, ex.cell_index)
    for name in names:
        for label, expr in JUNK.items():
            run(f"{name} = {expr}", ex.cell_index)
            runner.expect_rejected(ex, f"{name} = {label}")
            restore()
        is_function = run(f"assert callable({name})", ex.cell_index)[0] is None
        for label, expr in JUNK_RETURNED.items() if is_function else ():
            run(f"{name} = __qlib_returning({name}, {expr})", ex.cell_index)
            runner.expect_rejected(ex, f"{name} = {label}")
            restore()
    # 4. the untouched student version: names never defined, the stub raises
    run("\n".join(f"del {n}" for n in names), ex.cell_index)
    exc, _ = run(build_student.strip_solution(ex.solution), ex.cell_index)
    if exc is not None and exc.ename != "NotImplementedError":   # a function stub raises only when called
        runner.failures.append(f"exercise {ex.number}: the student version failed with {exc.ename}, "
                               "not NotImplementedError")
    runner.expect_rejected(ex, "the untouched student version")
    restore()


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_checkers_reject_wrong_and_junk_answers(path):
    from nbclient import NotebookClient

    try:
        wrong = wrong_answers(path)
    except FileNotFoundError:
        wrong = {}   # reported by test_every_exercise_has_classic_wrong_answers
    nb = nbformat.read(path, as_version=4)
    exs = {ex.cell_index: ex for ex in build_student.exercises(nb, path.name)}
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    runner = _Runner(client, path)
    old_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        with client.setup_kernel():
            client.execute_cell(nbformat.v4.new_code_cell(PERTURB), 0, store_history=False)
            last_needed = max(ex.checker_index for ex in exs.values())
            for i, cell in enumerate(nb.cells[: last_needed + 1]):
                if cell.cell_type != "code":
                    continue
                client.execute_cell(cell, i)       # raises unless the cell is tagged raises-exception
                if i in exs:
                    _trials(runner, exs[i], cell.source, wrong)
    finally:
        if old_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old_backend
    assert runner.trials > 0
    assert not runner.failures, f"{path.name} ({runner.trials} trials):\n" + "\n".join(runner.failures)


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_classic_wrong_answers(path):
    nb = nbformat.read(path, as_version=4)
    numbers = [ex.number for ex in build_student.exercises(nb, path.name)]
    assert path_for(path).exists(), f"{path_for(path).relative_to(ROOT)} is missing: write WRONG for {path.name}"
    wrong = wrong_answers(path)
    missing = [n for n in numbers if not wrong.get(n)]
    assert not missing, f"{path_for(path).name}: no classic wrong answers for exercise(s) {missing}"
    unknown = sorted(set(wrong) - set(numbers))
    assert not unknown, f"{path_for(path).name}: WRONG has entries for exercises {unknown} that do not exist"
    for n in numbers:
        for item in wrong[n]:
            assert isinstance(item, tuple) and len(item) == 2 and all(isinstance(s, str) for s in item), item
            compile(item[1], f"{path_for(path).name}[{n}] {item[0]}", "exec")


# --------------------------------------------------------------------------- the framework in a real kernel

def test_exercise_error_renders_as_one_line_in_a_kernel_and_still_fails_the_cell():
    """A wrong answer: verdict printed, the cell fails with ename ExerciseError, one short error line;
    an undefined answer in a checker cell (NameError) becomes an ExerciseError too."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from qlib import check"),
                nbformat.v4.new_code_cell("check.scale_and_zero_point(0.5, 3, x_min=-0.7, x_max=2.2)"),
                nbformat.v4.new_code_cell("check.scale_and_zero_point(S_never_defined, 3, x_min=-0.7, x_max=2.2)"),
                nbformat.v4.new_code_cell("print(name_never_defined)")]
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        for i, ename in ((1, "ExerciseError"), (2, "ExerciseError"), (3, "NameError")):
            with pytest.raises(CellExecutionError) as info:
                client.execute_cell(nb.cells[i], i)
            assert info.value.ename == ename
            if ename == "ExerciseError":
                assert failure_text_problems(nb.cells[i]) == []
                text = "".join(o.get("text", "") for o in nb.cells[i].outputs)
                assert "❌ Not yet" in text
    assert "S_never_defined is not defined yet" in "".join(o.get("text", "") for o in nb.cells[2].outputs)
