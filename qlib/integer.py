"""Integer-only inference: fixed-point requantization and the int8 linear layer.

Jacob et al. 2018 ("Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference"), gemmlowp and TFLite's reference kernels.

A quantized linear layer computes, for each output ``o``::

    acc[o] = sum_k (x_q[k] - Z_x) * (w_q[o, k] - Z_w) + bias_q[o]      (int32)
    y_q[o] = clamp(Z_y + round(M * acc[o]), lo, qmax),   M = S_x * S_w / S_y

``M`` is a real number, but an integer-only device has no floating point. So ``M`` is
written once, offline, as a 31-bit fixed-point number and a power of two,
``M ~= M0 * 2^(shift - 31)`` (:func:`quantize_multiplier`), and the product ``M * acc`` is
done with a 64-bit integer multiply and two rounding shifts
(:func:`multiply_by_quantized_multiplier`). Every array here holds int32 values stored
in int64 numpy arrays while they are being computed, so nothing wraps around silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_choice, check_flag
from .linear import dequantize, quantize, round_half_away

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "quantize_multiplier",
    "dequantize_multiplier",
    "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier",
    "fixed_point_multiply",
    "accumulator_bound",
    "accumulate_expanded",
    "fold_zero_points",
    "requantize",
    "requantize_float",
    "IntegerLinear",
    "integer_linear_from_codes",
    "IntegerMLP",
    "integerize",
    "exact_single_rounding",
    "tie_distance",
    "tie_margin",
    "requantization_chain",
    "explain_differences",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
_ROUNDINGS = ("double", "single")


# ----------------------------------------------------------------------------- checks
def _as_int_array(x, name: str, lo: int = INT32_MIN, hi: int = INT32_MAX) -> np.ndarray:
    """``x`` as an int64 array, after checking that it holds integers inside ``[lo, hi]``."""
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "iub":
        if arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all() and np.all(arr == np.round(arr)):
            arr = arr.astype(np.float64)
        else:
            raise ValueError(f"{name} must hold integers (int32 values), got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds values beyond int64")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}], got values from {int(arr.min())} to {int(arr.max())}"
        )
    return arr.astype(np.int64)


def _scalar_or_array(arr: np.ndarray, dtype=np.int32):
    """Plain Python int for 0-d results, a numpy array of ``dtype`` otherwise."""
    return int(arr) if arr.ndim == 0 else arr.astype(dtype)


# ----------------------------------------------------------------------------- multiplier
def quantize_multiplier(M):
    """Write a real multiplier as a Q31 integer and a shift: ``M ~= M0 * 2^(shift - 31)``.

    TFLite's ``QuantizeMultiplier``: ``M = q * 2^shift`` with ``q`` in ``[0.5, 1)`` (``frexp``),
    ``M0 = round_half_away(q * 2^31)`` (so ``2^30 <= M0 < 2^31``; when rounding reaches
    ``2^31`` it becomes ``2^30`` and ``shift + 1``). Multipliers too small to survive
    (``shift < -31`` after that carry, i.e. ``M < 2^-32`` up to rounding) are flushed to
    ``(0, 0)``, and ``M = 0`` gives ``(0, 0)``, as in TFLite. ``M`` may be an array
    (per-channel); the result then holds arrays. ``M`` must be finite, ``>= 0`` and below
    ``2^31 - 1/2``: from there on ``M0`` rounds up to ``2^31`` and the shift would be 32,
    which no kernel accepts (TFLite would hand it out and then fail its own check).

    >>> quantize_multiplier(0.25), quantize_multiplier(0.75), quantize_multiplier(1.25)
    ((1073741824, -1), (1610612736, 0), (1342177280, 1))
    >>> quantize_multiplier(2.0 ** -31), quantize_multiplier(2.0 ** -33), quantize_multiplier(0.0)
    ((1073741824, -30), (0, 0), (0, 0))
    >>> quantize_multiplier(1 - 2.0 ** -40)     # M0 rounds up to 2^31: halved, shift + 1
    (1073741824, 1)
    """
    m = np.asarray(M)
    if m.dtype == object or m.dtype.kind not in "iuf" or m.size == 0:
        raise ValueError(f"M must be a real number (or an array of them), got {M!r}")
    m = m.astype(np.float64)
    if not np.isfinite(m).all():
        raise ValueError(f"M must be finite, got {M!r}")
    if (m < 0).any():
        raise ValueError(
            f"M must be >= 0, got {M!r}: M = S_in * S_w / S_out is a ratio of positive scales "
            "(a negative multiplier means a sign error somewhere)"
        )
    if (m >= 2.0**31 - 0.5).any():
        raise ValueError(
            f"M = {M!r} is too large: it rounds to M0 * 2^(shift - 31) with shift 32, and M * acc could "
            "never fit in int32 anyway (need M < 2^31 - 1/2)"
        )
    q, shift = np.frexp(m)
    m0 = round_half_away(q * 2.0**31).astype(np.int64)
    carry = m0 == 2**31
    m0 = np.where(carry, m0 // 2, m0)
    shift = np.where(carry, shift + 1, shift).astype(np.int64)
    flush = (shift < -31) | (m == 0)
    m0 = np.where(flush, 0, m0)
    shift = np.where(flush, 0, shift)
    return _scalar_or_array(m0, np.int64), _scalar_or_array(shift, np.int64)


def dequantize_multiplier(M0, shift):
    """The real multiplier a ``(M0, shift)`` pair stands for: ``M0 * 2^(shift - 31)`` (exact).

    >>> dequantize_multiplier(1610612736, 0), dequantize_multiplier(*quantize_multiplier(0.1))
    (0.75, 0.1)
    """
    m0 = _as_int_array(M0, "M0", 0, INT32_MAX)
    sh = _as_int_array(shift, "shift", -31, 31)
    out = np.ldexp(m0.astype(np.float64), (sh - 31).astype(np.int32))
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------- gemmlowp
def _trunc_div_pow2(v: np.ndarray, e: int) -> np.ndarray:
    """C-style integer division by ``2^e`` (truncates toward zero; numpy's ``>>`` floors)."""
    return np.where(v >= 0, v >> e, -((-v) >> e))


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's fixed-point product: ``round(a * b / 2^31)`` in int32, ties rounded up.

    With ``b = M0`` (a Q31 number in ``[0.5, 1)``) this multiplies ``a`` by ``M0 / 2^31``.
    The C code adds a nudge of ``2^30`` (or ``1 - 2^30`` when ``a * b < 0``) and divides by
    ``2^31`` truncating toward zero: rounding to nearest, and an exact half goes up
    (``1.5 -> 2`` but ``-1.5 -> -1``: the ``1`` in ``1 - 2^30`` keeps negative ties from going down).
    The only product that overflows, ``INT32_MIN * INT32_MIN`` (= +2^62, doubled 2^63),
    saturates to ``INT32_MAX``. ``a`` and ``b`` are int32 values (arrays broadcast).

    >>> saturating_rounding_doubling_high_mul(2**30, 2**30)       # 0.5 * 0.5 in Q31
    536870912
    >>> saturating_rounding_doubling_high_mul([3, -3, -5], 2**30)   # 1.5, -1.5, -2.5
    array([ 2, -1, -2], dtype=int32)
    >>> saturating_rounding_doubling_high_mul(-2**31, -2**31)
    2147483647
    """
    a64 = _as_int_array(a, "a")
    b64 = _as_int_array(b, "b")
    ab = a64 * b64  # |a * b| <= 2^62: exact in int64
    nudge = np.where(ab >= 0, 2**30, 1 - 2**30)
    high = _trunc_div_pow2(ab + nudge, 31)
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    return _scalar_or_array(np.where(overflow, INT32_MAX, high))


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's ``RoundingDivideByPOT``: ``round(x / 2^exponent)``, ties away from zero.

    An arithmetic shift right floors; gemmlowp adds 1 when the bits shifted out
    (``x & (2^e - 1)``) exceed half of ``2^e`` (or reach it, for negative ``x``).
    ``exponent`` is in ``[0, 31]`` (arrays broadcast).

    >>> rounding_divide_by_pot([5, 6, 7, -5, -6, -7], 1)     # 2.5, 3, 3.5, -2.5, -3, -3.5
    array([ 3,  3,  4, -3, -3, -4], dtype=int32)
    >>> rounding_divide_by_pot(-1, 31), rounding_divide_by_pot(2**30, 31)
    (0, 1)
    """
    x64 = _as_int_array(x, "x")
    e = _as_int_array(exponent, "exponent", 0, 31)
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return _scalar_or_array((x64 >> e) + (remainder > threshold))


def multiply_by_quantized_multiplier(x, M0, shift, rounding: str = "double"):
    """Integer-only ``x * M`` with ``M = M0 * 2^(shift - 31)``, rounded to the nearest integer.

    ``rounding="double"`` (default): TFLite's classic reference kernel, built from gemmlowp,
    ``rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x * 2^left, M0), right)``
    with ``left = max(shift, 0)``, ``right = max(-shift, 0)``. It rounds twice (first to
    1/2^right, then to an integer), so it can differ by one from rounding ``x * M`` once.
    ``rounding="single"``: TFLite's newer ``TFLITE_SINGLE_ROUNDING`` kernel,
    ``(x * M0 + 2^(30 - shift)) >> (31 - shift)``: one rounding, ties toward +infinity
    (needs ``shift <= 30``).

    ``x`` holds int32 values (accumulators); ``M0`` and ``shift`` may be per-channel
    arrays that broadcast against ``x``. Raises ValueError when ``x * 2^left`` or the
    result would overflow int32 (a C kernel would silently give garbage).

    >>> M0, shift = quantize_multiplier(0.3)
    >>> multiply_by_quantized_multiplier([100, -100, 5, -5, 1000], M0, shift)   # 30, -30, 1.5, -1.5, 300
    array([  30,  -30,    2,   -2,  300], dtype=int32)
    >>> M0, shift = quantize_multiplier(0.25)              # exact: 6 * 0.25 = 1.5 is a tie
    >>> multiply_by_quantized_multiplier([6, -6], M0, shift), multiply_by_quantized_multiplier([6, -6], M0, shift, "single")
    (array([ 2, -2], dtype=int32), array([ 2, -1], dtype=int32))
    """
    check_choice(rounding, "rounding", _ROUNDINGS)
    x64 = _as_int_array(x, "x")
    m0 = _as_int_array(M0, "M0", 0, INT32_MAX)
    sh = _as_int_array(shift, "shift", -31, 31)
    if rounding == "single":
        if (sh > 30).any():
            raise ValueError("single rounding needs shift <= 30 (multipliers below 2^30)")
        total = 31 - sh
        out = (x64 * m0 + (np.int64(1) << (total - 1))) >> total
        if out.size and (out.min() < INT32_MIN or out.max() > INT32_MAX):
            raise ValueError("x * M overflows int32: the result does not fit in 32 bits")
        return _scalar_or_array(out)
    left = np.maximum(sh, 0)
    right = np.maximum(-sh, 0)
    scaled = x64 << left
    if scaled.size and (scaled.min() < INT32_MIN or scaled.max() > INT32_MAX):
        raise ValueError(
            f"x * 2^{int(np.max(left))} overflows int32 (multiplier M >= 1 with a large x): "
            "the C kernel would wrap around silently"
        )
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, m0), right)


