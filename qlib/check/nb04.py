"""Checkers for notebook 04 (granularity)."""

from __future__ import annotations

import numpy as np

from . import _show, as_array, as_number, expect_close, failed, normalize_name, passed

__all__ = ["NB04_W", "NB04_GROUPS", "NB04_CANDIDATES", "NB04_BUDGET", "check_group_scales",
           "check_effective_bits", "check_best_config", "NB04_LLOYD_W", "NB04_LLOYD_C", "check_lloyd_step"]

#: Exercise 1: a 4 x 4 weight matrix (4 output channels = rows) and its G = 2 channel groups. Not section 1's
#: seed matrix (whose G = 2 scales that section prints): here group 0's largest magnitude is negative
#: (-0.50) and group 1's positive (1.40), so max(w) and -min(w) both give wrong scales, unlike max|w|.
NB04_W = np.array([[0.30, -0.50, 0.10, 0.20],
                   [-0.20, 0.40, 0.05, -0.10],
                   [0.60, -0.30, 1.20, 0.00],
                   [-0.90, 0.20, 0.50, 1.40]])
NB04_W.setflags(write=False)   # a learner's in-place edit of w_ex must not change what the checker judges
NB04_GROUPS = 2

#: Exercise 3: (bits, granularity, group_size) candidates for fc2's weights, and the bit budget.
NB04_CANDIDATES = (
    (4, "per-tensor", None),
    (4, "per-channel", None),
    (4, "block-wise", 64),
    (4, "block-wise", 32),
    (3, "block-wise", 16),
    (3, "block-wise", 8),
    (2, "block-wise", 8),
)
NB04_BUDGET = 4.25

#: Exercise 4: eight weights and a 2-bit codebook (4 centroids) for one Lloyd step. No weight lies halfway
#: between two centroids (no ties), and no weight is nearest to centroid 1 (-0.45): its cluster is empty.
NB04_LLOYD_W = np.array([-0.90, -0.75, -0.05, 0.00, 0.10, 0.20, 0.35, 1.10])
NB04_LLOYD_C = np.array([-0.80, -0.45, 0.30, 0.80])
NB04_LLOYD_W.setflags(write=False)
NB04_LLOYD_C.setflags(write=False)


