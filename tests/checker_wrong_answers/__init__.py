"""Classic wrong answers for every exercise, one module per notebook, read by tests/test_checkers.py.

``nbNN.py`` (NN = the notebook's number) defines::

    WRONG = {exercise_number: [("label", "python code"), ...], ...}

``exercise_number`` is the exercise's number as ``scripts/build_student.py``'s ``exercises()`` counts
them (1, 2, ... within the notebook). Each code snippet runs in the notebook's kernel right after
the exercise's solution cell and rebinds the exercise's names to ONE classic wrong answer (off by
one, floor/trunc instead of round, wrong sign, a forgotten term, the wrong axis, S' instead of S,
...); the checker cell must then fail with ``ExerciseError``. The right answer is restored before
the next snippet. The snippets may use everything the notebook defined up to that cell.
"""

from __future__ import annotations

import importlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def module_name(notebook: str | Path) -> str:
    """``nbNN`` for a notebook path or name ``NN_title.ipynb``.

    >>> module_name("notebooks/02_linear_quantization.ipynb")
    'nb02'
    """
    return "nb" + Path(notebook).name[:2]


def path_for(notebook: str | Path) -> Path:
    """The file that holds ``notebook``'s wrong answers (it may not exist yet)."""
    return HERE / f"{module_name(notebook)}.py"


def wrong_answers(notebook: str | Path) -> dict:
    """``WRONG`` of ``notebook``'s module; ``FileNotFoundError`` when the file does not exist.

    >>> sorted(wrong_answers("02_linear_quantization.ipynb"))
    [1, 2]
    """
    if not path_for(notebook).exists():
        raise FileNotFoundError(f"{path_for(notebook)} does not exist: write the classic wrong answers "
                                f"of {Path(notebook).name}'s exercises there")
    module = importlib.import_module(f"{__name__}.{module_name(notebook)}")
    wrong = getattr(module, "WRONG", None)
    if not isinstance(wrong, dict):
        raise TypeError(f"{path_for(notebook)} must define WRONG = {{exercise_number: [(label, code), ...]}}")
    return wrong