def fixed_point_multiply(x, M, rounding: str = "double"):
    """``round(x * M)`` for a real ``M >= 0``, integer-only: :func:`quantize_multiplier` then
    :func:`multiply_by_quantized_multiplier`.

    >>> fixed_point_multiply([1000, -1000, 7], 0.1234)     # 123.4, -123.4, 0.8638
    array([ 123, -123,    1], dtype=int32)
    """
    M0, shift = quantize_multiplier(M)
    return multiply_by_quantized_multiplier(x, M0, shift, rounding=rounding)


# ----------------------------------------------------------------------------- int8 linear layer
def _check_codes(q, name: str) -> np.ndarray:
    arr = np.asarray(q)
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be integer codes, got dtype {arr.dtype} (quantize the real values first)"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def accumulator_bound(n_inputs: int, x_max_abs: int, w_max_abs: int, bias_max_abs: int = 0) -> int:
    """Largest possible ``|acc|`` of a dot product: ``K * max|x - Z_x| * max|w - Z_w| + max|bias|``.

    If it is below ``2^31`` the int32 accumulator can never overflow, whatever the input.
    For 8-bit codes a 64-input layer needs at most ``64 * 255 * 128`` ~ 2^21: room for
    ``2^31 / (255 * 128) ~ 65 000`` inputs (16-bit codes overflow after one).

    >>> accumulator_bound(64, 255, 128), accumulator_bound(64, 255, 128) < 2**31
    (2088960, True)
    """
    return int(n_inputs) * int(x_max_abs) * int(w_max_abs) + int(bias_max_abs)


