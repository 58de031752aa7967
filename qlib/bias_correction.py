"""Bias correction (Nagel et al. 2019, "Data-Free Quantization through Weight Equalization and Bias Correction").

Quantizing a weight matrix adds an error ``E = W_q - W``. For a layer ``y = W x + b`` the
quantized layer computes ``y_q = W_q x + b = y + E x``, so the *mean* output of channel ``c``
moves by

    shift[c] = E[y_q[c]] - E[y[c]] = sum_j (W_q - W)[c, j] * E[x_j]

Rounding errors of one row do not average out when ``E[x]`` is not zero (post-ReLU inputs are
all >= 0): the sum is a systematic, per-channel offset. It is cheap to undo: subtract it from
the bias, ``b_corrected = b - shift``. Two ways to know ``shift``:

* **empirical** (:func:`empirical_output_shift`): run calibration inputs through both layers
  and average, ``shift = mean(y_q) - mean(y)`` over the samples. The quantized layer's inputs
  may come from the float model (``x_q = x``: then only this layer's weight error is seen) or
  from the already quantized (and corrected) preceding layers: :func:`bias_correct_mlp` does the
  latter by default, because that is what the deployed layer receives; the correction then
  also absorbs the mean shift the earlier layers pass on (the paper's empirical variant);
* **analytic** (:func:`analytic_output_shift`): ``shift = (W_q - W) @ E[x]`` with ``E[x]``
  known in advance. If ``x = ReLU(z)`` with ``z ~ N(mu, sigma^2)`` (batch-norm statistics give
  ``mu = beta`` and ``sigma = gamma``), then (:func:`relu_gaussian_mean`)

    E[x] = mu * (1 - Phi(-mu / sigma)) + sigma * phi(-mu / sigma)

  with ``Phi`` the standard normal CDF and ``phi`` its density -- no data needed at all.

For a linear layer fed the same inputs, the two agree exactly when the data's mean equals the
given ``E[x]`` (the mean of ``W_q x - W x`` is ``(W_q - W)`` times the mean of ``x``).

Shapes follow docs/conventions.md §4: ``W`` is (out, in), inputs are (n, in) rows, ``y = x @ W.T + b``.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import as_float_array, calibration_batch

__all__ = [
    "normal_pdf",
    "normal_cdf",
    "relu_gaussian_mean",
    "analytic_output_shift",
    "empirical_output_shift",
    "correct_bias",
    "bias_correct_mlp",
    "mean_output_shift",
]

_erf = np.frompyfunc(math.erf, 1, 1)


def normal_pdf(t) -> np.ndarray:
    """Standard normal density ``phi(t) = exp(-t^2 / 2) / sqrt(2 pi)`` (float64).

    >>> print(f"{normal_pdf(0.0):.6f}")
    0.398942
    """
    t = as_float_array(t, "t").astype(np.float64)
    return np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def normal_cdf(t) -> np.ndarray:
    """Standard normal CDF ``Phi(t) = (1 + erf(t / sqrt 2)) / 2`` (float64, with ``math.erf``).

    >>> print(f"{normal_cdf(0.0):.3f} {normal_cdf(1.959964):.4f}")
    0.500 0.9750
    """
    t = as_float_array(t, "t").astype(np.float64)
    return 0.5 * (1.0 + np.asarray(_erf(t / math.sqrt(2.0)), dtype=np.float64))


def relu_gaussian_mean(mu, sigma) -> np.ndarray:
    """Mean of ``ReLU(z)`` for ``z ~ N(mu, sigma^2)``, element-wise (float64):

        E[ReLU(z)] = mu * (1 - Phi(-mu / sigma)) + sigma * phi(-mu / sigma)

    ``sigma = 0`` (a constant channel) gives ``max(mu, 0)``. ``sigma < 0`` is refused.

    >>> print(f"{relu_gaussian_mean(0.0, 1.0):.6f}")      # sigma / sqrt(2 pi)
    0.398942
    >>> relu_gaussian_mean([2.0, -1.0], [0.0, 0.0]).tolist()
    [2.0, 0.0]
    >>> print(f"{relu_gaussian_mean(1.0, 1.0):.6f}")      # 1 * Phi(1) + phi(1)
    1.083315
    """
    mu = as_float_array(mu, "mu").astype(np.float64)
    sigma = as_float_array(sigma, "sigma").astype(np.float64)
    try:
        mu, sigma = np.broadcast_arrays(mu, sigma)
    except ValueError:
        raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} must have the same (or broadcastable) shapes") from None
    if (sigma < 0).any():
        raise ValueError("sigma is a standard deviation and must be >= 0")
    pos = sigma > 0
    safe = np.where(pos, sigma, 1.0)
    t = -mu / safe
    out = mu * (1.0 - normal_cdf(t)) + safe * normal_pdf(t)
    return np.where(pos, out, np.maximum(mu, 0.0))


def _check_weights(W, W_q):
    W = as_float_array(W, "W").astype(np.float64)
    W_q = as_float_array(W_q, "W_q").astype(np.float64)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D (out, in) weight matrix, got shape {W.shape}")
    if W_q.shape != W.shape:
        raise ValueError(f"W_q has shape {W_q.shape} but W has shape {W.shape}; quantize W itself")
    return W, W_q


def analytic_output_shift(W, W_q, mean_x) -> np.ndarray:
    """The expected output shift ``(W_q - W) @ E[x]``, one value per output channel (float64).

    ``mean_x`` is ``E[x]``, shape (in,): measured, or from :func:`relu_gaussian_mean`.

    >>> W = np.array([[0.26, -0.74], [0.5, 0.1]])
    >>> W_q = np.array([[0.5, -0.5], [0.5, 0.0]])   # rounding errors +0.24, +0.24 | 0, -0.1
    >>> analytic_output_shift(W, W_q, [1.0, 2.0]).round(6).tolist()
    [0.72, -0.2]
    """
    W, W_q = _check_weights(W, W_q)
    m = as_float_array(mean_x, "mean_x").astype(np.float64)
    if m.shape != (W.shape[1],):
        raise ValueError(f"mean_x must hold one mean per input feature, shape ({W.shape[1]},), got {m.shape}")
    return (W_q - W) @ m


def empirical_output_shift(W, W_q, x, x_q=None) -> np.ndarray:
    """The measured mean output shift per output channel (float64):

        shift[c] = mean_n (x_q @ W_q.T)[n, c] - mean_n (x @ W.T)[n, c]

    ``x`` (n, in): the float layer's inputs; ``x_q`` (n, in): the quantized layer's inputs
    (default ``x``; pass the quantized network's activations to include the shift the
    earlier layers cause). The bias is the same on both sides and cancels.

    >>> W = np.array([[0.26, -0.74], [0.5, 0.1]])
    >>> W_q = np.array([[0.5, -0.5], [0.5, 0.0]])
    >>> x = np.array([[0.0, 1.0], [2.0, 3.0]])            # mean [1, 2]: as in analytic_output_shift
    >>> empirical_output_shift(W, W_q, x).round(6).tolist()
    [0.72, -0.2]
    >>> empirical_output_shift(W, W_q, x, x_q=x + 1.0).round(6).tolist()   # inputs shifted by +1 as well
    [0.72, 0.3]
    """
    W, W_q = _check_weights(W, W_q)
    x = as_float_array(x, "x").astype(np.float64)
    x_q = x if x_q is None else as_float_array(x_q, "x_q").astype(np.float64)
    for name, a in (("x", x), ("x_q", x_q)):
        if a.ndim != 2 or a.shape[1] != W.shape[1]:
            raise ValueError(f"{name} must be (n_samples, {W.shape[1]}) inputs of the layer, got shape {a.shape}")
    return (x_q @ W_q.T).mean(axis=0) - (x @ W.T).mean(axis=0)


def correct_bias(b, shift) -> np.ndarray:
    """The corrected bias ``b - shift`` (same dtype as ``b``; ``b`` is not modified).

    >>> correct_bias(np.array([0.1, 0.0], np.float32), [0.72, -0.2]).round(6).tolist()
    [-0.62, 0.2]
    """
    b = as_float_array(b, "b")
    s = as_float_array(shift, "shift")
    if s.shape != b.shape:
        raise ValueError(f"shift has shape {s.shape} but the bias has shape {b.shape}: one shift per output channel")
    return (b.astype(np.float64) - s).astype(b.dtype)


def _check_pair(model, qmodel):
    from .nn import MLP

    for name, m in (("model", model), ("qmodel", qmodel)):
        if not isinstance(m, MLP):
            raise ValueError(f"{name} must be a qlib.nn.MLP, got {type(m).__name__}")
    if [type(a) for a in model.layers] != [type(a) for a in qmodel.layers] or any(
            a.W.shape != b.W.shape for a, b in zip(model.linear_layers, qmodel.linear_layers)):
        raise ValueError("qmodel must have the same layers as model (a quantized copy of it)")


def bias_correct_mlp(model, qmodel, calib_x, inputs: str = "quantized"):
    """Empirical bias correction of a weight-quantized copy ``qmodel`` of the float ``model``.

    Layer by layer, in order: ``shift = mean(W_q x_q) - mean(W x)`` on the calibration inputs,
    then ``b <- b - shift`` in a copy of ``qmodel`` (``qmodel`` itself is not changed).

    * ``inputs="quantized"`` (default): ``x_q`` is the activation of the quantized model whose
      earlier layers are already corrected -- what the layer sees when deployed, so the
      shift inherited from earlier layers is removed too; on the calibration data every
      layer's mean pre-activation then equals the float one;
    * ``inputs="float"``: ``x_q = x`` (the float model's activations): corrects this layer's
      own weight error only, ``shift = (W_q - W) @ mean(x)``.

    >>> from qlib.data import load_digits
    >>> from qlib.nn import reference_model
    >>> from qlib.ptq import weight_only_model
    >>> d, m = load_digits(), reference_model()
    >>> q = weight_only_model(m, bits=2)
    >>> bc = bias_correct_mlp(m, q, d.X_train[:256])
    >>> max(mean_output_shift(m, bc, d.X_train[:256]).values()) < 1e-5
    True
    """
    from .nn import Linear

    _check_pair(model, qmodel)
    x = calibration_batch(calib_x, inputs)
    out = qmodel.copy()
    h_f, h_q = x, x
    for lf, lq in zip(model.layers, out.layers):
        if isinstance(lf, Linear):
            shift = empirical_output_shift(lf.W, lq.W, h_f, h_q if inputs == "quantized" else h_f)
            lq.b = correct_bias(lq.b, shift)
        h_f, h_q = lf.forward(h_f), lq.forward(h_q)
    return out


def mean_output_shift(model, qmodel, x) -> dict:
    """Mean over output channels of ``|E[y_q] - E[y]|`` for each Linear layer's output
    (pre-activation), each network run end to end on ``x``: ``{"fc1": ..., "fc2": ..., ...}``.

    >>> from qlib.nn import reference_model
    >>> m = reference_model()
    >>> mean_output_shift(m, m, np.zeros((2, 64)))
    {'fc1': 0.0, 'fc2': 0.0, 'fc3': 0.0}
    """
    _check_pair(model, qmodel)
    x = as_float_array(x, "x")
    a, b = model.activations(x), qmodel.activations(x)
    return {lin.name: float(np.abs(b[lin.name].astype(np.float64).mean(axis=0)
                                   - a[lin.name].astype(np.float64).mean(axis=0)).mean())
            for lin in model.linear_layers}
