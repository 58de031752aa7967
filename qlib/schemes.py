"""Symmetric vs asymmetric quantization: named schemes, levels used and wasted, zero-point cost.

A *scheme* is a set of choices made before any data is seen (docs/conventions.md, section 3):

* **symmetric** (max-abs): ``Z = 0``, signed codes, ``S = max|x| / (2^(n-1) - 1)`` -- the
  ``/127`` rule of ONNX Runtime, TFLite and AIMET;
* **symmetric, narrow range**: the same scale on ``[-127, 127]`` (code -128 dropped), as
  TFLite's int8 weights;
* **symmetric, PyTorch**: ``S = max|x| / ((qmax - qmin) / 2)``, the ``/127.5`` rule of
  PyTorch's observers (``scale_rule="half_range"``);
* **asymmetric** (min-max): unsigned codes ``[0, 2^n - 1]``, ``S = (max - min) / (2^n - 1)``,
  ``Z = round(-min / S)``;
* **asymmetric, signed**: min-max on signed codes ``[-128, 127]`` (TFLite's int8 activations).
  Signed vs unsigned is a separate choice from symmetric vs asymmetric: it only shifts ``Z``.

Every range is widened to include 0 first (``qlib.qparams_from_range``).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_bits, check_choice
from .linear import QParams, fake_quantize, qparams_from_tensor, quantize
from .metrics import mse, sqnr_db

__all__ = [
    "SCHEMES",
    "SCHEME_LABELS",
    "scheme_qparams",
    "reachable_levels",
    "wasted_levels",
    "levels_hit",
    "SchemeResult",
    "evaluate_scheme",
    "compare_schemes",
    "format_scheme_table",
    "ZeroPointTerms",
    "zero_point_expansion",
    "ZeroPointCost",
    "zero_point_cost",
]

#: Keyword arguments of :func:`qlib.qparams_from_range` for each named scheme.
SCHEMES = {
    "symmetric": dict(symmetric=True, signed=True, narrow_range=False, scale_rule="qmax"),
    "symmetric_narrow": dict(symmetric=True, signed=True, narrow_range=True, scale_rule="qmax"),
    "symmetric_pytorch": dict(symmetric=True, signed=True, narrow_range=False, scale_rule="half_range"),
    "asymmetric": dict(symmetric=False, signed=False, narrow_range=False, scale_rule="qmax"),
    "asymmetric_signed": dict(symmetric=False, signed=True, narrow_range=False, scale_rule="qmax"),
}

#: One-line description of each scheme (8-bit numbers; other widths scale the same way).
SCHEME_LABELS = {
    "symmetric": "symmetric /127, signed [-128,127], Z=0 (ORT, TFLite, AIMET)",
    "symmetric_narrow": "symmetric /127, narrow [-127,127], Z=0 (TFLite weights)",
    "symmetric_pytorch": "symmetric /127.5, signed [-128,127], Z=0 (PyTorch)",
    "asymmetric": "asymmetric min-max, unsigned [0,255], Z any",
    "asymmetric_signed": "asymmetric min-max, signed [-128,127], Z any (TFLite act.)",
}


def _check_scheme(scheme: str) -> str:
    return check_choice(scheme, "scheme", tuple(SCHEMES))


def _check_per_tensor(qp) -> None:
    if not isinstance(qp, QParams):
        raise ValueError(f"expected a qlib.QParams, got {type(qp).__name__}")
    if qp.axis is not None:
        raise ValueError("level counting works on per-tensor parameters (one scale, one zero point); "
                         f"these are {qp.granularity}")


def scheme_qparams(x, scheme: str = "symmetric", bits: int = 8) -> QParams:
    """Per-tensor parameters for the data ``x`` under a named scheme (see :data:`SCHEMES`).

    Symmetric: ``S = max|x| / qmax`` (or ``/((qmax - qmin)/2)`` for PyTorch), ``Z = 0``;
    asymmetric: ``S = (max - min) / (qmax - qmin)``, ``Z = qmin + round(-min / S)``.

    >>> x = np.array([-0.5, 0.0, 1.27])
    >>> qp = scheme_qparams(x, "symmetric")
    >>> print(f"S = {qp.scale:.6f}, Z = {qp.zero_point}")
    S = 0.010000, Z = 0
    >>> qp = scheme_qparams(x, "asymmetric")
    >>> print(f"S = {qp.scale:.6f}, Z = {qp.zero_point}")
    S = 0.006941, Z = 72
    """
    _check_scheme(scheme)
    return qparams_from_tensor(x, bits=bits, **SCHEMES[scheme])


def reachable_levels(x_min: float, x_max: float, qp: QParams) -> int:
    """How many codes a value in ``[x_min, x_max]`` can land on: ``q(x_max) - q(x_min) + 1``.

    ``q`` is :func:`qlib.quantize` (rounding and clamping included). Every code outside
    ``[q(x_min), q(x_max)]`` is never used by data in that range.

    ReLU data (min 0) under signed symmetric 8-bit quantization reaches codes 0..127 only:

    >>> from qlib.linear import qparams_from_range
    >>> reachable_levels(0.0, 3.0, qparams_from_range(0.0, 3.0, symmetric=True))
    128
    """
    _check_per_tensor(qp)
    lo_a, hi_a = as_float_array(x_min, "x_min"), as_float_array(x_max, "x_max")
    if lo_a.size != 1 or hi_a.size != 1:
        raise ValueError("x_min and x_max must be single numbers (the data's smallest and largest value)")
    lo, hi = float(lo_a.reshape(())), float(hi_a.reshape(()))
    if lo > hi:
        raise ValueError(f"x_min > x_max ({lo:g} > {hi:g}): the range is upside down")
    q = quantize(np.array([lo, hi]), qp).astype(np.int64)
    return int(q[1] - q[0] + 1)


def wasted_levels(x_min: float, x_max: float, qp: QParams) -> int:
    """Of the ``2^n`` bit patterns, how many data in ``[x_min, x_max]`` can never use.

    ``wasted = 2^n - reachable_levels(x_min, x_max, qp)``. Counted against all ``2^n``
    patterns, so the code a narrow range drops (-128 for 8 bits) counts as wasted too.

    >>> from qlib.linear import qparams_from_range
    >>> wasted_levels(0.0, 3.0, qparams_from_range(0.0, 3.0, symmetric=True))  # ReLU data
    128
    >>> wasted_levels(0.0, 3.0, qparams_from_range(0.0, 3.0))                   # min-max: none
    0
    """
    reach = reachable_levels(x_min, x_max, qp)  # validates qp first
    return 2**qp.bits - reach


def levels_hit(x, qp: QParams) -> int:
    """Number of distinct codes the values ``x`` actually land on: ``len(unique(quantize(x)))``.

    Never more than :func:`reachable_levels` of ``x``'s range: a long thin tail reaches
    codes that few or no samples use.

    >>> from qlib.linear import qparams_from_range
    >>> levels_hit([0.0, 0.1, 0.12, 3.0], qparams_from_range(0.0, 3.0, symmetric=True))
    4
    """
    _check_per_tensor(qp)
    return int(np.unique(quantize(x, qp)).size)


class SchemeResult(NamedTuple):
    """One row of a scheme comparison (see :func:`compare_schemes`)."""

    scheme: str
    bits: int
    scale: float
    zero_point: int
    qmin: int
    qmax: int
    reachable: int  # codes the data's [min, max] can land on
    wasted: int  # 2^bits - reachable
    hit: int  # distinct codes the data actually uses
    mse: float
    sqnr_db: float


def evaluate_scheme(x, scheme: str = "symmetric", bits: int = 8) -> SchemeResult:
    """Quantize ``x`` under one named scheme and report levels and error.

    MSE is ``mean((fake_quantize(x) - x)^2)``, SQNR ``10 log10(sum x^2 / sum err^2)`` dB.

    >>> r = evaluate_scheme(np.array([0.0, 1.0, 2.0, 3.0]), "symmetric", bits=8)
    >>> r.zero_point, r.reachable, r.wasted, r.hit
    (0, 128, 128, 4)
    """
    x = as_float_array(x)
    qp = scheme_qparams(x, scheme, bits)
    lo, hi = float(x.min()), float(x.max())
    reach = reachable_levels(lo, hi, qp)
    x_hat = fake_quantize(x, qp)
    return SchemeResult(scheme, qp.bits, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax, reach,
                        2**qp.bits - reach, levels_hit(x, qp), mse(x, x_hat), sqnr_db(x, x_hat))


def compare_schemes(x, schemes=None, bits: int = 8) -> list:
    """:func:`evaluate_scheme` for each scheme in ``schemes`` (default: all of :data:`SCHEMES`).

    >>> rows = compare_schemes(np.array([0.0, 1.0, 2.0, 3.0]), ["symmetric", "asymmetric"], bits=4)
    >>> [(r.scheme, r.wasted) for r in rows]
    [('symmetric', 8), ('asymmetric', 0)]
    """
    bits = check_bits(bits)
    schemes = list(SCHEMES) if schemes is None else list(schemes)
    if not schemes:
        raise ValueError("schemes is empty: name at least one scheme, e.g. ['symmetric', 'asymmetric']")
    for s in schemes:
        _check_scheme(s)
    x = as_float_array(x)
    return [evaluate_scheme(x, s, bits) for s in schemes]


def format_scheme_table(rows) -> str:
    """A fixed-width text table of :func:`compare_schemes` rows (explicit format strings).

    Four values, 4 bits: symmetric leaves the 8 negative codes unused (MSE = 2 (1/7)^2 / 4),
    min-max lands every value on a code exactly (here S = 3/15 = 0.2).

    >>> rows = compare_schemes(np.array([0.0, 1.0, 2.0, 3.0]), ["symmetric", "asymmetric"], bits=4)
    >>> print(format_scheme_table(rows))  # doctest: +NORMALIZE_WHITESPACE
    scheme             bits  scale          Z  codes        reach  wasted  hit  MSE          SQNR dB
    symmetric             4  0.42857143     0  [  -8,   7]      8       8    4  1.02041e-02    25.35
    asymmetric            4  0.20000000     0  [   0,  15]     16       0    4  0.00000e+00      inf
    """
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to format: pass the list returned by compare_schemes")
    head = (f"{'scheme':<18} {'bits':>4}  {'scale':<10}  {'Z':>4}  {'codes':<12} "
            f"{'reach':>5}  {'wasted':>6}  {'hit':>3}  {'MSE':<11}  {'SQNR dB':>7}")
    lines = [head]
    for r in rows:
        lines.append(f"{r.scheme:<18} {r.bits:>4}  {r.scale:<10.8f}  {r.zero_point:>4}  "
                     f"[{r.qmin:>4}, {r.qmax:>3}]  {r.reachable:>5}  {r.wasted:>6}  {r.hit:>3}  "
                     f"{r.mse:<11.5e}  {r.sqnr_db:>7.2f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- zero-point cost
class ZeroPointTerms(NamedTuple):
    """The four terms of ``sum_k (q_x - Z_x)(q_w - Z_w)``; ``total`` is their sum, shape (N, M)."""

    products: np.ndarray  # sum_k q_x[n,k] q_w[m,k]            (N, M): the int8 GEMM itself
    input_sums: np.ndarray  # -Z_w * sum_k q_x[n,k]             (N,): depends on the input
    weight_sums: np.ndarray  # -Z_x * sum_k q_w[m,k]            (M,): weights only, foldable
    constant: int  # K * Z_x * Z_w                               foldable
    total: np.ndarray  # products + input_sums[:, None] + weight_sums[None, :] + constant


def _as_codes(q, name):
    arr = np.asarray(q)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer codes, got dtype {arr.dtype} (quantize first)")
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    return arr.astype(np.int64)  # uint8 - Z would wrap around otherwise


def _as_zero_point(z, name):
    if isinstance(z, bool) or not isinstance(z, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be a single integer (per-tensor zero point), got {z!r}")
    return int(z)


def zero_point_expansion(q_x, q_w, z_x: int, z_w: int) -> ZeroPointTerms:
    """Expand the integer matmul with zero points into its four terms.

    With ``q_x`` of shape (N, K) (inputs) and ``q_w`` of shape (M, K) (weights, (out, in)),
    each output is ``sum_k (q_x[n,k] - Z_x)(q_w[m,k] - Z_w)``
    ``= sum_k q_x q_w  -  Z_w sum_k q_x[n,k]  -  Z_x sum_k q_w[m,k]  +  K Z_x Z_w``.
    The first term is the plain integer GEMM; the last two depend only on the weights
    (and a fixed Z_x), so they fold into the bias; the input-sum term needs the input.
    Codes are cast to int64 first.

    >>> qx = np.array([[1, 2]], np.uint8); qw = np.array([[3, 4], [5, 6]], np.uint8)
    >>> t = zero_point_expansion(qx, qw, z_x=1, z_w=2)
    >>> t.products.tolist(), t.input_sums.tolist(), t.weight_sums.tolist(), t.constant, t.total.tolist()
    ([[11, 17]], [-6], [-7, -11], 4, [[2, 4]])
    """
    qx = _as_codes(q_x, "q_x")
    qw = _as_codes(q_w, "q_w")
    if qx.shape[1] != qw.shape[1]:
        raise ValueError(f"q_x has {qx.shape[1]} columns but q_w (out, in) has {qw.shape[1]}: "
                         "the inner dimensions K must match")
    zx, zw = _as_zero_point(z_x, "z_x"), _as_zero_point(z_w, "z_w")
    k = qx.shape[1]
    products = qx @ qw.T
    input_sums = -zw * qx.sum(axis=1)
    weight_sums = -zx * qw.sum(axis=1)
    constant = k * zx * zw
    total = products + input_sums[:, None] + weight_sums[None, :] + constant
    return ZeroPointTerms(products, input_sums, weight_sums, constant, total)


class ZeroPointCost(NamedTuple):
    """Operation counts for one integer linear layer, see :func:`zero_point_cost`."""

    main_macs: int  # N*M*K multiply-adds of the int GEMM
    runtime_extra: int  # extra ops per call caused by zero points (after folding)
    offline: int  # ops done once at conversion (folded into the bias)
    naive_extra: int  # extra subtractions if (q - Z) is formed inside the inner loop


def _positive_int(v, name):
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive whole number, got {v!r}")
    return int(v)


def zero_point_cost(batch: int, in_features: int, out_features: int,
                    weight_zero_point: bool = False, act_zero_point: bool = False) -> ZeroPointCost:
    """Count what non-zero zero points cost in ``y = x @ W.T`` (N = batch, K = in, M = out).

    * main GEMM: ``N*M*K`` multiply-adds, whatever the zero points;
    * ``Z_w != 0``: the input-sum term ``-Z_w sum_k q_x[n,k]`` changes with every input:
      ``N*K`` adds for the row sums plus ``N*M`` multiply-adds to apply them -> run time
      ``N*(K + M)``;
    * ``Z_x != 0``: the weight-sum term ``-Z_x sum_k q_w[m,k]`` is known once the weights and
      Z_x are: ``M*K`` adds plus ``M`` multiply-adds, folded into the bias offline;
    * both: the constant ``K Z_x Z_w`` is folded into the ``M`` biases offline (``M`` adds);
    * naive kernel (subtract inside the inner loop): ``N*M*K`` subtractions per non-zero zero
      point, and the operands ``q - Z`` need 9 bits instead of 8.

    Symmetric weights (Z_w = 0) therefore cost nothing extra at run time.

    >>> zero_point_cost(1, 64, 128, weight_zero_point=True, act_zero_point=True)
    ZeroPointCost(main_macs=8192, runtime_extra=192, offline=8448, naive_extra=16384)
    >>> zero_point_cost(1, 64, 128, weight_zero_point=False, act_zero_point=True).runtime_extra
    0
    """
    n = _positive_int(batch, "batch")
    k = _positive_int(in_features, "in_features")
    m = _positive_int(out_features, "out_features")
    wz, az = bool(weight_zero_point), bool(act_zero_point)
    runtime = n * (k + m) if wz else 0
    offline = (m * k + m if az else 0) + (m if (az and wz) else 0)
    naive = n * m * k * (int(wz) + int(az))
    return ZeroPointCost(n * m * k, runtime, offline, naive)