def accumulate_expanded(x_codes, w_codes, x_zero_point, w_zero_point=0, bias=None) -> np.ndarray:
    """Jacob et al.'s expansion of ``acc = sum_k (x_k - Z_x)(w_ok - Z_w) + b_o`` into four terms::

        acc = sum_k x_k w_ok  -  Z_x sum_k w_ok  -  Z_w sum_k x_k  +  K Z_x Z_w  +  b_o

    The first term is the pure int8 x int8 -> int32 product (what the hardware does fast);
    ``sum_k w_ok`` is known offline, ``sum_k x_k`` costs one pass over the input. ``Z_w`` may
    be per output channel. Everything is cast to int64 first (numpy's uint8 - 200 wraps).

    >>> accumulate_expanded(np.array([[130, 120]], np.uint8), np.array([[2, -3]], np.int8), 128)  # 2*2 + (-8)*(-3)
    array([[28]], dtype=int32)
    """
    x = _check_codes(x_codes, "x_codes").astype(np.int64)
    w = _check_codes(w_codes, "w_codes").astype(np.int64)
    if w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"x_codes (..., {x.shape[-1]}) does not fit w_codes of shape {w.shape} (out, in)")
    zx = int(x_zero_point)
    zw = np.broadcast_to(np.asarray(w_zero_point, dtype=np.int64), (w.shape[0],))
    K = w.shape[1]
    acc = x @ w.T - zx * w.sum(axis=1) - zw * x.sum(axis=-1, keepdims=True) + K * zx * zw
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    return _fit_int32(acc, "the accumulator")


