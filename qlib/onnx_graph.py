"""Small, readable helpers to quantize a real ONNX graph (the capstone's direction classifier).

Not a general converter: each helper does one step on a Conv/MatMul network such as the
MobileNetV3-style classifier, and returns a *new* ``ModelProto`` (inputs are never modified).

1. :func:`constants_to_initializers` -- the Paddle export keeps weights in ``Constant`` nodes;
   as initializers they are easy to read and replace.
2. :func:`census` -- op counts, parameter count, where BatchNormalization sits.
3. :func:`fold_batchnorms` -- merge every Conv -> BatchNormalization pair (qlib.bn.fold_batchnorm).
4. :func:`weight_tensors` / :func:`replace_initializers` / :func:`quantize_weights` -- weight-only
   (fake-)quantization with qlib, per-tensor or per-channel, max-abs or MSE clipping.
5. :func:`relu_pairs` / :func:`equalize` -- cross-layer equalization where the activation allows it.
6. :func:`to_opset` -- ``onnx.version_converter`` (per-channel DequantizeLinear needs opset 13).
7. :func:`quantizable_activations` / :func:`calibrate` / :func:`insert_qdq` -- static W8A8:
   observe activations, then insert QuantizeLinear/DequantizeLinear with qlib's scales.
"""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np

from .bn import fold_batchnorm
from .cle import equalize_pair
from .linear import QParams, fake_quantize, integer_range, qparams_from_range, quantize
from ._validate import check_bits, check_choice

__all__ = ["constants_to_initializers", "initializers", "census", "fold_batchnorms", "weight_tensors",
           "replace_initializers", "mse_clip_ranges", "weight_qparams", "quantize_weights", "relu_pairs",
           "equalize", "to_opset", "quantizable_activations", "with_outputs", "calibrate", "static_quantize", "insert_qdq",
           "qdq_scales", "ort_quantize_static"]

GRANULARITIES = ("per-tensor", "per-channel")
WEIGHT_METHODS = ("maxabs", "mse")


# ----------------------------------------------------------------------------- basics
def constants_to_initializers(model):
    """Copy of ``model`` where every ``Constant`` node holding a tensor becomes a graph initializer."""
    import onnx
    from onnx import numpy_helper

    m = copy.deepcopy(model)
    keep = []
    for node in m.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            arr = numpy_helper.to_array(node.attribute[0].t)
            m.graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.checker.check_model(m)
    return m


def initializers(model) -> dict:
    """All initializers as ``{name: numpy array}`` (copies)."""
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}


def _consumers(model) -> dict:
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _producer(model) -> dict:
    return {out: node for node in model.graph.node for out in node.output}


