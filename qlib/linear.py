"""Linear (affine) quantization: the formulas everything else is built on.

Conventions (docs/conventions.md, sections 1 and 2):

* the scale ``S`` is the step size, real units per integer step;
* ``q = clamp(round(r / S) + Z, qmin, qmax)`` and ``r_hat = S * (q - Z)``;
* ``Z`` is the integer code that represents real 0 exactly;
* rounding is half-to-even by default (numpy ``rint``, PyTorch, ONNX Runtime),
  ``"half_away"`` (C ``round``, TFLite, AIMET) on request;
* arithmetic happens in the input's float dtype, so float32 data is divided by a
  float32 scale exactly as ONNX Runtime and TFLite do.

The seed blog post writes the scale the other way round, ``S' = (2^n - 1) / (max - min)``
(integer steps per real unit) with ``Q = round(S' * R + Z)``; :func:`seed_scale` and
:func:`step_from_seed_scale` convert.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ._validate import (as_float_array, check_axis, check_bits, check_choice, check_flag,
                        check_scale_fits, float_dtype_of, refuse_non_finite)

__all__ = [
    "QParams",
    "MIN_SCALE",
    "integer_range",
    "code_dtype",
    "round_half_even",
    "round_half_away",
    "qparams_from_range",
    "qparams_from_tensor",
    "quantize",
    "dequantize",
    "fake_quantize",
    "seed_scale",
    "step_from_seed_scale",
]

#: Smallest scale qlib hands out. A zero-width range (all zeros: a dead ReLU channel,
#: a zero bias) would give S = 0; like PyTorch's observers we fall back to float32's
#: machine epsilon, so zeros still map exactly to Z and nothing divides by zero.
MIN_SCALE = float(np.finfo(np.float32).eps)

ROUNDING_MODES = ("half_even", "half_away")
SCALE_RULES = ("qmax", "half_range")


# ----------------------------------------------------------------------------- integers
def integer_range(bits: int = 8, signed: bool = False, narrow_range: bool = False) -> tuple[int, int]:
    """Return ``(qmin, qmax)`` of an n-bit integer grid.

    signed: ``[-2^(n-1), 2^(n-1) - 1]``; unsigned: ``[0, 2^n - 1]``.
    ``narrow_range`` drops the lowest code (signed 8-bit becomes ``[-127, 127]``,
    symmetric around 0, as TFLite's weights use it; unsigned becomes ``[1, 255]``).

    >>> integer_range(8, signed=True), integer_range(8), integer_range(8, True, True)
    ((-128, 127), (0, 255), (-127, 127))
    """
    bits = check_bits(bits)
    signed = check_flag(signed, "signed")
    narrow_range = check_flag(narrow_range, "narrow_range")
    if signed:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        qmin, qmax = 0, 2**bits - 1
    if narrow_range:
        qmin += 1
    return qmin, qmax


def code_dtype(qmin: int, qmax: int) -> np.dtype:
    """Smallest numpy integer dtype that holds every code in ``[qmin, qmax]``.

    >>> code_dtype(0, 255), code_dtype(-128, 127), code_dtype(-8, 7), code_dtype(0, 65535)
    (dtype('uint8'), dtype('int8'), dtype('int8'), dtype('uint16'))
    """
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64):
        info = np.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dt)
    raise ValueError(f"no integer dtype holds codes in [{qmin}, {qmax}]")


# ----------------------------------------------------------------------------- rounding
def round_half_even(v: np.ndarray) -> np.ndarray:
    """Round to nearest, ties to even (banker's rounding): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.

    >>> round_half_even(np.array([0.5, 1.5, 2.5, -0.5, -1.5]))
    array([ 0.,  2.,  2., -0., -2.])
    """
    return np.rint(v)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (C ``round``): 0.5 -> 1, 2.5 -> 3, -0.5 -> -1.

    Computed as ``t = trunc(v)`` plus ``sign(v)`` when ``|v - t| >= 0.5``; ``v - t`` is
    exact in floating point, unlike the tempting ``floor(v + 0.5)``.

    >>> round_half_away(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994]))
    array([ 1.,  2.,  3., -1., -3.,  0.])
    """
    v = np.asarray(v)
    t = np.trunc(v)
    return t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0).astype(t.dtype)


_ROUNDERS = {"half_even": round_half_even, "half_away": round_half_away}


# ----------------------------------------------------------------------------- QParams
def _as_int_array(z, name="zero_point"):
    arr = np.asarray(z)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers, got {z!r}")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class QParams:
    """Quantization parameters: ``q = clamp(round(r / scale) + zero_point, qmin, qmax)``.

    Shapes: per-tensor -> ``scale`` is a float and ``zero_point`` an int; per-channel
    (``axis`` set, ``group_size`` None) -> 1-D arrays, one entry per index along
    ``axis``; block-wise (``group_size`` set) -> arrays shaped like the tensor with
    ``axis`` divided by ``group_size`` (one entry per block of ``group_size``
    consecutive elements along ``axis``, as ONNX's blocked DequantizeLinear).

    >>> qp = QParams(scale=0.5, zero_point=3, qmin=0, qmax=15, bits=4)
    >>> qp.signed, qp.dtype, qp.granularity
    (False, dtype('uint8'), 'per-tensor')
    """

    scale: float | np.ndarray
    zero_point: int | np.ndarray
    qmin: int
    qmax: int
    bits: int
    axis: int | None = None
    group_size: int | None = None
    symmetric: bool = False

    def __post_init__(self):
        bits = check_bits(self.bits)
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "symmetric", check_flag(self.symmetric, "symmetric"))
        for name in ("qmin", "qmax"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ValueError(f"{name} must be an integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        lo_all, hi_all = -(2 ** (bits - 1)), 2**bits - 1
        if not (lo_all <= self.qmin < self.qmax <= hi_all):
            raise ValueError(
                f"[qmin, qmax] = [{self.qmin}, {self.qmax}] is not a valid {bits}-bit integer range"
            )
        scale = as_float_array(self.scale, "scale").astype(np.float64)
        if (scale <= 0).any():
            raise ValueError(f"scale must be > 0 (it is the step size), got {self.scale!r}")
        if (scale < np.finfo(np.float64).tiny).any():
            raise ValueError(f"scale {float(scale.min()):g} is below float64's smallest normal number "
                             "(2.2e-308): no computation with it keeps its digits")
        zp = _as_int_array(self.zero_point)
        if scale.shape != zp.shape:
            raise ValueError(
                f"scale has shape {scale.shape} but zero_point has shape {zp.shape}; they must match"
            )
        if ((zp < self.qmin) | (zp > self.qmax)).any():
            raise ValueError(
                f"zero_point {self.zero_point!r} lies outside [qmin, qmax] = [{self.qmin}, {self.qmax}]"
            )
        if self.group_size is not None:
            if self.axis is None:
                raise ValueError("group_size needs an axis: the axis along which the groups run")
            if isinstance(self.group_size, bool) or not isinstance(self.group_size, numbers.Integral) or self.group_size < 1:
                raise ValueError(f"group_size must be a positive integer, got {self.group_size!r}")
            object.__setattr__(self, "group_size", int(self.group_size))
        if self.axis is None:
            if scale.ndim != 0:
                raise ValueError(
                    f"per-tensor parameters need a single scale, got shape {scale.shape} "
                    "(pass axis=... for per-channel parameters)"
                )
            object.__setattr__(self, "scale", float(scale))
            object.__setattr__(self, "zero_point", int(zp))
        else:
            if self.group_size is None and scale.ndim != 1:
                raise ValueError(
                    f"per-channel parameters need 1-D scale and zero_point, got shape {scale.shape}"
                )
            if scale.ndim == 0:
                raise ValueError("block-wise parameters need an array of scales, one per block")
            if isinstance(self.axis, bool) or not isinstance(self.axis, numbers.Integral):
                raise ValueError(f"axis must be an integer or None, got {self.axis!r}")
            # block-wise parameters have the tensor's rank, so their axis can be normalised now
            axis = check_axis(self.axis, scale.ndim) if self.group_size is not None else int(self.axis)
            object.__setattr__(self, "axis", axis)
            scale.setflags(write=False)
            zp.setflags(write=False)
            object.__setattr__(self, "scale", scale)
            object.__setattr__(self, "zero_point", zp)

    # ------------------------------------------------------------------ helpers
    @property
    def signed(self) -> bool:
        """True when the integer grid has negative codes."""
        return self.qmin < 0

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype :func:`quantize` returns for these parameters."""
        return code_dtype(self.qmin, self.qmax)

    @property
    def granularity(self) -> str:
        """'per-tensor', 'per-channel' or 'block-wise'."""
        if self.axis is None:
            return "per-tensor"
        return "per-channel" if self.group_size is None else "block-wise"

    @property
    def range(self) -> tuple:
        """The real values of the lowest and highest codes: ``S*(qmin - Z)``, ``S*(qmax - Z)``."""
        s, z = np.asarray(self.scale), np.asarray(self.zero_point)
        with np.errstate(over="ignore"):  # a grid beyond float64's max: +-inf says so
            return s * (self.qmin - z), s * (self.qmax - z)

    def _blocked(self, x: np.ndarray):
        """Return ``(x_view, scale, zero_point, shape)`` with scale/zero_point broadcastable to x_view."""
        s = np.asarray(self.scale, dtype=np.float64)
        z = np.asarray(self.zero_point, dtype=np.int64)
        if self.axis is None:
            return x, s, z, x.shape
        if x.ndim == 0:
            raise ValueError(f"these parameters are {self.granularity} (axis={self.axis}) but x is a scalar")
        if self.group_size is None:
            axis = check_axis(self.axis, x.ndim)
            if x.shape[axis] != s.shape[0]:
                raise ValueError(
                    f"x has {x.shape[axis]} entries along axis {axis} but the parameters hold "
                    f"{s.shape[0]} channels"
                )
            shape = [1] * x.ndim
            shape[axis] = s.shape[0]
            return x, s.reshape(shape), z.reshape(shape), x.shape
        axis, g = self.axis, self.group_size
        if x.ndim != s.ndim:
            raise ValueError(f"block-wise parameters have {s.ndim} dimensions but x has {x.ndim}")
        if x.shape[axis] % g:
            raise ValueError(
                f"group_size={g} does not divide axis {axis} of length {x.shape[axis]}; "
                f"pick a group size that divides it (e.g. {_divisors_hint(x.shape[axis])})"
            )
        expected = list(x.shape)
        expected[axis] //= g
        if list(s.shape) != expected:
            raise ValueError(f"x of shape {x.shape} with group_size={g} along axis {axis} needs "
                             f"parameters of shape {tuple(expected)}, got {s.shape}")
        view_shape = x.shape[:axis] + (x.shape[axis] // g, g) + x.shape[axis + 1:]
        return (x.reshape(view_shape), np.expand_dims(s, axis + 1), np.expand_dims(z, axis + 1), x.shape)


def _divisors_hint(n: int) -> str:
    ds = [d for d in range(1, n + 1) if n % d == 0]
    return ", ".join(map(str, ds[:8])) + (" ..." if len(ds) > 8 else "")


# ----------------------------------------------------------------------------- qparams
def _range_arrays(x_min, x_max):
    lo = as_float_array(x_min, "x_min").astype(np.float64)
    hi = as_float_array(x_max, "x_max").astype(np.float64)
    if lo.shape != hi.shape:
        raise ValueError(f"x_min has shape {lo.shape} but x_max has shape {hi.shape}")
    bad = lo > hi
    if bad.any():
        raise ValueError(
            f"x_min > x_max ({np.asarray(lo)[bad].ravel()[0]:g} > {np.asarray(hi)[bad].ravel()[0]:g}): "
            "the range is upside down"
        )
    return lo, hi


def qparams_from_range(x_min, x_max, bits=8, symmetric=False, signed=None, narrow_range=False,
                       scale_rule="qmax", axis=None, group_size=None) -> QParams:
    """Quantization parameters for real values in ``[x_min, x_max]``.

    The range is first widened to include 0 (``lo = min(x_min, 0)``, ``hi = max(x_max, 0)``)
    so that real 0 is exactly representable.

    * asymmetric (min-max), the default: ``S = (hi - lo) / (qmax - qmin)``,
      ``Z = qmin + round(-lo / S)`` (AIMET's order of operations), unsigned codes by default;
    * symmetric (max-abs): signed codes by default, ``Z = 0`` and ``S = max(|lo|, |hi|) / qmax``
      (``scale_rule="qmax"``: ONNX Runtime, TFLite, AIMET) or ``.../((qmax - qmin) / 2)``
      (``scale_rule="half_range"``: PyTorch's 127.5 for 8 bits). With unsigned codes the
      zero point is the middle code ``(qmin + qmax + 1) // 2`` (128 for 8 bits), as PyTorch;
    * a zero-width range (all zeros) is legal: ``S`` falls back to :data:`MIN_SCALE`.

    ``axis``: per-channel; ``x_min``/``x_max`` are 1-D, one entry per channel along ``axis``.
    ``group_size``: block-wise; ``x_min``/``x_max`` are shaped like the tensor with ``axis``
    divided by ``group_size``.

    The seed's first worked example, [-1.8, 0.5] at 8 bits, and its [-5.1, 5.1] tie:

    >>> qp = qparams_from_range(-1.8, 0.5)
    >>> print(f"S = {qp.scale:.9f}, 1/S = {1 / qp.scale:.6f}, Z = {qp.zero_point}")
    S = 0.009019608, 1/S = 110.869565, Z = 200
    >>> qparams_from_range(-5.1, 5.1).zero_point
    128
    >>> qp = qparams_from_range(-0.3, 1.0, bits=8, symmetric=True)
    >>> print(f"S = {qp.scale:.6f} = 1.0/127, Z = {qp.zero_point}, codes [{qp.qmin}, {qp.qmax}]")
    S = 0.007874 = 1.0/127, Z = 0, codes [-128, 127]
    """
    bits = check_bits(bits)
    check_choice(scale_rule, "scale_rule", SCALE_RULES)
    symmetric = check_flag(symmetric, "symmetric")
    signed = check_flag(signed, "signed", allow_none=True)
    signed = symmetric if signed is None else signed
    narrow_range = check_flag(narrow_range, "narrow_range")
    lo, hi = _range_arrays(x_min, x_max)
    if axis is None:
        if group_size is not None:
            raise ValueError("group_size needs an axis: the axis along which the groups run")
        if lo.ndim != 0 and lo.size == 1:
            lo, hi = lo.reshape(()), hi.reshape(())
        if lo.ndim != 0:
            raise ValueError(
                f"per-tensor quantization needs a single x_min and x_max, got arrays of shape {lo.shape} "
                "(pass axis=... for per-channel parameters)"
            )
    else:
        if lo.ndim == 0:
            raise ValueError(f"axis={axis} (per-channel) needs arrays of x_min/x_max, one per channel")
        if group_size is None:
            if lo.ndim != 1:
                raise ValueError(f"per-channel x_min/x_max must be 1-D (one per channel), got shape {lo.shape}")
        else:
            check_axis(axis, lo.ndim)

    qmin, qmax = integer_range(bits, signed, narrow_range)
    lo = np.minimum(lo, 0.0)
    hi = np.maximum(hi, 0.0)
    if symmetric:
        amax = np.maximum(-lo, hi)
        zp = np.zeros_like(lo, dtype=np.int64) if signed else np.full(lo.shape, (qmin + qmax + 1) // 2, np.int64)
        if scale_rule == "qmax":
            scale = amax / (qmax - zp)
        else:
            scale = amax / ((qmax - qmin) / 2)
        scale = np.maximum(scale, MIN_SCALE)
    else:
        with np.errstate(over="ignore"):
            width = hi - lo  # overflows to inf for ranges wider than float64's max (+-1.7e308)
        n = qmax - qmin
        scale = np.where(np.isfinite(width), width / n, hi / n - lo / n)
        scale = np.maximum(scale, MIN_SCALE)
        zp = qmin + np.rint(-lo / scale).astype(np.int64)
        zp = np.clip(zp, qmin, qmax)
    return QParams(scale=scale, zero_point=zp, qmin=qmin, qmax=qmax, bits=bits, axis=axis,
                   group_size=group_size, symmetric=bool(symmetric))


def qparams_from_tensor(x, bits=8, symmetric=False, signed=None, narrow_range=False,
                        scale_rule="qmax", axis=None, group_size=None) -> QParams:
    """Min-max parameters computed from the data itself, per-tensor, per-channel or block-wise.

    Per-channel keeps one (min, max) per index along ``axis`` (reduces every other axis);
    block-wise keeps one per block of ``group_size`` consecutive elements along ``axis``.

    >>> w = np.array([[0.1, -0.2, 0.4, 0.3], [2.0, -1.0, 0.5, 0.0]])
    >>> qparams_from_tensor(w, bits=8, symmetric=True, axis=0).scale * 127
    array([0.4, 2. ])
    >>> qparams_from_tensor(w, symmetric=True, axis=1, group_size=2).scale.shape
    (2, 2)
    """
    x = as_float_array(x)
    if axis is None:
        if group_size is not None:
            raise ValueError("group_size needs an axis: the axis along which the groups run")
        lo, hi = x.min(), x.max()
    else:
        axis = check_axis(axis, x.ndim)
        if group_size is None:
            other = tuple(i for i in range(x.ndim) if i != axis)
            lo, hi = x.min(axis=other), x.max(axis=other)
        else:
            if isinstance(group_size, bool) or not isinstance(group_size, numbers.Integral) or group_size < 1:
                raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
            n = x.shape[axis]
            if n % group_size:
                raise ValueError(
                    f"group_size={group_size} does not divide axis {axis} of length {n}; "
                    f"pick a group size that divides it (e.g. {_divisors_hint(n)})"
                )
            xb = x.reshape(x.shape[:axis] + (n // group_size, group_size) + x.shape[axis + 1:])
            lo, hi = xb.min(axis=axis + 1), xb.max(axis=axis + 1)
    return qparams_from_range(lo, hi, bits=bits, symmetric=symmetric, signed=signed,
                              narrow_range=narrow_range, scale_rule=scale_rule, axis=axis,
                              group_size=group_size)


# ----------------------------------------------------------------------------- quantize
def _check_qparams(qp):
    if not isinstance(qp, QParams):
        raise ValueError(f"expected a qlib.QParams, got {type(qp).__name__} (build one with qlib.qparams_from_range)")


def _compute_dtype(x, qp):
    # 32-bit codes (biases) exceed float32's 24-bit mantissa: work in float64 there.
    return np.float64 if qp.bits > 16 else x.dtype


def _overflow_possible(qp: QParams, s_ct, dtype) -> bool:
    """True when the grid's extreme real values ``S * (qmin - Z)``, ``S * (qmax - Z)`` come within a
    factor 2 of ``dtype``'s largest number, so ``S * (q - Z)`` may overflow to inf (cheap: one
    value per scale, not per element)."""
    limit = 0.5 * float(np.finfo(dtype).max)
    if qp.axis is None:  # per-tensor: plain Python numbers
        z = qp.zero_point
        return float(s_ct) * max(abs(qp.qmin - z), abs(qp.qmax - z)) > limit
    z = np.asarray(qp.zero_point, dtype=np.float64)
    reach = np.maximum(np.abs(qp.qmin - z), np.abs(qp.qmax - z))
    with np.errstate(over="ignore"):
        bound = np.asarray(s_ct, dtype=np.float64) * reach
    return bool((bound > limit).any())


def _refuse_overflow(out: np.ndarray, qp: QParams, dtype, what: str) -> None:
    if not np.isfinite(out).all():
        lo, hi = qp.range
        raise ValueError(
            f"{what}: S * (q - Z) overflows {np.dtype(dtype).name} -- the grid reaches "
            f"[{float(np.min(lo)):.4g}, {float(np.max(hi)):.4g}] but {np.dtype(dtype).name} stops at "
            f"+-{float(np.finfo(dtype).max):.4g}, so the result would be inf; use a narrower range "
            "(a smaller scale) or float64"
        )


def quantize(x, qp: QParams, rounding: str = "half_even") -> np.ndarray:
    """Real values to integer codes: ``q = clamp(round(x / S) + Z, qmin, qmax)``.

    Returns the smallest numpy integer dtype that holds ``[qmin, qmax]`` (``qp.dtype``).
    The division happens in ``x``'s float dtype (float32 data, float32 scale: as ONNX
    Runtime and TFLite; float16 and other input in float64); ``rounding`` is
    ``"half_even"`` (default) or ``"half_away"``. A scale that the compute dtype cannot
    hold (``1e-50`` or ``1e60`` with float32 data) is refused with a ValueError.

    The seed's example, ``[-1.8, -1.0, 0, 0.5]`` at 8 bits:

    >>> quantize([-1.8, -1.0, 0.0, 0.5], qparams_from_range(-1.8, 0.5))
    array([  0,  89, 200, 255], dtype=uint8)
    >>> qp = QParams(scale=1.0, zero_point=0, qmin=-128, qmax=127, bits=8)
    >>> quantize([0.5, 1.5, 2.5], qp), quantize([0.5, 1.5, 2.5], qp, rounding="half_away")
    (array([0, 2, 2], dtype=int8), array([1, 2, 3], dtype=int8))
    """
    _check_qparams(qp)
    check_choice(rounding, "rounding", ROUNDING_MODES)
    x = as_float_array(x, check_finite=False)
    fast = qp.axis is None and rounding == "half_even" and x.size >= _BLOCK
    if not fast:
        refuse_non_finite(x)  # the blocked fast path checks block by block, in the cache
    ct = _compute_dtype(x, qp)
    s_ct = check_scale_fits(qp.scale, ct)
    # x / S may overflow to inf for huge x and a tiny S: the clamp then gives qmin/qmax, which is right
    with np.errstate(over="ignore", invalid="ignore"):
        if fast:
            return _quantize_per_tensor_blocked(x.astype(ct, copy=False), qp)
        xv, s, z, shape = qp._blocked(x.astype(ct, copy=False))
        v = np.asarray(_ROUNDERS[rounding](np.divide(xv, s_ct.reshape(s.shape))))  # asarray: 0-d input gives a scalar
    v += z.astype(ct)
    np.clip(v, qp.qmin, qp.qmax, out=v)
    return v.astype(qp.dtype).reshape(shape)


_BLOCK = 1 << 16  # elements per block: a few hundred KB, stays in the L2 cache


def _quantize_per_tensor_blocked(x: np.ndarray, qp: QParams) -> np.ndarray:
    """The fast twin of :func:`quantize`'s one-line formula: the same arithmetic (divide, rint, + Z,
    clip), done block by block so each pass over the data hits the cache instead of main memory
    (about 3x faster on large tensors). NaN/inf input is refused here too: a block whose sum
    before the clamp is not finite is checked element by element (an inf that only comes from
    x / S overflowing is legitimate: it clamps to qmin/qmax)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.size, qp.dtype)
    buf = np.empty(_BLOCK, flat.dtype)
    s = flat.dtype.type(qp.scale)
    z = flat.dtype.type(qp.zero_point)
    for start in range(0, flat.size, _BLOCK):
        n = min(_BLOCK, flat.size - start)
        b = buf[:n]
        np.divide(flat[start:start + n], s, out=b)
        np.rint(b, out=b)
        b += z
        if not np.isfinite(np.add.reduce(b)) and not np.isfinite(flat[start:start + n]).all():
            refuse_non_finite(x)  # the message counts the NaN/inf of the whole tensor
        np.clip(b, qp.qmin, qp.qmax, out=b)
        out[start:start + n] = b  # exact: b holds whole numbers inside the dtype's range
    return out.reshape(x.shape)


