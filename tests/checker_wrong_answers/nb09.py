"""Classic wrong answers for notebook 09's exercises (see __init__.py for the format)."""

WRONG = {
    1: [  # b' = beta - gamma * mean / sqrt(var + eps)
        ("eps forgotten", "b_folded = beta - gamma * mean / np.sqrt(var)"),
        ("eps set to 0 in the learner's cell (and so forgotten)", "eps = 0.0\nb_folded = beta - gamma * mean / np.sqrt(var + eps)"),
        ("eps in float16's smallest normal instead of 1e-5", "eps = 6.1e-5\nb_folded = beta - gamma * mean / np.sqrt(var + eps)"),
        ("eps forgotten, in float32", "b_folded = (beta - gamma * mean / np.sqrt(var)).astype(np.float32)"),
        ("mean not scaled", "b_folded = beta - mean"),
        ("wrong sign of the mean term", "b_folded = beta + gamma * mean / np.sqrt(var + eps)"),
        ("beta forgotten", "b_folded = -gamma * mean / np.sqrt(var + eps)"),
        ("divided by the variance", "b_folded = beta - gamma * mean / (var + eps)"),
        ("eps outside the root", "b_folded = beta - gamma * mean / (np.sqrt(var) + eps)"),
        ("beta scaled too", "b_folded = gamma / np.sqrt(var + eps) * (beta - mean)"),
        ("gamma forgotten", "b_folded = beta - mean / np.sqrt(var + eps)"),
        ("a 100 times larger eps", "b_folded = beta - gamma * mean / np.sqrt(var + 1e-3)"),
        ("the folded weight scale k instead of the bias", "b_folded = gamma / np.sqrt(var + eps)"),
        ("one channel missing", "b_folded = (beta - gamma * mean / np.sqrt(var + eps))[:-1]"),
        ("as a column (wrong shape)", "b_folded = (beta - gamma * mean / np.sqrt(var + eps))[:, None]"),
    ],
    2: [  # s = sqrt(r1 / r2)
        ("the reciprocal", "s = np.sqrt(r2 / r1)"),
        ("the common range sqrt(r1 * r2)", "s = np.sqrt(r1 * r2)"),
        ("square root forgotten", "s = r1 / r2"),
        ("the arithmetic mean", "s = (r1 + r2) / 2"),
        ("s of the first channel only", "s = np.sqrt(r1 / r2)[0]"),
        ("s squared the wrong way (r2 / r1)", "s = r2 / r1"),
        ("the reciprocal, by swapping r1 and r2", "r1, r2 = r2, r1\ns = np.sqrt(r1 / r2)"),
        ("sorted", "s = np.sort(np.sqrt(r1 / r2))"),
    ],
    3: [  # S_bias = S_in * S_w (per output channel)
        ("the input scale alone", "s_bias = np.full_like(s_w, s_in)"),
        ("the weight scales alone", "s_bias = s_w"),
        ("sum instead of product", "s_bias = s_in + s_w"),
        ("ratio instead of product", "s_bias = s_w / s_in"),
        ("per-tensor (the largest channel's) scale", "s_bias = np.full_like(s_w, s_in * s_w.max())"),
        ("per-tensor scalar", "s_bias = s_in * s_w.max()"),
        ("S' (reciprocal) instead of S", "s_bias = 1 / (s_in * s_w)"),
        ("squared input scale", "s_bias = s_in * s_in * np.ones_like(s_w)"),
        ("per-tensor, by replacing s_w with its largest scale", "s_w = s_w.max()\ns_bias = s_in * s_w"),
        # not refused: s_in rebound to another positive number (the checker gets s_in's value from the
        # learner's cell and only checks that it is one positive number)
    ],
}
