"""Notebook 04's interactive demo: bits + granularity + group size -> per-channel error and accuracy.

Everything expensive (every fake-quantized weight, every model accuracy) is computed once
by :func:`precompute_granularity`; a slider move only looks numbers up
(:func:`granularity_view`) and draws them (:func:`draw_granularity`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..granularity import (
    GRANULARITIES,
    effective_bits_per_weight,
    per_channel_error,
    quantize_model_weights,
    weight_qparams,
    weights_per_scale,
)
from ..linear import fake_quantize

__all__ = [
    "BITS",
    "GROUPS",
    "GROUP_SIZES",
    "GranularityCache",
    "config_key",
    "precompute_granularity",
    "granularity_view",
    "layer_view",
    "draw_granularity",
    "sqnr_axis",
    "granularity_readout",
    "granularity_widget",
    "follow_granularity",
    "draw_channel_ranges",
    "draw_group_size_sweep",
]

BITS = (2, 3, 4, 5, 6, 7, 8)
GROUPS = (1, 2, 4, 8, 16, 32, 64, 128)
GROUP_SIZES = (4, 8, 16, 32, 64)
FOLDED_SUFFIX = " (BN-folded)"


def sqnr_axis(bits: int) -> tuple:
    """y-limits of the SQNR panel: ``(-5, 6.02 * bits + 15)`` dB (about 6 dB per bit, plus room for small groups)."""
    return (-5.0, 6.02 * bits + 15.0)


class GranularityCache(NamedTuple):
    """Precomputed numbers: ``weights[view]``, ``sqnr[(view, bits, key)]`` (per channel, dB),
    ``mse[(view, bits, key)]``, ``accuracy[(model, bits, key)]`` with model ``"plain"`` or
    ``"folded"``, and the float accuracies ``fp32[model]``."""

    weights: dict
    sqnr: dict
    mse: dict
    accuracy: dict
    fp32: dict
    folded_layer: str
    bits: tuple
    groups: tuple
    group_sizes: tuple


def config_key(granularity: str, groups: int = 1, group_size: int = 32) -> tuple:
    """The cache key of a configuration: the slider that does not apply is ignored."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity={granularity!r} is not one of {GRANULARITIES}")
    if granularity == "channel-groups":
        return (granularity, int(groups))
    if granularity == "block-wise":
        return (granularity, int(group_size))
    return (granularity, None)


def _all_keys(groups, group_sizes):
    return ([config_key("per-tensor"), config_key("per-channel")]
            + [config_key("channel-groups", groups=g) for g in groups]
            + [config_key("block-wise", group_size=s) for s in group_sizes])


def _qparams(W, bits, key):
    gran, p = key
    if gran == "channel-groups":
        p = min(p, W.shape[0])  # a layer with fewer channels than G is per-channel
    return weight_qparams(W, gran, bits=bits, groups=p if gran == "channel-groups" else None,
                          group_size=p if gran == "block-wise" else None)


def precompute_granularity(model, folded_model, X, y, folded_layer: str = "fc1", bits=BITS,
                           groups=GROUPS, group_sizes=GROUP_SIZES) -> GranularityCache:
    """Compute every number the widget can show.

    Views: each linear layer of ``model`` plus ``folded_layer`` of ``folded_model``.
    Accuracy: ``"plain"`` quantizes all weights of ``model``; ``"folded"`` quantizes only
    ``folded_layer`` of ``folded_model`` (so its effect is seen alone).
    """
    keys = _all_keys(groups, group_sizes)
    weights = {lay.name: lay.W for lay in model.linear_layers}
    folded_view = folded_layer + FOLDED_SUFFIX
    weights[folded_view] = next(lay.W for lay in folded_model.linear_layers if lay.name == folded_layer)
    sqnr, mse, acc = {}, {}, {}
    for view, W in weights.items():
        for b in bits:
            for key in keys:
                W_hat = fake_quantize(W, _qparams(W, b, key))
                sqnr[(view, b, key)] = per_channel_error(W, W_hat, metric="sqnr_db")
                mse[(view, b, key)] = float(np.mean((W_hat.astype(np.float64) - W) ** 2))
    for name, m, layers in (("plain", model, None), ("folded", folded_model, [folded_layer])):
        for b in bits:
            for gran, p in keys:
                acc[(name, b, (gran, p))] = quantize_model_weights(
                    m, b, gran, groups=p if gran == "channel-groups" else None,
                    group_size=p if gran == "block-wise" else None, layers=layers).accuracy(X, y)
    fp32 = {"plain": model.accuracy(X, y), "folded": folded_model.accuracy(X, y)}
    return GranularityCache(weights, sqnr, mse, acc, fp32, folded_layer, tuple(bits), tuple(groups),
                            tuple(group_sizes))


