"""Observers (calibrators) for post-training quantization, PyTorch-style.

Feed an observer as many batches as you like with ``observe(batch)``, then ask it for the
clipping range it chose (``range()``) and the quantization parameters for that range
(``qparams()``)::

    obs = MinMaxObserver(bits=8)
    for batch in batches:
        obs.observe(batch)
    lo, hi = obs.range()
    qp = obs.qparams()

Batches may have different sizes (and shapes; per-channel observers only need the same
number of channels). An all-zero batch is legal; an empty batch or one with NaN/inf raises
``ValueError``. Observers never modify the batches they see.

Two families:

* **range trackers** -- :class:`MinMaxObserver` (running min and max),
  :class:`MovingAverageMinMaxObserver` (exponential moving average of each batch's min and
  max, averaging constant 0.01 as in PyTorch, the first batch initialises; ONNX Runtime's
  ``moving_average`` averages the batches of one ``collect_data`` call plainly and applies
  the EMA only between calls),
  :class:`PerChannelMinMaxObserver` (one running min/max per channel);
* **histogram calibrators** -- they collect a histogram of ``|x|`` (:class:`AbsHistogram`,
  2048 bins over ``[0, max|x|]``, growing when a later batch holds a larger value, as NVIDIA's
  pytorch-quantization does, but never beyond ``max_bins``) and choose a threshold ``T``:
  :class:`PercentileObserver` (ORT's and pytorch-quantization's rule), :class:`EntropyObserver`
  (KL divergence, TensorRT's method as pytorch-quantization implements it) and
  :class:`MSEObserver`.
  Their ``range()`` is ``(0, T)`` for data that never went negative (post-ReLU) and
  ``(-T, T)`` otherwise.
"""

from __future__ import annotations

import numbers
import numpy as np

from ._validate import as_float_array, check_axis, check_bits, check_choice, check_flag
from .linear import SCALE_RULES, QParams, fake_quantize, qparams_from_range

__all__ = [
    "Observer",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "PerChannelMinMaxObserver",
    "AbsHistogram",
    "HistogramObserver",
    "PercentileObserver",
    "EntropyObserver",
    "MSEObserver",
    "CALIBRATORS",
    "make_observer",
    "ema_update",
    "kl_levels",
    "kl_prepare",
    "kl_distributions",
    "kl_divergence",
    "kl_divergence_curve",
    "kl_threshold",
    "percentile_threshold",
    "mse_curve",
    "mse_threshold",
]


# ============================================================================ formulas
def ema_update(old, new, averaging_constant: float = 0.01):
    """Exponential moving average step: ``old + c * (new - old)`` = ``(1 - c) * old + c * new``.

    PyTorch's ``MovingAverageMinMaxObserver`` applies it after every batch with ``c = 0.01``,
    for both the running min and the running max. ONNX Runtime's ``moving_average`` option
    (also ``c = 0.01``) applies it only between ``collect_data`` calls; within one call (all
    that ``quantize_static`` makes by default) it takes the plain mean of the batch minima
    and maxima (:func:`qlib.ptq.onnxruntime_minmax_range` runs it).

    >>> print(f"{ema_update(1.0, 11.0, 0.01):.2f}")
    1.10
    """
    c = _check_constant(averaging_constant)
    return old + c * (new - old)


def _check_constant(c) -> float:
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 0.0 < float(c) <= 1.0:
        raise ValueError(f"averaging_constant must lie in (0, 1], got {c!r}")
    return float(c)


def kl_levels(bits: int, unsigned: bool) -> int:
    """Number of quantized levels ``nq`` the KL method merges the histogram into.

    ``2^(bits-1)`` for signed data (half the codes cover ``[0, T]``), ``2^bits`` for
    unsigned (post-ReLU) data, as pytorch-quantization's ``1 << (num_bits - 1 + unsigned)``.

    >>> kl_levels(8, unsigned=False), kl_levels(8, unsigned=True), kl_levels(4, False)
    (128, 256, 8)
    """
    bits = check_bits(bits)
    return 1 << (bits - 1 + int(bool(unsigned)))


