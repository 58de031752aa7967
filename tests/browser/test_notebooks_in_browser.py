"""Every notebook, in real JupyterLab in headless Chromium: Run All, no errors, live widgets.

For each ``notebooks/NN_*.ipynb`` (a copy, served by the ``lab`` fixture):
  1. open it, wait for its kernel, Run All (the Run menu's ``runmenu:run-all`` item) and
     wait until the kernel is idle and no cell shows ``[*]``;
  2. save the *copy* and read it back: every code cell ran, and no cell has an error
     output unless it is tagged ``raises-exception``;
  3. no console errors and no uncaught page errors in the browser;
  4. every slider (keyboard Home / End on each handle), dropdown (first / last option),
     toggle-button and radio group (first / last) and checkbox (off / on) is moved to both
     ends; the figure (img src) or readout text of the widget it belongs to must differ
     between the two ends, and no error/stderr output may appear in the widget;
  5. a screenshot per notebook goes to ``artifacts/browser/NN_name.png``.
"""

from __future__ import annotations

import time

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
# generous: a notebook runs in <= 20 s, but a CI machine may be slow or busy
RUN_ALL_TIMEOUT = float(os.environ.get("QLIB_BROWSER_RUN_TIMEOUT", "600"))
# after a move, an idle kernel and an unchanged output for this long mean "no change"
QUIET = float(os.environ.get("QLIB_BROWSER_QUIET", "2.0"))


def notebook_paths() -> list[Path]:
    """The notebooks under test (same folder as the ``lab`` fixture serves)."""
    folder = Path(os.environ.get("QLIB_BROWSER_NOTEBOOKS", ROOT / "notebooks"))
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))

CONTROL_SELECTOR = ", ".join([
    ".jp-Notebook .widget-slider",
    ".jp-Notebook .widget-dropdown",
    ".jp-Notebook .widget-toggle-buttons",
    ".jp-Notebook .widget-radio",
    ".jp-Notebook .widget-checkbox",
])

# What the control drives: figures and text inside the cell output that holds the control,
# leaving out the control widgets themselves (their own readouts always change).
SNAPSHOT_JS = """
(control) => {
  const area = control.closest('.jp-OutputArea-output') || control.parentElement;
  const isControl = (el) => el.closest('.widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-radio, .widget-checkbox, .widget-text, .widget-textarea');
  const parts = [];
  for (const img of area.querySelectorAll('img')) { if (!isControl(img)) parts.push('img:' + img.getAttribute('src')); }
  for (const svg of area.querySelectorAll('svg')) { if (!isControl(svg) && !svg.closest('.widget-output img')) parts.push('svg:' + svg.outerHTML.length + ':' + svg.textContent); }
  for (const el of area.querySelectorAll('.widget-html-content, .widget-output')) { if (!isControl(el)) parts.push('text:' + el.innerText); }
  return parts.join('\\n');
}
"""

ERRORS_IN_WIDGET_JS = """
(control) => {
  const area = control.closest('.jp-OutputArea-output') || control.parentElement;
  return [...area.querySelectorAll('.widget-output [data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.innerText.slice(0, 2000));
}
"""

VALUE_JS = """
(control) => {
  const readout = control.querySelector('.widget-readout');
  if (readout && readout.innerText.trim()) return readout.innerText.trim();
  const h = [...control.querySelectorAll('.noUi-handle')];
  if (h.length) return h.map(e => e.getAttribute('aria-valuetext') || e.getAttribute('aria-valuenow')).join(' .. ');
  const sel = control.querySelector('select');
  if (sel) return sel.value;
  const active = control.querySelector('button.mod-active');
  if (active) return active.innerText;
  const checked = control.querySelector('input[type=radio]:checked');
  if (checked) return checked.value || checked.parentElement.innerText;
  const box = control.querySelector('input[type=checkbox]');
  if (box) return String(box.checked);
  return '';
}
"""

LABEL_JS = """
(control) => {
  const label = control.querySelector('.widget-label, .widget-label-basic');
  return (label && label.innerText.trim()) || control.className;
}
"""

