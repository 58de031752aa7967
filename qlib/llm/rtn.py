"""Round-to-nearest (RTN) group-wise weight quantization of every linear layer of the LLM.

Each weight row (one output channel, ``in_features`` long) is cut into groups of ``group_size``
consecutive inputs; each group gets its own min-max scale (and zero point when asymmetric), and
every weight is rounded to the nearest code. This is the course's block-wise quantizer
(``qlib.qparams_from_tensor(w, axis=1, group_size=g)`` then ``qlib.fake_quantize``), see
docs/conventions.md §4, "Weights, granularity and the shapes of the parameters" (block-wise LLM style):

    symmetric:  S = max|w_group| / (2^(b-1) - 1),  Z = 0,            w_hat = S * clamp(round(w / S))
    asymmetric: S = (max - min) / (2^b - 1),       Z = round(-min / S), w_hat = S * (clamp(round(w / S) + Z) - Z)

Storage per weight, scales counted (fp16 scale, b-bit zero point when asymmetric):

    bits/weight = b + (16 + (b if asymmetric else 0)) / group_size

The group size must divide every layer's in_features: 576 (q, k, v, gate, up, and o) and 1536
(down). 576 = 9 x 64, so 32, 64, 192 and 576 (one scale per row) work, 128 does not.

The token embedding (which is also the tied output head) and the norms are left as they are.
Note that the reference weights are already Q4_1 (5 bits/weight, groups of 32) decoded to float:
RTN here *re*-quantizes a 4-bit model, it does not start from the original bf16 weights.
Even W4 g32 asymmetric does not give the Q4_1 weights back: Q4_1's offset ``m`` is a real number
(``x = d*q + m``, 0 need not be on the grid), while the course's zero point Z is an integer so
that real 0 is exact; the two grids differ by a fraction of a step in almost every group.
"""

from __future__ import annotations

import numpy as np

from .. import linear as _linear
from ..granularity import effective_bits_per_weight
from .llama import LINEAR_NAMES, Llama

__all__ = ["rtn_weight", "rtn_bits_per_weight", "linear_weight_names", "rtn_model"]


def rtn_weight(w, bits: int = 4, group_size: int = 64, symmetric: bool = False) -> np.ndarray:
    """Fake-quantize a weight (out, in) with round-to-nearest in groups of ``group_size`` inputs.

    >>> w = np.array([[0.0, 1.0, 2.0, 3.0, -1.0, 0.0, 0.4, 2.0]], np.float32)
    >>> print(rtn_weight(w, bits=2, group_size=4))   # asymmetric: S = 3/3 (Z = 0), S = 3/3 (Z = 1)
    [[ 0.  1.  2.  3. -1.  0.  0.  2.]]
    >>> rtn_weight(w, bits=3, group_size=4, symmetric=True)[0, :4]   # S = 3/3, codes -4..3
    array([0., 1., 2., 3.], dtype=float32)
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"a linear weight is 2-D (out_features, in_features), got shape {w.shape}")
    qp = _linear.qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=1, group_size=group_size)
    return _linear.fake_quantize(w, qp)


def rtn_bits_per_weight(bits: int, group_size: int, symmetric: bool = False, scale_bits: int = 16) -> float:
    """``bits + (scale_bits + zero_point_bits) / group_size``, zero point of ``bits`` bits if asymmetric.

    >>> rtn_bits_per_weight(4, 64), rtn_bits_per_weight(3, 32, symmetric=True)
    (4.3125, 3.5)
    """
    return effective_bits_per_weight(bits, group_size, scale_bits=scale_bits,
                                     zero_point_bits=0 if symmetric else bits)


def linear_weight_names(model: Llama) -> list[str]:
    """GGUF names of the 7 linear weights of every block (q, k, v, o, gate, up, down)."""
    return [f"blk.{i}.{n}.weight" for i in range(model.config.n_layer) for n in LINEAR_NAMES]


def rtn_model(model: Llama, bits: int = 4, group_size: int = 64, symmetric: bool = False) -> Llama:
    """The model with every linear weight replaced by :func:`rtn_weight` (embedding/head, norms kept)."""
    replaced = {}
    for name in linear_weight_names(model):
        wq = rtn_weight(model.weights[name], bits, group_size, symmetric).astype(np.float32)
        wq.setflags(write=False)
        replaced[name] = wq
    return model.with_weights(replaced)