def _attr(node, name, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def census(model) -> dict:
    """Summary of a graph: ``ops`` (Counter of op types), ``params`` (number of weights in
    initializers and Constant nodes), ``conv_bn`` (Conv outputs that feed a BatchNormalization),
    ``bn_alone`` (BatchNormalizations not right after a Conv), ``opset``."""
    from onnx import numpy_helper

    ops = Counter(n.op_type for n in model.graph.node)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    params += sum(int(np.prod(numpy_helper.to_array(n.attribute[0].t).shape))
                  for n in model.graph.node if n.op_type == "Constant")
    prod = _producer(model)
    conv_bn, alone = [], []
    for n in model.graph.node:
        if n.op_type == "BatchNormalization":
            p = prod.get(n.input[0])
            (conv_bn if p is not None and p.op_type == "Conv" else alone).append(n.input[0])
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {"ops": ops, "params": params, "conv_bn": conv_bn, "bn_alone": alone, "opset": opset}


def replace_initializers(model, arrays: dict):
    """Copy of ``model`` with the initializers named in ``arrays`` replaced (added if new)."""
    from onnx import numpy_helper

    m = copy.deepcopy(model)
    names = {t.name: i for i, t in enumerate(m.graph.initializer)}
    for name, arr in arrays.items():
        t = numpy_helper.from_array(np.asarray(arr), name)
        if name in names:
            m.graph.initializer[names[name]].CopyFrom(t)
        else:
            m.graph.initializer.append(t)
    return m


# ----------------------------------------------------------------------------- BN folding
def fold_batchnorms(model):
    """Fold every ``Conv -> BatchNormalization`` pair (Conv output used only by the BN) into the
    Conv: new weights and bias from :func:`qlib.fold_batchnorm`, the BN node removed.
    ``model`` must hold its weights as initializers (see :func:`constants_to_initializers`)."""
    m = copy.deepcopy(model)
    init = initializers(m)
    users, prod = _consumers(m), _producer(m)
    new_init, drop, rename = {}, set(), {}
    for bn in m.graph.node:
        if bn.op_type != "BatchNormalization":
            continue
        conv = prod.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or len(users[bn.input[0]]) != 1 or conv.input[1] not in init:
            continue
        gamma, beta, mean, var = (init[n] for n in bn.input[1:5])
        W = init[conv.input[1]]
        b = init[conv.input[2]] if len(conv.input) > 2 else None
        Wf, bf = fold_batchnorm(W, b, gamma, beta, mean, var, eps=_attr(bn, "epsilon", 1e-5))
        bias_name = conv.input[2] if len(conv.input) > 2 else conv.input[1] + "_folded_bias"
        new_init[conv.input[1]], new_init[bias_name] = Wf.astype(np.float32), bf.astype(np.float32)
        if len(conv.input) == 2:
            conv.input.append(bias_name)
        rename[conv.output[0]] = bn.output[0]  # the Conv now produces what the BN produced
        drop.add(id(bn))
    nodes = [n for n in m.graph.node if id(n) not in drop]
    for n in nodes:
        if n.op_type == "Conv" and n.output[0] in rename:
            n.output[0] = rename[n.output[0]]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    m = replace_initializers(m, new_init)
    used = {i for n in m.graph.node for i in n.input}
    keep = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return m


# ----------------------------------------------------------------------------- weights
def weight_tensors(model) -> dict:
    """The weights we quantize: ``{initializer name: channel axis}`` for every Conv (axis 0,
    output channels) and MatMul with a constant right-hand side (axis 1: ONNX MatMul is (in, out))."""
    init = {t.name for t in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type == "Conv" and n.input[1] in init:
            out[n.input[1]] = 0
        elif n.op_type == "MatMul" and n.input[1] in init:
            out[n.input[1]] = 1
    return out


def _reduce_except(x, axis):
    if axis is None:
        return x.reshape(-1)[None, :]
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def mse_clip_ranges(W, bits: int, axis=None, n_grid: int = 40) -> np.ndarray:
    """Symmetric clipping thresholds that minimise the weight MSE: for each channel (or the
    whole tensor when ``axis`` is None) try ``t = a * max|W|`` for ``a`` in a grid over
    (0.3, 1] and keep the ``t`` whose fake-quantized weights ``S*clamp(round(W/S), -qmax, qmax)``,
    ``S = t / qmax``, have the smallest mean squared error. Returns one ``t`` per channel
    (a 0-d array per-tensor).

    >>> w = np.array([0.4] * 8 + [1.0])     # one outlier; 2 bits give codes -1, 0, 1 only
    >>> print(f"{float(mse_clip_ranges(w, bits=2)):.2f}")   # well below max|w| = 1: the outlier is clipped
    0.46
    """
    bits = check_bits(bits)
    W = np.asarray(W, dtype=np.float64)
    rows = _reduce_except(W, axis)
    amax = np.abs(rows).max(axis=1)
    qmax = integer_range(bits, signed=True, narrow_range=True)[1]
    alphas = np.linspace(1.0, 0.3, n_grid)
    best_t, best_err = amax.copy(), np.full(len(rows), np.inf)
    for a in alphas:
        t = np.maximum(a * amax, 1e-12)
        s = (t / qmax)[:, None]
        err = np.mean((np.clip(np.rint(rows / s), -qmax, qmax) * s - rows) ** 2, axis=1)
        better = err < best_err
        best_t[better], best_err[better] = t[better], err[better]
    return best_t if axis is not None else best_t.reshape(())


def weight_qparams(W, bits: int = 8, granularity: str = "per-channel", method: str = "maxabs",
                   axis: int = 0) -> QParams:
    """Symmetric signed narrow-range parameters (codes in [-qmax, qmax], as ONNX Runtime's
    QInt8 weights) from the max |w| (``method="maxabs"``) or the MSE-best clipping threshold
    (``"mse"``), per tensor or per channel along ``axis``.

    >>> qp = weight_qparams(np.array([[1.0, -0.5], [0.1, 0.2]]), bits=8, granularity="per-channel")
    >>> print(np.round(qp.scale * 127, 6), qp.qmin, qp.qmax)
    [1.  0.2] -127 127
    """
    check_choice(granularity, "granularity", GRANULARITIES)
    check_choice(method, "method", WEIGHT_METHODS)
    W = np.asarray(W, dtype=np.float64)
    ax = axis % W.ndim if granularity == "per-channel" else None
    if method == "mse":
        t = mse_clip_ranges(W, bits, ax)
    else:
        t = np.abs(W).max() if ax is None else np.abs(_reduce_except(W, ax)).max(axis=1)
    return qparams_from_range(-t, t, bits=bits, symmetric=True, narrow_range=True, axis=ax)


def quantize_weights(model, bits: int = 8, granularity: str = "per-channel", method: str = "maxabs"):
    """Weight-only quantization: every Conv/MatMul weight replaced by its fake-quantized value
    ``S*(q - Z)`` (float32), so ONNX Runtime runs the exact values an int-``bits`` model stores.
    Returns ``(new_model, {name: QParams})``."""
    init = initializers(model)
    new, qps = {}, {}
    for name, axis in weight_tensors(model).items():
        qp = weight_qparams(init[name], bits, granularity, method, axis)
        new[name] = fake_quantize(init[name].astype(np.float64), qp).astype(np.float32)
        qps[name] = qp
    return replace_initializers(model, new), qps


# ----------------------------------------------------------------------------- CLE
def relu_pairs(model) -> list:
    """Conv pairs ``(conv1, conv2)`` joined by a single ReLU, where cross-layer equalization is
    exact: conv1's output feeds only the ReLU, the ReLU's output feeds only conv2, and conv2 is
    an ordinary (group=1) or depthwise conv. Hard-swish / ReLU6 / HardSigmoid links are skipped
    (not positively homogeneous), and so is a ReLU whose output also feeds a squeeze-excite branch."""
    users, prod = _consumers(model), _producer(model)
    init = initializers(model)
    pairs = []
    for relu in model.graph.node:
        if relu.op_type != "Relu":
            continue
        c1 = prod.get(relu.input[0])
        after = users.get(relu.output[0], [])
        if c1 is None or c1.op_type != "Conv" or len(users[relu.input[0]]) != 1 or len(after) != 1:
            continue
        c2 = after[0]
        if c2.op_type != "Conv" or c2.input[0] != relu.output[0]:
            continue
        C = init[c1.input[1]].shape[0]
        g = _attr(c2, "group", 1)
        if g == 1 or (g == C and init[c2.input[1]].shape[1] == 1):
            pairs.append((c1, c2))
    return pairs


def equalize(model, iterations: int = 4):
    """Cross-layer equalization on every :func:`relu_pairs` pair (BN must be folded first).
    Pairs are swept ``iterations`` times, since a layer can sit in two pairs (dw conv between
    two 1x1 convs). Returns ``(new_model, n_pairs)``; the function computed stays the same."""
    m = copy.deepcopy(model)
    pairs = relu_pairs(m)
    init = initializers(m)
    for _ in range(int(iterations)):
        for c1, c2 in pairs:
            b_name = c1.input[2] if len(c1.input) > 2 else None
            if b_name is None:
                raise ValueError("equalize needs the first conv to carry a bias: fold BatchNorm first")
            depthwise = _attr(c2, "group", 1) != 1
            W1, b1, W2, _ = equalize_pair(init[c1.input[1]], init[b_name], init[c2.input[1]], depthwise)
            init[c1.input[1]], init[b_name], init[c2.input[1]] = W1, b1, W2
    names = {n for c1, c2 in pairs for n in (c1.input[1], c1.input[2], c2.input[1])}
    return replace_initializers(m, {n: init[n].astype(np.float32) for n in names}), len(pairs)


# ----------------------------------------------------------------------------- opset
def to_opset(model, version: int = 13):
    """Convert the graph to another opset with ``onnx.version_converter`` (checked)."""
    import onnx
    from onnx import version_converter

    m = version_converter.convert_version(model, int(version))
    onnx.checker.check_model(m)
    return m


# ----------------------------------------------------------------------------- static quantization
def quantizable_activations(model) -> list:
    """Activation tensors that feed a Conv or MatMul (their data input): the ones a W8A8
    integer kernel needs as 8-bit codes. Everything else (Add, Mul, HardSigmoid, Softmax, ...)
    stays float between DequantizeLinear and QuantizeLinear."""
    init = {t.name for t in model.graph.initializer}
    seen = []
    for n in model.graph.node:
        if n.op_type in ("Conv", "MatMul") and n.input[0] not in init and n.input[0] not in seen:
            seen.append(n.input[0])
    return seen


def with_outputs(model, names):
    """Copy of ``model`` that also returns the tensors ``names`` (to observe activations)."""
    import onnx

    m = copy.deepcopy(model)
    have = {o.name for o in m.graph.output}
    for name in names:
        if name not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return m


def calibrate(model, batches, make_observer, names=None, threads: int = 1) -> dict:
    """Feed every calibration batch through ``model`` and every tensor in ``names`` (default
    :func:`quantizable_activations`) to its own observer ``make_observer()`` (any object with
    ``observe(batch)`` and ``qparams()``, e.g. ``lambda: qlib.MinMaxObserver(bits=8)``).
    Batches may have different sizes. Returns ``{tensor name: observer}``; with a dict
    ``{label: factory}`` the model runs once and the result is ``{label: {tensor name: observer}}``."""
    from .realmodel import session

    names = quantizable_activations(model) if names is None else list(names)
    factories = make_observer if isinstance(make_observer, dict) else {None: make_observer}
    sess = session(with_outputs(model, names), threads=threads)
    inp = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    observers = {label: {name: f() for name in names} for label, f in factories.items()}
    n_batches = 0
    for xb in batches:
        xb = np.asarray(xb, dtype=np.float32)
        values = dict(zip(out_names, sess.run(out_names, {inp: xb})))
        values[inp] = xb
        for obs in observers.values():
            for name in names:
                obs[name].observe(values[name])
        n_batches += 1
    if n_batches == 0:
        raise ValueError("calibrate needs at least one batch of calibration images")
    return observers if isinstance(make_observer, dict) else observers[None]


def static_quantize(model, act_qparams: dict, bits: int = 8, granularity: str = "per-channel",
                    method: str = "maxabs"):
    """Full static quantization in QDQ form: weights at ``bits`` (:func:`weight_qparams`),
    activations with the given QParams (from observers), int32 biases. Returns the QDQ model."""
    _, wq = quantize_weights(model, bits, granularity, method)
    return insert_qdq(model, act_qparams, wq)


def _qdq_init(name, qp: QParams):
    """Scale and zero-point initializers for ONNX Q/DQ (zero point in the codes' 8-bit container)."""
    from onnx import numpy_helper

    zdtype = np.int8 if qp.signed else np.uint8
    if qp.bits > 8:
        zdtype = np.int32
    scale = np.asarray(qp.scale, dtype=np.float32)
    zp = np.asarray(qp.zero_point).astype(zdtype)
    return numpy_helper.from_array(scale, name + "_scale"), numpy_helper.from_array(zp, name + "_zero_point")


def insert_qdq(model, act_qparams: dict, weight_qps: dict, quantize_bias: bool = True):
    """Static quantization in ONNX's QDQ form (needs opset >= 13 for per-channel ``axis``).

    * each weight in ``weight_qps`` becomes int8 codes (``qlib.quantize``) + ``DequantizeLinear``
      (``axis`` = the QParams' axis when per-channel);
    * each activation in ``act_qparams`` gets ``QuantizeLinear -> DequantizeLinear`` before the
      Conv/MatMul that read it (with a ``Clip`` to the code range first when bits < 8, because
      QuantizeLinear only saturates to the 8-bit container);
    * with ``quantize_bias``, a Conv bias becomes int32 codes with ``S_b = S_in * S_w`` and ``Z = 0``.

    Scales and zero points are exactly those of the given QParams. Returns a new model."""
    import onnx
    from onnx import helper, numpy_helper

    m = copy.deepcopy(model)
    if next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13:
        raise ValueError("insert_qdq needs opset >= 13 (per-channel DequantizeLinear); convert with to_opset(model, 13)")
    init = initializers(m)
    new_init, new_nodes, drop = [], [], set()
    # weights -> codes + DequantizeLinear producing the old name
    for name, qp in weight_qps.items():
        codes = quantize(init[name], qp).astype(np.int8 if qp.signed else np.uint8)
        s, z = _qdq_init(name, qp)
        new_init += [numpy_helper.from_array(codes, name + "_quantized"), s, z]
        kw = {"axis": qp.axis} if qp.axis is not None else {}
        new_nodes.append(helper.make_node("DequantizeLinear", [name + "_quantized", s.name, z.name], [name],
                                          name=name + "_DequantizeLinear", **kw))
        drop.add(name)
    # biases: int32, scale S_in * S_w
    if quantize_bias:
        for n in m.graph.node:
            if n.op_type == "Conv" and len(n.input) > 2 and n.input[1] in weight_qps and n.input[0] in act_qparams:
                qa, qw = act_qparams[n.input[0]], weight_qps[n.input[1]]
                sb = np.float32(qa.scale) * np.asarray(qw.scale, np.float32)
                qb = QParams(scale=sb.astype(np.float64), zero_point=np.zeros(np.shape(sb), np.int64),
                             qmin=-(2**31), qmax=2**31 - 1, bits=32, axis=0 if np.ndim(sb) else None, symmetric=True)
                b = n.input[2]
                codes = quantize(init[b].astype(np.float64), qb).astype(np.int32)
                new_init += [numpy_helper.from_array(codes, b + "_quantized"),
                             numpy_helper.from_array(sb.astype(np.float32), b + "_scale"),
                             numpy_helper.from_array(np.zeros(np.shape(sb), np.int32), b + "_zero_point")]
                kw = {"axis": 0} if np.ndim(sb) else {}
                new_nodes.append(helper.make_node("DequantizeLinear", [b + "_quantized", b + "_scale", b + "_zero_point"],
                                                  [b], name=b + "_DequantizeLinear", **kw))
                drop.add(b)
    # activations: (Clip) -> QuantizeLinear -> DequantizeLinear, rewire the Conv/MatMul readers
    users = _consumers(m)
    for name, qp in act_qparams.items():
        s, z = _qdq_init(name, qp)
        new_init += [s, z]
        src = name
        if qp.bits < 8:
            lo, hi = (np.float32(v) for v in qp.range)
            new_init += [numpy_helper.from_array(np.array(lo, np.float32), name + "_clip_lo"),
                         numpy_helper.from_array(np.array(hi, np.float32), name + "_clip_hi")]
            new_nodes.append(helper.make_node("Clip", [name, name + "_clip_lo", name + "_clip_hi"], [name + "_clipped"]))
            src = name + "_clipped"
        new_nodes.append(helper.make_node("QuantizeLinear", [src, s.name, z.name], [name + "_q"], name=name + "_QuantizeLinear"))
        new_nodes.append(helper.make_node("DequantizeLinear", [name + "_q", s.name, z.name], [name + "_dq"],
                                          name=name + "_DequantizeLinear"))
        for node in users.get(name, []):
            if node.op_type in ("Conv", "MatMul"):
                node.input[0] = name + "_dq"
    keep = [t for t in m.graph.initializer if t.name not in drop]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep + new_init)
    nodes = new_nodes + list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(_topological(nodes, {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer}))
    onnx.checker.check_model(m)
    return m


def _topological(nodes, available):
    available, out, pending = set(available) | {""}, [], list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(i in available for i in n.input):
                out.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError("graph has a cycle or a missing input: " + ", ".join(n.op_type for n in rest[:3]))
        pending = rest
    return out


def qdq_scales(model) -> dict:
    """Read back ``{tensor name: (scale, zero_point)}`` of every QuantizeLinear in a QDQ model."""
    init = initializers(model)
    return {n.input[0].removesuffix("_clipped"): (init[n.input[1]], init[n.input[2]])
            for n in model.graph.node if n.op_type == "QuantizeLinear"}


# ----------------------------------------------------------------------------- ONNX Runtime's own tool
def ort_quantize_static(model, batches, per_channel: bool = False, method: str = "MinMax", op_types=None,
                        **extra_options):
    """ONNX Runtime's ``quantize_static`` on ``model`` (QDQ format, QUInt8 activations, QInt8 weights),
    calibrated on ``batches``; files go to a temporary folder that is deleted afterwards.
    ``method``: "MinMax", "Entropy" or "Percentile". ``op_types``: restrict the op types it
    quantizes (default: all it knows). Returns the quantized ``ModelProto``."""
    import logging
    import os
    import tempfile

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    check_choice(method, "method", ("MinMax", "Entropy", "Percentile"))

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{model.graph.input[0].name: np.asarray(b, np.float32)} for b in batches])

        def get_next(self):
            return next(self._it, None)

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its "please pre-process" warnings
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "model_q.onnx")
            onnx.save(model, src)
            kw = {"op_types_to_quantize": list(op_types)} if op_types else {}
            quantize_static(src, dst, _Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=getattr(CalibrationMethod, method), extra_options=extra_options, **kw)
            return onnx.load(dst)
    finally:
        logging.getLogger().setLevel(level)
