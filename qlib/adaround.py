"""AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization").

Round-to-nearest (RTN) minimises each weight's own error ``|W_q - W|``, but what matters is
the layer's *output*: errors of the weights in one row add up in ``W_q x``. AdaRound chooses,
for every weight, whether to round down or up so that the output on calibration inputs stays
close to the float output.

Grid (qlib's conventions, docs/conventions.md §1 and §4: scale ``S`` = step size, zero point
``Z``; weights symmetric per-channel along axis 0, so ``S`` has one value per output row and
``Z = 0``). With ``S`` and ``Z`` broadcast over each row, the *soft* quantized weight is

    W_soft(V) = S * (clip(floor(W / S) + h(V) + Z, qmin, qmax) - Z)

with the **rectified sigmoid** ``h(V) = clip(sigmoid(V) * (zeta - gamma) + gamma, 0, 1)``,
``zeta = 1.1``, ``gamma = -0.1`` (it reaches exactly 0 and 1, unlike a sigmoid). ``V`` is
initialised so that ``h(V) = frac(W / S) = W / S - floor(W / S)``: then ``W_soft = W``.

Loss (one layer, mini-batch of ``n`` inputs; ``x`` is the float model's input of the layer,
``x_q`` the input from the already quantized layers before it, as in the paper):

    L(V) = || x W.T - x_q W_soft(V).T ||_F^2 / n  +  lambda * sum(1 - |2 h(V) - 1|^beta)

The regulariser is 0 only when every ``h`` is 0 or 1. ``beta`` starts high (20: flat, only
the reconstruction matters), after a warm-up (20 % of the iterations, regulariser off) it is
annealed to 2 (pushes every ``h`` hard to 0 or 1) with AIMET's cosine schedule

    beta(t) = beta_end + (beta_start - beta_end) * (1 + cos(pi * r)) / 2,
    r = (t - t_warm) / (T - t_warm)

``V`` is optimised with Adam for a fixed number of iterations on random mini-batches.

Defaults, and where they differ from AIMET's: AIMET runs 10 000 iterations (Adam, lr 1e-3) with
``lambda = reg_param = 0.01``; qlib runs 1 000 (lr 3e-2, a fraction of a second per layer of the
digits MLP) with ``lambda = 0.1``. The balance between the two terms depends on the size of the
layer's outputs: with ``lambda = 0.01`` about half of the digits MLP's last-layer ``h(V)`` are
still between 0 and 1 at the end at 2 bits (with 1 000 iterations, and with AIMET's 10 000 as
well), so the hard rounding differs from what was optimised -- at 1 000 iterations it can
reconstruct *worse* than round-to-nearest; ``lambda = 0.1`` finishes the annealing. Pass ``reg=0.01,
iterations=10000, lr=1e-3`` for AIMET's settings. The final, hard rounding is ``q = clip(floor(W / S) + [h(V) >= 0.5] + Z,
qmin, qmax)``: each code is ``floor(W / S)`` or one above it, never further from the weight.

:func:`adaround_mlp` does this layer by layer through a :class:`qlib.nn.MLP` (weight-only:
activations stay float), each layer's ``x_q`` computed by the layers already AdaRounded.
Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from ._validate import as_float_array, calibration_batch, check_bits
from .linear import QParams, dequantize, qparams_from_tensor, quantize

__all__ = [
    "ZETA",
    "GAMMA",
    "rectified_sigmoid",
    "rectified_sigmoid_grad",
    "init_v",
    "soft_weight",
    "hard_codes",
    "rounding_regularizer",
    "beta_schedule",
    "reconstruction_loss",
    "AdaRoundLayer",
    "adaround_layer",
    "adaround_mlp",
    "rtn_mlp",
]

ZETA, GAMMA = 1.1, -0.1


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))   # overflow-free logistic function


def rectified_sigmoid(V, zeta: float = ZETA, gamma: float = GAMMA) -> np.ndarray:
    """``h(V) = clip(sigmoid(V) * (zeta - gamma) + gamma, 0, 1)``; reaches 0 and 1 exactly.

    >>> rectified_sigmoid(np.array([-10.0, 0.0, 10.0])).round(4).tolist()
    [0.0, 0.5, 1.0]
    """
    V = as_float_array(V, "V")
    if not zeta > 1 or not gamma < 0:
        raise ValueError(f"need zeta > 1 and gamma < 0 (the stretch beyond [0, 1]), got zeta={zeta}, gamma={gamma}")
    return np.clip(_sigmoid(V) * (zeta - gamma) + gamma, 0.0, 1.0)


def rectified_sigmoid_grad(V, zeta: float = ZETA, gamma: float = GAMMA) -> np.ndarray:
    """``dh/dV = (zeta - gamma) * sigmoid(V) * (1 - sigmoid(V))`` where ``0 < h < 1``, else 0.

    >>> print(f"{float(rectified_sigmoid_grad(np.array(0.0))):.2f}")   # 1.2 * 0.25
    0.30
    """
    V = as_float_array(V, "V")
    s = _sigmoid(V)
    u = s * (zeta - gamma) + gamma
    return np.where((u > 0) & (u < 1), (zeta - gamma) * s * (1 - s), 0.0)


def _grid(W, qp: QParams):
    """``W / S``, ``S`` and ``Z`` broadcast to W's shape (per-tensor or per-channel along axis 0)."""
    if not isinstance(qp, QParams):
        raise ValueError(f"qp must be a qlib.QParams, got {type(qp).__name__}")
    if qp.group_size is not None or (qp.axis not in (None, 0)):
        raise ValueError("AdaRound here takes per-tensor or per-channel (axis=0) weight qparams")
    s = np.asarray(qp.scale, np.float64)
    z = np.asarray(qp.zero_point, np.float64)
    if qp.axis == 0:
        if s.shape != (W.shape[0],):
            raise ValueError(f"per-channel qparams hold {s.size} scales but W has {W.shape[0]} output rows")
        s, z = s.reshape(-1, 1), z.reshape(-1, 1)
    return W.astype(np.float64) / s, s, z


