"""Keep the previous / start / next links of every notebook in sync.

    python scripts/nav_links.py            # rewrite the navigation line of every notebook
    python scripts/nav_links.py --check    # exit 1 if a line is missing or out of date (CI)

Each ``notebooks/NN_*.ipynb`` gets one navigation line such as

    [← 02 Linear quantization](02_linear_quantization.ipynb) · [00 Start here](00_start_here.ipynb) · [04 Granularity →](04_granularity.ipynb)

(the link to 00 is left out where "previous" already is 00, and 00 itself has only
"next"). The labels are the short names of the README's notebook table (its links
``[Linear quantization](notebooks/02_linear_quantization.ipynb)``); a notebook missing
from that table is labelled from its title (the first ``# NN · Title: subtitle`` heading,
cut at the first colon or question mark). Adding or renaming a notebook needs no edit here. A navigation line is any markdown line made only of links to
``NN_*.ipynb`` notebooks, separators (``·``, ``|``) and at least one arrow; every such line
is rewritten. A notebook without one gets a new markdown cell ``---`` + line at the end.
``--check`` also reports links to notebooks that do not exist, in any markdown cell.
Only the markdown source changes: outputs and code cells are left as they are.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
NB_LINK = re.compile(r"\[([^\]]*)\]\((\d\d_[^)\s#]*\.ipynb)(#[^)\s]*)?\)")
SEPARATORS = set(" \t·|•-–—*_")
TITLE_PREFIX = re.compile(r"^\s*#\s+(\d\d)\s*[·.:\-–—]?\s*")
README_LINK = re.compile(r"\[([^\]]+)\]\((?:\./)?notebooks/(\d\d_[^)\s#]*\.ipynb)\)")


def readme_labels(readme: Path | None) -> dict[str, str]:
    """Short names from the README's links to notebooks: {"02_x.ipynb": "02 Linear quantization"}.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "README.md"
    >>> _ = f.write_text("| 02 | [Linear quantization](notebooks/02_linear_quantization.ipynb) | ... |")
    >>> readme_labels(f)
    {'02_linear_quantization.ipynb': '02 Linear quantization'}
    """
    if readme is None or not readme.exists():
        return {}
    labels = {}
    for text, name in README_LINK.findall(readme.read_text(encoding="utf-8")):
        text = text.strip()
        if not re.match(r"^\d\d\b", text):
            text = f"{name[:2]} {text}"
        labels.setdefault(name, text)
    return labels


def notebooks(src: Path) -> list[Path]:
    return sorted(src.glob(NOTEBOOK_GLOB))


def short_label(title: str, stem: str) -> str:
    """Navigation label from a notebook title, e.g. ``02 Linear quantization``.

    >>> short_label("# 02 · Linear quantization: Q = round(R / S) + Z", "02_linear_quantization")
    '02 Linear quantization'
    >>> short_label("# 01 · Why quantize? fp32 vs int8", "01_why_quantize")
    '01 Why quantize'
    >>> short_label("", "05_snpe_encodings")
    '05 Snpe encodings'
    """
    number = stem[:2]
    text = TITLE_PREFIX.sub("", title.strip()) if title.strip().startswith("#") else ""
    text = re.split(r"[:?!]\s|[:?!]$| — | \(", text, maxsplit=1)[0].strip()
    if not text:
        words = stem[3:].replace("_", " ").strip()
        text = words[:1].upper() + words[1:]
    return f"{number} {text}"


def title_of(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.split("\n"):
                if line.startswith("# "):
                    return line
            return ""
    return ""


def nav_line(names: list[str], labels: dict[str, str], name: str) -> str:
    """The navigation line of notebook ``name`` among the sorted ``names``.

    >>> names = ["00_a.ipynb", "01_b.ipynb", "02_c.ipynb"]
    >>> labels = {"00_a.ipynb": "00 A", "01_b.ipynb": "01 B", "02_c.ipynb": "02 C"}
    >>> nav_line(names, labels, "00_a.ipynb")
    '[01 B →](01_b.ipynb)'
    >>> nav_line(names, labels, "01_b.ipynb")
    '[← 00 A](00_a.ipynb) · [02 C →](02_c.ipynb)'
    >>> nav_line(names, labels, "02_c.ipynb")
    '[← 01 B](01_b.ipynb) · [00 A](00_a.ipynb)'
    """
    i = names.index(name)
    home = names[0]
    parts = []
    if i > 0:
        parts.append(f"[← {labels[names[i - 1]]}]({names[i - 1]})")
    if name != home and names[i - 1] != home:
        parts.append(f"[{labels[home]}]({home})")
    if i + 1 < len(names):
        parts.append(f"[{labels[names[i + 1]]} →]({names[i + 1]})")
    return " · ".join(parts)


def is_nav_line(line: str) -> bool:
    """True for a line made only of notebook links and separators, with an arrow.

    >>> is_nav_line("[← 01 B](01_b.ipynb) · [00 A](00_a.ipynb) · [03 C →](03_c.ipynb)")
    True
    >>> is_nav_line("See [02](02_linear_quantization.ipynb) for the formula →")
    False
    >>> is_nav_line("[00 Start here](00_start_here.ipynb)")
    False
    """
    links = NB_LINK.findall(line)
    if not links or ("←" not in line and "→" not in line):
        return False
    rest = NB_LINK.sub("", line)
    return set(rest) <= SEPARATORS


def broken_links(nb, existing: set[str]) -> list[str]:
    bad = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            bad += [target for _, target, _ in NB_LINK.findall(cell.source) if target not in existing]
    return bad


def sync(nb, line: str) -> tuple[object, bool]:
    """Rewrite every navigation line of ``nb`` to ``line`` (or append one); (nb, changed)."""
    found, changed = False, False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.split("\n")
        for k, old in enumerate(lines):
            if is_nav_line(old):
                found = True
                if old.strip() != line:
                    lines[k] = line
                    changed = True
        cell.source = "\n".join(lines)
    if not found and line:
        nb.cells.append(nbformat.v4.new_markdown_cell("---\n" + line))
        changed = True
    return nb, changed


def plan(src: Path, readme: Path | None = None) -> tuple[list[str], dict[str, str]]:
    paths = notebooks(src)
    names = [p.name for p in paths]
    from_readme = readme_labels(readme)
    labels = {p.name: from_readme.get(p.name) or short_label(title_of(nbformat.read(p, as_version=4)), p.stem)
              for p in paths}
    return names, labels


def check(src: Path, readme: Path | None = None) -> list[str]:
    names, labels = plan(src, readme)
    problems = []
    for name in names:
        nb = nbformat.read(src / name, as_version=4)
        expected = nav_line(names, labels, name)
        lines = [ln.strip() for c in nb.cells if c.cell_type == "markdown"
                 for ln in c.source.split("\n") if is_nav_line(ln)]
        if expected and not lines:
            problems.append(f"{name}: no navigation line (expected: {expected})")
        for ln in lines:
            if ln != expected:
                problems.append(f"{name}: navigation line out of date:\n    has      {ln}\n    expected {expected}")
        for target in broken_links(nb, set(names)):
            problems.append(f"{name}: link to a notebook that does not exist: {target}")
    return problems


def write(src: Path, readme: Path | None = None) -> list[str]:
    names, labels = plan(src, readme)
    changed = []
    for name in names:
        path = src / name
        nb = nbformat.read(path, as_version=4)
        nb, did = sync(nb, nav_line(names, labels, name))
        if did:
            nbformat.write(nb, path)
            changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only verify, exit 1 if something is out of date")
    ap.add_argument("--src", type=Path, default=ROOT / "notebooks", help="notebook folder (default notebooks/)")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md",
                    help="file whose [Name](notebooks/NN_x.ipynb) links give the labels (default README.md)")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.src, args.readme)
        print("\n".join(problems) if problems else f"navigation links in sync ({len(notebooks(args.src))} notebooks)")
        if problems:
            print("run `python scripts/nav_links.py` to fix the navigation lines", file=sys.stderr)
        return 1 if problems else 0
    changed = write(args.src, args.readme)
    for name in changed:
        print(f"updated {name}")
    print(f"{len(changed)} notebook(s) updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
