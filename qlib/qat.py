"""Quantization-aware training (QAT): fake quantization with a straight-through estimator, and LSQ.

QAT puts the quantizer into the training graph: every forward pass rounds the weights and
activations exactly as the deployed integer model will (``fake_quantize``), so the loss sees
the rounding error and training learns to live with it.

The catch is the backward pass. ``round`` is a staircase: flat between the steps, so its true
derivative is 0 almost everywhere (and undefined on the jumps). Backpropagated as is, no
gradient would ever reach the weights. The *straight-through estimator* (STE, Bengio et al.
2013) pretends the staircase was the identity when going backwards:

* ``"plain"`` STE: ``d fake_quantize(x) / dx := 1`` everywhere;
* ``"clipped"`` STE (PyTorch's ``fake_quantize_per_tensor_affine``): ``1`` where the
  *unclamped rounded code* ``round(x / S) + Z`` lies in ``[qmin, qmax]``, else ``0``.
  The test is on the rounded code, not on the real range ``[S (qmin - Z), S (qmax - Z)]``,
  so the edge sits half a step outside the range.

LSQ (Esser et al. 2019, "Learned Step Size Quantization") makes the step size ``s`` itself a
trained parameter, with its own STE-derived gradient (see :func:`lsq_step_gradient_factor`).

The layers here (:class:`FakeQuant`, :class:`LSQQuantizer`, :class:`QATLinear`) have the same
``forward`` / ``backward`` / ``params`` interface as :class:`qlib.nn.Linear` and
:class:`qlib.nn.ReLU`, and :class:`QATMLP` works with :func:`qlib.nn.train` and :class:`qlib.nn.Adam`.
"""

from __future__ import annotations

import copy
import numbers
from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_bits, check_choice
from .linear import (
    MIN_SCALE,
    QParams,
    fake_quantize,
    integer_range,
    qparams_from_range,
    qparams_from_tensor,
)
from .nn import MLP, Linear, ReLU, train

__all__ = [
    "STE_RULES",
    "METHODS",
    "unclamped_codes",
    "ste_mask",
    "fake_quantize_backward",
    "numerical_gradient",
    "ema_update",
    "lsq_qrange",
    "lsq_init_step",
    "lsq_grad_scale",
    "lsq_quantize",
    "lsq_step_gradient_factor",
    "lsq_backward",
    "FakeQuant",
    "LSQQuantizer",
    "QATLinear",
    "QATMLP",
    "QATResult",
    "train_qat",
    "minmax_ptq_accuracy",
]

STE_RULES = ("plain", "clipped")
METHODS = ("minmax", "lsq")


def _check_qparams(qp):
    if not isinstance(qp, QParams):
        raise ValueError(f"expected a qlib.QParams, got {type(qp).__name__} (build one with qlib.qparams_from_range)")


# ----------------------------------------------------------------------------- STE
def unclamped_codes(x, qp: QParams) -> np.ndarray:
    """The integer code before clamping: ``round(x / S) + Z`` (half-to-even), as floats.

    Same arithmetic as :func:`qlib.fake_quantize` (division in ``x``'s float dtype), but
    without the clamp to ``[qmin, qmax]``, so you can see which values *would* fall off the grid.

    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2)
    >>> unclamped_codes(np.array([-2.0, -1.2, 0.74, 0.76, 3.0]), qp)
    array([-4., -2.,  1.,  2.,  6.])
    """
    _check_qparams(qp)
    x = as_float_array(x)
    xv, s, z, shape = qp._blocked(x)
    v = np.rint(np.divide(xv, s.astype(x.dtype)))
    v += z.astype(x.dtype)
    return v.reshape(shape)


