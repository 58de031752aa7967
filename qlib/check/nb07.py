"""Checkers for notebook 07 (quantization-aware training, STE, LSQ)."""

from __future__ import annotations

import numpy as np

from ..linear import QParams
from ..qat import fake_quantize_backward, lsq_step_gradient_factor, ste_mask
from . import as_array, call_learner, expect_close, failed, passed

__all__ = ["STE_QUESTION", "LSQ_QUESTION", "clipped_ste_backward", "ste_gradients", "lsq_step_gradients"]

#: "Predict the gradient": 2-bit signed codes [-2, 1], S = 0.5, Z = 0, upstream gradient 1.
STE_QUESTION = {"x": (0.3, 0.6, 0.74, 0.8, -1.2, -1.3), "scale": 0.5, "zero_point": 0, "qmin": -2, "qmax": 1}
#: LSQ step-gradient question: 2-bit signed (Qn = 2, Qp = 1), s = 0.5.
LSQ_QUESTION = {"v": (0.2, 0.35, 0.9, -0.6, -3.0), "s": 0.5, "bits": 2, "signed": True}

_CASES = [  # (x, grad, scale, zero_point, qmin, qmax)
    ([-1.3, -1.25, -1.2, 0.0, 0.74, 0.75, 0.76], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 0.5, 0, -2, 1),
    ([-0.36, -0.34, 0.0, 1.24, 1.26], [1.0, -1.0, 2.0, -2.0, 3.0], 0.1, 3, 0, 15),
]


def _real_range_mask(x, scale, zero_point, qmin, qmax):
    x = np.asarray(x, np.float64)
    return ((x >= scale * (qmin - zero_point)) & (x <= scale * (qmax - zero_point))).astype(float)


def clipped_ste_backward(fn) -> None:
    """Check ``fn(grad, x, scale, zero_point, qmin, qmax)`` -> dL/dx under the clipped STE against
    ``qlib.fake_quantize_backward``: a tie at the lower edge (x = -1.25 -> code -2.5 -> -2, inside), codes
    exactly at qmin and qmax, Z != 0, negative x (trunc != floor), and random values.

    >>> clipped_ste_backward(lambda g, x, s, z, lo, hi: g * ((np.rint(x / s) + z >= lo) & (np.rint(x / s) + z <= hi)))
    ✅ Correct! your clipped STE matches PyTorch's fake_quantize rule: the gradient passes where the rounded, unclamped code is on the grid, and is 0 where the clamp is active.
    >>> try:
    ...     clipped_ste_backward(lambda g, x, s, z, lo, hi: g * ((np.floor(x / s) + z >= lo) & (np.floor(x / s) + z <= hi)))
    ... except AssertionError:
    ...     pass
    ❌ Not yet: dL/dx = [0. 0. 0. 4. 5. 6. 7.], expected something else
       Hint: mask = (qmin <= np.rint(x / scale) + zero_point <= qmax); return grad * mask
    """
    rng = np.random.default_rng(7)
    cases = list(_CASES) + [(rng.uniform(-3, 3, 200).round(3), rng.normal(size=200), 0.25, 2, 0, 7)]
    for x, g, s, z, qmin, qmax in cases:
        x, g = np.array(x, np.float64), np.array(g, np.float64)
        bits = int(np.ceil(np.log2(qmax - qmin + 1)))
        qp = QParams(scale=s, zero_point=z, qmin=qmin, qmax=qmax, bits=bits)
        expected = fake_quantize_backward(g, x, qp, "clipped")
        out = call_learner(fn, g.copy(), x.copy(), s, z, qmin, qmax, name="your clipped_ste_backward",
                           expected_args="grad, x, scale, zero_point, qmin, qmax")
        got = as_array("dL/dx", out, shape=expected.shape, hint="return one gradient per element of x")
        if got.shape == expected.shape and np.allclose(got, ste_mask(x, qp, "clipped")) and not np.allclose(got, expected):
            failed("you returned the mask only", hint="multiply the incoming gradient by the mask: grad * mask")
        if got.shape == expected.shape and np.allclose(got, g * _real_range_mask(x, s, z, qmin, qmax)) \
                and not np.allclose(got, expected):
            failed("your mask compares x with the real range [S(qmin - Z), S(qmax - Z)]",
                   hint="PyTorch tests the rounded code: qmin <= round(x / S) + Z <= qmax, which moves each "
                        "edge half a step outwards")
        expect_close("dL/dx", got, expected, rtol=1e-9, atol=1e-12,
                     hint="mask = (qmin <= np.rint(x / scale) + zero_point <= qmax); return grad * mask")
    passed("your clipped STE matches PyTorch's fake_quantize rule: the gradient passes where the rounded, "
           "unclamped code is on the grid, and is 0 where the clamp is active.")


