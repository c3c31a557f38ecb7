"""Cleaning text that people and agents send before it is stored or shown again.

The rule lives in :mod:`contracts.text` (pure code the services' domain layers may import);
this module names the same function for the service layers and the gateway.
"""

from __future__ import annotations

from contracts.text import clean_text

__all__ = ["clean_text"]
