"""Codebook (k-means) quantization: learn where the levels go instead of using a uniform grid.

A uniform quantizer puts its ``2^bits`` levels on an evenly spaced grid ``S * (q - Z)``. A
*codebook* quantizer stores ``k = 2^bits`` arbitrary real values (the centroids) and, for
every weight, the ``bits``-bit index (label) of one of them:

    w_hat[i] = centroids[labels[i]]

NF4 (QLoRA) is a *fixed* codebook of 16 values placed at the quantiles of a normal
distribution; k-means *learns* the codebook from the weights themselves (Deep Compression,
Han, Mao & Dally, ICLR 2016, "weight sharing"). Lloyd's algorithm alternates two steps,
neither of which can increase the squared error ``sum (w - c[label])^2``:

* **assign:** ``label[i] = argmin_j |w[i] - c[j]|`` (nearest centroid; a tie goes to the lower index);
* **update:** ``c[j] = mean of the weights with label j`` (a centroid nobody picked keeps its value).

**Initialisation.** qlib uses Deep Compression's *linear* initialisation,
``c[j] = min(w) + j * (max(w) - min(w)) / (k - 1)``, ``j = 0 .. k-1``: it is deterministic
(no seed, the same codebook on every machine), and Han et al. found it best of the three they
tried (random, density-based, linear) because it keeps centroids out at the rare large weights,
which matter most, where density-based and random (k-means++-like) starts crowd them into the
middle of the bell curve.

**Fewer distinct weights than centroids.** If a codebook's weights take ``d <= k`` distinct
values, those values *are* the optimal codebook (error 0): qlib stores them sorted, pads the
remaining ``k - d`` entries with copies of the largest (no label points to them) and skips
Lloyd. An all-zero (dead) channel therefore gets the codebook ``[0, 0, ..., 0]`` and is exact.

**Granularity.** ``axis=None``: one codebook for the whole tensor; ``axis=0``: one codebook per
output channel (each index along ``axis`` has its own ``k`` centroids, over all other axes).

**Fine-tuning the centroids** (Deep Compression, section 3.2): the weights are tied to their
centroid, so ``dL/dc[j] = sum of dL/dW[i] over the weights i with label j``
(:func:`centroid_gradient`), and gradient descent moves the shared value:
``c[j] <- c[j] - lr * dL/dc[j]`` (:func:`update_centroids`). The labels stay fixed.

**Storage** (:func:`codebook_bits_per_weight`): ``n`` labels of ``bits`` bits plus ``k``
centroids of ``centroid_bits`` (32) bits per codebook, per weight:
``bits + k * centroid_bits / weights_per_codebook`` -- Deep Compression's compression rate
``r = n b / (n log2(k) + k b)`` with ``b = 32`` is ``32`` divided by this.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from ._validate import as_float_array, check_axis, float_dtype_of

__all__ = [
    "CODEBOOK_BITS",
    "Codebook",
    "linear_init",
    "assign_to_centroids",
    "lloyd_step",
    "kmeans_codebook",
    "codebook_decode",
    "fake_quantize_kmeans",
    "centroid_gradient",
    "update_centroids",
    "codebook_bits_per_weight",
    "kmeans_model",
    "finetune_centroids",
]

#: Bit widths a codebook accepts: 1 to 8 bits, i.e. 2 to 256 centroids.
CODEBOOK_BITS = tuple(range(1, 9))


class Codebook(NamedTuple):
    """The result of :func:`kmeans_codebook`.

    ``centroids``: shape ``(k,)`` for ``axis=None``, ``(C, k)`` for one codebook per index along
    ``axis`` (C = ``w.shape[axis]``), float64, each row sorted ascending. ``labels``: the index of
    each weight's centroid, shaped like ``w`` (uint8 for k <= 256). ``mse_history``: the weight MSE
    after each Lloyd iteration (the first entry is the linear initialisation's), never increasing.
    """

    centroids: np.ndarray
    labels: np.ndarray
    bits: int
    axis: int | None
    mse_history: tuple
    iterations: int

    @property
    def k(self) -> int:
        """Number of centroids per codebook, ``2^bits``."""
        return 2 ** self.bits

    @property
    def n_codebooks(self) -> int:
        """1 for ``axis=None``, else one per index along ``axis``."""
        return 1 if self.axis is None else int(self.centroids.shape[0])

    def decode(self, dtype=np.float64) -> np.ndarray:
        """``centroids[labels]``: the quantized weights (see :func:`codebook_decode`)."""
        return codebook_decode(self.centroids, self.labels, self.axis).astype(dtype, copy=False)


# ----------------------------------------------------------------------------- input checks
def check_codebook_bits(bits) -> int:
    """``bits`` as an int in :data:`CODEBOOK_BITS` (1..8), else a ValueError.

    >>> check_codebook_bits(2)
    2
    >>> check_codebook_bits(12)
    Traceback (most recent call last):
    ...
    ValueError: bits=12 is out of range for a codebook: use 1 to 8 bits (2 to 256 centroids); 2^12 = 4096 centroids would cost more to store and to search than they save
    """
    if isinstance(bits, (bool, np.bool_)):
        raise ValueError(f"bits must be a whole number, got {bits!r}")
    if not isinstance(bits, numbers.Integral):
        if isinstance(bits, numbers.Real) and np.isfinite(bits) and float(bits).is_integer():
            bits = int(bits)
        else:
            raise ValueError(f"bits must be a whole number, got {bits!r}")
    bits = int(bits)
    if bits not in CODEBOOK_BITS:
        extra = (f"; 2^{bits} = {2 ** bits} centroids would cost more to store and to search than they save"
                 if 8 < bits <= 16 else "")
        raise ValueError(f"bits={bits} is out of range for a codebook: use 1 to 8 bits (2 to 256 centroids){extra}")
    return bits


def _check_axis_or_none(axis, ndim):
    return None if axis is None else check_axis(axis, ndim)


def _rows(x: np.ndarray, axis):
    """``x`` as a 2-D float64 array with one codebook per row: ``(1, size)`` or ``(C, size / C)``."""
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        return x.reshape(1, -1)
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def _unrows(r: np.ndarray, shape, axis):
    """Inverse of :func:`_rows`."""
    if axis is None:
        return r.reshape(shape)
    moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
    return np.moveaxis(r.reshape(moved), 0, axis)


def _check_centroids(centroids, axis, n_rows_expected=None, name="centroids") -> np.ndarray:
    c = as_float_array(centroids, name).astype(np.float64)
    if axis is None:
        if c.ndim != 1:
            raise ValueError(f"{name} must be 1-D (k,) for one codebook (axis=None), got shape {c.shape}")
        return c[None, :]
    if c.ndim != 2:
        raise ValueError(f"{name} must be 2-D (channels, k) for one codebook per channel (axis={axis}), "
                         f"got shape {c.shape}")
    if n_rows_expected is not None and c.shape[0] != n_rows_expected:
        raise ValueError(f"{name} has {c.shape[0]} codebooks but the weights have {n_rows_expected} "
                         f"channels along axis {axis}")
    return c


def _check_labels(labels, k, name="labels") -> np.ndarray:
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer centroid indices, got dtype {lab.dtype}")
    if lab.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to decode")
    if lab.min() < 0 or lab.max() >= k:
        raise ValueError(f"{name} must lie in [0, {k - 1}] (there are {k} centroids), "
                         f"got values from {lab.min()} to {lab.max()}")
    return lab


# ----------------------------------------------------------------------------- Lloyd's algorithm
def linear_init(w, k: int, axis=None) -> np.ndarray:
    """Deep Compression's linear initialisation: ``k`` centroids evenly spaced over ``[min, max]``.

    ``c[j] = min + j * (max - min) / (k - 1)``, ``j = 0 .. k-1``, with ``min``/``max`` of each
    codebook's weights (the whole tensor for ``axis=None``, else each index along ``axis``).
    Shape ``(k,)`` or ``(C, k)``. A constant codebook (e.g. a dead channel) gets ``k`` copies.

    >>> linear_init([-1.0, 0.5, 2.0], 4)
    array([-1.,  0.,  1.,  2.])
    >>> linear_init([[0.0, 3.0], [0.0, 0.0]], 2, axis=0)
    array([[0., 3.],
           [0., 0.]])
    """
    x = as_float_array(w, "w")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive whole number of centroids, got {k!r}")
    axis = _check_axis_or_none(axis, x.ndim)
    r = _rows(x, axis)
    lo, hi = r.min(axis=1, keepdims=True), r.max(axis=1, keepdims=True)
    t = np.arange(k) / max(k - 1, 1)
    c = lo + t * (hi - lo)
    c[:, -1:] = hi if k > 1 else lo   # exactly max, whatever the rounding of lo + 1 * (hi - lo)
    return c[0] if axis is None else c


def _assign_rows(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Nearest centroid of every entry of each row (ties: the lower index). r (R, n), c (R, k)."""
    k = c.shape[1]
    dtype = np.uint8 if k <= 256 else np.int64
    out = np.empty(r.shape, dtype=dtype)
    # (rows, n, k) distances, a block of rows at a time to bound the memory (~16 MB)
    step = max(1, int(2_000_000 // max(1, r.shape[1] * k)))
    for s in range(0, r.shape[0], step):
        d = np.abs(r[s:s + step, :, None] - c[s:s + step, None, :])
        out[s:s + step] = np.argmin(d, axis=2)
    return out


def assign_to_centroids(w, centroids, axis=None) -> np.ndarray:
    """The assignment step: ``label[i] = argmin_j |w[i] - c[j]|`` (a tie goes to the lower index).

    ``centroids``: ``(k,)`` for ``axis=None``, ``(C, k)`` with one row per index along ``axis``.
    Returns integer labels shaped like ``w``.

    >>> assign_to_centroids([-0.9, 0.1, 0.5, 0.6], [-1.0, 0.0, 1.0])   # 0.5 is a tie: lower index
    array([0, 1, 1, 2], dtype=uint8)
    """
    x = as_float_array(w, "w")
    axis = _check_axis_or_none(axis, x.ndim)
    r = _rows(x, axis)
    c = _check_centroids(centroids, axis, r.shape[0])
    return _unrows(_assign_rows(r, c), x.shape, axis)


def _update_rows(r: np.ndarray, labels: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Mean of each cluster; a centroid with no weights keeps its value."""
    n_rows, k = c.shape
    flat = (labels.astype(np.int64) + k * np.arange(n_rows)[:, None]).ravel()
    sums = np.bincount(flat, weights=r.ravel(), minlength=n_rows * k).reshape(n_rows, k)
    counts = np.bincount(flat, minlength=n_rows * k).reshape(n_rows, k)
    return np.where(counts > 0, sums / np.maximum(counts, 1), c)


def _rows_mse(r, labels, c) -> float:
    err = r - np.take_along_axis(c, labels.astype(np.int64), axis=1)
    return float(np.mean(err * err))


def lloyd_step(w, centroids, axis=None):
    """One Lloyd iteration: assign each weight to its nearest centroid, then move every centroid
    to the mean of its weights (a centroid that got no weight keeps its value).

    Returns ``(new_centroids, labels)``; ``labels`` are the assignment to the *old* centroids.

    Weights ``[0, 0.2, 0.9, 1.0]`` and centroids ``[0, 1]``: ``0`` and ``0.2`` go to ``0``
    (mean 0.1), ``0.9`` and ``1.0`` go to ``1`` (mean 0.95):

    >>> c, labels = lloyd_step([0.0, 0.2, 0.9, 1.0], [0.0, 1.0])
    >>> print(c, labels)
    [0.1  0.95] [0 0 1 1]
    """
    x = as_float_array(w, "w")
    axis = _check_axis_or_none(axis, x.ndim)
    r = _rows(x, axis)
    c = _check_centroids(centroids, axis, r.shape[0])
    lab = _assign_rows(r, c)
    new = _update_rows(r, lab, c)
    return (new[0] if axis is None else new), _unrows(lab, x.shape, axis)


def _distinct_codebooks(r: np.ndarray, k: int):
    """For each row: True and its sorted distinct values padded to k (with the largest) if it has
    at most k distinct values."""
    s = np.sort(r, axis=1)
    new = np.ones(s.shape, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    few = new.sum(axis=1) <= k
    book = np.zeros((r.shape[0], k))
    for i in np.flatnonzero(few):
        vals = s[i, new[i]]
        book[i, : vals.size] = vals
        book[i, vals.size:] = vals[-1]
    return few, book


def kmeans_codebook(w, bits: int, axis=None, max_iter: int = 100) -> Codebook:
    """k-means (Lloyd) codebook of ``k = 2^bits`` centroids, linear initialisation (see the module).

    Iterates :func:`lloyd_step` until no label changes (then the centroids are a fixed point) or
    ``max_iter`` iterations; the MSE ``mean (w - c[label])^2`` never increases from one iteration to
    the next. A codebook whose weights have ``d <= k`` distinct values gets exactly those values
    (padded with copies of the largest) and error 0.

    ``axis=None``: one codebook for the tensor; ``axis=0``: one per output channel.

    >>> cb = kmeans_codebook([0.0, 0.1, 0.2, 0.9, 1.0, 3.0], bits=1)
    >>> print(cb.centroids, cb.labels, cb.iterations)
    [0.44 3.  ] [0 0 0 0 0 1] 1
    >>> cb = kmeans_codebook([[0.0, 0.0, 0.0], [-1.0, 0.0, 4.0]], bits=1, axis=0)   # a dead channel
    >>> print(cb.centroids.tolist(), cb.decode().tolist())
    [[0.0, 0.0], [-0.5, 4.0]] [[0.0, 0.0, 0.0], [-0.5, -0.5, 4.0]]
    """
    x = as_float_array(w, "w")
    bits = check_codebook_bits(bits)
    axis = _check_axis_or_none(axis, x.ndim)
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive whole number of Lloyd iterations, got {max_iter!r}")
    k = 2 ** bits
    r = _rows(x, axis)
    few, exact = _distinct_codebooks(r, k)
    c = linear_init(r, k, axis=0)
    c[few] = exact[few]
    with threadpool_limits(limits=1, user_api="blas"):
        lab = _assign_rows(r, c)
        history = [_rows_mse(r, lab, c)]
        it = 0
        while it < max_iter:
            it += 1
            c = np.where(few[:, None], c, _update_rows(r, lab, c))
            new_lab = _assign_rows(r, c)
            history.append(_rows_mse(r, new_lab, c))
            changed = not np.array_equal(new_lab, lab)
            lab = new_lab
            if not changed:
                break
    centroids = c[0] if axis is None else c
    return Codebook(centroids, _unrows(lab, x.shape, axis), bits, axis, tuple(history), it)


def codebook_decode(centroids, labels, axis=None) -> np.ndarray:
    """``w_hat[i] = centroids[labels[i]]`` (per channel: ``centroids[c, labels[..]]`` along ``axis``), float64.

    >>> codebook_decode([-0.5, 0.25], [[1, 0], [0, 0]])
    array([[ 0.25, -0.5 ],
           [-0.5 , -0.5 ]])
    """
    lab = np.asarray(labels)
    axis = _check_axis_or_none(axis, lab.ndim)
    c = _check_centroids(centroids, axis, None if axis is None else lab.shape[axis])
    lab = _check_labels(lab, c.shape[1])
    rows = np.take_along_axis(c, _rows(lab, axis).astype(np.int64), axis=1)
    return _unrows(rows, lab.shape, axis)


def fake_quantize_kmeans(w, bits: int, axis=None, max_iter: int = 100) -> np.ndarray:
    """The weights replaced by their k-means centroids: ``kmeans_codebook(w, bits, axis).decode()``,
    in ``w``'s float dtype (float32 stays float32). At most ``2^bits`` distinct values per codebook.

    >>> fake_quantize_kmeans(np.float32([0.0, 0.1, 0.2, 0.9, 1.0, 3.0]), bits=1)
    array([0.44, 0.44, 0.44, 0.44, 0.44, 3.  ], dtype=float32)
    """
    cb = kmeans_codebook(w, bits, axis=axis, max_iter=max_iter)
    return cb.decode(float_dtype_of(w))


# ----------------------------------------------------------------------------- fine-tuning
def centroid_gradient(labels, grad, k: int, axis=None) -> np.ndarray:
    """Deep Compression's shared-weight gradient: ``dL/dc[j] = sum of dL/dW[i] over the i with label j``.

    ``grad`` is ``dL/dW`` (shaped like ``labels``); returns ``(k,)`` or ``(C, k)`` (per ``axis``).

    >>> centroid_gradient([0, 1, 1, 0, 2], [0.5, 1.0, -2.0, 0.25, 3.0], k=4)
    array([ 0.75, -1.  ,  3.  ,  0.  ])
    """
    g = as_float_array(grad, "grad (dL/dW)").astype(np.float64)
    lab = np.asarray(labels)
    if lab.shape != g.shape:
        raise ValueError(f"labels have shape {lab.shape} but grad has shape {g.shape}; they must match")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive whole number of centroids, got {k!r}")
    lab = _check_labels(lab, int(k))
    axis = _check_axis_or_none(axis, lab.ndim)
    lr, gr = _rows(lab, axis).astype(np.int64), _rows(g, axis)
    n_rows = lr.shape[0]
    flat = (lr + k * np.arange(n_rows)[:, None]).ravel()
    out = np.bincount(flat, weights=gr.ravel(), minlength=n_rows * k).reshape(n_rows, k)
    return out[0] if axis is None else out


def update_centroids(centroids, labels, grad, lr: float, axis=None) -> np.ndarray:
    """One gradient-descent step on the shared values: ``c[j] - lr * sum_{i: label i = j} dL/dW[i]``.

    ``centroids``: ``(k,)`` or ``(C, k)``; ``labels`` and ``grad`` (``dL/dW``) shaped like the
    weights. The labels do not change; a new array is returned (the input is not modified).

    >>> update_centroids([-1.0, 1.0], [0, 1, 1], [0.5, 1.0, 1.0], lr=0.1)
    array([-1.05,  0.8 ])
    """
    if not (isinstance(lr, numbers.Real) and not isinstance(lr, bool) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr (the learning rate) must be a positive number, got {lr!r}")
    lab = np.asarray(labels)
    axis = _check_axis_or_none(axis, lab.ndim)
    c = _check_centroids(centroids, axis, None if axis is None else lab.shape[axis])
    step = centroid_gradient(lab, grad, c.shape[1], axis)
    return (c[0] if axis is None else c) - lr * step


# ----------------------------------------------------------------------------- storage
def codebook_bits_per_weight(bits: int, weights_per_codebook: float, centroid_bits: int = 32) -> float:
    """Storage per weight with the codebook counted: ``bits + 2^bits * centroid_bits / weights_per_codebook``.

    ``weights_per_codebook``: the whole tensor's size for ``axis=None``, ``in_features`` for one
    codebook per output channel. 32-bit centroids as in Deep Compression (16 halves the overhead).

    fc2 of the reference model (64 x 128 = 8192 weights) at 2 bits, one codebook vs one per channel:

    >>> codebook_bits_per_weight(2, 8192), codebook_bits_per_weight(2, 128)
    (2.015625, 3.0)
    """
    bits = check_codebook_bits(bits)
    if isinstance(weights_per_codebook, bool) or not isinstance(weights_per_codebook, numbers.Real) \
            or not weights_per_codebook >= 1:
        raise ValueError(f"weights_per_codebook must be a number >= 1, got {weights_per_codebook!r}")
    if isinstance(centroid_bits, bool) or not isinstance(centroid_bits, numbers.Real) or not 1 <= centroid_bits <= 64:
        raise ValueError(f"centroid_bits must be a number of bits between 1 and 64, got {centroid_bits!r}")
    return float(bits + 2 ** bits * centroid_bits / weights_per_codebook)


# ----------------------------------------------------------------------------- whole model
def _layer_names(model, layers):
    names = [layer.name for layer in model.linear_layers]
    todo = names if layers is None else list(layers)
    for name in todo:
        if name not in names:
            raise ValueError(f"layer {name!r} is not one of the model's linear layers {names}")
    return todo


def kmeans_model(model, bits: int, axis=None, layers=None, max_iter: int = 100):
    """A copy of ``model`` whose weights are replaced by their k-means centroids (weight-only),
    and the codebooks: ``(model_copy, {layer name: Codebook})``. ``layers``: default all.
    Biases and activations stay float; ``model`` is not modified.
    """
    out = model.copy()
    todo = _layer_names(out, layers)
    books = {}
    for layer in out.linear_layers:
        if layer.name in todo:
            books[layer.name] = cb = kmeans_codebook(layer.W, bits, axis=axis, max_iter=max_iter)
            layer.W = cb.decode(np.float32)
    return out, books


def finetune_centroids(model, codebooks: dict, X, y, epochs: int = 3, lr: float = 1e-3,
                       batch_size: int = 64, seed: int = 0):
    """Deep Compression's centroid fine-tuning with qlib's numpy backprop (:mod:`qlib.nn`).

    For each mini-batch: forward with ``W = centroids[labels]``, backward (softmax cross-entropy)
    to get each layer's ``dL/dW``, then :func:`update_centroids` (``c[j] -= lr * sum of dL/dW over
    label j``). Labels, biases and the unquantized layers stay fixed; shuffling is seeded.

    Returns ``(model_copy, {name: Codebook with the trained centroids})``; ``model`` and
    ``codebooks`` are not modified. The returned codebooks' ``mse_history`` is the k-means one.
    """
    from .nn import softmax_cross_entropy

    X = as_float_array(X, "X").astype(np.float32, copy=False)
    y = np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"epochs must be a whole number >= 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}")
    out = model.copy()
    by_name = {layer.name: layer for layer in out.linear_layers}
    for name in codebooks:
        if name not in by_name:
            raise ValueError(f"codebook for {name!r}, which is not one of the model's linear layers {list(by_name)}")
    cents = {name: np.array(cb.centroids, dtype=np.float64) for name, cb in codebooks.items()}
    for name, cb in codebooks.items():
        if cb.labels.shape != by_name[name].W.shape:
            raise ValueError(f"{name}: the codebook's labels have shape {cb.labels.shape}, the layer's W {by_name[name].W.shape}")
        by_name[name].W = codebook_decode(cents[name], cb.labels, cb.axis).astype(np.float32)
    rng = np.random.default_rng(seed)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(int(epochs)):
            order = rng.permutation(X.shape[0])
            for start in range(0, X.shape[0], batch_size):
                idx = order[start:start + batch_size]
                _, g = softmax_cross_entropy(out.forward(X[idx]), y[idx])
                out.backward(g)
                for name, cb in codebooks.items():
                    layer = by_name[name]
                    cents[name] = update_centroids(cents[name], cb.labels, layer.dW, lr, cb.axis)
                    layer.W = codebook_decode(cents[name], cb.labels, cb.axis).astype(np.float32)
    books = {name: cb._replace(centroids=cents[name]) for name, cb in codebooks.items()}
    return out, books
