"""Which printed numbers would change on another CPU? Re-run notebooks with a different BLAS kernel.

    python scripts/machine_check.py                          # every notebook, as on an AVX2 laptop
    python scripts/machine_check.py --coretype Sandybridge --numpy-disable "X86_V4 X86_V3" notebooks/07_qat_ste.ipynb

numpy's OpenBLAS picks its float32 matrix-product kernel from the CPU (DYNAMIC_ARCH), and numpy its
SIMD loops (sums, divisions); forcing others (``OPENBLAS_CORETYPE``, ``NPY_DISABLE_CPU_FEATURES``)
sums in another order, as a learner's laptop would (default: Haswell kernels, no AVX-512 loops). Each
notebook is executed (nothing is written) and every cell whose text output differs from the committed
one is listed, marked ``labelled`` when its source, its output or the markdown cell just above says
"machine-dependent" (docs/conventions.md §6), ``UNLABELLED`` otherwise (always for a cell pinned with
``# NBVAL_CHECK_OUTPUT``: its output must not depend on the CPU). Exits 1 if an unlabelled cell differs. (ONNX Runtime's int8 kernels, with or without VNNI, cannot be switched this way.)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LABEL = "machine-dependent"


def text_of(cell) -> str:
    """The text a code cell printed (streams, text/plain results, errors), in order."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append("".join(out.get("text", "")))
        elif "data" in out and "text/plain" in out["data"]:
            data = out["data"]
            live_or_frozen_widget = ("application/vnd.jupyter.widget-view+json" in data
                                     or "".join(data["text/plain"]).startswith(("(interactive widget", "<frame>")))
            if "image/png" not in data and not live_or_frozen_widget:
                parts.append("".join(data["text/plain"]))
    return "".join(parts)


def labelled(nb, i: int) -> bool:
    """Whether cell ``i`` says its output is machine-dependent (and is not pinned by nbval)."""
    cell = nb.cells[i]
    if "NBVAL_CHECK_OUTPUT" in cell.source:
        return False   # pinned output must not depend on the CPU, whatever the label says
    above = next((c.source for c in reversed(nb.cells[:i]) if c.cell_type == "markdown"), "")
    return LABEL in cell.source or LABEL in text_of(cell) or LABEL in above


def differing_cells(path: Path, coretype: str, numpy_disable: str = "") -> list[tuple[int, bool]]:
    """``(cell index, labelled)`` of the cells whose text output changes under ``coretype``
    (and with numpy's ``numpy_disable`` SIMD targets switched off)."""
    committed = nbformat.read(path, as_version=4)
    nb = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "MPLBACKEND", "NPY_DISABLE_CPU_FEATURES")}
    os.environ["OPENBLAS_CORETYPE"] = coretype
    if numpy_disable:
        os.environ["NPY_DISABLE_CPU_FEATURES"] = numpy_disable
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return [(i, labelled(committed, i)) for i, (a, b) in enumerate(zip(committed.cells, nb.cells))
            if a.cell_type == "code" and text_of(a) != text_of(b)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coretype", default="Haswell", help="OPENBLAS_CORETYPE to force (default Haswell)")
    ap.add_argument("--numpy-disable", default="X86_V4 AVX512_ICL AVX512_SPR",
                    help="NPY_DISABLE_CPU_FEATURES (default: numpy's AVX-512 loops off; '' keeps them)")
    ap.add_argument("paths", nargs="*", type=Path)
    args = ap.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    bad = 0
    for path in paths:
        diffs = differing_cells(path, args.coretype, args.numpy_disable)
        bad += sum(not ok for _, ok in diffs)
        listed = ", ".join(f"{i} ({'labelled' if ok else 'UNLABELLED'})" for i, ok in diffs) or "none"
        print(f"{path.name:40s} cells that change: {listed}")
    print(f"{bad} unlabelled cell(s) change with OPENBLAS_CORETYPE={args.coretype}, "
          f"NPY_DISABLE_CPU_FEATURES={args.numpy_disable!r}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
