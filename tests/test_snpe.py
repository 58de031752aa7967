"""qlib.snpe: the seed's SNPE examples, AIMET's invariants, bitwidth flags, JSON schema and round trip."""

import datetime
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qlib
from qlib.linear import QParams, dequantize, qparams_from_range, qparams_from_tensor, quantize
from qlib.snpe import (
    SNPE_MIN_RANGE,
    SnpeEncoding,
    check_snpe_bitwidth,
    encoding_entry,
    encoding_entry_v1,
    encoding_to_qparams,
    encodings_json,
    load_encodings,
    qparams_to_encoding,
    snpe_bias_encoding,
    snpe_bitwidths,
    snpe_channel_encodings,
    snpe_encoding,
    snpe_encoding_steps,
    snpe_model_encodings,
    to_encodings_dict,
)

# ----------------------------------------------------------------------------- the seed's examples


def test_seed_example_mixed_signs():
    # S' = 255 / 2.3 = 110.869565, Z = 199.565217 -> 200, encoding [-1.803922, 0.496078]
    s = snpe_encoding_steps(-1.8, 0.5)
    assert 1 / s.delta == pytest.approx(110.869565, abs=1e-6)
    assert s.zero_real == pytest.approx(199.565217, abs=1e-6)
    assert s.zero_point == 200 and s.offset == -200
    enc = snpe_encoding(-1.8, 0.5)
    assert f"{enc.min:.6f} {enc.max:.6f}" == "-1.803922 0.496078"
    assert enc.bitwidth == 8 and enc.is_symmetric is False
    x = np.array([-1.8, -1.0, 0.0, 0.5])
    q = quantize(x, enc.to_qparams())
    np.testing.assert_array_equal(q, [0, 89, 200, 255])
    r = dequantize(q, enc.to_qparams())
    assert [f"{v:.4f}" for v in r] == ["-1.8039", "-1.0012", "0.0000", "0.4961"]


def test_seed_tie_example_and_the_float_trap():
    # [-5.1, 5.1]: S' = 25, Z = 127.5 -> 128, encoding [-5.12, 5.08]
    s = snpe_encoding_steps(-5.1, 5.1)
    assert s.zero_real == 127.50000000000001  # AIMET's order: -min / ((max - min) / 255)
    assert 25.0 * 5.1 == 127.49999999999999  # the seed's order S' * (-min) lands just below the tie
    assert s.zero_point == 128 and s.offset == -128
    enc = snpe_encoding(-5.1, 5.1)
    assert enc.min == pytest.approx(-5.12, abs=1e-12)
    assert enc.max == pytest.approx(5.08, abs=1e-12)
    assert enc.max - enc.min == pytest.approx(10.2, abs=1e-12)


def test_all_positive_and_all_negative_ranges():
    e = snpe_encoding(5.0, 10.0)
    assert (e.min, e.max, e.offset) == (0.0, 10.0, 0)
    assert e.scale == pytest.approx(10 / 255)
    e = snpe_encoding(-20.0, -6.0)
    assert e.min == pytest.approx(-20.0, abs=1e-12) and e.max == pytest.approx(0.0, abs=1e-12)
    assert e.offset == -255
    q = quantize(np.array([-20.0, -6.0, 0.0]), e.to_qparams())
    np.testing.assert_array_equal(q, [0, 179, 255])  # -6 / (20/255) = -76.5 -> half-even -76 -> 255-76


def test_exact_tie_rounds_half_away_like_aimet():
    # [-126.5, 128.5]: delta = 1, -min/delta = 126.5 -> 127 (half-even would give 126)
    s = snpe_encoding_steps(-126.5, 128.5)
    assert s.delta == 1.0 and s.zero_real == 126.5
    assert s.offset == -127
    assert snpe_encoding(-126.5, 128.5).min == -127.0
    s = snpe_encoding_steps(-2.5, 252.5)
    assert s.offset == -3  # 2.5 -> 3 (half-even: 2)


def test_range_smaller_than_min_range():
    e = snpe_encoding(-0.004, 0.003)  # max is pushed to min + 0.01 = 0.006; only max moves
    assert e.scale == pytest.approx(0.01 / 255)
    assert e.offset == -102
    assert e.min == pytest.approx(-0.004) and e.max == pytest.approx(0.006)
    e = snpe_encoding(0.0, 0.0)  # zero-width: legal, [0, 0.01]
    assert (e.min, e.offset) == (0.0, 0) and e.max == pytest.approx(SNPE_MIN_RANGE)
    assert quantize(np.zeros(3), e.to_qparams()).tolist() == [0, 0, 0]
    e = snpe_encoding(-0.02, -0.015)  # all negative, range 0.02 >= 0.01: untouched
    assert e.offset == -255
    # widened to [-0.003, 0], max -> 0.007; -min/delta = 0.003 * 25500 = 76.5, a tie -> 77
    e = snpe_encoding(-0.003, -0.001)
    assert e.offset == -77
    assert e.min == pytest.approx(-77 * 0.01 / 255) and e.max == pytest.approx(0.01 - 77 * 0.01 / 255)


