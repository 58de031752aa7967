"""Classic wrong answers for notebook 01's exercise (see __init__.py for the format)."""

WRONG = {
    1: [  # bytes of 128 x 64 int4 weights, two per byte, no scale: 4096
        ("one byte per weight (int8)", "fc1_int4_bytes = 128 * 64"),
        ("fp32's bytes, or int4's bits (not divided by 8)", "fc1_int4_bytes = 128 * 64 * 4"),
        ("bits of fp32", "fc1_int4_bytes = 128 * 64 * 32"),
        ("divided by 8 instead of 2 (bits of one weight read as weights per byte)", "fc1_int4_bytes = 128 * 64 // 8"),
        ("four weights per byte", "fc1_int4_bytes = 128 * 64 // 4"),
        ("off by one (too many)", "fc1_int4_bytes = 128 * 64 // 2 + 1"),
        ("off by one (too few)", "fc1_int4_bytes = 128 * 64 // 2 - 1"),
        ("the fp32 scale counted although the question leaves it out", "fc1_int4_bytes = 128 * 64 // 2 + 4"),
        ("a float with a fraction", "fc1_int4_bytes = 4096.5"),
        ("the number as a string", "fc1_int4_bytes = '4096'"),
    ],
}