def ste_mask(x, qp: QParams, rule: str = "clipped") -> np.ndarray:
    """Which inputs the straight-through estimator lets the gradient through (1.0) or blocks (0.0).

    * ``"plain"``: 1 everywhere (round and clamp both treated as the identity);
    * ``"clipped"``: 1 where ``qmin <= round(x / S) + Z <= qmax``, else 0 (PyTorch's rule; PyTorch
      multiplies by a float32 ``1/S`` where qlib divides, which can move an exact tie by one code).
      TensorFlow's ``FakeQuantWithMinMaxVars`` tests ``min <= x <= max`` instead, half a step further in.

    With ``S = 0.5``, ``Z = 0`` and codes ``[-2, 1]`` the real range is ``[-1.0, 0.5]``, but the
    mask flips half a step further out, at ``x = -1.25`` and ``x = 0.75``:

    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2)
    >>> x = np.array([-1.3, -1.2, 0.6, 0.74, 0.76])
    >>> ste_mask(x, qp, "clipped"), ste_mask(x, qp, "plain")
    (array([0., 1., 1., 1., 0.]), array([1., 1., 1., 1., 1.]))
    """
    check_choice(rule, "rule", STE_RULES)
    x = as_float_array(x)
    if rule == "plain":
        _check_qparams(qp)
        return np.ones_like(x)
    q = unclamped_codes(x, qp)
    return ((q >= qp.qmin) & (q <= qp.qmax)).astype(x.dtype)


def fake_quantize_backward(grad, x, qp: QParams, rule: str = "clipped") -> np.ndarray:
    """Gradient of the loss w.r.t. the fake-quantizer's input: ``dL/dx = dL/dy * ste_mask(x)``.

    ``grad`` is ``dL/dy`` for ``y = fake_quantize(x, qp)`` and must have ``x``'s shape.

    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2)
    >>> fake_quantize_backward(np.array([3.0, 3.0, 3.0]), np.array([-1.3, 0.0, 0.76]), qp)
    array([0., 3., 0.])
    """
    g = as_float_array(grad, "grad")
    x = as_float_array(x)
    if g.shape != x.shape:
        raise ValueError(f"grad has shape {g.shape} but x has shape {x.shape}; they must match")
    return g * ste_mask(x, qp, rule)


def numerical_gradient(f, x, eps: float = 1e-4) -> np.ndarray:
    """Central finite differences: ``df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``.

    ``f`` maps an array shaped like ``x`` to a scalar. Works in float64 on a copy of ``x``.
    Applied to a quantized model it returns (almost) only zeros: that is the problem STE solves.

    >>> g = numerical_gradient(lambda v: float((v ** 2).sum()), np.array([1.0, -2.0]))
    >>> print(np.array2string(g, precision=4))
    [ 2. -4.]
    >>> numerical_gradient(lambda v: float(np.rint(v).sum()), np.array([0.3, 1.2]))
    array([0., 0.])
    """
    if not callable(f):
        raise ValueError("f must be a function of one array that returns a number")
    x = as_float_array(x).astype(np.float64)  # a copy: the caller's array is never touched
    if not (isinstance(eps, numbers.Real) and eps > 0 and np.isfinite(eps)):
        raise ValueError(f"eps must be a small positive number, got {eps!r}")
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = float(f(x))
        flat[i] = old - eps
        down = float(f(x))
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


# ----------------------------------------------------------------------------- EMA observer
def ema_update(old: float, new: float, averaging_constant: float = 0.01) -> float:
    """Exponential moving average: ``(1 - c) * old + c * new`` (PyTorch's MovingAverageMinMaxObserver).

    >>> print(f"{ema_update(1.0, 2.0, 0.1):.2f}")
    1.10
    """
    if not 0.0 < averaging_constant <= 1.0:
        raise ValueError(f"averaging_constant must lie in (0, 1], got {averaging_constant!r}")
    return (1.0 - averaging_constant) * old + averaging_constant * new


# ----------------------------------------------------------------------------- LSQ
def lsq_qrange(bits: int, signed: bool) -> tuple[int, int]:
    """LSQ's ``(Qn, Qp)``: codes run from ``-Qn`` to ``Qp``.

    signed: ``Qn = 2^(b-1)``, ``Qp = 2^(b-1) - 1`` (weights); unsigned: ``Qn = 0``,
    ``Qp = 2^b - 1`` (activations after a ReLU).

    >>> lsq_qrange(2, True), lsq_qrange(4, False)
    ((2, 1), (0, 15))
    """
    qmin, qmax = integer_range(bits, signed=bool(signed))
    return -qmin, qmax


