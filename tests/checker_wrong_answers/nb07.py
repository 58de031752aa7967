"""Classic wrong answers for notebook 07's exercises (see __init__.py for the format)."""

_FN = "def clipped_ste_backward(grad, x, scale, zero_point, qmin, qmax):\n"

WRONG = {
    1: [  # plain = 1 everywhere; clipped = [1, 1, 1, 0, 1, 0]
        ("clipped against the real range [-1.0, 0.5]", "clipped = [1, 0, 0, 0, 0, 0]"),
        ("clipped with floor codes", "clipped = [1, 1, 1, 1, 0, 0]"),
        ("clipped with truncated codes", "clipped = [1, 1, 1, 1, 1, 1]"),
        ("clipped with one entry off", "clipped = [1, 1, 1, 0, 0, 0]"),
        ("clipped inverted", "clipped = [0, 0, 0, 1, 0, 1]"),
        ("plain blocks the clamped values too", "plain = [1, 1, 1, 0, 1, 0]"),
        ("plain all zero", "plain = [0, 0, 0, 0, 0, 0]"),
        ("plain with the wrong sign", "plain = [-1, -1, -1, -1, -1, -1]"),
        ("plain and clipped swapped", "plain, clipped = [1, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1]"),
        ("clipped too short", "clipped = [1, 1, 1, 0, 1]"),
    ],
    2: [  # grad * (qmin <= rint(x / scale) + zero_point <= qmax)
        ("the mask only", _FN + "    code = np.rint(x / scale) + zero_point\n"
                                "    return ((code >= qmin) & (code <= qmax)).astype(float)"),
        ("the real range instead of the rounded code", _FN +
         "    return grad * ((x >= scale * (qmin - zero_point)) & (x <= scale * (qmax - zero_point)))"),
        ("floor instead of round", _FN + "    code = np.floor(x / scale) + zero_point\n"
                                         "    return grad * ((code >= qmin) & (code <= qmax))"),
        ("truncation instead of round", _FN + "    code = np.trunc(x / scale) + zero_point\n"
                                              "    return grad * ((code >= qmin) & (code <= qmax))"),
        ("round half away from zero", _FN + "    r = x / scale\n"
                                            "    code = np.sign(r) * np.floor(np.abs(r) + 0.5) + zero_point\n"
                                            "    return grad * ((code >= qmin) & (code <= qmax))"),
        ("zero point forgotten", _FN + "    code = np.rint(x / scale)\n"
                                       "    return grad * ((code >= qmin) & (code <= qmax))"),
        ("zero point subtracted", _FN + "    code = np.rint(x / scale) - zero_point\n"
                                        "    return grad * ((code >= qmin) & (code <= qmax))"),
        ("strict inequalities", _FN + "    code = np.rint(x / scale) + zero_point\n"
                                      "    return grad * ((code > qmin) & (code < qmax))"),
        ("the mask inverted", _FN + "    code = np.rint(x / scale) + zero_point\n"
                                    "    return grad * ~((code >= qmin) & (code <= qmax))"),
        ("the wrong sign", _FN + "    code = np.rint(x / scale) + zero_point\n"
                                 "    return -grad * ((code >= qmin) & (code <= qmax))"),
        ("the plain STE", _FN + "    return grad"),
        ("clip range off by one (qmax + 1)", _FN + "    code = np.rint(x / scale) + zero_point\n"
                                                  "    return grad * ((code >= qmin) & (code <= qmax + 1))"),
        ("clip range off by one (qmin + 1)", _FN + "    code = np.rint(x / scale) + zero_point\n"
                                                  "    return grad * ((code >= qmin + 1) & (code <= qmax))"),
        ("multiplies by scale (S' confusion)", _FN + "    code = np.rint(x * scale) + zero_point\n"
                                                     "    return grad * ((code >= qmin) & (code <= qmax))"),
    ],
    3: [  # [-0.4, 0.3, 1.0, 0.2, -2.0]
        ("inside with the wrong sign (v/s - round(v/s))", "factors = [0.4, -0.3, 1.0, -0.2, -2.0]"),
        ("clipping forgotten", "factors = [-0.4, 0.3, 2 - 1.8, -1 - (-1.2), -6 - (-6)]"),
        ("Qn and Qp swapped", "factors = [-0.4, 0.3, 2.0, 0.2, -1.0]"),
        ("clipped values give 0", "factors = [-0.4, 0.3, 0.0, 0.2, 0.0]"),
        ("floor instead of round", "factors = [0 - 0.4, 0 - 0.7, 1.0, -2 - (-1.2), -2.0]"),
        ("-Qn with the wrong sign", "factors = [-0.4, 0.3, 1.0, 0.2, 2.0]"),
        ("the clipped values' v/s", "factors = [-0.4, 0.3, 1.8, 0.2, -6.0]"),
        ("v * s instead of v / s (S' confusion)", "factors = [round(v * 0.5) - v * 0.5 for v in (0.2, 0.35, 0.9, -0.6, -3.0)]"),
        ("one value short", "factors = [-0.4, 0.3, 1.0, 0.2]"),
    ],
}
