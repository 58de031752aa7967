"""Notebook 03's demo: a distribution, a scheme and a bit width -> histogram with the code grid.

Three pieces, as for every widget of the course:

* :func:`demo_distributions` builds the data once (reference-model weights, ReLU
  activations, synthetic Gaussian / Laplace / Gaussian with outliers);
* :func:`scheme_demo` is the pure, fast compute step (numbers only, unit tested at every
  slider extreme);
* :func:`draw_scheme_demo` and :func:`scheme_demo_readout` turn its result into a figure
  and an HTML line; :func:`scheme_widget` wires them to ipywidgets.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import as_float_array, check_bits, check_choice
from ..linear import QParams, fake_quantize, quantize
from ..metrics import mse, sqnr_db
from ..schemes import SCHEME_LABELS, SCHEMES, levels_hit, reachable_levels, scheme_qparams

__all__ = [
    "DISTRIBUTION_LABELS",
    "DEMO_BITS",
    "demo_distributions",
    "SchemeDemo",
    "scheme_demo",
    "draw_scheme_demo",
    "scheme_demo_readout",
    "scheme_widget",
]

#: Slider range of the demo: 2..8 bits (beyond 8 the grid is too fine to see).
DEMO_BITS = (2, 8)

DISTRIBUTION_LABELS = {
    "weights": "fc2 weights (reference model)",
    "relu": "ReLU activations (relu1, test set)",
    "gaussian": "Gaussian N(0, 1)",
    "laplace": "Laplace (scale 1/sqrt(2))",
    "outliers": "Gaussian + 0.1 % outliers at +8..+12",
}


def demo_distributions(model=None, X=None, n: int = 20_000, seed: int = 0) -> dict:
    """Build the demo's five data sets once: ``{name: float32 1-D array}``.

    ``model`` (default :func:`qlib.reference_model`) gives the ``"weights"`` (fc2's W) and
    ``"relu"`` (``model.activations(X)["relu1"]``, ``X`` default: the digits test set).
    The synthetic sets have ``n`` samples from ``numpy.random.default_rng(seed)``; Laplace
    uses scale ``1/sqrt(2)`` (variance 1, like the Gaussian); ``"outliers"`` replaces 0.1 %
    of a Gaussian sample by values drawn uniformly from [8, 12] (one-sided, as a few huge
    activations are).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 10:
        raise ValueError(f"n must be a whole number >= 10, got {n!r}")
    if model is None:
        from ..nn import reference_model

        model = reference_model()
    if X is None:
        from ..data import load_digits

        X = load_digits().X_test
    rng = np.random.default_rng(seed)
    gauss = rng.standard_normal(n)
    lap = rng.laplace(0.0, 1.0 / np.sqrt(2.0), n)
    out = rng.standard_normal(n)
    k = max(1, n // 1000)
    out[rng.choice(n, k, replace=False)] = rng.uniform(8.0, 12.0, k)
    fc2 = model.linear_layers[1]
    data = {
        "weights": np.asarray(fc2.W, np.float32).ravel().copy(),
        "relu": np.asarray(model.activations(X)["relu1"], np.float32).ravel().copy(),
        "gaussian": gauss.astype(np.float32),
        "laplace": lap.astype(np.float32),
        "outliers": out.astype(np.float32),
    }
    for v in data.values():
        v.setflags(write=False)
    return data


class SchemeDemo(NamedTuple):
    """Everything the demo shows for one setting of the controls."""

    distribution: str
    scheme: str
    bits: int
    qp: QParams
    grid: np.ndarray  # real value of every code qmin..qmax: S * (q - Z)
    reachable_mask: np.ndarray  # True for codes between q(min(x)) and q(max(x))
    counts: np.ndarray  # histogram of the data
    edges: np.ndarray
    x_min: float
    x_max: float
    reachable: int
    wasted: int  # 2^bits - reachable
    hit: int
    mse: float
    sqnr_db: float
    clipped_fraction: float  # share of values outside the grid's range [S(qmin-Z), S(qmax-Z)]


def scheme_demo(data: dict, distribution: str = "relu", scheme: str = "symmetric", bits: int = 4,
                bins: int = 80) -> SchemeDemo:
    """Quantize ``data[distribution]`` under ``scheme`` at ``bits``; return numbers to draw.

    ``grid[i] = S * (qmin + i - Z)`` is the real value of code ``qmin + i``; a code is
    *reachable* when it lies between the codes of the data's min and max, and
    ``wasted = 2^bits - reachable``. MSE and SQNR compare ``fake_quantize(x)`` with ``x``.
    """
    if not isinstance(data, dict) or not data:
        raise ValueError("data must be the dict returned by demo_distributions()")
    check_choice(distribution, "distribution", tuple(data))
    check_choice(scheme, "scheme", tuple(SCHEMES))
    bits = check_bits(bits)
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive whole number, got {bins!r}")
    x = as_float_array(data[distribution], distribution)
    qp = scheme_qparams(x, scheme, bits)
    lo, hi = float(x.min()), float(x.max())
    codes = np.arange(qp.qmin, qp.qmax + 1, dtype=np.int64)
    grid = qp.scale * (codes - qp.zero_point)
    q_lo, q_hi = quantize(np.array([lo, hi]), qp).astype(np.int64)
    mask = (codes >= q_lo) & (codes <= q_hi)
    reach = reachable_levels(lo, hi, qp)
    x_hat = fake_quantize(x, qp)
    g_lo, g_hi = qp.range
    clipped = float(np.mean((x < g_lo - qp.scale / 2) | (x > g_hi + qp.scale / 2)))
    counts, edges = np.histogram(x, bins=bins)
    return SchemeDemo(distribution, scheme, bits, qp, grid, mask, counts, edges, lo, hi, reach,
                      2**bits - reach, levels_hit(x, qp), mse(x, x_hat), sqnr_db(x, x_hat), clipped)


def scheme_demo_readout(r: SchemeDemo) -> str:
    """One HTML line with S, Z, the code range, levels reached/wasted and the error."""
    return (f"<b>{SCHEME_LABELS[r.scheme]}</b>, {r.bits} bits: S = {r.qp.scale:.5g}, "
            f"Z = {r.qp.zero_point}, codes [{r.qp.qmin}, {r.qp.qmax}] &nbsp;|&nbsp; "
            f"levels reachable {r.reachable} of {2**r.bits}, <b>wasted {r.wasted}</b>, "
            f"hit {r.hit} &nbsp;|&nbsp; MSE = {r.mse:.3e}, <b>SQNR = {r.sqnr_db:.2f} dB</b>")


def draw_scheme_demo(r: SchemeDemo, figsize=(9, 3.6)):
    """Histogram of the data over the quantization grid; reachable codes green, wasted red.

    One axes (cheaper to render than two, so a widget move stays fast): the histogram above
    count 0, a band of code ticks below it, one tick per code at its real value ``S (q - Z)``.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.9)  # room for the x label (was cut off)
    ax.stairs(r.counts, r.edges, fill=True, color="tab:blue", alpha=0.6, label="data histogram")
    # linear counts; one towering bin (ReLU's exact zeros) is cut off and labelled instead
    order = np.sort(r.counts)
    top = order[-1]
    if r.counts.size > 1 and top > 3 * max(order[-2], 1):
        top = order[-2]
        i = int(np.argmax(r.counts))
        ax.annotate(f"{order[-1]:,} \u2191", ((r.edges[i] + r.edges[i + 1]) / 2, 1.12 * top),
                    ha="left", va="center", fontsize=8, xytext=(4, 0), textcoords="offset points")
    top = max(top, 1)
    sparse = (r.counts > 0) & (r.counts < 0.01 * top)  # tails and outliers, invisible as bars
    if sparse.any():
        centers = (r.edges[:-1] + r.edges[1:]) / 2
        ax.plot(centers[sparse], np.full(int(sparse.sum()), 0.04 * top), "|", color="tab:blue", ms=10, mew=1.5,
                label="bins with < 1 % of the top count")
    ax.axvline(r.x_min, color="k", lw=1, ls=":", label="data min / max")
    ax.axvline(r.x_max, color="k", lw=1, ls=":")
    lo, hi = r.qp.range
    ax.axvspan(lo, hi, color="tab:orange", alpha=0.08, label="grid range S(qmin-Z)..S(qmax-Z)")
    ax.axvline(0.0, color="tab:purple", lw=1, label=f"real 0 = code Z = {r.qp.zero_point}")
    # the code band, below count 0
    band_lo, band_hi = -0.3 * top, -0.06 * top
    used, wasted = r.grid[r.reachable_mask], r.grid[~r.reachable_mask]
    lw = 1.5 if r.grid.size <= 32 else 0.6
    ax.vlines(used, band_lo, band_hi, color="tab:green", lw=lw, label=f"reachable codes ({used.size})")
    dropped = 2**r.bits - r.grid.size  # the code a narrow range rules out (not on the grid)
    if wasted.size or dropped:
        extra = f" + {dropped} dropped by narrow range" if dropped else ""
        ax.vlines(wasted, band_lo, band_hi, color="tab:red", lw=lw, label=f"wasted codes ({wasted.size}{extra})")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_ylim(1.05 * band_lo, 1.25 * top)
    ticks = [t for t in ax.get_yticks() if 0 <= t <= 1.25 * top]
    ax.set_yticks(ticks + [(band_lo + band_hi) / 2],
                  [f"{t:,.0f}" for t in ticks] + ["codes"])
    ax.set_ylabel("count")
    ax.set_xlabel("real value (units of the data)")
    ax.set_title(f"{DISTRIBUTION_LABELS.get(r.distribution, r.distribution)}: {r.scheme}, {r.bits} bits "
                 f"-> {r.reachable} of {2**r.bits} levels reachable, {r.wasted} wasted, "
                 f"SQNR {r.sqnr_db:.1f} dB", fontsize=9)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
    pad = 0.03 * (max(hi, r.x_max) - min(lo, r.x_min))
    ax.set_xlim(min(lo, r.x_min) - pad, max(hi, r.x_max) + pad)
    return fig


def scheme_widget(data: dict):
    """The live demo: distribution, scheme and bits controls -> figure and readout."""
    import ipywidgets as w

    from . import interactive_figure

    controls = {
        "distribution": w.Dropdown(options=[(DISTRIBUTION_LABELS[k], k) for k in data if k in DISTRIBUTION_LABELS],
                                   value="relu" if "relu" in data else next(iter(data)),
                                   description="data"),
        "scheme": w.Dropdown(options=[(SCHEME_LABELS[k], k) for k in SCHEMES], value="symmetric",
                             description="scheme"),  # as wide as its longest option
        "bits": w.IntSlider(value=4, min=DEMO_BITS[0], max=DEMO_BITS[1], description="bits"),
    }
    cache: dict = {}

    def compute(distribution, scheme, bits):
        key = (distribution, scheme, bits)
        if key not in cache:
            cache[key] = scheme_demo(data, distribution, scheme, bits)
        return cache[key]

    return interactive_figure(lambda **v: draw_scheme_demo(compute(**v)), controls,
                              readout=lambda **v: scheme_demo_readout(compute(**v)))
