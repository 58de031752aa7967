"""Export the course to static HTML (one page per notebook plus an index) with nbconvert.

    python scripts/build_html.py                 # -> site/index.html, site/NN_name.html
    python scripts/build_html.py --out /tmp/site

The pages show the committed outputs: figures are embedded in the HTML as data URIs (no
image files to copy), links between notebooks point to the HTML pages, and each live
widget is replaced by a short note (its static figure sits right above it in every
notebook), so no widget JavaScript is needed. ``site/`` is git-ignored; publish it
anywhere (GitHub Pages, a course web server) or open ``site/index.html`` locally.
Formulas are typeset by MathJax, which the pages load from a CDN when online.
"""

from __future__ import annotations

import argparse
import copy
import html
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
NB_LINK = re.compile(r"\]\((\d\d_[^)\s#]*)\.ipynb(#[^)\s]*)?\)")
WIDGET_NOTE = ('<div class="qlib-widget-note" style="border:1px dashed #999;padding:6px 10px;color:#555;'
               'font-style:italic">Interactive widget: open this notebook in JupyterLab or on Binder to use '
               'the controls. The static figure above shows the same plot.</div>')


def title_of(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.split("\n"):
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def web_notebook(nb):
    """A copy of ``nb`` ready for static HTML (``nb`` itself is not modified).

    >>> nb = nbformat.v4.new_notebook()
    >>> nb.cells = [nbformat.v4.new_markdown_cell("[next](03_symmetric_asymmetric.ipynb)")]
    >>> web_notebook(nb).cells[0].source
    '[next](03_symmetric_asymmetric.html)'
    """
    out = copy.deepcopy(nb)
    out.metadata.pop("widgets", None)
    for cell in out.cells:
        if cell.cell_type == "markdown":
            cell.source = NB_LINK.sub(lambda m: f"]({m.group(1)}.html{m.group(2) or ''})", cell.source)
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if WIDGET_MIME in data:
                    output["data"] = {"text/html": WIDGET_NOTE, "text/plain": "(interactive widget)"}
    return out


def index_page(entries: list[tuple[str, str, str]]) -> str:
    items = "\n".join(f'    <li><a href="{html.escape(href)}">{html.escape(title)}</a>'
                      f'{"<br><small>" + html.escape(goal) + "</small>" if goal else ""}</li>'
                      for href, title, goal in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model quantization, hands-on</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
 li {{ margin: 0.6rem 0; }} small {{ color: #555; }}
</style>
</head>
<body>
<h1>Model quantization, hands-on</h1>
<p>An interactive course on neural-network quantization, from the formula to an int8 model running
on ONNX Runtime. These pages are a read-only export with the figures of the last run; run the
notebooks in JupyterLab (or on Binder) to move the sliders and do the exercises.</p>
<ol start="0">
{items}
</ol>
</body>
</html>
"""


def _plain(text: str) -> str:
    return re.sub(r"[*`]", "", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)).strip()


def summary_of(nb, limit: int = 220) -> str:
    """One line for the index page: the notebook's goals, else its first sentence.

    >>> nb = nbformat.v4.new_notebook()
    >>> nb.cells = [nbformat.v4.new_markdown_cell("# 01 · T\\n\\nIn this notebook you will:\\n* count **bytes**\\n* see `int8`")]
    >>> summary_of(nb)
    'count bytes; see int8'
    """
    for cell in nb.cells[:3]:
        if cell.cell_type != "markdown":
            continue
        raw = cell.source.split("\n")
        lines = [ln.strip() for ln in raw]
        text = ""
        for k, line in enumerate(lines):
            if line.lower().startswith("in this notebook you will"):
                goals = []
                for item, orig in zip(lines[k + 1:], raw[k + 1:]):
                    m = re.match(r"^(?:[*+-]|\d+[.)])\s+(.*)", item)
                    if m:
                        goals.append(m.group(1))
                    elif item and goals and orig[:1].isspace():
                        goals[-1] += " " + item      # a goal wrapped onto the next line
                    elif item or goals:
                        break
                text = "; ".join(_plain(g).rstrip(".;") for g in goals[:2])
                break
        else:
            text = next((_plain(ln) for ln in lines if ln and not ln.startswith(("#", "*", "-", "|", "<", "!", ">"))), "")
        if text:
            return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."
    return ""


def build(src: Path, out: Path) -> list[Path]:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    out.mkdir(parents=True, exist_ok=True)
    written, entries = [], []
    paths = sorted(src.glob(NOTEBOOK_GLOB))
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        title = title_of(nb, path.stem)
        nb.metadata["title"] = title
        body, _ = exporter.from_notebook_node(web_notebook(nb), resources={"metadata": {"name": title}})
        target = out / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
        entries.append((target.name, title, summary_of(nb)))
    keep = {p.name for p in written}
    for stale in out.glob("[0-9][0-9]_*.html"):
        if stale.name not in keep:
            stale.unlink()
    index = out / "index.html"
    index.write_text(index_page(entries), encoding="utf-8")
    return written + [index]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=ROOT / "notebooks", help="notebook folder (default notebooks/)")
    ap.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (default site/)")
    args = ap.parse_args(argv)
    written = build(args.src, args.out)
    for p in written:
        print(f"wrote {p}  ({p.stat().st_size / 1e6:.2f} MB)")
    if len(written) == 1:
        print("no notebooks found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
