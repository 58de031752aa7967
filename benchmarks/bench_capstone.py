"""Capstone benchmark: PaddleOCR's direction classifier, fp32 vs int8 in ONNX Runtime.

    python benchmarks/bench_capstone.py [--lines 200] [--quick]

Prints (machine-dependent, never pinned anywhere):
  * model size on disk: original, BN-folded fp32, qlib's W8A8 QDQ, ONNX Runtime's quantize_static;
  * latency per text line (one CPU thread, batch 1 and batch 8) and the fp32/int8 ratio;
  * accuracy / agreement / mean |dp| of qlib's W8A8 (min-max, percentile, KL) vs quantize_static
    (MinMax, Entropy, Percentile), per-tensor and per-channel, on the same opset-13 folded graph and the
    same calibration lines; plus what quantize_static does with unequal calibration batches and with
    the original graph (weights in Constant nodes, opset 11).
Temporary ONNX files go to a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import onnx

from qlib import onnx_graph as og
from qlib import realmodel as rm
from qlib import recognizer as rec
from qlib import textlines as tl
from qlib.widgets import capstone as demo


def latency(model, x, batch, repeats=3):
    s = rm.session(model)
    rm.predict_proba(s, x[:batch], batch_size=batch)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        rm.predict_proba(s, x, batch_size=batch)
        best = min(best, (time.perf_counter() - t0) / len(x))
    return best * 1e3


def bench_recognizer(n_lines):
    """Stretch goal: PP-OCRv4 recognizer, greedy CTC, CER of fp32 vs weight-only quantized variants."""
    d = tl.make_text_lines(2 * n_lines, seed=7)
    lines = [(t, img) for t, img, y in zip(d.texts, d.images, d.y) if y == 0]
    x = np.stack([rec.preprocess_rec_line(img) for _, img in lines])
    refs = [t for t, _ in lines]
    m0 = rm.load_onnx(rm.model_path(rm.REC_MODEL))
    chars = rec.charset(m0)
    f = og.fold_batchnorms(og.constants_to_initializers(m0))
    print(f"== recognizer (PP-OCRv4 rec, {len(chars)} symbols) on {len(refs)} upright lines, weights only ==")
    variants = [("fp32", m0)] + [(f"W{b} {g}", og.quantize_weights(f, b, g)[0])
                                 for b in (8, 6, 4) for g in ("per-tensor", "per-channel")]
    variants.append(("W4 per-channel MSE", og.quantize_weights(f, 4, "per-channel", "mse")[0]))
    for label, model in variants:
        t0 = time.perf_counter()
        pred = rec.recognize(model, x, chars)
        dt = (time.perf_counter() - t0) / len(x) * 100
        exact = np.mean([p == r for p, r in zip(pred, refs)])
        print(f"{label:20s} CER {rec.character_error_rate(pred, refs):6.3f}  exact lines {exact:5.1%}  ({dt:.1f} s per 100 lines)")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--calib", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="skip the quantize_static calibrator sweep")
    ap.add_argument("--rec-lines", type=int, default=100, help="upright lines for the recognizer (0: skip it)")
    args = ap.parse_args()
    if args.rec_lines:
        bench_recognizer(args.rec_lines)

    ev, cal = tl.make_text_lines(args.lines, seed=1), tl.make_text_lines(args.calib, seed=2)
    m0 = rm.load_onnx()
    f13 = og.to_opset(og.fold_batchnorms(og.constants_to_initializers(m0)), 13)
    p_ref = rm.predict_proba(m0, ev.x)
    half = args.calib // 2
    equal = [cal.x[:half], cal.x[half:]]
    unequal = [cal.x[: half + 4], cal.x[half + 4:]]
    print(f"{args.lines} test lines, {args.calib} calibration lines; fp32 accuracy {rm.accuracy(p_ref, ev.y):.3f}")

    obs = og.calibrate(f13, unequal, demo.observer_factories(8))
    qlib_models = {(g, c): og.static_quantize(f13, {t: o.qparams() for t, o in obs[c].items()}, 8, g)
                   for g in demo.GRANULARITIES for c in ("min-max", "percentile", "KL")}

    print("\n== accuracy / agreement / mean |dp| (W8A8, QDQ, opset-13 folded graph) ==")
    for (g, c), q in qlib_models.items():
        a, ag, dp = demo.scores(rm.predict_proba(q, ev.x), ev.y, p_ref)
        print(f"qlib {c:10s} {g:11s} (unequal batches)     acc {a:.3f} agree {ag:.3f} |dp| {dp:.4f}")
    ort_models = {}
    methods = ("MinMax",) if args.quick else ("MinMax", "Entropy", "Percentile")
    for op_types, label in ((None, "all ops"), (["Conv", "MatMul"], "Conv+MatMul")):
        for g in demo.GRANULARITIES:
            for meth in methods:
                try:
                    q = og.ort_quantize_static(f13, equal, per_channel=(g == "per-channel"), method=meth, op_types=op_types)
                except Exception as e:  # noqa: BLE001 -- report whatever the tool raises
                    print(f"ORT  {meth:10s} {g:11s} ({label}): FAILED {type(e).__name__}: {str(e)[:80]}")
                    continue
                ort_models[(g, meth, label)] = q
                a, ag, dp = demo.scores(rm.predict_proba(q, ev.x), ev.y, p_ref)
                nq = og.census(q)["ops"]["QuantizeLinear"]
                print(f"ORT  {meth:10s} {g:11s} ({label:11s}) acc {a:.3f} agree {ag:.3f} |dp| {dp:.4f}  ({nq} QuantizeLinear)")

    print("\n== quantize_static with unequal calibration batches ==")
    for meth in ("MinMax", "Entropy", "Percentile"):
        try:
            og.ort_quantize_static(f13, unequal, method=meth)
            print(f"{meth:10s}: ok")
        except Exception as e:  # noqa: BLE001
            print(f"{meth:10s}: FAILED {type(e).__name__}: {str(e)[:80]}")

    print("\n== quantize_static on the graph as shipped (weights in Constant nodes) ==")
    for opset in (11, 13):
        g_raw = m0 if opset == 11 else og.to_opset(m0, 13)
        for pc in (False, True):
            try:
                q = og.ort_quantize_static(g_raw, equal, per_channel=pc, method="MinMax")
                onnx.checker.check_model(q)
                p = rm.predict_proba(q, ev.x)
                has_axis = any(a.name == "axis" for n in q.graph.node if n.op_type == "DequantizeLinear" for a in n.attribute)
                print(f"opset {opset} per_channel={pc!s:5s}: acc {rm.accuracy(p, ev.y):.3f} |dp| "
                      f"{demo.scores(p, ev.y, p_ref)[2]:.4f}, per-axis DequantizeLinear present: {has_axis}")
            except Exception as e:  # noqa: BLE001
                print(f"opset {opset} per_channel={pc!s:5s}: FAILED {type(e).__name__}: {str(e)[:100]}")

    print("\n== size on disk and latency (one thread; machine-dependent) ==")
    rows = [("fp32 original", m0), ("fp32 folded, opset 13", f13),
            ("qlib W8A8 per-channel", qlib_models[("per-channel", "min-max")])]
    key = ("per-channel", "MinMax", "all ops")
    if key in ort_models:
        rows.append(("ORT W8A8 per-channel", ort_models[key]))
    x = ev.x[:64]
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for label, model in rows:
            path = os.path.join(tmp, "m.onnx")
            onnx.save(model, path)
            size = os.path.getsize(path) / 1024
            t1, t8 = latency(model, x, 1), latency(model, x, 8)
            base = base or (size, t1, t8)
            print(f"{label:24s} {size:6.0f} kB ({base[0] / size:4.2f}x smaller)  batch 1 {t1:6.2f} ms/line "
                  f"(fp32/this {base[1] / t1:4.2f})  batch 8 {t8:6.2f} ms/line (fp32/this {base[2] / t8:4.2f})")


if __name__ == "__main__":
    main()
