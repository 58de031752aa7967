"""Tests for the capstone helpers: qlib.realmodel, qlib.textlines, qlib.cle, qlib.onnx_graph,
qlib.widgets.capstone and the nb09 checkers.

Model-level tests run the real PaddleOCR classifier in ONNX Runtime on a few rendered lines; the
accuracy thresholds are the values measured on 64 lines (see notebook 09) minus a margin.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import qlib
from qlib import check, cle, onnx_graph as og, realmodel as rm, textlines as tl
from qlib.widgets import capstone as demo

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def models():
    m0 = rm.load_onnx()
    m = og.constants_to_initializers(m0)
    f = og.fold_batchnorms(m)
    return {"orig": m0, "init": m, "folded": f, "f13": og.to_opset(f, 13)}


@pytest.fixture(scope="module")
def data():
    return tl.make_text_lines(32, seed=1), tl.make_text_lines(16, seed=2)


@pytest.fixture(scope="module")
def p_fp32(models, data):
    return rm.predict_proba(models["orig"], data[0].x)


# ----------------------------------------------------------------------------- model files
def test_model_path_finds_both_models_without_importing_the_package():
    import sys

    assert rm.model_path().name == rm.CLS_MODEL
    assert rm.model_path(rm.REC_MODEL).is_file()
    assert "rapidocr_onnxruntime" not in sys.modules  # found by spec only, OpenCV not loaded


def test_missing_model_file_names_the_package():
    with pytest.raises(FileNotFoundError, match="rapidocr-onnxruntime"):
        rm.model_path("no_such_model.onnx")


def test_missing_package_names_the_package():
    with pytest.raises(FileNotFoundError, match="pip install rapidocr-onnxruntime"):
        rm.model_path(package="rapidocr_not_installed_pkg")


def test_model_input_is_what_paddleocr_feeds(models):
    sess = rm.session(models["orig"])
    inp = sess.get_inputs()[0]
    assert inp.name == "x" and inp.shape[1] == 3
    assert sess.get_outputs()[0].shape[-1] == 2


# ----------------------------------------------------------------------------- text lines
def test_normalize_pixels_hand_values():
    np.testing.assert_allclose(tl.normalize_pixels([0, 51, 255]), [-1.0, -0.6, 1.0], rtol=1e-6)


def test_preprocess_pads_right_with_zero_and_caps_width():
    wide = np.zeros((10, 1000), np.uint8)            # very long line: squeezed to 192 columns
    x = tl.preprocess_line(wide)
    assert x.shape == tl.CLS_SHAPE and np.all(x == -1.0)
    narrow = np.full((48, 30), 255, np.uint8)        # 30 columns kept, the rest is padding 0
    x = tl.preprocess_line(narrow)
    assert np.all(x[:, :, :30] == 1.0) and np.all(x[:, :, 30:] == 0.0)


def test_make_text_lines_is_deterministic_balanced_and_seed_dependent():
    a, b, c = tl.make_text_lines(10, seed=3), tl.make_text_lines(10, seed=3), tl.make_text_lines(10, seed=4)
    assert np.array_equal(a.x, b.x) and a.texts == b.texts
    assert a.texts != c.texts
    assert int(a.y.sum()) == 5
    for img, y in zip(a.images, a.y):  # a rotated line is the upright rendering turned by 180 degrees
        assert img.ndim == 2 and img.dtype == np.uint8
    assert a.x.dtype == np.float32 and a.x.min() >= -1 and a.x.max() <= 1


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_make_text_lines_bad_n(bad):
    with pytest.raises(ValueError, match="positive whole number"):
        tl.make_text_lines(bad)


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_render_line_bad_text(bad):
    with pytest.raises(ValueError, match="non-empty"):
        tl.render_line(bad)


def test_preprocess_bad_image():
    with pytest.raises(ValueError, match="image"):
        tl.preprocess_line(np.zeros((0, 5)))


# ----------------------------------------------------------------------------- metrics
def test_accuracy_agreement_hand_values_and_bad_input():
    p = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    assert rm.accuracy(p, [0, 1, 1, 1]) == 0.75
    assert rm.agreement(p, p[:, ::-1]) == 0.0
    with pytest.raises(ValueError):
        rm.accuracy(p, [0, 1])
    with pytest.raises(ValueError):
        rm.agreement(p, p[:2])


def test_predict_proba_bad_shape(models):
    with pytest.raises(ValueError, match="batch of images"):
        rm.predict_proba(models["orig"], np.zeros((3, 48, 192), np.float32))


# ----------------------------------------------------------------------------- CLE formulas
def test_cle_scales_hand_values():
    np.testing.assert_allclose(cle.cle_scales([4.0, 1.0], [1.0, 4.0]), [2.0, 0.5])


def test_cle_scales_zero_channel_keeps_one_and_bad_input():
    np.testing.assert_array_equal(cle.cle_scales([0.0, 2.0], [3.0, 0.0]), [1.0, 1.0])
    with pytest.raises(ValueError, match="negative"):
        cle.cle_scales([-1.0], [1.0])
    with pytest.raises(ValueError, match="one entry per channel"):
        cle.cle_scales([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        cle.cle_scales([np.nan], [1.0])


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (4, 3), elements=st.floats(-5, 5, allow_subnormal=False)), arrays(np.float64, (2, 4), elements=st.floats(-5, 5, allow_subnormal=False)),
       arrays(np.float64, (3,), elements=st.floats(-5, 5, allow_subnormal=False)), arrays(np.float64, (4,), elements=st.floats(-5, 5, allow_subnormal=False)))
def test_equalize_pair_keeps_the_function_and_equalizes_ranges(W1, W2, x, b1):
    """relu(W1 x + b1) through W2 is unchanged; nonzero channels end with equal ranges sqrt(r1 r2)."""
    W1e, b1e, W2e, s = cle.equalize_pair(W1, b1, W2)
    before = W2 @ np.maximum(W1 @ x + b1, 0)
    after = W2e @ np.maximum(W1e @ x + b1e, 0)
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-9)
    r1, r2 = cle.channel_ranges(W1), cle.channel_ranges(W2, 1)
    ok = (r1 > 0) & (r2 > 0)
    np.testing.assert_allclose(cle.channel_ranges(W1e)[ok], (np.sqrt(r1) * np.sqrt(r2))[ok], rtol=1e-9)
    np.testing.assert_allclose(cle.channel_ranges(W2e, 1)[ok], (np.sqrt(r1) * np.sqrt(r2))[ok], rtol=1e-9)
    assert np.all(s > 0)


def test_equalize_pair_depthwise_and_inputs_not_modified():
    W1 = np.array([[2.0], [8.0]])
    W2 = np.array([[[0.5]], [[2.0]]])       # depthwise (C, 1, k): channel c reads channel c
    W1c, W2c = W1.copy(), W2.copy()
    W1e, b1e, W2e, s = cle.equalize_pair(W1, None, W2, depthwise=True)
    np.testing.assert_allclose(s, [2.0, 2.0])
    np.testing.assert_allclose(W1e.ravel(), [1.0, 4.0])
    np.testing.assert_allclose(W2e.ravel(), [1.0, 4.0])
    assert np.array_equal(W1, W1c) and np.array_equal(W2, W2c)
    with pytest.raises(ValueError, match="channels"):
        cle.equalize_pair(W1, None, np.ones((3, 3)))


def test_range_spread_hand_value_and_dead_channel():
    assert cle.range_spread(np.array([[1.0, -4.0], [0.5, 0.0]])) == 8.0
    assert cle.range_spread(np.array([[1.0], [0.0]])) == np.inf


# ----------------------------------------------------------------------------- graph helpers
def test_census_of_the_real_graph(models):
    c = og.census(models["orig"])
    assert c["ops"]["Conv"] == 53 and c["ops"]["BatchNormalization"] == 35 and c["opset"] == 11
    assert len(c["conv_bn"]) == 35 and c["bn_alone"] == []
    assert og.census(models["init"])["params"] == c["params"]     # moving constants keeps every number


def test_bn_folding_is_equivalent(models, data, p_fp32):
    f = models["folded"]
    assert og.census(f)["ops"]["BatchNormalization"] == 0
    p = rm.predict_proba(f, data[0].x)
    assert np.abs(p - p_fp32).max() < 1e-4
    onnx.checker.check_model(f)


def test_bn_folding_does_not_modify_its_input(models):
    before = models["init"].SerializeToString()
    og.fold_batchnorms(models["init"])
    assert models["init"].SerializeToString() == before


def test_folding_spreads_channel_ranges(models):
    """Measured: worst conv's max/min channel range 5.2 before folding, 42 after."""
    init_m, init_f = og.initializers(models["init"]), og.initializers(models["folded"])
    convs = [n for n, a in og.weight_tensors(models["folded"]).items() if a == 0]
    worst_b = max(cle.range_spread(init_m[n]) for n in convs)
    worst_a = max(cle.range_spread(init_f[n]) for n in convs)
    assert worst_b < 10 and worst_a > 30