def lsq_init_step(v, bits: int, signed: bool) -> float:
    """LSQ's initial step size ``s = 2 * mean(|v|) / sqrt(Qp)``.

    An all-zero ``v`` gives :data:`qlib.MIN_SCALE` instead of 0.

    >>> print(f"{lsq_init_step(np.array([0.5, -1.5]), bits=4, signed=True):.6f}")  # 2 * 1.0 / sqrt(7)
    0.755929
    """
    v = as_float_array(v)
    _, qp = lsq_qrange(bits, signed)
    return max(2.0 * float(np.abs(v).mean()) / float(np.sqrt(qp)), MIN_SCALE)


def lsq_grad_scale(n: int, bits: int, signed: bool) -> float:
    """LSQ's step-size gradient scale ``g = 1 / sqrt(N * Qp)``, N = number of elements the step serves.

    >>> print(f"{lsq_grad_scale(100, bits=3, signed=True):.6f}")  # 1 / sqrt(100 * 3)
    0.057735
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive whole number (elements per step size), got {n!r}")
    _, qp = lsq_qrange(bits, signed)
    return 1.0 / float(np.sqrt(n * qp))


def _check_step(s):
    s = as_float_array(s, "s")
    if (s <= 0).any():
        raise ValueError(f"the step size s must be > 0, got {s!r}")
    return s


def lsq_quantize(v, s, bits: int, signed: bool) -> np.ndarray:
    """LSQ's forward: ``v_hat = round(clip(v / s, -Qn, Qp)) * s`` (half-to-even rounding).

    ``s`` is a positive scalar or an array that broadcasts against ``v`` (per-channel).

    >>> lsq_quantize(np.array([-3.0, -0.26, 0.2, 0.9]), 0.5, bits=2, signed=True)
    array([-1. , -0.5,  0. ,  0.5])
    """
    v = as_float_array(v)
    s = _check_step(s).astype(v.dtype)
    qn, qp = lsq_qrange(bits, signed)
    return np.rint(np.clip(v / s, -qn, qp)) * s


def lsq_step_gradient_factor(v, s, bits: int, signed: bool) -> np.ndarray:
    """Elementwise ``d v_hat / d s`` in LSQ (straight-through on the rounding):

    ``round(v/s) - v/s`` where ``-Qn < v/s < Qp``; ``-Qn`` where ``v/s <= -Qn``; ``Qp`` where ``v/s >= Qp``.

    >>> lsq_step_gradient_factor(np.array([-3.0, 0.2, 0.35, 0.9]), 0.5, bits=2, signed=True)
    array([-2. , -0.4,  0.3,  1. ])
    """
    v = as_float_array(v)
    s = _check_step(s).astype(v.dtype)
    qn, qp = lsq_qrange(bits, signed)
    r = v / s
    inside = np.rint(r) - r
    return np.where(r <= -qn, np.asarray(-qn, v.dtype), np.where(r >= qp, np.asarray(qp, v.dtype), inside))


def lsq_backward(grad, v, s, bits: int, signed: bool, grad_scale: float | None = None):
    """LSQ's backward: returns ``(dL/dv, dL/ds)``.

    * ``dL/dv = dL/dv_hat`` where ``-Qn < v/s < Qp``, else 0 (clipped STE on the real range);
    * ``dL/ds = g * sum(dL/dv_hat * lsq_step_gradient_factor(v, s))``, summed down to ``s``'s
      shape, with ``g = 1 / sqrt(N * Qp)`` (N = elements per step) unless ``grad_scale`` is given.

    >>> dv, ds = lsq_backward(np.ones(4), np.array([-3.0, 0.2, 0.35, 0.9]), 0.5, 2, True, grad_scale=1.0)
    >>> dv
    array([0., 1., 1., 0.])
    >>> print(f"{float(ds):.2f}")  # -2 - 0.4 + 0.3 + 1
    -1.10
    """
    g = as_float_array(grad, "grad")
    v = as_float_array(v)
    if g.shape != v.shape:
        raise ValueError(f"grad has shape {g.shape} but v has shape {v.shape}; they must match")
    s_arr = _check_step(s)
    qn, qp = lsq_qrange(bits, signed)
    r = v / s_arr.astype(v.dtype)
    dv = g * ((r > -qn) & (r < qp))
    contrib = g * lsq_step_gradient_factor(v, s_arr, bits, signed)
    if s_arr.ndim == 0 or s_arr.size == 1:
        ds = np.asarray(contrib.sum(), dtype=np.float64).reshape(s_arr.shape)
        n = v.size
    else:
        if s_arr.ndim != v.ndim:
            raise ValueError(f"a per-channel step needs v's rank ({v.ndim}), got shape {s_arr.shape}")
        axes = tuple(i for i in range(v.ndim) if s_arr.shape[i] == 1 and v.shape[i] != 1)
        ds = contrib.sum(axis=axes, keepdims=True)
        n = v.size // s_arr.size
    if grad_scale is None:
        grad_scale = lsq_grad_scale(int(n), bits, signed)
    return dv, (ds * grad_scale).astype(s_arr.dtype)


# ----------------------------------------------------------------------------- layers
class FakeQuant:
    """Activation fake-quantizer with an EMA-observed range (asymmetric min-max, unsigned codes).

    ``forward`` fake-quantizes with the current range; in training mode (and not frozen) it
    first moves the range towards the batch's min/max with :func:`ema_update`. ``backward``
    applies the STE ``rule``. ``calibrate(x)`` sets the range to x's min/max (the PTQ start).
    """

    def __init__(self, bits: int = 8, rule: str = "clipped", averaging_constant: float = 0.01,
                 name: str = "act_q"):
        self.bits = check_bits(bits)
        self.rule = check_choice(rule, "rule", STE_RULES)
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must lie in (0, 1], got {averaging_constant!r}")
        self.averaging_constant = float(averaging_constant)
        self.name = name
        self.lo = None
        self.hi = None
        self.training = True
        self.frozen = False
        self._x = None
        self._qp = None

    def calibrate(self, x) -> None:
        x = as_float_array(x)
        self.lo, self.hi = float(x.min()), float(x.max())

    def qparams(self) -> QParams:
        if self.lo is None:
            raise RuntimeError(f"{self.name}: no range yet; call calibrate(x) or run a training batch first")
        return qparams_from_range(self.lo, self.hi, bits=self.bits)

    def forward(self, x):
        if self.training and not self.frozen:
            lo, hi = float(x.min()), float(x.max())
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                self.lo = ema_update(self.lo, lo, self.averaging_constant)
                self.hi = ema_update(self.hi, hi, self.averaging_constant)
        qp = self.qparams()
        self._x, self._qp = x, qp
        return fake_quantize(x, qp)

    def backward(self, g):
        if self._x is None:
            raise RuntimeError(f"{self.name}: call forward before backward")
        return g * ste_mask(self._x, self._qp, self.rule)

    def params(self):
        return []

    def __repr__(self):
        return f"FakeQuant({self.name}: {self.bits} bit, {self.rule} STE)"


class LSQQuantizer:
    """A fake-quantizer with a learned step size (LSQ). Activations: unsigned codes ``[0, 2^b - 1]``.

    The step ``s`` is a parameter (a float32 array of shape ``(1,)``, or per-channel for
    weights) updated by the optimizer like any weight; ``ds`` holds its gradient.
    """

    def __init__(self, bits: int = 8, signed: bool = False, name: str = "lsq_q"):
        self.bits = check_bits(bits)
        self.signed = bool(signed)
        self.name = name
        self.s = None
        self.ds = None
        self.training = True
        self.frozen = False
        self._x = None

    def calibrate(self, x) -> None:
        self.s = np.array([lsq_init_step(x, self.bits, self.signed)], np.float32)
        self.ds = np.zeros_like(self.s)

    def _step(self):
        if self.s is None:
            raise RuntimeError(f"{self.name}: no step size yet; call calibrate(x) first")
        return np.maximum(self.s, np.float32(MIN_SCALE))

    def qparams(self) -> QParams:
        qmin, qmax = integer_range(self.bits, self.signed)
        return QParams(scale=float(self._step()[0]), zero_point=0, qmin=qmin, qmax=qmax, bits=self.bits)

    def forward(self, x):
        self._x = x
        return lsq_quantize(x, self._step(), self.bits, self.signed).astype(x.dtype, copy=False)

    def backward(self, g):
        if self._x is None:
            raise RuntimeError(f"{self.name}: call forward before backward")
        dx, ds = lsq_backward(g, self._x, self._step(), self.bits, self.signed)
        if self.frozen:
            ds = np.zeros_like(ds)
        self.ds = ds.astype(np.float32)
        return dx.astype(g.dtype, copy=False)

    def params(self):
        return [] if self.s is None else [(self.s, self.ds)]

    def __repr__(self):
        return f"LSQQuantizer({self.name}: {self.bits} bit)"


class QATLinear:
    """``y = x @ Wq.T + b`` where ``Wq`` is the fake-quantized float ("shadow") weight ``W``.

    ``method="minmax"``: symmetric signed codes, range = max|W| of the current weights (per
    output channel when ``per_channel``), STE ``rule`` in the backward pass.
    ``method="lsq"``: a learned step per tensor (or per output channel), LSQ gradients.
    ``dW``, ``db`` (and ``ds`` for LSQ) hold the gradients after ``backward``.
    """

    def __init__(self, linear: Linear, bits: int = 8, per_channel: bool = True, rule: str = "clipped",
                 method: str = "minmax"):
        if not isinstance(linear, Linear):
            raise ValueError(f"expected a qlib.nn.Linear, got {type(linear).__name__}")
        self.W = linear.W.copy()
        self.b = linear.b.copy()
        self.name = linear.name
        self.bits = check_bits(bits)
        self.per_channel = bool(per_channel)
        self.rule = check_choice(rule, "rule", STE_RULES)
        self.method = check_choice(method, "method", METHODS)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.s = self.ds = None
        if self.method == "lsq":
            if self.per_channel:
                s = [lsq_init_step(row, self.bits, True) for row in self.W]
                self.s = np.array(s, np.float32).reshape(-1, 1)
            else:
                self.s = np.array([[lsq_init_step(self.W, self.bits, True)]], np.float32)
            self.ds = np.zeros_like(self.s)
        self.frozen = False
        self._x = None
        self._Wq = None
        self._qp = None

    def weight_qparams(self) -> QParams:
        """The weights' current quantization parameters (symmetric, signed)."""
        if self.method == "lsq":
            qmin, qmax = integer_range(self.bits, True)
            s = np.maximum(self.s, MIN_SCALE).astype(np.float64)
            if self.per_channel:
                return QParams(scale=s.ravel(), zero_point=np.zeros(s.size, np.int64), qmin=qmin, qmax=qmax,
                               bits=self.bits, axis=0, symmetric=True)
            return QParams(scale=float(s.ravel()[0]), zero_point=0, qmin=qmin, qmax=qmax, bits=self.bits,
                           symmetric=True)
        return qparams_from_tensor(self.W, bits=self.bits, symmetric=True, axis=0 if self.per_channel else None)

    def quantized_weight(self, qp: QParams | None = None) -> np.ndarray:
        """``Wq``, the weight the forward pass uses (on the integer grid times the step).

        ``qp``: the min-max parameters if already computed (saves recomputing them)."""
        if self.method == "lsq":
            return lsq_quantize(self.W, np.maximum(self.s, np.float32(MIN_SCALE)), self.bits, True)
        return fake_quantize(self.W, self.weight_qparams() if qp is None else qp)

    @property
    def in_features(self) -> int:
        return self.W.shape[1]

    @property
    def out_features(self) -> int:
        return self.W.shape[0]

    def forward(self, x):
        self._x = x
        if self.method == "minmax":
            self._qp = self.weight_qparams()
        self._Wq = self.quantized_weight(self._qp)
        return x @ self._Wq.T + self.b

    def backward(self, g):
        if self._x is None:
            raise RuntimeError(f"{self.name}: call forward before backward")
        dWq = g.T @ self._x
        self.db = g.sum(axis=0)
        if self.method == "minmax":
            self.dW = (dWq * ste_mask(self.W, self._qp, self.rule)).astype(self.W.dtype)
        else:
            dW, ds = lsq_backward(dWq, self.W, np.maximum(self.s, np.float32(MIN_SCALE)), self.bits, True)
            self.dW = dW.astype(self.W.dtype)
            self.ds = (np.zeros_like(ds) if self.frozen else ds).astype(np.float32)
        return g @ self._Wq

    def params(self):
        p = [(self.W, self.dW), (self.b, self.db)]
        if self.method == "lsq":
            p.append((self.s, self.ds))
        return p

    def __repr__(self):
        gran = "per-channel" if self.per_channel else "per-tensor"
        return f"QATLinear({self.name}: {self.in_features} -> {self.out_features}, W{self.bits} {gran}, {self.method})"