def _fit_int32(v: np.ndarray, what: str) -> np.ndarray:
    if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
        raise ValueError(f"{what} overflows int32 (values up to {int(np.abs(v).max())})")
    return v.astype(np.int32)


def fold_zero_points(w_codes, x_zero_point, w_zero_point=0, bias=None):
    """Fold the zero points into the weights and the bias, offline::

        acc = sum_k x_k (w_ok - Z_w) + [b_o - Z_x sum_k (w_ok - Z_w)]
            = x @ W_c.T + b_folded

    Returns ``(W_c, b_folded)`` as int32: ``W_c = w - Z_w`` (just ``w`` for symmetric
    weights) and the folded bias. Then the layer is one integer matmul plus a bias add.

    >>> Wc, bf = fold_zero_points(np.array([[2, -3]], np.int8), 128, bias=[10])
    >>> Wc.tolist(), bf.tolist(), (np.array([[130, 120]]) @ Wc.T + bf).tolist()
    ([[2, -3]], [138], [[38]])
    """
    w = _check_codes(w_codes, "w_codes").astype(np.int64)
    if w.ndim != 2:
        raise ValueError(f"w_codes must be (out, in), got shape {w.shape}")
    zw = np.asarray(w_zero_point, dtype=np.int64)
    wc = w - (zw.reshape(-1, 1) if zw.ndim else zw)
    b = np.zeros(w.shape[0], np.int64) if bias is None else _as_int_array(bias, "bias")
    if b.shape != (w.shape[0],):
        raise ValueError(f"bias must have one entry per output ({w.shape[0]}), got shape {b.shape}")
    folded = b - int(x_zero_point) * wc.sum(axis=1)
    return _fit_int32(wc, "w - Z_w"), _fit_int32(folded, "the folded bias")


