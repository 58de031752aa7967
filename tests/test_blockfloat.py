"""qlib.blockfloat: MX (OCP MX v1.0), NVFP4, NF4 and their storage cost."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qlib import blockfloat as bf
from qlib import minifloat as mf

finite32 = st.floats(-1e4, 1e4, width=32, allow_subnormal=False)


def blocks_of(x, bs):
    return x.reshape(-1, bs)


def elem_step(a, fmt):
    """Gap of fmt's grid in the binade of |a| (the subnormal gap below min_normal)."""
    f = mf.FLOAT_FORMATS[fmt]
    a = np.maximum(np.abs(a), f.min_normal)
    return np.exp2(np.floor(np.log2(a)) - f.mantissa_bits)


# --- MX --------------------------------------------------------------------------------------------

def test_mx_hand_values():
    # amax 0.45: floor(log2 0.45) = -2, minus emax(E2M1) = 2 -> X = 2^-4; 0.45 / X = 7.2 saturates to 6
    codes, scales = bf.mx_quantize(np.array([0.1, -0.2, 0.3, 0.45]), block_size=4)
    assert scales.tolist() == [127 - 4]
    np.testing.assert_array_equal(mf.decode(codes, "e2m1"), [1.5, -3.0, 4.0, 6.0])
    np.testing.assert_array_equal(bf.fake_quantize_mx(np.array([0.1, -0.2, 0.3, 0.45]), block_size=4),
                                  [0.09375, -0.1875, 0.25, 0.375])
    # MXFP8 E4M3: amax 1 -> X = 2^(0 - 8); 1 / X = 256 exactly
    c8, s8 = bf.mx_quantize(np.array([1.0, 0.01]), elem="e4m3fn", block_size=2)
    assert s8.tolist() == [119] and mf.decode(c8, "e4m3fn").tolist() == [256.0, 2.5]


def test_mx_scale_exponent_per_element_format():
    amax = np.array([1.0])
    got = {e: int(bf.mx_scale_exponent(amax, e)[0]) for e in bf.MX_ELEMENTS}
    assert got == {"e2m1": -2, "e2m3": -2, "e3m2": -4, "e4m3fn": -8, "e5m2": -15}
    # clamped to E8M0's range
    assert bf.mx_scale_exponent(np.array([2.0**-140, 3e38]), "e2m1").tolist() == [-127, 125]


@pytest.mark.parametrize("elem", bf.MX_ELEMENTS)
def test_mx_matches_a_second_path_through_ml_dtypes(elem):
    # second path: X from numpy's log2, elements clipped to +-max and cast by ml_dtypes
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 64)) * np.exp2(rng.integers(-20, 20, (8, 1)))).astype(np.float32)
    f = mf.FLOAT_FORMATS[elem]
    b = x.reshape(8, 2, 32).astype(np.float64)
    X = np.exp2(np.floor(np.log2(np.abs(b).max(-1, keepdims=True))) - f.emax)
    ref = np.clip(b / X, -f.max_finite, f.max_finite).astype(getattr(ml_dtypes, mf.ML_DTYPES_NAMES[elem]))
    ref = (ref.astype(np.float64) * X).reshape(8, 64)
    np.testing.assert_array_equal(bf.fake_quantize_mx(x, elem), ref.astype(np.float32))


def test_mx_axis_and_shapes():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    codes, scales = bf.mx_quantize(x, block_size=32, axis=0)
    assert codes.shape == (64, 6) and scales.shape == (2, 6) and codes.dtype == scales.dtype == np.uint8
    np.testing.assert_array_equal(bf.fake_quantize_mx(x, axis=0), bf.fake_quantize_mx(x.T, axis=-1).T)
    np.testing.assert_array_equal(bf.mx_dequantize(codes, scales, axis=0), bf.fake_quantize_mx(x, axis=0))
    assert bf.fake_quantize_mx(x.astype(np.float64), axis=0).dtype == np.float64


@given(hnp.arrays(np.float32, st.sampled_from([8, 16, 32]), elements=finite32),
       st.sampled_from(bf.MX_ELEMENTS))
