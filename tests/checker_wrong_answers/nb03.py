"""Classic wrong answers for notebook 03's exercises (see __init__.py for the format)."""

_S = "S = max(abs(x_min), abs(x_max)) / 127\n"

WRONG = {
    1: [  # S = 2.54 / 127, q = codes of (1.274, -0.954, 0.05) = 64, -48, 2
        ("S with the min-max (asymmetric) step", "S = (x_max - x_min) / 255\nq = [round(v / S) for v in values]"),
        ("S with PyTorch's 127.5", "S = max(abs(x_min), abs(x_max)) / 127.5\nq = [round(v / S) for v in values]"),
        ("S divided by 128", "S = max(abs(x_min), abs(x_max)) / 128\nq = [round(v / S) for v in values]"),
        ("S divided by 255", "S = max(abs(x_min), abs(x_max)) / 255\nq = [round(v / S) for v in values]"),
        ("S' = 127 / max|x| (the seed's reciprocal) instead of S", "S = 127 / 2.54\nq = [round(v * S) for v in values]"),
        ("S from |max| only", "S = abs(x_max) / 127\nq = [round(v / S) for v in values]"),
        ("q truncated with int()", _S + "q = [int(v / S) for v in values]"),
        ("q floored", _S + "import math\nq = [math.floor(v / S) for v in values]"),
        ("q ceiled", _S + "import math\nq = [math.ceil(v / S) for v in values]"),
        ("q rounded half away from zero", _S + "import math\n"
         "q = [int(math.copysign(math.floor(abs(v / S) + 0.5), v)) for v in values]"),
        ("q rounded half up (floor(v / S + 0.5))", _S + "import math\nq = [math.floor(v / S + 0.5) for v in values]"),
        ("q with the wrong sign", _S + "q = [-round(v / S) for v in values]"),
        ("q off by one", _S + "q = [round(v / S) + 1 for v in values]"),
        ("q with an asymmetric zero point 128", _S + "q = [round(v / S) + 128 for v in values]"),
        ("q not rounded", _S + "q = [v / S for v in values]"),
        ("q of only the first weight", _S + "q = round(values[0] / S)"),
    ],
    2: [  # 128 and 8
        ("one too few (forgot the lowest code)", "wasted_8bit, wasted_4bit = 127, 7"),
        ("one too many (counted code 0)", "wasted_8bit, wasted_4bit = 129, 9"),
        ("all codes", "wasted_8bit, wasted_4bit = 256, 16"),
        ("swapped", "wasted_8bit, wasted_4bit = 8, 128"),
        ("8-bit right, 4-bit off by one", "wasted_8bit, wasted_4bit = 128, 7"),
        ("none wasted", "wasted_8bit, wasted_4bit = 0, 0"),
        ("as fractions", "wasted_8bit, wasted_4bit = 0.5, 0.5"),
    ],
    3: [  # N*K + N*M = 6144
        ("the row sums only (N*K)", "extra_ops = N * K"),
        ("the multiply-adds only (N*M)", "extra_ops = N * M"),
        ("the naive triple loop (N*K*M)", "extra_ops = N * K * M"),
        ("the weight-sum term (M*K + M)", "extra_ops = M * K + M"),
        ("zero: folded into the bias", "extra_ops = 0"),
        ("K - 1 adds per row sum", "extra_ops = N * (K - 1) + N * M"),
        ("the row sums per output (N*K*M adds) plus N*M", "extra_ops = N * K * M + N * M"),
        ("N*(K + M) off by one", "extra_ops = N * (K + M) + 1"),
        ("K + M (per sample, not per call)", "extra_ops = K + M"),
    ],
}
