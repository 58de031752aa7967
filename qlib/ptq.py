"""Post-training quantization (PTQ) of the reference MLP: calibrate, quantize, simulate.

:func:`quantize_mlp` runs calibration batches through the float model, lets one observer
per activation tensor (the network input and each layer's output, after its ReLU) choose a
range, quantizes the weights (symmetric, signed, ``Z = 0``; per-tensor or per-channel along
the output axis 0) and the biases (32-bit codes at scale ``S_in * S_w``, or an 8-bit
encoding of their own, rescaled), and returns a :class:`QuantizedMLP`.

The simulation is *integer-exact*: per layer it computes what an integer engine computes,

1. input codes ``q_in`` (first layer: ``quantize(x, in_qp)``; later layers: the previous
   layer's output codes, so ``in_qp`` of layer k is ``out_qp`` of layer k-1);
2. the accumulator ``acc = (q_in - Z_in) @ (w_codes - Z_w).T + bias_codes`` in int64 (codes
   are cast to int64 *before* any arithmetic: numpy's uint8/int8 would wrap around);
3. requantization in float64: ``code = clamp(round_half_even(acc * M) + Z_out, lo, qmax)``
   with ``M = S_in * S_w / S_out`` (an array over output channels for per-channel weights)
   and ``lo = Z_out`` when the ReLU is fused (``relu=True``), else ``qmin``.

An integer engine (notebook 08) does exactly this, except that it replaces the float ``M``
by a fixed-point ``M0 * 2^shift``; so the two can be compared code by code.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_float_array, check_bits
from .linear import QParams, dequantize, qparams_from_range, qparams_from_tensor, quantize, round_half_even
from .metrics import sqnr_db
from .nn import MLP, Linear, ReLU
from .observers import make_observer

__all__ = [
    "QuantLinear",
    "QuantizedMLP",
    "quantize_mlp",
    "quantize_bias",
    "requantize",
    "calibration_batches",
    "collect_activations",
    "layer_sensitivity",
    "weight_only_model",
    "dynamic_quant_accuracy",
]

_INT32 = np.iinfo(np.int32)


# ============================================================================ formulas
def requantize(acc, multiplier, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """Accumulator to output codes: ``clamp(round_half_even(acc * M) + Z_out, lo, hi)`` (int64).

    ``acc`` is the int64 accumulator, ``multiplier`` ``M = S_in * S_w / S_out`` (scalar, or
    one per output channel, broadcast along the last axis). Computed in float64.

    >>> requantize(np.array([[100, -7, 1000]]), 0.01, zero_point=3, lo=0, hi=255).tolist()
    [[4, 3, 13]]
    >>> requantize(np.array([[250, -250]]), np.array([0.01, 0.01]), 0, -128, 127).tolist()   # ties to even
    [[2, -2]]
    """
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise ValueError(f"the accumulator must hold integers, got dtype {acc.dtype}")
    v = round_half_even(acc.astype(np.float64) * np.asarray(multiplier, np.float64)) + int(zero_point)
    return np.clip(v, lo, hi).astype(np.int64)


def quantize_bias(b, bias_scale, bits: int = 32):
    """Bias codes at the accumulator's scale ``S_in * S_w`` (zero point 0), as int32.

    * ``bits = 32``: ``bias_codes = round_half_even(b / bias_scale)`` -- the accumulator's own grid;
    * fewer bits (SNPE's default 8): the bias first gets its *own* min-max encoding
      ``qb = qparams_from_range(min b, max b, bits)``; the engine stores ``quantize(b, qb)`` and
      rescales it into the accumulator: ``bias_codes = round_half_even(dequantize(...) / bias_scale)``.
      The coarse 8-bit grid is what it costs.

    Returns ``(bias_codes, own_codes, own_qp)`` (the last two are None for 32 bits).

    >>> codes, _, _ = quantize_bias(np.array([0.5, -0.25]), np.array([0.01, 0.01]))
    >>> codes.tolist()
    [50, -25]
    >>> b, s = np.array([0.5, -0.2]), np.array([1e-4, 1e-4])
    >>> quantize_bias(b, s)[0].tolist()                 # 32-bit: exact multiples of 1e-4
    [5000, -2000]
    >>> codes, q8, qb = quantize_bias(b, s, bits=8)     # 8-bit: S_b = 0.7/255, Z_b = 73
    >>> q8.tolist(), qb.zero_point, codes.tolist()      # 0.5 -> 182 S_b = 0.499608
    ([255, 0], 73, [4996, -2004])
    """
    bits = check_bits(bits)
    b = as_float_array(b, "bias").astype(np.float64)
    s = np.asarray(bias_scale, np.float64)
    if bits == 32:
        codes = round_half_even(b / s)
        own, own_qp = None, None
    else:
        own_qp = qparams_from_range(float(b.min()), float(b.max()), bits=bits)
        own = quantize(b, own_qp)
        codes = round_half_even(dequantize(own, own_qp) / s)
    return np.clip(codes, _INT32.min, _INT32.max).astype(np.int32), own, own_qp


# ============================================================================ model
@dataclass
class QuantLinear:
    """One quantized fully connected layer (integer weights, int32 bias, activation qparams).

    * ``w_codes`` (out, in), dtype ``w_qp.dtype``; ``w_qp`` symmetric signed (``Z = 0``),
      per-tensor or per-channel along axis 0;
    * ``bias_codes`` (out,) int32 with zero point 0 at scale ``bias_scale`` (out,) float64
      ``= in_qp.scale * w_qp.scale`` (per-channel: ``S_in * S_w[c]``). For an 8-bit (or any
      ``bias_bits < 32``) bias these are the bias's own 8-bit codes, dequantized and rescaled
      into the accumulator's scale (see :func:`quantize_bias`); the 8-bit codes themselves and
      their qparams are kept in ``bias_own_codes`` / ``bias_own_qp``;
    * ``in_qp``/``out_qp`` per-tensor qparams of the input and output (after ReLU if ``relu``);
    * ``relu``: the ReLU is fused as clamping the output code at ``out_qp.zero_point``.
    """

    name: str
    w_codes: np.ndarray
    w_qp: QParams
    bias_codes: np.ndarray
    bias_scale: np.ndarray
    in_qp: QParams
    out_qp: QParams
    relu: bool
    bias_bits: int = 32
    bias_own_codes: np.ndarray | None = None
    bias_own_qp: QParams | None = None

    @property
    def multiplier(self) -> np.ndarray | float:
        """``M = S_in * S_w / S_out`` (float64; an (out,) array for per-channel weights)."""
        m = self.in_qp.scale * np.asarray(self.w_qp.scale, np.float64) / self.out_qp.scale
        return float(m) if np.ndim(m) == 0 else m

    def accumulate(self, q_in) -> np.ndarray:
        """``acc = (q_in - Z_in) @ (w_codes - Z_w).T + bias_codes``, all in int64."""
        q = np.asarray(q_in).astype(np.int64) - self.in_qp.zero_point
        w = self.w_codes.astype(np.int64) - np.asarray(self.w_qp.zero_point, np.int64).reshape(-1, 1)
        return q @ w.T + self.bias_codes.astype(np.int64)

    def forward_codes(self, q_in) -> np.ndarray:
        """Output codes: ``clamp(round_half_even(acc * M) + Z_out, lo, qmax)``, dtype ``out_qp.dtype``."""
        lo = self.out_qp.zero_point if self.relu else self.out_qp.qmin
        out = requantize(self.accumulate(q_in), self.multiplier, self.out_qp.zero_point, lo, self.out_qp.qmax)
        return out.astype(self.out_qp.dtype)

    def dequantized_weight(self) -> np.ndarray:
        return dequantize(self.w_codes, self.w_qp)

    def dequantized_bias(self) -> np.ndarray:
        return self.bias_codes.astype(np.float64) * self.bias_scale


@dataclass
class QuantizedMLP:
    """A PTQ model: a list of :class:`QuantLinear` run as integer-exact simulation.

    ``observers`` maps each calibrated tensor name (``"input"``, ``"relu1"``, ...) to the
    observer that chose its range (handy for plots).
    """

    layers: list
    observers: dict = field(default_factory=dict, repr=False)

    def quantize_input(self, x) -> np.ndarray:
        """Codes of the network input: ``quantize(x, layers[0].in_qp)``."""
        return quantize(as_float_array(x, "x"), self.layers[0].in_qp)

    def forward_codes(self, x) -> np.ndarray:
        """Output codes of the last layer (see the module docstring for the exact arithmetic)."""
        q = self.quantize_input(x)
        for layer in self.layers:
            q = layer.forward_codes(q)
        return q

    def tensor_codes(self, x) -> dict:
        """Codes of every tensor: ``{"input": ..., layer.name: output codes, ...}``."""
        q = self.quantize_input(x)
        out = {"input": q}
        for layer in self.layers:
            q = layer.forward_codes(q)
            out[layer.name] = q
        return out

    def forward(self, x) -> np.ndarray:
        """Dequantized logits ``S_out * (codes - Z_out)`` (float64)."""
        return dequantize(self.forward_codes(x), self.layers[-1].out_qp)

    __call__ = forward

    def predict(self, x) -> np.ndarray:
        return self.forward(x).argmax(axis=1)

    def accuracy(self, X, y) -> float:
        """Fraction of ``X`` classified as ``y``."""
        return float((self.predict(X) == np.asarray(y)).mean())

    def describe(self) -> str:
        """One line per layer: bits, granularity and scales."""
        lines = []
        for L in self.layers:
            ws = np.asarray(L.w_qp.scale)
            lines.append(f"{L.name}: W{L.w_qp.bits} {L.w_qp.granularity} (S_w {ws.min():.3g}..{ws.max():.3g}), "
                         f"in A{L.in_qp.bits} S={L.in_qp.scale:.4g} Z={L.in_qp.zero_point}, "
                         f"out A{L.out_qp.bits} S={L.out_qp.scale:.4g} Z={L.out_qp.zero_point}, "
                         f"bias {L.bias_bits}-bit, relu={L.relu}")
        return "\n".join(lines)


# ============================================================================ pipeline
def _structure(model: MLP):
    """``[(linear, relu_follows, output_tensor_name), ...]`` for a Linear/ReLU stack."""
    if not isinstance(model, MLP):
        raise ValueError(f"model must be a qlib.nn.MLP, got {type(model).__name__}")
    out = []
    layers = model.layers
    for k, layer in enumerate(layers):
        if isinstance(layer, Linear):
            relu = k + 1 < len(layers) and isinstance(layers[k + 1], ReLU)
            out.append((layer, relu, layers[k + 1].name if relu else layer.name))
        elif not isinstance(layer, ReLU):
            raise ValueError(f"quantize_mlp handles Linear and ReLU layers only, got {layer!r}")
    if not out:
        raise ValueError("the model has no Linear layer")
    return out


def calibration_batches(calib_x, batch_size: int = 64, n_batches: int | None = None) -> list:
    """Split ``calib_x`` into consecutive batches (the last one may be smaller).

    >>> [b.shape[0] for b in calibration_batches(np.zeros((10, 3)), batch_size=4)]
    [4, 4, 2]
    >>> len(calibration_batches(np.zeros((10, 3)), batch_size=4, n_batches=1))
    1
    """
    x = as_float_array(calib_x, "calib_x")
    if x.ndim != 2:
        raise ValueError(f"calib_x must be (n_samples, n_features), got shape {x.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batches = [x[i:i + batch_size] for i in range(0, x.shape[0], batch_size)]
    if n_batches is not None:
        if isinstance(n_batches, bool) or not isinstance(n_batches, numbers.Integral) or n_batches < 1:
            raise ValueError(f"n_batches must be a positive integer or None, got {n_batches!r}")
        batches = batches[:n_batches]
    return batches


def collect_activations(model: MLP, calib_x, batch_size: int = 64, n_batches: int | None = None) -> list:
    """``model.activations`` of every calibration batch: a list of dicts (float32 arrays)."""
    return [{k: v.copy() for k, v in model.activations(b).items()}
            for b in calibration_batches(calib_x, batch_size, n_batches)]


def _layer_bits(names, w_bits, a_bits, layer_bits):
    bits = {n: (check_bits(w_bits), check_bits(a_bits)) for n in names}
    for name, wa in (layer_bits or {}).items():
        if name not in bits:
            raise ValueError(f"layer_bits names unknown layer {name!r}; the layers are {', '.join(names)}")
        try:
            wb, ab = wa
        except (TypeError, ValueError):
            raise ValueError(f"layer_bits[{name!r}] must be a pair (w_bits, a_bits), got {wa!r}") from None
        bits[name] = (check_bits(wb), check_bits(ab))
    return bits


def quantize_mlp(model: MLP, calib_x, w_bits: int = 8, a_bits: int = 8, per_channel: bool = False,
                 calibrator: str = "minmax", bias_bits: int = 32, layer_bits: dict | None = None,
                 input_bits: int | None = None, batch_size: int = 64, n_batches: int | None = None,
                 a_symmetric: bool = False, w_narrow_range: bool = False, activations: list | None = None,
                 input_calibrator: str | None = None, observers: dict | None = None,
                 **observer_kw) -> QuantizedMLP:
    """Post-training quantization of an :class:`qlib.nn.MLP` (static: calibrated activation ranges).

    * ``calib_x``: calibration inputs, split into batches of ``batch_size`` (first ``n_batches``);
      each batch runs through the float model and every activation tensor's observer sees it;
    * ``calibrator``: ``"minmax"``, ``"ema"``, ``"percentile"`` (``percentile=99.99``),
      ``"entropy"``/``"kl"`` or ``"mse"``; extra keywords go to the observers;
    * activations: per-tensor, asymmetric (``a_symmetric=False``; unsigned codes with ``Z = 0``
      after a ReLU); weights: symmetric signed ``Z = 0``, per-tensor or ``per_channel`` (axis 0);
    * ``w_bits``/``a_bits`` for every layer; ``layer_bits={"fc2": (4, 4)}`` overrides a layer's
      weight bits and the bits of its *output* activation (mixed precision); the network
      input uses ``input_bits`` (default: the first layer's activation bits);
    * ``bias_bits``: 32 (scale ``S_in * S_w``, ``Z = 0``) or fewer (own min-max encoding, rescaled;
      see :func:`quantize_bias`);
    * ``input_calibrator``: calibrator of the network input only (default: ``calibrator``); the
      digits' pixels take 17 discrete values in [0, 1], a histogram the KL method handles badly
      at low bits (notebook 06 shows it), so ``"minmax"`` is a sensible choice there;
    * ``observers``: already fitted observers, one per tensor name (``"input"``, ``"relu1"``, ...,
      e.g. ``qm.observers`` of an earlier run): calibration is skipped and each observer is
      reused through a shallow copy with its ``bits`` set to the tensor's bits (histogram
      calibrators then only redo their threshold search; they cache it per setting);
    * ``activations``: precomputed :func:`collect_activations` output (saves the forward passes
      when you quantize the same model many times).

    >>> from qlib.data import load_digits
    >>> from qlib.nn import reference_model
    >>> d, m = load_digits(), reference_model()
    >>> qm = quantize_mlp(m, d.X_train[:256], w_bits=8, a_bits=8)
    >>> abs(qm.accuracy(d.X_test, d.y_test) - m.accuracy(d.X_test, d.y_test)) < 0.02
    True
    """
    struct = _structure(model)
    names = [lin.name for lin, _, _ in struct]
    bits = _layer_bits(names, w_bits, a_bits, layer_bits)
    in_bits = bits[names[0]][1] if input_bits is None else check_bits(input_bits)
    if not isinstance(per_channel, (bool, np.bool_)):
        raise ValueError(f"per_channel must be True or False, got {per_channel!r}")
    check_bits(bias_bits)
    tensor_bits = {"input": in_bits}
    for lin, relu, out_name in struct:
        tensor_bits[out_name] = bits[lin.name][1]
    if observers is not None:
        missing = set(tensor_bits) - set(observers)
        if missing:
            raise ValueError(f"observers lacks the tensor(s) {sorted(missing)}")
        fitted = {}
        for t, b in tensor_bits.items():
            fitted[t] = copy.copy(observers[t])
            fitted[t].bits = b
        observers = fitted
    else:
        if activations is None:
            activations = collect_activations(model, calib_x, batch_size, n_batches)
        elif n_batches is not None:
            activations = activations[:n_batches]
        if not activations:
            raise ValueError("no calibration batches: pass at least one sample in calib_x")
        observers = {}
        for t, b in tensor_bits.items():
            cal = input_calibrator if (t == "input" and input_calibrator is not None) else calibrator
            kw = observer_kw if cal == calibrator else {}
            observers[t] = make_observer(cal, bits=b, symmetric=a_symmetric, **kw)
        for acts in activations:
            for t, obs in observers.items():
                obs.observe(acts[t])
    act_qp = {t: obs.qparams() for t, obs in observers.items()}

    layers = []
    in_name = "input"
    for lin, relu, out_name in struct:
        wb = bits[lin.name][0]
        w_qp = qparams_from_tensor(lin.W, bits=wb, symmetric=True, narrow_range=w_narrow_range,
                                   axis=0 if per_channel else None)
        w_codes = quantize(lin.W, w_qp)
        in_qp, out_qp = act_qp[in_name], act_qp[out_name]
        bias_scale = np.broadcast_to(in_qp.scale * np.asarray(w_qp.scale, np.float64),
                                     (lin.out_features,)).astype(np.float64)
        bias_codes, own, own_qp = quantize_bias(lin.b, bias_scale, bias_bits)
        layers.append(QuantLinear(lin.name, w_codes, w_qp, bias_codes, bias_scale, in_qp, out_qp, relu,
                                  int(bias_bits), own, own_qp))
        in_name = out_name
    return QuantizedMLP(layers, observers)


# ============================================================================ analysis helpers
def layer_sensitivity(model: MLP, calib_x, X, y, w_bits: int = 4, a_bits: int = 4, others: int = 16,
                      activations: list | None = None, **kw) -> list:
    """Quantize one layer at a time to ``w_bits``/``a_bits`` (the others at ``others`` bits, close
    to float) and report ``[(name, sqnr_db of the logits vs fp32, accuracy), ...]``.

    >>> from qlib.data import load_digits
    >>> from qlib.nn import reference_model
    >>> d = load_digits()
    >>> rows = layer_sensitivity(reference_model(), d.X_train[:128], d.X_test, d.y_test)
    >>> [r[0] for r in rows]
    ['fc1', 'fc2', 'fc3']
    """
    struct = _structure(model)
    ref = model.forward(as_float_array(X, "X")).astype(np.float64)
    if activations is None:
        activations = collect_activations(model, calib_x)
    rows = []
    for lin, _, _ in struct:
        qm = quantize_mlp(model, calib_x, w_bits=others, a_bits=others, layer_bits={lin.name: (w_bits, a_bits)},
                          input_bits=others, activations=activations, **kw)
        out = qm.forward(X)
        rows.append((lin.name, sqnr_db(ref, out), qm.accuracy(X, y)))
    return rows


def weight_only_model(model: MLP, bits: int = 8, per_channel: bool = True) -> MLP:
    """Weight-only quantization: a copy of the float model whose weights are fake-quantized
    (symmetric, ``Z = 0``); activations stay float (LLM-style W4A16 etc.).

    >>> from qlib.nn import reference_model
    >>> m = reference_model()
    >>> w = weight_only_model(m, bits=2).layers[0].W
    >>> len(np.unique(w[0])) <= 4
    True
    """
    from .linear import fake_quantize

    out = model.copy()
    for lin in out.linear_layers:
        qp = qparams_from_tensor(lin.W, bits=bits, symmetric=True, axis=0 if per_channel else None)
        lin.W = fake_quantize(lin.W, qp)
    return out


def dynamic_quant_accuracy(model: MLP, X, y, w_bits: int = 8, a_bits: int = 8, per_channel: bool = True,
                           batch_size: int = 64) -> float:
    """Dynamic quantization: weights quantized ahead of time, each layer's *input* range
    measured on the current batch at run time (min-max, per tensor); no calibration data.

    >>> from qlib.data import load_digits
    >>> from qlib.nn import reference_model
    >>> d = load_digits()
    >>> dynamic_quant_accuracy(reference_model(), d.X_test, d.y_test) > 0.95
    True
    """
    from .linear import fake_quantize

    wq = weight_only_model(model, w_bits, per_channel)
    X = as_float_array(X, "X").astype(np.float32, copy=False)
    preds = []
    for i in range(0, X.shape[0], batch_size):
        h = X[i:i + batch_size]
        for layer in wq.layers:
            if isinstance(layer, Linear):
                h = fake_quantize(h, qparams_from_tensor(h, bits=a_bits))
            h = layer.forward(h)
        preds.append(h.argmax(axis=1))
    return float((np.concatenate(preds) == np.asarray(y)).mean())


def onnxruntime_minmax_range(batches, moving_average: bool = True, averaging_constant: float = 0.01,
                             batches_per_call: int | None = None) -> tuple:
    """The ``(min, max)`` ONNX Runtime's ``MinMaxCalibrater`` computes for a tensor fed ``batches``.

    Runs ORT itself (a one-node Identity model, calibrated on its input). ORT reduces every
    batch to its min and max; within one ``collect_data`` call it then takes the plain mean
    of those (``moving_average=True``) or their min/max; only between calls is the result
    merged as an EMA, ``old + c * (new - old)``. ``quantize_static`` makes a single call
    (``batches_per_call=None``), or one per ``CalibStridedMinMax`` batches
    (``batches_per_call=k``). Needs the ``onnx`` and ``onnxruntime`` packages.
    """
    import tempfile
    from pathlib import Path

    import onnx
    from onnx import TensorProto, helper
    from onnxruntime.quantization.calibrate import CalibrationDataReader, MinMaxCalibrater

    arrays = [as_float_array(b, "batch").astype(np.float32) for b in batches]
    if not arrays:
        raise ValueError("batches is empty: give at least one calibration batch")
    ndim = arrays[0].ndim
    if any(a.ndim != ndim for a in arrays):
        raise ValueError("all batches must have the same number of dimensions (ORT's model input has one rank)")
    k = len(arrays) if batches_per_call is None else int(batches_per_call)
    if isinstance(batches_per_call, bool) or k < 1:
        raise ValueError(f"batches_per_call must be None or a positive integer, got {batches_per_call!r}")
    shape = [f"d{i}" for i in range(ndim)]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "calib",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8

    class _Reader(CalibrationDataReader):
        def __init__(self, chunk):
            self._it = iter(chunk)

        def get_next(self):
            return next(({"x": a} for a in self._it), None)

    with tempfile.TemporaryDirectory(prefix="qlib_ort_") as tmp:
        path = Path(tmp) / "identity.onnx"
        onnx.save(model, path)
        cal = MinMaxCalibrater(path, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                               moving_average=moving_average, averaging_constant=averaging_constant)
        cal.augment_graph()
        cal.create_inference_session()
        for start in range(0, len(arrays), k):
            cal.collect_data(_Reader(arrays[start:start + k]))
        lo, hi = cal.compute_data()["x"].range_value
        del cal   # release the session before the folder goes
    return float(np.asarray(lo).item()), float(np.asarray(hi).item())