def requantize(acc, M0, shift, out_zero_point: int, qmin: int, qmax: int, relu: bool = False,
               rounding: str = "double") -> np.ndarray:
    """int32 accumulator -> output codes, integer-only::

        y_q = clamp(Z_y + multiply_by_quantized_multiplier(acc, M0, shift), lo, qmax)

    with ``lo = max(qmin, Z_y)`` when a ReLU is fused (real 0 is the code ``Z_y``, so
    clamping there *is* the ReLU) and ``lo = qmin`` otherwise. ``M0``/``shift`` may be
    per output channel (last axis of ``acc``). Returns int32 codes.

    >>> M0, shift = quantize_multiplier(0.05)
    >>> requantize([-300, -10, 10, 300, 9000], M0, shift, 0, 0, 255, relu=True).tolist()
    [0, 0, 1, 15, 255]
    """
    relu = check_flag(relu, "relu")
    y = multiply_by_quantized_multiplier(acc, M0, shift, rounding=rounding)
    y = np.asarray(y, dtype=np.int64) + int(out_zero_point)
    lo = max(int(qmin), int(out_zero_point)) if relu else int(qmin)
    return np.clip(y, lo, int(qmax)).astype(np.int32)


def requantize_float(acc, M, out_zero_point: int, qmin: int, qmax: int, relu: bool = False) -> np.ndarray:
    """The floating-point reference of :func:`requantize` (what the fake-quant simulation does)::

        y_q = clamp(Z_y + round_half_even(acc * M), lo, qmax),   M real (float64)

    >>> requantize_float([-300, -10, 10, 300, 9000], 0.05, 0, 0, 255, relu=True).tolist()
    [0, 0, 0, 15, 255]
    """
    relu = check_flag(relu, "relu")
    a = _as_int_array(acc, "acc").astype(np.float64)
    y = np.rint(a * np.asarray(M, dtype=np.float64)) + int(out_zero_point)
    lo = max(int(qmin), int(out_zero_point)) if relu else int(qmin)
    return np.clip(y, lo, int(qmax)).astype(np.int32)


# ----------------------------------------------------------------------------- layers and model
@dataclass(frozen=True, eq=False)
class IntegerLinear:
    """One int8 linear layer, ready for integer-only inference.

    ``w`` holds the weight codes minus their zero point (int32, (out, in)); ``bias`` the
    int32 bias with the input zero point folded in (:func:`fold_zero_points`); ``M0`` and
    ``shift`` one fixed-point multiplier per output channel; ``M`` the real multiplier they
    approximate (kept only to analyse the rounding, never used by :meth:`forward`).
    """

    name: str
    w: np.ndarray
    bias: np.ndarray
    M0: np.ndarray
    shift: np.ndarray
    M: np.ndarray
    in_zero_point: int
    out_zero_point: int
    out_qmin: int
    out_qmax: int
    relu: bool
    rounding: str = "double"

    def accumulate(self, x_codes) -> np.ndarray:
        """int32 accumulator ``x @ w.T + bias`` (int32 arithmetic, proven not to overflow)."""
        x = _check_codes(x_codes, "x_codes")
        if x.shape[-1] != self.w.shape[1]:
            raise ValueError(f"{self.name} takes {self.w.shape[1]} inputs, got {x.shape[-1]}")
        x_abs = max(abs(int(x.min())), abs(int(x.max())))
        bound = accumulator_bound(self.w.shape[1], x_abs, int(np.abs(self.w).max()), int(np.abs(self.bias).max()))
        if bound > INT32_MAX:
            raise ValueError(f"{self.name}: the int32 accumulator could overflow (bound {bound} >= 2^31)")
        return x.astype(np.int32) @ self.w.T + self.bias  # int32 x int32 -> int32, exact under the bound

    def forward(self, x_codes) -> np.ndarray:
        """Input codes -> output codes, integers only."""
        return requantize(self.accumulate(x_codes), self.M0, self.shift, self.out_zero_point,
                          self.out_qmin, self.out_qmax, relu=self.relu, rounding=self.rounding)


