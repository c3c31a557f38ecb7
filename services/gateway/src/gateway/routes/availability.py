"""Availability: a public page's free slots (one date or a range), and the owner's own,
with the reasons for the busy rest of each day on request (``explain``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from contracts import booking as msg
from contracts import formats
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from gateway import capabilities
from gateway.capabilities import AvailabilityOut, AvailabilityRangeOut, OwnerAvailability
from gateway.deps import PublicCaller, TenantCaller
from gateway.errors import documented
from gateway.limits import limited
from gateway.params import PageSlug, Printable, bounds_of, nullable, schema_enum, years

public = APIRouter(prefix="/public", tags=["public"])
owner = APIRouter(prefix="/api/v1/availability", tags=["availability"])

# the years every date in range has
DAYS = years(msg.FIRST_DAY.year, msg.LAST_DAY.year)


_DATE: dict[str, Any] = {
    "ge": msg.FIRST_DAY,
    "le": msg.LAST_DAY,
    "json_schema_extra": nullable(DAYS),
}
Day = Annotated[
    date | None,
    Query(alias="date", description="One date, YYYY-MM-DD (or from and to)", **_DATE),
]
First = Annotated[
    date | None,
    Query(alias="from", description="The first date of a range, YYYY-MM-DD", **_DATE),
]
Last = Annotated[
    date | None,
    Query(
        alias="to",
        description=f"The last date of a range (inclusive, at most {msg.MAX_RANGE_DAYS} days)",
        **_DATE,
    ),
]
Duration = Annotated[
    int | None,
    Query(**bounds_of(msg.GetAvailability, "duration_minutes"), description="minutes"),
]
Zone = Annotated[
    str | None,
    Query(
        **bounds_of(msg.GetAvailability, "timezone"),
        description="IANA zone",
        json_schema_extra=schema_enum(formats.time_zones()),
    ),
    Printable,
]


def dates(day: date | None, first: date | None, last: date | None) -> tuple[date, date | None]:
    """``date``, or ``from`` and ``to``: the first date and, for a range, the last; any
    other mix is a 400 ``invalid_range`` (the range's length is booking's to check)."""
    if day is not None and first is None and last is None:
        return day, None
    if day is None and first is not None and last is not None:
        return first, last
    raise ServiceError(
        ErrorKind.INVALID, "invalid_range", "Send date, or from and to (not both, not one)."
    )


@public.get(
    "/{slug}/availability",
    response_model=AvailabilityOut | AvailabilityRangeOut,
    responses=documented(400, 404, 429),
    dependencies=[Depends(limited("availability"))],
)
async def availability(
    slug: PageSlug,
    call: PublicCaller,
    day: Day = None,
    first: First = None,
    last: Last = None,
    duration: Duration = None,
    timezone: Zone = None,
) -> AvailabilityOut | AvailabilityRangeOut:
    """Free windows of at least ``duration`` minutes on ``date``, in ``timezone``'s offsets;
    or on every date ``from``..``to`` (inclusive, at most 31), one list, date after date
    (``{slug, from, to, timezone, duration, slots}``). Never says why time is busy."""
    start, end = dates(day, first, last)
    if end is None:
        return await capabilities.public_availability(call, slug, start, duration, timezone)
    return await capabilities.public_availability_range(call, slug, start, end, duration, timezone)


@owner.get("", response_model=OwnerAvailability, responses=documented(400, 401, 404))
async def owner_availability(
    call: TenantCaller,
    day: Day = None,
    first: First = None,
    last: Last = None,
    duration: Duration = None,
    timezone: Zone = None,
    explain: Annotated[
        bool, Query(description="Also say why the rest of each date is busy (busy)")
    ] = False,
) -> OwnerAvailability:
    """The owner's own free slots on ``date`` or every date ``from``..``to`` (inclusive, at
    most 31): the same slots as their public page, whether it is open or not. With
    ``explain=true``, ``busy`` covers the rest of each date, local midnight to midnight, in
    blocks, each with every reason that holds all through it (docs/booking.md, "Why is this
    busy")."""
    start, end = dates(day, first, last)
    return await capabilities.owner_availability(call, start, end, duration, timezone, explain)