def test_16_bit_encoding():
    e = snpe_encoding(-1.8, 0.5, bitwidth=16)
    assert e.scale == pytest.approx(2.3 / 65535)
    assert e.offset == -round(1.8 / (2.3 / 65535))
    qp = e.to_qparams()
    assert (qp.qmin, qp.qmax, qp.bits) == (0, 65535, 16)


def test_steps_accept_numpy_scalars_and_one_element_arrays():
    a = snpe_encoding(np.float32(-1.8), np.array([0.5]))
    b = snpe_encoding(float(np.float32(-1.8)), 0.5)
    assert a == b


# ----------------------------------------------------------------------------- properties

ranges = st.tuples(st.floats(-1e4, 1e4, allow_nan=False), st.floats(-1e4, 1e4, allow_nan=False)).map(sorted)


@settings(max_examples=150, deadline=None)
@given(ranges, st.sampled_from([8, 16]))
def test_aimet_invariants(r, bits):
    lo, hi = r
    e = snpe_encoding(lo, hi, bits)
    # AIMET's invariant: min + delta * (-offset) == 0, so real 0 is exactly code -offset
    assert e.min + e.scale * (-e.offset) == 0.0
    assert -(2**bits - 1) <= e.offset <= 0
    # encoding-max = encoding-min + (max - min) is AIMET's formula; for all-negative data it can land an
    # ulp-sized hair below 0 (found by hypothesis: [-8161, 0] gives -9.1e-13) while code -offset is still 0.0
    assert e.min <= 0.0 <= e.max + 1e-12 * (e.max - e.min)
    # the width is kept (only the position moves, by less than half a step)
    width = max(max(hi, 0) - min(lo, 0), SNPE_MIN_RANGE)
    assert e.max - e.min == pytest.approx(width, rel=1e-9)
    assert abs(e.min - min(lo, 0)) <= e.scale / 2 * (1 + 1e-9)
    # quantize/dequantize through QParams: 0 round-trips exactly, codes stay on the grid
    qp = e.to_qparams()
    assert dequantize(quantize(np.array([0.0]), qp), qp)[0] == 0.0
    assert qp.zero_point == -e.offset


@settings(max_examples=150, deadline=None)
@given(ranges)
def test_matches_qlib_min_max_away_from_ties(r):
    # snpe_encoding and qparams_from_range share AIMET's order; they differ only at exact ties
    lo, hi = r
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < SNPE_MIN_RANGE:
        return
    e, qp = snpe_encoding(lo, hi), qparams_from_range(lo, hi)
    assert e.scale == pytest.approx(qp.scale, rel=1e-12)
    z = snpe_encoding_steps(lo, hi).zero_real
    if abs(z - np.floor(z) - 0.5) > 1e-9:
        assert e.zero_point == qp.zero_point


@settings(max_examples=100, deadline=None)
@given(ranges, st.sampled_from([8, 16]))
def test_qparams_encoding_round_trip(r, bits):
    e = snpe_encoding(r[0], r[1], bits)
    assert qparams_to_encoding(e.to_qparams()).offset == e.offset
    assert qparams_to_encoding(e.to_qparams()).scale == e.scale


# ----------------------------------------------------------------------------- offsets (design section 3)


def test_offset_is_qmin_minus_zero_point():
    assert qparams_to_encoding(qparams_from_range(-1.0, 1.0, symmetric=True)).offset == -128
    assert qparams_to_encoding(qparams_from_range(-1.0, 1.0, bits=16, symmetric=True)).offset == -32768
    assert qparams_to_encoding(qparams_from_range(-1.0, 1.0, symmetric=True, narrow_range=True)).offset == -127
    assert qparams_to_encoding(qparams_from_range(-1.8, 0.5)).offset == -200
    e = qparams_to_encoding(qparams_from_range(-1.0, 1.0, symmetric=True))
    assert e.is_symmetric and e.min == pytest.approx(-128 / 127) and e.max == pytest.approx(1.0)


