"""Tests for qlib.integer: TFLite/gemmlowp vectors, properties, the int8 layer, the integer model."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qlib
from qlib.integer import (
    INT32_MAX,
    INT32_MIN,
    accumulate_expanded,
    accumulator_bound,
    dequantize_multiplier,
    fixed_point_multiply,
    fold_zero_points,
    integer_linear_from_codes,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
    requantize_float,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

int32s = st.integers(INT32_MIN, INT32_MAX)


# ----------------------------------------------------------------------------- quantize_multiplier
# TFLite's quantization_util_test.cc (QuantizeMultiplier) and the list.
TFLITE_VECTORS = [
    (0.0, (0, 0)),
    (0.125, (1073741824, -2)),
    (0.25, (1073741824, -1)),
    (0.5, (1073741824, 0)),
    (0.75, (1610612736, 0)),
    (1.0, (1073741824, 1)),
    (1.25, (1342177280, 1)),
    (2.0, (1073741824, 2)),
    (4.0, (1073741824, 3)),
    (2.0**-31, (1073741824, -30)),
    (2.0**-32, (1073741824, -31)),
    (2.0**-33, (0, 0)),
    (2.0**-32 * 0.99, (0, 0)),
]


@pytest.mark.parametrize("M, expected", TFLITE_VECTORS)
def test_quantize_multiplier_tflite_vectors(M, expected):
    assert quantize_multiplier(M) == expected


def test_quantize_multiplier_rounds_up_to_next_power_of_two():
    # q = 1 - 2^-40 rounds to 2^31 in Q31 -> TFLite halves M0 and increments the shift
    assert quantize_multiplier(1 - 2.0**-40) == (1073741824, 1)
    # 0.1 = 0.8 * 2^-3; 0.8 * 2^31 = 1717986918.4 -> 1717986918
    assert quantize_multiplier(0.1) == (1717986918, -3)


def test_quantize_multiplier_vectorized_matches_scalar():
    ms = np.array([0.0, 0.3, 0.75, 1.25, 2.0**-33, 0.001])
    M0, shift = quantize_multiplier(ms)
    assert M0.shape == shift.shape == (6,)
    assert [quantize_multiplier(float(m)) for m in ms] == list(zip(M0.tolist(), shift.tolist()))


@pytest.mark.parametrize("bad", [-0.5, -1e-30, float("nan"), float("inf"), 2.0**31, "0.5", [], [0.5, -0.1]])
def test_quantize_multiplier_bad_input(bad):
    with pytest.raises(ValueError):
        quantize_multiplier(bad)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-32, max_value=2.0**30, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_is_a_q31_approximation(M):
    M0, shift = quantize_multiplier(M)
    assert 2**30 <= M0 <= INT32_MAX
    approx = Fraction(M0) * Fraction(2) ** (shift - 31)
    # half a unit in the last place of a 31-bit mantissa: relative error <= 2^-31
    assert abs(approx - Fraction(M)) <= Fraction(M) * Fraction(1, 2**31)
    assert dequantize_multiplier(M0, shift) == float(approx)


@pytest.mark.parametrize("M", [2**31 - 2.0**-22, 2**31 - 0.5, np.array([0.5, 2**31 - 2.0**-22])])
def test_quantize_multiplier_refuses_what_would_need_shift_32(M):
    """M0 rounds up to 2^31 here; the carry would give shift 32, which no kernel accepts
    (before the fix quantize_multiplier(2**31 - 2**-22) returned (2^30, 32))."""
    with pytest.raises(ValueError, match="shift 32"):
        quantize_multiplier(M)


def test_quantize_multiplier_edges_follow_tflite():
    # largest accepted M: q * 2^31 = 2^31 - 1/2 - 2^-22 rounds down to INT32_MAX, shift 31
    assert quantize_multiplier(2**31 - 0.5 - 2.0**-22) == (INT32_MAX, 31)
    # just below a power of two: the Q31 mantissa rounds up to 2^31 -> (2^30, exponent + 1)
    for k in range(-30, 31):
        assert quantize_multiplier(np.nextafter(2.0**k, 0)) == (2**30, k + 1)
    # just below 2^-32: the carry lifts the shift back to -31 before TFLite's flush test
    assert quantize_multiplier(np.nextafter(2.0**-32, 0)) == (2**30, -31)
    # tiny, subnormal and zero multipliers are flushed to (0, 0)
    for m in (2.0**-33, 5e-324, 0.0, -0.0):
        assert quantize_multiplier(m) == (0, 0)
    # integer and numpy scalar input
    assert quantize_multiplier(1) == quantize_multiplier(np.float32(1.0)) == (2**30, 1)


def _accepted_multipliers():
    powers = st.integers(-40, 30).map(lambda k: float(np.nextafter(2.0**k, 0)))
    return st.one_of(
        st.floats(min_value=0.0, max_value=2**31 - 0.5 - 2.0**-22, allow_nan=False, allow_subnormal=True),
        st.floats(min_value=2.0**-34, max_value=2.0**-30),
        st.floats(min_value=0.0, max_value=8.0),
        powers,
    )


@settings(max_examples=500, deadline=None)
@given(_accepted_multipliers(), st.integers(INT32_MIN, INT32_MAX))
def test_every_quantized_multiplier_is_usable_and_within_one(M, x_raw):
    """Whatever M in the accepted domain, the pair is accepted by the kernel and
    multiply_by_quantized_multiplier(x, *quantize_multiplier(M)) is within 1 of round(x * M)."""
    M0, shift = quantize_multiplier(M)
    assert 0 <= M0 <= INT32_MAX and -31 <= shift <= 31
    left = max(shift, 0)
    # x such that x * 2^left fits int32 and |x * M| <= 2^30 (the result fits comfortably)
    lim = min(INT32_MAX >> left, int(Fraction(2**30) / Fraction(M)) if M > 0 else INT32_MAX)
    x = x_raw % (2 * lim + 1) - lim
    target = round(Fraction(x) * Fraction(M))  # Fraction rounds half to even: within 1 either way
    roundings = ("double", "single") if shift <= 30 else ("double",)
    for rounding in roundings:
        got = multiply_by_quantized_multiplier(x, M0, shift, rounding=rounding)
        assert abs(got - target) <= 1, (M, x, rounding, got, target)
    assert multiply_by_quantized_multiplier(0, M0, shift) == 0


# ----------------------------------------------------------------------------- gemmlowp primitives
def test_srdhm_hand_values():
    q30 = 2**30  # 0.5 in Q31
    assert saturating_rounding_doubling_high_mul(q30, q30) == 2**29  # 0.5 * 0.5 = 0.25
    assert saturating_rounding_doubling_high_mul(INT32_MAX, INT32_MAX) == INT32_MAX - 1
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX) == -INT32_MAX
    # ties: +1.5 -> 2, -1.5 -> -1 (nudge 1 - 2^30 for negatives), -2.5 -> -2, 2.5 -> 3
    assert saturating_rounding_doubling_high_mul([3, -3, 5, -5], q30).tolist() == [2, -1, 3, -2]
    # non-ties round to nearest: -7 * 0.5 = -3.5 -> -3 ; -7 * 0.75 = -5.25 -> -5
    assert saturating_rounding_doubling_high_mul(-7, 3 * 2**29) == -5


def test_srdhm_int32_min_squared_saturates():
    out = saturating_rounding_doubling_high_mul(np.array([INT32_MIN, INT32_MIN]), np.array([INT32_MIN, INT32_MIN + 1]))
    assert out.tolist() == [INT32_MAX, INT32_MAX]  # the second one is 2^31 - 1 after rounding: no overflow
    assert out.dtype == np.int32


def test_rounding_divide_by_pot_hand_values():
    assert rounding_divide_by_pot([5, 6, 7, -5, -6, -7], 1).tolist() == [3, 3, 4, -3, -3, -4]
    assert rounding_divide_by_pot([12, 13, 14, -12, -13, -14], 3).tolist() == [2, 2, 2, -2, -2, -2]  # 1.5, 1.625, 1.75
    assert rounding_divide_by_pot([11, -11], 3).tolist() == [1, -1]  # 1.375
    assert rounding_divide_by_pot(INT32_MIN, 31) == -1
    assert rounding_divide_by_pot(INT32_MAX, 31) == 1
    assert rounding_divide_by_pot(-1, 31) == 0
    assert rounding_divide_by_pot(17, 0) == 17
    # per-element exponents broadcast
    assert rounding_divide_by_pot([10, 10, 10], [0, 1, 2]).tolist() == [10, 5, 3]


@settings(max_examples=300, deadline=None)
@given(int32s, st.integers(0, 31))
def test_rounding_divide_by_pot_is_round_half_away(x, e):
    exact = Fraction(x, 2**e)
    got = rounding_divide_by_pot(x, e)
    assert abs(got - exact) <= Fraction(1, 2)
    if abs(got - exact) == Fraction(1, 2):  # a tie goes away from zero
        assert abs(got) > abs(exact)


@pytest.mark.parametrize("bad", [dict(x=2**31, e=1), dict(x=1, e=32), dict(x=1, e=-1), dict(x=1.5, e=1)])
def test_rounding_divide_by_pot_bad_input(bad):
    with pytest.raises(ValueError):
        rounding_divide_by_pot(bad["x"], bad["e"])


# ----------------------------------------------------------------------------- multiply_by_quantized_multiplier
def test_mbqm_hand_values():
    M0, shift = quantize_multiplier(0.25)
    # 6 * 0.25 = 1.5: double rounding goes away from zero, single rounding goes up
    assert multiply_by_quantized_multiplier([6, -6], M0, shift).tolist() == [2, -2]
    assert multiply_by_quantized_multiplier([6, -6], M0, shift, rounding="single").tolist() == [2, -1]
    M0, shift = quantize_multiplier(3.0)  # left shift 2 then * 0.75
    assert multiply_by_quantized_multiplier([7, -7, 0], M0, shift).tolist() == [21, -21, 0]


def test_double_rounding_differs_from_single_rounding():
    # M = (2^30 + 1) / 2^33 (just above 1/8): the double path first rounds x * M to quarters (right
    # shift 2), then to an integer; a value like 2.49 becomes 2.5 then 3, while single rounding gives 2
    M0, shift = 1073741825, -2
    x = np.arange(1, 200_000, dtype=np.int64)
    d = multiply_by_quantized_multiplier(x, M0, shift)
    s = multiply_by_quantized_multiplier(x, M0, shift, rounding="single")
    exact = [Fraction(int(v) * M0, 2**33) for v in x[d != s]]
    assert len(exact) > 0  # double rounding really is different sometimes ...
    # ... and only where the exact product is within one first-stage step (1/2^2) of a tie
    assert all(abs(e - (e.numerator // e.denominator) - Fraction(1, 2)) <= Fraction(1, 8) for e in exact)


@settings(max_examples=500, deadline=None)
@given(st.integers(-(2**24), 2**24), st.floats(min_value=2.0**-31, max_value=4.0))
def test_mbqm_close_to_real_product(x, M):
    """The issue's property: integer x * M within 1 of the real x * M."""
    M0, shift = quantize_multiplier(M)
    for rounding in ("double", "single"):
        got = multiply_by_quantized_multiplier(x, M0, shift, rounding=rounding)
        assert abs(Fraction(got) - Fraction(x) * Fraction(M)) <= 1


