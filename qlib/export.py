"""Deployment: export a quantized MLP to ONNX (QDQ format) and run it on ONNX Runtime.

The QDQ ("quantize-dequantize") format stores the integer codes and their scale/zero point,
and writes the arithmetic as float operators between ``QuantizeLinear`` and
``DequantizeLinear`` nodes::

    input --Q--> codes --DQ--> MatMul(., DQ(W codes)) --Add(DQ(int32 bias))--> Relu --Q--> codes --DQ--> ...

Read literally that is float math on dequantized values. An engine such as ONNX Runtime
recognises the pattern ``DQ -> MatMul/Gemm -> Q`` and replaces it with an *integer*
kernel (``QGemm``, ``QLinearMatMul``, ``MatMulInteger``); :func:`optimized_ops` reads the graph
ORT actually ran, to prove it. ONNX's MatMul takes weights as (in, out), the transpose of
qlib's (out, in), so per-channel weight scales sit on ``axis=1`` (``DequantizeLinear``'s
``axis`` needs opset 13 or later).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .integer import INT32_MAX, INT32_MIN
from .linear import QParams

__all__ = [
    "INTEGER_KERNELS",
    "tensor_names",
    "to_onnx",
    "fp32_to_onnx",
    "check_onnx",
    "save_onnx",
    "ort_session",
    "run_ort",
    "optimized_ops",
    "integer_kernels",
    "float_matmuls",
    "compare_codes",
    "ort_requantize",
    "u8s8_saturating_accumulate",
    "bias_qparams",
    "encodings_for",
    "cpu_has_vnni",
]

#: ONNX Runtime ops that compute a matrix product on integer codes (int32 accumulation).
INTEGER_KERNELS = ("QGemm", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
                   "DynamicQuantizeMatMul", "QLinearConv", "ConvInteger")

_WEIGHT_DTYPES = ("int8", "uint8")


def _onnx():
    import onnx  # imported lazily: qlib's other modules must not need it
    from onnx import TensorProto, helper, numpy_helper

    return onnx, TensorProto, helper, numpy_helper


# ----------------------------------------------------------------------------- naming
def tensor_names(qmodel) -> list:
    """Names of the activation tensors: the network input, then each layer's output.

    The PTQ model's observers are keyed by them (``["input", "relu1", "relu2", "fc3"]`` for
    the reference MLP: a layer followed by a ReLU is named after the ReLU).
    """
    layers = _layers(qmodel)
    obs = list(getattr(qmodel, "observers", {}) or {})
    if len(obs) == len(layers) + 1:
        return obs
    return ["input"] + [f"{L.name}_out" for L in layers]


def _layers(qmodel):
    layers = getattr(qmodel, "layers", None)
    if not layers or not all(hasattr(L, "w_codes") for L in layers):
        raise ValueError(f"expected a qlib.ptq.QuantizedMLP (with .layers of QuantLinear), got {type(qmodel).__name__}")
    return layers


def _act_dtype(qp: QParams):
    if qp.bits > 8:
        raise ValueError(f"ONNX QuantizeLinear at opset 13 holds 8-bit codes; this tensor has {qp.bits} bits")
    if (qp.qmin, qp.qmax) not in ((0, 255), (-128, 127)):
        raise ValueError(
            f"activation codes in [{qp.qmin}, {qp.qmax}]: ONNX QuantizeLinear (opset 13) clamps to the full 8-bit "
            "range of its type, so a narrower grid (fewer bits, narrow range) would not be clamped; "
            "export 8-bit activations")
    return (np.int8, "INT8") if qp.signed else (np.uint8, "UINT8")


def bias_qparams(layer) -> QParams:
    """The int32 bias's parameters: scale ``S_in * S_w`` (one per output channel), zero point 0.

    >>> from types import SimpleNamespace
    >>> qp = bias_qparams(SimpleNamespace(bias_scale=np.array([0.01, 0.02])))
    >>> qp.bits, qp.qmin, qp.zero_point.tolist()
    (32, -2147483648, [0, 0])
    """
    s = np.atleast_1d(np.asarray(layer.bias_scale, dtype=np.float64))
    return QParams(scale=s, zero_point=np.zeros(s.shape, np.int64), qmin=INT32_MIN, qmax=INT32_MAX,
                   bits=32, axis=0, symmetric=True)


# ----------------------------------------------------------------------------- export
def to_onnx(qmodel, weight_dtype: str = "int8", opset: int = 13, hidden_outputs: bool = False,
            name: str = "qlib_mlp_int8"):
    """The PTQ model as an ONNX QDQ graph (an ``onnx.ModelProto``, checked).

    Per layer: ``DequantizeLinear`` of the weight codes stored (in, out) with scales on
    ``axis=1`` (per-channel) or one scale (per-tensor); ``MatMul``; ``Add`` of the
    ``DequantizeLinear``-ed int32 bias (scale ``S_in * S_w``, zero point 0); ``Relu`` if the
    layer has one; ``QuantizeLinear`` to the output's scale and zero point. Outputs:
    ``logits`` (float32, dequantized) and ``logits_codes`` (the integer codes); with
    ``hidden_outputs`` also every hidden layer's output codes (``relu1_q``, ...).

    ``weight_dtype="uint8"`` stores the same weights as ``w + 128`` with zero point 128: the
    real values are identical, but ONNX Runtime then picks its u8u8 kernel, which cannot
    saturate (the u8s8 kernel of AVX2 CPUs without VNNI adds pairs of products in int16
    and clamps them; :func:`cpu_has_vnni`).
    """
    onnx, TensorProto, helper, numpy_helper = _onnx()
    if weight_dtype not in _WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype={weight_dtype!r} is not one of {', '.join(map(repr, _WEIGHT_DTYPES))}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 13:
        raise ValueError(f"opset must be an integer >= 13 (per-channel DequantizeLinear needs its axis), got {opset!r}")
    layers = _layers(qmodel)
    names = tensor_names(qmodel)
    nodes, inits = [], []

    def init(tname, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), tname))
        return tname

    def qdq_act(src, tname, qp):
        np_dt, _ = _act_dtype(qp)
        s = init(f"{tname}_scale", np.float32(qp.scale))
        z = init(f"{tname}_zero_point", np_dt(qp.zero_point))
        nodes.append(helper.make_node("QuantizeLinear", [src, s, z], [f"{tname}_q"], name=f"{tname}_quantize"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{tname}_q", s, z], [f"{tname}_dq"],
                                      name=f"{tname}_dequantize"))
        return f"{tname}_q", f"{tname}_dq"

    extra = []
    q, cur = qdq_act("input", names[0], layers[0].in_qp)
    extra.append((q, layers[0].in_qp))
    for L, out_name in zip(layers, names[1:]):
        if L.w_qp.bits > 8:
            raise ValueError(f"{L.name}: {L.w_qp.bits}-bit weights do not fit ONNX's int8 (opset 13)")
        w = np.asarray(L.w_codes).astype(np.int64).T  # (in, out)
        zw = np.asarray(L.w_qp.zero_point, np.int64)
        if weight_dtype == "uint8":
            if not L.w_qp.signed:
                raise ValueError(f"{L.name}: weight_dtype='uint8' shifts signed codes by 128; these are unsigned")
            w, zw = w + 128, zw + 128
        wdt = np.uint8 if weight_dtype == "uint8" else np.int8
        per_channel = L.w_qp.axis is not None
        ws = np.asarray(L.w_qp.scale, np.float32)
        wattrs = {"axis": 1} if per_channel else {}
        init(f"{L.name}.weight_q", w.astype(wdt))
        init(f"{L.name}.weight_scale", ws)
        init(f"{L.name}.weight_zero_point", zw.astype(wdt))
        nodes.append(helper.make_node("DequantizeLinear", [f"{L.name}.weight_q", f"{L.name}.weight_scale",
                                                          f"{L.name}.weight_zero_point"], [f"{L.name}.weight"],
                                      name=f"{L.name}.weight_dequantize", **wattrs))
        bscale = np.asarray(L.bias_scale, np.float32)
        bscale = bscale if per_channel else np.float32(bscale.reshape(-1)[0])
        init(f"{L.name}.bias_q", np.asarray(L.bias_codes, np.int32))
        init(f"{L.name}.bias_scale", bscale)
        # no zero-point input: DequantizeLinear's zero point defaults to 0, which is the bias's
        nodes.append(helper.make_node("DequantizeLinear", [f"{L.name}.bias_q", f"{L.name}.bias_scale"], [f"{L.name}.bias"],
                                      name=f"{L.name}.bias_dequantize", **({"axis": 0} if per_channel else {})))
        nodes.append(helper.make_node("MatMul", [cur, f"{L.name}.weight"], [f"{L.name}.matmul"], name=f"{L.name}.matmul"))
        nodes.append(helper.make_node("Add", [f"{L.name}.matmul", f"{L.name}.bias"], [f"{L.name}.add"], name=f"{L.name}.add"))
        y = f"{L.name}.add"
        if L.relu:
            nodes.append(helper.make_node("Relu", [y], [f"{out_name}_relu"], name=f"{out_name}"))
            y = f"{out_name}_relu"
        q, cur = qdq_act(y, out_name, L.out_qp)
        extra.append((q, L.out_qp))
    _, out_dt = _act_dtype(layers[-1].out_qp)
    n_in, n_out = layers[0].w_codes.shape[1], layers[-1].w_codes.shape[0]
    nodes.append(helper.make_node("Identity", [cur], ["logits"], name="logits"))
    nodes.append(helper.make_node("Identity", [q], ["logits_codes"], name="logits_codes"))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_out]),
         helper.make_tensor_value_info("logits_codes", getattr(TensorProto, out_dt), ["batch", n_out])]
        + ([helper.make_tensor_value_info(t, getattr(TensorProto, _act_dtype(qp)[1]), ["batch", None]) for t, qp in extra[:-1]]
           if hidden_outputs else []),
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="qlib")
    model.ir_version = min(model.ir_version, 8)  # readable by older onnxruntime releases too
    check_onnx(model)
    return model


def fp32_to_onnx(model, opset: int = 13, name: str = "qlib_mlp_fp32"):
    """The float model as ONNX (``MatMul`` + ``Add`` + ``Relu`` with float32 weights), checked."""
    onnx, TensorProto, helper, numpy_helper = _onnx()
    from .nn import Linear, ReLU

    nodes, inits, cur = [], [], "input"
    for layer in model.layers:
        if isinstance(layer, Linear):
            inits.append(numpy_helper.from_array(np.ascontiguousarray(layer.W.T, np.float32), f"{layer.name}.weight"))
            inits.append(numpy_helper.from_array(np.asarray(layer.b, np.float32), f"{layer.name}.bias"))
            nodes.append(helper.make_node("MatMul", [cur, f"{layer.name}.weight"], [f"{layer.name}.matmul"]))
            nodes.append(helper.make_node("Add", [f"{layer.name}.matmul", f"{layer.name}.bias"], [layer.name]))
            cur = layer.name
        elif isinstance(layer, ReLU):
            nodes.append(helper.make_node("Relu", [cur], [layer.name]))
            cur = layer.name
        else:
            raise ValueError(f"fp32_to_onnx handles Linear and ReLU layers, got {layer!r}")
    lin = model.linear_layers
    nodes.append(helper.make_node("Identity", [cur], ["logits"]))
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", lin[0].in_features])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", lin[-1].out_features])],
                              inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="qlib")
    m.ir_version = min(m.ir_version, 8)
    check_onnx(m)
    return m


def check_onnx(model) -> None:
    """``onnx.checker.check_model`` with shape inference (``full_check``): raises if the graph is invalid."""
    onnx, *_ = _onnx()
    onnx.checker.check_model(model, full_check=True)


def save_onnx(model, path) -> int:
    """Write the model to ``path`` and return its size on disk in bytes."""
    onnx, *_ = _onnx()
    path = Path(path)
    onnx.save(model, str(path))
    return os.path.getsize(path)


# ----------------------------------------------------------------------------- run
_LEVELS = ("disable_all", "basic", "extended", "all")


def ort_session(model, optimized_path=None, level: str = "extended", threads: int = 1,
                disabled_optimizers=()):
    """An ONNX Runtime CPU session for ``model`` (a ModelProto or a path).

    ``optimized_path``: where ORT writes the graph *after* its optimizations (the graph it
    really runs; read it back with :func:`optimized_ops`). ``level``: ``"disable_all"``
    (run the QDQ graph literally, in float), ``"basic"``, ``"extended"`` (default: includes the
    QDQ -> integer-kernel fusions) or ``"all"``.
    """
    import onnxruntime as ort

    if level not in _LEVELS:
        raise ValueError(f"level={level!r} is not one of {', '.join(map(repr, _LEVELS))}")
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    src = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    return ort.InferenceSession(src if isinstance(src, bytes) else str(src), so,
                                providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled_optimizers))


def run_ort(session, X) -> dict:
    """Run the session on ``X`` (cast to float32) and return ``{output name: array}``."""
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: X})))


def optimized_ops(path) -> list:
    """Op types of a saved ONNX graph, in order, as ``"domain:Op"`` for non-standard domains."""
    onnx, *_ = _onnx()
    m = onnx.load(str(path))
    return [f"{n.domain}:{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in m.graph.node]


def integer_kernels(ops) -> list:
    """The ops of ``ops`` that are integer matrix kernels (:data:`INTEGER_KERNELS`).

    >>> integer_kernels(["QuantizeLinear", "com.microsoft:QGemm", "DequantizeLinear"])
    ['com.microsoft:QGemm']
    """
    return [op for op in ops if op.split(":")[-1] in INTEGER_KERNELS]


def float_matmuls(ops) -> list:
    """The float matrix products left in ``ops`` (``MatMul``, ``Gemm``, ``FusedMatMul``, ``FusedGemm``).

    >>> float_matmuls(["QuantizeLinear", "MatMul", "Add", "com.microsoft:FusedGemm"])
    ['MatMul', 'com.microsoft:FusedGemm']
    """
    return [op for op in ops if op.split(":")[-1] in ("MatMul", "Gemm", "FusedMatMul", "FusedGemm")]


def compare_codes(a, b) -> dict:
    """How two code arrays differ: ``{"n": size, "differ": count, "max_abs": largest |a - b|}``.

    Cast to int64 first (uint8 - uint8 wraps around in numpy).

    >>> compare_codes(np.array([0, 255, 7], np.uint8), np.array([1, 255, 7], np.uint8))
    {'n': 3, 'differ': 1, 'max_abs': 1}
    """
    a64, b64 = np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64)
    if a64.shape != b64.shape:
        raise ValueError(f"shapes differ: {a64.shape} vs {b64.shape}")
    d = np.abs(a64 - b64)
    return {"n": int(d.size), "differ": int((d != 0).sum()), "max_abs": int(d.max()) if d.size else 0}


def ort_requantize(acc, layer) -> np.ndarray:
    """What ONNX Runtime's integer kernels do with an int32 accumulator, emulated in numpy::

        M32  = float32(S_in) * float32(S_w) / float32(S_out)      (float32 arithmetic)
        code = clamp(round_half_even(float32(acc) * M32) + Z_out, lo, qmax)

    The same formula as qlib's simulation, but every number is float32 (24-bit mantissa)
    where qlib uses float64 -- so the two can differ by one code where ``acc * M`` is close
    to a tie.
    """
    s_in = np.float32(layer.in_qp.scale)
    s_w = np.asarray(layer.w_qp.scale, np.float32)
    m32 = (s_in * s_w) / np.float32(layer.out_qp.scale)
    v = np.rint(np.asarray(acc).astype(np.float32) * m32.astype(np.float32)).astype(np.int64)
    lo = max(layer.out_qp.qmin, layer.out_qp.zero_point) if layer.relu else layer.out_qp.qmin
    return np.clip(v + layer.out_qp.zero_point, lo, layer.out_qp.qmax)


def u8s8_saturating_accumulate(x_codes, w_codes, x_zero_point, bias) -> np.ndarray:
    """The accumulator of an x86 AVX2 u8 x s8 kernel without VNNI (``vpmaddubsw``), emulated::

        acc = sum_j sat16(x[2j] w[2j] + x[2j+1] w[2j+1])  -  Z_x sum_k w[k]  +  bias

    ``vpmaddubsw`` multiplies unsigned by signed bytes and adds *pairs* of products into a
    16-bit integer, clamping to [-32768, 32767]; the pair sums are then added in int32.
    With input codes up to 255 and weight codes up to 127 a pair can reach 64770: it saturates.

    >>> x = np.array([[255, 255, 1, 1]], np.uint8); w = np.array([[127, 127, 1, 1]], np.int8)
    >>> u8s8_saturating_accumulate(x, w, 0, [0]).tolist(), (x.astype(int) @ w.T.astype(int)).tolist()
    ([[32769]], [[64772]])
    """
    x = np.asarray(x_codes).astype(np.int64)
    w = np.asarray(w_codes).astype(np.int64)
    if x.shape[-1] % 2:
        x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), np.int64)], axis=-1)
        w = np.concatenate([w, np.zeros((w.shape[0], 1), np.int64)], axis=-1)
    prod = x[..., None, :] * w  # (..., out, in)
    pairs = np.clip(prod[..., 0::2] + prod[..., 1::2], -32768, 32767)
    return pairs.sum(axis=-1) - int(x_zero_point) * w.sum(axis=1) + np.asarray(bias, np.int64)


# ----------------------------------------------------------------------------- encodings / hardware
def encodings_for(qmodel, graph: str = "float", version: str = "0.6.1") -> dict:
    """The model's AIMET/SNPE encodings (``activation_encodings`` / ``param_encodings``), AIMET format ``version``.

    The names are tensor names of one ONNX graph, chosen by ``graph``:

    * ``"float"`` (default): the float graph :func:`fp32_to_onnx` writes for the model -- what AIMET
      exports next to its encodings and what SNPE/QNN converters take with ``--quantization_overrides``.
      Activations ``input``, ``relu1``, ``relu2``, ``fc3`` (a layer followed by a ReLU is quantized
      after the ReLU), parameters the initializers ``fc1.weight``, ``fc1.bias``, ...
    * ``"qdq"``: the QDQ graph of :func:`to_onnx`; each activation is named by the float tensor its
      ``QuantizeLinear`` reads (``input``, ``relu1_relu``, ``relu2_relu``, ``fc3.add``), each parameter by
      its ``DequantizeLinear`` output (``fc1.weight``, ``fc1.bias``).

    Per-channel weights have one entry per output channel; biases are 32-bit (scale ``S_in * S_w``).
    Uses :func:`qlib.snpe.to_encodings_dict`.
    """
    from .snpe import to_encodings_dict

    if graph not in ("float", "qdq"):
        raise ValueError(f"graph={graph!r} is not one of 'float', 'qdq'")
    layers = _layers(qmodel)
    names = tensor_names(qmodel)
    if graph == "qdq":
        names = [names[0]] + [f"{n}_relu" if L.relu else f"{L.name}.add" for n, L in zip(names[1:], layers)]
    acts = {names[0]: layers[0].in_qp}
    acts.update({n: L.out_qp for n, L in zip(names[1:], layers)})
    params = {}
    for L in layers:
        params[f"{L.name}.weight"] = L.w_qp
        params[f"{L.name}.bias"] = bias_qparams(L)
    return to_encodings_dict(acts, params, version=version)


def cpu_has_vnni():
    """True/False if this (Linux) CPU has the VNNI int8 dot-product instructions, None if unknown.

    Without VNNI, x86 int8 kernels multiply u8 x s8 with ``vpmaddubsw``, which adds pairs of
    products into int16 and saturates: 255 * 127 + 255 * 127 = 64770 does not fit in 32767.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    if not flags:
        return None
    return bool({"avx512_vnni", "avx_vnni"} & flags)