def _as_hist(hist, name="hist") -> np.ndarray:
    h = np.asarray(hist)
    if h.ndim != 1 or h.size < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 bin counts, got shape {h.shape}")
    if h.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold counts (numbers), got dtype {h.dtype}")
    h = h.astype(np.float64)
    if not np.isfinite(h).all() or (h < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative counts")
    if h.sum() == 0:
        raise ValueError(f"{name} is empty (all counts are 0): observe some data first")
    return h


def kl_prepare(hist) -> np.ndarray:
    """The histogram the KL method works on: a float copy with the zero spike removed, ``bins[0] = bins[1]``.

    Post-ReLU activations pile up exactly at 0; TensorRT's method replaces the first bin's
    count by its neighbour's so that spike does not dominate the divergence.

    >>> kl_prepare([90, 3, 2, 1])
    array([3., 3., 2., 1.])
    """
    b = _as_hist(hist).copy()
    b[0] = b[1]
    return b


def kl_distributions(bins, i: int, nq: int):
    """Reference ``P`` and candidate ``Q`` (both normalised, length ``i``) for threshold bin ``i``.

    TensorRT's method, as pytorch-quantization implements it, on prepared ``bins``
    (see :func:`kl_prepare`):

    * ``P = bins[:i]`` with the tail ``sum(bins[i:])`` added to its last bin (clipped values
      land on the threshold);
    * ``Q``: bin ``j < i`` belongs to group ``floor(j * nq / i)`` (``nq`` groups); each group's
      total count of ``bins[:i]`` (before the tail is added) is spread evenly over the
      group's non-empty bins; empty bins stay 0;
    * both are divided by their sums.

    >>> P, Q = kl_distributions(np.array([4.0, 2.0, 0.0, 2.0, 1.0, 1.0]), i=4, nq=2)
    >>> P.tolist(), Q.tolist()
    ([0.4, 0.2, 0.0, 0.4], [0.375, 0.375, 0.0, 0.25])
    """
    b = _as_hist(bins, "bins")
    i, nq = int(i), int(nq)
    if not 1 <= i <= b.size:
        raise ValueError(f"i must lie in [1, {b.size}] (a number of bins), got {i}")
    if nq < 1:
        raise ValueError(f"nq must be a positive number of levels, got {nq}")
    group = (np.arange(i) * nq) // i
    head = b[:i]
    sums = np.bincount(group, weights=head, minlength=nq)
    nonzero = np.bincount(group, weights=(head > 0).astype(np.float64), minlength=nq)
    q = np.where(head > 0, sums[group] / np.maximum(nonzero[group], 1), 0.0)
    p = head.copy()
    p[-1] += b[i:].sum()
    q_sum = q.sum()
    return p / p.sum(), (q / q_sum if q_sum > 0 else q)


def kl_divergence(p, q) -> float:
    """``KL(P||Q) = sum_j p_j * log(p_j / q_j)`` in nats; terms with ``p_j = 0`` count 0,
    and ``p_j > 0`` with ``q_j = 0`` gives ``inf``. Inputs are normalised first.

    >>> print(f"{kl_divergence([0.5, 0.5], [0.25, 0.75]):.6f}")
    0.143841
    >>> kl_divergence([0.5, 0.5], [1.0, 0.0])
    inf
    """
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"p and q must be 1-D of the same length, got {p.shape} and {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        return float("inf")
    p, q = p / p.sum(), q / q.sum()
    m = p > 0
    if (q[m] == 0).any():
        return float("inf")
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def kl_divergence_curve(hist, nq: int, start_bin: int = 128, stride: int = 1):
    """``KL(P||Q)`` for every candidate threshold bin ``i = start_bin, start_bin + stride, ..., N``.

    NVIDIA's candidates: ``start_bin = 128`` whatever the bit width (pytorch-quantization's
    ``_compute_amax_entropy(..., stride=1, start_bin=128)``), up to all ``N`` bins.
    Vectorized over the candidates with prefix sums (no Python loop): for candidate ``i``
    the groups are the bin ranges ``[ceil(g i / nq), ceil((g+1) i / nq))``, so every group's
    count and number of non-empty bins is a difference of two cumulative sums. Then

        KL_i = sum_{j<i-1} p_j log p_j  -  sum_g (G'_g / T) log(G_g / (n_g C_i))  +  p_last log(p_last / q_last)

    with ``T`` the total count, ``C_i = sum(bins[:i])``, ``G_g``/``n_g`` the group's count and
    non-empty bins, ``G'_g`` the same count without bin ``i-1`` (handled in the last term).
    A candidate with ``i <= nq`` bins keeps every bin as its own level (``Q = bins[:i]``), so
    ``KL_i = (C_{i-1} / T) log(C_i / T) + p_last log(p_last / q_last)``.
    ``hist`` is the raw histogram (the zero spike is removed here). Candidates whose ``Q`` is
    all zero get ``inf`` (pytorch-quantization gets NaN there). Returns ``(candidates, kl)``.

    >>> i, kl = kl_divergence_curve([4, 2, 0, 2, 1, 1], nq=2, start_bin=2)
    >>> i.tolist(), [round(float(v), 6) for v in kl]
    ([2, 3, 4, 5, 6], [0.130812, inf, 0.058892, 0.01031, 0.029446])

    (By hand, ``i = 4``: bins ``[2, 2, 0, 2, 1, 1]`` (zero spike removed), ``P = [2, 2, 0, 2+2]/8``,
    groups ``{0, 1}`` and ``{2, 3}`` give ``Q = [2, 2, 0, 2]/6``, so
    ``KL = 0.5 ln(0.25/(1/3)) + 0.5 ln(0.5/(1/3)) = 0.058892``. ``i = 3`` puts the tail on
    an empty bin: ``q = 0 < p``, infinite divergence.)
    """
    b = kl_prepare(hist)
    n = b.size
    nq = _check_positive_int(nq, "nq")
    start = _check_positive_int(start_bin, "start_bin")
    stride = _check_positive_int(stride, "stride")
    cand = np.arange(start, n + 1, stride, dtype=np.int64)
    if cand.size == 0:
        return cand, np.zeros(0)
    total = b.sum()
    c = np.concatenate(([0.0], np.cumsum(b)))
    nz = np.concatenate(([0], np.cumsum(b > 0)))
    p_all = b / total
    plogp = np.zeros_like(p_all)
    pos = p_all > 0
    plogp[pos] = p_all[pos] * np.log(p_all[pos])
    h_pre = np.concatenate(([0.0], np.cumsum(plogp)))

    ci = c[cand]                                                  # C_i = sum(bins[:i])
    last = cand - 1
    b_last = b[last]
    kl = np.empty(cand.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        small = cand <= nq                                        # one level per bin: Q = bins[:i]
        if small.any():
            cs, bl = ci[small], b_last[small]
            q_last = np.where(bl > 0, bl / cs, 0.0)
            p_last = (bl + (total - cs)) / total
            last_term = np.where(p_last > 0, p_last * np.log(p_last / q_last), 0.0)
            head = c[last[small]] / total
            kl[small] = np.where(head > 0, head * np.log(cs / total), 0.0) + last_term
        big = np.flatnonzero(~small)
        if big.size:
            kl[big] = _kl_grouped(b, c, nz, h_pre, total, cand[big], nq, n, start, stride)
    kl = np.where((ci > 0) & np.isfinite(kl), kl, np.inf)
    kl = np.maximum(kl, 0.0)  # KL >= 0; prefix sums can leave -1e-17
    return cand, kl


def _check_positive_int(v, name) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _kl_grouped(b, c, nz, h_pre, total, cand, nq, n, start, stride):
    """KL for candidates ``i > nq`` (several bins per level), in row blocks of bounded size."""
    ci, last = c[cand], cand - 1
    b_last = b[last]
    g_last = (last * nq) // cand                                  # the group of bin i-1
    cross = np.empty(cand.size)                                   # sum_g G'_g log q_g / T
    q_last = np.empty(cand.size)
    table = _group_edges(n, nq, start, stride)                    # None when too large to keep
    step = max(1, 65536 // (nq + 1))                              # row blocks that stay in the CPU cache
    for r0 in range(0, cand.size, step):
        blk = slice(r0, r0 + step)
        e = table[blk] if table is not None else _edges_rows(cand[blk], nq)
        gsum = np.diff(c[e], axis=1)                              # G_g: count of each group
        gnz = np.diff(nz[e], axis=1)                              # n_g: its non-empty bins
        ratio = np.divide(gsum, gnz * ci[blk, None], out=np.ones_like(gsum), where=gsum > 0)
        logq = np.log(ratio, out=ratio)                           # log q of the group's non-empty bins
        rows = np.arange(gsum.shape[0])
        gl = g_last[blk]
        cross[blk] = np.einsum("ij,ij->i", gsum, logq) - b_last[blk] * logq[rows, gl]
        q_last[blk] = gsum[rows, gl] / (gnz[rows, gl] * ci[blk])
    cross /= total
    q_last = np.where(b_last > 0, q_last, 0.0)
    p_last = (b_last + (total - ci)) / total
    last_term = np.where(p_last > 0, p_last * np.log(p_last / q_last), 0.0)
    return h_pre[last] - cross + last_term


def _edges_rows(cand, nq: int) -> np.ndarray:
    """First bin of every group for the candidates ``cand``: ``ceil(g * i / nq)``, ``g = 0..nq``."""
    g = np.arange(nq + 1, dtype=np.int64)
    return (g[None, :] * cand[:, None] + (nq - 1)) // nq


class _ByteBoundedCache:
    """Least-recently-used cache of read-only arrays whose total size stays below ``max_bytes``
    (an array larger than ``max_item_bytes`` is never kept).

    >>> cache = _ByteBoundedCache(max_bytes=100, max_item_bytes=80)
    >>> for k in range(4):
    ...     _ = cache.get(k, lambda: np.zeros(5))          # 40 bytes each
    >>> sorted(cache), cache.nbytes                        # the oldest two were evicted
    ([2, 3], 80)
    >>> cache.get("big", lambda: np.zeros(11)) is None     # 88 bytes: computed, not kept
    True
    """

    def __init__(self, max_bytes: int, max_item_bytes: int):
        self.max_bytes, self.max_item_bytes = int(max_bytes), int(max_item_bytes)
        self._items = {}
        self.nbytes = 0

    def __iter__(self):
        return iter(self._items)

    def get(self, key, make, nbytes: int | None = None):
        """The cached array for ``key``, else ``make()`` stored (if small enough); returns None
        without calling ``make`` when ``nbytes`` (the size ``make`` would allocate) is too large."""
        if key in self._items:
            arr = self._items.pop(key)
            self._items[key] = arr                                # most recently used last
            return arr
        if nbytes is not None and nbytes > self.max_item_bytes:
            return None
        arr = make()
        if arr.nbytes > self.max_item_bytes:
            return None
        arr.setflags(write=False)
        self._items[key] = arr
        self.nbytes += arr.nbytes
        while self.nbytes > self.max_bytes:
            old = next(iter(self._items))
            self.nbytes -= self._items.pop(old).nbytes
        return arr

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0


#: Group tables of the KL search, shared by every histogram with the same bins and levels;
#: bounded by bytes (64 MiB in all, 16 MiB per table; larger tables are computed block by block).
_GROUP_EDGES = _ByteBoundedCache(max_bytes=64 * 2**20, max_item_bytes=16 * 2**20)


def _group_edges(n: int, nq: int, start: int, stride: int):
    """Group table ``ceil(g * i / nq)`` for every candidate ``i > nq`` (int32, read-only, cached
    in :data:`_GROUP_EDGES`), or None when it would exceed the per-table limit."""
    cand = np.arange(start, n + 1, stride, dtype=np.int64)
    cand = cand[cand > nq]
    return _GROUP_EDGES.get((n, nq, start, stride), lambda: _edges_rows(cand, nq).astype(np.int32),
                            nbytes=4 * cand.size * (nq + 1))


def kl_threshold(hist, bin_edges, bits: int = 8, unsigned: bool = False,
                 start_bin: int = 128, stride: int = 1) -> float:
    """TensorRT's KL (entropy) threshold for a histogram of ``|x|``, NVIDIA pytorch-quantization's rule.

    Candidates ``i`` run from ``start_bin`` (default 128, whatever ``bits``) to all ``N`` bins
    in steps of ``stride``; the threshold is ``bin_edges[i*]`` for the *last* ``i*`` that
    minimises ``KL(P||Q)`` with ``nq = kl_levels(bits, unsigned)`` levels
    (:func:`kl_divergence_curve`; exact ties, e.g. data that every candidate represents
    perfectly, are recognised up to rounding noise). With fewer than ``start_bin`` bins
    there is no candidate (pytorch-quantization fails there): nothing is clipped, the
    threshold is ``bin_edges[-1]``.

    >>> print(kl_threshold([4, 2, 0, 2, 1, 1], np.linspace(0, 6, 7), bits=2, start_bin=2))
    5.0
    """
    edges = as_float_array(bin_edges, "bin_edges")
    h = _as_hist(hist)
    if edges.shape != (h.size + 1,):
        raise ValueError(f"bin_edges must have len(hist) + 1 = {h.size + 1} entries, got {edges.shape}")
    nq = kl_levels(bits, check_flag(unsigned, "unsigned"))
    cand, kl = kl_divergence_curve(h, nq, start_bin=start_bin, stride=stride)
    if cand.size == 0 or not np.isfinite(kl).any():
        return float(edges[-1])
    best = _last_argmin(kl)
    return float(edges[cand[best]])


def _last_argmin(v) -> int:
    """Index of the last minimum of ``v``; values within ``1e-12 + 1e-9 * min`` of the minimum
    count as equal, so that rounding noise (1e-17) cannot decide between exact ties.

    >>> _last_argmin(np.array([0.3, 0.0, 1e-17, 0.5]))
    2
    """
    v = np.asarray(v, np.float64)
    m = float(np.min(v))
    return int(np.flatnonzero(v <= m + 1e-12 + 1e-9 * m)[-1])


def percentile_threshold(hist, bin_edges, percentile: float = 99.99) -> float:
    """The percentile threshold of ONNX Runtime and pytorch-quantization: the *left* edge of the
    first bin where the cumulative distribution reaches ``percentile``.

    ``cdf = cumsum(hist / total)``, ``k = searchsorted(cdf, percentile / 100)`` (the first
    ``k`` with ``cdf[k] >= percentile / 100``), ``T = bin_edges[k]`` -- ORT's
    ``hist_edges[idx_right]``, pytorch-quantization's ``calib_bin_edges[idx]``.

    Counts [5, 3, 1, 1]: cdf [0.5, 0.8, 0.9, 1.0]; 80 % is reached in bin 1 = [1, 2), so T = 1:

    >>> print(percentile_threshold([5, 3, 1, 1], [0.0, 1.0, 2.0, 3.0, 4.0], 80))
    1.0
    """
    p = _check_percentile(percentile)
    h = _as_hist(hist)
    edges = as_float_array(bin_edges, "bin_edges")
    if edges.shape != (h.size + 1,):
        raise ValueError(f"bin_edges must have len(hist) + 1 = {h.size + 1} entries, got {edges.shape}")
    cdf = np.cumsum(h / h.sum())
    k = int(np.searchsorted(cdf, p / 100.0, side="left"))
    return float(edges[min(k, h.size)])


def _check_percentile(p) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 < float(p) <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100], e.g. 99.99; got {p!r}")
    return float(p)


def mse_curve(hist, bin_edges, bits: int = 8, neg_hist=None, symmetric: bool = False,
              signed=None, narrow_range: bool = False, scale_rule: str = "qmax", n_candidates: int = 256):
    """Mean squared quantization error for candidate thresholds ``T`` (a U-shaped curve).

    ``hist`` counts ``|x|`` per bin; ``neg_hist`` (same bins, default none) counts the
    negative values among them, so bin ``k`` holds ``hist_k - neg_k`` values near ``+c_k``
    and ``neg_k`` near ``-c_k`` (``c_k`` its centre). For each candidate ``T`` (up to
    ``n_candidates`` bin edges, evenly spread) the range is ``(0, T)``, or ``(-T, T)`` when
    there are negative values, turned into parameters by :func:`qlib.qparams_from_range`
    with the given scheme, and

        MSE(T) = sum_k [(hist_k - neg_k) e(+c_k) + neg_k e(-c_k)] / sum_k hist_k,  e(v) = (fake_quantize(v) - v)^2,

    the exact MSE of the data with every value moved to its signed bin centre (an asymmetric
    grid clips the two signs differently, so the signs are counted apart). Small ``T``:
    clipping error; large ``T``: rounding error. Returns ``(T, mse)``.

    Ten values in bin [1, 2) and one in [3, 4), 2-bit unsigned (``S = T/3``): at ``T = 2``
    the centre 1.5 rounds to 4/3 (error 1/36 each) and 3.5 is clipped to 2 (error 2.25), so
    ``MSE = (10/36 + 2.25)/11 = 0.229798``:

    >>> T, err = mse_curve([0, 10, 0, 1], [0.0, 1.0, 2.0, 3.0, 4.0], bits=2)
    >>> T.tolist(), [round(float(e), 6) for e in err]
    ([1.0, 2.0, 3.0, 4.0], [0.795455, 0.229798, 0.25, 0.04798])
    """
    h = _as_hist(hist)
    edges = as_float_array(bin_edges, "bin_edges").astype(np.float64)
    if edges.shape != (h.size + 1,):
        raise ValueError(f"bin_edges must have len(hist) + 1 = {h.size + 1} entries, got {edges.shape}")
    if neg_hist is None:
        neg = np.zeros_like(h)
    else:
        neg = np.asarray(neg_hist, dtype=np.float64) if np.asarray(neg_hist).dtype.kind in "iuf" else None
        if neg is None or neg.shape != h.shape or not np.isfinite(neg).all() or (neg < 0).any() or (neg > h).any():
            raise ValueError("neg_hist must hold, per bin of hist, the count of negative values "
                             f"(0 <= neg_hist <= hist, {h.size} bins)")
    n_candidates = _check_positive_int(n_candidates, "n_candidates")
    n = h.size
    idx = np.unique(np.linspace(1, n, min(n_candidates, n)).round().astype(np.int64))
    thr = edges[idx]
    signed_data = bool(neg.sum() > 0)
    lo = -thr if signed_data else np.zeros_like(thr)
    qp = qparams_from_range(lo, thr, bits=bits, symmetric=symmetric, signed=signed,
                            narrow_range=narrow_range, scale_rule=scale_rule, axis=0)
    centers = 0.5 * (edges[:-1] + edges[1:])
    pos_w, neg_w = (h - neg) / h.sum(), neg / h.sum()
    err = np.zeros(thr.size)
    for sign, w in ((1.0, pos_w), (-1.0, neg_w)):
        keep = w > 0
        if keep.any():
            grid = np.broadcast_to(sign * centers[keep], (thr.size, int(keep.sum())))
            err += ((fake_quantize(grid, qp) - grid) ** 2) @ w[keep]
    return thr, err


def mse_threshold(hist, bin_edges, bits: int = 8, neg_hist=None, **scheme) -> float:
    """The candidate threshold with the smallest :func:`mse_curve` value (the first one on ties).

    >>> print(mse_threshold([0, 10, 0, 1], [0.0, 1.0, 2.0, 3.0, 4.0], bits=2))
    4.0
    """
    thr, err = mse_curve(hist, bin_edges, bits=bits, neg_hist=neg_hist, **scheme)
    return float(thr[int(np.argmin(err))])


# ============================================================================ observers
class Observer:
    """Base class: remembers the scheme (bits, symmetric, signed, narrow_range, scale_rule),
    validates batches, counts them, and turns :meth:`range` into :meth:`qparams`.

    Subclasses implement ``_observe(x)`` (x is a validated float array) and ``_range()``.
    """

    def __init__(self, bits: int = 8, symmetric: bool = False, signed=None, narrow_range: bool = False,
                 scale_rule: str = "qmax"):
        self.bits = check_bits(bits)
        self.symmetric = check_flag(symmetric, "symmetric")
        self.signed = check_flag(signed, "signed", allow_none=True)
        self.narrow_range = check_flag(narrow_range, "narrow_range")
        self.scale_rule = check_choice(scale_rule, "scale_rule", SCALE_RULES)
        self.n_batches = 0
        self.n_values = 0

    def observe(self, batch) -> "Observer":
        """Record one batch (any shape, any size). Returns the observer, so calls can chain."""
        x = as_float_array(batch, "batch")
        self._observe(x)
        self.n_batches += 1
        self.n_values += x.size
        return self

    def range(self) -> tuple:
        """The chosen clipping range ``(lo, hi)`` as floats (arrays for per-channel observers)."""
        if self.n_batches == 0:
            raise ValueError(f"{type(self).__name__} has not seen any data: call observe(batch) first")
        return self._range()

    def qparams(self) -> QParams:
        """``qparams_from_range(lo, hi, ...)`` for :meth:`range` with this observer's scheme
        (the range is widened to include 0 there)."""
        lo, hi = self.range()
        return qparams_from_range(lo, hi, bits=self.bits, symmetric=self.symmetric, signed=self.signed,
                                  narrow_range=self.narrow_range, scale_rule=self.scale_rule,
                                  axis=getattr(self, "axis", None))

    def reset(self) -> None:
        """Forget everything observed so far."""
        self.n_batches = 0
        self.n_values = 0
        self._reset()

    def _reset(self):
        pass

    def __repr__(self):
        return f"{type(self).__name__}(bits={self.bits}, symmetric={self.symmetric}, batches={self.n_batches})"


class MinMaxObserver(Observer):
    """Running minimum and maximum over every batch seen (PyTorch's ``MinMaxObserver``).

    ``range() = (min over all batches, max over all batches)``.

    PyTorch's documented example: after [1, 2, 2, 3, 4, 5, 6] and [4, 5, 5, 6, 7, 8] the range
    is (1, 8); widened to (0, 8) the unsigned 8-bit scale is 8/255 with zero point 0.

    >>> obs = MinMaxObserver(bits=8)
    >>> _ = obs.observe([1., 2, 2, 3, 4, 5, 6]).observe([4., 5, 5, 6, 7, 8])
    >>> qp = obs.qparams()
    >>> obs.range(), round(qp.scale * 255, 12), qp.zero_point
    ((1.0, 8.0), 8.0, 0)
    """

    def _reset(self):
        self.min_val = None
        self.max_val = None

    def __init__(self, bits=8, symmetric=False, **scheme):
        super().__init__(bits, symmetric, **scheme)
        self._reset()

    def _observe(self, x):
        lo, hi = float(x.min()), float(x.max())
        self.min_val = lo if self.min_val is None else min(self.min_val, lo)
        self.max_val = hi if self.max_val is None else max(self.max_val, hi)

    def _range(self):
        return self.min_val, self.max_val


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Exponential moving average of each batch's min and max (PyTorch's ``MovingAverageMinMaxObserver``;
    ONNX Runtime's ``moving_average`` does this per ``collect_data`` call, not per batch).

    The first batch sets ``min``/``max``; every later batch updates
    ``min <- min + c (batch_min - min)`` and the same for ``max`` (:func:`ema_update`),
    with ``c = averaging_constant = 0.01``. An outlier batch moves the range by only 1 % of
    its excess, where running min-max jumps all the way.

    >>> obs = MovingAverageMinMaxObserver(averaging_constant=0.5)
    >>> obs.observe([0., 1.]).observe([0., 3.]).range()
    (0.0, 2.0)
    """

    def __init__(self, bits=8, symmetric=False, averaging_constant: float = 0.01, **scheme):
        super().__init__(bits, symmetric, **scheme)
        self.averaging_constant = _check_constant(averaging_constant)

    def _observe(self, x):
        lo, hi = float(x.min()), float(x.max())
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = ema_update(self.min_val, lo, self.averaging_constant)
            self.max_val = ema_update(self.max_val, hi, self.averaging_constant)


class PerChannelMinMaxObserver(Observer):
    """Running min and max per channel along ``axis`` (PyTorch's ``PerChannelMinMaxObserver``).

    Every other axis is reduced, so batches may differ in size; the number of channels must
    stay the same. ``range()`` returns two 1-D arrays; ``qparams()`` per-channel parameters.

    >>> obs = PerChannelMinMaxObserver(axis=1)
    >>> lo, hi = obs.observe(np.array([[1.0, -2.0]])).observe(np.array([[3.0, -1.0], [0.5, -4.0]])).range()
    >>> lo.tolist(), hi.tolist()
    ([0.5, -4.0], [3.0, -1.0])
    """

    def __init__(self, bits=8, symmetric=False, axis: int = 0, **scheme):
        super().__init__(bits, symmetric, **scheme)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"axis must be an integer, got {axis!r}")
        self.axis = int(axis)
        self._reset()

    def _reset(self):
        self.min_val = None
        self.max_val = None

    def _observe(self, x):
        axis = check_axis(self.axis, x.ndim)
        other = tuple(i for i in range(x.ndim) if i != axis)
        lo, hi = x.min(axis=other).astype(np.float64), x.max(axis=other).astype(np.float64)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
            return
        if lo.shape != self.min_val.shape:
            raise ValueError(f"this batch has {lo.size} channels along axis {self.axis}, earlier batches "
                             f"had {self.min_val.size}")
        self.min_val = np.minimum(self.min_val, lo)
        self.max_val = np.maximum(self.max_val, hi)

    def _range(self):
        return self.min_val.copy(), self.max_val.copy()


class AbsHistogram:
    """Histogram of ``|x|`` over ``[0, top]`` collected batch after batch, with bounded memory.

    The first batch with a non-zero value fixes the bin width ``w = max|x| / num_bins``
    (bins ``[k w, (k+1) w)``, the last one closed). A later batch with a larger value:

    * adds bins of the same width while at most ``max_bins`` are needed -- NVIDIA
      pytorch-quantization's growing histogram, the old counts keep their bins exactly;
    * otherwise merges every ``k`` neighbouring bins into one, ``k = ceil(needed / num_bins)``
      (the width becomes ``k w``, about ``num_bins`` bins cover the new range). Counts are
      never split, so no value changes bin except by that merge; if ``k`` is at least the
      number of bins, all old counts go into the first new bin (width ``max(old top,
      max|x| / num_bins)``). PyTorch's ``HistogramObserver`` keeps a fixed bin count instead by
      spreading each old bin evenly over sub-bins; ORT's entropy collector grows without bound.

    So at most ``max_bins`` bins are ever held, whatever the batch order. All-zero batches
    before the first non-zero value are counted and put into bin 0. ``neg_counts`` counts
    the negative values per bin (the MSE calibrator needs the signs). A refused batch
    (NaN, empty, ...) leaves the histogram unchanged.

    >>> h = AbsHistogram(num_bins=4)
    >>> h.add(np.array([0.0, -1.0, 4.0])); h.add(np.array([5.5]))
    >>> h.counts.tolist(), h.neg_counts.tolist(), h.edges.tolist()
    ([1, 1, 0, 1, 0, 1], [0, 1, 0, 0, 0, 0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    """

    def __init__(self, num_bins: int = 2048, max_bins: int = 16384):
        if isinstance(num_bins, (bool, np.bool_)) or not isinstance(num_bins, numbers.Integral) or num_bins < 2:
            raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}")
        if (isinstance(max_bins, (bool, np.bool_)) or not isinstance(max_bins, numbers.Integral)
                or max_bins < num_bins):
            raise ValueError(f"max_bins must be an integer >= num_bins = {num_bins} (memory stays bounded), "
                             f"got {max_bins!r}")
        self.num_bins = int(num_bins)
        self.max_bins = int(max_bins)
        self.counts = None      # int64 counts of |x|
        self.neg_counts = None  # int64 counts of the negative values among them
        self.width = None
        self._pending_zeros = 0
        self.min_val = None     # signed min and max of the data seen
        self.max_val = None

    @property
    def edges(self) -> np.ndarray:
        """Bin edges ``k * width``, ``k = 0..len(counts)`` (``[0, 0]`` before any non-zero data)."""
        if self.counts is None:
            return np.zeros(2)
        return np.arange(self.counts.size + 1) * self.width

    @property
    def total(self) -> int:
        return int(self._pending_zeros if self.counts is None else self.counts.sum())

    def add(self, x) -> None:
        """Add a batch (validated: finite, non-empty). Nothing changes if the batch is refused."""
        x = as_float_array(x, "batch")
        flat = x.astype(np.float64, copy=False).ravel()
        a = np.abs(flat)
        neg = flat < 0
        lo, hi, amax = float(flat.min()), float(flat.max()), float(a.max())
        min_val = lo if self.min_val is None else min(self.min_val, lo)
        max_val = hi if self.max_val is None else max(self.max_val, hi)
        counts, neg_counts, width, pending = self.counts, self.neg_counts, self.width, self._pending_zeros
        if counts is None:
            width = amax / self.num_bins
            if width == 0.0:            # all zero (or below 1e-320): wait for real data
                pending += a.size
                counts = None
            else:
                top = self.num_bins * width
                counts = np.histogram(np.minimum(a, top), bins=self.num_bins, range=(0.0, top))[0].astype(np.int64)
                neg_counts = np.histogram(np.minimum(a[neg], top), bins=self.num_bins,
                                          range=(0.0, top))[0].astype(np.int64)
                counts[0] += pending
                pending = 0
        else:
            if amax > counts.size * width:
                counts, neg_counts, width = self._regrid(counts, neg_counts, width, amax)
            n = counts.size
            top = n * width
            counts = counts + np.histogram(np.minimum(a, top), bins=n, range=(0.0, top))[0]
            neg_counts = neg_counts + np.histogram(np.minimum(a[neg], top), bins=n, range=(0.0, top))[0]
        # commit (everything above only built new objects)
        self.counts, self.neg_counts, self.width, self._pending_zeros = counts, neg_counts, width, pending
        self.min_val, self.max_val = min_val, max_val

    def _regrid(self, counts, neg_counts, width, amax):
        """New ``(counts, neg_counts, width)`` whose range reaches ``amax`` (see the class docstring)."""
        n = counts.size
        need = amax / width                                   # bins of the current width needed
        if need <= self.max_bins:                             # grow (NVIDIA)
            extra = int(np.ceil(need)) - n
            pad = np.zeros(max(extra, 0), np.int64)
            return np.concatenate([counts, pad]), np.concatenate([neg_counts, pad]), width
        k = need / self.num_bins
        if not np.isfinite(k) or np.ceil(k) >= n:             # every old count lands in the first new bin
            new_width = max(n * width, amax / self.num_bins)
            n_new = max(1, int(np.ceil(amax / new_width)))
            c, m = np.zeros(n_new, np.int64), np.zeros(n_new, np.int64)
            c[0], m[0] = counts.sum(), neg_counts.sum()
            return c, m, new_width
        k = int(np.ceil(k))
        pad = np.zeros(-n % k, np.int64)
        c = np.concatenate([counts, pad]).reshape(-1, k).sum(axis=1)
        m = np.concatenate([neg_counts, pad]).reshape(-1, k).sum(axis=1)
        width = width * k
        extra = max(int(np.ceil(amax / width)) - c.size, 0)
        pad = np.zeros(extra, np.int64)
        return np.concatenate([c, pad]), np.concatenate([m, pad]), width


class HistogramObserver(Observer):
    """Collects an :class:`AbsHistogram` of ``|x|``; the base of the threshold calibrators.

    Its own ``range()`` clips nothing: ``(0, max|x|)`` for non-negative data, else
    ``(-max|x|, max|x|)``. Subclasses choose a threshold ``T`` in :meth:`threshold`.
    ``unsigned_data`` is True while no negative value has been seen.

    >>> obs = HistogramObserver(num_bins=8).observe([0.0, 1.0, 3.0])
    >>> obs.range(), obs.unsigned_data
    ((0.0, 3.0), True)
    """

    def __init__(self, bits=8, symmetric=False, num_bins: int = 2048, max_bins: int = 16384, **scheme):
        super().__init__(bits, symmetric, **scheme)
        self.num_bins = num_bins
        self.max_bins = max_bins
        self.hist = AbsHistogram(num_bins, max_bins)
        self._cache = {}

    def _reset(self):
        self.hist = AbsHistogram(self.num_bins, self.max_bins)
        self._cache = {}

    def _observe(self, x):
        self.hist.add(x)
        self._cache = {}

    def _key(self):
        """Everything the threshold depends on (the search is cached per key until the next batch)."""
        extra = tuple(sorted((k, v) for k, v in vars(self).items()
                             if k in ("percentile", "start_bin", "stride", "n_candidates")))
        return (type(self).__name__, self.bits, self.symmetric, self.signed, self.narrow_range,
                self.scale_rule, extra)

    @property
    def unsigned_data(self) -> bool:
        return self.hist.min_val is None or self.hist.min_val >= 0.0

    @property
    def unsigned_grid(self) -> bool:
        """True when all ``2^bits`` codes cover ``[0, T]``: non-negative data, asymmetric scheme."""
        return self.unsigned_data and not self.symmetric

    def threshold(self) -> float:
        """The clipping threshold ``T`` on ``|x|`` (here: ``max|x|``, nothing clipped)."""
        if self.n_batches == 0:
            raise ValueError(f"{type(self).__name__} has not seen any data: call observe(batch) first")
        if self.hist.counts is None:
            return 0.0
        # a grown histogram's last edge can lie a little above max|x|: never clip above the data
        key = self._key()
        if key not in self._cache:
            amax = max(abs(self.hist.min_val), abs(self.hist.max_val))
            self._cache[key] = float(min(self._threshold(), amax))
        return self._cache[key]

    def _threshold(self):
        return max(abs(self.hist.min_val), abs(self.hist.max_val))

    def _range(self):
        t = float(self.threshold())
        return (0.0, t) if self.unsigned_data else (-t, t)


class PercentileObserver(HistogramObserver):
    """Clip at the ``percentile`` of ``|x|`` (e.g. 99.9, 99.99, 99.999): :func:`percentile_threshold`.

    >>> obs = PercentileObserver(percentile=50.0, num_bins=4).observe([1.0, 1.0, 2.0, 4.0])
    >>> obs.hist.counts.tolist(), obs.range()   # the cdf reaches 50 % in bin [1, 2): its left edge
    ([0, 2, 1, 1], (0.0, 1.0))
    """

    def __init__(self, bits=8, symmetric=False, percentile: float = 99.99, **kw):
        super().__init__(bits, symmetric, **kw)
        self.percentile = _check_percentile(percentile)

    def _threshold(self):
        return percentile_threshold(self.hist.counts, self.hist.edges, self.percentile)


class EntropyObserver(HistogramObserver):
    """KL-divergence (entropy) calibration, TensorRT's method (Migacz 2017) as NVIDIA's
    pytorch-quantization implements it, vectorized: :func:`kl_threshold` on the ``|x|``
    histogram with ``nq = kl_levels(bits, unsigned_grid)`` levels (``2^bits`` for
    non-negative data with an asymmetric scheme, else ``2^(bits-1)``), candidates from
    ``start_bin = 128`` bins on (NVIDIA's default, whatever the bit width; pass another
    ``start_bin`` to search lower thresholds too) in steps of ``stride``.

    ``range()`` is ``(0, T)`` for non-negative data, ``(-T, T)`` otherwise.

    >>> rng = np.random.default_rng(0)
    >>> obs = EntropyObserver(bits=8).observe(rng.normal(size=100_000))
    >>> lo, hi = obs.range()
    >>> 3.0 < hi < float(np.abs(obs.hist.max_val)) + 1 and lo == -hi
    True
    """

    def __init__(self, bits=8, symmetric=False, start_bin: int = 128, stride: int = 1, **kw):
        super().__init__(bits, symmetric, **kw)
        self.start_bin = _check_positive_int(start_bin, "start_bin")
        self.stride = _check_positive_int(stride, "stride")

    @property
    def levels(self) -> int:
        return kl_levels(self.bits, self.unsigned_grid)

    def _threshold(self):
        return kl_threshold(self.hist.counts, self.hist.edges, self.bits, self.unsigned_grid,
                            start_bin=self.start_bin, stride=self.stride)

    def divergence_curve(self):
        """``(thresholds, kl)`` over all candidates, for plotting."""
        if self.hist.counts is None:
            raise ValueError("no non-zero data observed yet")
        i, kl = kl_divergence_curve(self.hist.counts, self.levels, self.start_bin, self.stride)
        return self.hist.edges[i], kl


class MSEObserver(HistogramObserver):
    """Clip where the histogram-weighted mean squared quantization error is smallest
    (:func:`mse_curve` on the signed counts, evaluated with this observer's own scheme, so
    the range returned is always the best of its candidates for the histogrammed data).

    One outlier among 100 ones, 2 bits: clipping it costs less than coarse steps for all.

    >>> obs = MSEObserver(bits=2, num_bins=8).observe([1.0] * 100 + [7.9])
    >>> obs.range()
    (0.0, 4.9375)
    """

    def __init__(self, bits=8, symmetric=False, n_candidates: int = 256, **kw):
        super().__init__(bits, symmetric, **kw)
        self.n_candidates = _check_positive_int(n_candidates, "n_candidates")

    def error_curve(self):
        """``(thresholds, mse)`` for plotting the U-shaped curve."""
        if self.hist.counts is None:
            raise ValueError("no non-zero data observed yet")
        return mse_curve(self.hist.counts, self.hist.edges, bits=self.bits, neg_hist=self.hist.neg_counts,
                         symmetric=self.symmetric, signed=self.signed, narrow_range=self.narrow_range,
                         scale_rule=self.scale_rule, n_candidates=self.n_candidates)

    def _threshold(self):
        thr, err = self.error_curve()
        return float(thr[int(np.argmin(err))])


#: Calibrator names accepted by :func:`make_observer` and :func:`qlib.ptq.quantize_mlp`.
CALIBRATORS = ("minmax", "ema", "percentile", "entropy", "mse")


def make_observer(calibrator: str = "minmax", bits: int = 8, symmetric: bool = False, **kw) -> Observer:
    """Build an observer by name: ``"minmax"``, ``"ema"``, ``"percentile"``, ``"entropy"``
    (alias ``"kl"``), ``"mse"``; extra keywords go to its constructor (an option the
    observer does not have raises ``ValueError`` naming the ones it has).

    >>> make_observer("kl", bits=4)
    EntropyObserver(bits=4, symmetric=False, batches=0)
    >>> make_observer("minmax", foo=1)
    Traceback (most recent call last):
    ...
    ValueError: make_observer('minmax') has no option 'foo'; its options are: narrow_range, scale_rule, signed
    """
    name = "entropy" if calibrator == "kl" else calibrator
    check_choice(name, "calibrator", CALIBRATORS)
    cls = {"minmax": MinMaxObserver, "ema": MovingAverageMinMaxObserver, "percentile": PercentileObserver,
           "entropy": EntropyObserver, "mse": MSEObserver}[name]
    allowed = _options(cls) - {"bits", "symmetric"}
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ValueError(f"make_observer({calibrator!r}) has no option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(u) for u in unknown)}; its options are: {', '.join(sorted(allowed))}")
    return cls(bits=bits, symmetric=symmetric, **kw)


def _options(cls) -> set:
    """Keyword names the constructor of ``cls`` accepts (its own and those it passes on via ``**kw``)."""
    import inspect

    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names