@settings(max_examples=300, deadline=None)
@given(int32s, st.integers(2**30, INT32_MAX), st.integers(-31, 0))
def test_mbqm_single_rounding_is_exactly_round_half_up(x, M0, shift):
    exact = Fraction(x * M0, 2 ** (31 - shift))
    got = multiply_by_quantized_multiplier(x, M0, shift, rounding="single")
    assert got == (exact + Fraction(1, 2)).__floor__()


@settings(max_examples=300, deadline=None)
@given(int32s, st.integers(0, INT32_MAX), st.integers(-31, 0))
def test_mbqm_double_rounding_error_bound(x, M0, shift):
    """Two roundings: at most 1/2 (final) + 1/2^(right+1) (first) away from the exact x * M0 / 2^(31-shift)."""
    exact = Fraction(x * M0, 2 ** (31 - shift))
    got = multiply_by_quantized_multiplier(x, M0, shift)
    assert abs(got - exact) <= Fraction(1, 2) + Fraction(1, 2 ** (1 - shift))


def test_mbqm_vectorized_per_channel():
    M = np.array([0.1, 0.5, 1.5])
    M0, shift = quantize_multiplier(M)
    acc = np.array([[100, 100, 100], [-37, 41, -1000]], dtype=np.int32)
    got = multiply_by_quantized_multiplier(acc, M0, shift)
    assert got.tolist() == [[10, 50, 150], [-4, 21, -1500]]  # -3.7, 20.5 (tie, away), -1500
    assert fixed_point_multiply(acc, M).tolist() == got.tolist()