def integer_linear_from_codes(name, w_codes, w_zero_point, bias_codes, in_zero_point, M,
                              out_zero_point, out_qmin, out_qmax, relu=False, rounding="double") -> IntegerLinear:
    """Build an :class:`IntegerLinear` from codes and the real multipliers ``M`` (scalar or per channel).

    ``rounding``: ``"double"`` (gemmlowp / classic TFLite) or ``"single"`` (TFLite's single rounding).

    >>> layer = integer_linear_from_codes("fc", np.array([[2, -3]], np.int8), 0, [10], 128,
    ...                                   0.5, 0, 0, 255, relu=True)
    >>> layer.forward(np.array([[130, 120], [100, 140]], np.uint8)).tolist()   # 38 * 0.5, -10 * 0.5
    [[19], [0]]
    """
    check_choice(rounding, "rounding", _ROUNDINGS)
    relu = check_flag(relu, "relu")
    w, b = fold_zero_points(w_codes, in_zero_point, w_zero_point, bias_codes)
    m = np.broadcast_to(np.asarray(M, dtype=np.float64), (w.shape[0],)).copy()
    M0, shift = quantize_multiplier(m)
    for arr in (w, b, m, M0, shift):
        arr.setflags(write=False)
    return IntegerLinear(name=str(name), w=w, bias=b, M0=M0, shift=shift, M=m,
                         in_zero_point=int(in_zero_point), out_zero_point=int(out_zero_point),
                         out_qmin=int(out_qmin), out_qmax=int(out_qmax), relu=bool(relu), rounding=rounding)


@dataclass(frozen=True, eq=False)
class IntegerMLP:
    """A quantized MLP run with integers only: the input is quantized once, then every layer
    is an int32 matmul, an int32 bias add and a fixed-point requantization.

    Build it from a PTQ model with :func:`integerize`.
    """

    layers: tuple
    in_qp: object   # QParams of the network input
    out_qp: object  # QParams of the logits

    def quantize_input(self, x) -> np.ndarray:
        """The only floating-point step: ``quantize(x, in_qp)`` (on a device: the sensor/ADC's job)."""
        return quantize(x, self.in_qp)

    def forward_codes_int(self, q_in) -> np.ndarray:
        """Integer input codes -> integer logit codes (int32). No float anywhere."""
        q = np.asarray(q_in)
        for layer in self.layers:
            q = layer.forward(q)
        return q

    def tensor_codes(self, x) -> dict:
        """Codes of every tensor: ``{"input": ..., layer.name: output codes, ...}``."""
        q = self.quantize_input(x)
        out = {"input": q}
        for layer in self.layers:
            q = layer.forward(q)
            out[layer.name] = q
        return out

    def forward_codes(self, x) -> np.ndarray:
        """Real input -> integer logit codes."""
        return self.forward_codes_int(self.quantize_input(x))

    def forward(self, x) -> np.ndarray:
        """Dequantized logits (for display only: ``argmax`` of the codes gives the same class)."""
        return dequantize(self.forward_codes(x), self.out_qp)

    __call__ = forward

    def predict(self, x) -> np.ndarray:
        """Class = argmax of the integer logit codes (S > 0, so no dequantization is needed)."""
        return self.forward_codes(x).argmax(axis=1)

    def accuracy(self, X, y) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())