def granularity_view(cache: GranularityCache, layer: str, bits: int, granularity: str,
                     groups: int = 1, group_size: int = 32) -> dict:
    """Look up everything shown for one slider position (no computation beyond a few sums)."""
    if layer not in cache.weights:
        raise ValueError(f"layer={layer!r} is not one of {list(cache.weights)}")
    key = config_key(granularity, groups, group_size)
    if (layer, bits, key) not in cache.sqnr:
        raise ValueError(f"bits={bits}, {key} was not precomputed")
    W = cache.weights[layer]
    model = "folded" if layer.endswith(FOLDED_SUFFIX) else "plain"
    g = min(key[1], W.shape[0]) if granularity == "channel-groups" else groups
    per_scale = weights_per_scale(W.shape, granularity, groups=g, group_size=group_size)
    return {
        "layer": layer, "bits": bits, "key": key,
        "ranges": np.abs(W).max(axis=1),
        "sqnr": cache.sqnr[(layer, bits, key)],
        "sqnr_per_tensor": cache.sqnr[(layer, bits, config_key("per-tensor"))],
        "mse": cache.mse[(layer, bits, key)],
        "effective_bits": effective_bits_per_weight(bits, per_scale),
        "n_scales": int(round(W.size / per_scale)),
        "model": model,
        "accuracy": cache.accuracy[(model, bits, key)],
        "fp32_accuracy": cache.fp32[model],
    }


def layer_view(W, bits: int, granularity: str, groups: int = 1, group_size: int = 32, name: str = "W") -> dict:
    """The weight part of :func:`granularity_view` computed directly for any (out, in) weight (no accuracy)."""
    W = np.asarray(W)
    key = config_key(granularity, groups, group_size)
    pt_hat = fake_quantize(W, _qparams(W, bits, config_key("per-tensor")))
    W_hat = fake_quantize(W, _qparams(W, bits, key))
    g = min(key[1], W.shape[0]) if granularity == "channel-groups" else groups
    per_scale = weights_per_scale(W.shape, granularity, groups=g, group_size=group_size)
    return {
        "layer": name, "bits": bits, "key": key,
        "ranges": np.abs(W).max(axis=1),
        "sqnr": per_channel_error(W, W_hat, metric="sqnr_db"),
        "sqnr_per_tensor": per_channel_error(W, pt_hat, metric="sqnr_db"),
        "mse": float(np.mean((W_hat.astype(np.float64) - W) ** 2)),
        "effective_bits": effective_bits_per_weight(bits, per_scale),
        "n_scales": int(round(W.size / per_scale)),
        "model": None, "accuracy": None, "fp32_accuracy": None,
    }


def _label(key) -> str:
    gran, p = key
    if gran == "channel-groups":
        return f"G = {p} channel groups"
    if gran == "block-wise":
        return f"block-wise, group_size = {p}"
    return gran


def draw_granularity(view: dict):
    """Left: each output channel's range max|W[c]|. Right: its SQNR for the chosen config vs per-tensor."""
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
    n = len(view["ranges"])
    edges = np.arange(n + 1) - 0.5  # one filled staircase: much faster to draw than n bars
    ax0.stairs(view["ranges"], edges, fill=True, color="tab:blue", label="max|W[c]|")
    ax0.set(xlabel="output channel c", ylabel="max |W[c]| (weight units)",
            title=f"{view['layer']}: range of each channel")
    ax0.legend(loc="upper right", fontsize=8)
    lo, hi = sqnr_axis(view["bits"])  # fixed per bit width so granularity moves compare; inf drawn at the top
    ax1.stairs(np.clip(view["sqnr"], lo, hi), edges, baseline=lo, fill=True, color="tab:orange",
               label=_label(view["key"]))
    ax1.stairs(np.clip(view["sqnr_per_tensor"], lo, hi), edges, baseline=None, color="k", lw=1,
               label="per-tensor (reference)")
    ax1.axhline(0.0, color="tab:red", ls=":", lw=1, label="0 dB: error as large as the weights")
    ax1.set_ylim(lo, hi)
    ax1.set(xlabel="output channel c", ylabel="SQNR per channel (dB)",
            title=f"{view['bits']}-bit weights: error per channel (higher is better)")
    ax1.legend(loc="upper right", fontsize=7, framealpha=0.9)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.25)  # tight_layout is slow
    return fig