def test_mbqm_does_not_mutate_inputs():
    x = np.array([1, -2, 3], dtype=np.int32)
    M0 = np.array([2**30, 2**30, 2**30])
    x0, m00 = x.copy(), M0.copy()
    multiply_by_quantized_multiplier(x, M0, -1)
    assert np.array_equal(x, x0) and np.array_equal(M0, m00)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=[2**30], M0=2**30, shift=2), "overflows int32"),          # x * 2^2 > INT32_MAX
    (dict(x=[2**31], M0=2**30, shift=0), r"\[-2147483648, 2147483647\]"),  # x not an int32
    (dict(x=[1.5], M0=2**30, shift=0), "integers"),
    (dict(x=[1], M0=-5, shift=0), "M0"),
    (dict(x=[1], M0=2**31, shift=0), "M0"),
    (dict(x=[1], M0=2**30, shift=32), "shift"),
    (dict(x=[1], M0=2**30, shift=-32), "shift"),
    (dict(x=[1], M0=2**30, shift=0, rounding="nearest"), "rounding"),
    (dict(x=[1], M0=2**30, shift=31, rounding="single"), "shift <= 30"),
])
def test_mbqm_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        multiply_by_quantized_multiplier(**kwargs)


def test_fixed_point_multiply_rejects_bad_multiplier():
    with pytest.raises(ValueError, match=">= 0"):
        fixed_point_multiply([1, 2], -0.5)
    with pytest.raises(ValueError, match="finite"):
        fixed_point_multiply([1, 2], float("nan"))


