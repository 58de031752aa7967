"""Block formats of today's LLM quantization: MX (MXFP4/6/8), NVFP4 and NF4.

All three give each block of consecutive values along ``axis`` its own scale and store the
values in a tiny element format:

    MXFP4   32 x FP4 E2M1 + one E8M0 (power-of-two) scale      OCP Microscaling Formats (MX) v1.0
    NVFP4   16 x FP4 E2M1 + one FP8 E4M3 scale, plus one fp32 scale per tensor     (NVIDIA Blackwell)
    NF4     64 x a 4-bit index into 16 NormalFloat values + one fp32 absmax       (QLoRA, 2023)

Scales live in arrays shaped like ``x`` with ``axis`` divided by ``block_size`` (the course's
block-wise convention); ``block_size`` must divide the length of ``axis``. Inputs must be finite
(the MX spec's NaN-scale rule for blocks holding NaN/inf is therefore never exercised).
"""

from __future__ import annotations

import numbers
from statistics import NormalDist

import numpy as np

from . import minifloat
from ._validate import as_float_array, check_axis, check_choice

__all__ = [
    "MX_ELEMENTS",
    "mx_scale_exponent",
    "mx_quantize",
    "mx_dequantize",
    "fake_quantize_mx",
    "nvfp4_quantize",
    "nvfp4_dequantize",
    "fake_quantize_nvfp4",
    "nf4_codebook",
    "NF4_CODEBOOK",
    "NF4_PUBLISHED",
    "nf4_quantize",
    "nf4_dequantize",
    "fake_quantize_nf4",
    "BITS_PER_WEIGHT_METHODS",
    "bits_per_weight",
]

#: MX element formats (OCP MX v1.0: MXFP8 E5M2/E4M3, MXFP6 E3M2/E2M3, MXFP4 E2M1).
MX_ELEMENTS = ("e2m1", "e2m3", "e3m2", "e4m3fn", "e5m2")

#: Exponents E8M0 can hold: X = 2^e for e in [-127, 127] (code e + 127; 255 is NaN).
_E8M0_MIN_EXP, _E8M0_MAX_EXP = -127, 127


# --- blocks ------------------------------------------------------------------------------------

def _check_block_size(block_size) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 1:
        raise ValueError(f"block_size must be a positive whole number, got {block_size!r}")
    return int(block_size)


