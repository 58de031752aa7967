"""The model's tokenizer, rebuilt from the vocabulary and merges stored in the GGUF file.

SmolLM2 uses GPT-2's byte-level BPE (``tokenizer.ggml.model = "gpt2"``) with llama.cpp's
``tokenizer.ggml.pre = "smollm"`` pre-tokenizer: every digit is split off on its own, then GPT-2's
regex splits words (a leading space stays with the word, shown as "Ġ"). Each piece's bytes are
mapped to printable characters (GPT-2's byte-to-unicode table) and merged greedily, lowest merge
rank first. The 17 control tokens (``<|endoftext|>``, ``<|im_start|>``...) are special tokens.
No BOS token is added (``tokenizer.ggml.add_bos_token = False``).

We build it with Hugging Face ``tokenizers`` (a BPE model from the GGUF's vocab and merges).
"""

from __future__ import annotations

import functools

__all__ = ["build_tokenizer", "load_tokenizer", "encode", "decode"]

_CONTROL = 3  # tokenizer.ggml.token_type of control tokens


def build_tokenizer(reader):
    """A ``tokenizers.Tokenizer`` from the GGUF fields ``tokenizer.ggml.tokens/merges/token_type``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    from .gguf_model import metadata

    kind, pre = metadata(reader, "tokenizer.ggml.model"), metadata(reader, "tokenizer.ggml.pre")
    if kind != "gpt2" or pre not in ("smollm", "starcoder"):
        raise ValueError(f"qlib builds byte-level BPE tokenizers with SmolLM's pre-tokenizer; this file has "
                         f"tokenizer.ggml.model={kind!r}, tokenizer.ggml.pre={pre!r}")
    tokens = metadata(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in metadata(reader, "tokenizer.ggml.merges")]
    types = metadata(reader, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, k in zip(tokens, types) if k == _CONTROL])
    return tok


@functools.lru_cache(maxsize=1)
def load_tokenizer():
    """The (cached) tokenizer of the course's model file."""
    from .gguf_model import read_gguf

    return build_tokenizer(read_gguf())


def encode(text: str) -> list[int]:
    """Token ids of ``text`` (no BOS added, as the model file says).

    >>> encode("The cat sat on 2024 mats.")
    [504, 2644, 2643, 335, 216, 34, 32, 34, 36, 30486, 30]
    >>> [load_tokenizer().id_to_token(i) for i in encode(" 2024")]
    ['Ġ', '2', '0', '2', '4']
    >>> decode(encode(" héllo,  world!\\n"))
    ' héllo,  world!\\n'
    """
    if not isinstance(text, str):
        raise ValueError(f"encode needs a str, got {type(text).__name__}")
    return load_tokenizer().encode(text, add_special_tokens=False).ids


def decode(ids) -> str:
    """The text of token ids (special tokens included verbatim)."""
    return load_tokenizer().decode([int(i) for i in ids], skip_special_tokens=False)