def check_group_scales(scales, w=None, groups: int = NB04_GROUPS, bits: int = 4) -> None:
    """Exercise 1: symmetric scales of G channel groups, one per channel (axis 0), exactly of shape
    ``(channels,)``, as ``qlib.channel_group_qparams(w, G, symmetric=True)`` gives them. The notebook
    calls it with the answer only: ``w`` and ``G`` are the exercise's (:data:`NB04_W`, G = 2), not
    whatever the learner's cell rebinds them to.

    >>> check_group_scales(np.repeat([0.5 / 7, 1.4 / 7], 2))
    ✅ Correct! each group of channels shares S = max|w over the group| / 7.
    >>> try:
    ...     check_group_scales(np.repeat([0.4 / 7, 1.4 / 7], 2))
    ... except AssertionError:
    ...     pass
    ❌ Not yet: you took the largest w, not the largest |w|: a group's biggest weight can be negative
       Hint: S = max|w| / 7: a negative weight needs as many codes as a positive one
    >>> try:
    ...     check_group_scales(np.repeat([0.5 / 7, 1.4 / 7], 2).reshape(2, 2))
    ... except AssertionError:
    ...     pass
    ❌ Not yet: scales has shape (2, 2), expected shape (4,)
       Hint: one scale per channel: a 1-D array of 4 numbers
    >>> try:
    ...     check_group_scales(np.repeat([7 / 0.5, 7 / 1.4], 2))
    ... except AssertionError:
    ...     pass
    ❌ Not yet: these are the reciprocals 7 / max|w| (the seed's S'); qlib's S is the step
       Hint: S = max|w over the group| / 7, so that w = S * q
    """
    from ..granularity import channel_group_qparams

    w = NB04_W if w is None else np.asarray(w, dtype=np.float64)
    truth = np.asarray(channel_group_qparams(w, groups, axis=0, bits=bits, symmetric=True).scale, np.float64)
    qmax = 2 ** (bits - 1) - 1
    got = as_array("scales", scales)
    if got.shape == (groups,) and groups != w.shape[0]:
        failed(f"you gave {groups} scales, one per group; the QParams holds one per channel ({w.shape[0]})",
               "repeat each group's scale for every channel of the group (np.repeat)")
    got = as_array("scales", scales, shape=truth.shape, hint=f"one scale per channel: a 1-D array of {truth.size} numbers")
    if np.allclose(got, truth, rtol=1e-9):
        passed(f"each group of channels shares S = max|w over the group| / {qmax}.")
        return
    per = w.shape[0] // groups
    diagnoses = [
        (np.abs(w).max(axis=1) / qmax, "these are per-channel scales: every channel got its own",
         "take max|w| over all channels of a group, then share it"),
        (np.full(w.shape[0], np.abs(w).max() / qmax), "these are per-tensor scales: one max over the whole matrix",
         "one max per group of channels"),
        (truth * qmax / (2 ** bits - 1), f"symmetric 4-bit divides by qmax = {qmax}, not by 2^4 - 1", f"divide by {qmax}"),
        (truth * qmax / (qmax + 1), f"symmetric 4-bit divides by qmax = {qmax}, not by {qmax + 1}", f"divide by {qmax}"),
        (truth * qmax, "you forgot to divide by qmax", f"S = max|w| / {qmax}"),
        (1 / truth, f"these are the reciprocals {qmax} / max|w| (the seed's S'); qlib's S is the step",
         f"S = max|w over the group| / {qmax}, so that w = S * q"),
    ]
    if w.ndim == 2 and w.shape[0] % groups == 0 and w.shape[1] % groups == 0:   # equal groups (the exercise's)
        grouped = w.reshape(groups, -1)
        diagnoses += [
            (np.repeat(grouped.max(axis=1), per) / qmax,
             "you took the largest w, not the largest |w|: a group's biggest weight can be negative",
             f"S = max|w| / {qmax}: a negative weight needs as many codes as a positive one"),
            (np.repeat(-grouped.min(axis=1), per) / qmax,
             "you took -min(w), not max|w|: a group's biggest weight can be positive",
             f"S = max|w| / {qmax}: the larger of -min and max"),
            (np.repeat(np.abs(w).reshape(w.shape[0], groups, -1).max(axis=(0, 2)), per) / qmax,
             "you grouped the columns (inputs); channels are the rows (axis 0)", "group rows 0-1 and rows 2-3"),
        ]
    for wrong, msg, hint in diagnoses:
        if np.allclose(got, wrong, rtol=1e-9):
            failed(msg, hint)
    expect_close("scales", got, truth, rtol=1e-9,
                 hint=f"symmetric: S = max|w over the group| / (2^(bits-1) - 1) = max / {qmax}")