def ste_gradients(plain, clipped) -> None:
    """Check the predicted dL/dx (upstream gradient 1) for :data:`STE_QUESTION` under both rules,
    against ``qlib.ste_mask`` (exact: the answers are 0 and 1).

    >>> ste_gradients([1] * 6, [1, 1, 1, 0, 1, 0])
    ✅ Correct! x = 0.6 and 0.74 lie above the real range's top 0.5 yet still pass the gradient: their code rounds to 1 = qmax. Only from 0.75 on (code 2) does the clipped STE block it.
    """
    q = STE_QUESTION
    x = np.array(q["x"])
    qp = QParams(scale=q["scale"], zero_point=q["zero_point"], qmin=q["qmin"], qmax=q["qmax"], bits=2)
    expect_close("plain", plain, ste_mask(x, qp, "plain"), rtol=0, atol=1e-12,
                 hint="the plain STE pretends fake_quantize is the identity: its gradient is 1 everywhere")
    expected = ste_mask(x, qp, "clipped")
    got = as_array("clipped", clipped, shape=expected.shape, hint=f"one gradient per x: {expected.size} numbers")
    if np.allclose(got, _real_range_mask(x, q["scale"], 0, q["qmin"], q["qmax"])):
        failed("clipped compares x with the real range [-1.0, 0.5]",
               hint="compute the code round(x / 0.5) first: 0.74 / 0.5 = 1.48 rounds to 1, still on the grid")
    expect_close("clipped", got, expected, rtol=0, atol=1e-12,
                 hint="codes round(x / 0.5) = 1, 1, 1, 2, -2, -3; the gradient passes where the code is in [-2, 1]")
    passed("x = 0.6 and 0.74 lie above the real range's top 0.5 yet still pass the gradient: their code "
           "rounds to 1 = qmax. Only from 0.75 on (code 2) does the clipped STE block it.")


def lsq_step_gradients(factors) -> None:
    """Check d v_hat / d s for each value of :data:`LSQ_QUESTION` against ``qlib.lsq_step_gradient_factor``
    (to 1e-9: the hand answers are sums like 1 - 0.7).

    >>> lsq_step_gradients([-0.4, 0.3, 1.0, 0.2, -2.0])
    ✅ Correct! inside the range the step gradient is the rounding error round(v/s) - v/s (a saw-tooth); clipped values pull the step with their full code -Qn or Qp.
    """
    q = LSQ_QUESTION
    expected = lsq_step_gradient_factor(np.array(q["v"]), q["s"], q["bits"], q["signed"])
    expect_close("d v_hat / d s", factors, expected, rtol=0, atol=1e-9,
                 hint="v/s = 0.4, 0.7, 1.8, -1.2, -6; inside (-2 < v/s < 1): round(v/s) - v/s; "
                      "v/s >= Qp = 1: Qp; v/s <= -Qn = -2: -Qn")
    passed("inside the range the step gradient is the rounding error round(v/s) - v/s (a saw-tooth); "
           "clipped values pull the step with their full code -Qn or Qp.")