def test_weight_qparams_per_tensor_and_per_channel_hand_values():
    W = np.array([[1.0, -0.5], [0.1, 0.2]])
    pt = og.weight_qparams(W, 8, "per-tensor")
    pc = og.weight_qparams(W, 8, "per-channel")
    assert pt.scale == pytest.approx(1.0 / 127) and pt.zero_point == 0 and (pt.qmin, pt.qmax) == (-127, 127)
    np.testing.assert_allclose(pc.scale, [1.0 / 127, 0.2 / 127])
    pm = og.weight_qparams(np.array([1.0, 0.0, 0.0]), 8, "per-channel", axis=0)   # 1-D: one per element
    assert pm.axis == 0
    with pytest.raises(ValueError, match="granularity"):
        og.weight_qparams(W, 8, "per-row")
    with pytest.raises(ValueError, match="method"):
        og.weight_qparams(W, 8, "per-tensor", method="kl")


def test_mse_clip_never_worse_than_maxabs():
    rng = np.random.default_rng(0)
    W = rng.standard_t(3, size=(6, 50))
    for bits in (3, 4, 8):
        for gran in ("per-tensor", "per-channel"):
            err = {m: qlib.mse(W, qlib.fake_quantize(W, og.weight_qparams(W, bits, gran, m))) for m in ("maxabs", "mse")}
            assert err["mse"] <= err["maxabs"] * (1 + 1e-12)


