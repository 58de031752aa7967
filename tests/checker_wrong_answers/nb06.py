"""Classic wrong answers for notebook 06's exercises (see __init__.py for the format)."""

WRONG = {
    1: [  # ema_minmax(batches, c): first batch initialises, x += c * (batch_x - x) for the later ones
        ("running min-max instead of EMA",
         "def ema_minmax(batches, c=0.01):\n"
         "    return min(float(b.min()) for b in batches), max(float(b.max()) for b in batches)"),
        ("plain mean of the batch min/max",
         "def ema_minmax(batches, c=0.01):\n"
         "    return (float(np.mean([b.min() for b in batches])), float(np.mean([b.max() for b in batches])))"),
        ("min not tracked (stays at the first batch's min)",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = float(batches[0].min()), float(batches[0].max())\n"
         "    for b in batches[1:]:\n"
         "        hi += c * (float(b.max()) - hi)\n"
         "    return lo, hi"),
        ("min starts at 0 (post-ReLU habit)",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = 0.0, float(batches[0].max())\n"
         "    for b in batches[1:]:\n"
         "        lo += c * (float(b.min()) - lo)\n"
         "        hi += c * (float(b.max()) - hi)\n"
         "    return lo, hi"),
        ("min updated with the batch max (copy-paste)",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = float(batches[0].min()), float(batches[0].max())\n"
         "    for b in batches[1:]:\n"
         "        lo += c * (float(b.max()) - lo)\n"
         "        hi += c * (float(b.max()) - hi)\n"
         "    return lo, hi"),
        ("weights swapped: x = c * x + (1 - c) * batch_x",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = float(batches[0].min()), float(batches[0].max())\n"
         "    for b in batches[1:]:\n"
         "        lo = c * lo + (1 - c) * float(b.min())\n"
         "        hi = c * hi + (1 - c) * float(b.max())\n"
         "    return lo, hi"),
        ("wrong sign of the step",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = float(batches[0].min()), float(batches[0].max())\n"
         "    for b in batches[1:]:\n"
         "        lo -= c * (float(b.min()) - lo)\n"
         "        hi -= c * (float(b.max()) - hi)\n"
         "    return lo, hi"),
        ("starts from 0 instead of the first batch",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo = hi = 0.0\n"
         "    for b in batches:\n"
         "        lo += c * (float(b.min()) - lo)\n"
         "        hi += c * (float(b.max()) - hi)\n"
         "    return lo, hi"),
        ("last batch forgotten (off by one)",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = float(batches[0].min()), float(batches[0].max())\n"
         "    for b in batches[1:-1]:\n"
         "        lo += c * (float(b.min()) - lo)\n"
         "        hi += c * (float(b.max()) - hi)\n"
         "    return lo, hi"),
        ("(max, min) order",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = float(batches[0].min()), float(batches[0].max())\n"
         "    for b in batches[1:]:\n"
         "        lo += c * (float(b.min()) - lo)\n"
         "        hi += c * (float(b.max()) - hi)\n"
         "    return hi, lo"),
        ("EMA of max|x| for both (symmetric habit)",
         "def ema_minmax(batches, c=0.01):\n"
         "    m = float(np.abs(batches[0]).max())\n"
         "    for b in batches[1:]:\n"
         "        m += c * (float(np.abs(b).max()) - m)\n"
         "    return -m, m"),
        ("c ignored (always 0.1)",
         "def ema_minmax(batches, c=0.01):\n"
         "    lo, hi = float(batches[0].min()), float(batches[0].max())\n"
         "    for b in batches[1:]:\n"
         "        lo += 0.1 * (float(b.min()) - lo)\n"
         "        hi += 0.1 * (float(b.max()) - hi)\n"
         "    return lo, hi"),
        ("returns only the max", "def ema_minmax(batches, c=0.01):\n    return float(batches[0].max())"),
        ("one parameter only", "def ema_minmax(batches):\n    return 0.0, 1.0"),
    ],
    2: [  # nq at 4 bits: signed 2^3 = 8, unsigned 2^4 = 16
        ("swapped", "nq_signed, nq_unsigned = 16, 8"),
        ("largest code instead of the number of levels", "nq_signed, nq_unsigned = 7, 15"),
        ("2^bits for both", "nq_signed, nq_unsigned = 16, 16"),
        ("2^(bits-1) for both", "nq_signed, nq_unsigned = 8, 8"),
        ("signed off by one", "nq_signed, nq_unsigned = 7, 16"),
        ("unsigned off by one", "nq_signed, nq_unsigned = 8, 15"),
        ("8-bit answer (128, 256)", "nq_signed, nq_unsigned = 128, 256"),
        ("bits instead of levels", "nq_signed, nq_unsigned = 3, 4"),
        ("not a whole number", "nq_signed, nq_unsigned = 8.9, 16"),
        ("strings", "nq_signed, nq_unsigned = '8', '16'"),
        ("True for a count", "nq_signed, nq_unsigned = True, 16"),
        ("None", "nq_signed, nq_unsigned = None, 16"),
    ],
    3: [  # ReLU data + one value at 60, 4 bits: the 99.99th percentile wins
        ("min-max", 'answer = "minmax"'),
        ("min-max, other spelling", 'answer = "Min-Max"'),
        ("another calibrator", 'answer = "entropy"'),
        ("not a string", "answer = 1"),
        ("None", "answer = None"),
    ],
    4: [  # bias_corrected(W, W_q, b, x) = b - (mean_n x @ W_q.T - mean_n x @ W.T)
        ("wrong sign: b + shift",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b + (x @ W_q.T).mean(axis=0) - (x @ W.T).mean(axis=0)"),
        ("error W - W_q instead of W_q - W",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b - (W - W_q) @ x.mean(axis=0)"),
        ("returns the shift, not the bias",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return (x @ W_q.T).mean(axis=0) - (x @ W.T).mean(axis=0)"),
        ("sum over the samples instead of the mean",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b - (W_q - W) @ x.sum(axis=0)"),
        ("float layer's output forgotten",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b - (x @ W_q.T).mean(axis=0)"),
        ("absolute rounding errors",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b - np.abs(W_q - W) @ x.mean(axis=0)"),
        ("one shift for all channels",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b - ((x @ W_q.T) - (x @ W.T)).mean()"),
        ("mean over the wrong axis (features instead of samples)",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b - ((x @ W_q.T) - (x @ W.T)).mean(axis=1)"),
        ("modifies b in place",
         "def bias_corrected(W, W_q, b, x):\n"
         "    b -= (x @ W_q.T).mean(axis=0) - (x @ W.T).mean(axis=0)\n"
         "    return b"),
        ("W.T and W_q.T swapped into W @ x (shape error)",
         "def bias_corrected(W, W_q, b, x):\n"
         "    return b - (W_q @ x - W @ x).mean(axis=0)"),
        ("returns a list of strings", "def bias_corrected(W, W_q, b, x):\n    return ['0'] * len(b)"),
        ("returns None", "def bias_corrected(W, W_q, b, x):\n    pass"),
        ("not a function", "bias_corrected = 0.5"),
    ],
}
