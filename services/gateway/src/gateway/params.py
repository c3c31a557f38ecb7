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
from pydantic import AfterValidator

from contracts import formats
from contracts.calendars import Provider
from contracts.formats import IdPrefix

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Printable = AfterValidator(_printable)
"""``Annotated[str, Path(...), Printable]``: a 400 when the value holds a control character."""

PathText = Annotated[str, Path(), Printable]
"""A path segment without further constraints (the service checks its shape)."""

PRINTABLE: Final = r"^[^\x00-\x1f\x7f]*$"
"""The pattern OpenAPI states for what :data:`Printable` accepts."""


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