def test_mse_clip_zero_channel_is_legal():
    t = og.mse_clip_ranges(np.zeros((2, 4)), 4, axis=0)
    assert t.shape == (2,) and np.all(np.isfinite(t))
    qp = og.weight_qparams(np.zeros((2, 4)), 4, "per-channel", "mse")
    assert np.all(qlib.fake_quantize(np.zeros((2, 4)), qp) == 0)


def test_quantize_weights_codes_on_grid(models):
    q, qps = og.quantize_weights(models["folded"], 4, "per-channel")
    init = og.initializers(q)
    for name, qp in qps.items():
        codes = qlib.quantize(init[name], qp)
        assert np.abs(codes.astype(np.int64)).max() <= 7
        np.testing.assert_allclose(qlib.dequantize(codes, qp, np.float32), init[name], rtol=1e-6, atol=1e-12)


def test_relu_pairs_skip_hardswish_and_squeeze_excite(models):
    pairs = og.relu_pairs(models["folded"])
    assert len(pairs) == 5
    for c1, c2 in pairs:
        assert c1.op_type == c2.op_type == "Conv"


def test_cle_keeps_the_function(models, data, p_fp32):
    fe, n = og.equalize(models["folded"])
    assert n == 5
    assert np.abs(rm.predict_proba(fe, data[0].x) - p_fp32).max() < 1e-4


def test_no_cle_pairs_before_folding(models):
    """Before folding every conv feeds a BatchNormalization, not the ReLU: CLE must come after folding."""
    fe, n = og.equalize(models["init"])
    assert n == 0 and og.relu_pairs(models["init"]) == []


def test_opset_conversion(models):
    assert og.census(models["f13"])["opset"] == 13


def test_insert_qdq_needs_opset_13(models):
    with pytest.raises(ValueError, match="opset"):
        og.insert_qdq(models["folded"], {}, {})


