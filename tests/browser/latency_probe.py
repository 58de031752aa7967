"""Key press -> new frame, in real Chromium, for every control of every live widget.

Not a test (the file name keeps pytest from collecting it): ``benchmarks/bench_browser.py`` runs it
through the browser harness of this folder (conftest.py: a throw-away JupyterLab, headless
Chromium) and prints the summary it writes. Timings are machine-dependent and never asserted.

For each control the probe presses a key ``PRESSES`` times (sliders: Home, then ArrowRight /
ArrowLeft; dropdowns: the next / previous option, chosen from the page, since headless Chromium's closed
``<select>`` ignores arrow keys; checkboxes and toggle/radio buttons: Space, on the buttons in turn) and measures in
the page, with ``performance.now()``, from the ``keydown`` event to the last change of the widget's
figure (the ``src`` of its image, decoded) and readout -- the moment the whole new frame is on screen.
A press that changes nothing within ``TIMEOUT_MS`` (an end of the range, a control that only
matters in another mode) is counted as "no change", not timed.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest
from test_notebooks_in_browser import CONTROL_SELECTOR, LABEL_JS, _close, _kind, _open, _run_all, notebook_paths

PRESSES = int(os.environ.get("QLIB_LATENCY_PRESSES", "6"))
TIMEOUT_MS = 5000
RESULTS = Path(os.environ.get("QLIB_LATENCY_RESULTS", "artifacts/browser/latency.json"))

ARM_JS = """
(control) => {
  const area = control.closest('.jp-OutputArea-output') || control.parentElement;
  const isControl = (el) => el.closest('.widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-radio, .widget-checkbox, .widget-text');
  const imgs = () => [...area.querySelectorAll('img')].filter(i => !isControl(i));
  const snap = () => imgs().map(i => i.getAttribute('src')).join('|') + '#' +
                     [...area.querySelectorAll('.widget-html-content')].map(e => e.innerText).join('|');
  const state = {key: null, frame: null, before: snap()};
  window.__qlibLatency = state;
  const onKey = () => { if (state.key === null) state.key = performance.now(); };
  document.addEventListener('keydown', onKey, {capture: true, once: true});
  let last = state.before;
  const obs = new MutationObserver(async () => {   // the time of the LAST change: readout and figure both in
    const now = snap();
    if (state.key === null || now === last) return;
    last = now;
    await Promise.all(imgs().map(i => i.decode().catch(() => null)));   // the new PNG is on screen
    state.frame = performance.now();
  });
  obs.observe(area, {subtree: true, childList: true, attributes: true, characterData: true});
  setTimeout(() => obs.disconnect(), %d);
}
""" % (TIMEOUT_MS + 1000)


SELECT_JS = """
(sel, step) => {
  window.__qlibLatency.key = performance.now();
  sel.selectedIndex = (sel.selectedIndex + step + sel.options.length) % sel.options.length;
  sel.dispatchEvent(new Event('change', {bubbles: true}));
}
"""


def _presses(control, kind: str) -> list:
    """(element, key) for each press: a key name, or +1/-1 for the next/previous dropdown option."""
    half = PRESSES // 2
    if kind == "slider":
        h = control.query_selector(".noUi-handle")
        return [(h, "ArrowRight")] * half + [(h, "ArrowLeft")] * half
    if kind == "dropdown":   # headless Chromium's closed <select> ignores arrow keys: choose the next option
        sel = control.query_selector("select")
        return [(sel, +1)] * half + [(sel, -1)] * half
    if kind == "checkbox":
        return [(control.query_selector("input[type=checkbox]"), " ")] * PRESSES
    if kind in ("toggle", "radio"):   # press the buttons in turn, starting with one that is not active
        opts = control.query_selector_all("button" if kind == "toggle" else "input[type=radio]")
        return [(opts[(k + 1) % len(opts)], " ") for k in range(PRESSES)] if len(opts) > 1 else []
    return []


SETTLE_MS = 400   # no further change for this long: the update is complete


def _probe(page, control) -> tuple[list[float], int]:
    kind = _kind(control)
    presses = _presses(control, kind)
    times, unchanged = [], 0
    control.scroll_into_view_if_needed()
    if kind == "slider" and presses:
        presses[0][0].focus()
        presses[0][0].press("Home")
        page.wait_for_timeout(2000)   # let the jump to the first position render first
    for target, key in presses:
        target.focus()
        control.evaluate(ARM_JS)
        if isinstance(key, int):   # a dropdown choice, timed from the change like a key press
            target.evaluate(SELECT_JS, key)
        else:
            target.press(key)
        try:
            page.wait_for_function("() => window.__qlibLatency.frame !== null", timeout=TIMEOUT_MS)
            page.wait_for_timeout(SETTLE_MS)
            times.append(page.evaluate("() => window.__qlibLatency.frame - window.__qlibLatency.key"))
        except Exception:   # playwright's TimeoutError: nothing changed
            unchanged += 1
        page.wait_for_timeout(150)
    return times, unchanged


@pytest.mark.parametrize("notebook", notebook_paths(), ids=lambda p: p.stem)
def test_latency(notebook, lab, lab_page):
    page = lab_page.page
    _open(page, lab, notebook.name)
    _run_all(page, lab)
    rows = []
    for control in page.query_selector_all(CONTROL_SELECTOR):
        label = " ".join(control.evaluate(LABEL_JS).replace("\u200b", " ").split()) \
            or " ".join(control.inner_text().replace("\u200b", " ").split())   # a checkbox's label is on its right
        times, unchanged = _probe(page, control)
        rows.append({"notebook": notebook.stem, "control": label, "kind": _kind(control), "ms": times,
                     "no_change": unchanged})
    _close(page, lab)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    old = [r for r in old if r["notebook"] != notebook.stem] + rows
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(old, indent=1))
    for r in rows:
        ms = r["ms"]
        print(f"{r['notebook']:28s} {r['control'][:24]:24s} " + (
            f"median {statistics.median(ms):6.0f} ms, max {max(ms):6.0f} ms ({len(ms)} presses"
            f"{', %d without change' % r['no_change'] if r['no_change'] else ''})" if ms else "no change on any press"))
