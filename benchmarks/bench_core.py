"""Core speed benchmark: prints ratios, never asserts (timings are machine-dependent).

    python benchmarks/bench_core.py            # quantize/fake_quantize, widget callbacks, course run time
    python benchmarks/bench_core.py --quick    # skip executing the notebooks

Targets (course design §8): qlib.fake_quantize at least as fast as torch.fake_quantize_per_tensor_affine,
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


def bench_callbacks():
    """Every widget module may define ``bench_callbacks()`` -> {name: zero-argument callable}
    that runs one slider move end to end (compute + draw + PNG render, as the browser gets it)."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    print("\nwidget callbacks (compute + draw + PNG), worst of 3 runs each, target <= 100 ms")
    worst = 0.0
    for path in sorted((ROOT / "qlib" / "widgets").glob("*.py")):
        if path.name.startswith("_"):
            continue
        mod = importlib.import_module(f"qlib.widgets.{path.stem}")
        if not hasattr(mod, "bench_callbacks"):
            print(f"  {path.stem:12s} (no bench_callbacks)")
            continue
        for name, cb in mod.bench_callbacks().items():
            def once():
                fig = cb()
                if fig is not None:
                    fig.savefig(io.BytesIO(), format="png")
                    plt.close(fig)
            once()  # warm caches, as the notebook did before the slider moved
            t = max(timeit.repeat(once, number=1, repeat=3))
            worst = max(worst, t)
            print(f"  {path.stem:12s} {name:40s} {t * 1e3:7.1f} ms")
    print(f"  worst callback: {worst * 1e3:.0f} ms")


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