def test_top_level_names():
    assert qlib.quantize_multiplier is quantize_multiplier
    assert qlib.multiply_by_quantized_multiplier is multiply_by_quantized_multiplier


# ----------------------------------------------------------------------------- the int8 layer
rng_layers = st.integers(0, 2**32 - 1)


def _random_layer(seed, relu, per_channel):
    rng = np.random.default_rng(seed)
    K, N = int(rng.integers(1, 40)), int(rng.integers(1, 12))
    x = rng.integers(0, 256, size=(7, K)).astype(np.uint8)
    w = rng.integers(-127, 128, size=(N, K)).astype(np.int8)
    zx = int(rng.integers(0, 256))
    b = rng.integers(-5000, 5000, size=N).astype(np.int32)
    s_in, s_out = rng.uniform(0.001, 0.1), rng.uniform(0.01, 1.0)
    s_w = rng.uniform(0.001, 0.05, size=N) if per_channel else np.full(N, rng.uniform(0.001, 0.05))
    return x, w, zx, b, s_in, s_w, s_out


def test_accumulate_expanded_and_folded_equal_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(5, 9)).astype(np.uint8)
    w = rng.integers(0, 256, size=(4, 9)).astype(np.uint8)  # asymmetric weights, Z_w per channel
    zx, zw, b = 131, np.array([120, 128, 3, 250]), np.array([7, -9, 0, 100])
    direct = (x.astype(np.int64) - zx) @ (w.astype(np.int64) - zw[:, None]).T + b
    assert accumulate_expanded(x, w, zx, zw, b).tolist() == direct.tolist()
    wc, bf = fold_zero_points(w, zx, zw, b)
    assert (x.astype(np.int64) @ wc.T.astype(np.int64) + bf).tolist() == direct.tolist()


def test_uint8_codes_do_not_wrap():
    # uint8 - 200 would wrap around in numpy; the layer casts first
    x = np.array([[0, 255]], np.uint8)
    w = np.array([[1, 1]], np.int8)
    assert accumulate_expanded(x, w, 200).tolist() == [[(0 - 200) + (255 - 200)]]


