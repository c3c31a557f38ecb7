"""Availability: an owner's free windows, from their rules and busy time (the calendars'
free/busy answer and this service's own bookings), and the owner lookups the saga shares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from booking.adapters import booked_time, bookings, owners
from booking.adapters.booked_time import Booked
from booking.adapters.owners import Owner
from booking.domain import availability as engine
from booking.service_layer import explained
from booking.service_layer.deps import BookingDeps
from contracts import booking as msg
from contracts import calendars as cal
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant

Interval = tuple[datetime, datetime]

NO_PAGE: Final = ServiceError(
    ErrorKind.NOT_FOUND, "page_not_found", "No public scheduling page here."
)
CALENDAR_UNAVAILABLE: Final = (
    ErrorKind.UNAVAILABLE,
    "calendar_unavailable",
    "The owner's calendar cannot be checked right now; try again shortly.",
)


@contextmanager
def refused_as_invalid() -> Iterator[None]:
    """A slot or day the engine refuses, as the ``invalid`` error it is to the caller."""
    try:
        yield
    except engine.SlotRefused as refused:
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused


async def owner_by_slug(uow: UnitOfWork, slug: str) -> Owner:
    owner = await owners.by_slug(uow, slug)
    if owner is None:
        raise NO_PAGE
    return owner


def rules_of(owner: Owner) -> engine.Rules:
    return engine.Rules(
        timezone=owner.timezone,
        working_hours=owner.working_hours,
        buffer_minutes=owner.buffer_minutes,
        min_notice_hours=owner.min_notice_hours,
        max_advance_days=owner.max_advance_days,
    )


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_timezone", "timezone must be an IANA time zone name."
        ) from exc


# --- busy time: the calendars and this service's own bookings ----------------------------------


async def _calendars(
    deps: BookingDeps,
    cause: Message,
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    live: bool,
    calendars_version: int = 0,
    explain: bool = False,
) -> cal.FreeBusy:
    """The calendars' free/busy answer (cached unless ``live`` or ``explain``: the cache
    holds plain answers); unavailable calendars are ``calendar_unavailable``."""
    cache = None if live or explain else deps.free_busy_cache
    generation = (0, 0)
    if cache is not None:
        cached = cache.get(tenant_id, start, end, calendars_version)
        if cached is not None:
            return cached
        generation = cache.generation(tenant_id)
    try:
        answer = await deps.rpc.call(
            cal.GET_FREE_BUSY,
            cal.GetFreeBusy(
                **cause.caused(tenant_id=tenant_id),
                start=start,
                end=end,
                live=live,
                deadline=deps.deadline(),
                explain=explain,
            ),
            timeout=deps.participant_timeout,
        )
    except ServiceError as exc:
        if exc.kind is ErrorKind.INVALID:
            raise
        raise ServiceError(*CALENDAR_UNAVAILABLE) from exc
    if cache is not None:
        cache.put(tenant_id, start, end, answer, generation, calendars_version)
    return answer


async def busy_time(
    deps: BookingDeps,
    cause: Message,
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    live: bool,
    ignore_booking: str | None = None,
    calendars_version: int = 0,
) -> tuple[list[Interval], cal.FreeBusy]:
    """Busy intervals over [start, end): calendars (unknown time counts as busy) + bookings.

    The calendars' answer and this service's own bookings are read at the same time."""

    async def own() -> list[Interval]:
        async with deps.reader() as uow:
            return await bookings.busy(uow, tenant_id, start, end, ignore=ignore_booking)

    free_busy, booked = await asyncio.gather(
        _calendars(
            deps, cause, tenant_id, start, end, live=live, calendars_version=calendars_version
        ),
        own(),
    )
    busy = [(b.start, b.end) for b in free_busy.busy] + [
        (u.start, u.end) for u in free_busy.unknown
    ]
    busy.extend(booked)
    return busy, free_busy


async def explained_busy(
    deps: BookingDeps, cause: Message, tenant_id: str, start: datetime, end: datetime
) -> tuple[cal.FreeBusy, list[Booked]]:
    """What ``busy_time`` reads, named: every calendar event (``explain``, never cached)
    and the own bookings with their ids and statuses, read at the same time."""

    async def own() -> list[Booked]:
        async with deps.reader() as uow:
            return await booked_time.active_between(uow, tenant_id, start, end)

    free_busy, booked = await asyncio.gather(
        _calendars(deps, cause, tenant_id, start, end, live=False, explain=True), own()
    )
    return free_busy, booked


async def free_days(
    deps: BookingDeps,
    cause: Message,
    owner: Owner,
    days: list[date],
    timezone: str | None,
    duration_minutes: int | None,
    *,
    explain: bool = False,
) -> tuple[str, int, list[msg.DaySlots]]:
    """The owner's free windows on each of ``days`` (consecutive), in ``timezone`` (default:
    the owner's), ``duration_minutes`` long (default: the owner's), from one read of the
    busy time over all of them; with ``explain``, each day's busy blocks and their reasons
    too (:mod:`booking.service_layer.explained`). Returns the zone, the duration and the
    days."""
    with refused_as_invalid():
        for day in (days[0], days[-1]):
            engine.check_day(day)
    tz_name = timezone or owner.timezone
    zone = zone_named(tz_name)
    duration = duration_minutes or owner.default_duration_minutes
    rules = rules_of(owner)
    first_start, _ = engine.local_day_bounds(days[0], zone.key)
    _, last_end = engine.local_day_bounds(days[-1], zone.key)
    pad = timedelta(minutes=rules.buffer_minutes)
    start, end = first_start.astimezone(UTC) - pad, last_end.astimezone(UTC) + pad
    if explain:
        free_busy, booked = await explained_busy(deps, cause, owner.tenant_id, start, end)
        named = explained.sources(free_busy, booked, zone)
        now = datetime.now(UTC)
        return tz_name, duration, explained.explain_days(rules, days, tz_name, duration, named, now)
    busy, _ = await busy_time(
        deps,
        cause,
        owner.tenant_id,
        start,
        end,
        live=False,
        calendars_version=owner.calendars_version,
    )
    now = datetime.now(UTC)
    return (
        tz_name,
        duration,
        [
            msg.DaySlots(
                day=day,
                slots=[
                    msg.Slot(start=s, end=e)
                    for s, e in engine.free_windows(rules, day, tz_name, duration, busy, now)
                ],
            )
            for day in days
        ],
    )


def days_between(first: date, last: date) -> list[date]:
    """``first``..``last`` (inclusive), at most ``MAX_RANGE_DAYS`` of them."""
    span = (last - first).days
    if not 0 <= span < msg.MAX_RANGE_DAYS:
        raise ServiceError(
            ErrorKind.INVALID,
            "invalid_range",
            f"The last date must be on or after the first, at most {msg.MAX_RANGE_DAYS} days "
            "in all.",
        )
    return [first + timedelta(days=n) for n in range(span + 1)]


# --- the handlers --------------------------------------------------------------------------


async def get_availability(cmd: msg.GetAvailability, deps: BookingDeps) -> msg.Availability:
    """A public page's free windows on ``day``, or on every date ``day``..``last_day`` in
    one list (the days' answers one after another)."""
    with refused_as_invalid():
        engine.check_day(cmd.day)
        if cmd.last_day is not None:
            engine.check_day(cmd.last_day)
    days = days_between(cmd.day, cmd.last_day or cmd.day)
    async with deps.reader() as uow:
        owner = await owner_by_slug(uow, cmd.slug)
    tz_name, duration, found = await free_days(
        deps, cmd, owner, days, cmd.timezone, cmd.duration_minutes
    )
    return msg.Availability(
        slug=owner.slug or "",
        day=cmd.day,
        timezone=tz_name,
        duration_minutes=duration,
        slots=[slot for day in found for slot in day.slots],
        last_day=cmd.last_day,
    )


async def get_owner_availability(
    cmd: msg.GetOwnerAvailability, deps: BookingDeps
) -> msg.OwnerAvailability:
    """The tenant's own free windows: their page's rules and busy time, open or not; with
    ``explain``, why the rest of each day is busy."""
    tenant_id = require_tenant(cmd)
    days = days_between(cmd.first_day, cmd.last_day)
    async with deps.reader() as uow:
        owner = await owners.by_tenant(uow, tenant_id)
    if owner is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "tenant_not_found", "No such tenant.")
    tz_name, duration, found = await free_days(
        deps, cmd, owner, days, cmd.timezone, cmd.duration_minutes, explain=cmd.explain
    )
    return msg.OwnerAvailability(timezone=tz_name, duration_minutes=duration, days=found)


async def get_page(cmd: msg.GetPage, deps: BookingDeps) -> msg.Page:
    async with deps.reader() as uow:
        owner = await owner_by_slug(uow, cmd.slug)
    return msg.Page(slug=owner.slug or "", page_tenant_id=owner.tenant_id)
