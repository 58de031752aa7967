"""Batch-norm folding: merge a BatchNorm that follows a conv/linear layer into its weights.

Inference-time BN is ``y = gamma * (z - mean) / sqrt(var + eps) + beta`` per output channel.
With ``z = W x + b`` this is again a linear layer, with every output channel ``c``
rescaled by ``k[c] = gamma[c] / sqrt(var[c] + eps)``:

    W_folded[c] = k[c] * W[c],    b_folded[c] = k[c] * (b[c] - mean[c]) + beta[c]

Because ``k`` differs from channel to channel, folding spreads the channels' weight
ranges apart: the reason per-channel weight quantization exists.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array

__all__ = ["fold_batchnorm"]


def fold_batchnorm(W, b, gamma, beta, mean, var, eps: float = 1e-5):
    """Return ``(W_folded, b_folded)`` with ``W_folded[c] = k[c] W[c]``, ``b_folded[c] = k[c] (b[c] - mean[c]) + beta[c]``,
    ``k = gamma / sqrt(var + eps)``. ``W`` has the output channel first: (out, in) or (out, in, kh, kw).
    ``b`` may be None (no bias). Inputs are not modified.

    >>> W = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> Wf, bf = fold_batchnorm(W, None, gamma=[2.0, 1.0], beta=[0.5, 0.0], mean=[1.0, 0.0], var=[1.0, 4.0], eps=0.0)
    >>> Wf, bf
    (array([[2. , 4. ],
           [1.5, 2. ]]), array([-1.5,  0. ]))
    """
    W = as_float_array(W, "W")
    n_out = W.shape[0] if W.ndim else 0
    if W.ndim < 2:
        raise ValueError(f"W must have the output channel first and at least 2 dimensions, got shape {W.shape}")
    vecs = {}
    for name, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        v = as_float_array(v, name)
        if v.shape != (n_out,):
            raise ValueError(f"{name} must have one entry per output channel ({n_out}), got shape {v.shape}")
        vecs[name] = v
    b = np.zeros(n_out, W.dtype) if b is None else as_float_array(b, "b")
    if b.shape != (n_out,):
        raise ValueError(f"b must have one entry per output channel ({n_out}), got shape {b.shape}")
    if (vecs["var"] + eps < 0).any() or eps < 0:
        raise ValueError("var + eps must be >= 0 (a variance cannot be negative)")
    denom = np.sqrt(vecs["var"] + eps)
    if (denom == 0).any():
        raise ValueError("var + eps is 0 for some channel: pass eps > 0 (BatchNorm's default is 1e-5)")
    k = vecs["gamma"] / denom
    W_folded = W * k.reshape((-1,) + (1,) * (W.ndim - 1))
    b_folded = k * (b - vecs["mean"]) + vecs["beta"]
    return W_folded.astype(W.dtype), b_folded.astype(W.dtype)
