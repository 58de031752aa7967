"""Classic wrong answers for notebook 05's exercises (see __init__.py for the format)."""

_EX1 = "lo, hi = -0.7, 2.2\n"

WRONG = {
    1: [  # SNPE encoding of [-0.7, 2.2]: scale = 2.9/255, offset = -round(61.55) = -62, min = offset*scale, max = min + 2.9
        ("scale divides by 256 (2^bits, not 2^bits - 1)",
         _EX1 + "scale = (hi - lo) / 256\noffset = -round(-lo / scale)\n"
                "encoding_min = offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("S' (the seed's reciprocal scale, 255 / 2.9) instead of the step",
         _EX1 + "scale = 255 / (hi - lo)\noffset = -round(-lo * scale)\n"
                "encoding_min = offset / scale\nencoding_max = encoding_min + (hi - lo)"),
        ("scale = max / 255 (min forgotten)",
         _EX1 + "scale = hi / 255\noffset = -round(-lo / scale)\n"
                "encoding_min = offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("offset truncated with int()",
         _EX1 + "scale = (hi - lo) / 255\noffset = -int(-lo / scale)\n"
                "encoding_min = offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("offset floored",
         "import math\n" + _EX1 + "scale = (hi - lo) / 255\noffset = -math.floor(-lo / scale)\n"
                "encoding_min = offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("offset = +Z (sign not changed)",
         _EX1 + "scale = (hi - lo) / 255\noffset = round(-lo / scale)\n"
                "encoding_min = -offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("offset off by one",
         _EX1 + "scale = (hi - lo) / 255\noffset = -round(-lo / scale) - 1\n"
                "encoding_min = offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("offset not rounded",
         _EX1 + "scale = (hi - lo) / 255\noffset = lo / scale\n"
                "encoding_min = offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("encoding_min not adjusted (the data's min)",
         _EX1 + "scale = (hi - lo) / 255\noffset = -round(-lo / scale)\n"
                "encoding_min = lo\nencoding_max = encoding_min + (hi - lo)"),
        ("encoding_max not adjusted (the data's max)",
         _EX1 + "scale = (hi - lo) / 255\noffset = -round(-lo / scale)\n"
                "encoding_min = offset * scale\nencoding_max = hi"),
        ("encoding_min with the wrong sign",
         _EX1 + "scale = (hi - lo) / 255\noffset = -round(-lo / scale)\n"
                "encoding_min = -offset * scale\nencoding_max = encoding_min + (hi - lo)"),
        ("encoding_max = offset * scale + 255 (codes, not real units)",
         _EX1 + "scale = (hi - lo) / 255\noffset = -round(-lo / scale)\n"
                "encoding_min = offset * scale\nencoding_max = (offset + 255) * scale + 1"),
        ("offset as a string", _EX1 + "scale = (hi - lo) / 255\noffset = '-62'\n"
                                      "encoding_min = -62 * scale\nencoding_max = encoding_min + (hi - lo)"),
    ],
    2: [  # tie 2.5: SNPE (half away) offset -3, half to even -2
        ("both half to even (np.rint for SNPE too)", "offset_snpe = -int(np.rint(2.5))\noffset_half_even = -int(np.rint(2.5))"),
        ("Python's round() for SNPE (it rounds ties to even)", "offset_snpe = -round(2.5)\noffset_half_even = -int(np.rint(2.5))"),
        ("both half away from zero", "offset_snpe = -3\noffset_half_even = -3"),
        ("swapped", "offset_snpe = -2\noffset_half_even = -3"),
        ("signs not changed (zero points, not offsets)", "offset_snpe = 3\noffset_half_even = 2"),
        ("truncation for SNPE", "offset_snpe = -int(2.5)\noffset_half_even = -int(np.rint(2.5))"),
        ("ceil for half to even", "offset_snpe = -3\noffset_half_even = -int(np.ceil(2.5))"),
        ("not rounded", "offset_snpe = -2.5\noffset_half_even = -2.5"),
        ("SNPE off by one", "offset_snpe = -4\noffset_half_even = -2"),
    ],
    3: [  # q_bias = rint(b / (S_in * S_w)), int64, 128 codes
        ("truncation (astype int) instead of round",
         "q_bias = (fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64)"),
        ("floor instead of round", "q_bias = np.floor(fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64)"),
        ("ceil instead of round", "q_bias = np.ceil(fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64)"),
        ("rounded, then + 1 (off by one)",
         "q_bias = np.rint(fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64) + 1"),
        ("rounded, then - 1 (off by one)",
         "q_bias = np.rint(fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64) - 1"),
        ("not rounded (float codes with a fraction)", "q_bias = fc1.b.astype(np.float64) / (s_in * s_w)"),
        ("wrong sign", "q_bias = -np.rint(fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64)"),
        ("multiplied by the scales (S' instead of S)",
         "q_bias = np.rint(fc1.b.astype(np.float64) * (s_in * s_w)).astype(np.int64)"),
        ("divided by 1/(S_in S_w) written with the seed's S' = 1/S",
         "q_bias = np.rint(fc1.b.astype(np.float64) / (1 / s_in * 1 / s_w)).astype(np.int64)"),
        ("input scale forgotten (b / S_w)", "q_bias = np.rint(fc1.b.astype(np.float64) / s_w).astype(np.int64)"),
        ("weight scale forgotten (b / S_in)", "q_bias = np.rint(fc1.b.astype(np.float64) / s_in).astype(np.int64)"),
        ("sum of the scales instead of the product",
         "q_bias = np.rint(fc1.b.astype(np.float64) / (s_in + s_w)).astype(np.int64)"),
        ("per-channel weight scales instead of fc1's per-tensor encoding",
         "s_wc = np.array([qlib.snpe_encoding(r.min(), r.max()).scale for r in fc1.W])\n"
         "q_bias = np.rint(fc1.b.astype(np.float64) / (s_in * s_wc)).astype(np.int64)"),
        ("symmetric max|W|/127 weight scale instead of the SNPE encoding",
         "q_bias = np.rint(fc1.b.astype(np.float64) / (s_in * np.abs(fc1.W).max() / 127)).astype(np.int64)"),
        ("8-bit bias encoding (its own min-max) instead of 32-bit",
         "q_bias = qlib.quantize(fc1.b, qlib.snpe_encoding(fc1.b.min(), fc1.b.max()).to_qparams()).astype(np.int64)"),
        ("clipped to int8", "q_bias = np.clip(np.rint(fc1.b.astype(np.float64) / (s_in * s_w)), -128, 127).astype(np.int64)"),
        ("one channel missing", "q_bias = np.rint(fc1.b.astype(np.float64) / (s_in * s_w)).astype(np.int64)[:-1]"),
        ("fc2's bias", "q_bias = np.rint(model.linear_layers[1].b.astype(np.float64) / (s_in * s_w)).astype(np.int64)"),
    ],
}
