"""Classic wrong answers for notebook 08's exercises (see __init__.py for the format)."""

WRONG = {
    1: [  # M = 0.0123 = 0.7872 * 2^-6: M0 = round(0.7872 * 2^31) = 1690499128, shift = -6
        ("M0 truncated with int()", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = int(q_ex * 2**31)"),
        ("M0 off by one", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = int(np.round(q_ex * 2**31)) + 1"),
        ("M0 not rounded", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = q_ex * 2**31"),
        ("shift with the wrong sign", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = int(np.round(q_ex * 2**31))\n"
                                      "shift_ex = -shift_ex"),
        ("the 31 counted in the shift", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = int(np.round(q_ex * 2**31))\n"
                                        "shift_ex = shift_ex - 31"),
        ("q in [1, 2) (floor of log2) instead of [0.5, 1)",
         "shift_ex = int(np.floor(np.log2(M_ex)))\nq_ex = M_ex / 2.0**shift_ex\nM0_ex = int(np.round(q_ex * 2**30))"),
        ("M not normalised: M0 = round(M * 2^31), shift 0", "q_ex, shift_ex = M_ex, 0\nM0_ex = int(np.round(M_ex * 2**31))"),
        ("Q32 instead of Q31", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = int(np.round(q_ex * 2**32))"),
        ("Q15 instead of Q31", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = int(np.round(q_ex * 2**15))"),
        ("the reciprocal 1/M (S' habit)", "q_ex, shift_ex = np.frexp(1 / M_ex)\nM0_ex = int(np.round(q_ex * 2**31))"),
        ("shift off by one", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = int(np.round(q_ex * 2**31))\nshift_ex = shift_ex + 1"),
        ("M0 as a string", "q_ex, shift_ex = np.frexp(M_ex)\nM0_ex = str(int(np.round(q_ex * 2**31)))"),
    ],
    2: [  # fc3 of qm_sym (Z_in = Z_out = 128), output 8: acc = sum (x - Z_in) w + b, code = clamp(Z_out + mbqm(acc))
        ("Z_in forgotten",
         "acc3 = int((x3.astype(np.int64) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(qlib.multiply_by_quantized_multiplier(acc3, M0_3, shift_3))\n"
         "code3 = int(np.clip(y3 + z3_out, L3.out_qp.qmin, L3.out_qp.qmax))"),
        ("Z_in added instead of subtracted",
         "acc3 = int(((x3.astype(np.int64) + z3_in) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(qlib.multiply_by_quantized_multiplier(acc3, M0_3, shift_3))\n"
         "code3 = int(np.clip(y3 + z3_out, L3.out_qp.qmin, L3.out_qp.qmax))"),
        ("Z_out forgotten",
         "acc3 = int(((x3.astype(np.int64) - z3_in) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(qlib.multiply_by_quantized_multiplier(acc3, M0_3, shift_3))\n"
         "code3 = int(np.clip(y3, L3.out_qp.qmin, L3.out_qp.qmax))"),
        ("Z_out subtracted",
         "acc3 = int(((x3.astype(np.int64) - z3_in) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(qlib.multiply_by_quantized_multiplier(acc3, M0_3, shift_3))\n"
         "code3 = int(np.clip(y3 - z3_out, L3.out_qp.qmin, L3.out_qp.qmax))"),
        # (a forgotten bias cannot be told here: fc3's bias codes are tiny, |b| * M < 0.1 of a code)
        ("a ReLU clamp at Z_out on the logits",
         "acc3 = int(((x3.astype(np.int64) - z3_in) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(qlib.multiply_by_quantized_multiplier(acc3, M0_3, shift_3))\n"
         "code3 = int(np.clip(y3 + z3_out, z3_out, L3.out_qp.qmax))"),
        ("truncated float requantization int(acc * M)",
         "acc3 = int(((x3.astype(np.int64) - z3_in) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(acc3 * M0_3 * 2.0 ** (shift_3 - 31))\n"
         "code3 = int(np.clip(y3 + z3_out, L3.out_qp.qmin, L3.out_qp.qmax))"),
        ("M0 without the shift (multiplied by M0 / 2^31 only)",
         "acc3 = int(((x3.astype(np.int64) - z3_in) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(qlib.multiply_by_quantized_multiplier(acc3, M0_3, 0))\n"
         "code3 = int(np.clip(y3 + z3_out, L3.out_qp.qmin, L3.out_qp.qmax))"),
        ("the codes of the other model's fc3 input (Z_in = 0)",
         "acc3 = int(((codes['fc2'][0].astype(np.int64) - z3_in) * w3.astype(np.int64)).sum() + b3)\n"
         "y3 = int(qlib.multiply_by_quantized_multiplier(acc3, M0_3, shift_3))\n"
         "code3 = int(np.clip(y3 + z3_out, L3.out_qp.qmin, L3.out_qp.qmax))"),
        ("off by one", "code3 = code3 + 1"),
        ("the real logit instead of the code", "code3 = (code3 - z3_out) * L3.out_qp.scale"),
    ],
}