def integerize(qmodel, rounding: str = "double") -> IntegerMLP:
    """Turn a PTQ model (:class:`qlib.ptq.QuantizedMLP`) into an :class:`IntegerMLP`.

    Per layer: weight codes minus ``Z_w``, the int32 bias with ``-Z_in * sum_k w`` folded in,
    and ``M = S_in * S_w / S_out`` (per channel for per-channel weights) turned into ``(M0, shift)``.
    ``rounding`` picks the fixed-point kernel (see :func:`multiply_by_quantized_multiplier`).

    >>> from qlib.data import load_digits
    >>> from qlib.nn import reference_model
    >>> from qlib.ptq import quantize_mlp
    >>> d = load_digits()
    >>> qm = quantize_mlp(reference_model(), d.X_train[:256])
    >>> im = integerize(qm)
    >>> [(L.name, L.w.shape, int(L.M0[0]), int(L.shift[0])) for L in im.layers][:1] # doctest: +ELLIPSIS
    [('fc1', (128, 64), ..., ...)]
    >>> bool((im.predict(d.X_test) == qm.predict(d.X_test)).mean() > 0.995)
    True
    """
    layers = getattr(qmodel, "layers", None)
    if not layers or not all(hasattr(L, "w_codes") and hasattr(L, "multiplier") for L in layers):
        raise ValueError(f"expected a quantized model with .layers (qlib.ptq.QuantizedMLP), got {type(qmodel).__name__}"
                         " (quantize a float model first with qlib.ptq.quantize_mlp)")
    out = []
    for L in layers:
        out.append(integer_linear_from_codes(
            L.name, L.w_codes, L.w_qp.zero_point, L.bias_codes, L.in_qp.zero_point, L.multiplier,
            L.out_qp.zero_point, L.out_qp.qmin, L.out_qp.qmax, relu=L.relu, rounding=rounding))
    return IntegerMLP(tuple(out), layers[0].in_qp, layers[-1].out_qp)


# ----------------------------------------------------------------------------- where codes differ
def exact_single_rounding(acc, M0, shift) -> np.ndarray:
    """``round_half_away(acc * M0 / 2^(31 - shift))`` computed exactly in integers.

    The value the fixed-point multiplier stands for, rounded once: what you would get with
    the Q31 multiplier but without gemmlowp's double rounding.

    >>> exact_single_rounding([6, -6, 7], 2**30, -1)     # 6 * 0.25 = 1.5, -1.5, 1.75
    array([ 2, -2,  2])
    """
    a = _as_int_array(acc, "acc")
    m0 = _as_int_array(M0, "M0", 0, INT32_MAX)
    t = 31 - _as_int_array(shift, "shift", -31, 31)
    p = a * m0
    half = np.where(t > 0, np.int64(1) << np.maximum(t - 1, 0), 0)
    mag = (np.abs(p) + half) >> t
    return np.sign(p) * mag


def tie_distance(r) -> np.ndarray:
    """How far a real value is from the nearest tie (a number ``k + 0.5``): ``| |r - floor(r) - 0.5| |``.

    0 means an exact tie; 0.5 means ``r`` is an integer (as far from a tie as it gets).

    >>> tie_distance(np.array([2.5, 2.0, 2.4, -1.5, -1.9]))
    array([0. , 0.5, 0.1, 0. , 0.4])
    """
    r = np.asarray(r, dtype=np.float64)
    return np.abs(r - np.floor(r) - 0.5)


def tie_margin(acc, M, M0, shift) -> np.ndarray:
    """How close to a tie ``acc * M`` may be before the integer path is allowed to round differently::

        margin = |acc| * |M - M0 2^(shift-31)|   (Q31 approximation of M)
               + 2^-(right + 1)                   (first rounding of gemmlowp, right = max(-shift, 0))
               + |acc * M| * 2^-52                (float64 rounding of the simulation's product)

    Wherever ``tie_distance(acc * M) > margin`` the integer code equals ``round_half_even(acc * M)``.

    >>> M0, shift = quantize_multiplier(0.01)
    >>> print(shift, f"{float(tie_margin(1000, 0.01, M0, shift)):.7f}")   # 0.01 = 0.64 * 2^-6: window ~2^-7
    -6 0.0078125
    """
    a = _as_int_array(acc, "acc").astype(np.float64)
    m = np.asarray(M, dtype=np.float64)
    sh = _as_int_array(shift, "shift", -31, 31)
    approx = np.ldexp(_as_int_array(M0, "M0", 0, INT32_MAX).astype(np.float64), (sh - 31).astype(np.int32))
    right = np.maximum(-sh, 0)
    return np.abs(a) * np.abs(m - approx) + np.ldexp(1.0, (-(right + 1)).astype(np.int32)) + np.abs(a * m) * 2.0**-52


