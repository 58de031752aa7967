"""fp32 vs int8 latency on ONNX Runtime (CPU, single thread): the digits MLP and a wider MLP.

    python benchmarks/bench_ort.py            # prints a table; timings are machine-dependent

The digits model (64-128-64-10, 17k weights) is tiny: int8 saves little there, because the
Quantize/Dequantize steps and per-kernel overheads weigh as much as the matrix products.
A wider MLP (1024-1024-1024-10, random weights, same PTQ path) shows where int8 kernels pay off.
Both int8 exports are measured: int8 weights (u8s8 kernels; they can saturate on x86 without
VNNI) and the same weights stored as uint8 with zero point 128 (u8u8 kernels). ORT's optimized
graph is checked for integer kernels first, so the int8 numbers really are integer kernels.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import qlib
from qlib import export, ptq
from qlib.nn import MLP


def best_ms(fn, repeat: int, number: int) -> float:
    """Best of ``repeat`` timings of ``number`` calls, in ms per call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return 1e3 * best


def wide_model(width: int = 1024, seed: int = 0) -> MLP:
    """A wider MLP with random (He-initialised) weights and small random biases, input 64 like the digits."""
    m = MLP(sizes=(64, width, width, 10), seed=seed)
    rng = np.random.default_rng(seed)
    for lin in m.linear_layers:
        lin.b = rng.normal(0, 0.01, lin.out_features).astype(np.float32)
    return m


def bench(name: str, model, qm, X: np.ndarray, workdir: Path, batches=(1, 32, 450)) -> None:
    f32 = workdir / f"{name}_fp32.onnx"
    export.save_onnx(export.fp32_to_onnx(model), f32)
    paths = {"fp32": f32}
    for wd in ("int8", "uint8"):
        p = workdir / f"{name}_{wd}.onnx"
        export.save_onnx(export.to_onnx(qm, weight_dtype=wd), p)
        opt = workdir / f"{name}_{wd}_opt.onnx"
        export.ort_session(p, optimized_path=opt)
        ops = export.optimized_ops(opt)
        assert export.integer_kernels(ops) and not export.float_matmuls(ops), ops
        paths[f"{wd} weights"] = p
    sessions = {k: export.ort_session(p, threads=1) for k, p in paths.items()}
    print(f"\n{name}: file sizes " + ", ".join(f"{k} {p.stat().st_size / 1024:.0f} KiB" for k, p in paths.items()))
    print(f"{'batch':>6s}" + "".join(f"{k:>16s}" for k in sessions) + f"{'fp32 / int8':>14s}{'fp32 / uint8':>14s}")
    for b in batches:
        xb = np.ascontiguousarray(np.resize(X, (b, X.shape[1])), dtype=np.float32)
        number = max(1, 2000 // b)
        t = {k: best_ms(lambda s=s: export.run_ort(s, xb), repeat=7, number=number) for k, s in sessions.items()}
        print(f"{b:>6d}" + "".join(f"{v:>13.3f} ms" for v in t.values())
              + f"{t['fp32'] / t['int8 weights']:>13.2f}x{t['fp32'] / t['uint8 weights']:>13.2f}x")


def main() -> int:
    import onnxruntime

    digits = qlib.load_digits()
    print(f"onnxruntime {onnxruntime.__version__}, single thread; VNNI: {export.cpu_has_vnni()} "
          "(timings are machine-dependent; ratio > 1 means int8 is faster)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        m = qlib.reference_model()
        bench("digits MLP 64-128-64-10", m, ptq.quantize_mlp(m, digits.X_train, per_channel=True), digits.X_test, workdir)
        w = wide_model()
        bench("wide MLP 64-1024-1024-10", w, ptq.quantize_mlp(w, digits.X_train[:256], per_channel=True),
              digits.X_test, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
