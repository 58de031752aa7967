"""Notebook 09's interactive demo: bits x granularity x CLE x calibrator -> accuracy on a real network.

:func:`capstone_grid` runs every configuration once in ONNX Runtime (the slow part, done once
per notebook run); a control move only looks the numbers up (:func:`grid_view`), writes the
readout (:func:`capstone_readout`) and draws a small bar chart (:func:`draw_capstone`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import check_choice
from ..onnx_graph import quantize_weights, static_quantize
from ..realmodel import accuracy, agreement, predict_proba, session

__all__ = ["BITS", "GRANULARITIES", "CALIBRATORS", "GRID_CALIBRATORS", "observer_factories", "Grid", "scores", "capstone_grid",
           "grid_view", "capstone_readout", "draw_capstone", "capstone_widget", "draw_channel_ranges",
           "draw_text_lines"]

BITS = (8, 6, 5, 4)
GRANULARITIES = ("per-tensor", "per-channel")
#: "weights only": float activations; the others: static W{bits}A8 with that activation calibrator.
CALIBRATORS = ("weights only", "min-max", "percentile", "KL")
#: What the notebook's grid computes (percentile and KL enter its W8A8 table only, to stay within the time budget).
GRID_CALIBRATORS = ("weights only", "min-max")


def observer_factories(bits: int = 8, percentile: float = 99.99) -> dict:
    """``{calibrator name: factory}`` of qlib observers for activations (asymmetric, unsigned codes,
    as ONNX Runtime's QUInt8 activations)."""
    from .. import observers as o

    return {"min-max": lambda: o.MinMaxObserver(bits=bits),
            "percentile": lambda: o.PercentileObserver(bits=bits, percentile=percentile),
            "KL": lambda: o.EntropyObserver(bits=bits)}


class Grid(NamedTuple):
    """``acc[key]``, ``agree[key]``, ``dp[key]`` (mean largest |p_quant - p_fp32| per input) for keys
    ``(bits, granularity, cle, calibrator)``; ``fp32_acc``; ``n`` images; the ``bits`` and
    ``calibrators`` every (granularity, cle) combination was computed for (the controls' options)."""

    acc: dict
    agree: dict
    dp: dict
    fp32_acc: float
    n: int
    bits: tuple = BITS
    calibrators: tuple = GRID_CALIBRATORS


def scores(p, y, p_ref) -> tuple:
    """``(accuracy, agreement with the reference, mean |Δp|)`` where ``|Δp|`` is the largest
    change of any class probability on an input.

    >>> acc, agree, dp = scores(np.array([[0.9, 0.1], [0.4, 0.6]]), [0, 0], np.array([[0.8, 0.2], [0.6, 0.4]]))
    >>> print(f"{acc:.2f} {agree:.2f} {dp:.2f}")   # |dp| = (0.1 + 0.2) / 2
    0.50 0.50 0.15
    """
    p, p_ref = np.asarray(p), np.asarray(p_ref)
    return accuracy(p, y), agreement(p, p_ref), float(np.abs(p - p_ref).max(axis=1).mean())


def capstone_grid(models: dict, act_qparams: dict, x, y, p_ref, bits=BITS, granularities=GRANULARITIES,
                  calibrators=GRID_CALIBRATORS, known: dict | None = None) -> Grid:
    """Evaluate every configuration in ONNX Runtime (weights max-abs symmetric, per-tensor or per-channel),
    with basic graph optimization (exact fake quantization in float, see :func:`qlib.realmodel.session`).

    ``models[cle]`` (cle False/True) are opset-13 BN-folded graphs; ``act_qparams[(cle, calibrator)]``
    maps activation names to QParams; ``p_ref`` are the fp32 probabilities on ``x``. ``known`` holds
    already measured ``{(bits, granularity, cle, calibrator): scores(...)}`` that are reused."""
    acc, agree, dp = {}, {}, {}
    for cle, model in models.items():
        for b in bits:
            for g in granularities:
                for c in calibrators:
                    key = (b, g, bool(cle), c)
                    if known and key in known:
                        acc[key], agree[key], dp[key] = known[key]
                        continue
                    if c == "weights only":
                        q = quantize_weights(model, b, g)[0]
                    else:
                        q = static_quantize(model, act_qparams[(bool(cle), c)], b, g)
                    acc[key], agree[key], dp[key] = scores(predict_proba(session(q, optimization="basic"), x), y, p_ref)
    return Grid(acc, agree, dp, accuracy(p_ref, y), len(y), tuple(bits), tuple(calibrators))


def grid_view(grid: Grid, bits: int, granularity: str, cle: bool, calibrator: str) -> dict:
    """The numbers for one control setting: accuracy, agreement and |dp| of the chosen configuration,
    plus the accuracy at every bit width for both granularities (for the chart)."""
    check_choice(granularity, "granularity", GRANULARITIES)
    check_choice(calibrator, "calibrator", grid.calibrators)
    if bits not in grid.bits:
        raise ValueError(f"bits={bits!r} was not computed; choose one of {', '.join(map(str, grid.bits))}")
    key = (bits, granularity, bool(cle), calibrator)
    all_bits = sorted(grid.bits)  # the chart's x axis, in the slider's order
    curves = {g: [grid.acc[(b, g, bool(cle), calibrator)] for b in all_bits] for g in GRANULARITIES}
    return {"acc": grid.acc[key], "agree": grid.agree[key], "dp": grid.dp[key], "bits": all_bits,
            "curves": curves, "fp32": grid.fp32_acc, "n": grid.n}


def capstone_readout(grid: Grid, bits=8, granularity="per-channel", cle=False, calibrator="min-max") -> str:
    """HTML line: configuration, accuracy, agreement with fp32, mean |Δp|."""
    v = grid_view(grid, bits, granularity, cle, calibrator)
    acts = "float activations" if calibrator == "weights only" else f"8-bit activations ({calibrator})"
    return (f"<b>W{bits} {granularity}{' + CLE' if cle else ''}, {acts}</b>: accuracy "
            f"<b>{v['acc']:.1%}</b> (fp32 {v['fp32']:.1%}), agreement with fp32 <b>{v['agree']:.1%}</b>, "
            f"mean |Δp| {v['dp']:.4f} on {v['n']} test lines")


def draw_capstone(grid: Grid, bits=8, granularity="per-channel", cle=False, calibrator="min-max"):
    """Accuracy vs weight bits, per-tensor and per-channel side by side; the chosen bar outlined."""
    import matplotlib.pyplot as plt

    v = grid_view(grid, bits, granularity, cle, calibrator)
    fig, ax = plt.subplots(figsize=(8.5, 3.2))
    xs = np.arange(len(v["bits"]))
    for i, (g, accs) in enumerate(v["curves"].items()):
        bars = ax.bar(xs + (i - 0.5) * 0.38, np.array(accs) * 100, width=0.36, label=g,
                      color=("#d62728", "#1f77b4")[i], alpha=0.8)
        for j, b in enumerate(v["bits"]):
            if g == granularity and b == bits:
                bars[j].set_edgecolor("black")
                bars[j].set_linewidth(2.5)
    ax.axhline(v["fp32"] * 100, color="gray", ls="--", lw=1, label=f"fp32 {v['fp32']:.1%}")
    ax.axhline(50, color="gray", ls=":", lw=1, label="coin flip")
    ax.set_xticks(xs, [f"W{b}" for b in v["bits"]])
    ax.set_ylim(0, 105)
    ax.set_xlabel("weight bits")
    ax.set_ylabel("accuracy on test lines (%)")
    acts = "float activations" if calibrator == "weights only" else f"A8, {calibrator}"
    ax.set_title(f"Direction classifier in ONNX Runtime ({acts}{', CLE' if cle else ''})", fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.8, bottom=0.16, top=0.9)   # fixed layout: tight_layout costs a full extra draw
    return fig


def capstone_widget(grid: Grid):
    """Controls (bits, granularity, CLE, calibrator) wired to the precomputed grid."""
    import ipywidgets as w

    from . import interactive_figure

    bits = sorted(grid.bits)  # fewest bits at the left end (Home), most at the right (End), as every slider
    controls = {
        "bits": w.SelectionSlider(options=bits, value=bits[-1], description="weight bits"),
        "granularity": w.ToggleButtons(options=list(GRANULARITIES), value="per-tensor", description="weights"),
        "cle": w.Checkbox(value=False, description="cross-layer equalization"),
        "calibrator": w.Dropdown(options=list(grid.calibrators), value="weights only", description="activations"),
    }
    return interactive_figure(lambda **v: draw_capstone(grid, **v), controls,
                              readout=lambda **v: capstone_readout(grid, **v))


def draw_channel_ranges(ranges: dict, title: str = "Per-output-channel weight ranges"):
    """Box-free strip plot: for each layer (x) the max |w| of every output channel (y, log scale);
    ``ranges`` maps a label ("before folding", ...) to a list of 1-D arrays, one per layer."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.4))
    colors = ("#1f77b4", "#d62728", "#2ca02c")
    for i, (label, per_layer) in enumerate(ranges.items()):
        xs = np.concatenate([np.full(len(r), j + (i - (len(ranges) - 1) / 2) * 0.25) for j, r in enumerate(per_layer)])
        ax.scatter(xs, np.concatenate(per_layer), s=4, color=colors[i % 3], alpha=0.6, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("conv layer (graph order)")
    ax.set_ylabel("channel range max|w| (log)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
    fig.tight_layout()
    return fig


def draw_text_lines(x, labels, p_fp32, p_quant, quant_name: str = "int8", n: int = 6):
    """A few test lines as the network sees them (preprocessed ``x`` (n, 3, 48, 192) in [-1, 1], the
    right padding grey) with the true direction and both models' predictions."""
    import matplotlib.pyplot as plt

    from ..textlines import LABELS

    n = min(n, len(x))
    fig, axes = plt.subplots((n + 1) // 2, 2, figsize=(10, 0.9 * ((n + 1) // 2) + 0.6))
    for ax, i in zip(np.ravel(axes), range(n)):
        ax.imshow(np.asarray(x[i])[0], cmap="gray", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        f, q = int(np.argmax(p_fp32[i])), int(np.argmax(p_quant[i]))
        ok = "✓" if q == labels[i] else "✗"
        ax.set_title(f"true {LABELS[labels[i]]} | fp32 {LABELS[f]} ({p_fp32[i][f]:.2f}) | "
                     f"{quant_name} {LABELS[q]} ({p_quant[i][q]:.2f}) {ok}", fontsize=8)
    for ax in np.ravel(axes)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig
