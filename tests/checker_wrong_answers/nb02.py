"""Classic wrong answers for notebook 02's exercises (see __init__.py for the format)."""

WRONG = {
    1: [  # S, Z of [-0.7, 2.2], 8-bit asymmetric: S = 2.9 / 255, Z = round(0.7 / S) = round(61.55) = 62
        ("S divides by 256 (2^bits, not 2^bits - 1)", "S = 2.9 / 256\nZ = round(0.7 / S)"),
        ("S = max / 255 (min forgotten)", "S = 2.2 / 255\nZ = round(0.7 / S)"),
        ("S = (max + min) / 255 (sign of min)", "S = (2.2 + (-0.7)) / 255\nZ = round(0.7 / S)"),
        ("S' (the seed's reciprocal scale, 255 / 2.9) instead of S", "S = 255 / 2.9\nZ = round(0.7 * S)"),
        ("S of 7 bits", "S = 2.9 / 127\nZ = round(0.7 / S)"),
        ("Z truncated with int()", "S = 2.9 / 255\nZ = int(0.7 / S)"),
        ("Z floored", "import math\nS = 2.9 / 255\nZ = math.floor(0.7 / S)"),
        ("Z with the wrong sign", "S = 2.9 / 255\nZ = round(-0.7 / S)"),
        ("Z off by one", "S = 2.9 / 255\nZ = round(0.7 / S) + 1"),
        ("Z not rounded", "S = 2.9 / 255\nZ = 0.7 / S"),
        ("Z as a string", "S = 2.9 / 255\nZ = '62'"),
    ],
    2: [  # my_quantize(x, S, Z, qmin, qmax)
        ("floor instead of round", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                   "    return np.clip(np.floor(x / S) + Z, qmin, qmax).astype(np.int64)"),
        ("truncation (astype int) instead of round", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                                     "    return np.clip((x / S).astype(np.int64) + Z, qmin, qmax)"),
        ("ceil instead of round", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                  "    return np.clip(np.ceil(x / S) + Z, qmin, qmax).astype(np.int64)"),
        ("round half away from zero", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                      "    r = x / S\n"
                                      "    return np.clip(np.sign(r) * np.floor(np.abs(r) + 0.5) + Z, qmin, qmax).astype(np.int64)"),
        ("round half up (floor(r + 0.5))", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                           "    return np.clip(np.floor(x / S + 0.5) + Z, qmin, qmax).astype(np.int64)"),
        ("no clipping", "def my_quantize(x, S, Z, qmin, qmax):\n"
                        "    return (np.rint(x / S) + Z).astype(np.int64)"),
        ("Z forgotten", "def my_quantize(x, S, Z, qmin, qmax):\n"
                        "    return np.clip(np.rint(x / S), qmin, qmax).astype(np.int64)"),
        ("Z subtracted (wrong sign)", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                      "    return np.clip(np.rint(x / S) - Z, qmin, qmax).astype(np.int64)"),
        ("multiplies by S", "def my_quantize(x, S, Z, qmin, qmax):\n"
                            "    return np.clip(np.rint(x * S) + Z, qmin, qmax).astype(np.int64)"),
        ("clips before rounding and adding Z", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                               "    return (np.rint(np.clip(x / S, qmin, qmax)) + Z).astype(np.int64)"),
        ("clip range off by one (qmax - 1)", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                             "    return np.clip(np.rint(x / S) + Z, qmin, qmax - 1).astype(np.int64)"),
        ("adds Z inside the division", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                       "    return np.clip(np.rint((x + Z) / S), qmin, qmax).astype(np.int64)"),
        ("returns the dequantized value", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                          "    return (np.clip(np.rint(x / S) + Z, qmin, qmax) - Z) * S"),
        ("returns unrounded codes", "def my_quantize(x, S, Z, qmin, qmax):\n"
                                    "    return np.clip(x / S + Z, qmin, qmax)"),
    ],
}
