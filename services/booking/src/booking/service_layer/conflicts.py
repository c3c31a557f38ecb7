"""A refused slot, said so an agent can act on it: what it clashes with, and the next free
slots of the same length (``slot_unavailable``'s details)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.adapters import bookings, owners
from booking.adapters.bookings import Booking
from booking.adapters.owners import Owner
from booking.domain import next_slots
from booking.service_layer.availability import CALENDAR_UNAVAILABLE, busy_time, rules_of
from booking.service_layer.deps import BookingDeps
from contracts import calendars as cal
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

Details = dict[str, object]


def hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


async def live_clash(
    deps: BookingDeps,
    cause: Message,
    booking: Booking,
    start: datetime,
    end: datetime,
    free_busy: cal.FreeBusy,
) -> ServiceError:
    """The 409 of a saga whose live calendar check found ``booking``'s new interval
    [start, end) taken: :func:`conflict` in its owner's zone, the booking itself left out."""
    async with deps.reader() as uow:
        owner = await owners.by_tenant(uow, booking.tenant_id, deleted_too=True)
    assert owner is not None  # a booking's owner row is never deleted, only marked
    return await conflict(
        deps,
        cause,
        owner,
        start,
        end,
        ZoneInfo(owner.timezone),
        free_busy=free_busy,
        ignore_booking=booking.id,
    )


async def conflict(
    deps: BookingDeps,
    cause: Message,
    owner: Owner,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    *,
    own_only: bool = False,
    free_busy: cal.FreeBusy | None = None,
    ignore_booking: str | None = None,
) -> ServiceError:
    """A 409 naming what the slot clashes with: a calendar event, else a booking.

    Its details, for an agent to act on: ``conflict`` (the clash's start, end, the summary
    the sentence shows and its source, ``calendar`` or ``booking``; absent when nothing
    was found) and ``next_slots`` (:func:`_next_slots`)."""
    pad = timedelta(minutes=owner.buffer_minutes)
    if free_busy is None and not own_only:
        try:
            free_busy = await deps.rpc.call(
                cal.GET_FREE_BUSY,
                cal.GetFreeBusy(
                    **cause.caused(tenant_id=owner.tenant_id),
                    start=start - pad,
                    end=end + pad,
                    deadline=deps.deadline(),
                ),
                timeout=deps.participant_timeout,
            )
        except ServiceError:
            free_busy = None
    if free_busy is not None:
        for event in free_busy.events:
            if event.start < end + pad and event.end > start - pad:
                summary = shown_summary(event)
                return ServiceError(
                    ErrorKind.CONFLICT,
                    "slot_unavailable",
                    f"Booking conflict: existing event '{summary}' at "
                    f"{hhmm(event.start, zone)}-{hhmm(event.end, zone)}",
                    {
                        "conflict": _clash(event.start, event.end, zone, summary, "calendar"),
                        "next_slots": await _next_slots(
                            deps, cause, owner, start, end, zone, free_busy, ignore_booking
                        ),
                    },
                )
        if free_busy.unknown:
            return ServiceError(*CALENDAR_UNAVAILABLE)
    async with deps.reader() as uow:
        clash = await bookings.first_clash(
            uow, owner.tenant_id, start, end + pad, ignore=ignore_booking
        )
    where = f" at {hhmm(clash[0], zone)}-{hhmm(clash[1], zone)}" if clash else ""
    details: Details = {}
    if clash is not None:
        details["conflict"] = _clash(*clash, zone, None, "booking")
    details["next_slots"] = await _next_slots(
        deps, cause, owner, start, end, zone, free_busy, ignore_booking
    )
    return ServiceError(
        ErrorKind.CONFLICT,
        "slot_unavailable",
        f"Booking conflict: existing booking{where}",
        details,
    )


def shown_summary(event: cal.BusyEvent) -> str:
    """What a conflict shows of a calendar event: its summary, or ``Busy`` without one (the
    sentence and the details say the same)."""
    return event.summary or "Busy"


def _clash(
    start: datetime, end: datetime, zone: ZoneInfo, summary: str | None, source: str
) -> dict[str, str | None]:
    return {
        "start": start.astimezone(zone).isoformat(),
        "end": end.astimezone(zone).isoformat(),
        "summary": summary,
        "source": source,
    }


async def _next_slots(
    deps: BookingDeps,
    cause: Message,
    owner: Owner,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    free_busy: cal.FreeBusy | None,
    ignore_booking: str | None,
) -> list[dict[str, str]]:
    """The next free slots of the refused slot's length (``next_slots.next_slots``, on
    the busy time availability reads, plus what a live check just found), in ``zone``;
    empty when the busy time cannot be read (the refusal stands without them)."""
    rules = rules_of(owner)
    now = datetime.now(UTC)
    pad = timedelta(minutes=rules.buffer_minutes)
    until = min(
        start + timedelta(days=next_slots.DAYS + 1),
        now + timedelta(days=rules.max_advance_days),
    )
    if until <= start:
        return []
    try:
        busy, _ = await busy_time(
            deps,
            cause,
            owner.tenant_id,
            start - pad,
            until + pad,
            live=False,
            ignore_booking=ignore_booking,
            calendars_version=owner.calendars_version,
        )
    except ServiceError:
        return []
    if free_busy is not None:
        busy.extend((b.start, b.end) for b in (*free_busy.busy, *free_busy.unknown))
    # next_slots searches DAYS local days from the start's: all inside the range
    length = int((end - start) / timedelta(minutes=1))
    slots = next_slots.next_slots(rules, start, length, zone.key, busy, now)
    return [{"start": a.isoformat(), "end": b.isoformat()} for a, b in slots]