# ----------------------------------------------------------------------------- static W8A8
@pytest.fixture(scope="module")
def calibrated(models, data):
    cal = data[1].x
    obs = og.calibrate(models["f13"], [cal[:7], cal[7:12], cal[12:]], demo.observer_factories(8))  # unequal batches
    return obs


def test_calibrate_uses_every_quantizable_activation(models, calibrated):
    names = og.quantizable_activations(models["f13"])
    assert len(names) == 54 and names[0] == "x"
    for obs in calibrated.values():
        assert set(obs) == set(names) and all(o.n_batches == 3 for o in obs.values())


def test_calibrate_needs_a_batch(models):
    with pytest.raises(ValueError, match="at least one batch"):
        og.calibrate(models["f13"], [], lambda: qlib.MinMaxObserver())


def test_qdq_model_is_valid_runs_and_carries_the_observers_qparams(models, data, p_fp32, calibrated):
    for calib in ("min-max", "KL"):
        acts = {t: o.qparams() for t, o in calibrated[calib].items()}
        q = og.static_quantize(models["f13"], acts, 8, "per-channel")
        onnx.checker.check_model(q)
        read = og.qdq_scales(q)
        assert set(read) == set(acts)
        for t, (scale, zp) in read.items():
            assert scale == np.float32(acts[t].scale) and int(zp) == acts[t].zero_point
            assert zp.dtype == np.uint8
        p = rm.predict_proba(q, data[0].x)
        # measured on 64 lines: 100 % accuracy and agreement; margin for 32 lines
        assert rm.agreement(p, p_fp32) >= 0.93
        assert rm.accuracy(p, data[0].y) >= 0.9


def test_qdq_weights_and_bias_codes(models, calibrated):
    acts = {t: o.qparams() for t, o in calibrated["min-max"].items()}
    _, wq = og.quantize_weights(models["f13"], 8, "per-channel")
    q = og.insert_qdq(models["f13"], acts, wq)
    init = og.initializers(q)
    conv = next(n for n in models["f13"].graph.node if n.op_type == "Conv")
    w, b = conv.input[1], conv.input[2]
    assert init[w + "_quantized"].dtype == np.int8
    np.testing.assert_array_equal(init[w + "_scale"], wq[w].scale.astype(np.float32))
    assert init[b + "_quantized"].dtype == np.int32
    np.testing.assert_allclose(init[b + "_scale"], np.float32(acts[conv.input[0]].scale) * wq[w].scale.astype(np.float32),
                               rtol=1e-7)
    dq = next(n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == w)
    assert [a.i for a in dq.attribute if a.name == "axis"] == [0]


def test_low_bit_activations_get_a_clip(models, data):
    obs = og.calibrate(models["f13"], [data[1].x], lambda: qlib.MinMaxObserver(bits=4))
    acts = {t: o.qparams() for t, o in obs.items()}
    q = og.static_quantize(models["f13"], acts, 8, "per-channel")
    assert og.census(q)["ops"]["Clip"] == og.census(models["f13"])["ops"]["Clip"] + len(acts)
    onnx.checker.check_model(q)


# ----------------------------------------------------------------------------- accuracy thresholds
def test_weight_only_per_tensor_breaks_per_channel_holds(models, data, p_fp32):
    """Measured on 64 lines: W5 per-tensor 61 %, per-channel 100 %; W4 per-channel 94 %."""
    ev = data[0]
    acc = {g: rm.accuracy(rm.predict_proba(og.quantize_weights(models["folded"], 5, g)[0], ev.x), ev.y)
           for g in ("per-tensor", "per-channel")}
    assert acc["per-tensor"] < 0.85
    assert acc["per-channel"] >= 0.93


def test_w8_weight_only_keeps_fp32(models, data, p_fp32):
    for g in ("per-tensor", "per-channel"):
        p = rm.predict_proba(og.quantize_weights(models["folded"], 8, g)[0], data[0].x)
        assert rm.agreement(p, p_fp32) >= 0.96


