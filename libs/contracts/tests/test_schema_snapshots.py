"""Every message's JSON schema is snapshotted; a breaking change fails here.

Additive changes (a new optional field) are allowed but still need the snapshot
refreshed: ``CORTEX_UPDATE_SNAPSHOTS=1 pytest libs/contracts``. A breaking change (a
field removed, renamed, retyped or newly required) must go to a new ``v2`` subject.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from contracts.registry import all_models

SNAPSHOTS = Path(__file__).with_name("schemas")
MODELS = all_models()


def snapshot_path(name: str) -> Path:
    return SNAPSHOTS / f"{name.replace(':', '__')}.json"


def current_schema(name: str) -> dict[str, Any]:
    return MODELS[name].model_json_schema(mode="validation")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.split("/")[-1]], root)
    return schema


def _types(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return sorted(json.dumps(_types(s, root), sort_keys=True) for s in schema["anyOf"])
    keep = {k: v for k, v in schema.items() if k in ("type", "enum", "const", "format", "pattern")}
    if schema.get("type") == "object" and "properties" in schema:
        keep["properties"] = {k: _types(v, root) for k, v in schema["properties"].items()}
    if schema.get("type") == "array" and "items" in schema:
        keep["items"] = _types(schema["items"], root)
    return keep


def breaking_changes(
    old: dict[str, Any],
    new: dict[str, Any],
    path: str = "",
    roots: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> list[str]:
    """What a consumer built against ``old`` would trip over in ``new``.

    A nested object is compared field by field the same way, so a new optional field of a
    nested value is additive there too."""
    old_root, new_root = roots or (old, new)
    problems = []
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    for field, old_field in old_props.items():
        if field not in new_props:
            problems.append(f"{path}{field}: removed")
            continue
        old_value, new_value = _resolve(old_field, old_root), _resolve(new_props[field], new_root)
        if _is_object(old_value) and _is_object(new_value):
            problems += breaking_changes(
                old_value, new_value, f"{path}{field}.", (old_root, new_root)
            )
        elif (old_items := _object_items(old_value, old_root)) is not None and (
            new_items := _object_items(new_value, new_root)
        ) is not None:
            problems += breaking_changes(
                old_items, new_items, f"{path}{field}[].", (old_root, new_root)
            )
        elif _types(old_field, old_root) != _types(new_props[field], new_root):
            problems.append(f"{path}{field}: type changed")
    for field in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{path}{field}: newly required")
    return problems


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _object_items(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    """The object a list holds, when it is a list of objects (compared field by field)."""
    if schema.get("type") != "array" or not isinstance(schema.get("items"), dict):
        return None
    items = _resolve(schema["items"], root)
    return items if _is_object(items) else None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_breaking_change(name: str) -> None:
    path = snapshot_path(name)
    new = current_schema(name)
    if os.environ.get("CORTEX_UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        if path.exists():
            assert not breaking_changes(json.loads(path.read_text()), new), (
                "refusing to snapshot a breaking change: add a v2 subject instead"
            )
        path.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
        if not os.environ.get("CORTEX_UPDATE_SNAPSHOTS"):
            pytest.fail(f"new message {name}: snapshot written, commit {path.name}")
    old = json.loads(path.read_text())
    assert breaking_changes(old, new) == [], f"{name} changed incompatibly"
    assert old == new, f"{name} changed compatibly: refresh with CORTEX_UPDATE_SNAPSHOTS=1"


def test_every_snapshot_has_a_message() -> None:
    """A message deleted from the registry is the most breaking change of all."""
    known = {snapshot_path(name).name for name in MODELS}
    orphans = sorted(p.name for p in SNAPSHOTS.glob("*.json") if p.name not in known)
    assert orphans == []


def test_the_checker_compares_nested_values_field_by_field() -> None:
    def wrap(inner: dict[str, Any]) -> dict[str, Any]:
        return {
            "properties": {"v": {"$ref": "#/$defs/V"}},
            "required": ["v"],
            "$defs": {"V": {"type": "object", **inner}},
        }

    old = wrap({"properties": {"a": {"type": "string"}}, "required": ["a"]})
    added = wrap(
        {"properties": {"a": {"type": "string"}, "n": {"type": "integer"}}, "required": ["a"]}
    )
    assert breaking_changes(old, added) == []
    assert breaking_changes(old, wrap({"properties": {}, "required": []})) == ["v.a: removed"]
    assert breaking_changes(
        old, wrap({"properties": {"a": {"type": "integer"}}, "required": ["a"]})
    ) == ["v.a: type changed"]
    required = wrap(
        {"properties": {"a": {"type": "string"}, "n": {"type": "integer"}}, "required": ["a", "n"]}
    )
    assert breaking_changes(old, required) == ["v.n: newly required"]


def test_the_checker_compares_the_values_of_a_list_field_by_field() -> None:
    def listing(inner: dict[str, Any]) -> dict[str, Any]:
        return {
            "properties": {"vs": {"type": "array", "items": {"$ref": "#/$defs/V"}}},
            "required": ["vs"],
            "$defs": {"V": {"type": "object", **inner}},
        }

    old = listing({"properties": {"a": {"type": "string"}}, "required": ["a"]})
    added = listing(
        {"properties": {"a": {"type": "string"}, "n": {"type": "integer"}}, "required": ["a"]}
    )
    assert breaking_changes(old, added) == []
    assert breaking_changes(old, listing({"properties": {}, "required": []})) == ["vs[].a: removed"]
    assert breaking_changes(
        old, listing({"properties": {"a": {"type": "integer"}}, "required": ["a"]})
    ) == ["vs[].a: type changed"]
    required = listing(
        {"properties": {"a": {"type": "string"}, "n": {"type": "integer"}}, "required": ["a", "n"]}
    )
    assert breaking_changes(old, required) == ["vs[].n: newly required"]
    strings: dict[str, Any] = {"properties": {"vs": {"type": "array", "items": {"type": "string"}}}}
    assert breaking_changes(old, strings) == ["vs: type changed"]


def test_the_checker_sees_breaking_changes() -> None:
    old = {"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}
    assert breaking_changes(old, old) == []
    added = {"properties": {**old["properties"], "c": {"type": "string"}}, "required": ["a"]}
    assert breaking_changes(old, added) == []
    assert breaking_changes(old, {"properties": {"a": {"type": "string"}}, "required": ["a"]}) == [
        "b: removed"
    ]
    retyped = {
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    assert breaking_changes(old, retyped) == ["a: type changed"]
    required = {**old, "required": ["a", "b"]}
    assert breaking_changes(old, required) == ["b: newly required"]


def test_success_replies_cannot_be_mistaken_for_failures() -> None:
    for name, model in MODELS.items():
        if name.endswith(":reply"):
            assert "error" not in model.model_fields, name
