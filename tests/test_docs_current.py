"""Checked-in generated documents match the code."""

from __future__ import annotations

from pathlib import Path

from cortex_dev.asyncapi import main as asyncapi

ROOT = Path(__file__).resolve().parents[1]


def test_asyncapi_documents_are_current() -> None:
    assert asyncapi(["--check", str(ROOT / "docs" / "asyncapi")]) == 0, "run `make docs`"
