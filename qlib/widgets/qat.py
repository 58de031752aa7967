"""Notebook 07's demos: round() and its derivative, plain vs clipped STE, QAT training curves.

Compute functions are pure and fast (the QAT runs happen once, in :func:`qat_grid`; the
widget only looks results up); draw functions turn their output into matplotlib figures.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import qat
from .._validate import check_choice
from ..linear import QParams, fake_quantize, qparams_from_tensor

__all__ = [
    "CONFIGS",
    "VARIANTS",
    "parse_config",
    "round_and_derivative",
    "draw_round_and_derivative",
    "ste_curves",
    "draw_ste_rules",
    "lsq_factor_curve",
    "draw_lsq_factor",
    "qat_grid",
    "qat_table",
    "qat_demo_compute",
    "qat_demo_readout",
    "draw_qat_demo",
    "qat_widget",
    "draw_training_curves",
    "weight_code_counts",
    "draw_weight_histograms",
]

#: The bit-width configurations of the notebook ("W2A4" = 2-bit weights, 4-bit activations).
CONFIGS = ("W4A4", "W3A3", "W2A8", "W2A4", "W2A2")
#: Training variants: (range method, STE rule).
VARIANTS = {"min-max + clipped STE": ("minmax", "clipped"),
            "min-max + plain STE": ("minmax", "plain"),
            "LSQ (learned step)": ("lsq", "clipped")}


def parse_config(config: str) -> tuple[int, int]:
    """``"W2A4"`` -> ``(2, 4)``: weight bits and activation bits.

    >>> parse_config("W3A8")
    (3, 8)
    """
    if not isinstance(config, str) or not config.startswith("W") or "A" not in config:
        raise ValueError(f"config must look like 'W4A8' (weight bits, activation bits), got {config!r}")
    w, a = config[1:].split("A", 1)
    if not (w.isdigit() and a.isdigit()):
        raise ValueError(f"config must look like 'W4A8' (weight bits, activation bits), got {config!r}")
    return int(w), int(a)


# ----------------------------------------------------------------------------- round()
def round_and_derivative(lo: float = -2.0, hi: float = 2.0, n: int = 801) -> dict:
    """``x``, ``round(x)``, its derivative (0 between jumps) and the jump positions (half-integers).

    >>> r = round_and_derivative(-1, 1, 5)
    >>> r["round"].tolist(), r["jumps"].tolist()
    ([-1.0, -0.0, 0.0, 0.0, 1.0], [-0.5, 0.5])
    """
    x = np.linspace(lo, hi, n)
    jumps = np.arange(np.ceil(lo - 0.5), np.floor(hi - 0.5) + 1) + 0.5
    jumps = jumps[(jumps > lo) & (jumps < hi)]
    return {"x": x, "round": np.rint(x), "derivative": np.zeros_like(x), "jumps": jumps}


def draw_round_and_derivative(lo: float = -2.0, hi: float = 2.0):
    """Two panels: the staircase ``round(x)`` and its derivative (0, undefined at the jumps)."""
    import matplotlib.pyplot as plt

    r = round_and_derivative(lo, hi)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(r["x"], r["x"], "--", color="0.6", label="identity y = x")
    a.step(r["x"], r["round"], where="mid", color="C0", label="round(x)")
    a.set(xlabel="x (real value, in steps)", ylabel="round(x) (integer code)", title="Forward: a staircase")
    a.legend(loc="upper left")
    b.plot(r["x"], r["derivative"], color="C3", label="d round(x)/dx = 0")
    b.plot(r["jumps"], np.zeros_like(r["jumps"]), "o", mfc="white", color="C3", label="jump: undefined")
    for j in r["jumps"]:
        b.axvline(j, color="C3", alpha=0.15)
    b.set(xlabel="x (real value, in steps)", ylabel="derivative", ylim=(-0.5, 1.5),
          title="Backward: zero almost everywhere")
    b.legend(loc="upper left")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- STE rules
def ste_curves(qp: QParams, lo: float, hi: float, n: int = 1201) -> dict:
    """Forward ``fake_quantize(x)`` and the backward masks of both STE rules on a grid of x.

    Also returns the real range ``[S (qmin - Z), S (qmax - Z)]`` and the clipped STE's edges,
    half a step further out.

    >>> qp = QParams(scale=0.5, zero_point=0, qmin=-2, qmax=1, bits=2)
    >>> c = ste_curves(qp, -2, 2, 9)
    >>> c["range"], c["edges"]
    ((-1.0, 0.5), (-1.25, 0.75))
    >>> c["clipped"].tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    """
    if qp.axis is not None:
        raise ValueError("ste_curves draws a per-tensor quantizer (axis=None)")
    if not hi > lo:
        raise ValueError(f"need lo < hi, got lo={lo!r}, hi={hi!r}")
    x = np.linspace(lo, hi, n)
    s, z = qp.scale, qp.zero_point
    return {
        "x": x,
        "fake": fake_quantize(x, qp),
        "plain": qat.ste_mask(x, qp, "plain"),
        "clipped": qat.ste_mask(x, qp, "clipped"),
        "range": (s * (qp.qmin - z), s * (qp.qmax - z)),
        "edges": (s * (qp.qmin - z - 0.5), s * (qp.qmax - z + 0.5)),
    }


def draw_ste_rules(qp: QParams, lo: float, hi: float):
    """Left: the forward staircase and the identity STE pretends; right: both STE gradients."""
    import matplotlib.pyplot as plt

    c = ste_curves(qp, lo, hi)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    a.plot(c["x"], c["x"], "--", color="0.5", label="identity (what STE differentiates)")
    a.plot(c["x"], c["fake"], color="C0", label="fake_quantize(x)")
    a.axvspan(*c["range"], color="C2", alpha=0.08, label="real range of the codes")
    a.set(xlabel="x (real value)", ylabel="output (real value)", title="Forward: fake quantization")
    a.legend(loc="upper left", fontsize=8)
    b.plot(c["x"], c["plain"] + 0.03, color="C1", label="plain STE: 1 everywhere")
    b.plot(c["x"], c["clipped"], color="C0", label="clipped STE (PyTorch)")
    b.plot(c["x"], np.zeros_like(c["x"]) - 0.03, color="C3", alpha=0.6, label="true gradient: 0")
    for e in c["range"]:
        b.axvline(e, color="C2", ls=":", lw=1)
    for e in c["edges"]:
        b.axvline(e, color="C0", ls="--", lw=1)
    b.set(xlabel="x (real value)", ylabel="d output / dx used in backward", ylim=(-0.2, 1.35))
    b.set_title("Backward: dotted = real range, dashed = code edges", fontsize=10)  # 12 pt ran off the figure
    b.legend(loc="center left", fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- LSQ
def lsq_factor_curve(bits: int = 2, signed: bool = True, n: int = 1201) -> dict:
    """LSQ's ``d v_hat / d s`` as a function of ``v / s`` (step s = 1), from ``-Qn - 1.5`` to ``Qp + 1.5``.

    >>> c = lsq_factor_curve(2, True, 5)
    >>> c["v_over_s"].tolist(), c["factor"].tolist()
    ([-3.5, -2.0, -0.5, 1.0, 2.5], [-2.0, -2.0, 0.5, 1.0, 1.0])
    """
    qn, qp = qat.lsq_qrange(bits, signed)
    r = np.linspace(-qn - 1.5, qp + 1.5, n)
    return {"v_over_s": r, "factor": qat.lsq_step_gradient_factor(r, 1.0, bits, signed), "Qn": qn, "Qp": qp}


def draw_lsq_factor(bits: int = 2, signed: bool = True):
    """LSQ's step-size gradient: a saw-tooth inside the range, -Qn and Qp outside."""
    import matplotlib.pyplot as plt

    c = lsq_factor_curve(bits, signed)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(c["v_over_s"], c["factor"], color="C4", label="d v_hat / d s (LSQ)")
    ax.axvspan(-c["Qn"], c["Qp"], color="C2", alpha=0.08, label=f"inside: -Qn = {-c['Qn']} to Qp = {c['Qp']}")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="v / s (value in steps)", ylabel="gradient w.r.t. the step s",
           title=f"LSQ step gradient, {bits}-bit {'signed' if signed else 'unsigned'}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- QAT runs