def test_accumulator_overflow_is_refused():
    assert accumulator_bound(65_000, 255, 128) <= INT32_MAX < accumulator_bound(66_000, 255, 128)
    layer = integer_linear_from_codes("big", np.full((1, 70_000), 127, np.int8), 0, [0], 0, 1e-6, 0, 0, 255)
    with pytest.raises(ValueError, match="overflow"):
        layer.forward(np.full((1, 70_000), 255, np.uint8))
    with pytest.raises(ValueError, match="overflows int32"):
        accumulate_expanded(np.full((1, 70_000), 255, np.uint8), np.full((1, 70_000), 127, np.int8), 0)


def test_layer_bad_inputs():
    layer = integer_linear_from_codes("fc", np.array([[2, -3]], np.int8), 0, [10], 128, 0.5, 0, 0, 255)
    with pytest.raises(ValueError, match="integer codes"):
        layer.forward(np.array([[0.5, 0.25]]))
    with pytest.raises(ValueError, match="takes 2 inputs"):
        layer.forward(np.array([[1, 2, 3]], np.uint8))
    with pytest.raises(ValueError, match=">= 0"):
        integer_linear_from_codes("fc", np.array([[2, -3]], np.int8), 0, [10], 128, -0.5, 0, 0, 255)
    with pytest.raises(ValueError, match="one entry per output"):
        fold_zero_points(np.array([[2, -3]], np.int8), 0, 0, [1, 2])


def test_requantize_relu_clamps_at_zero_point():
    M0, shift = quantize_multiplier(0.5)
    # Z_out = 10: negative accumulators map below 10, the fused ReLU clamps them at 10 (real 0)
    assert requantize([-40, -2, 0, 4, 1000], M0, shift, 10, 0, 255, relu=True).tolist() == [10, 10, 10, 12, 255]
    assert requantize([-40, -2, 0, 4, 1000], M0, shift, 10, 0, 255, relu=False).tolist() == [0, 9, 10, 12, 255]
    assert requantize_float([-40, -2, 0, 4, 1000], 0.5, 10, 0, 255).tolist() == [0, 9, 10, 12, 255]  # -1 ties to even


@settings(max_examples=60, deadline=None)
@given(rng_layers, st.booleans(), st.booleans())
def test_integer_layer_matches_float_reference(seed, relu, per_channel):
    """Integer layer vs the real-valued layer computed in float64 on the same codes: within 1 code."""
    x, w, zx, b, s_in, s_w, s_out = _random_layer(seed, relu, per_channel)
    z_out = 0 if relu else 128
    layer = integer_linear_from_codes("fc", w, 0, b, zx, s_in * s_w / s_out, z_out, 0, 255, relu=relu)
    got = layer.forward(x).astype(np.int64)
    real = ((x.astype(np.float64) - zx) * s_in) @ (w.astype(np.float64) * s_w[:, None]).T + b * s_in * s_w
    if relu:
        real = np.maximum(real, 0.0)
    ref = np.clip(real / s_out + z_out, 0, 255)
    assert np.all(np.abs(got - ref) <= 1.0 + 1e-9)
    # and it equals the float-requantized simulation except within the tie margin
    acc = layer.accumulate(x)
    sim = requantize_float(acc, layer.M, z_out, 0, 255, relu)
    near = qlib.integer.tie_distance(acc * layer.M) <= qlib.integer.tie_margin(acc, layer.M, layer.M0, layer.shift)
    assert np.array_equal(got[~near], sim[~near])
    assert np.all(np.abs(got - sim) <= 1)


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**24), 2**24), st.floats(min_value=1e-6, max_value=1.0))
def test_codes_equal_away_from_ties(acc, M):
    """The issue's agreement rule, one value at a time: away from a tie, integer == simulation."""
    M0, shift = quantize_multiplier(M)
    integer = multiply_by_quantized_multiplier(acc, M0, shift)
    if qlib.integer.tie_distance(acc * M) > qlib.integer.tie_margin(acc, M, M0, shift):
        assert integer == int(np.rint(acc * M))


def test_requantization_chain_attributes_a_tie():
    M0, shift = quantize_multiplier(0.25)
    chain = qlib.integer.requantization_chain([2, 6, 10, -10], 0.25, M0, shift)  # 0.5, 1.5, 2.5, -2.5
    assert chain["simulation"].tolist() == [0, 2, 2, -2]  # half to even
    assert chain["ties away"].tolist() == [1, 2, 3, -3]
    assert chain["integer"].tolist() == [1, 2, 3, -3]
    single = qlib.integer.requantization_chain([-10], 0.25, M0, shift, rounding="single")
    assert single["integer"].tolist() == [-2]  # -2.5 rounds up with single rounding


