"""The saga's row as the service layer moves it and shows it: one way to move a saga on
(compare-and-swap on its step, under the slot lock, with the event announcing it in the
same transaction) and one way to announce a booking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from booking.adapters import bookings
from booking.adapters.bookings import Booking, Changes
from booking.domain.saga import Step
from booking.service_layer.deps import BookingDeps
from contracts import booking as msg
from contracts.envelope import Message
from contracts.rpc import ErrorKind, EventSpec
from cortex_runtime.database import UnitOfWork, retry_lost_races
from cortex_runtime.errors import ServiceError

if TYPE_CHECKING:
    from typing_extensions import Unpack

Announcement = tuple[EventSpec[msg.BookingEvent], Message]  # the event, and what caused it


def info(row: Booking) -> msg.BookingInfo:
    return msg.BookingInfo(
        booking_id=row.id,
        slug=row.slug,
        status=msg.BookingStatus(row.status),
        start=row.start_at,
        end=row.end_at,
        title=row.title,
        description=row.description,
        attendee_email=row.attendee_email,
        attendee_name=row.attendee_name,
        calendar_event=msg.CalendarEventRef(**row.calendar_event) if row.calendar_event else None,
        reason=row.reason,
        created_at=row.created_at,
        history=[
            msg.TimesChanged(
                start=entry["start"],
                end=entry["end"],
                changed_at=entry["changed_at"],
                by=msg.ChangedBy(entry["by"]),
            )
            for entry in row.history
        ],
    )


async def announce(
    uow: UnitOfWork, spec: EventSpec[msg.BookingEvent], cause: Message, row: Booking
) -> None:
    """The event saying what became of the booking, to the outbox in ``uow``."""
    event = msg.BookingEvent(**cause.caused(tenant_id=row.tenant_id), booking=info(row))
    await uow.add_event(spec.subject, event)


async def move(
    deps: BookingDeps,
    booking_id: str,
    expected: Step | None,
    step: Step,
    *,
    announcing: Announcement | None = None,
    **changes: Unpack[Changes],
) -> Booking | None:
    """Move the saga on, compare-and-swap on its current step; None if it moved elsewhere.

    ``announcing`` (an event spec and the message that caused it): the event saying so goes
    to the outbox in the same transaction, so the state and its announcement are never
    apart (committed one after the other, a database outage between them lost the event)."""

    async def attempt() -> Booking | None:
        async with deps.uow() as uow:
            await bookings.lock_slots_of(uow, booking_id)
            row = await bookings.move(uow, booking_id, expected, step, **changes)
            if row is not None and announcing is not None:
                await announce(uow, *announcing, row)
            await uow.commit()
        return row

    return await retry_lost_races(attempt)


NOT_FOUND = (ErrorKind.NOT_FOUND, "booking_not_found", "No such booking.")


async def current(deps: BookingDeps, booking_id: str) -> msg.BookingReply:
    """The booking as it stands now."""
    async with deps.reader() as uow:
        row = await bookings.load(uow, booking_id)
    if row is None:
        raise ServiceError(*NOT_FOUND)
    return msg.BookingReply(booking=info(row))
