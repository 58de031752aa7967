"""qlib.llm.tokenizer: the GGUF's byte-level BPE rebuilt with `tokenizers`."""

from __future__ import annotations

import pytest

from llm_helpers import require_llm

require_llm()

from qlib.llm import tokenizer as T  # noqa: E402
from qlib.llm.gguf_model import metadata, read_gguf  # noqa: E402
from qlib.llm.perplexity import evaluation_text  # noqa: E402


def _bytes_to_unicode():
    # GPT-2's table: printable bytes map to themselves, the others to 256, 257, ...
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _reference_bpe(word: str, ranks: dict) -> list[str]:
    """Textbook BPE on one pre-tokenized word: merge the lowest-ranked adjacent pair until none."""
    table = _bytes_to_unicode()
    parts = [table[b] for b in word.encode("utf-8")]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1e18), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, i = min(pairs)
        if rank == 1e18:
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


@pytest.fixture(scope="module")
def tok():
    return T.load_tokenizer()


def test_pre_tokenizer_is_smollm():
    assert metadata(read_gguf(), "tokenizer.ggml.pre") == "smollm"


def test_round_trip_on_pydoc_topics():
    text = evaluation_text()
    assert len(text) > 400_000
    ids = T.encode(text)
    assert T.decode(ids) == text
    assert 3.0 < len(text) / len(ids) < 5.0  # characters per token of English prose and code


def test_hand_checked_ids(tok):
    tokens = metadata(read_gguf(), "tokenizer.ggml.tokens")
    assert T.encode("The") == [tokens.index("The")] == [504]
    assert T.encode(" the") == [tokens.index("Ġthe")]
    assert [tokens[i] for i in T.encode("x = 12\n")] == ["x", "Ġ=", "Ġ", "1", "2", "Ċ"]
    assert T.encode("<|im_start|>user<|im_end|>") == [1, tokens.index("user"), 2]


@pytest.mark.parametrize("word", ["Hello", " quantization", " perplexity", " Ünïcödé", " __init__", "ing"])
def test_agrees_with_textbook_bpe(tok, word):
    merges = metadata(read_gguf(), "tokenizer.ggml.merges")
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
    assert [tok.id_to_token(i) for i in T.encode(word)] == _reference_bpe(word, ranks)


def test_bad_input():
    with pytest.raises(ValueError, match="needs a str"):
        T.encode(b"bytes")