def _wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _settle(lab, control, before: str, expect_change: bool, timeout: float) -> str:
    """Wait for the widget's output to react to a move, then to stop changing.

    Gives up waiting for a change after ``timeout`` seconds, or earlier once the kernel has
    been idle for ``QUIET`` seconds with nothing changed (the move was handled and did
    not alter the output).
    """
    snap = lambda: control.evaluate(SNAPSHOT_JS)  # noqa: E731
    t_end = time.monotonic() + (timeout if expect_change else 1.0)
    idle_since = None
    while time.monotonic() < t_end:
        if snap() != before:
            break
        if all(st == "idle" for st in lab.kernel_states()):
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= QUIET:
                break
        else:
            idle_since = None
        time.sleep(0.1)
    lab.wait_kernels_idle(timeout=60, settle=0.2)
    last, stable_since = snap(), time.monotonic()
    t_end = time.monotonic() + 15
    while time.monotonic() - stable_since < 0.4 and time.monotonic() < t_end:
        time.sleep(0.1)
        now = snap()
        if now != last:
            last, stable_since = now, time.monotonic()
    return last


def _positions(control, kind: str) -> list:
    """Every position worth trying for a control used as context: both ends, or every option."""
    if kind == "dropdown":
        return list(range(control.query_selector("select").evaluate("s => s.options.length")))
    if kind in ("toggle", "radio"):
        return list(range(len(control.query_selector_all("button" if kind == "toggle" else "input[type=radio]"))))
    return ["first", "last"]


def _move(control, kind: str, end) -> None:
    """Move one control to its first (end='first'), last (end='last') or n-th (end=n) position."""
    if kind == "slider":
        key = "Home" if end == "first" else "End"
        for handle in control.query_selector_all(".noUi-handle"):
            handle.focus()
            handle.press(key)
    elif kind == "dropdown":
        select = control.query_selector("select")
        n = select.evaluate("s => s.options.length")
        select.select_option(index=end if isinstance(end, int) else 0 if end == "first" else n - 1)
    elif kind in ("toggle", "radio"):
        sel = "button" if kind == "toggle" else "input[type=radio]"
        options = control.query_selector_all(sel)
        (options[end] if isinstance(end, int) else options[0] if end == "first" else options[-1]).click()
    elif kind == "checkbox":
        box = control.query_selector("input[type=checkbox]")
        if box.is_checked() != (end == "last"):
            box.click()


def _both_ends(lab, control, kind: str, label: str, where: str):
    """Move ``control`` to its first then last position; (value_first, value_last, changed)."""
    before, value0 = control.evaluate(SNAPSHOT_JS), control.evaluate(VALUE_JS)
    _move(control, kind, "first")
    value_first = control.evaluate(VALUE_JS)
    snap_first = _settle(lab, control, before, expect_change=value_first != value0, timeout=10)
    _move(control, kind, "last")
    value_last = control.evaluate(VALUE_JS)
    if value_last == value_first:
        pytest.fail(f"{where}: control {label!r} ({kind}) did not move: first = last = {value_first!r}")
    snap_last = _settle(lab, control, snap_first, expect_change=True, timeout=15)
    errors = control.evaluate(ERRORS_IN_WIDGET_JS)
    if errors:
        pytest.fail(f"{where}: control {label!r} at {value_last!r} shows errors:\n" + "\n".join(errors))
    return value_first, value_last, snap_last != snap_first


# a disabled slider carries the attribute on its noUi div (no :disabled form element, no mod-disabled class)
DISABLED_JS = "c => c.classList.contains('mod-disabled') || !!c.querySelector(':disabled, [disabled]')"


def _enable(lab, control, siblings: list, label: str, where: str) -> None:
    """A greyed-out control (e.g. "group size" outside block-wise mode): set the other controls of its
    widget to each of their positions until it is enabled; fail if no state enables it."""
    for other in sorted(siblings, key=lambda c: _kind(c) == "slider"):   # mode pickers first
        other_kind = _kind(other)
        start = other.evaluate("c => { const s = c.querySelector('select'); return s ? s.selectedIndex : null; }")
        for pos in _positions(other, other_kind):
            _move(other, other_kind, pos)
            _settle(lab, other, other.evaluate(SNAPSHOT_JS), expect_change=True, timeout=3)
            if not control.evaluate(DISABLED_JS):
                return
        if start is not None:   # not this one: put it back (e.g. the layer), so the next picker starts as loaded
            _move(other, other_kind, start)
            _settle(lab, other, other.evaluate(SNAPSHOT_JS), expect_change=True, timeout=3)
    pytest.fail(f"{where}: control {label!r} stays disabled whatever the other controls of its widget are set to")