def init_v(W, qp: QParams, zeta: float = ZETA, gamma: float = GAMMA) -> np.ndarray:
    """``V`` with ``h(V) = frac(W / S)``: ``V = log(p / (1 - p))``, ``p = (frac - gamma) / (zeta - gamma)``.

    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2, symmetric=True)
    >>> W = np.array([[0.1, -0.6, 0.3]])           # W / S = 0.2, -1.2, 0.6
    >>> rectified_sigmoid(init_v(W, qp)).round(6).tolist()
    [[0.2, 0.8, 0.6]]
    """
    W = as_float_array(W, "W")
    r, _, _ = _grid(W, qp)
    frac = r - np.floor(r)
    p = (frac - gamma) / (zeta - gamma)
    return np.log(p / (1.0 - p))


def soft_weight(W, V, qp: QParams, zeta: float = ZETA, gamma: float = GAMMA) -> np.ndarray:
    """``W_soft = S * (clip(floor(W / S) + h(V) + Z, qmin, qmax) - Z)`` (float64).

    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2, symmetric=True)
    >>> W = np.array([[0.1, -0.6, 0.3]])
    >>> np.allclose(soft_weight(W, init_v(W, qp), qp), W)      # the start reproduces W
    True
    >>> soft_weight(W, np.full((1, 3), 10.0), qp).tolist()     # h = 1 everywhere: all rounded up
    [[0.5, -0.5, 0.5]]
    """
    W = as_float_array(W, "W")
    V = as_float_array(V, "V")
    r, s, z = _grid(W, qp)
    return s * (np.clip(np.floor(r) + rectified_sigmoid(V, zeta, gamma) + z, qp.qmin, qp.qmax) - z)


