"""Cross-layer equalization (Nagel et al., 2019 "Data-Free Quantization"; SNPE ``--algorithms cle``, AIMET CLE).

Two layers in a row, ``y = W2 f(W1 x + b1) + b2``, with an activation ``f`` that is positively
homogeneous (``f(x / s) = f(x) / s`` for ``s > 0``: ReLU yes, ReLU6 / hard-swish no). Dividing
output channel ``i`` of layer 1 by ``s_i`` and multiplying input channel ``i`` of layer 2 by
``s_i`` leaves the network's output unchanged. With ``r1_i`` the range (max |w|) of layer 1's
output channel ``i`` and ``r2_i`` that of layer 2's input channel ``i``, the choice

    s_i = sqrt(r1_i / r2_i)      (equivalently (1 / r2_i) * sqrt(r1_i * r2_i))

makes both ranges equal to ``sqrt(r1_i * r2_i)``, so the channels of each layer become similar
and one per-tensor scale fits them all much better.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array

__all__ = ["channel_ranges", "range_spread", "cle_scales", "equalize_pair"]


def channel_ranges(W, axis: int = 0) -> np.ndarray:
    """Range of each channel: ``r[c] = max |W|`` over every axis except ``axis``.

    >>> channel_ranges(np.array([[1.0, -3.0], [0.5, 0.25]]))
    array([3. , 0.5])
    >>> channel_ranges(np.array([[1.0, -3.0], [0.5, 0.25]]), axis=1)
    array([1., 3.])
    """
    W = as_float_array(W, "W")
    axis = axis % W.ndim
    other = tuple(i for i in range(W.ndim) if i != axis)
    return np.abs(W).max(axis=other) if other else np.abs(W)


def range_spread(W, axis: int = 0) -> float:
    """How unequal the channels are: ``max_c r[c] / min_c r[c]`` (1 = all alike; inf if a channel is all zero).

    >>> range_spread(np.array([[1.0, -3.0], [0.5, 0.25]]))
    6.0
    """
    r = channel_ranges(W, axis).astype(np.float64)   # float32 max/min of a near-dead channel can overflow
    return float(np.inf) if r.min() == 0 else float(r.max() / r.min())


def cle_scales(r1, r2) -> np.ndarray:
    """Equalization scales ``s_i = sqrt(r1_i / r2_i)``; channels where either range is 0 keep ``s_i = 1``.

    After dividing layer 1's channel i by s_i and multiplying layer 2's channel i by s_i,
    both ranges equal sqrt(r1_i * r2_i).

    >>> cle_scales([4.0, 1.0, 0.0], [1.0, 4.0, 2.0])
    array([2. , 0.5, 1. ])
    """
    r1 = as_float_array(r1, "r1").astype(np.float64)
    r2 = as_float_array(r2, "r2").astype(np.float64)
    if r1.shape != r2.shape or r1.ndim != 1:
        raise ValueError(f"r1 and r2 must be 1-D with one entry per channel, got {r1.shape} and {r2.shape}")
    if (r1 < 0).any() or (r2 < 0).any():
        raise ValueError("channel ranges are max |w| and cannot be negative")
    ok = (r1 > 0) & (r2 > 0)
    s = np.ones_like(r1)
    s[ok] = np.sqrt(r1[ok]) / np.sqrt(r2[ok])  # not sqrt(r1 / r2): that ratio can overflow for tiny r2
    return s


def equalize_pair(W1, b1, W2, depthwise: bool = False):
    """Equalize two consecutive layers through a ReLU; returns ``(W1', b1', W2', s)``.

    ``W1`` (C, ...) has output channels first; ``W2`` is (out, C, ...) for an ordinary layer or
    (C, 1, ...) for a depthwise conv (``depthwise=True``: its channel c reads input channel c).
    ``W1'[c] = W1[c] / s_c``, ``b1'[c] = b1[c] / s_c``, ``W2'[:, c] = W2[:, c] * s_c``
    (``W2'[c] = W2[c] * s_c`` for depthwise). Layer 2's bias does not change.

    >>> W1 = np.array([[4.0], [1.0]]); W2 = np.array([[1.0, 4.0]])
    >>> W1e, b1e, W2e, s = equalize_pair(W1, np.array([2.0, 2.0]), W2)
    >>> W1e.ravel(), b1e, W2e.ravel()
    (array([2., 2.]), array([1., 4.]), array([2., 2.]))
    """
    W1 = as_float_array(W1, "W1")
    W2 = as_float_array(W2, "W2")
    C = W1.shape[0]
    b1 = np.zeros(C, W1.dtype) if b1 is None else as_float_array(b1, "b1")
    if b1.shape != (C,):
        raise ValueError(f"b1 must have one entry per output channel of W1 ({C}), got {b1.shape}")
    ax2 = 0 if depthwise else 1
    if W2.ndim < 2 or W2.shape[ax2] != C:
        raise ValueError(f"W2 must have {C} channels along axis {ax2} to follow W1, got shape {W2.shape}")
    s = cle_scales(channel_ranges(W1, 0), channel_ranges(W2, ax2))
    shape1 = (-1,) + (1,) * (W1.ndim - 1)
    shape2 = [1] * W2.ndim
    shape2[ax2] = -1
    W1e = (W1 / s.reshape(shape1)).astype(W1.dtype)
    b1e = (b1 / s).astype(b1.dtype)
    W2e = (W2 * s.reshape(shape2)).astype(W2.dtype)
    return W1e, b1e, W2e, s