def _exercise_control(lab, control, siblings: list, where: str) -> str:
    """Prove that a control drives its figure or readout; returns a one-line summary.

    Some controls only matter in some states of the others (e.g. "group size" only for
    block-wise granularity). If moving a control end to end changes nothing, the other
    controls of the same widget are set to each of their positions in turn and the
    control is tried again; it fails only if it changes nothing in any of those states.
    """
    kind, label = _kind(control), control.evaluate(LABEL_JS)
    control.scroll_into_view_if_needed()
    if control.evaluate(DISABLED_JS):
        _enable(lab, control, siblings, label, where)
    first, last, changed = _both_ends(lab, control, kind, label, where)
    if changed:
        return f"{label}: {first} -> {last}"
    ordered = sorted(siblings, key=lambda c: _kind(c) == "slider")   # mode pickers first
    for other in ordered:
        other_kind, other_label = _kind(other), other.evaluate(LABEL_JS)
        for pos in _positions(other, other_kind):
            _move(other, other_kind, pos)
            # the control sits at one end; in this state, move it to the other end once
            at_end = control.evaluate(VALUE_JS) == last
            snap = _settle(lab, other, other.evaluate(SNAPSHOT_JS), expect_change=True, timeout=3)
            _move(control, kind, "first" if at_end else "last")
            moved = _settle(lab, control, snap, expect_change=True, timeout=5)
            errors = control.evaluate(ERRORS_IN_WIDGET_JS)
            if errors:
                pytest.fail(f"{where}: control {label!r} shows errors:\n" + "\n".join(errors))
            if moved != snap:
                return f"{label}: {first} <-> {last} (with {other_label} = {other.evaluate(VALUE_JS)})"
    pytest.fail(f"{where}: moving {label!r} ({kind}) from {first!r} to {last!r} did not change the figure or "
                "readout it belongs to, whatever the other controls of its widget were set to")


def _kind(control) -> str:
    cls = control.get_attribute("class") or ""
    for name, kind in (("widget-slider", "slider"), ("widget-dropdown", "dropdown"),
                       ("widget-toggle-buttons", "toggle"), ("widget-radio", "radio"),
                       ("widget-checkbox", "checkbox")):
        if name in cls.split():
            return kind
    return "unknown"


PROGRESS_JS = """
() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell')];
  const prompts = cells.map(c => { const p = c.querySelector('.jp-InputArea-prompt'); return p ? p.textContent : ''; });
  const outputs = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output').length;
  return {total: cells.length, done: prompts.filter(t => /\\[\\d+\\]/.test(t)).length,
          running: prompts.filter(t => t.includes('*')).length, outputs: outputs};
}
"""


def _run_all(page, lab, stall: float = 10.0) -> None:
    """Run All, then wait until every code cell has an execution count, or nothing moves.

    JupyterLab clears the ``[*]`` of the queued cells as soon as *any* cell replies with an
    error -- also a ``raises-exception`` cell, after which the kernel keeps running the
    rest -- so ``[*]`` alone cannot tell when Run All is over. Done means: every code
    cell numbered and the kernel idle; or (a real error stopped the run) the kernel idle
    and nothing changed for ``stall`` seconds. The saved copy then tells what happened.
    """
    _menu(page, "Run", "runmenu:run-all")
    time.sleep(0.5)
    t_end = time.monotonic() + RUN_ALL_TIMEOUT
    last, last_change = None, time.monotonic()
    while time.monotonic() < t_end:
        progress = page.evaluate(PROGRESS_JS)
        idle = all(s == "idle" for s in lab.kernel_states())
        if progress != last:
            last, last_change = progress, time.monotonic()
        if idle and progress["done"] == progress["total"] and progress["running"] == 0:
            lab.wait_kernels_idle(timeout=RUN_ALL_TIMEOUT, settle=0.5)
            return
        if not idle:
            last_change = max(last_change, time.monotonic() - stall / 2)
        if idle and progress["running"] == 0 and time.monotonic() - last_change > stall:
            return
        time.sleep(0.25)
    raise TimeoutError(f"Run All still busy after {RUN_ALL_TIMEOUT:.0f} s: {last}")


def _save_and_read(page, lab, name: str):
    path = lab.root / name
    mtime = path.stat().st_mtime_ns
    _menu(page, "File", "docmanager:save")
    assert _wait_until(lambda: path.stat().st_mtime_ns != mtime, 30), "saving the notebook copy timed out"
    page.wait_for_selector(".jp-Notebook", timeout=10_000)
    time.sleep(0.3)
    return nbformat.read(path, as_version=4)


def _menu(page, menu: str, command: str) -> None:
    page.click(f".lm-MenuBar-itemLabel:text-is('{menu}')")
    page.click(f"li.lm-Menu-item[data-command='{command}']")


