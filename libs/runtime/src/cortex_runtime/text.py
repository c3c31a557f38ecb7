"""Cleaning text that people and agents send before it is stored or shown again."""

from __future__ import annotations

import unicodedata

# control, format (zero-width, bidi overrides), private-use, surrogates, line/paragraph separators
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def clean_text(value: str, limit: int) -> str:
    """Drop control and zero-width characters, collapse whitespace, cap the length."""
    kept = "".join(" " if ch in "\t\n\r" else ch for ch in value)
    kept = "".join(ch for ch in kept if unicodedata.category(ch) not in _INVISIBLE)
    return " ".join(kept.split())[:limit].rstrip()