class QATMLP(MLP):
    """The reference MLP with fake quantization inserted, ready for QAT.

    Layers: ``act_q0 -> fc1 -> relu1 -> act_q1 -> fc2 -> relu2 -> act_q2 -> fc3``: every
    Linear sees a fake-quantized input (``a_bits``, unsigned) and fake-quantized weights
    (``w_bits``, symmetric signed, per-channel or per-tensor); the logits stay float.
    Activation ranges start from min/max on ``calib_x`` (so the untrained QATMLP *is* the
    min-max PTQ model) and then follow an EMA of each batch during training (``method="minmax"``),
    or are learned step sizes (``method="lsq"``, initialised by LSQ's rule on ``calib_x``).
    ``accuracy`` and ``predict`` run in eval mode (no range updates); ``freeze()`` fixes the
    ranges for good, as at the end of QAT.
    """

    def __init__(self, model: MLP, calib_x, w_bits: int = 8, a_bits: int = 8, per_channel: bool = True,
                 rule: str = "clipped", method: str = "minmax", averaging_constant: float = 0.01):
        if not isinstance(model, MLP):
            raise ValueError(f"expected a qlib.nn.MLP (e.g. qlib.reference_model()), got {type(model).__name__}")
        w_bits, a_bits = check_bits(w_bits), check_bits(a_bits)
        if w_bits > 16 or a_bits > 16:
            raise ValueError("QAT supports 2 to 16 bits for weights and activations")
        check_choice(rule, "rule", STE_RULES)
        check_choice(method, "method", METHODS)
        calib_x = as_float_array(calib_x, "calib_x").astype(np.float32, copy=False)
        if calib_x.ndim != 2 or calib_x.shape[1] != model.linear_layers[0].in_features:
            raise ValueError(f"calib_x must be a batch of shape (n, {model.linear_layers[0].in_features}), "
                             f"got {calib_x.shape}")
        self.w_bits, self.a_bits, self.per_channel = w_bits, a_bits, bool(per_channel)
        self.rule, self.method = rule, method
        acts = model.activations(calib_x)
        layers, prev = [], "input"
        n_q = 0
        for layer in model.layers:
            if isinstance(layer, Linear):
                if method == "lsq":
                    q = LSQQuantizer(a_bits, signed=bool(acts[prev].min() < 0), name=f"act_q{n_q}")
                else:
                    q = FakeQuant(a_bits, rule=rule, averaging_constant=averaging_constant, name=f"act_q{n_q}")
                q.calibrate(acts[prev])
                layers.append(q)
                n_q += 1
                layers.append(QATLinear(layer, w_bits, per_channel=per_channel, rule=rule, method=method))
            elif isinstance(layer, ReLU):
                layers.append(ReLU(layer.name))
            else:
                raise ValueError(f"QATMLP knows Linear and ReLU layers, got {type(layer).__name__}")
            prev = layer.name
        self.layers = layers
        self.training = True

    @property
    def linear_layers(self) -> list:
        return [layer for layer in self.layers if isinstance(layer, QATLinear)]

    @property
    def quantizers(self) -> list:
        """The activation quantizers, in order."""
        return [layer for layer in self.layers if isinstance(layer, (FakeQuant, LSQQuantizer))]

    def _set_training(self, flag: bool) -> None:
        self.training = flag
        for q in self.quantizers:
            q.training = flag

    def predict(self, x):
        was = self.training
        self._set_training(False)
        try:
            return self.forward(x).argmax(axis=1)
        finally:
            self._set_training(was)

    def freeze(self) -> None:
        """Stop every range/step update (the end of QAT): the model is now a fixed quantized model."""
        for layer in self.layers:
            if hasattr(layer, "frozen"):
                layer.frozen = True

    def clipped_fraction(self, x) -> dict:
        """``{quantizer name: share of its inputs outside the grid}`` on a batch ``x`` (eval mode):
        where the clipped STE blocks the gradient and the plain STE lets it through."""
        self.predict(x)
        out = {}
        for q in self.quantizers:
            qp = q.qparams()
            out[q.name] = float(1.0 - ste_mask(q._x, qp, "clipped").mean())
        return out

    def quantized_weights(self) -> dict:
        """``{name: Wq}``: each layer's fake-quantized weight, as the integer model would use it."""
        return {layer.name: layer.quantized_weight() for layer in self.linear_layers}

    def __repr__(self):
        return "QATMLP(" + " -> ".join(map(repr, self.layers)) + ")"


