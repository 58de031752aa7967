"""Tests for qlib.schemes: named schemes, level counting, zero-point expansion and cost."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import qlib
from qlib.schemes import (
    SCHEMES,
    compare_schemes,
    evaluate_scheme,
    format_scheme_table,
    levels_hit,
    reachable_levels,
    scheme_qparams,
    wasted_levels,
    zero_point_cost,
    zero_point_expansion,
)

# ----------------------------------------------------------------------------- scheme_qparams
SEED_X = np.array([-1.8, -1.0, 0.0, 0.5])


def test_symmetric_seed_example_by_hand():
    qp = scheme_qparams(SEED_X, "symmetric")
    assert qp.scale == pytest.approx(1.8 / 127)
    assert (qp.zero_point, qp.qmin, qp.qmax) == (0, -128, 127)
    # -1.8/S = -127, -1/S = -70.56 -> -71, 0.5/S = 35.28 -> 35
    assert qlib.quantize(SEED_X, qp).tolist() == [-127, -71, 0, 35]


def test_pytorch_rule_divides_by_127_5_and_uses_code_minus_128():
    qp = scheme_qparams(SEED_X, "symmetric_pytorch")
    assert qp.scale == pytest.approx(1.8 / 127.5)
    # -1.8 / S = -127.5 exactly-ish -> -128 (half to even), the code /127 never reaches
    assert qlib.quantize(SEED_X, qp).tolist()[0] == -128


def test_pytorch_rule_clips_plus_max_by_half_a_step():
    x = np.array([-1.0, 1.0])
    qp = scheme_qparams(x, "symmetric_pytorch")
    q = qlib.quantize(x, qp)
    assert q.tolist() == [-128, 127]  # +1/S = 127.5 -> 128, clamped to 127
    assert qlib.fake_quantize(x, qp)[1] == pytest.approx(127 / 127.5)


def test_narrow_range_codes():
    qp = scheme_qparams(np.array([-1.0, 1.0]), "symmetric_narrow")
    assert (qp.qmin, qp.qmax, qp.zero_point) == (-127, 127, 0)
    assert qp.scale == pytest.approx(1 / 127)


def test_asymmetric_matches_seed_codes():
    qp = scheme_qparams(SEED_X, "asymmetric")
    assert qp.zero_point == 200
    assert qlib.quantize(SEED_X, qp).tolist() == [0, 89, 200, 255]


def test_signed_asymmetric_is_the_unsigned_grid_shifted_by_128():
    x = np.random.default_rng(1).normal(size=500)
    qu, qs = scheme_qparams(x, "asymmetric"), scheme_qparams(x, "asymmetric_signed")
    assert qu.scale == qs.scale and qs.zero_point == qu.zero_point - 128
    cu = qlib.quantize(x, qu).astype(np.int64)
    cs = qlib.quantize(x, qs).astype(np.int64)
    np.testing.assert_array_equal(cu - 128, cs)
    np.testing.assert_array_equal(qlib.fake_quantize(x, qu), qlib.fake_quantize(x, qs))


def test_relu_data_gets_zero_point_zero_unsigned_and_minus_128_signed():
    x = np.array([0.0, 0.3, 2.0])
    assert scheme_qparams(x, "asymmetric").zero_point == 0
    assert scheme_qparams(x, "asymmetric_signed").zero_point == -128


def test_zero_width_range_is_legal():
    x = np.zeros(10)
    for s in SCHEMES:
        r = evaluate_scheme(x, s, bits=8)
        assert r.mse == 0.0 and r.reachable == 1 and r.wasted == 255


@pytest.mark.parametrize("bad", ["sym", "", None, "Symmetric"])
def test_bad_scheme_name(bad):
    with pytest.raises(ValueError, match="scheme"):
        scheme_qparams(np.ones(3), bad)


# ----------------------------------------------------------------------------- levels
def test_reachable_levels_by_hand():
    qp = qlib.qparams_from_range(-1.0, 1.0, bits=8, symmetric=True)  # S = 1/127
    assert reachable_levels(-1.0, 1.0, qp) == 255  # -127..127, code -128 never reached
    assert wasted_levels(-1.0, 1.0, qp) == 1
    assert reachable_levels(0.0, 0.5, qp) == 65  # round(63.5) = 64 (half to even) -> 0..64


def test_relu_wastes_half_the_codes_under_signed_symmetric():
    for bits in (2, 4, 8, 16):
        qp = qlib.qparams_from_range(0.0, 3.7, bits=bits, symmetric=True)
        assert wasted_levels(0.0, 3.7, qp) == 2 ** (bits - 1)


def test_asymmetric_wastes_nothing():
    for lo, hi in ((-1.8, 0.5), (0.0, 3.0), (-4.0, 0.0), (-0.01, 5.0)):
        qp = qlib.qparams_from_range(lo, hi, bits=8)
        assert wasted_levels(lo, hi, qp) == 0


def test_narrow_range_counts_the_dropped_code_as_wasted():
    qp = qlib.qparams_from_range(-1.0, 1.0, bits=4, symmetric=True, narrow_range=True)
    assert reachable_levels(-1.0, 1.0, qp) == 15 and wasted_levels(-1.0, 1.0, qp) == 1


def test_levels_hit_by_hand():
    qp = qlib.qparams_from_range(0.0, 3.0, bits=8, symmetric=True)
    assert levels_hit(np.array([0.0, 0.0, 3.0, 3.0]), qp) == 2
    assert levels_hit(np.array([0.0, 0.001, 0.002]), qp) == 1  # all round to code 0


def test_level_functions_reject_bad_input():
    qp = qlib.qparams_from_range(-1.0, 1.0, symmetric=True)
    with pytest.raises(ValueError, match="upside down"):
        reachable_levels(1.0, -1.0, qp)
    with pytest.raises(ValueError, match="NaN"):
        reachable_levels(np.nan, 1.0, qp)
    with pytest.raises(ValueError, match="QParams"):
        wasted_levels(0.0, 1.0, (0.1, 0))
    with pytest.raises(ValueError, match="single numbers"):
        reachable_levels(np.array([0.0, 1.0]), 1.0, qp)
    per_channel = qlib.qparams_from_range(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), symmetric=True, axis=0)
    with pytest.raises(ValueError, match="per-tensor"):
        levels_hit(np.ones((2, 3)), per_channel)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 200), elements=st.floats(-1e3, 1e3, allow_subnormal=False)),
       st.sampled_from(list(SCHEMES)), st.integers(2, 12))
def test_level_counts_are_consistent(x, scheme, bits):
    r = evaluate_scheme(x, scheme, bits)
    assert 1 <= r.hit <= r.reachable <= 2**bits
    assert r.reachable + r.wasted == 2**bits
    assert r.mse >= 0.0


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(2, 200), elements=st.floats(0.0, 100.0, allow_subnormal=False)),
       st.integers(2, 12))
def test_nonnegative_data_never_uses_a_negative_symmetric_code(x, bits):
    qp = scheme_qparams(x, "symmetric", bits)
    assert qlib.quantize(x, qp).min() >= 0
    assert wasted_levels(x.min(), x.max(), qp) >= 2 ** (bits - 1)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, st.integers(1, 200), elements=st.floats(-1e3, 1e3, allow_subnormal=False)),
       st.sampled_from(list(SCHEMES)), st.integers(2, 12))
def test_every_scheme_covers_its_data_within_half_a_step(x, scheme, bits):
    # max-abs and min-max ranges contain the data, up to the half step that rounding Z (min-max)
    # or PyTorch's /127.5 (the top value) may cost: no value is ever off by more than S/2
    qp = scheme_qparams(x, scheme, bits)
    err = np.abs(qlib.fake_quantize(x, qp) - x).max()
    assert err <= qp.scale / 2 * (1 + 1e-9) + 1e-12


# ----------------------------------------------------------------------------- comparison table
def test_compare_schemes_default_order_and_table():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    rows = compare_schemes(x, bits=4)
    assert [r.scheme for r in rows] == list(SCHEMES)
    text = format_scheme_table(rows)
    lines = text.splitlines()
    assert len(lines) == 1 + len(SCHEMES)
    assert lines[1].split()[:4] == ["symmetric", "4", "0.42857143", "0"]  # S = 3/7


def test_compare_schemes_bad_input():
    with pytest.raises(ValueError, match="empty"):
        compare_schemes(np.ones(3), [])
    with pytest.raises(ValueError, match="scheme"):
        compare_schemes(np.ones(3), ["minmax"])
    with pytest.raises(ValueError, match="bits"):
        compare_schemes(np.ones(3), bits=1)
    with pytest.raises(ValueError, match="empty"):
        compare_schemes(np.array([]))
    with pytest.raises(ValueError, match="no rows"):
        format_scheme_table([])


def test_inputs_not_mutated():
    x = np.array([-1.0, 0.25, 3.0], np.float32)
    before = x.copy()
    compare_schemes(x)
    np.testing.assert_array_equal(x, before)


# ----------------------------------------------------------------------------- zero-point expansion
def test_expansion_by_hand():
    # (1-1)(3-2) + (2-1)(4-2) = 2 ; (1-1)(5-2) + (2-1)(6-2) = 4
    t = zero_point_expansion(np.array([[1, 2]], np.uint8), np.array([[3, 4], [5, 6]], np.uint8), 1, 2)
    assert t.products.tolist() == [[11, 17]]
    assert t.input_sums.tolist() == [-6] and t.weight_sums.tolist() == [-7, -11] and t.constant == 4
    assert t.total.tolist() == [[2, 4]]


def test_expansion_does_not_wrap_uint8():
    qx = np.array([[0, 255]], np.uint8)
    qw = np.array([[255, 0]], np.uint8)
    t = zero_point_expansion(qx, qw, 200, 200)
    assert t.total.tolist() == [[(0 - 200) * (255 - 200) + (255 - 200) * (0 - 200)]]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 5), st.integers(0, 2**32 - 1),
       st.integers(0, 255), st.integers(0, 255))
def test_expansion_equals_direct_integer_matmul(n, k, m, seed, zx, zw):
    rng = np.random.default_rng(seed)
    qx = rng.integers(0, 256, (n, k)).astype(np.uint8)
    qw = rng.integers(0, 256, (m, k)).astype(np.uint8)
    t = zero_point_expansion(qx, qw, zx, zw)
    direct = (qx.astype(np.int64) - zx) @ (qw.astype(np.int64) - zw).T
    np.testing.assert_array_equal(t.total, direct)


def test_zero_weight_zero_point_kills_the_input_term():
    rng = np.random.default_rng(0)
    t = zero_point_expansion(rng.integers(0, 256, (3, 4)), rng.integers(-127, 128, (2, 4)), 128, 0)
    assert not t.input_sums.any() and t.constant == 0


@pytest.mark.parametrize("qx, qw, zx, zw, msg", [
    (np.ones((2, 3)), np.ones((2, 3), int), 0, 0, "integer codes"),
    (np.ones((2, 3), int), np.ones((2, 4), int), 0, 0, "inner dimensions"),
    (np.ones(3, int), np.ones((2, 3), int), 0, 0, "2-D"),
    (np.ones((2, 3), int), np.ones((2, 3), int), 0.5, 0, "single integer"),
    (np.ones((2, 3), int), np.ones((2, 3), int), 0, np.array([1, 2]), "single integer"),
])
def test_expansion_bad_input(qx, qw, zx, zw, msg):
    with pytest.raises(ValueError, match=msg):
        zero_point_expansion(qx, qw, zx, zw)


# ----------------------------------------------------------------------------- zero-point cost
def test_cost_fc1_by_hand():
    # fc1: K = 64 in, M = 128 out, batch N = 10
    c = zero_point_cost(10, 64, 128, weight_zero_point=True, act_zero_point=True)
    assert c.main_macs == 10 * 128 * 64
    assert c.runtime_extra == 10 * 64 + 10 * 128
    assert c.offline == 128 * 64 + 128 + 128
    assert c.naive_extra == 2 * 10 * 128 * 64


def test_cost_symmetric_weights_is_free_at_run_time():
    c = zero_point_cost(450, 64, 128, weight_zero_point=False, act_zero_point=True)
    assert c.runtime_extra == 0 and c.offline == 128 * 65 and c.naive_extra == 450 * 128 * 64
    c0 = zero_point_cost(450, 64, 128)
    assert (c0.runtime_extra, c0.offline, c0.naive_extra) == (0, 0, 0)


def test_cost_weight_zero_point_only():
    c = zero_point_cost(1, 3, 2, weight_zero_point=True, act_zero_point=False)
    assert (c.main_macs, c.runtime_extra, c.offline, c.naive_extra) == (6, 5, 0, 6)


@pytest.mark.parametrize("args", [(0, 64, 128), (1, -1, 128), (1, 64, 2.5), (True, 64, 128), (1, "64", 128)])
def test_cost_bad_shapes(args):
    with pytest.raises(ValueError, match="positive whole number"):
        zero_point_cost(*args)


# ----------------------------------------------------------------------------- notebook 03 checkers
from qlib import check  # noqa: E402


def test_checkers_accept_right_answers(capsys):
    check.symmetric_scale_by_hand(2.54 / 127, [64, -48, 2])
    check.relu_wasted_levels(128, 8)
    check.zero_point_extra_ops(32 * (128 + 64))
    assert capsys.readouterr().out.count("Correct") == 3


@pytest.mark.parametrize("S, q, hint", [
    (4.44 / 255, [64, -48, 2], "min-max"), (2.54 / 127.5, [64, -48, 2], "PyTorch"),
    (2.54 / 128, [64, -48, 2], "127, not"), (1.90 / 127, [64, -48, 2], "larger magnitude"),
    (2.54 / 127, [63, -47, 2], "int() cuts"), (2.54 / 127, [63, -48, 2], "floor"), (2.54 / 127, [64, -47, 3], "ceil"),
    (2.54 / 127, [64, -48, 3], "tie"), (2.54 / 127, 64, "3 whole numbers"), ("S", [64, -48, 2], "single number"),
])
def test_symmetric_scale_checker_rejects_with_hint(capsys, S, q, hint):
    with pytest.raises(check.ExerciseError):
        check.symmetric_scale_by_hand(S, q)
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("w8, w4, hint", [(127, 8, "full range"), (129, 8, "code 0"), (128, 7, "full range"),
                                          (0, 0, "signed 8-bit codes")])
def test_relu_wasted_checker_rejects_with_hint(capsys, w8, w4, hint):
    with pytest.raises(check.ExerciseError):
        check.relu_wasted_levels(w8, w4)
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [(0, "cannot be folded"), (32 * 64 * 128, "naive"), (32 * 128, "one of the two"),
                                          (64 * 128 + 64, "weight-sum"), (7, "row sums")])
def test_zero_point_checker_rejects_with_hint(capsys, answer, hint):
    with pytest.raises(check.ExerciseError):
        check.zero_point_extra_ops(answer)
    assert hint in capsys.readouterr().out