def test_symmetric_encoding_back_to_signed_qparams():
    qp = qparams_from_range(-0.3, 1.0, symmetric=True)
    back = encoding_to_qparams(qparams_to_encoding(qp))
    assert (back.qmin, back.qmax, back.zero_point, back.scale) == (-128, 127, 0, qp.scale)
    narrow = qparams_from_range(-0.3, 1.0, symmetric=True, narrow_range=True)
    back = encoding_to_qparams(qparams_to_encoding(narrow))
    assert (back.qmin, back.qmax) == (-127, 127)


def test_per_channel_encodings_are_lists():
    w = np.array([[-1.0, 0.5, 0.2], [0.0, 2.0, 1.0], [-0.1, -0.3, -0.2]])
    qp = qparams_from_tensor(w, symmetric=True, axis=0)
    encs = qparams_to_encoding(qp)
    assert isinstance(encs, list) and len(encs) == 3
    assert [e.offset for e in encs] == [-128, -128, -128]
    np.testing.assert_allclose([e.scale for e in encs], [1 / 127, 2 / 127, 0.3 / 127])
    back = encoding_to_qparams(encs)
    assert back.granularity == "per-channel" and back.axis == 0
    np.testing.assert_array_equal(back.scale, qp.scale)
    chan = snpe_channel_encodings(w, axis=0)
    assert [e.offset for e in chan] == [-170, 0, -255]


def test_bias_encoding_32_bit():
    e = snpe_bias_encoding(0.01, 0.002)
    assert e.scale == pytest.approx(2e-5) and e.offset == -(2**31) and e.bitwidth == 32 and e.is_symmetric
    qp = e.to_qparams()
    assert (qp.qmin, qp.qmax, qp.zero_point) == (-(2**31), 2**31 - 1, 0)
    b = np.array([0.123456, -0.5, 0.0])
    q = quantize(b, qp)
    np.testing.assert_array_equal(q, [6173, -25000, 0])  # 0.123456 / 2e-5 = 6172.8
    per_ch = snpe_bias_encoding(0.01, np.array([0.002, 0.004]))
    assert [x.scale for x in per_ch] == pytest.approx([2e-5, 4e-5])


# ----------------------------------------------------------------------------- bitwidth flags


def test_bitwidth_flags():
    assert snpe_bitwidths() == {"weights": 8, "activations": 8, "bias": 8}
    assert snpe_bitwidths(weights_bitwidth=16, act_bitwidth=16, bias_bitwidth=32) == {
        "weights": 16, "activations": 16, "bias": 32}
    assert snpe_bitwidths(bitwidth=16) == {"weights": 16, "activations": 16, "bias": 16}
    with pytest.raises(ValueError, match="can't be mixed with --act_bitwidth"):
        snpe_bitwidths(bitwidth=8, act_bitwidth=16)
    with pytest.raises(ValueError, match="--bias_bitwidth"):
        snpe_bitwidths(bias_bitwidth=16)
    with pytest.raises(ValueError, match="--weights_bitwidth"):
        snpe_bitwidths(weights_bitwidth=32)
    with pytest.raises(ValueError, match="8 or 16"):
        snpe_bitwidths(bitwidth=32)


@pytest.mark.parametrize("bits", [4, 7, 12, 64, 8.5, True, "8", None])
def test_bad_bitwidths(bits):
    with pytest.raises(ValueError):
        snpe_encoding(-1.0, 1.0, bitwidth=bits)


def test_kind_restricts_bitwidth():
    assert check_snpe_bitwidth(16, "weights") == 16
    with pytest.raises(ValueError, match="activations with 8 or 16 bits"):
        snpe_encoding(-1.0, 1.0, bitwidth=32, kind="activations")
    with pytest.raises(ValueError, match="bias with 8 or 32 bits"):
        check_snpe_bitwidth(16, "bias")
    with pytest.raises(ValueError, match="kind"):
        check_snpe_bitwidth(8, "gradients")


@pytest.mark.parametrize("lo,hi,msg", [
    (1.0, -1.0, "upside down"),
    (float("nan"), 1.0, "NaN"),
    (-1.0, float("inf"), "infinite"),
    ([-1.0, -2.0], [1.0, 2.0], "snpe_channel_encodings"),
    ([], 1.0, "empty"),
])
def test_bad_ranges(lo, hi, msg):
    with pytest.raises(ValueError, match=msg):
        snpe_encoding(lo, hi)