def hard_codes(W, V, qp: QParams, zeta: float = ZETA, gamma: float = GAMMA) -> np.ndarray:
    """Final codes ``clip(floor(W / S) + [h(V) >= 0.5] + Z, qmin, qmax)`` (int64).

    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2, symmetric=True)
    >>> W = np.array([[0.1, -0.6, 0.3]])
    >>> hard_codes(W, init_v(W, qp), qp).tolist()      # from the start: h >= 0.5 where frac >= 0.5
    [[0, -1, 1]]
    """
    W = as_float_array(W, "W")
    V = as_float_array(V, "V")
    r, _, z = _grid(W, qp)
    up = rectified_sigmoid(V, zeta, gamma) >= 0.5
    return np.clip(np.floor(r) + up + z, qp.qmin, qp.qmax).astype(np.int64)


def rounding_regularizer(h, beta: float) -> float:
    """``f_reg = sum(1 - |2 h - 1|^beta)``: 0 when every ``h`` is 0 or 1, largest at ``h = 0.5``.

    >>> rounding_regularizer(np.array([0.0, 1.0]), 2.0), rounding_regularizer(np.array([0.5]), 2.0)
    (0.0, 1.0)
    """
    h = as_float_array(h, "h")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    return float((1.0 - np.abs(2.0 * h - 1.0) ** beta).sum())


def beta_schedule(t: int, iterations: int, warm_up: float = 0.2, beta_start: float = 20.0,
                  beta_end: float = 2.0) -> float | None:
    """``beta`` at iteration ``t``: ``None`` during the warm-up (``t < warm_up * iterations``, no
    regulariser), then ``beta_end + (beta_start - beta_end) * (1 + cos(pi r)) / 2``,
    ``r = (t - t_warm) / (iterations - t_warm)`` (AIMET's cosine decay).

    >>> beta_schedule(0, 100), beta_schedule(20, 100), round(beta_schedule(60, 100), 6), beta_schedule(100, 100)
    (None, 20.0, 11.0, 2.0)
    """
    t_warm = warm_up * iterations
    if t < t_warm:
        return None
    r = (t - t_warm) / max(iterations - t_warm, 1e-12)
    return float(beta_end + (beta_start - beta_end) * (1.0 + np.cos(np.pi * min(r, 1.0))) / 2.0)


def reconstruction_loss(W, W_q, x, x_q=None) -> float:
    """``|| x W.T - x_q W_q.T ||_F^2 / n`` (the layer's output error per sample; float64).

    >>> reconstruction_loss(np.eye(2), np.array([[1.0, 0.0], [0.0, 0.5]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    2.5
    """
    W = as_float_array(W, "W").astype(np.float64)
    W_q = as_float_array(W_q, "W_q").astype(np.float64)
    x = as_float_array(x, "x").astype(np.float64)
    x_q = x if x_q is None else as_float_array(x_q, "x_q").astype(np.float64)
    if W_q.shape != W.shape or x.ndim != 2 or x.shape != x_q.shape or x.shape[1] != W.shape[1]:
        raise ValueError(f"need W, W_q (out, in) of one shape and x, x_q (n, in): got W {W.shape}, "
                         f"W_q {W_q.shape}, x {x.shape}, x_q {x_q.shape}")
    d = x @ W.T - x_q @ W_q.T
    return float((d * d).sum() / x.shape[0])


@dataclass
class AdaRoundLayer:
    """The result of :func:`adaround_layer` for one weight matrix.

    ``codes`` (out, in) int64 and ``qp`` the grid; ``weight`` the dequantized weight
    ``S (codes - Z)``; ``rtn_codes`` round-to-nearest's codes on the same grid; ``loss_adaround``
    and ``loss_rtn`` the reconstruction loss of both on all calibration inputs; ``h`` the final
    ``h(V)``; ``h_history`` ``{iteration: h(V)}`` at the requested snapshots; ``loss_history``
    the total mini-batch loss per iteration.
    """

    name: str
    codes: np.ndarray
    qp: QParams
    weight: np.ndarray
    rtn_codes: np.ndarray
    loss_adaround: float
    loss_rtn: float
    h: np.ndarray
    h_history: dict = field(default_factory=dict, repr=False)
    loss_history: list = field(default_factory=list, repr=False)

    @property
    def flipped(self) -> float:
        """Fraction of weights rounded differently from round-to-nearest."""
        return float((self.codes != self.rtn_codes).mean())