def _to_blocks(x: np.ndarray, block_size, axis) -> tuple[np.ndarray, int]:
    """View x as (..., n_blocks, block_size) with ``axis`` moved last; returns (blocks, axis)."""
    block_size = _check_block_size(block_size)
    axis = check_axis(axis, x.ndim)
    n = x.shape[axis]
    if n % block_size:
        raise ValueError(f"block_size={block_size} does not divide the length {n} of axis {axis}: "
                         f"pick a divisor of {n} (or pad x)")
    xm = np.moveaxis(x, axis, -1)
    return xm.reshape(xm.shape[:-1] + (n // block_size, block_size)), axis


def _from_blocks(b: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of _to_blocks."""
    y = b.reshape(b.shape[:-2] + (b.shape[-2] * b.shape[-1],))
    return np.moveaxis(y, -1, axis)


def _scale_shape(shape, block_size, axis) -> tuple:
    s = list(shape)
    s[axis] //= block_size
    return tuple(s)


def _check_codes(codes, name: str) -> np.ndarray:
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array of codes, got dtype {c.dtype}")
    return c


# --- MX ------------------------------------------------------------------------------------------

def mx_scale_exponent(amax, elem: str = "e2m1") -> np.ndarray:
    """Shared exponent of an MX block (OCP MX v1.0, section 6.3, Algorithm 1):

        shared_exp = floor(log2(amax)) - emax_elem,  clamped to E8M0's range [-127, 127]

    emax_elem = exponent of the element format's largest normal number (E2M1: 2, since 6 = 1.5 * 2^2;
    E2M3: 2; E3M2: 4; E4M3: 8; E5M2: 15). An all-zero block (amax = 0) gets the smallest scale, 2^-127
    (the spec leaves this case open; its elements are all 0 whatever the scale).

    >>> mx_scale_exponent(np.array([6.0, 8.0, 1.0, 0.0]))
    array([   0,    1,   -2, -127])
    """
    check_choice(elem, "elem", MX_ELEMENTS)
    a = np.asarray(amax, np.float64)
    _, k = np.frexp(a)  # a = frac * 2^k, frac in [0.5, 1): floor(log2 a) = k - 1 (exact)
    e = k.astype(np.int64) - 1 - minifloat.FLOAT_FORMATS[elem].emax
    e = np.where(a > 0, e, _E8M0_MIN_EXP)
    return np.clip(e, _E8M0_MIN_EXP, _E8M0_MAX_EXP)


def mx_quantize(x, elem: str = "e2m1", block_size: int = 32, axis: int = -1):
    """MX quantization (OCP MX v1.0, section 6.3, Algorithm 1), per block of ``block_size`` along ``axis``:

        X   = 2^shared_exp,  shared_exp = floor(log2(max |V_i|)) - emax_elem      (see mx_scale_exponent)
        P_i = cast_saturating(V_i / X, elem)      round to nearest even, |P_i| clamped to elem's max

    Returns ``(element_codes, scale_codes)``: uint8 codes of ``elem`` shaped like x, and the E8M0
    scale codes (shared_exp + 127) shaped like x with ``axis`` divided by ``block_size``.

    >>> codes, scales = mx_quantize(np.array([0.1, -0.2, 0.3, 0.45]), block_size=4)
    >>> scales, minifloat.decode(codes, "e2m1")          # X = 2^(floor(log2 0.45) - 2) = 2^-4
    (array([123], dtype=uint8), array([ 1.5, -3. ,  4. ,  6. ], dtype=float32))
    """
    check_choice(elem, "elem", MX_ELEMENTS)
    x = as_float_array(x)
    b, axis = _to_blocks(x.astype(np.float64), block_size, axis)
    shared_exp = mx_scale_exponent(np.abs(b).max(axis=-1), elem)
    p = minifloat.encode(np.ldexp(b, -shared_exp[..., None]), elem, saturate=True)
    scale_codes = (shared_exp + 127).astype(np.uint8)
    return _from_blocks(p, axis), np.moveaxis(scale_codes, -1, axis)


def mx_dequantize(codes, scales, elem: str = "e2m1", block_size: int = 32, axis: int = -1) -> np.ndarray:
    """MX decoding: V_i = X * P_i with X = 2^(scale_code - 127) (scale code 255 = NaN: the whole block is NaN).

    >>> mx_dequantize(np.array([3, 13, 6, 7], np.uint8), np.array([123], np.uint8), block_size=4)
    array([ 0.09375, -0.1875 ,  0.25   ,  0.375  ], dtype=float32)
    """
    check_choice(elem, "elem", MX_ELEMENTS)
    c = _check_codes(codes, "codes")
    s = _check_codes(scales, "scales")
    if c.ndim == 0:
        raise ValueError("codes must be an array with at least one dimension")
    axis_n = check_axis(axis, c.ndim)
    want = _scale_shape(c.shape, _check_block_size(block_size), axis_n)
    cb, axis_n = _to_blocks(c, block_size, axis_n)
    if s.shape != want:
        raise ValueError(f"scales must have shape {want} (codes' shape with axis {axis_n} divided by "
                         f"block_size={block_size}), got {s.shape}")
    x_scale = minifloat.decode(np.moveaxis(s, axis_n, -1), "e8m0").astype(np.float64)
    v = minifloat.decode(cb, elem).astype(np.float64) * x_scale[..., None]
    return _from_blocks(v, axis_n).astype(np.float32)


def fake_quantize_mx(x, elem: str = "e2m1", block_size: int = 32, axis: int = -1) -> np.ndarray:
    """mx_dequantize(mx_quantize(x)): the nearest MX values, in x's float dtype (MXFP4 by default).

    >>> fake_quantize_mx(np.array([0.1, -0.2, 0.3, 0.45], np.float32), block_size=4)
    array([ 0.09375, -0.1875 ,  0.25   ,  0.375  ], dtype=float32)
    """
    x = as_float_array(x)
    codes, scales = mx_quantize(x, elem, block_size, axis)
    return mx_dequantize(codes, scales, elem, block_size, axis).astype(x.dtype)


# --- NVFP4 ---------------------------------------------------------------------------------------

def nvfp4_quantize(x, block_size: int = 16, axis: int = -1, s_tensor: float | None = None):
    """NVFP4: E2M1 elements, one FP8 E4M3 scale per block of 16, one fp32 scale per tensor.

    The rule (NVIDIA, "Introducing NVFP4 for Efficient and Accurate Low-Precision Inference",
    developer blog, 2025; TensorRT Model Optimizer's NVFP4 tensor and Transformer Engine use the same):

        s_tensor = amax(|x|) / (448 * 6)                       fp32, so the block scales below fit E4M3
        s_block  = cast_e4m3fn_saturating(amax_block / 6 / s_tensor)     <= 448 by construction
        q_i      = cast_e2m1_saturating(x_i / (s_block * s_tensor))      (0 where s_block is 0)
        x_hat_i  = q_i * s_block * s_tensor

    Both casts round to nearest even; the divisions happen in float64 (s_tensor itself is rounded to
    float32). Pass ``s_tensor`` to use a calibrated per-tensor scale instead of amax / 2688 (block
    scales above 448 then saturate). Returns ``(element_codes, block_scale_codes, s_tensor)``
    (uint8 E2M1 codes shaped like x, uint8 E4M3 codes shaped like x with axis / block_size, a float).
    An all-zero tensor gets s_tensor = 0 and all codes 0.

    >>> x = np.array([0.1, -0.2, 0.3, 0.6, 0.01, 0.02, -0.07, 0.05])
    >>> codes, bs, st = nvfp4_quantize(x, block_size=4)   # s_tensor = 0.6 / 2688
    >>> f"{st:.6g}", minifloat.decode(bs, "e4m3fn").tolist(), minifloat.decode(codes, "e2m1").tolist()
    ('0.000223214', [448.0, 52.0], [1.0, -2.0, 3.0, 6.0, 1.0, 1.5, -6.0, 4.0])
    """
    x = as_float_array(x)
    b, axis = _to_blocks(x.astype(np.float64), block_size, axis)
    if s_tensor is None:
        s_tensor = float(np.abs(b).max()) / (448.0 * 6.0)
    elif not (isinstance(s_tensor, numbers.Real) and np.isfinite(s_tensor) and s_tensor > 0):
        raise ValueError(f"s_tensor must be a positive finite number (or None: amax / 2688), got {s_tensor!r}")
    s_tensor = float(np.float32(s_tensor))
    if s_tensor == 0.0:  # all zeros (or below float32's range)
        zeros = np.zeros(b.shape[:-1], np.uint8)
        return _from_blocks(np.zeros(b.shape, np.uint8), axis), np.moveaxis(zeros, -1, axis), 0.0
    bcodes = minifloat.encode(np.abs(b).max(axis=-1) / 6.0 / s_tensor, "e4m3fn", saturate=True)
    s_block = minifloat.decode(bcodes, "e4m3fn").astype(np.float64)
    denom = (s_block * s_tensor)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(denom > 0, b / np.where(denom > 0, denom, 1.0), 0.0)
    codes = minifloat.encode(scaled, "e2m1", saturate=True)
    return _from_blocks(codes, axis), np.moveaxis(bcodes, -1, axis), s_tensor


def nvfp4_dequantize(codes, block_scales, s_tensor: float, block_size: int = 16, axis: int = -1) -> np.ndarray:
    """NVFP4 decoding: x_hat_i = e2m1(q_i) * e4m3(s_block) * s_tensor (float32).

    >>> nvfp4_dequantize(np.array([2, 12], np.uint8), np.array([56], np.uint8), 0.5, block_size=2)
    array([ 0.5, -1. ], dtype=float32)
    """
    c = _check_codes(codes, "codes")
    s = _check_codes(block_scales, "block_scales")
    if not (isinstance(s_tensor, numbers.Real) and np.isfinite(s_tensor) and s_tensor >= 0):
        raise ValueError(f"s_tensor must be a finite number >= 0, got {s_tensor!r}")
    if c.ndim == 0:
        raise ValueError("codes must be an array with at least one dimension")
    axis_n = check_axis(axis, c.ndim)
    want = _scale_shape(c.shape, _check_block_size(block_size), axis_n)
    cb, axis_n = _to_blocks(c, block_size, axis_n)
    if s.shape != want:
        raise ValueError(f"block_scales must have shape {want}, got {s.shape}")
    sb = minifloat.decode(np.moveaxis(s, axis_n, -1), "e4m3fn").astype(np.float64)
    v = minifloat.decode(cb, "e2m1").astype(np.float64) * (sb * float(s_tensor))[..., None]
    return _from_blocks(v, axis_n).astype(np.float32)


def fake_quantize_nvfp4(x, block_size: int = 16, axis: int = -1, s_tensor: float | None = None) -> np.ndarray:
    """nvfp4_dequantize(nvfp4_quantize(x)) in x's float dtype. See nvfp4_quantize for the rule.

    >>> x = np.array([0.1, -0.2, 0.3, 0.6, 0.01, 0.02, -0.07, 0.05], np.float32)
    >>> [f"{v:.5f}" for v in fake_quantize_nvfp4(x, block_size=4)]
    ['0.10000', '-0.20000', '0.30000', '0.60000', '0.01161', '0.01741', '-0.06964', '0.04643']
    """
    x = as_float_array(x)
    codes, bs, st = nvfp4_quantize(x, block_size, axis, s_tensor)
    return nvfp4_dequantize(codes, bs, st, block_size, axis).astype(x.dtype)


# --- NF4 -----------------------------------------------------------------------------------------

#: The constant of QLoRA's code (bitsandbytes ``create_normal_map``): 0.9677083 ~ (1 - 1/30 + 1 - 1/32) / 2,
#: the mean of the outermost quantile levels of 15 and of 16 equal slices, written to 7 digits.
_NF4_OFFSET = 0.9677083


def nf4_codebook(offset: float = _NF4_OFFSET) -> np.ndarray:
    """The 16 NormalFloat4 values (Dettmers et al., "QLoRA", NeurIPS 2023, section 3 and appendix E).

    NF4 puts its levels at quantiles of N(0, 1), so that each level gets an equal share of normally
    distributed weights, and keeps an exact 0. With Q = the standard normal quantile function (inv_cdf):

        positive: Q(p) for 8 probabilities p evenly spaced from offset down to 0.5 (0.5 itself dropped)
        negative: -Q(p) for 7 probabilities p evenly spaced from offset down to 0.5 (0.5 itself dropped)
        plus 0; all divided by the largest, Q(offset), so the values span [-1, 1]

    >>> np.round(nf4_codebook()[[0, 7, 8, 15]], 4)
    array([-1.    ,  0.    ,  0.0796,  1.    ])
    """
    q = NormalDist().inv_cdf
    pos = [q(p) for p in np.linspace(offset, 0.5, 9)[:-1]]
    neg = [-q(p) for p in np.linspace(offset, 0.5, 8)[:-1]]
    v = np.sort(np.array(pos + [0.0] + neg))
    return v / v.max()


#: NF4 values as float32 (QLoRA's kernels hold them in float32).
NF4_CODEBOOK = nf4_codebook().astype(np.float32)

#: The table printed in QLoRA's appendix E (and in bitsandbytes), for the tests to compare against.
NF4_PUBLISHED = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
)


def nf4_quantize(x, block_size: int = 64, axis: int = -1):
    """NF4 (QLoRA): per block, absmax = max |x| (stored as fp32); index_i = the NF4 value nearest to
    x_i / absmax (at an exact midpoint, the lower value, like bitsandbytes' ``>`` comparisons).

    Returns ``(indices, absmax)``: uint8 indices 0..15 shaped like x, float32 absmax shaped like x with
    axis / block_size. Double quantization (QLoRA's 8-bit quantization of the absmax values) is NOT applied.

    >>> idx, am = nf4_quantize(np.array([0.0, 0.5, -1.0, 2.0]), block_size=4)
    >>> idx, am
    (array([ 7, 10,  2, 15], dtype=uint8), array([2.], dtype=float32))
    """
    x = as_float_array(x)
    b, axis = _to_blocks(x.astype(np.float64), block_size, axis)
    absmax = np.abs(b).max(axis=-1).astype(np.float32)
    am = absmax.astype(np.float64)[..., None]
    normed = np.where(am > 0, b / np.where(am > 0, am, 1.0), 0.0)
    cb = NF4_CODEBOOK.astype(np.float64)
    mids = (cb[1:] + cb[:-1]) / 2
    idx = np.searchsorted(mids, normed, side="left").astype(np.uint8)
    return _from_blocks(idx, axis), np.moveaxis(absmax, -1, axis)


def nf4_dequantize(indices, absmax, block_size: int = 64, axis: int = -1) -> np.ndarray:
    """NF4 decoding: x_hat_i = NF4_CODEBOOK[index_i] * absmax (float32).

    >>> nf4_dequantize(np.array([7, 15, 0], np.uint8), np.array([2.0, 2.0, 2.0], np.float32), block_size=1)
    array([ 0.,  2., -2.], dtype=float32)
    """
    c = _check_codes(indices, "indices")
    if c.size and (c.min() < 0 or c.max() > 15):
        raise ValueError(f"NF4 indices lie in [0, 15], got {c.min()}..{c.max()}")
    am = as_float_array(absmax, "absmax")
    if c.ndim == 0:
        raise ValueError("indices must be an array with at least one dimension")
    axis_n = check_axis(axis, c.ndim)
    want = _scale_shape(c.shape, _check_block_size(block_size), axis_n)
    cb, axis_n = _to_blocks(c.astype(np.int64), block_size, axis_n)
    if am.shape != want:
        raise ValueError(f"absmax must have shape {want}, got {am.shape}")
    if (am < 0).any():
        raise ValueError("absmax values are maxima of |x| and cannot be negative")
    v = NF4_CODEBOOK.astype(np.float64)[cb] * np.moveaxis(am, axis_n, -1).astype(np.float64)[..., None]
    return _from_blocks(v, axis_n).astype(np.float32)


def fake_quantize_nf4(x, block_size: int = 64, axis: int = -1) -> np.ndarray:
    """nf4_dequantize(nf4_quantize(x)) in x's float dtype.

    >>> fake_quantize_nf4(np.array([0.0, 0.5, -1.0, 2.0], np.float32), block_size=4)
    array([ 0.        ,  0.49222457, -1.0501461 ,  2.        ], dtype=float32)
    """
    x = as_float_array(x)
    idx, am = nf4_quantize(x, block_size, axis)
    return nf4_dequantize(idx, am, block_size, axis).astype(x.dtype)


# --- storage cost --------------------------------------------------------------------------------

#: method -> (element bits, bits of one block scale, default block size)
BITS_PER_WEIGHT_METHODS = {
    "mxfp4": (4, 8, 32),
    "mxfp6_e3m2": (6, 8, 32),
    "mxfp6_e2m3": (6, 8, 32),
    "mxfp8_e4m3": (8, 8, 32),
    "mxfp8_e5m2": (8, 8, 32),
    "nvfp4": (4, 8, 16),
    "nf4": (4, 32, 64),
}


def bits_per_weight(method: str, block_size: int | None = None, tensor_size: int | None = None) -> float:
    """Storage bits per weight including the scales: element_bits + scale_bits / block_size.

    MXFP4 g32: 4 + 8/32 = 4.25 (E8M0 scale). NVFP4 g16: 4 + 8/16 = 4.5 (E4M3 scale), plus its one fp32
    per-tensor scale: 32 / tensor_size more when ``tensor_size`` is given (negligible otherwise, not
    counted). NF4 g64: 4 + 32/64 = 4.5 with an fp32 absmax per block (QLoRA's double quantization,
    which brings it to about 4.127, is not applied). ``block_size=None`` uses the method's default.

    >>> bits_per_weight("mxfp4"), bits_per_weight("nvfp4"), bits_per_weight("nf4"), bits_per_weight("nf4", 128)
    (4.25, 4.5, 4.5, 4.25)
    """
    check_choice(method, "method", tuple(BITS_PER_WEIGHT_METHODS))
    elem_bits, scale_bits, default = BITS_PER_WEIGHT_METHODS[method]
    bs = default if block_size is None else _check_block_size(block_size)
    bpw = elem_bits + scale_bits / bs
    if tensor_size is not None:
        if isinstance(tensor_size, bool) or not isinstance(tensor_size, numbers.Integral) or tensor_size < 1:
            raise ValueError(f"tensor_size must be a positive whole number, got {tensor_size!r}")
        if method == "nvfp4":
            bpw += 32 / tensor_size
    return float(bpw)