def test_huge_range_is_refused_not_nan():
    # max - min overflows float64: the old code returned min = max = NaN and scale = inf
    with pytest.raises(ValueError, match="overflows"):
        snpe_encoding(-1e308, 1e308)
    e = snpe_encoding(-1e307, 1e307)  # still finite: computed normally
    assert np.isfinite([e.min, e.max, e.scale]).all()


@pytest.mark.parametrize("value", [True, np.bool_(False), np.datetime64("2020-01-01"), np.timedelta64(3, "s"),
                                   datetime.datetime(2020, 1, 1), datetime.timedelta(seconds=1),
                                   np.array([True]), np.array(["2020-01-01"], dtype="datetime64[D]")])
def test_bool_and_datetime_are_not_real_numbers(value):
    # True and np.timedelta64 used to be accepted as 1.0 and 3.0; np.datetime64 as days since 1970
    with pytest.raises(ValueError, match="real number"):
        snpe_encoding(value, 10.0)
    with pytest.raises(ValueError, match="real number"):
        snpe_encoding(-1.0, value)
    with pytest.raises(ValueError, match="real number"):
        snpe_bias_encoding(value, 0.01)


def test_bias_scale_under_or_overflow_is_refused():
    with pytest.raises(ValueError, match="overflows"):
        snpe_bias_encoding(1e300, 1e300)  # was scale = inf, min/max = -inf/inf
    with pytest.raises(ValueError, match="overflows"):
        snpe_bias_encoding(1e-300, 1e-300)  # was scale = 0.0


def test_model_encodings_bad_model():
    with pytest.raises(ValueError, match="qlib MLP"):
        snpe_model_encodings(None, np.zeros((2, 64)))


def test_inputs_not_mutated():
    w = np.array([[-1.0, 0.5], [0.0, 2.0]])
    before = w.copy()
    snpe_channel_encodings(w)
    np.testing.assert_array_equal(w, before)


# ----------------------------------------------------------------------------- encodings JSON


def _check_entry_schema(entry):
    assert set(entry) == {"bitwidth", "dtype", "is_symmetric", "min", "max", "offset", "scale"}
    assert isinstance(entry["bitwidth"], int) and entry["dtype"] == "int"
    assert entry["is_symmetric"] in ("True", "False")
    assert isinstance(entry["offset"], int) and entry["offset"] <= 0
    assert all(isinstance(entry[k], float) for k in ("min", "max", "scale"))
    assert entry["min"] <= 0.0 <= entry["max"] and entry["scale"] > 0


@pytest.fixture(scope="module")
def reference_encodings():
    model = qlib.reference_model()
    x = qlib.load_digits().X_train
    return model, snpe_model_encodings(model, x, bias_bitwidth=32, per_channel=True)


def test_reference_model_json_schema(reference_encodings):
    model, (acts, params) = reference_encodings
    d = json.loads(encodings_json(acts, params))
    assert list(d) == ["version", "activation_encodings", "param_encodings"]
    assert d["version"] == "0.6.1"  # without it AIMET/QNN read the file as the old 0.4.0 layout
    assert list(d["activation_encodings"]) == ["input", "fc1", "relu1", "fc2", "relu2", "fc3"]
    assert list(d["param_encodings"]) == [f"fc{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")]
    for section in (d["activation_encodings"], d["param_encodings"]):
        for name, entries in section.items():
            assert isinstance(entries, list)
            for e in entries:
                _check_entry_schema(e)
    for act in d["activation_encodings"].values():
        assert len(act) == 1 and act[0]["is_symmetric"] == "False" and act[0]["bitwidth"] == 8
    for layer in model.linear_layers:
        w = d["param_encodings"][f"{layer.name}.weight"]
        assert len(w) == layer.out_features  # one entry per output channel
        assert all(e["offset"] == -128 and e["is_symmetric"] == "True" for e in w)
        b = d["param_encodings"][f"{layer.name}.bias"]
        assert len(b) == layer.out_features and all(e["bitwidth"] == 32 for e in b)
    # relu outputs are all >= 0: offset 0; the input pixels are in [0, 1]: scale 1/255
    assert d["activation_encodings"]["relu1"][0]["offset"] == 0
    assert d["activation_encodings"]["input"][0]["scale"] == pytest.approx(1 / 255)