def _fake_quantize_per_tensor_blocked(x: np.ndarray, qp: QParams, s: np.ndarray) -> np.ndarray:
    """The fast twin of :func:`fake_quantize`'s formula ``S * clamp(round(x / S), qmin - Z, qmax - Z)``:
    the same operations in the same dtype, block by block in the output array itself, so each
    pass hits the cache; NaN/inf input refused as in :func:`_quantize_per_tensor_blocked`."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    s = flat.dtype.type(s)
    lo, hi = qp.qmin - qp.zero_point, qp.qmax - qp.zero_point
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, flat.size, _BLOCK):
            b = out[start:start + _BLOCK]
            np.divide(flat[start:start + _BLOCK], s, out=b)
            np.rint(b, out=b)
            if not np.isfinite(np.add.reduce(b)) and not np.isfinite(flat[start:start + _BLOCK]).all():
                refuse_non_finite(x)  # the message counts the NaN/inf of the whole tensor
            np.clip(b, lo, hi, out=b)
            b *= s
    return out.reshape(x.shape)


def dequantize(q, qp: QParams, dtype=np.float64) -> np.ndarray:
    """Integer codes back to reals: ``r_hat = S * (q - Z)``.

    Codes are cast to int64 before ``Z`` is subtracted (numpy's ``uint8 - 200`` would wrap
    around). ``dtype=np.float32`` reproduces ONNX Runtime's DequantizeLinear bit for bit;
    other float dtypes (float16, longdouble) are computed in float64 and rounded once.
    A result that overflows ``dtype`` (inf) is refused with a ValueError.

    >>> qp = qparams_from_range(-1.8, 0.5)
    >>> print(np.array2string(dequantize(np.array([0, 89, 200, 255], np.uint8), qp), precision=4))
    [-1.8039 -1.0012  0.      0.4961]
    """
    _check_qparams(qp)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be a float dtype such as np.float32 or np.float64, got {dtype!r}") from None
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a float dtype, got {dtype}")
    arr = np.asarray(q)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all() and np.all(arr == np.round(arr)):
            if np.abs(arr).max() >= 2.0**62:
                raise ValueError(f"codes must lie in [qmin, qmax] = [{qp.qmin}, {qp.qmax}], got values up to {np.abs(arr).max():g}")
            arr = arr.astype(np.int64)  # whole-number floats such as [0., 89.] are accepted
        else:
            raise ValueError(
                f"dequantize needs integer codes, got dtype {arr.dtype} "
                "(did you pass real values? use quantize first, or fake_quantize)"
            )
    if arr.size == 0:
        raise ValueError("q is empty: there is nothing to dequantize")
    if arr.dtype == np.uint64 and arr.max() > qp.qmax:  # would wrap to negative int64 below
        raise ValueError(f"codes must lie in [qmin, qmax] = [{qp.qmin}, {qp.qmax}], got values up to {arr.max()}")
    arr = arr.astype(np.int64)
    if arr.min() < qp.qmin or arr.max() > qp.qmax:
        raise ValueError(
            f"codes must lie in [qmin, qmax] = [{qp.qmin}, {qp.qmax}], got values from "
            f"{arr.min()} to {arr.max()}"
        )
    ct = np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)
    s_ct = check_scale_fits(qp.scale, ct)
    qv, s, z, shape = qp._blocked(arr)
    with np.errstate(over="ignore", invalid="ignore"):
        out = (qv - z).astype(ct) * s_ct.reshape(s.shape)
        out = out.astype(dtype, copy=False).reshape(shape)
    if _overflow_possible(qp, s_ct, dtype):
        _refuse_overflow(out, qp, dtype, "dequantize")
    return out


def fake_quantize(x, qp: QParams, rounding: str = "half_even") -> np.ndarray:
    """Quantize then dequantize in one step; the result has ``x``'s float dtype.

    ``fake_quantize(x) = S * (clamp(round(x / S) + Z, qmin, qmax) - Z)`` = ``S * clamp(round(x / S), qmin - Z, qmax - Z)``.

    float32 data is computed in float32 (as ONNX Runtime's QuantizeLinear + DequantizeLinear);
    float16 (and any other float dtype) in float64, rounded once to the input's dtype. A
    scale the compute dtype cannot hold, or a grid whose end values ``S * (q - Z)`` overflow
    the output dtype (float32 data near +-3.4e38), is refused with a ValueError.

    >>> qp = qparams_from_range(-1.8, 0.5)
    >>> print(np.array2string(fake_quantize(np.array([-1.8, -1.0, 0.0, 0.5]), qp), precision=6))
    [-1.803922 -1.001176  0.        0.496078]
    >>> fake_quantize(np.float16([0.3, -1.0]), qp)
    array([ 0.2976, -1.001 ], dtype=float16)
    """
    _check_qparams(qp)
    check_choice(rounding, "rounding", ROUNDING_MODES)
    out_dtype = float_dtype_of(x)
    x = as_float_array(x, check_finite=False)
    ct = _compute_dtype(x, qp)
    fast = qp.axis is None and rounding == "half_even" and x.size >= _BLOCK and out_dtype == ct == x.dtype
    if not fast:
        refuse_non_finite(x)  # the blocked fast path checks block by block, in the cache
    s_ct = check_scale_fits(qp.scale, ct)
    if fast:
        out = _fake_quantize_per_tensor_blocked(x, qp, s_ct)
        if _overflow_possible(qp, s_ct, out_dtype):
            _refuse_overflow(out, qp, out_dtype, "fake_quantize")
        return out
    xv, s, z, shape = qp._blocked(x.astype(ct, copy=False))
    s = s_ct.reshape(s.shape)
    # x / S -> inf (huge x, tiny S) is clamped below, which is right; S * q -> inf is checked after
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.asarray(_ROUNDERS[rounding](np.divide(xv, s)))  # asarray: 0-d input gives a scalar
        if qp.axis is None:
            np.clip(v, qp.qmin - qp.zero_point, qp.qmax - qp.zero_point, out=v)
        else:
            v = np.clip(v, (qp.qmin - z).astype(ct), (qp.qmax - z).astype(ct))
        v *= s
        out = v.astype(out_dtype, copy=False).reshape(shape)
    if _overflow_possible(qp, s_ct, out_dtype):
        _refuse_overflow(out, qp, out_dtype, "fake_quantize")
    return out


# ----------------------------------------------------------------------------- seed's S'
def seed_scale(x_min: float, x_max: float, bits: int = 8) -> float:
    """The seed's (and SNPE docs') scale ``S' = (2^n - 1) / (max - min)``: integer steps per real unit.

    It is the reciprocal of qlib's step size, ``S' = 1 / S``. Takes one range (two numbers);
    the range is widened to include 0, as everywhere in qlib.

    >>> print(f"{seed_scale(-1.8, 0.5):.6f}  {seed_scale(-5.1, 5.1):.6f}")
    110.869565  25.000000
    """
    bits = check_bits(bits)
    lo, hi = _range_arrays(x_min, x_max)
    if lo.size != 1:
        raise ValueError(
            f"seed_scale takes a single x_min and x_max (one range), got arrays of shape {lo.shape}; "
            "for one S' per channel call it once per channel"
        )
    lo, hi = float(np.minimum(lo, 0.0).ravel()[0]), float(np.maximum(hi, 0.0).ravel()[0])
    if hi == lo:
        raise ValueError("a zero-width range has no finite S' = (2^n - 1) / (max - min)")
    n = 2**bits - 1
    width = hi - lo
    if not np.isfinite(width):  # wider than float64's max: halve both ends first
        return (n / 2) / (hi / 2 - lo / 2)
    s = n / width
    if not np.isfinite(s):
        raise ValueError(f"the range [{lo:g}, {hi:g}] is so narrow that S' = {n} / {width:g} overflows float64")
    return s


def step_from_seed_scale(seed_s: float) -> float:
    """Convert the seed's ``S'`` (steps per unit) into qlib's step size ``S = 1 / S'``.

    >>> print(f"{step_from_seed_scale(110.869565):.9f}")
    0.009019608
    """
    arr = np.asarray(seed_s) if isinstance(seed_s, np.ndarray) else seed_s
    if isinstance(arr, np.ndarray):
        if arr.size != 1 or arr.dtype.kind not in "iuf":
            raise ValueError(f"S' must be one positive number, got {seed_s!r}")
        arr = arr.ravel()[0]
    if isinstance(arr, (bool, np.bool_)) or not isinstance(arr, (numbers.Real, np.integer, np.floating)):
        raise ValueError(f"S' must be a positive finite number, got {seed_s!r}")
    s = float(arr)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"S' must be a positive finite number, got {seed_s!r}")
    step = 1.0 / s
    if not np.isfinite(step):
        raise ValueError(f"S' = {s:g} is so small that S = 1 / S' overflows float64")
    return step
