"""Build the student version of the course and the teacher's solutions from notebooks/.

    python scripts/build_student.py            # write student/ and solutions/
    python scripts/build_student.py --check    # exit 1 if they are out of date (CI)

For every ``notebooks/NN_*.ipynb``:

* ``student/NN_name.ipynb`` is the same notebook, except that in every code cell tagged
  ``solution`` the lines from ``# BEGIN SOLUTION`` to ``# END SOLUTION`` are replaced by
  ``raise NotImplementedError("your turn")`` (same indentation as the marker). The code
  around the markers stays. The outputs and execution counts of the exercise cells and of
  the checker cells right after them are removed (a stored "✅ Correct!" would give the
  answer away); every other cell keeps its committed outputs, so the notebook still reads
  well before it is run.
* ``solutions/NN_name.py`` holds each exercise's full solution cell and its checker call,
  in ``# %%`` cells (opens as a notebook in VS Code / JupyterLab with jupytext), and
  ``solutions/README.md`` lists all exercises. Names are stable: they follow the notebooks.

Rules checked on the way (a violation stops the build with a clear message): every
``solution`` cell has exactly one BEGIN/END pair, in that order, each on its own line;
the next cell is a code cell that calls a checker (``check.something(...)``); no untagged
code cell contains the markers (it would leak the solution into the student version).
Student files whose source notebook is gone are deleted (and reported by ``--check``).

``--check`` compares what the notebooks *say* -- cell types, sources, tags and outputs
(see :func:`content`) -- not the bytes of the files: JupyterLab autosaves a notebook a
learner merely opened (it rewrites ``metadata.language_info`` for the learner's Python,
and with "save widget state" on, the widget state), and that must not make the student
version look out of date.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
STUB = 'raise NotImplementedError("your turn")'
CHECKER_CALL = re.compile(r"\bcheck\.(\w+)\s*\(")
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


class ExerciseFormatError(ValueError):
    """A notebook's exercise does not follow the course's exercise format."""


@dataclass
class Exercise:
    """One "Check yourself" exercise: the solution cell and the checker cell after it."""

    number: int          # 1, 2, ... within the notebook
    cell_index: int      # index of the solution cell in nb.cells
    solution: str        # full source of the solution cell (with markers)
    region: str          # the code between the markers (dedented as written)
    checker_index: int   # index of the checker cell
    checker: str         # the checker cell's source
    checker_names: list  # names called as check.<name>(...)
    heading: str         # nearest markdown heading above the exercise
    task: str            # first line of the markdown cell right before the exercise


def notebooks(src: Path) -> list[Path]:
    return sorted(src.glob(NOTEBOOK_GLOB))


def _marker_lines(lines: list[str], where: str) -> tuple[int, int]:
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    stray = [i for i, line in enumerate(lines)
             if ("BEGIN SOLUTION" in line or "END SOLUTION" in line) and i not in begins + ends]
    if stray:
        raise ExerciseFormatError(f"{where}: the marker on line {stray[0] + 1} must stand alone on its line "
                                  f"as `{BEGIN}` / `{END}`")
    if len(begins) != 1 or len(ends) != 1:
        raise ExerciseFormatError(f"{where}: needs exactly one `{BEGIN}` and one `{END}` line "
                                  f"(found {len(begins)} and {len(ends)})")
    if ends[0] < begins[0]:
        raise ExerciseFormatError(f"{where}: `{END}` comes before `{BEGIN}`")
    return begins[0], ends[0]


def strip_solution(source: str, where: str = "solution cell") -> str:
    """Replace the BEGIN..END SOLUTION block of a cell by the ``your turn`` stub.

    >>> print(strip_solution("x = 1\\n# BEGIN SOLUTION\\ny = 2 * x\\n# END SOLUTION\\nprint(y)"))
    x = 1
    raise NotImplementedError("your turn")
    print(y)
    >>> print(strip_solution("def f(x):\\n    # BEGIN SOLUTION\\n    return x\\n    # END SOLUTION"))
    def f(x):
        raise NotImplementedError("your turn")
    """
    lines = source.split("\n")
    b, e = _marker_lines(lines, where)
    indent = lines[b][: len(lines[b]) - len(lines[b].lstrip())]
    return "\n".join(lines[:b] + [indent + STUB] + lines[e + 1:])


def solution_region(source: str, where: str = "solution cell") -> str:
    """The learner's part of a solution cell: the lines strictly between the markers."""
    lines = source.split("\n")
    b, e = _marker_lines(lines, where)
    return "\n".join(lines[b + 1:e])


def _heading_before(nb, index: int) -> str:
    for cell in reversed(nb.cells[:index]):
        if cell.cell_type == "markdown":
            heads = [line.lstrip("#").strip() for line in cell.source.split("\n") if line.startswith("#")]
            if heads:
                return heads[-1]
    return ""