def _accept_dialogs(page, seconds: float = 2.0) -> None:
    """Confirm any dialog (shut down kernel? discard changes?) that pops up."""
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        buttons = page.query_selector_all(".jp-Dialog .jp-Dialog-footer button.jp-mod-accept, "
                                          ".jp-Dialog .jp-Dialog-footer button.jp-mod-warn")
        if buttons:
            buttons[-1].click()
            time.sleep(0.2)
        elif not page.query_selector(".jp-NotebookPanel"):
            return
        time.sleep(0.1)


def _open(page, lab, name: str) -> None:
    _close(page, lab)   # one notebook at a time
    _menu(page, "File", "filebrowser:open-path")
    dialog_input = page.wait_for_selector(".jp-Dialog input", timeout=10_000)
    dialog_input.fill(name)
    dialog_input.press("Enter")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(e => /\\| Idle/.test(e.textContent))",
        timeout=120_000)
    lab.wait_kernels_idle(timeout=120)


def _close(page, lab) -> None:
    """Close every open notebook (confirming any dialog) and shut all kernels down."""
    for _ in range(5):
        if not page.query_selector(".jp-NotebookPanel"):
            break
        _menu(page, "File", "application:close-all")
        _accept_dialogs(page, seconds=10)
    lab.shutdown_kernels()


@pytest.mark.parametrize("notebook", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_runs_and_widgets_respond(notebook, lab, lab_page, artifacts_dir):
    page = lab_page.page
    lab_page.console_errors.clear()
    try:
        _open(page, lab, notebook.name)

        # 0. opened without running: no "Error displaying widget: model not found", every frozen frame shown
        page.wait_for_timeout(500)   # widget views render asynchronously after the cells
        text = page.evaluate("() => document.querySelector('.jp-NotebookPanel').innerText")
        assert "Error displaying widget" not in text and "model not found" not in text, (
            f"{notebook.name}: a widget output shows an error when the notebook is opened without running")
        frames = sum(1 for c in nbformat.read(notebook, as_version=4).cells for o in c.get("outputs", [])
                     if o.get("data", {}).get("text/plain") == "<frame>")
        shown = page.evaluate("() => document.querySelectorAll('.jp-NotebookPanel .jp-RenderedImage img').length")
        assert shown >= frames, f"{notebook.name}: {frames} widget frames saved, only {shown} images shown"

        # 1-2. Run All, every cell ran, no unexpected error outputs
        t0 = time.monotonic()
        _run_all(page, lab)
        run_seconds = time.monotonic() - t0
        nb = _save_and_read(page, lab, notebook.name)
        problems = []
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            tags = cell.metadata.get("tags", [])
            if cell.execution_count is None and cell.source.strip():
                problems.append(f"cell {i} did not run (Run All stopped before it)")
            for out in cell.get("outputs", []):
                if out.output_type == "error" and "raises-exception" not in tags:
                    problems.append(f"cell {i}: {out.ename}: {out.evalue}")
        if problems:
            notes = [ln for ln in lab.log_tail(20_000).splitlines()
                     if any(w in ln.lower() for w in ("restart", "died", "dead", "error", "traceback"))]
            pytest.fail(f"{notebook.name} in JupyterLab:\n" + "\n".join(problems)
                        + ("\nserver log:\n" + "\n".join(notes[-15:]) if notes else ""))

        # 4. every control moves to both ends and changes what it drives
        controls = page.query_selector_all(CONTROL_SELECTOR)   # greyed-out ones too: _enable finds their mode
        page.evaluate("() => document.querySelectorAll('.jp-OutputArea-output').forEach((a, i) => a.dataset.qlibArea = i)")
        areas = [c.evaluate("c => (c.closest('.jp-OutputArea-output') || {dataset: {}}).dataset.qlibArea || ''")
                 for c in controls]
        moved = []
        for k, control in enumerate(controls):
            siblings = [c for j, c in enumerate(controls) if j != k and areas[j] == areas[k]]
            moved.append(_exercise_control(lab, control, siblings, notebook.name))

        # 5. screenshot with the first widget in view
        if controls:
            controls[0].scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / f"{notebook.stem}.png"))
        print(f"{notebook.name}: Run All {run_seconds:.1f} s (machine-dependent); "
              f"{len(moved)} controls moved: " + "; ".join(moved))
        _close(page, lab)

        # 3. nothing went wrong in the page
        assert not lab_page.console_errors, (
            f"{notebook.name}: browser console errors:\n" + "\n".join(lab_page.console_errors))
    except Exception:
        try:  # keep what the page looked like when it failed
            page.screenshot(path=str(artifacts_dir / f"{notebook.stem}-FAILED.png"))
        except Exception:
            pass
        _close(page, lab)
        raise
