"""Tests for qlib.recognizer (capstone stretch goal): CTC decoding, edit distance, CER, and the real
PP-OCRv4 recognizer on a few rendered lines (thresholds measured on 20 lines, with margin)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlib import onnx_graph as og
from qlib import realmodel as rm
from qlib import recognizer as rec
from qlib import textlines as tl


def test_ctc_merges_repeats_but_not_across_blanks():
    chars = ["<blank>", "l", "o"]
    p = np.eye(3)[[1, 1, 0, 1, 2, 0, 0]]           # l l _ l o _ _ -> "llo"
    assert rec.ctc_greedy_decode(p, chars) == ["llo"]
    assert rec.ctc_greedy_decode(np.eye(3)[[0, 0]], chars) == [""]
    batch = np.stack([np.eye(3)[[1, 2]], np.eye(3)[[2, 2]]])
    assert rec.ctc_greedy_decode(batch, chars) == ["lo", "o"]


def test_ctc_bad_shape():
    with pytest.raises(ValueError, match="character list"):
        rec.ctc_greedy_decode(np.zeros((1, 4, 5)), ["<blank>", "a"])


@given(st.text(max_size=12), st.text(max_size=12))
def test_edit_distance_properties(a, b):
    d = rec.edit_distance(a, b)
    assert d == rec.edit_distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert (d == 0) == (a == b)


def test_cer_hand_value_and_bad_input():
    assert rec.character_error_rate(["abd", ""], ["abc", "xy"]) == pytest.approx(3 / 5)
    with pytest.raises(ValueError):
        rec.character_error_rate(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        rec.character_error_rate([""], [""])


def test_charset_needs_metadata():
    import onnx

    with pytest.raises(ValueError, match="character"):
        rec.charset(onnx.ModelProto())


@pytest.fixture(scope="module")
def rec_setup():
    m0 = rm.load_onnx(rm.model_path(rm.REC_MODEL))
    d = tl.make_text_lines(12, seed=7)
    lines = [(t, img) for t, img, y in zip(d.texts, d.images, d.y) if y == 0]
    x = np.stack([rec.preprocess_rec_line(img) for _, img in lines])
    return m0, rec.charset(m0), x, [t for t, _ in lines]


def test_real_recognizer_reads_rendered_lines_and_breaks_per_tensor(rec_setup):
    """Measured on 20 lines: fp32 CER 0.000, W8 per-channel 0.000, W8 per-tensor 0.98."""
    m0, chars, x, refs = rec_setup
    assert len(chars) == 6625 and chars[0] == "<blank>" and chars[-1] == " "
    assert rec.character_error_rate(rec.recognize(m0, x, chars), refs) <= 0.05
    f = og.fold_batchnorms(og.constants_to_initializers(m0))
    cer = {g: rec.character_error_rate(rec.recognize(og.quantize_weights(f, 8, g)[0], x, chars), refs)
           for g in ("per-tensor", "per-channel")}
    assert cer["per-channel"] <= 0.05
    assert cer["per-tensor"] >= 0.3