def _task_before(nb, index: int) -> str:
    """The exercise's prompt: a line starting with **Exercise in the markdown cell before the
    exercise, else the first line of that cell's last paragraph."""
    if index == 0 or nb.cells[index - 1].cell_type != "markdown":
        return ""
    lines = [line.strip() for line in nb.cells[index - 1].source.split("\n")]
    text = next((ln for ln in lines if ln.lower().startswith(("**exercise", "exercise"))), "")
    if not text:
        paragraphs = [p for p in "\n".join(lines).split("\n\n") if p.strip() and not p.strip().startswith("#")]
        text = paragraphs[-1].strip().split("\n")[0] if paragraphs else ""
    return text if len(text) <= 90 else text[:87].rstrip() + "..."


def exercises(nb, name: str = "notebook") -> list[Exercise]:
    """All exercises of a notebook, validated (raises :class:`ExerciseFormatError`)."""
    found = []
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        has_marker = cell.cell_type == "code" and any(
            line.strip() in (BEGIN, END) for line in cell.source.split("\n"))
        if "solution" not in tags:
            if has_marker:
                raise ExerciseFormatError(f"{name}, cell {i}: has solution markers but no `solution` tag "
                                          "(its solution would leak into the student version)")
            continue
        where = f"{name}, cell {i}"
        if cell.cell_type != "code":
            raise ExerciseFormatError(f"{where}: only code cells can be tagged `solution`")
        region = solution_region(cell.source, where)
        if not region.strip():
            raise ExerciseFormatError(f"{where}: nothing between the solution markers")
        nxt = i + 1
        if nxt >= len(nb.cells) or nb.cells[nxt].cell_type != "code":
            raise ExerciseFormatError(f"{where}: the cell after an exercise must be a code cell calling a checker")
        names = CHECKER_CALL.findall(nb.cells[nxt].source)
        if not names:
            raise ExerciseFormatError(f"{where}: the next cell does not call a checker (`check.<name>(...)`)")
        found.append(Exercise(len(found) + 1, i, cell.source, region, nxt, nb.cells[nxt].source, names,
                              _heading_before(nb, i), _task_before(nb, i)))
    return found


def student_notebook(nb, name: str = "notebook"):
    """The student version of a notebook (a new object; ``nb`` is not modified)."""
    out = copy.deepcopy(nb)
    for ex in exercises(nb, name):
        cell = out.cells[ex.cell_index]
        cell.source = strip_solution(cell.source, f"{name}, cell {ex.cell_index}")
        for idx in (ex.cell_index, ex.checker_index):
            out.cells[idx].outputs = []
            out.cells[idx].execution_count = None
    return out


def solutions_file(nb, stem: str) -> str | None:
    """The text of ``solutions/<stem>.py``, or None if the notebook has no exercise."""
    exs = exercises(nb, stem)
    if not exs:
        return None
    parts = [f'"""Solutions to the exercises of notebooks/{stem}.ipynb.\n\n'
             "Generated by scripts/build_student.py from the notebook: do not edit here.\n"
             'Each exercise runs inside the notebook, after the cells above it.\n"""\n']
    for ex in exs:
        title = f"Exercise {ex.number}" + (f": {ex.heading}" if ex.heading else "")
        task = f"# {ex.task}\n" if ex.task else ""
        checker = "\n".join("#     " + line if line else "#" for line in ex.checker.rstrip().split("\n"))
        parts.append(f"# %% {title}  (cell {ex.cell_index})\n{task}{ex.solution.rstrip()}\n"
                     f"# checked in the notebook by:\n{checker}\n")
    return "\n\n".join(parts)


def solutions_index(rows: list[tuple[str, Exercise]]) -> str:
    lines = ["# Solutions (for teachers)", "",
             "Generated by `python scripts/build_student.py` from `notebooks/`; do not edit.",
             "The student notebooks are in `student/`: each exercise there raises",
             '`NotImplementedError("your turn")` until the learner writes the code; the next cell',
             "calls a checker from `qlib.check` that says whether the answer is right.", "",
             "| notebook | exercise | section | task | checker | solution |",
             "|---|---|---|---|---|---|"]
    for stem, ex in rows:
        checkers = ", ".join(f"`check.{n}`" for n in ex.checker_names)
        cells = [ex.heading, ex.task]
        heading, task = (c.replace("|", "/") for c in cells)
        lines.append(f"| [{stem}](../notebooks/{stem}.ipynb) | {ex.number} | {heading} | {task} "
                     f"| {checkers} | [{stem}.py]({stem}.py) |")
    if not rows:
        lines.append("| (no exercises yet) | | | | | |")
    return "\n".join(lines) + "\n"


def build(src: Path, student_dir: Path, solutions_dir: Path) -> dict[Path, str]:
    """Every generated file and its exact text (nothing is written)."""
    files: dict[Path, str] = {}
    rows = []
    for path in notebooks(src):
        nb = nbformat.read(path, as_version=4)
        files[student_dir / path.name] = nbformat.writes(student_notebook(nb, path.name)) + "\n"
        text = solutions_file(nb, path.stem)
        if text is not None:
            files[solutions_dir / f"{path.stem}.py"] = text
            rows += [(path.stem, ex) for ex in exercises(nb, path.name)]
    files[solutions_dir / "README.md"] = solutions_index(rows)
    return files


