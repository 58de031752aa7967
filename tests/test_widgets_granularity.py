"""Notebook 04's widget: compute (lookups) and draw functions at every slider extreme."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import qlib  # noqa: E402
from qlib.granularity import (  # noqa: E402
    GRANULARITIES,
    bn_folded_model,
    effective_bits_per_weight,
    group_size_sweep,
    per_channel_error,
    weight_only_accuracy,
    weight_qparams,
)
from qlib.linear import fake_quantize  # noqa: E402
from qlib.widgets import granularity as wg  # noqa: E402
from widget_checks import cut_off  # noqa: E402

BITS_EXT = (min(wg.BITS), max(wg.BITS))
GROUPS_EXT = (min(wg.GROUPS), max(wg.GROUPS))
SIZES_EXT = (min(wg.GROUP_SIZES), max(wg.GROUP_SIZES))


@pytest.fixture(scope="module")
def setup():
    m, d = qlib.reference_model(), qlib.load_digits()
    fm, _ = bn_folded_model(m, d.X_train)
    cache = wg.precompute_granularity(m, fm, d.X_test, d.y_test, bits=BITS_EXT, groups=GROUPS_EXT,
                                      group_sizes=SIZES_EXT)
    return m, fm, d, cache


def test_slider_ranges_are_what_the_notebook_promises():
    assert wg.BITS == tuple(range(2, 9))
    assert wg.GROUPS[0] == 1 and wg.GROUPS[-1] == 128  # G = 1 (per-tensor) ... G = C of fc1 (per-channel)
    assert all(64 % s == 0 and 128 % s == 0 for s in wg.GROUP_SIZES)  # divides every layer's inputs


@pytest.mark.parametrize("layer", ["fc1", "fc2", "fc3", "fc1 (BN-folded)"])
@pytest.mark.parametrize("bits", BITS_EXT)
@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("extreme", [0, 1])
def test_view_and_draw_at_every_extreme(setup, layer, bits, granularity, extreme):
    m, fm, d, cache = setup
    v = wg.granularity_view(cache, layer, bits, granularity, groups=GROUPS_EXT[extreme], group_size=SIZES_EXT[extreme])
    W = cache.weights[layer]
    C = W.shape[0]
    assert v["sqnr"].shape == (C,) and v["ranges"].shape == (C,)
    # the cached numbers are the ones a direct computation gives
    key = v["key"]
    p = key[1]
    qp = weight_qparams(W, granularity, bits=bits, groups=min(p, C) if granularity == "channel-groups" else None,
                        group_size=p if granularity == "block-wise" else None)
    W_hat = fake_quantize(W, qp)
    np.testing.assert_array_equal(v["sqnr"], per_channel_error(W, W_hat, metric="sqnr_db"))
    assert v["mse"] == pytest.approx(float(np.mean((W_hat.astype(np.float64) - W) ** 2)))
    assert v["effective_bits"] >= bits
    assert 1 <= v["n_scales"] <= W.size
    assert 0.0 <= v["accuracy"] <= 1.0
    html = wg.granularity_readout(v)
    assert f"{v['accuracy']:.2%}" in html and f"{v['effective_bits']:.3f}" in html
    fig = wg.draw_granularity(v)
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert fig.axes[1].get_legend() is not None
    assert fig.get_size_inches()[0] <= 10 and fig.get_size_inches()[1] <= 4
    assert cut_off(fig) == []
    plt.close(fig)


def test_sqnr_axis_holds_every_cached_value(setup):
    cache = setup[3]
    for (layer, bits, key), sq in cache.sqnr.items():
        lo, hi = wg.sqnr_axis(bits)
        finite = sq[np.isfinite(sq)]
        assert finite.size and finite.max() < hi, (layer, bits, key)
    assert wg.sqnr_axis(2) == (-5.0, 6.02 * 2 + 15.0)


def test_layer_view_matches_the_cached_view(setup):
    m, _, _, cache = setup
    for gran in GRANULARITIES:
        a = wg.layer_view(m.linear_layers[1].W, 2, gran, groups=128, group_size=4, name="fc2")
        b = wg.granularity_view(cache, "fc2", 2, gran, groups=128, group_size=4)
        np.testing.assert_array_equal(a["sqnr"], b["sqnr"])
        assert a["mse"] == b["mse"] and a["n_scales"] == b["n_scales"] and a["effective_bits"] == b["effective_bits"]
        assert a["accuracy"] is None and "accuracy" not in wg.granularity_readout(a)
        plt.close(wg.draw_granularity(a))


def test_group_extremes_are_per_tensor_and_per_channel(setup):
    _, _, _, cache = setup
    for layer in ("fc1", "fc1 (BN-folded)"):  # 128 output channels, 64 inputs
        for b in BITS_EXT:
            pt = wg.granularity_view(cache, layer, b, "per-tensor")
            pc = wg.granularity_view(cache, layer, b, "per-channel")
            g1 = wg.granularity_view(cache, layer, b, "channel-groups", groups=1)
            gc = wg.granularity_view(cache, layer, b, "channel-groups", groups=128)
            blk = wg.granularity_view(cache, layer, b, "block-wise", group_size=64)  # = in_features
            np.testing.assert_array_equal(g1["sqnr"], pt["sqnr"])
            np.testing.assert_array_equal(gc["sqnr"], pc["sqnr"])
            np.testing.assert_array_equal(blk["sqnr"], pc["sqnr"])
            assert g1["accuracy"] == pt["accuracy"] and gc["accuracy"] == pc["accuracy"]
            assert gc["n_scales"] == 128 and g1["n_scales"] == 1 and blk["n_scales"] == 128
            assert pc["effective_bits"] == effective_bits_per_weight(b, 64)


def test_accuracies_match_a_direct_evaluation(setup):
    m, fm, d, cache = setup
    v = wg.granularity_view(cache, "fc2", 2, "block-wise", group_size=4)
    assert v["accuracy"] == weight_only_accuracy(m, d.X_test, d.y_test, 2, "block-wise", group_size=4)
    v = wg.granularity_view(cache, "fc1 (BN-folded)", 8, "per-tensor")
    assert v["accuracy"] == weight_only_accuracy(fm, d.X_test, d.y_test, 8, "per-tensor", layers=["fc1"])
    assert v["fp32_accuracy"] == pytest.approx(m.accuracy(d.X_test, d.y_test))


def test_view_bad_inputs(setup):
    cache = setup[3]
    with pytest.raises(ValueError, match="layer"):
        wg.granularity_view(cache, "fc9", 2, "per-tensor")
    with pytest.raises(ValueError, match="precomputed"):
        wg.granularity_view(cache, "fc1", 5, "per-tensor")  # not in this test's reduced grid
    with pytest.raises(ValueError, match="granularity"):
        wg.granularity_view(cache, "fc1", 2, "per-row")


def test_config_key_ignores_the_slider_that_does_not_apply():
    assert wg.config_key("per-tensor", 4, 8) == wg.config_key("per-tensor", 64, 32) == ("per-tensor", None)
    assert wg.config_key("channel-groups", 4, 8) == ("channel-groups", 4)
    assert wg.config_key("block-wise", 4, 8) == ("block-wise", 8)


def test_widget_builds_and_reacts(setup):
    pytest.importorskip("ipywidgets")
    cache = setup[3]
    box = wg.granularity_widget(cache)
    controls = box.children[0].children
    assert [c.description for c in controls] == ["layer", "bits", "granularity", "G (groups)", "group size"]
    html = box.children[1]
    controls[1].value = max(wg.BITS)  # bits slider extreme (8 is in the reduced grid)
    assert "8 bits" in html.value
    controls[2].value = "block-wise"
    controls[4].value = max(wg.GROUP_SIZES)
    assert "group_size = 64" in html.value


def test_sliders_that_do_nothing_are_greyed_out_and_say_when_they_act(setup):
    """In per-tensor mode G and group size changed nothing, without saying so."""
    pytest.importorskip("ipywidgets")
    box = wg.granularity_widget(setup[3])
    _, _, gran, groups, size = box.children[0].children
    assert gran.value == "per-tensor" and groups.disabled and size.disabled
    assert "channel-groups" in groups.tooltip and "block-wise" in size.tooltip
    expected = {"per-tensor": (True, True), "per-channel": (True, True),
                "channel-groups": (False, True), "block-wise": (True, False)}
    for g in GRANULARITIES:
        gran.value = g
        assert (groups.disabled, size.disabled) == expected[g], g
    html = box.children[1].value
    gran.value = "per-tensor"
    assert groups.disabled and size.disabled and box.children[1].value != html
    plt.close("all")


def test_static_figures():
    m = qlib.reference_model()
    W = m.linear_layers[1].W
    fig = wg.draw_channel_ranges({"fc1": m.linear_layers[0].W, "fc2": W})
    assert len(fig.axes) == 2 and all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    plt.close(fig)
    pts = group_size_sweep(W, (3, 4), group_sizes=(4, 128))
    fig = wg.draw_group_size_sweep(pts, reference={"4-bit per-channel": (4.125, pts[-1].mse)})
    assert len(fig.axes[1].get_lines()) == 3 and fig.axes[1].get_legend() is not None
    plt.close(fig)
