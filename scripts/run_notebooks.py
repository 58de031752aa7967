"""Re-execute notebooks in place, each top to bottom in a fresh kernel.

    python scripts/run_notebooks.py                 # every notebooks/NN_*.ipynb
    python scripts/run_notebooks.py notebooks/02_linear_quantization.ipynb
    python scripts/run_notebooks.py --no-write      # execute only (benchmarks, checks)

Outputs are written back into the files (learners read them on the web); the time each
notebook took is printed (machine-dependent, never stored). Exits non-zero if a cell
fails that is not tagged ``raises-exception``.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, timeout: int = 600, write: bool = True) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
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
    if write:
        nbformat.write(nb, path)
    return dt


def main(argv: list[str]) -> int:
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
