"""AdaRound benchmark: time per layer of the digits MLP, prints timings and ratios, never asserts.

    python benchmarks/bench_adaround.py

Target (issue 15): notebook 06 stays <= 15 s, so AdaRound of the MLP's 3 layers at one bit width must
take well under a second or two (qlib's default: 1 000 Adam iterations on mini-batches of 64 of 256
calibration digits). Also prints the per-iteration cost, one bias-correction pass, and AIMET's
settings (10 000 iterations, lr 1e-3, lambda 0.01) for comparison.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qlib  # noqa: E402
from qlib.adaround import adaround_layer, rtn_mlp  # noqa: E402
from qlib.bias_correction import bias_correct_mlp  # noqa: E402


def layer_inputs(model, X):
    acts = model.activations(X)
    return {"fc1": acts["input"], "fc2": acts["relu1"], "fc3": acts["relu2"]}


def main():
    d = qlib.load_digits()
    m = qlib.reference_model()
    X = d.X_train[:256]
    xs = layer_inputs(m, X)
    print(f"{'layer':6s} {'shape':>10s} {'bits':>4s} {'iters':>6s} {'time (s)':>9s} {'us/iter':>8s} "
          f"{'loss RTN':>9s} {'loss AdaRound':>13s} {'ratio':>6s}")
    for bits in (2, 4):
        for lin in m.linear_layers:
            for kw in ({}, {"iterations": 10_000, "lr": 1e-3, "reg": 0.01}):
                it = kw.get("iterations", 1000)
                t0 = time.perf_counter()
                r = adaround_layer(lin.W, xs[lin.name], bits=bits, **kw)
                dt = time.perf_counter() - t0
                shape = f"{lin.out_features}x{lin.in_features}"
                print(f"{lin.name:6s} {shape:>10s} {bits:4d} {it:6d} {dt:9.3f} {1e6 * dt / it:8.1f} "
                      f"{r.loss_rtn:9.3f} {r.loss_adaround:13.3f} {r.loss_rtn / max(r.loss_adaround, 1e-12):6.1f}x")
    t0 = time.perf_counter()
    q, _ = qlib.adaround.adaround_mlp(m, X, bits=2)
    t_mlp = time.perf_counter() - t0
    r2 = rtn_mlp(m, bits=2)
    t0 = time.perf_counter()
    for _ in range(20):
        bias_correct_mlp(m, r2, X)
    t_bc = (time.perf_counter() - t0) / 20
    print(f"\nadaround_mlp, W2, 3 layers (inputs from the quantized layers): {t_mlp:.3f} s "
          f"({t_mlp / 3:.3f} s per layer); test accuracy {100 * q.accuracy(d.X_test, d.y_test):.1f} %")
    print(f"bias_correct_mlp on 256 digits: {1e3 * t_bc:.2f} ms")
    print("(timings are machine-dependent)")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
