"""A minimal Llama forward pass in numpy (float32): the decoder of SmolLM2-135M.

Per layer l (x is the residual stream, one row per token, width n_embd)::

    h = RMSNorm(x) ;  q, k, v = h Wq^T, h Wk^T, h Wv^T       (9 query heads, 3 key/value heads of 64)
    q, k = RoPE(q), RoPE(k)                                   (rotation by position, base 100000)
    x = x + Attention(q, k, v) Wo^T                           (causal, each K/V head shared by 3 Q heads)
    x = x + W_down( SiLU(W_gate RMSNorm(x)) * (W_up RMSNorm(x)) )     (SwiGLU MLP)

then ``logits = RMSNorm(x) E^T`` with the token embedding E as output head when the file has no
``output.weight`` (tied embeddings, as here).

RoPE ordering: llama.cpp runs the "llama" architecture with its "normal" RoPE, which rotates
adjacent pairs (x[2i], x[2i+1]); Hugging Face's Llama rotates halves (x[i], x[i + d/2], "NeoX").
llama.cpp's converter permutes the rows of Wq and Wk so that the two agree, hence on GGUF weights
we must use the adjacent pairs (``rope_style="normal"``); the halves give a perplexity in the
hundreds instead of about 20 (tests/test_llm_llama.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .gguf_model import ModelConfig, load_weights, model_config

__all__ = ["LINEAR_NAMES", "rms_norm", "rope_angles", "apply_rope", "silu", "swiglu", "attention",
           "KVCache", "Llama", "load_model", "forward", "generate"]

#: The linear layers of one block, GGUF names (weights are (out_features, in_features)).
LINEAR_NAMES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """RMSNorm over the last axis: ``y = x / sqrt(mean(x^2) + eps) * weight``.

    >>> y = rms_norm(np.array([[3.0, 4.0]], np.float32), np.array([1.0, 2.0], np.float32), 0.0)
    >>> print(np.round(y, 4))        # rms of (3, 4) is sqrt(12.5) = 3.5355
    [[0.8485 2.2627]]
    """
    x = np.asarray(x, dtype=np.float32)
    ms = np.mean(x * x, axis=-1, keepdims=True)
    return (x / np.sqrt(ms + np.float32(eps)) * weight).astype(np.float32)


def rope_angles(positions, head_dim: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """``cos`` and ``sin`` of the RoPE angles ``pos * base^(-2i/head_dim)``, i = 0..head_dim/2-1.

    Shapes ``(len(positions), head_dim // 2)``, float32 (computed in float64).

    >>> c, s = rope_angles([0, 1], 4, 100.0)
    >>> print(np.round(np.arctan2(s, c), 4))   # angle of pair i at position 1 is 100^(-2i/4)
    [[0.  0. ]
     [1.  0.1]]
    """
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
    pos = np.asarray(positions, dtype=np.float64)[:, None]
    inv_freq = float(base) ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    ang = pos * inv_freq[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, style: str = "normal") -> np.ndarray:
    """Rotate pairs of ``x`` (..., T, head_dim) by the angles: ``(a, b) -> (a cos - b sin, a sin + b cos)``.

    ``style="normal"`` (llama.cpp's llama): pairs are adjacent, ``(x[2i], x[2i+1])``;
    ``style="neox"`` (Hugging Face's Llama): pairs are halves, ``(x[i], x[i + head_dim/2])``.

    >>> c, s = rope_angles([1], 2, 1.0)          # one pair, angle 1 rad
    >>> np.round(apply_rope(np.array([[1.0, 0.0]], np.float32), c, s), 4)
    array([[0.5403, 0.8415]], dtype=float32)
    """
    if style == "normal":
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out
    if style == "neox":
        h = x.shape[-1] // 2
        a, b = x[..., :h], x[..., h:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
    raise ValueError(f"rope style must be 'normal' (adjacent pairs) or 'neox' (halves), got {style!r}")


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU (swish): ``x * sigmoid(x) = x / (1 + exp(-x))``.

    >>> silu(np.array([0.0, 1.0], np.float32))
    array([0.       , 0.7310586], dtype=float32)
    """
    with np.errstate(over="ignore"):
        return x / (np.float32(1) + np.exp(-x))


def swiglu(h: np.ndarray, w_gate: np.ndarray, w_up: np.ndarray, w_down: np.ndarray) -> np.ndarray:
    """The SwiGLU MLP: ``(SiLU(h W_gate^T) * (h W_up^T)) W_down^T``."""
    return (silu(h @ w_gate.T) * (h @ w_up.T)) @ w_down.T


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, past: int = 0) -> np.ndarray:
    """Causal grouped-query attention: ``softmax(q k^T / sqrt(d) + mask) v`` per head.

    ``q`` is (H, T, d) for the T new tokens at positions past..past+T-1; ``k``, ``v`` are
    (H_kv, past+T, d). Query head h reads key/value head ``h // (H / H_kv)``. Query t sees keys
    at positions <= past + t (the mask is -inf elsewhere). Returns (H, T, d).

    >>> q = np.ones((2, 2, 1), np.float32); k = np.ones((1, 2, 1), np.float32)
    >>> v = np.array([[[1.0], [3.0]]], np.float32)
    >>> attention(q, k, v)[:, :, 0]     # token 0 sees only v=1, token 1 averages 1 and 3
    array([[1., 2.],
           [1., 2.]], dtype=float32)
    """
    n_head, t, d = q.shape
    n_kv, s, _ = k.shape
    if n_head % n_kv:
        raise ValueError(f"{n_head} query heads cannot share {n_kv} key/value heads evenly")
    rep = n_head // n_kv
    qg = q.reshape(n_kv, rep * t, d)                       # heads of one group stacked
    scores = (qg @ k.transpose(0, 2, 1)).reshape(n_kv, rep, t, s) * np.float32(1 / np.sqrt(d))
    mask = np.arange(s)[None, :] > (past + np.arange(t))[:, None]
    scores = np.where(mask, np.float32(-np.inf), scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return (p.reshape(n_kv, rep * t, s) @ v).reshape(n_head, t, d)


@dataclass
class KVCache:
    """Keys and values of the tokens seen so far, per layer: (H_kv, n_seen, head_dim) each."""

    k: list = field(default_factory=list)
    v: list = field(default_factory=list)

    @property
    def length(self) -> int:
        return 0 if not self.k else self.k[0].shape[1]


@dataclass
class Llama:
    """A Llama model: its :class:`ModelConfig` and a dict of float32 weights (GGUF names)."""

    config: ModelConfig
    weights: dict

    def linear(self, layer: int, name: str) -> np.ndarray:
        return self.weights[f"blk.{layer}.{name}.weight"]

    def with_weights(self, replaced: dict) -> "Llama":
        """The same model with some tensors replaced (e.g. quantized linear weights)."""
        return Llama(self.config, {**self.weights, **replaced})

    @property
    def output_weight(self) -> np.ndarray:
        return self.weights.get("output.weight", self.weights["token_embd.weight"])


def load_model(path=None) -> Llama:
    """The course's model with its weights decoded to float32 (cached: read once per process)."""
    from .gguf_model import read_gguf

    return Llama(model_config(read_gguf(path)), load_weights(path))


def _check_tokens(tokens, vocab: int) -> np.ndarray:
    ids = np.asarray(tokens)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(f"tokens must be a non-empty 1-D sequence of integer ids, got shape {ids.shape} "
                         f"and dtype {ids.dtype}")
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"token ids must lie in [0, {vocab - 1}], got {ids.min()}..{ids.max()}")
    return ids.astype(np.int64)


def forward(model: Llama, tokens, cache: KVCache | None = None, rope_style: str = "normal",
            last_only: bool = False) -> np.ndarray:
    """Logits (T, vocab) float32 of the next token after each of ``tokens``.

    With a :class:`KVCache`, the tokens continue the cached ones (positions start at
    ``cache.length``) and their keys/values are appended to it. ``last_only`` computes the
    logits of the last token only (generation).
    """
    cfg, w = model.config, model.weights
    ids = _check_tokens(tokens, cfg.vocab_size)
    past = 0 if cache is None else cache.length
    t, hd = ids.size, cfg.head_dim
    cos, sin = rope_angles(np.arange(past, past + t), hd, cfg.rope_base)
    x = w["token_embd.weight"][ids].astype(np.float32)
    for layer in range(cfg.n_layer):
        p = f"blk.{layer}."
        h = rms_norm(x, w[p + "attn_norm.weight"], cfg.rms_eps)
        q = (h @ w[p + "attn_q.weight"].T).reshape(t, cfg.n_head, hd).transpose(1, 0, 2)
        k = (h @ w[p + "attn_k.weight"].T).reshape(t, cfg.n_head_kv, hd).transpose(1, 0, 2)
        v = (h @ w[p + "attn_v.weight"].T).reshape(t, cfg.n_head_kv, hd).transpose(1, 0, 2)
        q, k = apply_rope(q, cos, sin, rope_style), apply_rope(k, cos, sin, rope_style)
        if cache is not None:
            if layer < len(cache.k):
                k = np.concatenate([cache.k[layer], k], axis=1)
                v = np.concatenate([cache.v[layer], v], axis=1)
                cache.k[layer], cache.v[layer] = k, v
            else:
                cache.k.append(k)
                cache.v.append(v)
        a = attention(q, k, v, past).transpose(1, 0, 2).reshape(t, cfg.n_head * hd)
        x = x + a @ w[p + "attn_output.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"], cfg.rms_eps)
        x = x + swiglu(h, w[p + "ffn_gate.weight"], w[p + "ffn_up.weight"], w[p + "ffn_down.weight"])
    if last_only:
        x = x[-1:]
    return rms_norm(x, w["output_norm.weight"], cfg.rms_eps) @ model.output_weight.T


def generate(model: Llama, tokens, n_new: int, rope_style: str = "normal") -> list[int]:
    """Greedy decoding: append ``argmax`` of the last logits ``n_new`` times (with a KV cache)."""
    if isinstance(n_new, bool) or not isinstance(n_new, int) or n_new < 0:
        raise ValueError(f"n_new must be a whole number >= 0, got {n_new!r}")
    cache = KVCache()
    out = [int(i) for i in _check_tokens(tokens, model.config.vocab_size)]
    logits = forward(model, out, cache, rope_style, last_only=True)
    new = []
    for _ in range(n_new):
        nxt = int(np.argmax(logits[-1]))
        new.append(nxt)
        logits = forward(model, [nxt], cache, rope_style, last_only=True)
    return new