@settings(max_examples=150, deadline=None)
def test_mx_properties(x, elem):
    f = mf.FLOAT_FORMATS[elem]
    y = bf.fake_quantize_mx(x, elem, block_size=8)
    codes, scales = bf.mx_quantize(x, elem, block_size=8)
    X = np.repeat(mf.decode(scales, "e8m0").astype(np.float64), 8)
    r = y.astype(np.float64) / X
    # representable: every output is X times a value of the element format
    np.testing.assert_array_equal(mf.cast(r, elem), r)
    assert np.all(np.abs(r) <= f.max_finite)
    # error at most half a step of the block's grid where x / X is inside the element range
    a = x.astype(np.float64) / X
    inside = np.abs(a) <= f.max_finite
    err = np.abs(y.astype(np.float64) - x)
    assert np.all(err[inside] <= elem_step(a[inside], elem) / 2 * X[inside])
    # idempotent, and zero blocks stay zero
    np.testing.assert_array_equal(bf.fake_quantize_mx(y, elem, block_size=8), y)
    zero_blocks = ~blocks_of(x, 8).any(axis=1)
    assert not blocks_of(y, 8)[zero_blocks].any()


def test_mx_saturation_is_the_specs_known_clamp():
    # amax / X lands in [4, 8): values in (6, 8) clamp to 6 (the spec's Algorithm 1 accepts this)
    assert bf.fake_quantize_mx(np.array([7.0, 1.0]), block_size=2).tolist() == [6.0, 1.0]


# --- NVFP4 -----------------------------------------------------------------------------------------

def test_nvfp4_hand_values():
    x = np.array([0.1, -0.2, 0.3, 0.6, 0.01, 0.02, -0.07, 0.05])
    codes, bscales, s_t = bf.nvfp4_quantize(x, block_size=4)
    assert s_t == float(np.float32(0.6 / 2688))
    # block 1: 0.6 / 6 / s_t = 448; block 2: 0.07 / 6 / s_t = 52.27 -> E4M3 52 (grid step 4 in [32, 64))
    assert mf.decode(bscales, "e4m3fn").tolist() == [448.0, 52.0]
    # block 2 elements: x / (52 s_t) = 0.86, 1.72, -6.03, 4.31 -> 1, 1.5, -6, 4
    assert mf.decode(codes, "e2m1").tolist() == [1.0, -2.0, 3.0, 6.0, 1.0, 1.5, -6.0, 4.0]


def test_nvfp4_zero_tensor_and_calibrated_scale():
    z = np.zeros((2, 16), np.float32)
    assert not bf.fake_quantize_nvfp4(z).any()
    x = np.linspace(-1, 1, 32).astype(np.float32)
    # a per-tensor scale 10x too small: block scales saturate at 448 and elements at 6
    y = bf.fake_quantize_nvfp4(x, s_tensor=1 / 26880)
    assert np.abs(y).max() == pytest.approx(6 * 448 / 26880, rel=1e-6)


@given(hnp.arrays(np.float32, st.sampled_from([16, 32, 64]), elements=finite32))
@settings(max_examples=150, deadline=None)
def test_nvfp4_properties(x):
    y = bf.fake_quantize_nvfp4(x, block_size=16)
    codes, bscales, s_t = bf.nvfp4_quantize(x, block_size=16)
    if s_t == 0:
        assert not y.any()
        return
    sb = np.repeat(mf.decode(bscales, "e4m3fn").astype(np.float64), 16)
    denom = sb * s_t
    ok = denom > 0
    r = y.astype(np.float64)[ok] / denom[ok]
    np.testing.assert_allclose(r, mf.cast(r, "e2m1"), rtol=1e-6)  # representable (up to float32 output)
    assert not y[~ok].any()
    a = x.astype(np.float64)[ok] / denom[ok]
    inside = np.abs(a) <= 6
    err = np.abs(y.astype(np.float64)[ok] - x[ok])
    bound = elem_step(a, "e2m1") / 2 * denom[ok]
    assert np.all(err[inside] <= bound[inside] * (1 + 1e-6) + 1e-30)
    zero_blocks = ~blocks_of(x, 16).any(axis=1)
    assert not blocks_of(y, 16)[zero_blocks].any()
    # idempotent with the per-tensor scale held fixed, for blocks whose E4M3 scale is a normal number
    y2 = bf.fake_quantize_nvfp4(y, block_size=16, s_tensor=s_t)
    normal = np.repeat(mf.decode(bscales, "e4m3fn") >= 2.0**-6, 16)
    np.testing.assert_array_equal(y2[normal], y[normal])


# --- NF4 -------------------------------------------------------------------------------------------

def test_nf4_codebook_matches_the_published_table():
    cb = bf.nf4_codebook()
    assert cb.shape == (16,) and np.all(np.diff(cb) > 0)
    assert cb[0] == -1.0 and cb[7] == 0.0 and cb[15] == 1.0
    # measured max difference 1.1e-7 (the table is float32: its ulp near 0.7 is 6e-8)
    np.testing.assert_allclose(cb, bf.NF4_PUBLISHED, rtol=0, atol=2e-7)
    np.testing.assert_allclose(bf.NF4_CODEBOOK, bf.NF4_PUBLISHED, rtol=0, atol=2e-7)