def test_model_encodings_follow_the_flags(reference_encodings):
    model, _ = reference_encodings
    x = qlib.load_digits().X_test[:50]
    acts, params = snpe_model_encodings(model, x)  # SNPE's defaults: 8 bits everywhere, per-tensor
    assert {e.bitwidth for e in acts.values()} == {8} and {e.bitwidth for e in params.values()} == {8}
    assert all(isinstance(e, SnpeEncoding) for e in params.values())
    acts, params = snpe_model_encodings(model, x, bitwidth=16)
    assert {e.bitwidth for e in [*acts.values(), *params.values()]} == {16}
    acts, params = snpe_model_encodings(model, x, act_bitwidth=16)
    assert acts["relu1"].bitwidth == 16 and params["fc1.weight"].bitwidth == 8
    assert acts["relu1"] == snpe_encoding(0.0, float(model.activations(x)["relu1"].max()), 16)
    with pytest.raises(ValueError, match="can't be mixed"):
        snpe_model_encodings(model, x, bitwidth=16, bias_bitwidth=32)


def test_bias_32_scale_is_input_times_weight_scale(reference_encodings):
    model, (acts, params) = reference_encodings
    s_in = acts["relu1"].scale  # fc2's input
    s_w = np.array([e.scale for e in params["fc2.weight"]])
    np.testing.assert_allclose([e.scale for e in params["fc2.bias"]], s_in * s_w, rtol=1e-15)


def test_json_round_trip_gives_same_qparams(reference_encodings, tmp_path):
    _, (acts, params) = reference_encodings
    qps = {**{k: encoding_to_qparams(v) for k, v in acts.items()},
           **{k: encoding_to_qparams(v) for k, v in params.items()}}
    path = tmp_path / "enc.json"
    path.write_text(encodings_json({k: qps[k] for k in acts}, {k: qps[k] for k in params}))
    for source in (path, str(path), path.read_text(), json.loads(path.read_text())):
        back = load_encodings(source)
        assert list(back) == list(qps)
        for name, qp in qps.items():
            b = back[name]
            assert (b.qmin, b.qmax, b.bits, b.axis, b.symmetric) == (qp.qmin, qp.qmax, qp.bits, qp.axis, qp.symmetric)
            np.testing.assert_array_equal(b.scale, qp.scale)
            np.testing.assert_array_equal(b.zero_point, qp.zero_point)
    assert list(load_encodings(path, section="param_encodings")) == list(params)


def test_json_from_plain_qparams_mapping():
    # the exporter takes any mapping name -> QParams (notebook 08 passes its PTQ model's)
    acts = {"x": qparams_from_range(-1.8, 0.5), "y": qparams_from_range(0.0, 6.0, bits=16)}
    params = {"w": qparams_from_tensor(np.array([[1.0, -2.0], [0.5, 0.25]]), symmetric=True, axis=0),
              "b": QParams(scale=1e-5, zero_point=0, qmin=-(2**31), qmax=2**31 - 1, bits=32, symmetric=True)}
    d = to_encodings_dict(acts, params)
    assert d["activation_encodings"]["x"] == [encoding_entry(snpe_encoding(-1.8, 0.5))] or \
        d["activation_encodings"]["x"][0]["offset"] == -200
    assert d["activation_encodings"]["y"][0]["bitwidth"] == 16
    assert len(d["param_encodings"]["w"]) == 2
    assert d["param_encodings"]["b"][0]["offset"] == -(2**31)
    back = load_encodings(d)
    assert back["b"].qmin == -(2**31) and back["b"].zero_point == 0
    np.testing.assert_array_equal(back["w"].scale, params["w"].scale)


def test_exporter_bad_inputs():
    with pytest.raises(ValueError, match="mapping"):
        to_encodings_dict([("x", qparams_from_range(0, 1))], {})
    with pytest.raises(ValueError, match="'x'"):
        to_encodings_dict({"x": 0.5}, {})
    blocked = qparams_from_tensor(np.ones((2, 4)), axis=1, group_size=2)
    with pytest.raises(ValueError, match="block-wise"):
        to_encodings_dict({}, {"w": blocked})


def test_load_duplicate_names_across_sections():
    e = encoding_entry(snpe_encoding(0, 1))
    with pytest.raises(ValueError, match="both sections"):
        load_encodings({"version": "0.6.1", "activation_encodings": {"x": [e]}, "param_encodings": {"x": [e]}})


def test_frozen_encoding():
    e = snpe_encoding(-1.0, 1.0)
    assert isinstance(e, SnpeEncoding)
    with pytest.raises(Exception):
        e.offset = 0


# ----------------------------------------------------------------------------- encodings versions 0.6.1 / 1.0.0

