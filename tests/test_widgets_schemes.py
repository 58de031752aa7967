"""Tests for notebook 03's demo (qlib.widgets.schemes): compute at every control extreme, draw, widget."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qlib.nn import MLP  # noqa: E402
from widget_checks import cut_off  # noqa: E402
from qlib.schemes import SCHEMES  # noqa: E402
from qlib.widgets.schemes import (  # noqa: E402
    DEMO_BITS,
    DISTRIBUTION_LABELS,
    demo_distributions,
    draw_scheme_demo,
    scheme_demo,
    scheme_demo_readout,
    scheme_widget,
)


@pytest.fixture(scope="module")
def data():
    # an untrained MLP is enough here (fast); the notebook uses the trained reference model
    X = np.random.default_rng(0).uniform(0, 1, (40, 64)).astype(np.float32)
    return demo_distributions(model=MLP(seed=0), X=X, n=2000, seed=0)


def test_distributions_shapes_and_signs(data):
    assert set(data) == set(DISTRIBUTION_LABELS)
    assert data["weights"].size == 64 * 128
    assert data["relu"].size == 40 * 128 and data["relu"].min() >= 0.0
    assert data["gaussian"].size == 2000
    out = data["outliers"]
    assert (out >= 8.0).sum() == 2  # 0.1 % of 2000
    assert out.max() <= 12.0
    for v in data.values():
        assert v.dtype == np.float32 and not v.flags.writeable


def test_distributions_deterministic():
    m = MLP(seed=0)
    X = np.ones((3, 64), np.float32)
    a = demo_distributions(model=m, X=X, n=100, seed=3)
    b = demo_distributions(model=m, X=X, n=100, seed=3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("distribution", list(DISTRIBUTION_LABELS))
@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("bits", DEMO_BITS)
def test_compute_at_every_extreme(data, distribution, scheme, bits):
    r = scheme_demo(data, distribution, scheme, bits)
    assert r.grid.size == r.qp.qmax - r.qp.qmin + 1
    assert r.reachable_mask.sum() == r.reachable
    assert r.reachable + r.wasted == 2**bits
    assert 1 <= r.hit <= r.reachable
    assert r.counts.sum() == data[distribution].size
    assert np.isfinite(r.mse) and r.mse >= 0
    assert 0.0 <= r.clipped_fraction <= 1.0
    # real 0 sits exactly on the grid, at code Z
    assert r.grid[r.qp.zero_point - r.qp.qmin] == 0.0
    assert "SQNR" in scheme_demo_readout(r)


def test_relu_symmetric_wastes_half(data):
    for bits in range(DEMO_BITS[0], DEMO_BITS[1] + 1):
        r = scheme_demo(data, "relu", "symmetric", bits)
        assert r.wasted == 2 ** (bits - 1)
        assert not r.reachable_mask[: 2 ** (bits - 1)].any()  # every negative code unused
        assert scheme_demo(data, "relu", "asymmetric", bits).wasted == 0


def test_asymmetric_beats_symmetric_on_relu_by_about_a_bit(data):
    s = scheme_demo(data, "relu", "symmetric", 8).sqnr_db
    a = scheme_demo(data, "relu", "asymmetric", 8).sqnr_db
    assert 5.0 < a - s < 7.0  # half the step: ~6.02 dB


def test_pytorch_rule_clips_only_at_the_positive_end(data):
    r = scheme_demo(data, "gaussian", "symmetric_pytorch", 2)
    x = data["gaussian"]
    lo, hi = r.qp.range
    assert lo <= x.min()  # -max|x| fits on the grid ...
    assert hi < x.max()  # ... +max|x| lies beyond the top code


def test_compute_bad_input(data):
    with pytest.raises(ValueError, match="distribution"):
        scheme_demo(data, "uniform", "symmetric", 4)
    with pytest.raises(ValueError, match="scheme"):
        scheme_demo(data, "relu", "minmax", 4)
    with pytest.raises(ValueError, match="bits"):
        scheme_demo(data, "relu", "symmetric", 1)
    with pytest.raises(ValueError, match="bins"):
        scheme_demo(data, "relu", "symmetric", 4, bins=0)
    with pytest.raises(ValueError, match="demo_distributions"):
        scheme_demo({}, "relu", "symmetric", 4)
    with pytest.raises(ValueError, match="n must be"):
        demo_distributions(model=MLP(seed=0), X=np.ones((2, 64), np.float32), n=3)


@pytest.mark.parametrize("distribution, scheme, bits", [
    ("relu", "symmetric", DEMO_BITS[0]), ("relu", "asymmetric", DEMO_BITS[1]),
    ("outliers", "symmetric_narrow", DEMO_BITS[0]), ("weights", "symmetric_pytorch", DEMO_BITS[1]),
    ("laplace", "asymmetric_signed", DEMO_BITS[1]), ("gaussian", "symmetric_narrow", DEMO_BITS[1]),
])
def test_draw_returns_labelled_figure(data, distribution, scheme, bits):
    r = scheme_demo(data, distribution, scheme, bits)
    fig = draw_scheme_demo(r)
    try:
        (ax,) = fig.axes
        assert ax.get_title() and ax.get_ylabel() and ax.get_xlabel()
        labels = ax.get_legend_handles_labels()[1]
        assert f"reachable codes ({r.reachable})" in labels
        drawn, dropped = int((~r.reachable_mask).sum()), 2**bits - r.grid.size
        assert drawn + dropped == r.wasted  # the legend accounts for every wasted level
        wasted_label = f"wasted codes ({drawn}" + (f" + {dropped} dropped by narrow range" if dropped else "") + ")"
        assert (wasted_label in labels) == (r.wasted > 0)
        assert [t.get_text() for t in ax.get_yticklabels()][-1] == "codes"
        w, h = fig.get_size_inches()
        assert w <= 10 and h <= 4
        assert cut_off(fig) == []  # the x label was cut off at the bottom
    finally:
        plt.close(fig)


def test_widget_builds_and_reacts(data):
    box = scheme_widget(data)
    controls = box.children[0].children
    assert [c.description for c in controls] == ["data", "scheme", "bits"]
    readout = box.children[1]
    assert "symmetric" in readout.value
    controls[1].value = "asymmetric"
    assert "asymmetric" in readout.value and "wasted 0" in readout.value
    controls[2].value = DEMO_BITS[1]
    assert "8 bits" in readout.value
    plt.close("all")


def test_widget_shows_whole_labels_and_options(data):
    """The data dropdown showed "Gaussian + 0.1 % outl..." and the scheme one cut its longest labels."""
    box = scheme_widget(data)
    for c in box.children[0].children:
        assert c.style.description_width == "initial"
    for dropdown in box.children[0].children[:2]:
        assert dropdown.layout.width == "max-content"
    plt.close("all")


def test_towering_zero_bin_is_cut_off_and_labelled(data):
    r = scheme_demo(data, "relu", "asymmetric", 8)
    fig = draw_scheme_demo(r)
    try:
        ax = fig.axes[0]
        texts = [t.get_text() for t in ax.texts]
        assert texts == [f"{r.counts.max():,} \u2191"]
        assert ax.get_ylim()[1] < r.counts.max()
    finally:
        plt.close(fig)


def test_no_cut_off_for_a_bell_curve(data):
    r = scheme_demo(data, "gaussian", "symmetric", 8)
    fig = draw_scheme_demo(r)
    try:
        assert not fig.axes[0].texts and fig.axes[0].get_ylim()[1] >= r.counts.max()
    finally:
        plt.close(fig)