def check_effective_bits(answer) -> None:
    """Exercise 2: 3-bit asymmetric weights, groups of 64, fp16 scale + 8-bit zero point per group:
    ``qlib.effective_bits_per_weight(3, 64, scale_bits=16, zero_point_bits=8)`` = 3.375 (exact in binary).

    >>> check_effective_bits(3.375)
    ✅ Correct! 3 + (16 + 8) / 64 = 3.375 bits per weight: the 8-bit zero points alone add 0.125 bits (4 % more).
    """
    from ..granularity import effective_bits_per_weight

    truth = effective_bits_per_weight(3, 64, scale_bits=16, zero_point_bits=8)
    a = as_number("answer", answer, hint="a number of bits per weight, e.g. 3.5")
    if np.isclose(a, 3.0):
        failed("3.0 forgets the storage of the scales and zero points", "add (16 + 8) / 64 bits")
    if np.isclose(a, effective_bits_per_weight(3, 64, scale_bits=16)):
        failed("that counts the fp16 scale but not the zero point",
               "asymmetric: every group also stores its 8-bit zero point")
    if np.isclose(a, effective_bits_per_weight(3, 64, scale_bits=32, zero_point_bits=8)):
        failed("the scale is fp16 (16 bits), not fp32", "(16 + 8) / 64")
    if np.isclose(a, 3 * 64 + 24) or np.isclose(a, 3 + 24):
        failed("divide the per-group storage by the 64 weights of the group", "bits + (16 + 8) / 64")
    expect_close("effective bits per weight", a, truth, rtol=1e-12,
                 hint="bits + (scale_bits + zero_point_bits) / group_size")
    passed("3 + (16 + 8) / 64 = 3.375 bits per weight: the 8-bit zero points alone add 0.125 bits (4 % more).")


def _candidate(answer):
    """The element of :data:`NB04_CANDIDATES` that ``answer`` means (granularity spelled any way:
    "Block-wise", "blockwise", "block_wise"; group size 64 or 64.0), or None.

    >>> _candidate((4, "Block_Wise", 64.0)), _candidate(("best",)), _candidate(None)
    ((4, 'block-wise', 64), None, None)
    """
    if isinstance(answer, (str, bytes, dict)) or answer is None:
        return None
    try:
        bits, gran, gs = tuple(answer)
    except (TypeError, ValueError):
        return None
    for c in NB04_CANDIDATES:
        same_gs = (gs is None) if c[2] is None else (not isinstance(gs, (str, bool)) and gs is not None
                                                     and _num_eq(gs, c[2]))
        if _num_eq(bits, c[0]) and isinstance(gran, str) and normalize_name(gran) == normalize_name(c[1]) and same_gs:
            return c
    return None


def _num_eq(a, b) -> bool:
    try:
        return not isinstance(a, (str, bool)) and float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _fc2_weights() -> np.ndarray:
    """fc2's weights of ``qlib.reference_model()`` (the notebook's ``W2``), float32."""
    from ..nn import reference_model

    return np.asarray(next(lay.W for lay in reference_model().linear_layers if lay.name == "fc2"), np.float32)