def _mixed_params():
    acts = {"x": qparams_from_range(-1.8, 0.5), "y": qparams_from_range(0.0, 6.0, bits=16)}
    params = {"w": qparams_from_tensor(np.array([[1.0, -2.0], [0.5, 0.25]]), symmetric=True, axis=0),
              "wn": qparams_from_tensor(np.array([[1.0, -2.0], [0.5, 0.25]]), symmetric=True, axis=0,
                                        narrow_range=True),
              "b": QParams(scale=1e-5, zero_point=0, qmin=-(2**31), qmax=2**31 - 1, bits=32, symmetric=True)}
    return acts, params


def _same_qparams(a, b):
    assert (a.qmin, a.qmax, a.bits, a.axis) == (b.qmin, b.qmax, b.bits, b.axis)
    np.testing.assert_array_equal(a.scale, b.scale)
    np.testing.assert_array_equal(a.zero_point, b.zero_point)


@pytest.mark.parametrize("version", ["0.6.1", "1.0.0"])
def test_both_versions_round_trip(version, tmp_path):
    acts, params = _mixed_params()
    text = encodings_json(acts, params, version=version)
    d = json.loads(text)
    assert d["version"] == version
    path = tmp_path / "m.encodings"
    path.write_text(text)
    for source in (text, d, path, str(path)):
        back = load_encodings(source)
        assert list(back) == [*acts, *params]
        for name, qp in {**acts, **params}.items():
            _same_qparams(back[name], qp)


def test_version_100_schema():
    acts, params = _mixed_params()
    d = to_encodings_dict(acts, params, version="1.0.0")
    assert isinstance(d["activation_encodings"], list) and isinstance(d["param_encodings"], list)
    for e in d["activation_encodings"] + d["param_encodings"]:
        assert set(e) == {"name", "dtype", "enc_type", "is_sym", "bw", "scale", "offset"}
        assert e["dtype"] == "INT" and isinstance(e["is_sym"], bool) and isinstance(e["bw"], int)
        assert len(e["scale"]) == len(e["offset"])
    by_name = {e["name"]: e for e in d["param_encodings"]}
    assert by_name["w"]["enc_type"] == "PER_CHANNEL" and by_name["w"]["offset"] == [-128, -128]
    assert by_name["wn"]["offset"] == [-127, -127]
    assert by_name["b"] == {"name": "b", "dtype": "INT", "enc_type": "PER_TENSOR", "is_sym": True, "bw": 32,
                            "scale": [1e-5], "offset": [-(2**31)]}
    x = d["activation_encodings"][0]
    assert (x["name"], x["enc_type"], x["is_sym"], x["offset"]) == ("x", "PER_TENSOR", False, [-200])
    with pytest.raises(ValueError, match="version"):
        to_encodings_dict(acts, params, version="0.4.0")


def test_aimet_style_100_file_with_float_offsets():
    # AIMET 2 writes offsets as floats (-128.0) and adds excluded_layers / quantizer_args
    d = {"version": "1.0.0", "excluded_layers": [], "quantizer_args": {"activation_bitwidth": 8},
         "activation_encodings": [{"name": "input", "dtype": "INT", "enc_type": "PER_TENSOR", "is_sym": False,
                                   "bw": 8, "scale": [0.031], "offset": [0.0]}],
         "param_encodings": [{"name": "conv1.weight", "dtype": "INT", "enc_type": "PER_CHANNEL", "is_sym": True,
                              "bw": 8, "scale": [0.012, 0.015, 0.011], "offset": [-128.0, -128.0, -128.0]}]}
    back = load_encodings(d)
    assert back["input"].zero_point == 0 and back["input"].qmax == 255
    assert back["conv1.weight"].axis == 0 and back["conv1.weight"].qmin == -128
    np.testing.assert_array_equal(back["conv1.weight"].scale, [0.012, 0.015, 0.011])


def _doc061(**changes):
    e = dict(encoding_entry(snpe_encoding(-1.8, 0.5)), **changes)
    return {"version": "0.6.1", "activation_encodings": {"x": [e]}}


def _doc100(**changes):
    e = dict(encoding_entry_v1("x", snpe_encoding(-1.8, 0.5)), **changes)
    return {"version": "1.0.0", "activation_encodings": [e]}


def _sym061(**changes):
    e = dict(encoding_entry(qparams_to_encoding(qparams_from_range(-1.0, 1.0, symmetric=True))), **changes)
    return {"version": "0.6.1", "param_encodings": {"w": [e]}}


