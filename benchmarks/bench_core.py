"""Core speed benchmark: prints ratios, never asserts (timings are machine-dependent).

    python benchmarks/bench_core.py            # quantize/fake_quantize, widget callbacks, course run time
    python benchmarks/bench_core.py --quick    # skip executing the notebooks in fresh kernels

Targets (docs/conventions.md §5): qlib.fake_quantize at least as fast as torch.fake_quantize_per_tensor_affine,
qlib.quantize within 3x of torch.quantize_per_tensor (both single-threaded, 16 M float32), every widget
callback <= 100 ms, the whole course <= 60 s.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import qlib  # noqa: E402


def best(fn, repeat=5):
    fn()  # warm up
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def bench_quantize(n=16 * 2**20):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, n).astype(np.float32)
    qp = qlib.qparams_from_range(float(x.min()), float(x.max()), bits=8)
    S, Z = np.float32(qp.scale), qp.zero_point
    rows = {
        "qlib.quantize": best(lambda: qlib.quantize(x, qp)),
        "numpy one-liner quantize": best(lambda: np.clip(np.rint(x / S) + Z, 0, 255).astype(np.uint8)),
        "qlib.fake_quantize": best(lambda: qlib.fake_quantize(x, qp)),
        "numpy one-liner fake_quantize": best(lambda: ((np.clip(np.rint(x / S) + Z, 0, 255) - Z) * S)),
    }
    try:
        import torch
    except ImportError:
        torch = None
        print("torch not importable: skipping the torch comparison (pip install torch to include it)")
    if torch is not None:
        torch.set_num_threads(1)
        xt = torch.from_numpy(x)
        rows["torch.quantize_per_tensor"] = best(lambda: torch.quantize_per_tensor(xt, float(qp.scale), Z, torch.quint8))
        rows["torch.fake_quantize_per_tensor_affine"] = best(
            lambda: torch.fake_quantize_per_tensor_affine(xt, float(qp.scale), Z, 0, 255))
    print(f"\n16 M float32 values, best of 5 (numpy threads: whatever numpy uses; torch: 1 thread)")
    for name, t in rows.items():
        print(f"  {name:40s} {t * 1e3:8.1f} ms")
    print(f"  ratio qlib.quantize / numpy one-liner           {rows['qlib.quantize'] / rows['numpy one-liner quantize']:.2f}")
    print(f"  ratio qlib.fake_quantize / numpy one-liner      {rows['qlib.fake_quantize'] / rows['numpy one-liner fake_quantize']:.2f}")
    if torch is not None:
        r_q = rows["qlib.quantize"] / rows["torch.quantize_per_tensor"]
        r_fq = rows["qlib.fake_quantize"] / rows["torch.fake_quantize_per_tensor_affine"]
        print(f"  ratio qlib.quantize / torch.quantize_per_tensor  {r_q:.2f}   (target <= 3)")
        print(f"  ratio qlib.fake_quantize / torch.fake_quantize   {r_fq:.2f}   (target <= 1)")


def _run_cells_collect_widgets(path: Path) -> list:
    """Execute a notebook's code cells in this process (as the kernel would, skipping cells tagged
    raises-exception) and return the widgets that cells display as their last expression."""
    import ast
    import contextlib
    import io

    import ipywidgets
    import nbformat

    nb = nbformat.read(path, as_version=4)
    ns: dict = {"__name__": "__main__"}
    found = []
    old = os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in nb.cells:
                if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
                    continue
                tree = ast.parse(cell.source)
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                exec(compile(tree, path.name, "exec"), ns)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), path.name, "eval"), ns)
                    if isinstance(value, ipywidgets.Widget):
                        found.append(value)
    finally:
        os.chdir(old)
    return found


def _controls(widget) -> list:
    """Sliders, dropdowns, toggles... inside a widget box (depth first)."""
    import ipywidgets

    out = []
    if isinstance(widget, (ipywidgets.widgets.widget_int._Int, ipywidgets.widgets.widget_float._Float,
                           ipywidgets.widgets.widget_selection._Selection, ipywidgets.Checkbox,
                           ipywidgets.ToggleButton)):
        out.append(widget)
    for child in getattr(widget, "children", ()):
        out.extend(_controls(child))
    return out


def _extremes(control) -> list:
    import ipywidgets

    if isinstance(control, ipywidgets.widgets.widget_selection._Selection):
        values = [v for _, v in control._options_full] if hasattr(control, "_options_full") else list(control.options)
        return [values[0], values[-1]] if values else []
    if isinstance(control, (ipywidgets.Checkbox, ipywidgets.ToggleButton)):
        return [not control.value, control.value]
    if hasattr(control, "min") and hasattr(control, "max"):
        return [control.min, control.max]
    return []


def bench_callbacks():
    """Every live widget of every notebook: each control moved to both ends; the observer runs
    synchronously (compute + draw + PNG, exactly what the browser receives), so it is timed."""
    import matplotlib

    matplotlib.use("Agg")
    print("\nwidget callbacks: every control of every notebook's live widget moved to both ends")
    print("(time = compute + draw + PNG render of one move; target <= 100 ms)")
    worst_all = 0.0
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        widgets = _run_cells_collect_widgets(path)
        for widget in widgets:
            for control in _controls(widget):
                start = control.value
                times = []
                for value in _extremes(control) + [start]:
                    if value == control.value:
                        continue
                    t0 = time.perf_counter()
                    control.value = value
                    times.append(time.perf_counter() - t0)
                if times:
                    worst_all = max(worst_all, max(times))
                    name = (control.description or type(control).__name__)[:24]
                    print(f"  {path.stem[:26]:26s} {name:24s} median {np.median(times) * 1e3:6.0f} ms, "
                          f"worst {max(times) * 1e3:6.0f} ms")
    print(f"  worst move overall: {worst_all * 1e3:.0f} ms")


def bench_course():
    import run_notebooks

    print("\nexecuting every notebook in a fresh kernel (outputs not written):")
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    total = 0.0
    for p in paths:
        dt = run_notebooks.run(p, write=False)
        total += dt
        print(f"  {p.name:40s} {dt:6.1f} s")
    print(f"  whole course: {total:.1f} s (target <= 60 s)")


if __name__ == "__main__":
    print(f"machine: {os.cpu_count()} CPUs, numpy {np.__version__}")
    bench_quantize()
    bench_callbacks()
    if "--quick" not in sys.argv:
        bench_course()
