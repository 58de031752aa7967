"""Evaluation data for the capstone: printed text lines we render ourselves.

PaddleOCR's text-direction classifier answers one question: is this cropped text line
upright (label 0, "0°") or upside down (label 1, "180°")? We make such lines with Pillow
in the DejaVu Sans font that matplotlib ships (no download), from a fixed word list and a
fixed seed; half of them are rotated by 180°. Preprocessing follows PaddleOCR's classifier:
resize to height 48 keeping the aspect ratio (width capped at 192), scale
``x -> (x / 255 - 0.5) / 0.5`` into [-1, 1], and pad on the right with zeros up to
3 x 48 x 192.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["WORDS", "CLS_SHAPE", "LABELS", "TextLines", "font_path", "render_line",
           "normalize_pixels", "preprocess_line", "make_text_lines"]

#: Fixed word list (English and pinyin words, digits appear via the seed).
WORDS = (
    "quantization scale zero point integer float model layer channel weight bias "
    "range rounding clipping error signal noise calibration observer histogram entropy "
    "percentile tensor kernel batch norm folding equalization network inference engine "
    "runtime export graph node symmetric asymmetric unsigned signed bits bytes memory "
    "power speed accuracy text line paddle ocr classifier upright rotated page reader "
    "shuzi zhengshu shishu suofang lianghua jingdu moxing quanzhong"
).split()

#: The classifier's input: channels, height, width.
CLS_SHAPE = (3, 48, 192)

#: Class names of the direction classifier, by output index.
LABELS = ("0°", "180°")


@dataclass(frozen=True)
class TextLines:
    """A rendered data set: ``x`` (n, 3, 48, 192) float32 in [-1, 1], ``y`` (n,) labels
    (0 upright, 1 rotated 180°), the ``texts`` and the raw grey ``images`` (uint8, before resizing)."""

    x: np.ndarray
    y: np.ndarray
    texts: tuple
    images: tuple


def font_path() -> str:
    """Path of the DejaVu Sans TrueType font bundled with matplotlib (always installed)."""
    from matplotlib import font_manager

    return font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=True)


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(font_path(), size)


def render_line(text: str, size: int = 28, ink: int = 20, paper: int = 245, rotate: bool = False) -> np.ndarray:
    """Render ``text`` in black-ish ``ink`` on light ``paper`` as a tight uint8 grey image (h, w),
    with a small margin; ``rotate=True`` turns it upside down (180°).

    >>> img = render_line("abc")
    >>> img.dtype, img.ndim, bool(img.min() < 100 < img.max())
    (dtype('uint8'), 2, True)
    >>> np.array_equal(render_line("abc", rotate=True), img[::-1, ::-1])
    True
    """
    from PIL import Image, ImageDraw

    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    font = _font(int(size))
    left, top, right, bottom = font.getbbox(text)
    margin = max(2, size // 6)
    w, h = right - left + 2 * margin, bottom - top + 2 * margin
    img = Image.new("L", (w, h), color=int(paper))
    ImageDraw.Draw(img).text((margin - left, margin - top), text, font=font, fill=int(ink))
    arr = np.asarray(img, dtype=np.uint8)
    return arr[::-1, ::-1].copy() if rotate else arr


def normalize_pixels(x):
    """PaddleOCR's classifier normalisation: ``(x / 255 - 0.5) / 0.5``, i.e. 0 -> -1 and 255 -> +1.

    >>> normalize_pixels(np.array([0, 127.5, 255]))
    array([-1.,  0.,  1.], dtype=float32)
    """
    return ((np.asarray(x, dtype=np.float32) / 255.0 - 0.5) / 0.5).astype(np.float32)


def preprocess_line(img, shape=CLS_SHAPE) -> np.ndarray:
    """Resize a grey (h, w) or RGB (h, w, 3) line to height 48 (aspect kept, width ``ceil(48 w / h)``
    capped at 192), normalise, and pad right with 0 to (3, 48, 192) float32, as PaddleOCR does.

    >>> x = preprocess_line(np.full((24, 48), 255, np.uint8))   # 2:1 line -> 96 columns
    >>> x.shape, float(x[0, 0, 95]), float(x[0, 0, 96])
    ((3, 48, 192), 1.0, 0.0)
    """
    from PIL import Image

    arr = np.asarray(img)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"img must be a non-empty (h, w) or (h, w, 3) image, got shape {arr.shape}")
    c, H, W = shape
    h, w = arr.shape[:2]
    new_w = min(W, int(math.ceil(H * w / h)))
    pil = Image.fromarray(arr.astype(np.uint8)).resize((new_w, H), Image.BILINEAR)
    x = normalize_pixels(np.asarray(pil))
    x = np.repeat(x[None], c, axis=0) if x.ndim == 2 else np.transpose(x, (2, 0, 1))
    out = np.zeros(shape, np.float32)
    out[:, :, :new_w] = x
    return out


def make_text_lines(n: int, seed: int = 0, words=WORDS) -> TextLines:
    """Render ``n`` text lines with a fixed ``seed``: 1-3 random words (sometimes a number),
    font size 22-34 px, slightly varied ink and paper; exactly half (every other line after
    shuffling) rotated 180°. Different seeds give disjoint-looking sets (use one seed for
    calibration, another for evaluation).

    >>> d = make_text_lines(4, seed=1)
    >>> d.x.shape, int(d.y.sum())
    ((4, 3, 48, 192), 2)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive whole number of lines, got {n!r}")
    rng = np.random.default_rng(seed)
    y = np.zeros(n, np.int64)
    y[rng.permutation(n)[: n // 2]] = 1
    xs, texts, images = [], [], []
    for i in range(n):
        k = int(rng.integers(1, 4))
        parts = [str(w) for w in rng.choice(words, size=k)]
        if rng.random() < 0.2:
            parts.insert(int(rng.integers(0, k + 1)), str(int(rng.integers(0, 10000))))
        text = " ".join(parts)
        img = render_line(text, size=int(rng.integers(22, 35)), ink=int(rng.integers(0, 80)),
                          paper=int(rng.integers(200, 256)), rotate=bool(y[i]))
        xs.append(preprocess_line(img))
        texts.append(text)
        images.append(img)
    return TextLines(x=np.stack(xs), y=y, texts=tuple(texts), images=tuple(images))