@pytest.mark.parametrize("data,msg", [
    # what the old reader did with these in brackets
    ({k: v for k, v in _doc061().items() if k != "version"}, "no 'version'"),        # (read as if 0.6.1)
    (dict(_doc061(), version="0.4.0"), "version '0.4.0' is not supported"),
    (dict(_doc061(), version=1), "version 1 is not supported"),
    (_doc061(scale=0.0), "scale must be > 0"),                       # (ZeroDivisionError in _grid for symmetric)
    (_sym061(scale=0.0), "scale must be > 0"),                       # (ZeroDivisionError)
    (_doc061(offset=-200.9), "offset must be a whole number"),       # (silently truncated to -200)
    (_doc061(bitwidth=8.7), "bitwidth must be a whole number"),      # (silently 8)
    (_doc061(bitwidth="8"), "bitwidth must be a number"),            # (silently 8)
    (_doc061(bitwidth=None), "bitwidth must be a number"),           # (TypeError)
    (_doc061(offset=10**400), "too large"),                          # (OverflowError)
    (_doc061(offset=1e300), "offset = -Z must lie in"),
    (_doc061(bitwidth=12345678901234567890), "not supported"),
    (_doc061(min=1.0, max=-1.0), "min > max"),                       # (accepted)
    (_doc061(min=-1.0), "contradict scale and offset"),              # (accepted)
    (_doc061(max=0.9), "contradict scale and offset"),
    (_doc061(offset=5), "must lie in"),                              # (accepted: a negative zero point)
    (_doc061(offset=-256), "must lie in"),
    (_sym061(offset=0), "offset must be -2\\^7 = -128"),             # (accepted: symmetric with offset 0)
    (_sym061(offset=-100), "offset must be -2\\^7 = -128"),
    (_doc061(scale="0.01"), "scale must be a number"),
    (_doc061(min=None), "min must be a number"),
    (_doc061(dtype="float"), "float"),
    (_doc061(is_symmetric="yes"), "is_symmetric"),
    ({"version": "0.6.1", "activation_encodings": [1]}, "maps tensor names"),
    ({"version": "0.6.1", "activation_encodings": {"x": [3]}}, "must be an object"),
    ({"version": "0.6.1", "activation_encodings": {"x": []}}, "non-empty list"),
    ({"version": "0.6.1", "activation_encodings": {"x": [{"bitwidth": 8}]}}, "misses"),
    ({"version": "0.6.1", "foo": {}}, "activation_encodings"),
    ({"version": "1.0.0", "activation_encodings": {"x": []}}, "is a list of entries"),  # (AttributeError)
    ({"version": "1.0.0", "activation_encodings": [[1, 2]]}, "must be an object"),
    (_doc100(name=None), "needs a 'name'"),
    (_doc100(enc_type="PER_BLOCK"), "block-wise"),
    (_doc100(dtype="FLOAT"), "float"),
    (_doc100(scale=[0.1, 0.2], offset=[-200, -200]), "one scale"),
    (_doc100(scale=0.1), "lists of the same length"),
    (_doc100(offset=[-200.5]), "whole number"),
    (_doc100(is_sym=True), "offset must be -2\\^7"),
    (_doc100(bw=8.5), "whole number"),
    ({"version": "1.0.0", "activation_encodings": [encoding_entry_v1("x", snpe_encoding(0, 1))] * 2},
     "more than once"),
    ("[1, 2]", "JSON object"),
    ("{not json", "JSON"),
    ('{"version": "0.6.1", "activation_encodings": {"x": [{"scale": NaN}]}}', "NaN"),
    ("not json and not a file", "neither JSON text"),                # (FileNotFoundError: treated as a path)
    ("x" * 5000, "neither JSON text"),                               # (OSError: file name too long)
    ("a\0b", "neither JSON text"),                                   # (ValueError from open, by luck)
    (42, "path, JSON text or a dict"),
    (b"{}", "path, JSON text or a dict"),
])
def test_load_refuses_malformed_files(data, msg):
    with pytest.raises(ValueError, match=msg):
        load_encodings(data)


def test_load_missing_file_and_binary_file(tmp_path):
    with pytest.raises(ValueError, match="neither JSON text"):
        load_encodings(tmp_path / "missing.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="cannot read"):
        load_encodings(tmp_path / "bin.json")
    with pytest.raises(ValueError, match="axis"):
        load_encodings(_doc061(), axis="0")


def test_writer_refuses_grids_snpe_cannot_express():
    # an asymmetric grid with fewer than 2^n codes would be read back as the full grid
    narrow_asym = QParams(scale=0.1, zero_point=3, qmin=0, qmax=254, bits=8)
    with pytest.raises(ValueError, match="all 2\\^8 codes"):
        qparams_to_encoding(narrow_asym)
    # unsigned symmetric codes (Z = 128 on [0, 255]) are, for AIMET, an asymmetric encoding with offset -128
    e = qparams_to_encoding(qparams_from_range(0.0, 1.0, symmetric=True, signed=False))
    assert (e.offset, e.is_symmetric) == (-128, False)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6))
