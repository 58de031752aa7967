"""Stretch goal of the capstone: PP-OCRv4's text recognizer, greedy CTC decoding and character error rate.

The recognizer (an SVTR-style network in ``rapidocr-onnxruntime``) reads a text line of 3 x 48 x W
(PaddleOCR uses W = 320, same normalisation and right padding as the classifier) and outputs, for
each of T horizontal positions, probabilities over ``blank + characters + space``. Greedy CTC
decoding takes the most likely symbol per position, merges repeats, and drops blanks. The
character list is stored in the ONNX file's metadata under ``character``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["REC_SHAPE", "charset", "ctc_greedy_decode", "edit_distance", "character_error_rate",
           "preprocess_rec_line", "recognize"]

#: PaddleOCR's recognizer input for PP-OCRv4: channels, height, width.
REC_SHAPE = (3, 48, 320)


def charset(model) -> list:
    """The recognizer's output symbols: ``["<blank>"] + metadata "character" lines + [" "]``
    (PaddleOCR's CTC label decoder with ``use_space_char=True``)."""
    meta = {p.key: p.value for p in model.metadata_props}
    if "character" not in meta:
        raise ValueError("this ONNX model has no 'character' list in its metadata: is it the PP-OCR recognizer?")
    return ["<blank>"] + meta["character"].splitlines() + [" "]


def ctc_greedy_decode(probs, chars) -> list:
    """Greedy CTC: per time step the argmax symbol; merge consecutive repeats; drop the blank (index 0).

    ``probs`` is (n, T, classes) (or (T, classes) for one line); returns one string per line.

    >>> chars = ["<blank>", "a", "b"]
    >>> p = np.eye(3)[[1, 1, 0, 1, 2, 2, 0]]          # a a _ a b b _  ->  "aab"
    >>> ctc_greedy_decode(p, chars)
    ['aab']
    """
    p = np.asarray(probs)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[-1] != len(chars):
        raise ValueError(f"probs must be (n, T, {len(chars)}) to match the character list, got shape {p.shape}")
    best = p.argmax(-1)
    out = []
    for row in best:
        keep = np.ones(len(row), bool)
        keep[1:] = row[1:] != row[:-1]
        out.append("".join(chars[i] for i in row[keep & (row != 0)]))
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning ``a`` into ``b``.

    >>> edit_distance("kitten", "sitting"), edit_distance("", "abc"), edit_distance("same", "same")
    (3, 3, 0)
    """
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def character_error_rate(predictions, references) -> float:
    """CER = (sum of edit distances) / (total number of reference characters).

    >>> character_error_rate(["helo", "world"], ["hello", "world"])
    0.1
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references) or not references:
        raise ValueError("need as many predictions as references, and at least one")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("the references hold no characters")
    return sum(edit_distance(p, r) for p, r in zip(predictions, references)) / total


def preprocess_rec_line(img) -> np.ndarray:
    """A grey line image to the recognizer's 3 x 48 x 320 input (resize to height 48, normalise, pad right)."""
    from .textlines import preprocess_line

    return preprocess_line(img, shape=REC_SHAPE)


def recognize(model_or_session, x, chars, batch_size: int = 8) -> list:
    """Run the recognizer on ``x`` (n, 3, 48, 320) and greedy-decode every line."""
    from .realmodel import predict_proba

    return ctc_greedy_decode(predict_proba(model_or_session, x, batch_size=batch_size), chars)