def _stale(expected: dict[Path, str], student_dir: Path, solutions_dir: Path) -> list[Path]:
    existing = list(student_dir.glob(NOTEBOOK_GLOB)) + list(solutions_dir.glob("[0-9][0-9]_*.py"))
    return sorted(p for p in existing if p not in expected)


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output_content(out) -> tuple:
    kind = out.get("output_type")
    if kind == "stream":
        return ("stream", out.get("name"), _text(out.get("text", "")))
    if kind == "error":
        return ("error", out.get("ename"), out.get("evalue"))
    data = out.get("data", {})
    return ("data", tuple(sorted(
        (mime, json.dumps(v, sort_keys=True) if isinstance(v, dict) else _text(v).strip())
        for mime, v in data.items())))


def content(nb) -> list[tuple]:
    """What a notebook says: per cell its type, source, tags and outputs (their text and data).

    Left out on purpose, because JupyterLab rewrites them when it (auto)saves a notebook that
    was only opened: notebook metadata (kernelspec, language_info, widget state), cell
    metadata other than tags, execution counts, nbformat minor version, JSON layout, and
    how a stream output is split into pieces.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    >>> nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=["1", "\\n"])]
    >>> saved = copy.deepcopy(nb)
    >>> saved.metadata["language_info"] = {"name": "python", "version": "3.12.3"}
    >>> saved.cells[0].execution_count = 7
    >>> saved.cells[0].outputs[0]["text"] = "1\\n"
    >>> content(saved) == content(nb)
    True
    >>> saved.cells[0].source = "print(2)"
    >>> content(saved) == content(nb)
    False
    """
    cells = []
    for cell in nb.cells:
        entry = (cell.cell_type, _text(cell.source), tuple(cell.get("metadata", {}).get("tags", [])))
        if cell.cell_type == "code":
            outputs, merged = [], []
            for out in cell.get("outputs", []):
                item = _output_content(out)
                if item[0] == "stream" and merged and merged[-1][0] == "stream" and merged[-1][1] == item[1]:
                    merged[-1] = ("stream", item[1], merged[-1][2] + item[2])   # JupyterLab joins streams
                else:
                    merged.append(item)
            outputs = merged
            entry += (tuple(outputs),)
        cells.append(entry)
    return cells


def _same_notebook(path: Path, text: str) -> bool:
    try:
        existing = nbformat.read(path, as_version=4)
    except Exception:   # unreadable or not a notebook: rebuild it
        return False
    return content(existing) == content(nbformat.reads(text, as_version=4))


def check(src: Path, student_dir: Path, solutions_dir: Path) -> list[str]:
    """Problems that make student/ or solutions/ out of date (empty list = in sync).

    Student notebooks are compared by :func:`content` (what autosave leaves alone), the
    generated text files byte for byte.
    """
    expected = build(src, student_dir, solutions_dir)
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"missing: {path.relative_to(path.parents[1])}")
        elif not (_same_notebook(path, text) if path.suffix == ".ipynb"
                  else path.read_text(encoding="utf-8") == text):
            problems.append(f"out of date: {path.relative_to(path.parents[1])}")
    problems += [f"stale (its notebook is gone): {p.relative_to(p.parents[1])}"
                 for p in _stale(expected, student_dir, solutions_dir)]
    return problems


def write(src: Path, student_dir: Path, solutions_dir: Path) -> list[Path]:
    expected = build(src, student_dir, solutions_dir)
    changed = []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in _stale(expected, student_dir, solutions_dir):
        path.unlink()
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only verify that student/ and solutions/ are up to date")
    ap.add_argument("--src", type=Path, default=ROOT / "notebooks", help="source notebooks (default notebooks/)")
    ap.add_argument("--student", type=Path, default=ROOT / "student", help="output folder (default student/)")
    ap.add_argument("--solutions", type=Path, default=ROOT / "solutions", help="output folder (default solutions/)")
    args = ap.parse_args(argv)
    try:
        if args.check:
            problems = check(args.src, args.student, args.solutions)
            for p in problems:
                print(p)
            if problems:
                print("student version out of date: run `python scripts/build_student.py`", file=sys.stderr)
                return 1
            print(f"student/ and solutions/ are in sync with {len(notebooks(args.src))} notebooks")
            return 0
        changed = write(args.src, args.student, args.solutions)
    except ExerciseFormatError as exc:
        print(f"exercise format error: {exc}", file=sys.stderr)
        return 2
    for p in changed:
        print(f"wrote {p.relative_to(p.parents[1])}" if p.exists() else f"deleted {p.relative_to(p.parents[1])}")
    print(f"{len(changed)} file(s) changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