def test_nf4_hand_values():
    idx, am = bf.nf4_quantize(np.array([0.0, 0.5, -1.0, 2.0, 0.0, 0.0, 0.0, 0.0]), block_size=4)
    # 0.25 is nearest to 0.2461 (index 10), -0.5 to -0.5251 (index 2)
    assert idx.tolist() == [7, 10, 2, 15, 7, 7, 7, 7] and am.tolist() == [2.0, 0.0]
    # an exact midpoint between two entries takes the lower one
    mid = (float(bf.NF4_CODEBOOK[8]) + float(bf.NF4_CODEBOOK[9])) / 2  # exact in float64
    assert bf.nf4_quantize(np.array([mid, 1.0]), block_size=2)[0].tolist() == [8, 15]


@given(hnp.arrays(np.float32, st.sampled_from([64, 128]), elements=finite32))
@settings(max_examples=100, deadline=None)
def test_nf4_properties(x):
    y = bf.fake_quantize_nf4(x, block_size=64)
    idx, am = bf.nf4_quantize(x, block_size=64)
    amr = np.repeat(am.astype(np.float64), 64)
    cb = bf.NF4_CODEBOOK.astype(np.float64)
    np.testing.assert_allclose(y, cb[idx] * amr, rtol=1e-7)  # representable
    # half the gap between the two codebook entries around x / absmax
    a = np.where(amr > 0, x / np.where(amr > 0, amr, 1), 0)
    j = np.clip(np.searchsorted(cb, a), 1, 15)
    half_gap = (cb[j] - cb[j - 1]) / 2 * amr
    assert np.all(np.abs(y - x.astype(np.float64)) <= half_gap * (1 + 1e-6) + 1e-30)
    np.testing.assert_array_equal(bf.fake_quantize_nf4(y, block_size=64), y)
    assert not blocks_of(y, 64)[~blocks_of(x, 64).any(axis=1)].any()


# --- storage ---------------------------------------------------------------------------------------

def test_bits_per_weight():
    assert bf.bits_per_weight("mxfp4", 32) == 4.25
    assert bf.bits_per_weight("nvfp4", 16) == 4.5
    assert bf.bits_per_weight("nf4", 64) == 4.5
    assert bf.bits_per_weight("mxfp8_e4m3") == 8.25
    assert bf.bits_per_weight("nvfp4", 16, tensor_size=1024) == 4.5 + 32 / 1024
    assert bf.bits_per_weight("mxfp4", 32, tensor_size=1024) == 4.25


@pytest.mark.parametrize("call", [
    lambda: bf.mx_quantize(np.ones(30)),                       # 32 does not divide 30
    lambda: bf.fake_quantize_mx(np.ones(32), elem="e8m0"),
    lambda: bf.fake_quantize_mx(np.ones(32), block_size=0),
    lambda: bf.fake_quantize_mx(np.ones(32), block_size=2.5),
    lambda: bf.fake_quantize_mx(np.ones(32), axis=1),
    lambda: bf.fake_quantize_mx(np.array([np.nan] * 32)),
    lambda: bf.fake_quantize_mx(np.ones(32, np.int32)),
    lambda: bf.mx_dequantize(np.zeros(32, np.uint8), np.zeros(2, np.uint8)),   # wrong scale shape
    lambda: bf.mx_dequantize(np.zeros(32), np.zeros(1, np.uint8)),             # float codes
    lambda: bf.fake_quantize_nvfp4(np.ones(20)),
    lambda: bf.fake_quantize_nvfp4(np.ones(16), s_tensor=0.0),
    lambda: bf.nvfp4_dequantize(np.zeros(16, np.uint8), np.zeros(1, np.uint8), -1.0),
    lambda: bf.fake_quantize_nf4(np.ones(65)),
    lambda: bf.nf4_dequantize(np.full(64, 16, np.uint8), np.ones(1, np.float32)),
    lambda: bf.nf4_dequantize(np.zeros(64, np.uint8), -np.ones(1, np.float32)),
    lambda: bf.bits_per_weight("int4"),
    lambda: bf.bits_per_weight("nvfp4", tensor_size=0),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_inputs_not_modified():
    x = np.linspace(-3, 3, 64).astype(np.float32)
    x0 = x.copy()
    bf.fake_quantize_mx(x), bf.fake_quantize_nvfp4(x), bf.fake_quantize_nf4(x)
    np.testing.assert_array_equal(x, x0)
