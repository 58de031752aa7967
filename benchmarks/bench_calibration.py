"""Calibration benchmark: prints timings and ratios, never asserts (timings are machine-dependent).

    python benchmarks/bench_calibration.py

Targets:
* qlib's KL (TensorRT method, 2048-bin |x| histogram) <= 20 ms and >= 20x faster than ONNX Runtime's
  ``HistogramCollector`` entropy search (a different, signed-histogram variant);
* qlib's KL threshold equals a plain loop-by-loop implementation of NVIDIA's rule (candidates from
  start_bin = 128 bins, whatever the bit width) -- the reference lives in tests/test_observers.py;
* notebook 06's widget callback <= 100 ms.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import time
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qlib  # noqa: E402
from qlib.observers import EntropyObserver, MSEObserver, PercentileObserver, _GROUP_EDGES, kl_threshold  # noqa: E402


def best(fn, repeat=7):
    fn()
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def loop_reference():
    spec = importlib.util.spec_from_file_location("test_observers", ROOT / "tests" / "test_observers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.kl_threshold_loop


def ort_entropy(x, num_bins=2048, num_quantized_bins=128):
    from onnxruntime.quantization.calibrate import HistogramCollector

    col = HistogramCollector(method="entropy", symmetric=False, num_bins=num_bins,
                             num_quantized_bins=num_quantized_bins, percentile=99.999, scenario="same")
    with contextlib.redirect_stdout(io.StringIO()):
        col.collect({"x": x})
    hist = col.get_histogram_dict()["x"]
    t0 = time.perf_counter()
    lo, hi = col.get_entropy_threshold(hist, num_quantized_bins)
    return float(lo), float(hi), time.perf_counter() - t0


def main():
    rng = np.random.default_rng(0)
    data = {
        "gaussian N(0,1)": rng.normal(size=1_000_000).astype(np.float32),
        "ReLU(N(0,1))": np.maximum(rng.normal(size=1_000_000), 0).astype(np.float32),
        "laplace": rng.laplace(size=1_000_000).astype(np.float32),
    }
    ref = loop_reference()
    print("KL / entropy calibration, 2048 bins, 8 bits")
    print(f"{'data':18s} {'qlib ms':>8s} {'ORT ms':>8s} {'ratio':>7s} {'T qlib':>8s} {'T loop':>8s} "
          f"{'bins off':>8s} {'T ORT':>15s}")
    for name, x in data.items():
        obs = EntropyObserver(bits=8).observe(x)
        h, e, unsigned = obs.hist.counts, obs.hist.edges, obs.unsigned_grid
        _GROUP_EDGES.clear()  # the KL group tables (byte-bounded LRU cache)
        t0 = time.perf_counter()
        kl_threshold(h, e, 8, unsigned, start_bin=128)
        t_cold = time.perf_counter() - t0  # includes building the (cached) group table
        t_qlib = best(lambda: kl_threshold(h, e, 8, unsigned))
        thr = kl_threshold(h, e, 8, unsigned, start_bin=128)
        t0 = time.perf_counter()
        thr_loop, _ = ref(h, e, 8, unsigned, start_bin=128)
        t_loop = time.perf_counter() - t0
        lo, hi, t_ort = ort_entropy(x)
        off = abs(thr - thr_loop) / obs.hist.width
        print(f"{name:18s} {t_qlib * 1e3:8.2f} {t_ort * 1e3:8.1f} {t_ort / t_qlib:6.0f}x {thr:8.4f} {thr_loop:8.4f} "
              f"{off:8.1f} [{lo:6.3f}, {hi:6.3f}]   (first call {t_cold * 1e3:.1f} ms; loop reference {t_loop:.1f} s)")
    print("\nWhy the thresholds differ: ORT histograms the signed values over [-max|x|, max|x|] (so half the")
    print("bins per side), merges the kept bins into 128 levels for BOTH signs, spreads counts as int64,")
    print("smooths P and Q with eps and takes the first minimiser; TensorRT/qlib uses |x| in 2048 bins,")
    print("removes the zero spike, uses 128 (signed) or 256 (unsigned) levels per side, tries every threshold")
    print("from bin 128 on (NVIDIA's start_bin) and takes the last minimiser.")

    x = data["ReLU(N(0,1))"]
    print("\nOther calibrators on ReLU(N(0,1)), 1e6 values:")
    for label, obs in [("percentile 99.99", PercentileObserver(bits=8)), ("MSE", MSEObserver(bits=8)),
                       ("KL 4-bit", EntropyObserver(bits=4))]:
        obs.observe(x)

        def search(obs=obs):
            obs._cache.clear()  # time the search itself, not the cache
            return obs.threshold()

        t = best(search)
        print(f"  {label:18s} threshold {obs.threshold():.4f}   {t * 1e3:.2f} ms")
    t_obs = best(lambda: EntropyObserver(bits=8).observe(x), repeat=3)
    print(f"  collecting the 2048-bin histogram of 1e6 values: {t_obs * 1e3:.1f} ms")

    from qlib.widgets import calibration as wc

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    state = wc.precompute()
    first, again = [], []
    for cal in wc.CALIBRATOR_CHOICES:
        for bits in (2, 4, 8):
            for pct in (99.0, 99.999):
                for times in (first, again):  # first visit computes and caches, the second only redraws
                    t0 = time.perf_counter()
                    fig = wc.draw(state, calibrator=cal, bits=bits, percentile=pct)
                    wc.readout(state, calibrator=cal, bits=bits, percentile=pct)
                    fig.canvas.draw()  # render, as the notebook does
                    times.append(time.perf_counter() - t0)
                    plt.close(fig)
    for label, times in (("first visit of a setting", first), ("revisit (cached)", again)):
        print(f"Notebook 06 widget callback, {label}: median {np.median(times) * 1e3:.0f} ms, "
              f"max {max(times) * 1e3:.0f} ms over {len(times)} settings (target <= 100 ms)")
    print(f"qlib {qlib.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