_json = st.recursive(_json_leaf, lambda c: st.one_of(st.lists(c, max_size=4),
                                                      st.dictionaries(st.text(max_size=6), c, max_size=4)),
                     max_leaves=20)
_fields061 = ["bitwidth", "dtype", "is_symmetric", "min", "max", "offset", "scale"]
_fields100 = ["name", "dtype", "enc_type", "is_sym", "bw", "scale", "offset"]


def _only_value_error(data):
    try:
        load_encodings(data)
    except ValueError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, st.dictionaries(st.sampled_from(["version", "activation_encodings", "param_encodings"]),
                                        _json, max_size=3)))
def test_fuzz_junk_documents_raise_only_value_error(data):
    _only_value_error(data)
    try:
        text = json.dumps(data)
    except (ValueError, TypeError):
        return
    _only_value_error(text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["0.6.1", "1.0.0"]), st.data())
def test_fuzz_one_corrupted_field_raises_only_value_error(version, data):
    if version == "0.6.1":
        doc = _sym061() if data.draw(st.booleans()) else _doc061()
        section = next(k for k in doc if k != "version")
        entry = next(iter(doc[section].values()))[0]
        fields = _fields061
    else:
        doc = _doc100()
        entry = doc["activation_encodings"][0]
        fields = _fields100
    key = data.draw(st.sampled_from(fields))
    if data.draw(st.booleans()):
        del entry[key]
    else:
        entry[key] = data.draw(_json)
    _only_value_error(doc)
    _only_value_error(json.dumps(doc))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_text_raises_only_value_error(text):
    _only_value_error(text)


@settings(max_examples=100, deadline=None)
@given(ranges, st.sampled_from([8, 16]), st.sampled_from(["0.6.1", "1.0.0"]), st.booleans())
def test_round_trip_property(r, bits, version, symmetric):
    qp = qparams_from_range(r[0], r[1], bits=bits, symmetric=symmetric) if r[1] - r[0] > 1e-3 else \
        qparams_from_range(r[0], r[0] + 1.0, bits=bits, symmetric=symmetric)
    back = load_encodings(encodings_json({"t": qp}, {}, version=version))["t"]
    _same_qparams(back, qp)


def test_activation_names_are_tensor_names_of_the_float_graph(reference_encodings):
    # the encodings of snpe_model_encodings are meant for the float ONNX graph (what an SNPE/QNN
    # converter takes together with --quantization_overrides): every name must be one of its tensors
    onnx = pytest.importorskip("onnx")
    from qlib.export import fp32_to_onnx

    model, (acts, params) = reference_encodings
    g = fp32_to_onnx(model).graph
    tensors = {i.name for i in g.input} | {o for n in g.node for o in n.output}
    assert set(acts) <= tensors, set(acts) - tensors
    assert set(params) <= {t.name for t in g.initializer}
    assert onnx is not None


# ----------------------------------------------------------------------------- notebook 05 checker
def test_checker_snpe_bias_codes_is_exact(capsys):
    # the checker accepted truncation, floor, ceil and rint + 1 (a +-1 tolerance) and refused the
    # right codes as a float array (np.rint's result)
    from qlib import check
    from qlib.data import load_digits
    from qlib.nn import reference_model

    fc1 = reference_model().linear_layers[0]
    x = load_digits().X_train
    s = snpe_encoding(x.min(), x.max()).scale * snpe_encoding(fc1.W.min(), fc1.W.max()).scale
    exact = fc1.b.astype(np.float64) / s
    check.snpe_bias_codes(np.rint(exact))                       # float array of whole numbers: right
    check.snpe_bias_codes(np.rint(exact).astype(np.int32))
    check.snpe_bias_codes(list(np.rint(exact).astype(int)))
    for wrong in (np.trunc(exact), np.floor(exact), np.ceil(exact), np.rint(exact) + 1, np.rint(exact) - 1, exact,
                  None, "codes", np.rint(exact)[:-1], np.rint(exact)[None]):
        with pytest.raises(check.ExerciseError):
            check.snpe_bias_codes(wrong)
    out = capsys.readouterr().out
    assert "Traceback" not in out and out.count("✅") == 3
