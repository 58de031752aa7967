"""Perplexity of the model on fixed windows of CPython's own documentation text.

The evaluation text is ``pydoc_data.topics`` (the help topics of ``help()``, shipped with every
Python): its entries joined in sorted order by blank lines.
"""

from __future__ import annotations

__all__ = ["evaluation_text"]


def evaluation_text() -> str:
    """The evaluation text: every ``pydoc_data.topics`` entry, sorted by key, joined by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))
