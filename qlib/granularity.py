"""Granularity: how many weights share one scale (and zero point).

* **per-tensor** (per-layer): one ``(S, Z)`` for the whole tensor;
* **per-channel**: one ``(S, Z)`` per output channel (``axis=0`` of an ``(out, in)`` or
  ``(out, in, kh, kw)`` weight);
* **per-group**, in its two meanings (docs/conventions.md, section 4):

  - the seed's **G channel groups**: the C output channels are cut into G contiguous
    groups that share one ``(S, Z)``; ``G = 1`` is per-tensor, ``G = C`` is per-channel
    (:func:`channel_group_qparams`);
  - today's LLM-style **block-wise** groups: ``group_size`` consecutive input elements
    inside each output row share one ``(S, Z)`` (``qlib.qparams_from_tensor(w, axis=1,
    group_size=...)``).

Finer granularity means smaller error but more scales to store:
:func:`effective_bits_per_weight` counts them. :func:`bn_folded_model` builds the case
where per-tensor breaks down: a layer with batch-norm folded into it.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_axis, check_bits, check_choice
from .bn import fold_batchnorm
from .linear import QParams, fake_quantize, qparams_from_range, qparams_from_tensor
from .metrics import _difference, log10_sum_square, mean_square, mse

__all__ = [
    "GRANULARITIES",
    "channel_groups",
    "channel_group_qparams",
    "weight_qparams",
    "weights_per_scale",
    "effective_bits_per_weight",
    "per_channel_error",
    "SweepPoint",
    "group_size_sweep",
    "quantize_model_weights",
    "weight_only_accuracy",
    "FoldedBN",
    "bn_folded_model",
]

#: The granularities :func:`weight_qparams` knows.
GRANULARITIES = ("per-tensor", "per-channel", "channel-groups", "block-wise")

ERROR_METRICS = ("mse", "sqnr_db", "max_abs")


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- the seed's G groups
def channel_groups(n_channels: int, groups: int) -> np.ndarray:
    """Group index of each of ``n_channels`` channels cut into ``groups`` contiguous groups.

    When ``groups`` divides ``n_channels`` every group holds ``n_channels / groups``
    channels. When it does not, the channels are split like ``numpy.array_split``: the
    first ``n_channels mod groups`` groups get one channel more (10 channels in 4 groups
    -> sizes 3, 3, 2, 2). ``groups`` must lie in ``[1, n_channels]``.

    >>> channel_groups(6, 3)
    array([0, 0, 1, 1, 2, 2])
    >>> channel_groups(10, 4)
    array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    """
    n = _check_count(n_channels, "n_channels")
    g = _check_count(groups, "groups")
    if g > n:
        raise ValueError(
            f"groups={g} but there are only {n} channels: use 1 <= groups <= {n} "
            f"(groups={n} is already per-channel)"
        )
    sizes = np.full(g, n // g)
    sizes[: n % g] += 1
    return np.repeat(np.arange(g), sizes)


def channel_group_qparams(w, groups: int, axis: int = 0, bits: int = 8, symmetric: bool = False,
                          signed=None, narrow_range: bool = False, scale_rule: str = "qmax") -> QParams:
    """The seed's per-group quantization: per-channel parameters shared within G channel groups.

    The channels along ``axis`` are cut into ``groups`` contiguous groups
    (:func:`channel_groups`); each group's range is ``[min over its channels, max over
    its channels]`` and every channel of the group gets the parameters of that range.
    The result is an ordinary per-channel :class:`QParams` (one entry per channel), so
    ``quantize``/``fake_quantize`` use it as is. ``groups=1`` gives per-tensor values,
    ``groups=C`` gives per-channel values.

    >>> w = np.array([[0.1, -0.2], [0.4, 0.0], [1.0, -3.0], [0.5, 0.5]])
    >>> qp = channel_group_qparams(w, groups=2, bits=8, symmetric=True)
    >>> qp.scale * 127        # channels 0-1 share max|w| = 0.4, channels 2-3 share 3.0
    array([0.4, 0.4, 3. , 3. ])
    """
    x = as_float_array(w, "w")
    axis = check_axis(axis, x.ndim)
    n = x.shape[axis]
    gid = channel_groups(n, groups)
    other = tuple(i for i in range(x.ndim) if i != axis)
    lo_c, hi_c = x.min(axis=other), x.max(axis=other)
    n_groups = int(gid[-1]) + 1
    lo_g = np.full(n_groups, np.inf)
    hi_g = np.full(n_groups, -np.inf)
    np.minimum.at(lo_g, gid, lo_c)
    np.maximum.at(hi_g, gid, hi_c)
    return qparams_from_range(lo_g[gid], hi_g[gid], bits=bits, symmetric=symmetric, signed=signed,
                              narrow_range=narrow_range, scale_rule=scale_rule, axis=axis)


def weight_qparams(w, granularity: str = "per-channel", bits: int = 8, symmetric: bool = True,
                   groups: int | None = None, group_size: int | None = None,
                   channel_axis: int = 0, block_axis: int = 1) -> QParams:
    """Weight parameters at one of the four :data:`GRANULARITIES`, symmetric by default.

    ``"per-tensor"``; ``"per-channel"`` (one per index along ``channel_axis``, the output
    channel); ``"channel-groups"`` (the seed's G groups, needs ``groups``);
    ``"block-wise"`` (``group_size`` consecutive elements along ``block_axis``, the input
    axis, needs ``group_size``).

    >>> w = np.array([[0.1, -0.2, 0.4, 0.3], [2.0, -1.0, 0.5, 0.0]])
    >>> weight_qparams(w, "block-wise", bits=8, group_size=2).scale * 127
    array([[0.2, 0.4],
           [2. , 0.5]])
    """
    check_choice(granularity, "granularity", GRANULARITIES)
    if granularity == "per-tensor":
        return qparams_from_tensor(w, bits=bits, symmetric=symmetric)
    if granularity == "per-channel":
        return qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=channel_axis)
    if granularity == "channel-groups":
        if groups is None:
            raise ValueError('granularity="channel-groups" needs groups=G (the number of channel groups)')
        return channel_group_qparams(w, groups, axis=channel_axis, bits=bits, symmetric=symmetric)
    if group_size is None:
        raise ValueError('granularity="block-wise" needs group_size (e.g. 32, 64 or 128)')
    return qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=block_axis, group_size=group_size)


# ----------------------------------------------------------------------------- storage cost
def effective_bits_per_weight(bits: int, group_size: float, scale_bits: int = 16,
                              zero_point_bits: int = 0) -> float:
    """Storage per weight, scales included: ``bits + (scale_bits + zero_point_bits) / group_size``.

    ``group_size`` is the number of weights sharing one scale (and zero point): the
    block size for block-wise, ``in_features`` for per-channel, the whole tensor for
    per-tensor. Symmetric schemes store no zero point (``zero_point_bits=0``).

    4-bit weights in groups of 128 with an fp16 scale (GPTQ/AWQ style):

    >>> effective_bits_per_weight(4, 128)
    4.125
    >>> effective_bits_per_weight(4, 32, scale_bits=16, zero_point_bits=4)
    4.625
    """
    bits = check_bits(bits)
    if isinstance(group_size, bool) or not isinstance(group_size, numbers.Real) or not group_size >= 1:
        raise ValueError(f"group_size must be a number >= 1 (weights per scale), got {group_size!r}")
    for name, v in (("scale_bits", scale_bits), ("zero_point_bits", zero_point_bits)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v <= 64:
            raise ValueError(f"{name} must be a number of bits between 0 and 64, got {v!r}")
    return float(bits + (scale_bits + zero_point_bits) / group_size)


def weights_per_scale(shape, granularity: str, groups: int | None = None, group_size: int | None = None,
                      channel_axis: int = 0) -> float:
    """How many weights share one scale: ``size`` (per-tensor), ``size / C`` (per-channel),
    ``size / G`` (G channel groups, on average), ``group_size`` (block-wise).

    >>> [weights_per_scale((128, 64), g, groups=4, group_size=32) for g in GRANULARITIES]
    [8192.0, 64.0, 2048.0, 32.0]
    """
    check_choice(granularity, "granularity", GRANULARITIES)
    shape = tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"shape must be a non-empty tensor shape, got {shape}")
    size = float(np.prod(shape))
    if granularity == "per-tensor":
        return size
    c = shape[check_axis(channel_axis, len(shape), "channel_axis")]
    if granularity == "per-channel":
        return size / c
    if granularity == "channel-groups":
        g = int(channel_groups(c, groups if groups is not None else 0)[-1]) + 1
        return size / g
    return float(_check_count(group_size if group_size is not None else 0, "group_size"))


# ----------------------------------------------------------------------------- error per channel
def per_channel_error(w, w_hat, axis: int = 0, metric: str = "mse") -> np.ndarray:
    """One error number per channel along ``axis`` (every other axis is reduced).

    ``"mse"``: ``mean((w_hat - w)^2)``; ``"max_abs"``: ``max|w_hat - w|``;
    ``"sqnr_db"``: ``10 log10(sum w^2 / sum (w_hat - w)^2)`` (``inf`` for an exact channel,
    ``-inf`` for an all-zero channel that picked up error).

    >>> w = np.array([[1.0, -1.0], [0.1, 0.2]])
    >>> per_channel_error(w, np.array([[1.1, -0.9], [0.1, 0.2]]))
    array([0.01, 0.  ])
    >>> per_channel_error(w, np.array([[1.1, -0.9], [0.1, 0.2]]), metric="sqnr_db")
    array([20., inf])
    """
    check_choice(metric, "metric", ERROR_METRICS)
    w = as_float_array(w, "w").astype(np.float64)
    w_hat = as_float_array(w_hat, "w_hat").astype(np.float64)
    if w.shape != w_hat.shape:
        raise ValueError(f"w has shape {w.shape} but w_hat has shape {w_hat.shape}")
    axis = check_axis(axis, w.ndim)
    other = tuple(i for i in range(w.ndim) if i != axis)
    err = _difference(w, w_hat)  # refuses an overflowing difference
    if metric == "mse":
        return mean_square(err, axis=other) if other else mean_square(err[..., None], axis=-1)
    if metric == "max_abs":
        return np.max(np.abs(err), axis=other)
    with np.errstate(over="ignore", under="ignore"):
        noise = np.sum(err**2, axis=other)
        signal = np.sum(w**2, axis=other)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * (np.log10(signal) - np.log10(noise))
    # where a sum overflowed or underflowed, take both sums in the log domain instead
    redo = ~np.isfinite(signal) | ~np.isfinite(noise) | (signal == 0) | (noise == 0)
    if redo.any():
        ax = other if other else None
        w_r, e_r = (w, err) if other else (w[..., None], err[..., None])
        with np.errstate(invalid="ignore"):  # -inf - -inf for an all-zero channel: set to inf below
            safe = 10.0 * (log10_sum_square(w_r, axis=ax if other else -1) - log10_sum_square(e_r, axis=ax if other else -1))
        out = np.where(redo, safe, out)
    exact = ~np.any(err != 0, axis=other) if other else (err == 0)
    silent = ~np.any(w != 0, axis=other) if other else (w == 0)
    out = np.asarray(out, dtype=np.float64)
    out[exact] = np.inf
    out[silent & ~exact] = -np.inf
    return out


class SweepPoint(NamedTuple):
    """One point of :func:`group_size_sweep`."""

    bits: int
    group_size: int
    mse: float
    effective_bits: float


def group_size_sweep(w, bits_list=(3, 4), group_sizes=None, axis: int = 1, symmetric: bool = True,
                     scale_bits: int = 16, zero_point_bits: int = 0) -> list:
    """Block-wise weight MSE and effective bits per weight for every ``bits`` x ``group_size``.

    ``group_sizes`` defaults to every power of two that divides ``w.shape[axis]`` (1, 2, 4, ...).
    Returns a list of :class:`SweepPoint`, bits-major, group sizes ascending.

    >>> w = np.array([[0.1, -0.2, 0.4, 0.3], [2.0, -1.0, 0.5, 0.0]])
    >>> [(p.group_size, p.effective_bits) for p in group_size_sweep(w, bits_list=(4,))]
    [(1, 20.0), (2, 12.0), (4, 8.0)]
    """
    w = as_float_array(w, "w")
    axis = check_axis(axis, w.ndim)
    n = w.shape[axis]
    if group_sizes is None:
        group_sizes = [2**i for i in range(n.bit_length()) if n % 2**i == 0]
    points = []
    for bits in bits_list:
        for g in group_sizes:
            qp = qparams_from_tensor(w, bits=bits, symmetric=symmetric, axis=axis, group_size=g)
            err = mse(w, fake_quantize(w, qp))
            points.append(SweepPoint(int(bits), int(g), err,
                                     effective_bits_per_weight(bits, g, scale_bits, zero_point_bits)))
    return points


# ----------------------------------------------------------------------------- whole model
def _layer_config(layer_w, granularity, groups):
    # the seed's G applies to every layer; a layer with fewer channels than G is per-channel
    if granularity == "channel-groups" and groups is not None:
        groups = min(_check_count(groups, "groups"), layer_w.shape[0])
    return groups


def quantize_model_weights(model, bits: int, granularity: str = "per-channel", groups=None, group_size=None,
                           symmetric: bool = True, layers=None):
    """A copy of ``model`` whose weights are replaced by ``fake_quantize(W)`` (weight-only).

    ``layers``: names of the linear layers to quantize (default: all). Biases and
    activations stay float. With ``"channel-groups"``, a layer with fewer than ``groups``
    output channels uses ``groups = C`` (per-channel). The model is not modified.
    """
    out = model.copy()
    names = [layer.name for layer in out.linear_layers]
    todo = names if layers is None else list(layers)
    for name in todo:
        if name not in names:
            raise ValueError(f"layer {name!r} is not one of the model's linear layers {names}")
    for layer in out.linear_layers:
        if layer.name in todo:
            g = _layer_config(layer.W, granularity, groups)
            qp = weight_qparams(layer.W, granularity, bits=bits, symmetric=symmetric, groups=g,
                                group_size=group_size)
            layer.W = fake_quantize(layer.W, qp)
    return out


def weight_only_accuracy(model, X, y, bits: int, granularity: str = "per-channel", groups=None,
                         group_size=None, symmetric: bool = True, layers=None) -> float:
    """Test accuracy of ``model`` with its weights fake-quantized (see :func:`quantize_model_weights`)."""
    q = quantize_model_weights(model, bits, granularity, groups=groups, group_size=group_size,
                               symmetric=symmetric, layers=layers)
    return q.accuracy(X, y)


# ----------------------------------------------------------------------------- batch-norm folding
class FoldedBN(NamedTuple):
    """What :func:`bn_folded_model` did: the BN statistics it folded and ``k = gamma / sqrt(var + eps)``."""

    layer: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    k: np.ndarray
    quiet: np.ndarray  # indices of the channels whose variance was shrunk


def bn_folded_model(model, X, layer: str = "fc1", n_quiet: int = 4, shrink: float = 1e-2,
                    gamma_spread: float = 0.25, seed: int = 0, eps: float = 1e-5):
    """A copy of ``model`` as if ``layer`` had been trained with a BatchNorm that was then folded.

    BN statistics: ``mean``/``var`` are the per-channel mean and variance of the layer's
    outputs on ``X``; the ``n_quiet`` channels with the smallest variance get it multiplied
    by ``shrink`` (the nearly constant channels of real convnets); ``gamma`` is drawn from
    ``exp(N(0, gamma_spread^2))`` (seeded, positive). ``beta = k * mean`` so the BN is a
    pure per-channel rescale ``z -> k z`` with ``k = gamma / sqrt(var + eps)``.
    The layer is folded with :func:`qlib.fold_batchnorm` (``W[c] -> k[c] W[c]``), and the
    next linear layer divides its input columns by ``k`` (``ReLU(k z) = k ReLU(z)`` for
    ``k > 0``): the float network computes the same function, but the folded layer's
    channel ranges now differ by the factor ``k``.

    Returns ``(folded_model, FoldedBN)``. ``model`` is not modified.
    """
    names = [lay.name for lay in model.linear_layers]
    if layer not in names or names.index(layer) == len(names) - 1:
        raise ValueError(f"layer must be a linear layer followed by ReLU and another linear layer, "
                         f"one of {names[:-1]}, got {layer!r}")
    n_quiet = int(n_quiet)
    if not 0 < shrink <= 1:
        raise ValueError(f"shrink must lie in (0, 1], got {shrink!r}")
    if gamma_spread < 0:
        raise ValueError(f"gamma_spread must be >= 0, got {gamma_spread!r}")
    z = np.asarray(model.activations(X)[layer], dtype=np.float64)
    mean, var = z.mean(axis=0), z.var(axis=0)
    c = var.shape[0]
    if not 0 <= n_quiet <= c:
        raise ValueError(f"n_quiet must lie in [0, {c}], got {n_quiet}")
    quiet = np.sort(np.argsort(var, kind="stable")[:n_quiet])
    var = var.copy()
    var[quiet] *= shrink
    gamma = np.exp(np.random.default_rng(seed).normal(0.0, gamma_spread, size=c))
    k = gamma / np.sqrt(var + eps)
    beta = k * mean
    out = model.copy()
    lin = out.linear_layers
    i = names.index(layer)
    Wf, bf = fold_batchnorm(lin[i].W, lin[i].b, gamma, beta, mean, var, eps=eps)
    lin[i].W, lin[i].b = Wf.astype(np.float32), bf.astype(np.float32)
    lin[i + 1].W = (lin[i + 1].W / k[None, :]).astype(np.float32)
    return out, FoldedBN(layer, gamma, beta, mean, var, k, quiet)
