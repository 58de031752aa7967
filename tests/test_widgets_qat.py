"""Notebook 07's widget compute/draw functions, at every slider extreme."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import qlib  # noqa: E402
from qlib import qat  # noqa: E402
from qlib.linear import QParams  # noqa: E402
from qlib.widgets import qat as wq  # noqa: E402
from widget_checks import cut_off  # noqa: E402


@pytest.fixture(scope="module")
def grid():
    d = qlib.load_digits()
    return wq.qat_grid(qlib.reference_model(), d, configs=("W4A4", "W2A4"), epochs=2)


def labelled(fig):
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert cut_off(fig) == []  # no label sticks out of the figure (the PNG would cut it off)
    plt.close(fig)


def test_parse_config():
    assert wq.parse_config("W2A8") == (2, 8)
    assert wq.parse_config("W16A16") == (16, 16)
    for bad in ("2A8", "W2", "WxA8", 28):
        with pytest.raises(ValueError, match="W4A8"):
            wq.parse_config(bad)


def test_round_and_derivative():
    r = wq.round_and_derivative(-2, 2, 401)
    assert r["jumps"].tolist() == [-1.5, -0.5, 0.5, 1.5]
    assert (r["derivative"] == 0).all()
    assert np.array_equal(r["round"], np.rint(r["x"]))
    labelled(wq.draw_round_and_derivative())


@pytest.mark.parametrize("bits", [2, 8])
def test_ste_curves_edges_sit_half_a_step_outside_the_range(bits):
    qmin, qmax = qlib.integer_range(bits, signed=True)
    qp = QParams(scale=0.25, zero_point=0, qmin=qmin, qmax=qmax, bits=bits)
    lo, hi = 0.25 * (qmin - 3), 0.25 * (qmax + 3)
    c = wq.ste_curves(qp, lo, hi, n=2001)
    assert c["edges"] == (0.25 * (qmin - 0.5), 0.25 * (qmax + 0.5))
    inside = c["x"][c["clipped"] == 1]
    assert inside.min() >= c["edges"][0] - 1e-12 and inside.max() < c["edges"][1]
    assert (c["plain"] == 1).all()
    assert c["fake"].min() == pytest.approx(c["range"][0]) and c["fake"].max() == pytest.approx(c["range"][1])
    labelled(wq.draw_ste_rules(qp, lo, hi))


def test_ste_curves_bad_inputs():
    qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2)
    with pytest.raises(ValueError, match="lo < hi"):
        wq.ste_curves(qp, 1.0, 1.0)
    pc = QParams(scale=np.array([0.5]), zero_point=np.array([0]), qmin=-2, qmax=1, bits=2, axis=0)
    with pytest.raises(ValueError, match="per-tensor"):
        wq.ste_curves(pc, -1, 1)


@pytest.mark.parametrize("bits,signed", [(2, True), (8, False)])
def test_lsq_factor_curve(bits, signed):
    c = wq.lsq_factor_curve(bits, signed)
    r, f = c["v_over_s"], c["factor"]
    inside = (r > -c["Qn"]) & (r < c["Qp"])
    assert np.all(np.abs(f[inside]) <= 0.5)  # the rounding error never exceeds half a step
    assert np.all(f[r >= c["Qp"]] == c["Qp"]) and np.all(f[r <= -c["Qn"]] == -c["Qn"])
    labelled(wq.draw_lsq_factor(bits, signed))


def test_grid_runs_and_table(grid):
    assert grid["epochs"] == 2
    assert set(grid["runs"]) == {(c, v) for c in ("W4A4", "W2A4") for v in wq.VARIANTS}
    rows = wq.qat_table(grid)
    assert [r["config"] for r in rows] == ["W4A4", "W2A4"]
    w2 = rows[1]
    assert w2["ptq"] == grid["runs"][("W2A4", "min-max + clipped STE")].accuracy[0]
    assert w2["qat"] > w2["ptq"]  # measured: 0.664 -> 0.944 after 2 epochs
    assert wq.qat_table(grid, ptq={"W2A4": 0.5})[1]["ptq"] == 0.5


@pytest.mark.parametrize("config", ["W4A4", "W2A4"])
@pytest.mark.parametrize("variant", list(wq.VARIANTS))
@pytest.mark.parametrize("epochs", [0, 2])
def test_demo_at_every_extreme(grid, config, variant, epochs):
    r = wq.qat_demo_compute(grid, config, variant, epochs)
    assert r["epoch"].tolist() == list(range(epochs + 1))
    run = grid["runs"][(config, variant)]
    assert r["accuracy"].tolist() == run.accuracy[: epochs + 1]
    assert r["final"] == run.accuracy[epochs]
    assert r["loss"].size == epochs
    assert 0 <= r["ptq"] <= 1 and r["fp32"] > 0.95
    html = wq.qat_demo_readout(grid, config, variant, epochs)
    assert config in html and "precomputed" in html
    labelled(wq.draw_qat_demo(grid, config, variant, epochs))


def test_demo_bad_inputs(grid):
    with pytest.raises(ValueError, match="epochs"):
        wq.qat_demo_compute(grid, "W4A4", "LSQ (learned step)", 3)
    with pytest.raises(ValueError, match="epochs"):
        wq.qat_demo_compute(grid, "W4A4", "LSQ (learned step)", -1)
    with pytest.raises(ValueError, match="no precomputed run"):
        wq.qat_demo_compute(grid, "W3A3", "LSQ (learned step)", 1)
    with pytest.raises(ValueError, match="epochs"):
        wq.qat_grid(qlib.reference_model(), qlib.load_digits(), epochs=0)
    with pytest.raises(ValueError, match="variant"):
        wq.qat_grid(qlib.reference_model(), qlib.load_digits(), variants=("adaround",), epochs=1)


def test_training_curves_figure(grid):
    labelled(wq.draw_training_curves(grid))
    labelled(wq.draw_training_curves(grid, "LSQ (learned step)", configs=["W2A4"]))


def test_weight_code_counts_and_histograms(grid):
    lsq = grid["runs"][("W2A4", "LSQ (learned step)")].model.linear_layers[1]
    codes, counts = wq.weight_code_counts(lsq)
    assert codes.tolist() == [-2, -1, 0, 1]
    assert counts.sum() == lsq.W.size
    per_tensor = qat.QATLinear(qlib.nn.Linear(np.array([[1.0, -0.5, 0.2, 0.0]]), np.zeros(1)), 2,
                               per_channel=False)
    assert wq.weight_code_counts(per_tensor)[1].tolist() == [0, 0, 3, 1]  # -0.5 / 1.0 = -0.5 rounds to even 0
    model = qlib.reference_model()
    labelled(wq.draw_weight_histograms(model.linear_layers[1].W, {"QAT LSQ": lsq}, bits=2))


def test_live_widget_at_the_slider_extremes(grid):
    box = wq.qat_widget(grid)
    controls = box.children[0].children
    assert [c.description for c in controls] == ["bits (W/A)", "training", "epochs"]
    config, variant, epochs = controls
    assert config.value == "W2A4" and epochs.max == grid["epochs"] and epochs.min == 0
    for c in config.options:
        for v in variant.options:
            for e in (epochs.min, epochs.max):
                config.value, variant.value, epochs.value = c, v, e
                assert f"after {e} epoch" in box.children[1].value and c in box.children[1].value
    plt.close("all")