class QATResult(NamedTuple):
    """``accuracy[0]`` is the test accuracy before QAT (the min-max PTQ start), then one per epoch."""

    model: QATMLP
    loss: list
    accuracy: list


def train_qat(model: MLP, data, w_bits: int, a_bits: int, epochs: int = 5, rule: str = "clipped",
              method: str = "minmax", per_channel: bool = True, lr: float = 1e-3, batch_size: int = 64,
              seed: int = 0, n_calib: int = 256) -> QATResult:
    """Fine-tune a copy of a trained float ``model`` with QAT on ``data`` (a :class:`qlib.data.Digits`).

    Calibrates on the first ``n_calib`` training images, trains ``epochs`` epochs with
    :func:`qlib.nn.train` (Adam, seeded shuffling), then freezes the ranges. ``model`` is untouched.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"epochs must be a whole number >= 0, got {epochs!r}")
    if not all(hasattr(data, k) for k in ("X_train", "y_train", "X_test", "y_test")):
        raise ValueError("data must hold X_train, y_train, X_test, y_test (use qlib.load_digits())")
    qm = QATMLP(copy.deepcopy(model), data.X_train[:n_calib], w_bits=w_bits, a_bits=a_bits,
                per_channel=per_channel, rule=rule, method=method)
    acc0 = qm.accuracy(data.X_test, data.y_test)
    hist = train(qm, data.X_train, data.y_train, epochs=int(epochs), batch_size=batch_size, lr=lr, seed=seed,
                 X_test=data.X_test, y_test=data.y_test)
    qm.freeze()
    return QATResult(qm, list(hist.loss), [acc0] + list(hist.test_accuracy))


def minmax_ptq_accuracy(model: MLP, data, w_bits: int, a_bits: int, per_channel: bool = True,
                        n_calib: int = 256) -> float:
    """Test accuracy of plain min-max PTQ (no training): the QAT model before its first step."""
    qm = QATMLP(model, data.X_train[:n_calib], w_bits=w_bits, a_bits=a_bits, per_channel=per_channel)
    return qm.accuracy(data.X_test, data.y_test)
