"""Notebook 06's interactive demo: calibrator + bits + percentile -> thresholds on a real
activation histogram, and the PTQ accuracy of the whole reference model.

Pattern: :func:`precompute` runs the calibration once (observers fitted on the reference
model's real activations); :func:`compute` is pure and fast (threshold searches and PTQ
accuracies are cached per setting); :func:`draw` and :func:`readout` turn it into a figure
and an HTML line; :func:`widget` wires them to ipywidgets.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

from .._validate import check_bits, check_choice
from ..data import load_digits
from ..linear import fake_quantize
from ..metrics import mse
from ..nn import reference_model
from ..ptq import collect_activations, quantize_mlp

__all__ = ["CALIBRATOR_CHOICES", "PERCENTILE_CHOICES", "BITS_RANGE", "CalibrationState", "precompute",
           "compute", "draw", "readout", "widget"]

CALIBRATOR_CHOICES = ("minmax", "ema", "percentile", "entropy", "mse")
PERCENTILE_CHOICES = (99.0, 99.9, 99.99, 99.999)
BITS_RANGE = (2, 8)
_LABELS = {"minmax": "min-max", "ema": "EMA min-max", "percentile": "percentile", "entropy": "KL (TensorRT)",
           "mse": "MSE"}
_COLORS = {"minmax": "tab:red", "ema": "tab:orange", "percentile": "tab:green", "entropy": "tab:purple",
           "mse": "tab:blue"}


class CalibrationState(NamedTuple):
    """Everything the callbacks need, computed once."""

    model: object
    X_test: np.ndarray
    y_test: np.ndarray
    fp32_accuracy: float
    tensor: str
    values: np.ndarray          # the tensor's calibration values (flattened, float64)
    hist: np.ndarray            # display histogram of the values
    edges: np.ndarray
    observers: dict             # calibrator -> {tensor name: fitted observer}
    w_bits: int
    cache: dict


def precompute(tensor: str = "relu1", n_calib: int = 512, batch_size: int = 64, w_bits: int = 8,
               model=None) -> CalibrationState:
    """Calibrate every calibrator once on ``n_calib`` training digits (batches of ``batch_size``)."""
    d = load_digits()
    model = reference_model() if model is None else model
    acts = collect_activations(model, d.X_train[:n_calib], batch_size)
    if tensor not in acts[0]:
        raise ValueError(f"tensor must be one of {', '.join(acts[0])}, got {tensor!r}")
    observers = {}
    for cal in CALIBRATOR_CHOICES:
        qm = quantize_mlp(model, None, w_bits=w_bits, a_bits=8, calibrator=cal, activations=acts,
                          input_calibrator="minmax")
        observers[cal] = qm.observers
    values = np.concatenate([a[tensor].ravel() for a in acts]).astype(np.float64)
    hist, edges = np.histogram(values, bins=128)
    return CalibrationState(model, d.X_test, d.y_test, model.accuracy(d.X_test, d.y_test), tensor, values,
                            hist, edges, observers, w_bits, {})


def _observers_for(state, calibrator, percentile):
    obs = state.observers[calibrator]
    if calibrator != "percentile":
        return obs
    out = {}
    for t, o in obs.items():
        o = copy.copy(o)
        if hasattr(o, "percentile"):
            o.percentile = float(percentile)
        out[t] = o
    return out


def _check(calibrator, bits, percentile):
    check_choice(calibrator, "calibrator", CALIBRATOR_CHOICES)
    bits = check_bits(bits)
    if not BITS_RANGE[0] <= bits <= BITS_RANGE[1]:
        raise ValueError(f"bits must lie in {BITS_RANGE}, got {bits}")
    if float(percentile) not in PERCENTILE_CHOICES:
        raise ValueError(f"percentile must be one of {PERCENTILE_CHOICES}, got {percentile!r}")
    return bits, float(percentile)


def compute(state: CalibrationState, calibrator: str = "entropy", bits: int = 4, percentile: float = 99.99) -> dict:
    """Thresholds of every calibrator on the chosen tensor at ``bits``, the selected one's tensor
    MSE and clipped fraction, and the PTQ accuracy (W``w_bits`` per-channel, A``bits``) of the model.

    Returns ``{"thresholds": {cal: T}, "threshold": T, "tensor_mse": {cal: mse}, "clipped": fraction,
    "accuracy": acc, "fp32_accuracy": acc}``.
    """
    bits, percentile = _check(calibrator, bits, percentile)
    key = (calibrator, bits, percentile)
    if key in state.cache:
        return state.cache[key]
    thresholds, errors = {}, {}
    for cal in CALIBRATOR_CHOICES:
        obs = copy.copy(_observers_for(state, cal, percentile)[state.tensor])
        obs.bits = bits
        thresholds[cal] = float(obs.range()[1])
        errors[cal] = mse(state.values, fake_quantize(state.values, obs.qparams()))
    qm = quantize_mlp(state.model, None, w_bits=state.w_bits, a_bits=bits, per_channel=True,
                      observers=_observers_for(state, calibrator, percentile))
    t = thresholds[calibrator]
    out = {
        "thresholds": thresholds,
        "threshold": t,
        "tensor_mse": errors,
        "clipped": float((state.values > t).mean()),
        "accuracy": qm.accuracy(state.X_test, state.y_test),
        "fp32_accuracy": state.fp32_accuracy,
    }
    state.cache[key] = out
    return out


def draw(state: CalibrationState, calibrator: str = "entropy", bits: int = 4, percentile: float = 99.99):
    """Histogram of the tensor (log scale) with every calibrator's threshold; the chosen one bold."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullLocator

    r = compute(state, calibrator, bits, percentile)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.15, top=0.9)
    ax.stairs(np.maximum(state.hist, 0.8), state.edges, fill=True, color="0.75", baseline=0.8,
              label=f"{state.tensor} values")
    ax.set_yscale("log")
    # plain tick labels: matplotlib's default 10^k mathtext labels cost ~0.2 s per redraw
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    t = r["threshold"]
    ax.axvspan(t, state.edges[-1], color=_COLORS[calibrator], alpha=0.08, label="clipped to T")
    for cal, thr in r["thresholds"].items():
        chosen = cal == calibrator
        ax.axvline(thr, color=_COLORS[cal], lw=2.5 if chosen else 1.0, ls="-" if chosen else "--",
                   label=f"{_LABELS[cal]}: T = {thr:.3f}")
    ax.set_xlabel(f"activation value ({state.tensor}, real units)")
    ax.set_ylabel("count (log scale)")
    ax.set_title(f"{bits}-bit thresholds on {state.tensor}; PTQ accuracy with {_LABELS[calibrator]}: "
                 f"{100 * r['accuracy']:.1f} %")
    ax.set_ylim(0.8, state.hist.max() * 40)  # head room for the legend
    ax.legend(fontsize=8, loc="upper center", ncol=4)
    return fig