def granularity_readout(view: dict) -> str:
    """HTML line: accuracy, MSE, scales and effective bits per weight."""
    text = (f"<b>{_label(view['key'])}</b>, {view['bits']} bits: "
            f"weight MSE = {view['mse']:.3e}, {view['n_scales']} scale(s), "
            f"{view['effective_bits']:.3f} bits/weight with fp16 scales")
    if view["accuracy"] is None:
        return text
    what = "all weights quantized" if view["model"] == "plain" else f"only {view['layer']} quantized"
    return text + (f" &nbsp;|&nbsp; test accuracy = <b>{view['accuracy']:.2%}</b> "
                   f"({what}; fp32: {view['fp32_accuracy']:.2%})")


def granularity_widget(cache: GranularityCache):
    """Layer, bits, granularity, G and group size controls over the live per-channel plot."""
    import ipywidgets as w

    from . import interactive_figure

    def pick(options, preferred):
        return preferred if preferred in options else options[0]

    controls = {
        "layer": w.Dropdown(options=list(cache.weights), value=cache.folded_layer + FOLDED_SUFFIX,
                            description="layer"),
        "bits": w.SelectionSlider(options=list(cache.bits), value=pick(cache.bits, 4), description="bits"),
        "granularity": w.Dropdown(options=list(GRANULARITIES), value="per-tensor", description="granularity"),
        "groups": w.SelectionSlider(options=list(cache.groups), value=pick(cache.groups, 8),
                                    description="G (groups)"),
        "group_size": w.SelectionSlider(options=list(cache.group_sizes), value=pick(cache.group_sizes, 32),
                                        description="group size"),
    }
    follow_granularity(controls["granularity"], controls["groups"], controls["group_size"])
    return interactive_figure(lambda **v: draw_granularity(granularity_view(cache, **v)), controls,
                              readout=lambda **v: granularity_readout(granularity_view(cache, **v)))


#: Tooltips of the G and group-size sliders: when they act (they are greyed out otherwise).
GROUPS_TIP = "G (groups) acts only when granularity is channel-groups"
GROUP_SIZE_TIP = "group size acts only when granularity is block-wise"


def follow_granularity(granularity, groups, group_size) -> None:
    """Grey out the slider that does nothing for the chosen granularity, now and on every change:
    G acts only for ``channel-groups``, group size only for ``block-wise`` (both off for per-tensor
    and per-channel). The tooltips say when each acts."""
    groups.tooltip, group_size.tooltip = GROUPS_TIP, GROUP_SIZE_TIP

    def update(_change=None):
        groups.disabled = granularity.value != "channel-groups"
        group_size.disabled = granularity.value != "block-wise"

    granularity.observe(update, names="value")
    update()


def draw_channel_ranges(weights: dict):
    """One panel per weight: sorted per-channel ranges max|W[c]| against the per-tensor max."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(weights), figsize=(10, 3.2), squeeze=False)
    for ax, (name, W) in zip(axes[0], weights.items()):
        r = np.abs(W).reshape(W.shape[0], -1).max(axis=1)
        ax.stairs(np.sort(r)[::-1], np.arange(len(r) + 1), fill=True, color="tab:blue", label="max|W[c]|")
        ax.axhline(r.max(), color="k", ls="--", lw=1, label="per-tensor max")
        ax.set(xlabel="channels, sorted", ylabel="range (weight units)", title=name)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def draw_group_size_sweep(points, reference=None):
    """Weight MSE vs group size (left) and vs effective bits per weight (right), one line per bit width.

    ``points``: :class:`qlib.granularity.SweepPoint` list; ``reference``: optional dict
    ``label -> (effective_bits, mse)`` drawn as markers on the right (e.g. per-channel).
    """
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
    for b in sorted({p.bits for p in points}):
        pts = [p for p in points if p.bits == b]
        gs = [p.group_size for p in pts]
        ax0.plot(gs, [p.mse for p in pts], "o-", label=f"{b}-bit")
        ax1.plot([p.effective_bits for p in pts], [p.mse for p in pts], "o-", label=f"{b}-bit block-wise")
    for label, (eb, err) in (reference or {}).items():
        ax1.plot([eb], [err], "s", ms=7, label=label)
    ax0.set(xscale="log", yscale="log", xlabel="group size (weights per scale)", ylabel="weight MSE",
            title="smaller groups, smaller error")
    ax0.set_xscale("log", base=2)
    ax1.set(yscale="log", xlabel="effective bits per weight (fp16 scales included)", ylabel="weight MSE",
            title="... but each scale costs 16 bits")
    for ax in (ax0, ax1):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
