"""The layers of the calendars service import only downwards: the domain neither adapters
nor the service layer nor the runtime, SQL or HTTP; adapters not the service layer; and the
service layer writes no SQL of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "calendars"


def _imports(layer: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / layer).glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[path.name] = names
    return found


def _offending(layer: str, refused: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        module: sorted(n for n in names if n.startswith(refused))
        for module, names in _imports(layer).items()
        if any(n.startswith(refused) for n in names)
    }


@pytest.mark.parametrize(
    ("layer", "refused"),
    [
        (
            "domain",
            (
                "calendars.adapters",
                "calendars.service_layer",
                "calendars.entrypoints",
                "cortex_runtime",
                "sqlalchemy",
                "httpx",
                "caldav",
            ),
        ),
        ("adapters", ("calendars.service_layer", "calendars.entrypoints")),
        ("service_layer", ("sqlalchemy", "calendars.adapters.tables", "calendars.entrypoints")),
    ],
)
def test_a_layer_imports_only_what_is_below_it(layer: str, refused: tuple[str, ...]) -> None:
    assert _imports(layer), f"no modules found in {layer}"
    assert _offending(layer, refused) == {}