# ----------------------------------------------------------------------------- widget compute/draw
def _tiny_grid():
    acc, agree, dp = {}, {}, {}
    for b in demo.BITS:
        for g in demo.GRANULARITIES:
            for c in (False, True):
                for k in demo.GRID_CALIBRATORS:
                    v = 1.0 if g == "per-channel" or b >= 6 else 0.5
                    acc[(b, g, c, k)], agree[(b, g, c, k)], dp[(b, g, c, k)] = v, v, 1 - v
    return demo.Grid(acc, agree, dp, 1.0, 10)


@pytest.mark.parametrize("bits", [max(demo.BITS), min(demo.BITS)])
@pytest.mark.parametrize("gran", demo.GRANULARITIES)
@pytest.mark.parametrize("cle_on", [False, True])
@pytest.mark.parametrize("calib", demo.GRID_CALIBRATORS)
def test_widget_view_readout_draw_at_every_extreme(bits, gran, cle_on, calib):
    import matplotlib.pyplot as plt

    grid = _tiny_grid()
    v = demo.grid_view(grid, bits, gran, cle_on, calib)
    assert v["acc"] == grid.acc[(bits, gran, cle_on, calib)]
    assert set(v["curves"]) == set(demo.GRANULARITIES) and len(v["curves"]["per-tensor"]) == len(demo.BITS)
    html = demo.capstone_readout(grid, bits, gran, cle_on, calib)
    assert f"W{bits}" in html and f"{v['acc']:.1%}" in html
    fig = demo.draw_capstone(grid, bits, gran, cle_on, calib)
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel() and fig.axes[0].get_title()
    plt.close(fig)


def test_widget_view_bad_choices():
    grid = _tiny_grid()
    with pytest.raises(ValueError, match="bits=3"):
        demo.grid_view(grid, 3, "per-tensor", False, "min-max")
    with pytest.raises(ValueError, match="granularity"):
        demo.grid_view(grid, 8, "per-row", False, "min-max")
    with pytest.raises(ValueError, match="calibrator"):
        demo.grid_view(grid, 8, "per-tensor", False, "magic")


def test_capstone_grid_reuses_known_results(models, data, p_fp32):
    known = {(8, g, c, k): (0.123, 0.456, 0.789) for g in demo.GRANULARITIES for c in (False,)
             for k in demo.GRID_CALIBRATORS}
    grid = demo.capstone_grid({False: models["f13"]}, {}, data[0].x, data[0].y, p_fp32, bits=(8,), known=known)
    assert all(grid.acc[k] == 0.123 for k in known)


def test_widget_builds():
    pytest.importorskip("ipywidgets")
    box = demo.capstone_widget(_tiny_grid())
    assert len(box.children) == 3


def test_draw_channel_ranges_and_text_lines():
    import matplotlib.pyplot as plt

    fig = demo.draw_channel_ranges({"a": [np.array([1.0, 2.0]), np.array([0.5])], "b": [np.array([3.0]), np.array([1.0])]})
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)
    d = tl.make_text_lines(3, seed=0)
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    fig = demo.draw_text_lines(d.x, d.y, p, p[:, ::-1], "int8", n=3)
    assert len(fig.axes) == 4
    plt.close(fig)


# ----------------------------------------------------------------------------- checkers
def test_checkers_accept_right_and_reject_wrong():
    g, b, mu, v = np.array([2.0]), np.array([0.5]), np.array([1.0]), np.array([3.0])
    check.check_folded_bias(b - g * mu / np.sqrt(v + 1e-5), g, b, mu, v)
    with pytest.raises(check.ExerciseError):
        check.check_folded_bias(b - mu, g, b, mu, v)
    r1, r2 = check.NB09_R1, check.NB09_R2                # the exercise's own ranges: s = sqrt(r1 / r2)
    check.check_cle_scales(np.sqrt(np.divide(r1, r2)), r1, r2)
    with pytest.raises(check.ExerciseError):
        check.check_cle_scales(np.sqrt(np.divide(r2, r1)), r1, r2)
    with pytest.raises(check.ExerciseError):                # ranges changed by the learner
        check.check_cle_scales([2.0], [4.0], [1.0])
    check.check_bias_scale([0.02, 0.04], 0.1, [0.2, 0.4])
    with pytest.raises(check.ExerciseError):
        check.check_bias_scale([0.3, 0.5], 0.1, [0.2, 0.4])