def qat_grid(model, data, configs=CONFIGS, variants=tuple(VARIANTS), epochs: int = 5, seed: int = 0) -> dict:
    """Run QAT once for every (config, variant) pair; the widget then only looks results up.

    Returns ``{"fp32": accuracy, "epochs": epochs, "runs": {(config, variant): QATResult}}``;
    each run's ``accuracy[0]`` is the untrained quantized model (min-max PTQ for min-max runs).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
    runs = {}
    for config in configs:
        wb, ab = parse_config(config)
        for variant in variants:
            method, rule = VARIANTS[check_choice(variant, "variant", tuple(VARIANTS))]
            runs[(config, variant)] = qat.train_qat(model, data, wb, ab, epochs=int(epochs), rule=rule,
                                                    method=method, seed=seed)
    return {"fp32": model.accuracy(data.X_test, data.y_test), "epochs": int(epochs), "runs": runs}


def qat_table(grid: dict, ptq: dict | None = None) -> list[dict]:
    """One row per config: fp32, PTQ, QAT (min-max, clipped STE) and QAT (LSQ) test accuracy.

    ``ptq`` maps config -> PTQ accuracy (e.g. from ``qlib.ptq``); by default the min-max run's
    starting point (min-max PTQ) is used.
    """
    configs = list(dict.fromkeys(c for c, _ in grid["runs"]))
    rows = []
    for c in configs:
        base = grid["runs"].get((c, "min-max + clipped STE"))
        lsq = grid["runs"].get((c, "LSQ (learned step)"))
        rows.append({
            "config": c,
            "fp32": grid["fp32"],
            "ptq": (ptq or {}).get(c, base.accuracy[0] if base else float("nan")),
            "qat": base.accuracy[-1] if base else float("nan"),
            "lsq": lsq.accuracy[-1] if lsq else float("nan"),
        })
    return rows


def _run(grid, config, variant):
    key = (config, variant)
    if key not in grid["runs"]:
        have = sorted({c for c, _ in grid["runs"]}), sorted({v for _, v in grid["runs"]})
        raise ValueError(f"no precomputed run for {config!r} with {variant!r}; available: {have[0]} x {have[1]}")
    return grid["runs"][key]


def qat_demo_compute(grid: dict, config: str, variant: str, epochs: int) -> dict:
    """The widget's numbers: the test-accuracy and loss curves up to ``epochs`` and the reference lines.

    Runs are deterministic and training for fewer epochs is a prefix of a longer run, so the
    curve for ``epochs`` is the first ``epochs + 1`` points of the precomputed run.
    """
    run = _run(grid, config, variant)
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or not 0 <= epochs <= grid["epochs"]:
        raise ValueError(f"epochs must be a whole number from 0 to {grid['epochs']}, got {epochs!r}")
    ptq_run = grid["runs"].get((config, "min-max + clipped STE"), run)
    acc = np.asarray(run.accuracy[: epochs + 1])
    return {
        "epoch": np.arange(epochs + 1),
        "accuracy": acc,
        "loss": np.asarray(run.loss[:epochs]),
        "final": float(acc[-1]),
        "ptq": float(ptq_run.accuracy[0]),
        "fp32": float(grid["fp32"]),
        "max_epochs": grid["epochs"],
    }


def qat_demo_readout(grid: dict, config: str, variant: str, epochs: int) -> str:
    """HTML line under the controls: accuracy after ``epochs`` vs PTQ and fp32."""
    r = qat_demo_compute(grid, config, variant, epochs)
    return (f"<b>{config}</b>, {variant}: test accuracy after {epochs} epoch(s) <b>{100 * r['final']:.1f} %</b> "
            f"&nbsp;|&nbsp; PTQ (min-max, no training) {100 * r['ptq']:.1f} % &nbsp;|&nbsp; fp32 {100 * r['fp32']:.1f} %"
            f" &nbsp;<i>(runs precomputed once when the notebook ran; 0 to {r['max_epochs']} epochs)</i>")


def draw_qat_demo(grid: dict, config: str, variant: str, epochs: int):
    """Test accuracy vs epoch for one precomputed run, with the PTQ and fp32 levels."""
    import matplotlib.pyplot as plt

    r = qat_demo_compute(grid, config, variant, epochs)
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.axhline(100 * r["fp32"], color="k", ls="--", lw=1, label=f"fp32 {100 * r['fp32']:.1f} %")
    ax.axhline(100 * r["ptq"], color="C3", ls=":", lw=1.5, label=f"PTQ {100 * r['ptq']:.1f} %")
    ax.plot(r["epoch"], 100 * r["accuracy"], "o-", color="C0", label=f"QAT: {100 * r['final']:.1f} %")
    ax.set(xlabel="QAT epoch (0 = before training)", ylabel="test accuracy (%)", xlim=(-0.2, r["max_epochs"] + 0.2),
           ylim=(0, 100), title=f"{config}, {variant}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def qat_widget(grid: dict):
    """The live demo: config, STE/range variant and epochs -> training curve (looks up precomputed runs)."""
    import ipywidgets as w

    from . import interactive_figure

    configs = list(dict.fromkeys(c for c, _ in grid["runs"]))
    variants = list(dict.fromkeys(v for _, v in grid["runs"]))
    controls = {
        "config": w.Dropdown(options=configs, value=configs[-1] if "W2A4" not in configs else "W2A4",
                             description="bits (W/A)"),
        "variant": w.Dropdown(options=variants, value=variants[0], description="training",
                              layout=w.Layout(width="320px")),
        "epochs": w.IntSlider(value=grid["epochs"], min=0, max=grid["epochs"], description="epochs"),
    }
    return interactive_figure(lambda **v: draw_qat_demo(grid, **v), controls,
                              readout=lambda **v: qat_demo_readout(grid, **v))


def draw_training_curves(grid: dict, variant: str = "min-max + clipped STE", configs=None):
    """Test accuracy vs epoch for several configs (one variant), PTQ at epoch 0."""
    import matplotlib.pyplot as plt

    configs = configs or list(dict.fromkeys(c for c, _ in grid["runs"]))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.axhline(100 * grid["fp32"], color="k", ls="--", lw=1, label="fp32")
    for i, c in enumerate(configs):
        acc = 100 * np.asarray(_run(grid, c, variant).accuracy)
        ax.plot(np.arange(acc.size), acc, "o-", color=f"C{i}", label=c)
    ax.set(xlabel="QAT epoch (0 = PTQ start, no training)", ylabel="test accuracy (%)", ylim=(0, 100),
           title=f"QAT from the fp32 model: {variant}")
    ax.legend(loc="lower right", ncol=2)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- weights
def weight_code_counts(layer) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, counts)``: how many weights of a QAT layer use each integer code.

    >>> from qlib import nn
    >>> lin = qat.QATLinear(nn.Linear(np.array([[0.9, -0.3, 0.1], [0.2, 0.05, -0.4]]), np.zeros(2)), bits=2)
    >>> weight_code_counts(lin)
    (array([-2, -1,  0,  1]), array([0, 1, 4, 1]))
    """
    qp = layer.weight_qparams()
    s = np.asarray(qp.scale, dtype=np.float64).reshape(-1, 1) if qp.axis is not None else qp.scale
    codes = np.rint(layer.quantized_weight() / s).astype(np.int64)
    grid = np.arange(qp.qmin, qp.qmax + 1)
    return grid, np.array([(codes == c).sum() for c in grid])


