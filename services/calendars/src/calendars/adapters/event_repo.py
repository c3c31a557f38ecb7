"""The synced events of each calendar, and the free/busy reads over them.

Free/busy is availability's hot path: its reads are SQLAlchemy Core statements whose rows
come back as named tuples, with nothing mapped per row."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from calendars.adapters.calendar_repo import Calendar
from calendars.adapters.tables import booking_events, calendars, connections, events
from calendars.domain.ical import wall_clock_span
from calendars.domain.remote import RemoteEvent
from contracts.calendars import Provider
from contracts.formats import IdPrefix
from cortex_runtime.database import UnitOfWork, advisory_lock


class LocalTimes(NamedTuple):
    """A stored event that follows the owner's zone: its wall-clock times."""

    object_key: str
    recurrence_id: str
    local_start: datetime
    local_end: datetime


class PlacedTimes(NamedTuple):
    """Where an event that follows the owner's zone now is."""

    object_key: str
    recurrence_id: str
    start_at: datetime
    end_at: datetime


class Source(NamedTuple):
    """A calendar counted for availability, and the state of its connection."""

    calendar_id: str
    connection_id: str
    provider: str
    status: str
    status_reason: str | None


class Busy(NamedTuple):
    start_at: datetime
    end_at: datetime
    summary: str
    calendar_id: str
    calendar_name: str
    booking_id: str | None  # the booking Cortex wrote this event for, if it did


async def lock_calendar_events(uow: UnitOfWork, calendar_id: str) -> None:
    """One transaction at a time replaces a calendar's stored events, across replicas."""
    await advisory_lock(uow, f"calendar_events:{calendar_id}")


def _values(calendar: Calendar, event: RemoteEvent, zone: str) -> dict[str, Any]:
    start, end = event.start, event.end
    if event.local_start is not None and event.local_end is not None:
        # read in the zone the owner has now (the provider may have read another)
        start, end = wall_clock_span(event.local_start, event.local_end, zone)
    return {
        "calendar_id": calendar.id,
        "object_key": event.key,
        "uid": event.uid,
        "recurrence_id": event.recurrence_id,
        "tenant_id": calendar.tenant_id,
        "start_at": start,
        "end_at": end,
        "local_start": event.local_start if event.local_end is not None else None,
        "local_end": event.local_end if event.local_start is not None else None,
        "summary": event.summary[:500],
        "status": event.status,
        "transparent": event.transparent,
        "all_day": event.all_day,
    }


async def add(uow: UnitOfWork, calendar: Calendar, found: list[RemoteEvent], zone: str) -> None:
    """Store the calendar's events (one row per occurrence: the last of duplicates wins),
    floating and all-day ones placed in the owner's ``zone``."""
    rows = {(e.key, e.recurrence_id): _values(calendar, e, zone) for e in found}
    if rows:
        await uow.execute(pg_insert(events).on_conflict_do_nothing(), list(rows.values()))


async def delete_objects(uow: UnitOfWork, calendar_id: str, object_keys: Iterable[str]) -> None:
    """Delete the events stored from these objects (RemoteEvent.key)."""
    await uow.execute(
        sa.delete(events).where(
            events.c.calendar_id == calendar_id, events.c.object_key.in_(object_keys)
        )
    )


async def replace_copy(
    uow: UnitOfWork,
    calendar: Calendar,
    uids: Iterable[str],
    found: list[RemoteEvent],
    zone: str,
) -> None:
    """Replace the stored copy of one event (its rows of these ``uids``, or of the objects
    ``found`` comes from) with ``found``: a move Cortex made, stored at once."""
    keys = {e.key for e in found}
    await uow.execute(
        sa.delete(events).where(
            events.c.calendar_id == calendar.id,
            sa.or_(
                events.c.uid.in_({*uids, *(e.uid for e in found)}), events.c.object_key.in_(keys)
            ),
        )
    )
    await add(uow, calendar, found, zone)


async def delete_all(uow: UnitOfWork, calendar_id: str) -> None:
    await uow.execute(sa.delete(events).where(events.c.calendar_id == calendar_id))


async def following_zone(uow: UnitOfWork, calendar_id: str) -> list[LocalTimes]:
    """The calendar's floating and all-day events (they follow the owner's zone)."""
    rows = await uow.execute(
        sa.select(
            events.c.object_key, events.c.recurrence_id, events.c.local_start, events.c.local_end
        ).where(events.c.calendar_id == calendar_id, events.c.local_start.is_not(None))
    )
    return [LocalTimes._make(row) for row in rows]


async def place(uow: UnitOfWork, calendar_id: str, placed: list[PlacedTimes]) -> None:
    """Move the calendar's events to where they are now (one statement for all)."""
    await uow.execute(
        sa.update(events)
        .where(
            events.c.calendar_id == calendar_id,
            events.c.object_key == sa.bindparam("key"),
            events.c.recurrence_id == sa.bindparam("rid"),
        )
        .values(start_at=sa.bindparam("new_start"), end_at=sa.bindparam("new_end")),
        [
            {
                "key": p.object_key,
                "rid": p.recurrence_id,
                "new_start": p.start_at,
                "new_end": p.end_at,
            }
            for p in placed
        ],
    )


# --- free/busy: availability's reads -------------------------------------------------------


async def sources(uow: UnitOfWork, tenant_id: str) -> list[Source]:
    """The tenant's calendars that count for availability."""
    rows = await uow.execute(
        sa.select(
            calendars.c.id,
            calendars.c.connection_id,
            connections.c.provider,
            connections.c.status,
            connections.c.status_reason,
        )
        .join(connections, connections.c.id == calendars.c.connection_id)
        .where(calendars.c.tenant_id == tenant_id, calendars.c.contributes.is_(True))
    )
    return [Source._make(row) for row in rows]


def _booking_of(column: sa.Column[Any]) -> sa.ScalarSelect[Any]:
    """The booking whose recorded event is the stored event (one index probe)."""
    return (
        sa.select(booking_events.c.booking_id)
        .where(booking_events.c.tenant_id == events.c.tenant_id, column == events.c.uid)
        .limit(1)
        .scalar_subquery()
    )


# The booking behind a stored event, looked up only where one can be: an event whose UID is
# a booking id (CalDAV and Google list it by the UID Cortex gave it), by that id; an event of
# a Graph calendar (listed by its Graph id), by the UID its synced copy was recorded with.
# Other events cost no lookup.
_BOOKING_ID = sa.case(
    (
        events.c.uid.startswith(f"{IdPrefix.BOOKING.value}_", autoescape=True),
        _booking_of(booking_events.c.booking_id),
    ),
    (connections.c.provider == Provider.OUTLOOK.value, _booking_of(booking_events.c.synced_uid)),
    else_=sa.null(),
)


async def busy(uow: UnitOfWork, tenant_id: str, start: datetime, end: datetime) -> list[Busy]:
    """The events overlapping ``[start, end)`` that block time, of the calendars that count,
    with their calendar and the booking behind each one Cortex wrote."""
    rows = await uow.execute(
        sa.select(
            events.c.start_at,
            events.c.end_at,
            events.c.summary,
            events.c.calendar_id,
            calendars.c.name,
            _BOOKING_ID,
        )
        .join(calendars, calendars.c.id == events.c.calendar_id)
        .join(connections, connections.c.id == calendars.c.connection_id)
        .where(
            events.c.tenant_id == tenant_id,
            calendars.c.contributes.is_(True),
            events.c.start_at < end,
            events.c.end_at > start,
            events.c.status != "cancelled",
            events.c.transparent.is_(False),
        )
    )
    return [Busy._make(row) for row in rows]