def requantization_chain(acc, M, M0, shift, rounding: str = "double") -> dict:
    """The four stages between the simulation and the integer kernel, before zero point and clamp.

    * ``"simulation"``: ``round_half_even(acc * M)`` (float64, qlib's PTQ simulation);
    * ``"ties away"``: ``round_half_away(acc * M)`` -- only the tie rule changed;
    * ``"Q31 multiplier"``: ``M`` replaced by ``M0 * 2^(shift - 31)``, rounded once (exact);
    * ``"integer"``: the fixed-point kernel (:func:`multiply_by_quantized_multiplier`; gemmlowp's
      double rounding by default, or ``rounding="single"``).

    Consecutive stages differ only near ties; comparing them tells *why* a code changed.

    >>> M0, shift = quantize_multiplier(0.25)
    >>> {k: v.tolist() for k, v in requantization_chain([6, 10], 0.25, M0, shift).items()}
    {'simulation': [2, 2], 'ties away': [2, 3], 'Q31 multiplier': [2, 3], 'integer': [2, 3]}
    """
    a = _as_int_array(acc, "acc")
    r = a.astype(np.float64) * np.asarray(M, dtype=np.float64)
    return {
        "simulation": np.rint(r).astype(np.int64),
        "ties away": round_half_away(r).astype(np.int64),
        "Q31 multiplier": exact_single_rounding(a, M0, shift),
        "integer": np.asarray(multiply_by_quantized_multiplier(a, M0, shift, rounding), dtype=np.int64),
    }


def _clamp(v, L):
    lo = max(L.out_qmin, L.out_zero_point) if L.relu else L.out_qmin
    return np.clip(v + L.out_zero_point, lo, L.out_qmax)


def explain_differences(imodel: IntegerMLP, qmodel, X) -> list:
    """Count, layer by layer, the output codes where the integer path and the simulation differ,
    and attribute each difference to a cause.

    Each layer gets the *same* input codes in both paths (the integer path's), so the counts
    are the layer's own doing, not differences inherited from earlier layers. Returns one
    dict per layer: ``codes`` (number of output codes), ``differ`` (total), ``tie rule``,
    ``Q31 multiplier``, ``double rounding`` (codes that changed at that step of
    :func:`requantization_chain`, after zero point and clamping), ``max |diff|`` and
    ``near ties`` (codes within :func:`tie_margin` of a tie: the only places allowed to differ).
    """
    q = imodel.quantize_input(X)
    rows = []
    for IL, QL in zip(imodel.layers, qmodel.layers):
        acc = IL.accumulate(q)
        chain = {k: _clamp(v, IL) for k, v in requantization_chain(acc, IL.M, IL.M0, IL.shift, IL.rounding).items()}
        sim = np.asarray(QL.forward_codes(q), dtype=np.int64)
        if not np.array_equal(sim, chain["simulation"]):
            raise ValueError(f"{IL.name}: the float reference does not reproduce the simulation")
        out = IL.forward(q)
        if not np.array_equal(out, chain["integer"]):
            raise ValueError(f"{IL.name}: the integer layer does not reproduce the chain")
        steps = list(chain.values())
        near = tie_distance(acc.astype(np.float64) * IL.M) <= tie_margin(acc, IL.M, IL.M0, IL.shift)
        rows.append({
            "layer": IL.name, "codes": int(out.size), "differ": int((steps[0] != steps[3]).sum()),
            "tie rule": int((steps[0] != steps[1]).sum()), "Q31 multiplier": int((steps[1] != steps[2]).sum()),
            ("double rounding" if IL.rounding == "double" else "single-rounding ties"): int((steps[2] != steps[3]).sum()),
            "max |diff|": int(np.abs(steps[0] - steps[3]).max()), "near ties": int(near.sum()),
            "differ away from ties": int(((steps[0] != steps[3]) & ~near).sum()),
        })
        q = out
    return rows
