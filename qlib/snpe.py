"""SNPE / AIMET encodings: the default TF (min-max) mode, bitwidth flags and the encodings JSON.

Qualcomm's SNPE (and AIMET, QNN) describe a quantized tensor by an *encoding*:
``min``, ``max``, ``scale`` (the step size Delta), ``offset`` and ``bitwidth``. Codes are
always counted on the unsigned grid ``[0, 2^n - 1]`` and ``r = (q + offset) * scale``, so
``offset = -Z`` for unsigned codes (course design, section 3: ``offset = qmin - Z``, which is
``-128`` for signed symmetric 8-bit codes).

The TF mode computes the encoding of a range ``[x_min, x_max]`` in five steps, in AIMET's
order of operations and in float64 like AIMET's C++ code:

1. widen to include 0: ``min = min(x_min, 0)``, ``max = max(x_max, 0)``;
2. enforce the minimum range: ``max = max(max, min + 0.01)`` (only max moves);
3. ``Delta = (max - min) / (2^n - 1)``;
4. ``offset = -round(-min / Delta)``, C-style rounding (ties away from zero),
   clamped to ``[-(2^n - 1), 0]``;
5. ``encoding-min = offset * Delta``, ``encoding-max = encoding-min + (max - min)``.

The seed blog post writes the same with ``S' = (2^n - 1) / (max - min) = 1 / Delta``
and ``Z = -S' * min``; :func:`qlib.seed_scale` converts.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, check_axis, check_choice
from .linear import QParams, qparams_from_tensor, round_half_away

__all__ = [
    "SNPE_MIN_RANGE",
    "SNPE_BITWIDTHS",
    "SnpeEncoding",
    "SnpeSteps",
    "check_snpe_bitwidth",
    "snpe_bitwidths",
    "snpe_encoding_steps",
    "snpe_encoding",
    "snpe_channel_encodings",
    "snpe_bias_encoding",
    "encoding_to_qparams",
    "qparams_to_encoding",
    "encoding_entry",
    "to_encodings_dict",
    "encodings_json",
    "load_encodings",
    "snpe_model_encodings",
]

#: SNPE/AIMET's minimum encoding range: ``max`` is pushed up to at least ``min + 0.01``.
SNPE_MIN_RANGE = 0.01

#: Bitwidths the SNPE quantizer accepts for each kind of tensor.
SNPE_BITWIDTHS = {"weights": (8, 16), "activations": (8, 16), "bias": (8, 32)}

_FLAG = {"weights": "--weights_bitwidth", "activations": "--act_bitwidth", "bias": "--bias_bitwidth"}


# ----------------------------------------------------------------------------- bitwidths
def check_snpe_bitwidth(bitwidth, kind=None) -> int:
    """Return ``bitwidth`` as an int if SNPE allows it for ``kind``, else raise ValueError.

    ``kind`` is ``"weights"`` or ``"activations"`` (8 or 16 bits), ``"bias"`` (8 or 32), or
    None (any of 8, 16, 32).

    >>> check_snpe_bitwidth(16, "activations"), check_snpe_bitwidth(32, "bias")
    (16, 32)
    """
    if kind is not None:
        check_choice(kind, "kind", tuple(SNPE_BITWIDTHS))
    if isinstance(bitwidth, bool) or not isinstance(bitwidth, numbers.Real) or not float(bitwidth).is_integer():
        raise ValueError(f"bitwidth must be a whole number (8, 16 or 32), got {bitwidth!r}")
    bitwidth = int(bitwidth)
    allowed = SNPE_BITWIDTHS[kind] if kind is not None else (8, 16, 32)
    if bitwidth not in allowed:
        if kind is None:
            raise ValueError(
                f"bitwidth={bitwidth} is not an SNPE bitwidth: SNPE quantizes weights and activations "
                "with 8 or 16 bits and biases with 8 or 32 bits"
            )
        raise ValueError(
            f"SNPE quantizes {kind} with {' or '.join(map(str, allowed))} bits ({_FLAG[kind]}), "
            f"got {bitwidth}"
        )
    return bitwidth


def snpe_bitwidths(bitwidth=None, weights_bitwidth=None, act_bitwidth=None, bias_bitwidth=None) -> dict:
    """The bitwidth of each kind of tensor chosen by snpe-dlc-quantize's flags.

    ``--weights_bitwidth`` 8 (default) or 16, ``--act_bitwidth`` 8 (default) or 16,
    ``--bias_bitwidth`` 8 (default) or 32. ``--bitwidth`` (8 or 16) sets all three at once,
    as its help text says ("weights/activation/bias"), and can't be mixed with the others.

    >>> snpe_bitwidths()
    {'weights': 8, 'activations': 8, 'bias': 8}
    >>> snpe_bitwidths(act_bitwidth=16, bias_bitwidth=32)
    {'weights': 8, 'activations': 16, 'bias': 32}
    """
    separate = {"weights": weights_bitwidth, "activations": act_bitwidth, "bias": bias_bitwidth}
    if bitwidth is not None:
        given = [_FLAG[k] for k, v in separate.items() if v is not None]
        if given:
            raise ValueError(f"--bitwidth can't be mixed with {', '.join(given)}: use one or the other")
        if isinstance(bitwidth, bool) or bitwidth not in (8, 16):
            raise ValueError(f"--bitwidth must be 8 or 16, got {bitwidth!r}")
        return {k: int(bitwidth) for k in separate}
    return {k: 8 if v is None else check_snpe_bitwidth(v, k) for k, v in separate.items()}


# ----------------------------------------------------------------------------- the encoding
@dataclass(frozen=True)
class SnpeEncoding:
    """One SNPE/AIMET encoding: ``r = (q + offset) * scale`` for codes ``q`` in ``[0, 2^n - 1]``.

    ``min``/``max`` are the real values of the lowest and highest codes (encoding-min and
    encoding-max), ``scale`` is the step size, ``offset = qmin - Z`` (``-Z`` for unsigned
    codes, ``-2^(n-1)`` for signed symmetric ones).

    >>> enc = snpe_encoding(-1.8, 0.5)
    >>> print(f"{enc.min:.6f} {enc.max:.6f} offset={enc.offset} Z={enc.zero_point}")
    -1.803922 0.496078 offset=-200 Z=200
    """

    min: float
    max: float
    scale: float
    offset: int
    bitwidth: int
    is_symmetric: bool = False

    @property
    def zero_point(self) -> int:
        """The unsigned code of real 0: ``-offset``."""
        return -self.offset

    def to_qparams(self) -> QParams:
        """The qlib :class:`QParams` of this encoding (see :func:`encoding_to_qparams`)."""
        return encoding_to_qparams(self)


class SnpeSteps(NamedTuple):
    """Every intermediate value of :func:`snpe_encoding_steps` (for walk-throughs and widgets)."""

    min: float          # after widening to include 0
    max: float          # after widening and the 0.01 rule
    delta: float        # (max - min) / (2^n - 1), the step size
    zero_real: float    # -min / delta before rounding
    zero_point: int     # round(zero_real), half away from zero, clamped to [0, 2^n - 1]
    offset: int         # -zero_point
    encoding_min: float  # offset * delta
    encoding_max: float  # encoding_min + (max - min)
    bitwidth: int


def _range_scalars(x_min, x_max):
    lo = as_float_array(x_min, "x_min")
    hi = as_float_array(x_max, "x_max")
    if lo.size != 1 or hi.size != 1:
        raise ValueError(
            "snpe_encoding takes one x_min and one x_max (a per-tensor range); "
            "for one encoding per channel use snpe_channel_encodings"
        )
    lo, hi = float(lo.reshape(())), float(hi.reshape(()))
    if lo > hi:
        raise ValueError(f"x_min > x_max ({lo:g} > {hi:g}): the range is upside down")
    return lo, hi


def snpe_encoding_steps(x_min, x_max, bitwidth=8) -> SnpeSteps:
    """SNPE/AIMET's TF-mode encoding of ``[x_min, x_max]``, step by step.

    ``min = min(x_min, 0)``, ``max = max(max(x_max, 0), min + 0.01)``,
    ``delta = (max - min) / (2^n - 1)``, ``zero_real = -min / delta``,
    ``offset = -round_half_away(zero_real)`` clamped to ``[-(2^n - 1), 0]``,
    ``encoding_min = offset * delta``, ``encoding_max = encoding_min + (max - min)``.

    ``encoding_max`` is computed as AIMET does; for all-negative data it can come out a rounding
    error below 0 (``[-8161, 0]`` gives ``-9.1e-13``), while the code ``-offset`` still
    dequantizes to exactly 0.0.

    The seed's tie: 127.5 (up to one ulp) rounds to 128.

    >>> s = snpe_encoding_steps(-5.1, 5.1)
    >>> print(f"{s.delta!r} {s.zero_real!r} -> {s.zero_point}, [{s.encoding_min:.2f}, {s.encoding_max:.2f}]")
    0.039999999999999994 127.50000000000001 -> 128, [-5.12, 5.08]
    """
    bitwidth = check_snpe_bitwidth(bitwidth)
    lo, hi = _range_scalars(x_min, x_max)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    hi = max(hi, lo + SNPE_MIN_RANGE)
    num_steps = 2.0**bitwidth - 1
    delta = (hi - lo) / num_steps
    zero_real = -lo / delta + 0.0  # + 0.0 turns -0.0 into 0.0
    zero_point = int(min(max(round_half_away(np.float64(zero_real)), 0.0), num_steps))
    offset = -zero_point
    encoding_min = delta * offset
    encoding_max = (hi - lo) + encoding_min
    return SnpeSteps(lo, hi, delta, zero_real, zero_point, offset, encoding_min + 0.0, encoding_max, bitwidth)


def snpe_encoding(x_min, x_max, bitwidth=8, kind=None) -> SnpeEncoding:
    """SNPE's default (TF, min-max, asymmetric) encoding of ``[x_min, x_max]``.

    See :func:`snpe_encoding_steps` for the formula. ``kind`` (``"weights"``,
    ``"activations"``, ``"bias"`` or None) restricts ``bitwidth`` to what SNPE allows.

    The seed's examples:

    >>> enc = snpe_encoding(-1.8, 0.5)
    >>> print(f"[{enc.min:.6f}, {enc.max:.6f}] scale={enc.scale:.9f} offset={enc.offset}")
    [-1.803922, 0.496078] scale=0.009019608 offset=-200
    >>> e1, e2 = snpe_encoding(5.0, 10.0), snpe_encoding(-20.0, -6.0)
    >>> print(f"[{e1.min:g}, {e1.max:g}]  [{e2.min:g}, {e2.max:g}]")
    [0, 10]  [-20, 0]
    """
    bitwidth = check_snpe_bitwidth(bitwidth, kind)
    s = snpe_encoding_steps(x_min, x_max, bitwidth)
    return SnpeEncoding(min=s.encoding_min, max=s.encoding_max, scale=s.delta, offset=s.offset,
                        bitwidth=bitwidth, is_symmetric=False)


def snpe_channel_encodings(x, axis=0, bitwidth=8, kind=None) -> list:
    """One TF-mode encoding per index along ``axis`` (per-channel weights), as a list.

    >>> w = np.array([[-1.0, 0.5], [0.0, 2.0]])
    >>> [e.offset for e in snpe_channel_encodings(w, axis=0)]
    [-170, 0]
    """
    x = as_float_array(x)
    axis = check_axis(axis, x.ndim)
    other = tuple(i for i in range(x.ndim) if i != axis)
    lo, hi = x.min(axis=other), x.max(axis=other)
    return [snpe_encoding(a, b, bitwidth, kind) for a, b in zip(lo, hi)]


def snpe_bias_encoding(input_scale, weight_scale) -> SnpeEncoding | list:
    """The 32-bit bias encoding: ``scale = S_in * S_w``, zero point 0, signed int32 codes.

    With that scale the integer bias adds straight into the int32 accumulator of
    ``sum(q_x * q_w)``; no rescale is needed and the rounding error (at most half of
    ``S_in * S_w``) is far below anything else in the layer. ``offset = -2^31`` on the
    unsigned grid (design section 3). A per-channel ``weight_scale`` gives a list.

    >>> enc = snpe_bias_encoding(0.01, 0.002)
    >>> print(f"scale={enc.scale:.1e} offset={enc.offset} bits={enc.bitwidth} symmetric={enc.is_symmetric}")
    scale=2.0e-05 offset=-2147483648 bits=32 symmetric=True
    """
    s_in = as_float_array(input_scale, "input_scale")
    s_w = as_float_array(weight_scale, "weight_scale")
    if s_in.size != 1:
        raise ValueError("input_scale must be one number: activations are quantized per tensor")
    if (s_in <= 0).any() or (s_w <= 0).any():
        raise ValueError("scales must be > 0 (they are step sizes)")
    scales = float(s_in.reshape(())) * s_w.astype(np.float64)
    qmin, qmax = -(2**31), 2**31 - 1
    encs = [SnpeEncoding(min=float(s) * qmin, max=float(s) * qmax, scale=float(s), offset=qmin,
                         bitwidth=32, is_symmetric=True) for s in np.atleast_1d(scales)]
    return encs[0] if scales.ndim == 0 else encs


# ----------------------------------------------------------------------------- conversions
def encoding_to_qparams(enc, axis: int = 0) -> QParams:
    """qlib parameters of an encoding: ``S = scale``.

    Asymmetric (``is_symmetric`` False): unsigned codes ``[0, 2^n - 1]``, ``Z = -offset``.
    Symmetric: signed codes, ``Z = 0``, ``qmin = offset`` (``-2^(n-1)``, or ``-(2^(n-1) - 1)``
    for AIMET's strict symmetric), ``qmax = round(max / scale)``. A list of encodings (one per
    channel) gives per-channel parameters along ``axis``.

    >>> qp = encoding_to_qparams(snpe_encoding(-1.8, 0.5))
    >>> qp.zero_point, qp.qmin, qp.qmax
    (200, 0, 255)
    """
    if isinstance(enc, SnpeEncoding):
        qmin, qmax, zp = _grid(enc)
        return QParams(scale=enc.scale, zero_point=zp, qmin=qmin, qmax=qmax, bits=enc.bitwidth,
                       symmetric=enc.is_symmetric)
    encs = list(enc) if isinstance(enc, (list, tuple)) else None
    if not encs or not all(isinstance(e, SnpeEncoding) for e in encs):
        raise ValueError(f"expected an SnpeEncoding or a non-empty list of them, got {type(enc).__name__}")
    if len(encs) == 1:
        return encoding_to_qparams(encs[0])
    grids = {_grid(e)[:2] for e in encs}
    if len(grids) != 1 or len({(e.bitwidth, e.is_symmetric) for e in encs}) != 1:
        raise ValueError("per-channel encodings must share bitwidth, symmetry and integer range")
    (qmin, qmax), = grids
    return QParams(scale=np.array([e.scale for e in encs]), zero_point=np.array([_grid(e)[2] for e in encs]),
                   qmin=qmin, qmax=qmax, bits=encs[0].bitwidth, axis=axis, symmetric=encs[0].is_symmetric)


def _grid(enc: SnpeEncoding):
    n = enc.bitwidth
    if enc.is_symmetric:
        qmax = int(round(enc.max / enc.scale))
        return int(enc.offset), qmax, 0
    return 0, 2**n - 1, -int(enc.offset)


def qparams_to_encoding(qp: QParams):
    """The encoding of qlib parameters: ``offset = qmin - Z``, ``min = S*(qmin - Z)``, ``max = S*(qmax - Z)``.

    Per-tensor parameters give one :class:`SnpeEncoding`, per-channel ones a list (one per
    channel). For unsigned codes ``offset = -Z``; for signed symmetric 8-bit codes ``-128``.

    >>> from qlib.linear import qparams_from_range
    >>> qparams_to_encoding(qparams_from_range(-1.0, 1.0, symmetric=True)).offset
    -128
    >>> qparams_to_encoding(qparams_from_range(-1.8, 0.5)).offset
    -200
    """
    if not isinstance(qp, QParams):
        raise ValueError(f"expected a qlib.QParams, got {type(qp).__name__}")
    if qp.granularity == "block-wise":
        raise ValueError("SNPE/AIMET encodings are per-tensor or per-channel; block-wise parameters "
                         "(group_size) have no place in the encodings file")
    s = np.atleast_1d(np.asarray(qp.scale, dtype=np.float64))
    z = np.atleast_1d(np.asarray(qp.zero_point, dtype=np.int64))
    encs = [SnpeEncoding(min=float(si * (qp.qmin - zi)), max=float(si * (qp.qmax - zi)), scale=float(si),
                         offset=int(qp.qmin - zi), bitwidth=qp.bits, is_symmetric=bool(qp.symmetric))
            for si, zi in zip(s, z)]
    return encs[0] if qp.axis is None else encs


# ----------------------------------------------------------------------------- JSON
def encoding_entry(enc: SnpeEncoding) -> dict:
    """One entry of an encodings file: bitwidth, dtype, is_symmetric ("True"/"False"), min, max, offset, scale.

    >>> encoding_entry(snpe_encoding(0.0, 10.0))["is_symmetric"]
    'False'
    """
    return {"bitwidth": int(enc.bitwidth), "dtype": "int", "is_symmetric": str(bool(enc.is_symmetric)),
            "max": float(enc.max), "min": float(enc.min), "offset": int(enc.offset), "scale": float(enc.scale)}


def _entries(name, value) -> list:
    if isinstance(value, QParams):
        value = qparams_to_encoding(value)
    if isinstance(value, SnpeEncoding):
        return [encoding_entry(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(e, SnpeEncoding) for e in value):
        return [encoding_entry(e) for e in value]
    raise ValueError(f"tensor {name!r}: expected QParams, an SnpeEncoding or a list of them, "
                     f"got {type(value).__name__}")


def to_encodings_dict(activations: Mapping, params: Mapping) -> dict:
    """An AIMET/SNPE-style encodings dictionary from two mappings tensor name -> QParams (or encodings).

    ``{"activation_encodings": {name: [entry]}, "param_encodings": {name: [entry, ...]}}``:
    one entry per channel for per-channel parameters, one entry otherwise.

    >>> from qlib.linear import qparams_from_range
    >>> d = to_encodings_dict({"x": qparams_from_range(0.0, 1.0)}, {})
    >>> d["activation_encodings"]["x"][0]["offset"], list(d)
    (0, ['activation_encodings', 'param_encodings'])
    """
    for label, m in (("activations", activations), ("params", params)):
        if not isinstance(m, Mapping):
            raise ValueError(f"{label} must be a mapping tensor name -> QParams, got {type(m).__name__}")
    return {"activation_encodings": {str(k): _entries(k, v) for k, v in activations.items()},
            "param_encodings": {str(k): _entries(k, v) for k, v in params.items()}}


def encodings_json(activations: Mapping, params: Mapping, indent: int = 2) -> str:
    """The encodings dictionary of :func:`to_encodings_dict` as JSON text (floats round-trip exactly)."""
    return json.dumps(to_encodings_dict(activations, params), indent=indent)


def _entry_to_encoding(name, e) -> SnpeEncoding:
    if not isinstance(e, Mapping):
        raise ValueError(f"tensor {name!r}: each entry must be an object with bitwidth, offset, scale, ...")
    missing = [k for k in ("bitwidth", "offset", "scale", "min", "max") if k not in e]
    if missing:
        raise ValueError(f"tensor {name!r}: entry misses {', '.join(missing)}")
    if e.get("dtype", "int") != "int":
        raise ValueError(f"tensor {name!r}: dtype {e['dtype']!r} is not an integer encoding")
    sym = e.get("is_symmetric", "False")
    if sym not in ("True", "False", True, False):
        raise ValueError(f"tensor {name!r}: is_symmetric must be 'True' or 'False', got {sym!r}")
    return SnpeEncoding(min=float(e["min"]), max=float(e["max"]), scale=float(e["scale"]),
                        offset=int(e["offset"]), bitwidth=int(e["bitwidth"]), is_symmetric=sym in ("True", True))


def load_encodings(source, section: str | None = None, axis: int = 0) -> dict:
    """Read an encodings file (path, JSON text or dict) into a dict tensor name -> QParams.

    ``section`` None merges ``activation_encodings`` and ``param_encodings`` (names must be
    unique); ``"activation_encodings"`` or ``"param_encodings"`` reads one. Lists of more than
    one entry become per-channel parameters along ``axis`` (0 = output channel of an (out, in) weight).

    >>> from qlib.linear import qparams_from_range
    >>> text = encodings_json({"x": qparams_from_range(-1.8, 0.5)}, {})
    >>> load_encodings(text)["x"].zero_point
    200
    """
    if isinstance(source, Mapping):
        data = source
    elif isinstance(source, (str, os.PathLike)):
        text = str(source) if not isinstance(source, os.PathLike) else None
        if text is None or not text.lstrip().startswith("{"):
            with open(source, encoding="utf-8") as f:
                text = f.read()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    else:
        raise ValueError(f"source must be a path, JSON text or a dict, got {type(source).__name__}")
    sections = ("activation_encodings", "param_encodings")
    if section is not None:
        check_choice(section, "section", sections)
    if not isinstance(data, Mapping) or not any(s in data for s in sections):
        raise ValueError("an encodings file needs 'activation_encodings' and/or 'param_encodings'")
    out = {}
    for sec in sections if section is None else (section,):
        for name, entries in data.get(sec, {}).items():
            if name in out:
                raise ValueError(f"tensor {name!r} appears in both sections; load them one at a time")
            if not isinstance(entries, list) or not entries:
                raise ValueError(f"tensor {name!r}: expected a non-empty list of entries")
            encs = [_entry_to_encoding(name, e) for e in entries]
            out[name] = encoding_to_qparams(encs if len(encs) > 1 else encs[0], axis=axis)
    return out


# ----------------------------------------------------------------------------- a whole model
def snpe_model_encodings(model, x_calib, weights_bitwidth=None, act_bitwidth=None, bias_bitwidth=None,
                         per_channel=False, bitwidth=None):
    """SNPE-style encodings of every tensor of an MLP: ``(activation_encodings, param_encodings)``.

    Activations (``model.activations(x_calib)``: input and every layer output) and weights get
    TF-mode min-max encodings; ``per_channel=True`` gives symmetric per-output-channel weights
    (signed, offset ``-2^(n-1)``, as SNPE/QNN's per-channel mode). Biases: 8-bit -> their own
    min-max encoding; 32-bit -> ``scale = S_in * S_w``, Z = 0 (:func:`snpe_bias_encoding`).
    Names: ``"input"``, ``"fc1"``, ``"relu1"``, ... and ``"fc1.weight"``, ``"fc1.bias"``, ...
    The bitwidth arguments follow the flags of :func:`snpe_bitwidths` (8 by default; ``bitwidth``
    sets all three and can't be mixed with the others).
    """
    bw = snpe_bitwidths(bitwidth=bitwidth, weights_bitwidth=weights_bitwidth, act_bitwidth=act_bitwidth,
                        bias_bitwidth=bias_bitwidth)
    acts = model.activations(x_calib)
    act_encs = {name: snpe_encoding(float(a.min()), float(a.max()), bw["activations"]) for name, a in acts.items()}
    names = list(acts)
    param_encs = {}
    for i, layer in enumerate(model.layers):
        if not hasattr(layer, "W"):
            continue
        if per_channel:
            w_enc = qparams_to_encoding(qparams_from_tensor(layer.W, bits=bw["weights"], symmetric=True, axis=0))
            w_scale = np.array([e.scale for e in w_enc])
        else:
            w_enc = snpe_encoding(float(layer.W.min()), float(layer.W.max()), bw["weights"])
            w_scale = w_enc.scale
        param_encs[f"{layer.name}.weight"] = w_enc
        if bw["bias"] == 32:
            param_encs[f"{layer.name}.bias"] = snpe_bias_encoding(act_encs[names[i]].scale, w_scale)
        else:
            param_encs[f"{layer.name}.bias"] = snpe_encoding(float(layer.b.min()), float(layer.b.max()), bw["bias"])
    return act_encs, param_encs