def test_exact_single_rounding_hand_values():
    assert qlib.integer.exact_single_rounding([3, -3, 5], 2**30, 0).tolist() == [2, -2, 3]  # 1.5, -1.5, 2.5
    assert qlib.integer.exact_single_rounding([7], 2**30, 31).tolist() == [7 * 2**30]  # shift 31: no division


# ----------------------------------------------------------------------------- the whole model
@pytest.fixture(scope="module")
def digits_models():
    from qlib.ptq import quantize_mlp

    d = qlib.load_digits()
    m = qlib.reference_model()
    return d, {pc: quantize_mlp(m, d.X_train[:512], per_channel=pc) for pc in (False, True)}


@pytest.mark.parametrize("per_channel", [False, True])
def test_integer_model_agrees_with_simulation(digits_models, per_channel):
    d, qms = digits_models
    qm = qms[per_channel]
    im = qlib.integer.integerize(qm)
    agree = (im.predict(d.X_test) == qm.predict(d.X_test)).mean()
    assert agree >= 0.995
    assert abs(im.accuracy(d.X_test, d.y_test) - qm.accuracy(d.X_test, d.y_test)) <= 0.005
    rows = qlib.integer.explain_differences(im, qm, d.X_test)
    assert [r["layer"] for r in rows] == ["fc1", "fc2", "fc3"]
    for r in rows:
        # each differing code changed in at least one step of the chain (changes could cancel, never appear from nothing)
        assert r["differ"] <= r["tie rule"] + r["Q31 multiplier"] + r["double rounding"]
        assert r["differ away from ties"] == 0  # every difference sits within the tie margin
        assert r["max |diff|"] <= 1
        assert r["differ"] <= r["near ties"]
    # end to end the final codes differ by at most a few steps (differences can compound)
    diff = np.abs(im.forward_codes(d.X_test).astype(np.int64) - qm.forward_codes(d.X_test).astype(np.int64))
    assert diff.max() <= 3


def test_integer_model_is_integer_only(digits_models):
    d, qms = digits_models
    im = qlib.integer.integerize(qms[True])
    q = im.quantize_input(d.X_test[:20])
    out = im.forward_codes_int(q)
    assert out.dtype == np.int32
    for L in im.layers:
        assert L.w.dtype == np.int32 and L.bias.dtype == np.int32 and L.M0.dtype == np.int64
    with pytest.raises(ValueError, match="integer codes"):
        im.forward_codes_int(d.X_test[:20])  # real values are refused after the input quantizer


def test_single_rounding_model_differs_only_at_exact_ties(digits_models):
    d, qms = digits_models
    qm = qms[True]
    im = qlib.integer.integerize(qm, rounding="single")
    rows = qlib.integer.explain_differences(im, qm, d.X_test)
    for r in rows:  # without double rounding only the Q31 multiplier and exact ties remain
        assert r["differ"] == r["tie rule"] + r["Q31 multiplier"] + r["single-rounding ties"]
        assert r["differ away from ties"] == 0


def test_integerize_bad_input():
    with pytest.raises(ValueError, match="QuantizedMLP"):
        qlib.integer.integerize(qlib.reference_model())


# ----------------------------------------------------------------------------- notebook 08 checkers
def test_checker_multiplier_by_hand(capsys):
    from qlib import check

    check.multiplier_by_hand(1717986918, -3, 0.1)
    for wrong in [(1717986918, 3), (1717986919, -3), (1717986918, -34), (0.8, -3)]:
        with pytest.raises(check.ExerciseError):
            check.multiplier_by_hand(*wrong, 0.1)


def test_checker_neuron_code():
    from qlib import check

    args = dict(x_codes=np.array([130, 120], np.uint8), w_row=np.array([2, -3], np.int8), z_in=128, bias=10,
                M0=2**30, shift=0, z_out=3)
    check.neuron_code(22, **args)  # acc = 38, * 0.5 = 19, + 3
    for wrong in (19, 21, 23, 0):
        with pytest.raises(check.ExerciseError):
            check.neuron_code(wrong, **args)