def readout(state: CalibrationState, calibrator: str = "entropy", bits: int = 4, percentile: float = 99.99) -> str:
    """One HTML line: threshold, clipped fraction, tensor MSE and model accuracy."""
    r = compute(state, calibrator, bits, percentile)
    return (f"<b>{_LABELS[calibrator]}</b>, A{bits}: T = {r['threshold']:.4f}, "
            f"clipped {100 * r['clipped']:.3f} % of the values, tensor MSE {r['tensor_mse'][calibrator]:.3g}; "
            f"model W{state.w_bits}A{bits} per-channel accuracy <b>{100 * r['accuracy']:.2f} %</b> "
            f"(fp32 {100 * r['fp32_accuracy']:.2f} %)")


def widget(state: CalibrationState):
    """The live demo: dropdown (calibrator), sliders (bits, percentile)."""
    import ipywidgets as w

    from . import interactive_figure

    controls = {
        "calibrator": w.Dropdown(options=[(_LABELS[c], c) for c in CALIBRATOR_CHOICES], value="entropy",
                                 description="calibrator"),
        "bits": w.IntSlider(value=4, min=BITS_RANGE[0], max=BITS_RANGE[1], description="activation bits"),
        "percentile": w.SelectionSlider(options=list(PERCENTILE_CHOICES), value=99.99, description="percentile"),
    }
    return interactive_figure(lambda **v: draw(state, **v), controls, readout=lambda **v: readout(state, **v))
