"""Notebook 06's widget: compute/draw/readout at every control extreme, plus bad inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qlib.widgets import calibration as wc  # noqa: E402
from widget_checks import cut_off  # noqa: E402


@pytest.fixture(scope="module")
def state():
    return wc.precompute(n_calib=256)


@pytest.mark.parametrize("cal", wc.CALIBRATOR_CHOICES)
@pytest.mark.parametrize("bits", wc.BITS_RANGE)
@pytest.mark.parametrize("pct", [wc.PERCENTILE_CHOICES[0], wc.PERCENTILE_CHOICES[-1]])
def test_compute_at_extremes(state, cal, bits, pct):
    r = wc.compute(state, cal, bits, pct)
    vmax = float(state.values.max())
    assert set(r["thresholds"]) == set(wc.CALIBRATOR_CHOICES)
    for name, t in r["thresholds"].items():
        assert 0.0 < t <= vmax + 1e-12, name
    assert r["thresholds"]["minmax"] == pytest.approx(vmax)
    assert 0.0 <= r["clipped"] < 0.5 and 0.0 <= r["accuracy"] <= 1.0
    assert all(e >= 0 for e in r["tensor_mse"].values())
    # MSE's threshold minimises the tensor MSE among the calibrators (up to its candidate grid)
    assert r["tensor_mse"]["mse"] <= min(r["tensor_mse"].values()) * 1.05
    assert wc.compute(state, cal, bits, pct) is r  # cached


def test_more_bits_less_error_and_higher_percentile_larger_threshold(state):
    lo = wc.compute(state, "minmax", 2, 99.99)["tensor_mse"]["minmax"]
    hi = wc.compute(state, "minmax", 8, 99.99)["tensor_mse"]["minmax"]
    assert hi < lo / 1000
    t = [wc.compute(state, "percentile", 4, p)["thresholds"]["percentile"] for p in wc.PERCENTILE_CHOICES]
    assert all(a <= b for a, b in zip(t, t[1:]))
    assert wc.compute(state, "minmax", 8, 99.99)["accuracy"] >= state.fp32_accuracy - 0.01


@pytest.mark.parametrize("cal", ["minmax", "entropy"])
@pytest.mark.parametrize("bits", wc.BITS_RANGE)
def test_draw_and_readout(state, cal, bits):
    fig = wc.draw(state, cal, bits, 99.99)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() and ax.get_legend() is not None
    assert ax.get_yscale() == "log"
    plt.close(fig)
    html = wc.readout(state, cal, bits, 99.99)
    assert f"A{bits}" in html and "%" in html


def test_widget_builds(state):
    box = wc.widget(state)
    assert len(box.children) == 3
    plt.close("all")


def test_widget_descriptions_are_not_cut(state):
    """"activation bits" was shown as "activation ..." in the default 80 px label."""
    box = wc.widget(state)
    calibrator, bits, percentile = box.children[0].children
    assert bits.description == "activation bits"
    assert all(c.style.description_width == "initial" for c in (calibrator, bits, percentile))
    assert calibrator.layout.width == "max-content"
    plt.close("all")


@pytest.mark.parametrize("cal", wc.CALIBRATOR_CHOICES)
@pytest.mark.parametrize("bits", wc.BITS_RANGE)
def test_figure_labels_inside(state, cal, bits):
    fig = wc.draw(state, cal, bits, wc.PERCENTILE_CHOICES[-1])
    assert cut_off(fig) == []
    plt.close(fig)


@pytest.mark.parametrize("kw", [dict(calibrator="median"), dict(bits=1), dict(bits=9), dict(percentile=97.0)])
def test_bad_controls(state, kw):
    args = dict(calibrator="entropy", bits=4, percentile=99.99)
    args.update(kw)
    with pytest.raises(ValueError):
        wc.compute(state, **args)


def test_bad_tensor():
    with pytest.raises(ValueError, match="tensor"):
        wc.precompute(tensor="conv7", n_calib=64)


def test_values_not_empty(state):
    assert state.values.size == 256 * 128 and np.isfinite(state.values).all()