def _positive_int(v, name):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def adaround_layer(W, x, x_q=None, bits: int = 4, per_channel: bool = True, qp: QParams | None = None,
                   iterations: int = 1000, batch_size: int = 64, lr: float = 3e-2, reg: float = 0.1,
                   warm_up: float = 0.2, beta_range=(20.0, 2.0), seed: int = 0, snapshots=(),
                   name: str = "fc") -> AdaRoundLayer:
    """AdaRound one weight matrix ``W`` (out, in) on calibration inputs (see the module docstring).

    ``x`` (n, in): the float layer's inputs (they give the target ``x W.T``); ``x_q``: the
    inputs the quantized layer sees (default ``x``). ``qp``: the weight grid (default:
    symmetric min-max, per-channel along axis 0 if ``per_channel``, ``bits``). Adam on ``V``
    with learning rate ``lr``; each iteration draws ``batch_size`` rows (seeded by ``seed``).
    ``snapshots``: iterations at which to keep ``h(V)`` (0 = the start; ``iterations`` = the end).

    >>> rng = np.random.default_rng(0)
    >>> W, x = rng.normal(size=(8, 16)), np.abs(rng.normal(size=(128, 16)))
    >>> r = adaround_layer(W, x, bits=2, iterations=300)
    >>> r.loss_adaround < r.loss_rtn
    True
    """
    W = as_float_array(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D (out, in) weight matrix, got shape {W.shape}")
    x = as_float_array(x, "x").astype(np.float64)
    x_q = x if x_q is None else as_float_array(x_q, "x_q").astype(np.float64)
    if x.ndim != 2 or x.shape[1] != W.shape[1] or x_q.shape != x.shape:
        raise ValueError(f"x and x_q must both be (n_samples, {W.shape[1]}), got {x.shape} and {x_q.shape}")
    iterations = _positive_int(iterations, "iterations")
    batch_size = _positive_int(batch_size, "batch_size")
    if not lr > 0 or not reg >= 0 or not 0 <= warm_up < 1:
        raise ValueError(f"need lr > 0, reg >= 0 and 0 <= warm_up < 1, got lr={lr}, reg={reg}, warm_up={warm_up}")
    b0, b1 = (float(v) for v in beta_range)
    if not b0 >= b1 > 0:
        raise ValueError(f"beta_range must be (start, end) with start >= end > 0, got {beta_range!r}")
    if qp is None:
        qp = qparams_from_tensor(W, bits=check_bits(bits), symmetric=True, axis=0 if per_channel else None)
    r, s, z = _grid(W, qp)
    fl = np.floor(r)
    V = init_v(W, qp)
    W64 = W.astype(np.float64)
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    bs = min(batch_size, n)
    m, v = np.zeros_like(V), np.zeros_like(V)
    b_1, b_2, eps = 0.9, 0.999, 1e-8
    snaps = {int(t) for t in snapshots}
    h_hist, losses = {}, []
    if 0 in snaps:
        h_hist[0] = rectified_sigmoid(V).copy()
    # tiny matrices: BLAS threads only add synchronisation (as in qlib.nn.train): one thread, same numbers
    with threadpool_limits(limits=1, user_api="blas"):
        target = x @ W64.T                                         # the float layer's output, (n, out)
        for t in range(1, iterations + 1):
            idx = rng.choice(n, size=bs, replace=False) if bs < n else np.arange(n)
            xqb = x_q[idx]
            sig = _sigmoid(V)
            u = sig * (ZETA - GAMMA) + GAMMA
            h = np.clip(u, 0.0, 1.0)
            codes = fl + h + z
            inside = (codes >= qp.qmin) & (codes <= qp.qmax)
            w_soft = s * (np.clip(codes, qp.qmin, qp.qmax) - z)
            d = xqb @ w_soft.T - target[idx]                       # (bs, out)
            loss = float((d * d).sum() / bs)
            g_w = (2.0 / bs) * d.T @ xqb                           # dL/dW_soft, (out, in)
            g_h = g_w * s * inside
            beta = beta_schedule(t - 1, iterations, warm_up, b0, b1)
            if beta is not None and reg > 0:
                a = 2.0 * h - 1.0
                loss += reg * float((1.0 - np.abs(a) ** beta).sum())
                g_h = g_h - reg * beta * np.abs(a) ** (beta - 1.0) * np.sign(a) * 2.0
            g = g_h * np.where((u > 0) & (u < 1), (ZETA - GAMMA) * sig * (1 - sig), 0.0)
            m = b_1 * m + (1 - b_1) * g
            v = b_2 * v + (1 - b_2) * g * g
            V = V - lr * (m / (1 - b_1 ** t)) / (np.sqrt(v / (1 - b_2 ** t)) + eps)
            losses.append(loss)
            if t in snaps:
                h_hist[t] = rectified_sigmoid(V).copy()
    codes = hard_codes(W, V, qp)
    rtn = quantize(W, qp).astype(np.int64)
    weight = dequantize(codes, qp)
    return AdaRoundLayer(name, codes, qp, weight, rtn, reconstruction_loss(W, weight, x, x_q),
                         reconstruction_loss(W, dequantize(rtn, qp), x, x_q), rectified_sigmoid(V),
                         h_hist, losses)


def _check_model(model):
    from .nn import MLP, Linear, ReLU

    if not isinstance(model, MLP):
        raise ValueError(f"model must be a qlib.nn.MLP, got {type(model).__name__}")
    if any(not isinstance(layer, (Linear, ReLU)) for layer in model.layers):
        raise ValueError("adaround_mlp handles Linear and ReLU layers only")


def adaround_mlp(model, calib_x, bits: int = 4, per_channel: bool = True, inputs: str = "quantized",
                 **kw):
    """Weight-only AdaRound of every Linear layer of an MLP, layer by layer.

    Layer ``l``'s target is the float model's ``x W.T`` (its float inputs ``x``); its own inputs
    ``x_q`` come from the layers already AdaRounded (``inputs="quantized"``, default, as in the
    paper: later layers learn to compensate earlier errors) or from the float model
    (``inputs="float"``). Activations stay float. Other keywords go to :func:`adaround_layer`.

    Returns ``(qmodel, results)``: a copy of ``model`` with the dequantized AdaRound weights
    (biases unchanged) and ``{layer name: AdaRoundLayer}``.

    >>> from qlib.data import load_digits
    >>> from qlib.nn import reference_model
    >>> d = load_digits()
    >>> q, res = adaround_mlp(reference_model(), d.X_train[:128], bits=3, iterations=100)
    >>> sorted(res), all(r.loss_adaround <= r.loss_rtn for r in res.values())
    (['fc1', 'fc2', 'fc3'], True)
    """
    from .nn import Linear

    _check_model(model)
    x = calibration_batch(calib_x, inputs)
    out = model.copy()
    results = {}
    h_f, h_q = x, x
    for lf, lq in zip(model.layers, out.layers):
        if isinstance(lf, Linear):
            res = adaround_layer(lf.W, h_f, h_q if inputs == "quantized" else h_f, bits=bits,
                                 per_channel=per_channel, name=lf.name, **kw)
            lq.W = res.weight.astype(np.float32)
            results[lf.name] = res
        h_f, h_q = lf.forward(h_f), lq.forward(h_q)
    return out, results


def rtn_mlp(model, bits: int = 4, per_channel: bool = True):
    """Round-to-nearest weight-only copy of ``model`` on the same grid as :func:`adaround_mlp`
    (symmetric min-max, per-channel along axis 0): ``S * clamp(round(W / S), qmin, qmax)``.

    >>> from qlib.nn import reference_model
    >>> len(np.unique(rtn_mlp(reference_model(), bits=2).layers[0].W[0])) <= 4
    True
    """
    _check_model(model)
    out = model.copy()
    for lin in out.linear_layers:
        qp = qparams_from_tensor(lin.W, bits=check_bits(bits), symmetric=True, axis=0 if per_channel else None)
        lin.W = dequantize(quantize(lin.W, qp), qp).astype(np.float32)
    return out