def check_best_config(answer, w=None) -> None:
    """Exercise 3: the candidate of :data:`NB04_CANDIDATES` with the smallest MSE within the budget,
    each candidate's cost and error computed with qlib (effective_bits_per_weight, weight_qparams,
    fake_quantize, mse) on fc2's weights of ``qlib.reference_model()``. ``w`` (the notebook's ``W2``)
    must be those weights: the checker judges the exercise's layer, not whatever ``W2`` was rebound to.

    >>> check_best_config((4, "Block-Wise", 64.0))
    ✅ Correct! (4, 'block-wise', 64) has the smallest weight MSE (3.185e-04) at 4.250 bits per weight.
    >>> fc1 = next(lay.W for lay in __import__("qlib").reference_model().linear_layers if lay.name == "fc1")
    >>> try:
    ...     check_best_config((4, "per-channel", None), fc1)   # fc1's best within the budget
    ... except AssertionError:
    ...     pass
    ❌ Not yet: W2 is not the reference model's fc2 weights anymore (it has shape (128, 64), fc2's is (64, 128))
       Hint: do not change W2: re-run the cell that sets W2 = layers['fc2'], then your exercise cell
    """
    from ..granularity import effective_bits_per_weight, weight_qparams, weights_per_scale
    from ..linear import fake_quantize
    from ..metrics import mse

    ref = _fc2_weights()
    if w is not None:
        given = as_array("W2", w, hint="W2 = layers['fc2']: re-run the cell of section 5 that defines it")
        if given.shape != ref.shape or not np.array_equal(given.astype(np.float32), ref):
            shape = "" if given.shape == ref.shape else f" (it has shape {given.shape}, fc2's is {ref.shape})"
            failed(f"W2 is not the reference model's fc2 weights anymore{shape}",
                   "do not change W2: re-run the cell that sets W2 = layers['fc2'], then your exercise cell")
    w = ref
    best, best_err = None, np.inf
    for bits, gran, gs in NB04_CANDIDATES:
        eb = effective_bits_per_weight(bits, weights_per_scale(w.shape, gran, group_size=gs))
        if eb > NB04_BUDGET:
            continue
        err = float(mse(w, fake_quantize(w, weight_qparams(w, gran, bits=bits, group_size=gs))))
        if err < best_err:
            best, best_err = (bits, gran, gs), err
    ans = _candidate(answer)
    if ans is None:
        failed(f"answer should be one of the candidate tuples, got {_show(answer)}", "copy one from check.NB04_CANDIDATES")
    bits, gran, gs = ans
    eb = effective_bits_per_weight(bits, weights_per_scale(w.shape, gran, group_size=gs))
    if eb > NB04_BUDGET:
        failed(f"{ans} costs {eb:.3f} bits per weight, over the budget of {NB04_BUDGET}",
               "compute qlib.effective_bits_per_weight for each candidate first and drop those over budget")
    if ans != best:
        failed(f"{ans} fits the budget, but another candidate within budget has a smaller MSE",
               "compare the weight MSE of every candidate that fits")
    passed(f"{best} has the smallest weight MSE ({best_err:.3e}) at {eb:.3f} bits per weight.")


def _loose_array(v):
    """``v`` as a float array if it is a regular block of real numbers (NaN allowed), else None."""
    if v is None or isinstance(v, (str, bytes, bool, np.bool_, dict, set)):
        return None
    try:
        arr = np.asarray(v)
        if arr.dtype.kind not in "iuf":
            return None
        return arr.astype(np.float64)
    except Exception:   # ragged lists, objects
        return None