def draw_weight_histograms(float_weight: np.ndarray, layers: dict, bits: int):
    """Left: the fp32 weights in units of their channel's min-max step, with the grid; right: code usage.

    ``layers`` maps a label ("PTQ (min-max)", "QAT min-max", "QAT LSQ") to a QAT layer.
    """
    import matplotlib.pyplot as plt

    W = np.asarray(float_weight, dtype=np.float64)
    qp = qparams_from_tensor(W, bits=bits, symmetric=True, axis=0)
    u = W / np.asarray(qp.scale).reshape(-1, 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    a.hist(u.ravel(), bins=120, color="0.55", label="fp32 weights")
    for c in range(qp.qmin, qp.qmax + 1):
        a.axvline(c, color="C0", lw=1.5, label="grid points (codes)" if c == qp.qmin else None)
        if c < qp.qmax:
            a.axvline(c + 0.5, color="C3", lw=1, ls="--", label="rounding edges" if c == qp.qmin else None)
    a.set(xlabel="weight / step of its channel (min-max)", ylabel="number of weights",
          title=f"fp32 weights vs the {bits}-bit grid")
    a.legend(loc="upper left", fontsize=8)
    width = 0.8 / max(len(layers), 1)
    for i, (label, layer) in enumerate(layers.items()):
        codes, counts = weight_code_counts(layer)
        b.bar(codes + (i - (len(layers) - 1) / 2) * width, 100 * counts / counts.sum(), width=width,
              color=f"C{i + 1}", label=label)
    b.set(xlabel="integer code the weight is stored as", ylabel="share of weights (%)",
          title="After quantization: every weight sits on a grid point")
    b.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
