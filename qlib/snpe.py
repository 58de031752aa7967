"""SNPE / AIMET encodings: the default TF (min-max) mode, bitwidth flags and the encodings JSON.

Qualcomm's SNPE (and AIMET, QNN) describe a quantized tensor by an *encoding*:
``min``, ``max``, ``scale`` (the step size Delta), ``offset`` and ``bitwidth``. Codes are
always counted on the unsigned grid ``[0, 2^n - 1]`` and ``r = (q + offset) * scale``, so
``offset = -Z`` for unsigned codes (docs/conventions.md, section 1: ``offset = qmin - Z``, which is
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

import datetime as _dt
import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._validate import ALLOWED_BITS, as_float_array, check_axis, check_choice
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
    "ENCODINGS_VERSIONS",
    "encoding_entry",
    "encoding_entry_v1",
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


def _real(x, name):
    """``x`` as a float array; bool, datetime and timedelta input are refused (they are not real numbers)."""
    if isinstance(x, (bool, np.bool_, _dt.date, _dt.time, _dt.timedelta, np.datetime64, np.timedelta64)):
        raise ValueError(f"{name} must be a real number, got {type(x).__name__} {x!r}")
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind in ("b", "M", "m"):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    return as_float_array(x, name)


def _range_scalars(x_min, x_max):
    lo = _real(x_min, "x_min")
    hi = _real(x_max, "x_max")
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
    if not math.isfinite(hi - lo):
        raise ValueError(
            f"the range [{lo:g}, {hi:g}] is too wide: max - min overflows float64 (inf), so no step size "
            "can be computed; real tensors never get near 1e308 -- look for an overflow upstream")
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
    s_in = _real(input_scale, "input_scale")
    s_w = _real(weight_scale, "weight_scale")
    if s_in.size != 1:
        raise ValueError("input_scale must be one number: activations are quantized per tensor")
    if (s_in <= 0).any() or (s_w <= 0).any():
        raise ValueError("scales must be > 0 (they are step sizes)")
    with np.errstate(over="ignore", under="ignore"):
        scales = float(s_in.reshape(())) * s_w.astype(np.float64)
        qmin, qmax = -(2**31), 2**31 - 1
        top = scales * qmin
    if not (np.isfinite(top).all() and (scales > 0).all()):
        raise ValueError("S_in * S_w under- or overflows float64 (0 or inf): these scales are not realistic "
                         f"step sizes (input_scale={float(s_in.reshape(())):g})")
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
    n = qp.bits
    # AIMET's is_symmetric means signed codes with Z = 0 and offset -2^(n-1) (-(2^(n-1) - 1) narrow);
    # anything else (unsigned "symmetric" codes too) is an asymmetric encoding on the full grid of 2^n codes.
    signed_sym = (bool(qp.symmetric) and qp.qmax == 2 ** (n - 1) - 1 and not z.any()
                  and qp.qmin in (-(2 ** (n - 1)), -(2 ** (n - 1) - 1)))
    if not signed_sym and qp.qmax - qp.qmin != 2**n - 1:
        raise ValueError(f"SNPE/AIMET asymmetric encodings use all 2^{n} codes, but this grid "
                         f"[{qp.qmin}, {qp.qmax}] has {qp.qmax - qp.qmin + 1}; use the full range "
                         "(narrow_range=False) or symmetric signed codes")
    encs = [SnpeEncoding(min=float(si * (qp.qmin - zi)), max=float(si * (qp.qmax - zi)), scale=float(si),
                         offset=int(qp.qmin - zi), bitwidth=n, is_symmetric=signed_sym)
            for si, zi in zip(s, z)]
    return encs[0] if qp.axis is None else encs


# ----------------------------------------------------------------------------- JSON
#: AIMET encodings-format versions qlib writes and reads. 0.6.1: each section maps a tensor name to a
#: list of entries (bitwidth, dtype, is_symmetric, min, max, offset, scale); 1.0.0: each section is a
#: list of entries {name, dtype, enc_type, is_sym, bw, scale: [...], offset: [...]}.
ENCODINGS_VERSIONS = ("0.6.1", "1.0.0")

_SECTIONS = ("activation_encodings", "param_encodings")


def encoding_entry(enc: SnpeEncoding) -> dict:
    """One 0.6.1 entry of an encodings file: bitwidth, dtype, is_symmetric ("True"/"False"), min, max, offset, scale.

    >>> encoding_entry(snpe_encoding(0.0, 10.0))["is_symmetric"]
    'False'
    """
    return {"bitwidth": int(enc.bitwidth), "dtype": "int", "is_symmetric": str(bool(enc.is_symmetric)),
            "max": float(enc.max), "min": float(enc.min), "offset": int(enc.offset), "scale": float(enc.scale)}


def encoding_entry_v1(name: str, encs) -> dict:
    """One 1.0.0 entry: ``{name, dtype "INT", enc_type, is_sym, bw, scale: [...], offset: [...]}``.

    ``encs`` is one :class:`SnpeEncoding` (``enc_type`` ``"PER_TENSOR"``) or a list of them, one per
    output channel (``"PER_CHANNEL"``). 1.0.0 has no min/max: they follow from scale, offset and bw.

    >>> e = encoding_entry_v1("x", snpe_encoding(-1.8, 0.5))
    >>> e["enc_type"], e["bw"], e["is_sym"], e["offset"]
    ('PER_TENSOR', 8, False, [-200])
    """
    one = isinstance(encs, SnpeEncoding)
    encs = [encs] if one else list(encs)
    return {"name": str(name), "dtype": "INT", "enc_type": "PER_TENSOR" if one else "PER_CHANNEL",
            "is_sym": bool(encs[0].is_symmetric), "bw": int(encs[0].bitwidth),
            "scale": [float(e.scale) for e in encs], "offset": [int(e.offset) for e in encs]}


def _encodings_of(name, value):
    if isinstance(value, QParams):
        value = qparams_to_encoding(value)
    if isinstance(value, SnpeEncoding):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(e, SnpeEncoding) for e in value):
        return list(value)
    raise ValueError(f"tensor {name!r}: expected QParams, an SnpeEncoding or a list of them, "
                     f"got {type(value).__name__}")


def _check_version(version) -> str:
    if version not in ENCODINGS_VERSIONS:
        raise ValueError(f"encodings version {version!r} is not one qlib knows: "
                         f"use {' or '.join(map(repr, ENCODINGS_VERSIONS))}")
    return version


def to_encodings_dict(activations: Mapping, params: Mapping, version: str = "0.6.1") -> dict:
    """An AIMET/SNPE encodings dictionary from two mappings tensor name -> QParams (or encodings).

    ``version="0.6.1"`` (default; what snpe-/qnn-converters' ``--quantization_overrides`` and AIMET's
    ``load_encodings`` read): ``{"version": "0.6.1", "activation_encodings": {name: [entry]},
    "param_encodings": {name: [entry, ...]}}`` -- one entry per channel for per-channel parameters.
    ``version="1.0.0"`` (AIMET 2's export): each section is a list of
    :func:`encoding_entry_v1` dicts. The names must be the tensor names of the graph the file is meant
    for (for :func:`snpe_model_encodings`: the float graph of ``qlib.export.fp32_to_onnx(model)``).

    >>> from qlib.linear import qparams_from_range
    >>> d = to_encodings_dict({"x": qparams_from_range(0.0, 1.0)}, {})
    >>> d["version"], d["activation_encodings"]["x"][0]["offset"]
    ('0.6.1', 0)
    >>> to_encodings_dict({"x": qparams_from_range(0.0, 1.0)}, {}, version="1.0.0")["activation_encodings"][0]["name"]
    'x'
    """
    version = _check_version(version)
    for label, m in (("activations", activations), ("params", params)):
        if not isinstance(m, Mapping):
            raise ValueError(f"{label} must be a mapping tensor name -> QParams, got {type(m).__name__}")
    sections = {"activation_encodings": activations, "param_encodings": params}
    out = {"version": version}
    for sec, m in sections.items():
        encs = {str(k): _encodings_of(k, v) for k, v in m.items()}
        if version == "0.6.1":
            out[sec] = {k: [encoding_entry(e) for e in ([v] if isinstance(v, SnpeEncoding) else v)]
                        for k, v in encs.items()}
        else:
            out[sec] = [encoding_entry_v1(k, v) for k, v in encs.items()]
    return out


def encodings_json(activations: Mapping, params: Mapping, indent: int = 2, version: str = "0.6.1") -> str:
    """The encodings dictionary of :func:`to_encodings_dict` as JSON text (floats round-trip exactly)."""
    return json.dumps(to_encodings_dict(activations, params, version=version), indent=indent)


# --- reading: every field is checked, a malformed file raises ValueError saying what is wrong
def _number(where, field, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{where}: {field} must be a number, got {v!r}")
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"{where}: {field} = {v!r} is too large for a float") from None
    if not math.isfinite(f):
        raise ValueError(f"{where}: {field} must be finite, got {v!r}")
    return f


def _whole(where, field, v) -> int:
    f = _number(where, field, v)
    if not f.is_integer():
        raise ValueError(f"{where}: {field} must be a whole number, got {v!r}")
    return int(v) if isinstance(v, numbers.Integral) else int(f)


def _encoding_from_fields(where, scale, offset, bitwidth, symmetric, enc_min=None, enc_max=None) -> SnpeEncoding:
    """Check one encoding (scale, offset, bitwidth, symmetry and, in 0.6.1, min/max) and build it."""
    bw = _whole(where, "bitwidth", bitwidth)
    if bw not in ALLOWED_BITS:
        raise ValueError(f"{where}: bitwidth {bw} is not supported (2 to 16, or 32 for biases)")
    scale = _number(where, "scale", scale)
    if scale <= 0:
        raise ValueError(f"{where}: scale must be > 0 (it is the step size), got {scale!r}")
    offset = _whole(where, "offset", offset)
    if symmetric:
        full, narrow = -(2 ** (bw - 1)), -(2 ** (bw - 1) - 1)
        if offset not in (full, narrow):
            raise ValueError(f"{where}: a symmetric {bw}-bit encoding has signed codes with Z = 0, so offset must be "
                             f"-2^{bw - 1} = {full} (or {narrow} for a narrow range), got {offset}")
        lo_code, hi_code = offset, 2 ** (bw - 1) - 1
    else:
        if not -(2**bw - 1) <= offset <= 0:
            raise ValueError(f"{where}: offset = -Z must lie in [-{2**bw - 1}, 0] for {bw}-bit codes, got {offset}")
        lo_code, hi_code = offset, 2**bw - 1 + offset
    lo, hi = lo_code * scale, hi_code * scale
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{where}: scale {scale!r} is so large that the encoding's range overflows")
    if enc_min is not None or enc_max is not None:
        mn, mx = _number(where, "min", enc_min), _number(where, "max", enc_max)
        if mn > mx:
            raise ValueError(f"{where}: min > max ({mn!r} > {mx!r})")
        tol = 0.5 * scale + 1e-6 * max(abs(lo), abs(hi))  # half a step, plus float32 round-off of min/max
        if abs(mn - lo) > tol or abs(mx - hi) > tol:
            raise ValueError(f"{where}: min/max = [{mn!r}, {mx!r}] contradict scale and offset, which give "
                             f"[{lo!r}, {hi!r}] (min = offset * scale, max = min + (2^bw - 1) * scale)")
        lo, hi = mn, mx
    return SnpeEncoding(min=lo, max=hi, scale=scale, offset=offset, bitwidth=bw, is_symmetric=bool(symmetric))


def _flag(where, field, v) -> bool:
    if v in ("True", "False") or isinstance(v, bool):
        return v in ("True", True)
    raise ValueError(f"{where}: {field} must be 'True' or 'False' (true/false in 1.0.0), got {v!r}")


def _dtype(where, v):
    if not isinstance(v, str) or v.lower() != "int":
        if isinstance(v, str) and v.lower() == "float":
            raise ValueError(f"{where}: dtype 'float' is a float (fp16) encoding, not an integer one; "
                             "qlib reads integer encodings")
        raise ValueError(f"{where}: dtype must be 'int' ('INT' in 1.0.0), got {v!r}")


def _entry_v061(name, e) -> SnpeEncoding:
    where = f"tensor {name!r}"
    if not isinstance(e, Mapping):
        raise ValueError(f"{where}: each entry must be an object with bitwidth, offset, scale, min, max")
    missing = [k for k in ("bitwidth", "offset", "scale", "min", "max") if k not in e]
    if missing:
        raise ValueError(f"{where}: entry misses {', '.join(missing)}")
    _dtype(where, e.get("dtype", "int"))
    sym = _flag(where, "is_symmetric", e.get("is_symmetric", "False"))
    return _encoding_from_fields(where, e["scale"], e["offset"], e["bitwidth"], sym, e["min"], e["max"])


def _entry_v100(e):
    if not isinstance(e, Mapping):
        raise ValueError(f"each 1.0.0 entry must be an object with name, dtype, enc_type, is_sym, bw, scale, offset; "
                         f"got {type(e).__name__}")
    name = e.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a 1.0.0 entry needs a 'name' (the tensor name), got {name!r}")
    where = f"tensor {name!r}"
    missing = [k for k in ("dtype", "enc_type", "is_sym", "bw", "scale", "offset") if k not in e]
    if missing:
        raise ValueError(f"{where}: entry misses {', '.join(missing)}")
    _dtype(where, e["dtype"])
    kind = e["enc_type"]
    if kind not in ("PER_TENSOR", "PER_CHANNEL"):
        raise ValueError(f"{where}: enc_type must be 'PER_TENSOR' or 'PER_CHANNEL' (block-wise encodings are not "
                         f"supported), got {kind!r}")
    scales, offsets = e["scale"], e["offset"]
    if not isinstance(scales, list) or not isinstance(offsets, list) or not scales or len(scales) != len(offsets):
        raise ValueError(f"{where}: scale and offset must be non-empty lists of the same length")
    if kind == "PER_TENSOR" and len(scales) != 1:
        raise ValueError(f"{where}: a PER_TENSOR encoding has one scale, got {len(scales)}")
    sym = _flag(where, "is_sym", e["is_sym"])
    return name, [_encoding_from_fields(where, s, o, e["bw"], sym) for s, o in zip(scales, offsets)]


def _no_constants(c):
    raise ValueError(f"{c} is not a number an encoding can hold")


def _read_source(source):
    if isinstance(source, Mapping):
        return source
    if isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        text = source
    elif isinstance(source, (str, os.PathLike)):
        try:
            is_file = os.path.isfile(source)
        except (ValueError, TypeError, OSError):
            is_file = False
        if not is_file:
            shown = str(source) if len(str(source)) <= 80 else str(source)[:77] + "..."
            raise ValueError(f"{shown!r} is neither JSON text (which starts with '{{') nor the path of an existing file")
        try:
            with open(source, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {str(source)!r}: {exc}") from None
    else:
        raise ValueError(f"source must be a path, JSON text or a dict, got {type(source).__name__}")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError("not valid encodings JSON: nested too deeply") from None


def load_encodings(source, section: str | None = None, axis: int = 0) -> dict:
    """Read an AIMET encodings file (path, JSON text or dict), version 0.6.1 or 1.0.0, into tensor name -> QParams.

    ``section`` None merges ``activation_encodings`` and ``param_encodings`` (names must be
    unique); ``"activation_encodings"`` or ``"param_encodings"`` reads one. Several entries
    (0.6.1) or ``enc_type`` ``"PER_CHANNEL"`` (1.0.0) become per-channel parameters along ``axis``
    (0 = output channel of an (out, in) weight).

    Every entry is checked, and anything malformed raises ValueError naming the tensor and the
    field: a missing or unknown ``version``, a whole number that is not whole (offset -200.9,
    bitwidth 8.7 or "8"), a scale <= 0, NaN/inf, an offset outside [-(2^bw - 1), 0], a symmetric
    offset other than -2^(bw-1) (or -(2^(bw-1) - 1), narrow), min > max, min/max contradicting
    scale and offset (by more than half a step), float or block-wise encodings.

    >>> from qlib.linear import qparams_from_range
    >>> text = encodings_json({"x": qparams_from_range(-1.8, 0.5)}, {})
    >>> load_encodings(text)["x"].zero_point
    200
    >>> load_encodings(encodings_json({"x": qparams_from_range(-1.8, 0.5)}, {}, version="1.0.0"))["x"].zero_point
    200
    """
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or axis < 0:
        raise ValueError(f"axis must be a non-negative integer, got {axis!r}")
    if section is not None:
        check_choice(section, "section", _SECTIONS)
    data = _read_source(source)
    if not isinstance(data, Mapping):
        raise ValueError(f"an encodings file is a JSON object, got {type(data).__name__}")
    if "version" not in data:
        raise ValueError("the encodings have no 'version': AIMET and QNN would read them as the old 0.4.0 layout; "
                         f"qlib reads versions {' and '.join(ENCODINGS_VERSIONS)} (write one with qlib.encodings_json)")
    version = data["version"]
    if version not in ENCODINGS_VERSIONS:
        raise ValueError(f"encodings version {version!r} is not supported: qlib reads "
                         f"{' and '.join(ENCODINGS_VERSIONS)}")
    if not any(s in data for s in _SECTIONS):
        raise ValueError("an encodings file needs 'activation_encodings' and/or 'param_encodings'")
    out = {}
    for sec in _SECTIONS if section is None else (section,):
        content = data.get(sec, {} if version == "0.6.1" else [])
        if version == "0.6.1":
            if not isinstance(content, Mapping):
                raise ValueError(f"{sec}: in version 0.6.1 a section maps tensor names to lists of entries, "
                                 f"got {type(content).__name__}")
            items = []
            for name, entries in content.items():
                if not isinstance(name, str) or not name:
                    raise ValueError(f"{sec}: tensor names must be non-empty strings, got {name!r}")
                if not isinstance(entries, list) or not entries:
                    raise ValueError(f"tensor {name!r}: expected a non-empty list of entries")
                items.append((name, [_entry_v061(name, e) for e in entries]))
        else:
            if not isinstance(content, list):
                raise ValueError(f"{sec}: in version 1.0.0 a section is a list of entries, got {type(content).__name__}")
            items = [_entry_v100(e) for e in content]
            names = [n for n, _ in items]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{sec}: tensor {sorted(dup)[0]!r} appears more than once")
        for name, encs in items:
            if name in out:
                raise ValueError(f"tensor {name!r} appears in both sections; load them one at a time")
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
    if not (hasattr(model, "activations") and hasattr(model, "layers")):
        raise ValueError(f"model must be a qlib MLP (with .layers and .activations), got {type(model).__name__}")
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