def check_lloyd_step(labels, centroids) -> None:
    """Exercise 4: one Lloyd step on :data:`NB04_LLOYD_W` from the codebook :data:`NB04_LLOYD_C`, as
    ``qlib.lloyd_step`` computes it: ``labels`` = index of each weight's nearest centroid (0..3),
    ``centroids`` = the mean of each cluster, the empty cluster keeping its old value.

    >>> check_lloyd_step([0, 0, 2, 2, 2, 2, 2, 3], [-0.825, -0.45, 0.12, 1.1])
    ✅ Correct! Assign to the nearest centroid, move each centroid to its cluster's mean; centroid 1 (-0.45) got no weight and stays put.
    >>> try:
    ...     check_lloyd_step([0, 0, 2, 2, 2, 2, 2, 3], [-0.825, np.nan, 0.12, 1.1])
    ... except AssertionError:
    ...     pass
    ❌ Not yet: centroid 1 is NaN: no weight chose it, and the mean of nothing is NaN
       Hint: a centroid with an empty cluster keeps its old value (-0.45)
    """
    from ..codebook import lloyd_step

    w, c_old = NB04_LLOYD_W, NB04_LLOYD_C
    truth_c, truth_lab = lloyd_step(w, c_old)
    truth_lab = truth_lab.astype(np.int64)
    n, k = w.size, c_old.size
    # ---- labels
    lab = _loose_array(labels)
    if lab is not None and lab.shape == (n,) and np.isfinite(lab).all():
        if np.allclose(lab, c_old[truth_lab]):
            failed("these are the centroid values; labels are the indices 0..3 of the centroids",
                   "labels[i] = the index j of the centroid nearest to w[i] (argmin, not min)")
        if np.array_equal(lab, truth_lab + 1):
            failed("your labels count from 1; Python (and qlib) index centroids from 0", "subtract 1")
        if np.array_equal(lab, np.abs(w[:, None] - c_old[None, :]).argmax(axis=1)):
            failed("that is the farthest centroid of each weight", "argmin of the distance, not argmax")
    lab = as_array("labels", labels, shape=(n,), hint=f"one centroid index per weight: {n} whole numbers in 0..{k - 1}")
    if not np.array_equal(lab, np.floor(lab)) or lab.min() < 0 or lab.max() > k - 1:
        failed(f"labels should be whole numbers in 0..{k - 1} (indices of the {k} centroids), got {_show(labels)}",
               "labels[i] = np.argmin(|w[i] - c_old|)")
    wrong = np.flatnonzero(lab.astype(np.int64) != truth_lab)
    if wrong.size:
        i = int(wrong[0])
        failed(f"w[{i}] = {w[i]:+.2f} is nearest to centroid {truth_lab[i]} ({c_old[truth_lab[i]]:+.2f}), "
               f"not to centroid {int(lab[i])} ({c_old[int(lab[i])]:+.2f})",
               "label = argmin over j of |w - c_old[j]|, for each weight")
    # ---- centroids
    empty = np.flatnonzero(np.bincount(truth_lab, minlength=k) == 0)
    got = _loose_array(centroids)
    if got is not None and got.shape == (k,) and empty.size:
        j = int(empty[0])
        ok_rest = np.allclose(np.delete(got, empty), np.delete(truth_c, empty), rtol=1e-6)
        if np.isnan(got[j]) and ok_rest:
            failed(f"centroid {j} is NaN: no weight chose it, and the mean of nothing is NaN",
                   f"a centroid with an empty cluster keeps its old value ({c_old[j]:+.2f})")
        if got[j] == 0 and ok_rest:
            failed(f"centroid {j} got no weight, and you set it to 0", f"it keeps its old value ({c_old[j]:+.2f})")
    if got is not None and got.shape == (k - empty.size,) and empty.size \
            and np.allclose(got, np.delete(truth_c, empty), rtol=1e-6):
        failed(f"you dropped the empty cluster: the codebook still has {k} centroids",
               f"keep centroid {int(empty[0])} at its old value, in its place")
    if got is not None and got.shape == (n,):
        failed(f"that is one value per weight; the codebook has one per centroid ({k})",
               "new_centroids[j] = mean of the weights with label j")
    c = as_array("centroids", centroids, shape=(k,), hint=f"one new value per centroid: {k} numbers")
    medians = np.array([np.median(w[truth_lab == j]) if np.any(truth_lab == j) else c_old[j] for j in range(k)])
    mids = np.array([(w[truth_lab == j].min() + w[truth_lab == j].max()) / 2 if np.any(truth_lab == j) else c_old[j]
                     for j in range(k)])
    diagnoses = [
        (c_old, "these are the old centroids: the update step is missing", "move each centroid to the mean of its weights"),
        (medians, "that is each cluster's median; k-means uses the mean", "np.mean of the weights with label j"),
        (mids, "that is the midpoint of each cluster's min and max; k-means uses the mean of all its weights",
         "np.mean of the weights with label j"),
        (np.full(k, w.mean()), "that is the mean of all the weights, for every centroid", "one mean per cluster"),
    ]
    for wrong_c, msg, hint in diagnoses:
        if np.allclose(c, wrong_c, rtol=1e-6) and not np.allclose(wrong_c, truth_c, rtol=1e-6):
            failed(msg, hint)
    expect_close("centroids", c, truth_c, rtol=1e-6,
                 hint="new c[j] = mean of the weights with label j; an empty cluster keeps its old value")
    passed(f"Assign to the nearest centroid, move each centroid to its cluster's mean; centroid {int(empty[0])} "
           f"({c_old[int(empty[0])]:+.2f}) got no weight and stays put." if empty.size else
           "Assign to the nearest centroid, move each centroid to its cluster's mean.")
