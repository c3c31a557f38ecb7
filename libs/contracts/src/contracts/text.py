"""Cleaning text that people and agents send before it is stored or shown again.

The one owner of the rule: ``cortex_runtime.text.clean_text`` is this function, and the
services' pure domain code (which imports no runtime) reads it from here.
"""

from __future__ import annotations

import unicodedata
from typing import Final

INVISIBLE: Final = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
"""The Unicode categories cleaning drops: control, format (zero-width, bidi overrides),
private-use, surrogates, line and paragraph separators."""


def clean_text(value: str, limit: int) -> str:
    """Drop control and zero-width characters, collapse whitespace, cap the length."""
    kept = "".join(" " if ch in "\t\n\r" else ch for ch in value)
    kept = "".join(ch for ch in kept if unicodedata.category(ch) not in INVISIBLE)
    return " ".join(kept.split())[:limit].rstrip()


def shown(value: str, limit: int = 60) -> str:
    """A value safe to quote back in an error sentence: cleaned and capped."""
    return clean_text(value, limit)
