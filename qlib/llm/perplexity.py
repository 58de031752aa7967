"""Perplexity of the model on fixed windows of CPython's own documentation text.

The evaluation text is ``pydoc_data.topics`` (the help topics of ``help()``, shipped with every
Python): its entries joined in sorted order by blank lines. Each window of L tokens is run on its
own (no earlier context); token t predicts token t+1, so a window gives L - 1 predictions.

    NLL_t = -log p(x_{t+1} | x_1..x_t) = logsumexp(logits_t) - logits_t[x_{t+1}]
    perplexity = exp(mean of NLL_t over all predictions of all windows)

A perplexity of P means the model is, on average, as unsure as a uniform choice among P tokens.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

__all__ = ["DEFAULT_STARTS", "DEFAULT_LENGTH", "evaluation_text", "evaluation_tokens", "eval_windows", "token_nll", "perplexity_from_nll",
           "PerplexityResult", "perplexity"]

#: Default windows: 2 windows of 256 tokens, starting at tokens 10 000 and 60 000 of the text.
DEFAULT_STARTS = (10_000, 60_000)
DEFAULT_LENGTH = 256


def evaluation_text() -> str:
    """The evaluation text: every ``pydoc_data.topics`` entry, sorted by key, joined by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


@functools.lru_cache(maxsize=1)
def _tokens() -> np.ndarray:
    from .tokenizer import encode

    ids = np.asarray(encode(evaluation_text()), dtype=np.int64)
    ids.setflags(write=False)
    return ids


def evaluation_tokens() -> np.ndarray:
    """Token ids of :func:`evaluation_text` (cached, read-only)."""
    return _tokens()


def eval_windows(starts=DEFAULT_STARTS, length: int = DEFAULT_LENGTH, tokens=None) -> np.ndarray:
    """Fixed windows ``tokens[s : s + length]`` for each start s: an int array (n_windows, length).

    >>> eval_windows(starts=(0, 5), length=3, tokens=np.arange(10))
    array([[0, 1, 2],
           [5, 6, 7]])
    """
    ids = evaluation_tokens() if tokens is None else np.asarray(tokens)
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 2:
        raise ValueError(f"a window needs at least 2 tokens (one prediction), got length={length!r}")
    starts = [int(s) for s in starts]
    if not starts:
        raise ValueError("give at least one window start")
    for s in starts:
        if s < 0 or s + length > ids.size:
            raise ValueError(f"window [{s}, {s + length}) does not fit in the {ids.size} tokens of the text")
    return np.stack([ids[s:s + length] for s in starts])


def token_nll(logits, targets) -> np.ndarray:
    """Negative log-likelihood of each target: ``logsumexp(logits_t) - logits_t[target_t]`` (float64).

    >>> np.round(token_nll(np.array([[0.0, 0.0], [2.0, 0.0]]), [1, 0]), 4)   # ln 2, ln(1 + e^-2)
    array([0.6931, 0.1269])
    """
    lg = np.asarray(logits, dtype=np.float64)
    tg = np.asarray(targets, dtype=np.int64)
    if lg.ndim != 2 or tg.shape != (lg.shape[0],):
        raise ValueError(f"logits must be (T, vocab) and targets (T,), got {lg.shape} and {tg.shape}")
    if tg.min() < 0 or tg.max() >= lg.shape[1]:
        raise ValueError(f"targets must lie in [0, {lg.shape[1] - 1}]")
    mx = lg.max(axis=1)
    lse = mx + np.log(np.exp(lg - mx[:, None]).sum(axis=1))
    return lse - lg[np.arange(tg.size), tg]


def perplexity_from_nll(nll) -> float:
    """``exp(mean(nll))``.

    >>> perplexity_from_nll([np.log(4.0), np.log(16.0)])   # geometric mean of 4 and 16
    8.0
    """
    nll = np.asarray(nll, dtype=np.float64)
    if nll.size == 0:
        raise ValueError("no predictions: perplexity needs at least one NLL value")
    return float(np.round(np.exp(nll.mean()), 12))


class PerplexityResult(NamedTuple):
    """Perplexity and its parts: per-window perplexity and all NLL values (windows x (L - 1))."""

    perplexity: float
    per_window: tuple
    nll: np.ndarray


def perplexity(model, windows=None, rope_style: str = "normal") -> PerplexityResult:
    """Perplexity ``exp(mean NLL)`` of ``model`` (a :class:`qlib.llm.Llama`) on fixed windows.

    ``windows``: int array (n_windows, L); default :func:`eval_windows` (2 x 256 tokens).
    """
    from .llama import forward

    win = eval_windows() if windows is None else np.asarray(windows)
    if win.ndim == 1:
        win = win[None, :]
    nll = np.stack([token_nll(forward(model, w[:-1], rope_style=rope_style), w[1:]) for w in win])
    return PerplexityResult(perplexity_from_nll(nll), tuple(perplexity_from_nll(n) for n in nll), nll)
