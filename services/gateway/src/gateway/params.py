"""What path and query parameters may contain.

Every value a URL carries here is an identifier, a slug, an e-mail address, a cursor, a
zone name or an OAuth code or state: none holds a control character. PostgreSQL refuses a
NUL in text outright (the query fails), so such values are refused at the edge with the
usual 400, before any service looks them up.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from fastapi import Path
from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from starlette.convertors import Convertor, register_url_convertor

from contracts import formats
from contracts.calendars import Provider
from contracts.formats import IdPrefix

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PRINTABLE: Final = r"^[^\x00-\x1f\x7f]*$"
"""The pattern OpenAPI states for what :data:`Printable` accepts."""


def _printable(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


class _Printable:
    """Refuses a control character, and says so in the JSON schema (a ``pattern``, unless
    the parameter states a stricter one)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_printable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        stated = handler(schema)
        for branch in stated.get("anyOf", [stated]):
            if branch.get("type") == "string":
                branch.setdefault("pattern", PRINTABLE)
        return stated


Printable = _Printable()
"""``Annotated[str, Path(...), Printable]``: a 400 when the value holds a control character."""

PathText = Annotated[str, Path(), Printable]
"""A path segment without further constraints (the service checks its shape)."""


def _id(prefix: IdPrefix, what: str) -> Any:
    """The ``Path`` of an id: the shape every id of the kind has (contracts.formats),
    checked here, so that a malformed id is a 400 and the OpenAPI document states what the
    services mint."""
    return Path(
        pattern=formats.id_pattern(prefix),
        description=f"The id of {what} (``{prefix.value}_`` and 20 hex digits).",
        examples=[f"{prefix.value}_0123456789abcdef0123"],
    )


BookingId = Annotated[str, _id(IdPrefix.BOOKING, "a booking")]
CallerId = Annotated[str, _id(IdPrefix.CALLER, "a caller")]
PolicyId = Annotated[str, _id(IdPrefix.POLICY, "a policy")]
KeyId = Annotated[str, _id(IdPrefix.API_KEY, "an API key")]
CalendarId = Annotated[str, _id(IdPrefix.CALENDAR, "a calendar")]

PageSlug = Annotated[
    str,
    Path(
        min_length=formats.SLUG_MIN,
        max_length=formats.SLUG_MAX,
        pattern=formats.PAGE_SLUG_PATTERN,
        description="The page's slug (letters, digits, single inner hyphens; any case).",
        examples=["alice"],
    ),
]
"""A public page's slug."""


class _Segment(Convertor[str]):
    """A path segment that is one of a few words: another word matches no route (404), so
    that ``/api/v1/calendars/sync`` is no provider and its other methods are a 405."""

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


OAUTH_PROVIDERS: Final = ("google", "outlook")


class _ProviderSegment(_Segment):
    regex = "|".join(p.value for p in Provider)


class _OAuthProviderSegment(_Segment):
    regex = "|".join(OAUTH_PROVIDERS)


# routes write ``{provider:provider}`` or ``{provider:oauth_provider}``
register_url_convertor("provider", _ProviderSegment())
register_url_convertor("oauth_provider", _OAuthProviderSegment())

ProviderName = Annotated[Provider, Path(description="google, outlook or caldav")]
"""A calendar provider in a path."""

OAuthProvider = Annotated[
    Literal["google", "outlook"], Path(description="A provider connected with OAuth 2.0")
]
"""``google`` or ``outlook``: the providers connected through OAuth (CalDAV takes a password)."""


def schema_enum(values: Any) -> dict[str, Any]:
    """``json_schema_extra`` stating the values a service accepts for a field the service
    itself checks (its refusal, with its own ``code``, stays the service's)."""
    return {"enum": [str(getattr(v, "value", v)) for v in values]}


def nullable(extra: dict[str, Any]) -> Any:
    """``json_schema_extra`` for an optional field (``str | None``): ``extra`` goes on the
    string branch of its ``anyOf``, beside ``null``."""

    def apply(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", []):
            if branch.get("type") == "string":
                branch.update(extra)

    return apply


CURSOR: Final = {
    "pattern": formats.BASE64URL,
    "description": "The ``next_cursor`` of the previous page (opaque; another is a 400).",
}
"""``json_schema_extra`` of a page cursor (the service that issued it checks it)."""


def _digit(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _digits_between(low: str, high: str) -> str:
    """A regex for the numbers ``low``..``high``, both written with as many digits."""
    width = len(low)
    if low == "0" * width and high == "9" * width:
        return "[0-9]" if width == 1 else f"[0-9]{{{width}}}"
    if width == 1:
        return _digit(int(low), int(high))
    if low[0] == high[0]:
        return low[0] + _group(_digits_between(low[1:], high[1:]))
    rest = width - 1
    parts = [low[0] + _group(_digits_between(low[1:], "9" * rest))]
    if int(high[0]) - int(low[0]) > 1:
        parts.append(
            _digit(int(low[0]) + 1, int(high[0]) - 1) + _digits_between("0" * rest, "9" * rest)
        )
    parts.append(high[0] + _group(_digits_between("0" * rest, high[1:])))
    return "|".join(parts)


def _group(regex: str) -> str:
    return f"(?:{regex})" if "|" in regex else regex


def years(first: int, last: int) -> JsonDict:
    """``json_schema_extra`` of a date or date-time whose year lies in ``first``..``last``
    (JSON Schema has no minimum for a date; its year can be a pattern)."""
    return {"pattern": f"^(?:{_digits_between(f'{first:04d}', f'{last:04d}')})-"}


_BOUNDS: Final = ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern")


def bounds_of(model: type[BaseModel], field: str) -> dict[str, Any]:
    """The bounds (``ge``, ``le``, ``max_length``, ``pattern``, ...) the owning service's
    message states for ``field``, as keyword arguments of ``Field``/``Query``: a door's
    parameter says what the service accepts without restating it."""
    stated: dict[str, Any] = {}
    for constraint in model.model_fields[field].metadata:
        for name in _BOUNDS:
            value = getattr(constraint, name, None)
            if value is not None:
                stated[name] = value
    return stated
