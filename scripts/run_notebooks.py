"""Re-execute notebooks in place, each top to bottom in a fresh kernel.

    python scripts/run_notebooks.py                 # every notebooks/NN_*.ipynb
    python scripts/run_notebooks.py notebooks/02_linear_quantization.ipynb
    python scripts/run_notebooks.py --no-write      # execute only (benchmarks, checks)

Outputs are written back into the files (learners read them on the web); the time each
notebook took is printed (machine-dependent, never stored). Exits non-zero if a cell
fails that is not tagged ``raises-exception``.

Widget outputs are frozen (:func:`freeze_widgets`): each becomes a plain image of the widget's
last frame (plus its readout), and no widget state is stored. A widget output that refers to
saved state breaks as soon as JupyterLab saves the notebook without that state (it shows
"Error displaying widget: model not found"); a frozen frame cannot break, and running the
cell brings the live widget back.
"""

from __future__ import annotations

import base64
import glob
import html
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
FROZEN_NOTE = ("<p style=\"color:#666;font-style:italic;margin:2px 0\">&#9654; Run this cell to use the "
               "controls; below is the widget's last frame.</p>")


def _models_under(state: dict, model_id: str) -> list[dict]:
    """The widget models reachable from ``model_id`` (children first to last, depth first)."""
    out, todo, seen = [], [model_id], set()
    while todo:
        mid = todo.pop(0)
        if mid in seen or mid not in state:
            continue
        seen.add(mid)
        model = state[mid]
        out.append(model)
        kids = model.get("state", {}).get("children", [])
        todo[:0] = [k.removeprefix("IPY_MODEL_") for k in kids if isinstance(k, str)]
    return out


def _image_bytes(model: dict) -> bytes | None:
    for buf in model.get("buffers", []):
        if buf.get("path") == ["value"] and buf.get("encoding") == "base64":
            return base64.b64decode(buf["data"])
    return None


def freeze_widgets(nb) -> int:
    """Replace every widget output of ``nb`` by its last frame and drop the widget state.

    The frame is each ``Image`` model's PNG found under the widget (in order) with the text of
    its ``HTML`` models (the readout) above it; a widget without an image keeps only the note.
    Returns how many outputs were frozen.

    >>> import nbformat
    >>> png = base64.b64encode(b"\\x89PNG fake").decode()
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("show()")])
    >>> nb.metadata["widgets"] = {WIDGET_STATE: {"state": {
    ...     "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_txt", "IPY_MODEL_img"]}},
    ...     "txt": {"model_name": "HTMLModel", "state": {"value": "<b>S = 0.1</b>"}},
    ...     "img": {"model_name": "ImageModel", "state": {"format": "png"},
    ...             "buffers": [{"path": ["value"], "encoding": "base64", "data": png}]}}}}
    >>> nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", execution_count=1,
    ...     data={WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0}, "text/plain": "VBox()"})]
    >>> freeze_widgets(nb), "widgets" in nb.metadata
    (1, False)
    >>> note, frame = nb.cells[0].outputs         # the readout (with a note), then the frame
    >>> note.output_type, "S = 0.1" in note.data["text/html"], frame.data["image/png"] == png
    ('display_data', True, True)
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    frozen = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        new_outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                new_outputs.append(out)
                continue
            frozen += 1
            models = _models_under(state, view.get("model_id", ""))
            texts = [m["state"].get("value", "") for m in models if m.get("model_name") == "HTMLModel"]
            images = [b for m in models if m.get("model_name") == "ImageModel" for b in [_image_bytes(m)] if b]
            note = FROZEN_NOTE if images else FROZEN_NOTE.replace("; below is the widget's last frame", "")
            new_outputs.append(nbformat.v4.new_output(
                "display_data", data={"text/html": note + "".join(texts),
                                      "text/plain": "(interactive widget: run this cell to use it)"}))
            for png in images:
                new_outputs.append(nbformat.v4.new_output(
                    "display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "<frame>"}))
        cell.outputs = new_outputs
    nb.metadata.pop("widgets", None)
    return frozen


def run(path: Path, timeout: int = 600, write: bool = True) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", shutdown_kernel="immediate",  # no 3 s wait
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        dt = time.perf_counter() - t0
    finally:
        if env_backup is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backup
    # Drop the per-run timing metadata so re-running does not create noisy diffs.
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    freeze_widgets(nb)
    if write:
        nbformat.write(nb, path)
    return dt


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    write = "--no-write" not in argv
    argv = [a for a in argv if a != "--no-write"]
    paths = [Path(p) for p in argv] or [Path(p) for p in sorted(glob.glob(str(ROOT / "notebooks" / "[0-9][0-9]_*.ipynb")))]
    total = 0.0
    for p in paths:
        try:
            dt = run(p, write=write)
        except Exception as exc:  # show which notebook broke, then stop
            print(f"FAILED {p.name}: {exc}", file=sys.stderr)
            return 1
        total += dt
        print(f"{p.name:40s} {dt:6.1f} s")
    print(f"{'total':40s} {total:6.1f} s  (machine-dependent)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
