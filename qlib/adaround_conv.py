"""AdaRound and bias correction for the convolutions of an ONNX graph (the capstone's classifier).

:mod:`qlib.adaround` and :mod:`qlib.bias_correction` work on a weight matrix ``W`` (out, K) and
inputs ``x`` (n, K). A convolution is such a matrix product once its input is cut into patches
(**im2col**): for an input ``x`` (N, C, H, W_in), a kernel ``W`` (out, C / g, kh, kw), ``g``
groups, strides ``s``, padding ``p`` and dilation ``d``, output pixel ``(i, j)`` reads the patch

    x[:, c, i*s_h - p_top + a*d_h, j*s_w - p_left + b*d_w],   c, a, b over the kernel

(zero outside the image). Stacking every patch of every image as a row gives ``cols``
(N*oh*ow, C*kh*kw) and, for group ``k`` (its ``C/g`` input and ``out/g`` output channels),

    y[:, k-th group of channels] = cols_k @ W_k.T + b_k,     W_k = W[k-th group].reshape(out/g, -1)

with ``oh = (H + p_top + p_bottom - d_h (kh - 1) - 1) // s_h + 1`` (likewise ``ow``). So each
group is a linear layer, and AdaRound / bias correction apply unchanged:

* :func:`adaround_convs`: layer by layer, in graph order, ``adaround_layer(W_k, cols_k, cols_q_k)``
  with the float model's patches as target and the patches the already quantized graph
  produces as ``x_q``. Depthwise convs (``g = C``: one 3x3 or 5x5 filter per channel) would
  need one tiny optimisation per channel; they are **skipped** (kept round-to-nearest) by
  default, so are 1-group convs not listed in ``layers``.
* :func:`bias_correct_convs`: per output channel, ``shift = mean(y_q) - mean(y)`` over the
  calibration images and pixels, ``b <- b - shift`` (every conv, depthwise included: a mean
  needs no optimisation). Layer by layer, in graph order, each shift measured with the
  inputs of the already corrected graph.

Weights use the same grid as :func:`qlib.onnx_graph.quantize_weights` (symmetric, signed,
narrow range ``[-qmax, qmax]``, max-abs, per output channel), so round-to-nearest here is
exactly the notebook's RTN model. Activations stay float (weight-only quantization).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ._validate import as_float_array, check_bits
from .adaround import adaround_layer
from .bias_correction import analytic_output_shift, correct_bias, empirical_output_shift

__all__ = [
    "ConvSpec",
    "adaround_convs",
    "bias_correct_convs",
    "conv2d",
    "conv_output_shifts",
    "conv_specs",
    "group_slices",
    "im2col",
    "patch_means",
    "rtn_convs",
    "tensor_values",
]


@dataclass(frozen=True)
class ConvSpec:
    """One Conv node: its ``weight``/``bias`` initializer names (``bias`` may be None), its data
    ``input`` and ``output`` tensors, and its attributes (2-D convs only)."""

    name: str
    weight: str
    bias: str | None
    input: str
    output: str
    group: int
    strides: tuple
    pads: tuple
    dilations: tuple
    kernel: tuple
    shape: tuple

    @property
    def depthwise(self) -> bool:
        """One filter per input channel (``group`` equals the number of input channels, > 1)."""
        return self.group > 1 and self.shape[1] == 1


def conv_specs(model) -> list:
    """Every 2-D Conv whose weight is an initializer, in graph order, as :class:`ConvSpec`.
    ``auto_pad`` other than ``NOTSET`` is refused."""
    import onnx

    init = {t.name: tuple(t.dims) for t in model.graph.initializer}
    out = []
    for i, n in enumerate(model.graph.node):
        if n.op_type != "Conv" or n.input[1] not in init:
            continue
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        shape = init[n.input[1]]
        if len(shape) != 4:
            raise ValueError(f"conv {n.name or n.output[0]!r} is not 2-D (weight shape {shape})")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ValueError(f"conv {n.name or n.output[0]!r} uses auto_pad; give explicit pads")
        out.append(ConvSpec(n.name or f"conv{i}", n.input[1], n.input[2] if len(n.input) > 2 and n.input[2] else None,
                            n.input[0], n.output[0], int(a.get("group", 1)), tuple(a.get("strides", (1, 1))),
                            tuple(a.get("pads", (0, 0, 0, 0))), tuple(a.get("dilations", (1, 1))),
                            tuple(shape[2:]), shape))
    return out


def _pair(v, name):
    v = tuple(int(t) for t in v)
    if len(v) != 2 or min(v) < 1:
        raise ValueError(f"{name} must be two positive integers (height, width), got {v!r}")
    return v


def im2col(x, kernel, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1)):
    """Patches of ``x`` (N, C, H, W) as rows: ``(cols, (oh, ow))`` with ``cols`` (N*oh*ow, C*kh*kw),
    rows ordered image by image then row-major over output pixels, columns in the order of a
    weight ``W[o].reshape(-1)`` (channel, kernel row, kernel column). ``pads`` is ONNX's
    ``(top, left, bottom, right)``; outside the image the patch is 0.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> cols, (oh, ow) = im2col(x, (2, 2), strides=(2, 2))
    >>> cols.tolist(), (oh, ow)
    ([[0.0, 1.0, 4.0, 5.0], [2.0, 3.0, 6.0, 7.0], [8.0, 9.0, 12.0, 13.0], [10.0, 11.0, 14.0, 15.0]], (2, 2))
    """
    x = as_float_array(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x must be a batch of feature maps (N, C, H, W), got shape {x.shape}")
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(strides, "strides")
    dh, dw = _pair(dilations, "dilations")
    pads = tuple(int(p) for p in pads)
    if len(pads) != 4 or min(pads) < 0:
        raise ValueError(f"pads must be four integers >= 0 (top, left, bottom, right), got {pads!r}")
    N, C, H, W = x.shape
    if (kh, kw) == (1, 1) and (sh, sw) == (1, 1) and pads == (0, 0, 0, 0):     # a 1x1 conv: pixels are rows
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(N * H * W, C), (H, W)
    oh = (H + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (W + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"the kernel ({kh}, {kw}) does not fit the padded input ({H}, {W}) + pads {pads}")
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    cols = np.empty((N, oh, ow, C, kh, kw), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a * dh: a * dh + sh * (oh - 1) + 1: sh, b * dw: b * dw + sw * (ow - 1) + 1: sw]
            cols[:, :, :, :, a, b] = patch.transpose(0, 2, 3, 1)
    return cols.reshape(N * oh * ow, C * kh * kw), (oh, ow)


def patch_means(x, kernel, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1)) -> np.ndarray:
    """``im2col(x, ...)[0].mean(axis=0)`` (float64, shape (C*kh*kw,)) without building the patches:
    for each kernel offset, the mean of the strided slice of the padded input, per channel.

    >>> x = np.random.default_rng(0).normal(size=(2, 3, 5, 6))
    >>> np.allclose(patch_means(x, (3, 3), (2, 1), (1, 1, 1, 1)), im2col(x, (3, 3), (2, 1), (1, 1, 1, 1))[0].mean(0))
    True
    """
    x = as_float_array(x, "x")
    _, (oh, ow) = im2col(x[:1, :1], kernel, strides, pads, dilations)      # checks, and the output size
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel, "kernel"), _pair(strides, "strides"), _pair(dilations, "dilations")
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    out = np.empty((x.shape[1], kh, kw))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a * dh: a * dh + sh * (oh - 1) + 1: sh, b * dw: b * dw + sw * (ow - 1) + 1: sw]
            out[:, a, b] = patch.mean(axis=(0, 2, 3), dtype=np.float64)
    return out.reshape(-1)


def group_slices(n_in: int, n_out: int, group: int):
    """``[(input channel slice, output channel slice)]`` of each group of a grouped conv.

    >>> group_slices(4, 6, 2)
    [(slice(0, 2, None), slice(0, 3, None)), (slice(2, 4, None), slice(3, 6, None))]
    """
    if group < 1 or n_in % group or n_out % group:
        raise ValueError(f"{group} groups must divide the {n_in} input and {n_out} output channels")
    ci, co = n_in // group, n_out // group
    return [(slice(k * ci, (k + 1) * ci), slice(k * co, (k + 1) * co)) for k in range(group)]


def conv2d(x, W, b=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group: int = 1) -> np.ndarray:
    """ONNX ``Conv`` (2-D, NCHW) in numpy through :func:`im2col`: per group ``cols_k @ W_k.T + b_k``.

    >>> x = np.ones((1, 2, 3, 3)); W = np.ones((2, 1, 3, 3))      # depthwise 3x3 of ones, pad 1
    >>> conv2d(x, W, pads=(1, 1, 1, 1), group=2)[0, 0].tolist()
    [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    """
    x = as_float_array(x, "x")
    W = as_float_array(W, "W")
    if W.ndim != 4 or x.ndim != 4 or x.shape[1] != W.shape[1] * group:
        raise ValueError(f"need x (N, C, H, W) and W (out, C/group, kh, kw) with C = {group} * W.shape[1], "
                         f"got x {x.shape} and W {W.shape}")
    out = []
    for si, so in group_slices(x.shape[1], W.shape[0], group):
        cols, (oh, ow) = im2col(x[:, si], W.shape[2:], strides, pads, dilations)
        out.append((cols @ W[so].reshape(W[so].shape[0], -1).T).reshape(x.shape[0], oh, ow, -1))
    y = np.concatenate(out, axis=3).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + as_float_array(b, "b").reshape(1, -1, 1, 1)
    return y


def tensor_values(model, x, names, batch_size: int = 16) -> dict:
    """Run ``model`` in ONNX Runtime on ``x`` and return ``{name: array}`` for the tensors
    ``names`` (intermediate ones or graph outputs; the graph input itself is allowed). The graph
    is cut down to what ``names`` need (its outputs become exactly ``names``), so asking for an
    early tensor only runs the nodes before it."""
    import onnx

    from .realmodel import session

    names = list(dict.fromkeys(names))
    inp = model.graph.input[0].name
    want = [n for n in names if n != inp]
    out = {}
    if want:
        m = copy.deepcopy(model)
        del m.graph.output[:]
        m.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in want)
        sess = session(m)
        x = np.asarray(x, dtype=np.float32)
        parts = {n: [] for n in want}
        for i in range(0, len(x), batch_size):
            for n, v in zip(want, sess.run(want, {inp: x[i:i + batch_size]})):
                parts[n].append(v)
        out = {n: np.concatenate(v) for n, v in parts.items()}
    if inp in names:
        out[inp] = np.asarray(x, dtype=np.float32)
    return out


def _qparams(W, bits):
    from .onnx_graph import weight_qparams

    return weight_qparams(W, check_bits(bits), "per-channel", "maxabs", axis=0)


def rtn_convs(model, bits: int = 4):
    """Round-to-nearest weight-only copy (every Conv and MatMul weight, per channel, max-abs):
    the same model as ``qlib.onnx_graph.quantize_weights(model, bits, "per-channel")[0]``."""
    from .onnx_graph import quantize_weights

    return quantize_weights(model, bits, "per-channel")[0]


def _select(specs, layers):
    if layers is None:
        return specs
    names = set(layers)
    known = {s.weight for s in specs} | {s.name for s in specs}
    missing = names - known
    if missing:
        raise ValueError(f"unknown conv layers {sorted(missing)}; give weight names such as {specs[0].weight!r}")
    return [s for s in specs if s.weight in names or s.name in names]


def _group_patches(x, spec, n_out):
    """``[(output channel slice, patches of that group)]``: im2col once, then the columns of
    each group (they are contiguous: channel-major order)."""
    cols, _ = im2col(x, spec.kernel, spec.strides, spec.pads, spec.dilations)
    k = spec.kernel[0] * spec.kernel[1]
    return [(so, cols[:, si.start * k: si.stop * k]) for si, so in group_slices(x.shape[1], n_out, spec.group)]


def adaround_convs(model, qmodel, calib_x, bits: int = 4, layers=None, max_rows: int = 2048, seed: int = 0,
                   skip_depthwise: bool = True, inputs: str = "quantized", **kw):
    """AdaRound the convs ``layers`` (weight names; default every non-depthwise conv) of
    ``qmodel``, a weight-only quantized copy of the float ``model`` (e.g. :func:`rtn_convs`).

    In graph order, for each chosen conv: its float input (from ``model``) and its input in the
    current quantized graph (earlier convs already AdaRounded) on ``calib_x`` are cut into
    patches (:func:`im2col`), ``max_rows`` patch rows are drawn at random (the same rows for
    both; seeded), and :func:`qlib.adaround.adaround_layer` runs per group on the grid of
    :func:`qlib.onnx_graph.weight_qparams` (per-channel, max-abs, narrow range). Other
    keywords (``iterations``, ``lr``, ``reg``, ``batch_size``, ...) go to ``adaround_layer``.
    Depthwise convs are skipped unless ``skip_depthwise=False`` (one optimisation per channel).
    ``inputs="float"``: every conv sees the float model's inputs (``x_q = x``; one run of the
    model instead of one per conv, but later layers cannot compensate earlier errors).

    Returns ``(new_qmodel, {weight name: [AdaRoundLayer per group]})``; weights not chosen keep
    ``qmodel``'s values.
    """
    from .onnx_graph import initializers, replace_initializers

    if inputs not in ("quantized", "float"):
        raise ValueError(f"inputs must be 'quantized' or 'float', got {inputs!r}")
    x = as_float_array(calib_x, "calib_x").astype(np.float32)
    if x.ndim != 4 or len(x) < 1:
        raise ValueError(f"calib_x must be a batch of images (n, C, H, W), got shape {x.shape}")
    if isinstance(max_rows, bool) or int(max_rows) != max_rows or max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer, got {max_rows!r}")
    specs = _select(conv_specs(model), layers)
    if skip_depthwise:
        specs = [s for s in specs if not s.depthwise]
    f_vals = tensor_values(model, x, [s.input for s in specs])
    init_f = initializers(model)
    current = copy.deepcopy(qmodel)
    rng = np.random.default_rng(seed)
    results = {}
    for spec in specs:
        xf = f_vals[spec.input]
        xq = xf if inputs == "float" else tensor_values(current, x, [spec.input])[spec.input]
        W = init_f[spec.weight].astype(np.float64)
        qp_all = _qparams(W, bits)
        new_w = np.empty_like(W)
        res = []
        pf = _group_patches(xf, spec, W.shape[0])
        pq = pf if xq is xf else _group_patches(xq, spec, W.shape[0])
        for (so, cf), (_, cq) in zip(pf, pq):
            if len(cf) > max_rows:
                idx = np.sort(rng.choice(len(cf), size=int(max_rows), replace=False))
                cf, cq = cf[idx], cq[idx]
            Wk = W[so].reshape(W[so].shape[0], -1)
            qp = _qparams(Wk, bits) if spec.group > 1 else qp_all
            r = adaround_layer(Wk, cf, None if cq is cf else cq, qp=qp, seed=seed, name=spec.weight, **kw)
            new_w[so] = r.weight.reshape(W[so].shape)
            res.append(r)
        current = replace_initializers(current, {spec.weight: new_w.astype(np.float32)})
        results[spec.weight] = res
    return current, results


def bias_correct_convs(model, qmodel, calib_x, layers=None, inputs: str = "quantized"):
    """Empirical bias correction of the convs ``layers`` (default all) of ``qmodel``:
    ``b <- b - shift``, ``shift[c] = mean(y_q[:, c]) - mean(y[:, c])`` over images and pixels,
    computed with :func:`qlib.bias_correction.empirical_output_shift` on the patches of each
    group. ``inputs="quantized"``: layer by layer in graph order, ``y_q`` computed from the
    input of the current (already corrected) quantized graph, which also removes the shift
    the earlier layers pass on; ``inputs="float"``: every conv fed the float model's inputs
    (only its own weight error, one run of each model; the shift is then
    :func:`qlib.bias_correction.analytic_output_shift` with the patches' measured mean, which
    equals the empirical shift and needs no patches at all: :func:`patch_means`). A conv without a bias gets a zero
    bias initializer ``<weight>_bias`` first.

    Returns ``(new_qmodel, {weight name: shift (out,)})``.
    """
    from .onnx_graph import initializers, replace_initializers

    if inputs not in ("quantized", "float"):
        raise ValueError(f"inputs must be 'quantized' or 'float', got {inputs!r}")
    x = as_float_array(calib_x, "calib_x").astype(np.float32)
    if x.ndim != 4 or len(x) < 1:
        raise ValueError(f"calib_x must be a batch of images (n, C, H, W), got shape {x.shape}")
    specs = _select(conv_specs(model), layers)
    f_vals = tensor_values(model, x, [s.input for s in specs])
    init_f = initializers(model)
    current = copy.deepcopy(qmodel)
    specs_q = {s.weight: s for s in conv_specs(current)}
    shifts, new = {}, {}
    for spec in specs:
        xf = f_vals[spec.input]
        xq = xf if inputs == "float" else tensor_values(current, x, [spec.input])[spec.input]
        init_q = initializers(current)
        W, Wq = init_f[spec.weight].astype(np.float64), init_q[spec.weight].astype(np.float64)
        shift = np.empty(W.shape[0])
        if xq is xf:          # same inputs: the mean of (W_q - W) x is (W_q - W) times the patches' mean
            mean = patch_means(xf, spec.kernel, spec.strides, spec.pads, spec.dilations)
            k = spec.kernel[0] * spec.kernel[1]
            for si, so in group_slices(xf.shape[1], W.shape[0], spec.group):
                Wk, Wqk = W[so].reshape(W[so].shape[0], -1), Wq[so].reshape(W[so].shape[0], -1)
                shift[so] = analytic_output_shift(Wk, Wqk, mean[si.start * k: si.stop * k])
        else:
            pf, pq = _group_patches(xf, spec, W.shape[0]), _group_patches(xq, spec, W.shape[0])
            for (so, cf), (_, cq) in zip(pf, pq):
                Wk, Wqk = W[so].reshape(W[so].shape[0], -1), Wq[so].reshape(W[so].shape[0], -1)
                shift[so] = empirical_output_shift(Wk, Wqk, cf, cq)
        bq = specs_q[spec.weight].bias
        if bq is None:                       # no bias input (e.g. a squeeze-excite conv): give it one
            bq = spec.weight + "_bias"
            current = _add_bias(current, spec.weight, bq, W.shape[0])
            specs_q[spec.weight] = next(s for s in conv_specs(current) if s.weight == spec.weight)
            init_q[bq] = np.zeros(W.shape[0], np.float32)
        b_new = correct_bias(init_q[bq].astype(np.float32), shift.astype(np.float32))
        if inputs == "float":
            new[bq] = b_new
        else:
            current = replace_initializers(current, {bq: b_new})
        shifts[spec.weight] = shift
    if new:
        current = replace_initializers(current, new)
    return current, shifts


def _add_bias(model, weight, bias_name, n_out):
    """Copy of ``model`` whose Conv reading ``weight`` gets a zero bias initializer ``bias_name``."""
    from .onnx_graph import replace_initializers

    m = replace_initializers(model, {bias_name: np.zeros(n_out, np.float32)})
    for n in m.graph.node:
        if n.op_type == "Conv" and n.input[1] == weight:
            if len(n.input) == 2:
                n.input.append(bias_name)
            else:
                n.input[2] = bias_name
    return m


def conv_output_means(model, x, layers=None):
    """One ONNX Runtime run of ``model`` on ``x``: ``({weight name: per-channel mean of the conv's
    output over images and pixels (float64)}, the graph's first output)`` -- e.g. the class
    probabilities, so accuracy and output shifts come from the same run."""
    specs = _select(conv_specs(model), layers)
    final = model.graph.output[0].name
    vals = tensor_values(model, x, [s.output for s in specs] + [final])
    return {s.weight: vals[s.output].astype(np.float64).mean(axis=(0, 2, 3)) for s in specs}, vals[final]


def conv_output_shifts(model, qmodel, x, layers=None, reference=None) -> dict:
    """``{weight name: mean over channels of |mean(y_q[:, c]) - mean(y[:, c])|}`` for each conv's
    output, both graphs run end to end on ``x`` (means over images and pixels). ``reference``:
    the float model's means from :func:`conv_output_means` (saves its run).

    >>> rng = np.random.default_rng(0)
    >>> from qlib.onnx_graph import replace_initializers
    >>> m = _tiny_conv(rng.normal(size=(2, 1, 3, 3)))
    >>> x = rng.normal(size=(4, 1, 5, 5)).astype(np.float32)
    >>> q = replace_initializers(m, {"W": np.zeros((2, 1, 3, 3), np.float32)})
    >>> bc, _ = bias_correct_convs(m, q, x)          # all-zero weights, the mean restored by the bias
    >>> conv_output_shifts(m, bc, x)["W"] < 1e-6 < conv_output_shifts(m, q, x)["W"]
    True
    """
    if reference is None:
        reference, _ = conv_output_means(model, x, layers)
    means, _ = conv_output_means(qmodel, x, layers)
    return {k: float(np.abs(means[k] - reference[k]).mean()) for k in means}


def _tiny_conv(W, b=None):
    """A one-Conv ONNX graph (pads 1) for examples."""
    from onnx import TensorProto, helper, numpy_helper

    W = np.asarray(W, np.float32)
    b = np.zeros(W.shape[0], np.float32) if b is None else np.asarray(b, np.float32)
    node = helper.make_node("Conv", ["x", "W", "b"], ["y"], pads=[1, 1, 1, 1])
    g = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, W.shape[1], None, None])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
                          [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m
