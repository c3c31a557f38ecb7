"""The booking saga's reschedule step: its forward steps, each beside the compensation that
undoes it (:func:`booking.domain.saga.undo_plan` says which a reschedule owes).

    hold the new interval beside the current one    undo: keep the old (drop the new)
    check the calendars live                        (a read: nothing to undo)
    move the calendar event (pivot)                 undo: move it back
    swap the new times in, announce                 (past the pivot: recovery finishes it)

The exclusion constraint covers a booking's current interval and, while it moves
(``moving``), its new one: the new slot is held before the old is released, and the swap
is one UPDATE that drops the old interval in the same statement that makes the new one the
booking's. The answer is sent after the swap committed, so it never holds the old slot once
it is answered; a failed move keeps the old slot, and the event is moved back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from booking.adapters import bookings
from booking.adapters.bookings import Booking
from booking.domain.saga import Compensation, Held, Step, undo_plan
from booking.service_layer.booking_saga import DEFINITIVE_REFUSALS
from booking.service_layer.conflicts import live_clash
from booking.service_layer.deps import BookingDeps
from booking.service_layer.saga_state import announce, current, info, move
from contracts import booking as msg
from contracts import booking_changes as changes
from contracts import calendars as cal
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.database import retry_lost_races
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

BUSY_CHANGING: Final = (
    ErrorKind.CONFLICT,
    "booking_changed",
    "The booking is being changed (or ended) meanwhile; read it and try again.",
)


def resting_step(row: Booking) -> Step:
    """Where a booking's saga rests between changes: pending waits for the owner."""
    return Step.AWAITING_OWNER if row.status == msg.BookingStatus.PENDING.value else Step.DONE


# --- hold the new interval, and its undo -----------------------------------------------------


async def hold(
    deps: BookingDeps,
    row: Booking,
    start: datetime,
    end: datetime,
    *,
    buffer: timedelta,
    by: msg.ChangedBy,
    key: str | None,
    request_hash: str | None,
) -> Booking:
    """Hold ``[start, end)`` (+ buffer) beside the booking's current interval (``moving``),
    compare-and-swap from its resting step, under the tenant's slot lock taken exclusive
    like a new hold's. A taken slot raises ``ConstraintViolated``; a booking that moved on
    meanwhile (being changed, ended) is ``booking_changed``."""

    async def attempt() -> Booking | None:
        async with deps.uow() as uow:
            await bookings.lock_slots(uow, row.tenant_id)
            moved = await bookings.hold_move(
                uow,
                row.id,
                resting_step(row),
                Step.MOVING,
                moving_start_at=start,
                moving_end_at=end,
                moving_until=end + buffer,
                moving_by=by.value,
                moving_key=key,
                moving_hash=request_hash,
            )
            await uow.commit()
        return moved

    moved = await retry_lost_races(attempt)
    if moved is None:
        raise ServiceError(*BUSY_CHANGING)
    return moved


async def _keep_old(deps: BookingDeps, cause: Message, row: Booking, reason: str) -> Booking | None:
    """Drop the new interval: the booking keeps its times (it never let go of them)."""
    return await move(
        deps,
        row.id,
        Step.MOVING,
        resting_step(row),
        moving_start_at=None,
        moving_end_at=None,
        moving_until=None,
        moving_by=None,
        moving_key=None,
        moving_hash=None,
    )


# --- the live calendar check -----------------------------------------------------------------


def without_own_event(found: cal.FreeBusy, booking_id: str) -> cal.FreeBusy:
    """The calendars' answer without the booking's own event (it moves with the booking):
    busy time rebuilt from the other events when the answer lists the own one."""
    if not any(e.booking_id == booking_id for e in found.events):
        return found
    others = [e for e in found.events if e.booking_id != booking_id]
    return found.model_copy(
        update={
            "events": others,
            "busy": [cal.BusyInterval(start=e.start, end=e.end) for e in others],
        }
    )


async def calendar_busy(
    deps: BookingDeps, cause: Message, row: Booking, start: datetime, end: datetime, *, live: bool
) -> cal.FreeBusy:
    """The owner's calendars over ``[start, end)``, every event listed, but the booking's."""
    try:
        found = await deps.rpc.call(
            cal.GET_FREE_BUSY,
            cal.GetFreeBusy(
                **cause.caused(tenant_id=row.tenant_id),
                start=start,
                end=end,
                live=live,
                explain=True,
                deadline=deps.deadline(),
            ),
            timeout=deps.participant_timeout,
        )
    except ServiceError as exc:
        if exc.kind is ErrorKind.INVALID:
            raise
        raise ServiceError(
            ErrorKind.UNAVAILABLE,
            "calendar_unavailable",
            "The owner's calendar cannot be read right now; try again shortly.",
        ) from exc
    return without_own_event(found, row.id)


async def _check_live(deps: BookingDeps, cause: Message, held: Booking) -> None:
    """Refuse (after keeping the old times) a new slot the calendars say is busy now."""
    assert held.moving_start_at is not None and held.moving_end_at is not None
    assert held.moving_until is not None
    pad = held.moving_until - held.moving_end_at
    start, until = held.moving_start_at - pad, held.moving_until
    try:
        found = await calendar_busy(deps, cause, held, start, until, live=True)
    except ServiceError as exc:
        await undo_or_leave(deps, cause, held.id, exc.reply.message)
        raise
    spans = [(b.start, b.end) for b in (*found.busy, *found.unknown)]
    if any(a < until and b > start for a, b in spans):
        error = await live_clash(deps, cause, held, held.moving_start_at, held.moving_end_at, found)
        await undo_or_leave(deps, cause, held.id, error.reply.message)
        raise error


# --- the pivot: move the calendar event, and its undo ----------------------------------------


async def move_and_swap(
    deps: BookingDeps, cause: Message, held: Booking, *, needs_confirmation: bool
) -> msg.BookingReply:
    """A held reschedule from the live check on: the event moved, then the times swapped.

    ``needs_confirmation``: the new slot needs the owner's confirmation (their rule or a
    policy): the booking is pending after the swap."""
    await _check_live(deps, cause, held)
    assert held.moving_start_at is not None and held.moving_end_at is not None
    if held.event_written:
        try:
            await _move_event(deps, cause, held, held.moving_start_at, held.moving_end_at)
        except ServiceError as exc:
            message = f"The booking's calendar event could not be moved: {exc.reply.message}"
            await undo_or_leave(deps, cause, held.id, message)
            kind = ErrorKind.UPSTREAM if exc.kind in DEFINITIVE_REFUSALS else ErrorKind.UNAVAILABLE
            raise ServiceError(kind, "calendar_move_failed", message) from exc
    swapping = await move(
        deps, held.id, Step.MOVING, Step.SWAPPING, needs_confirmation=needs_confirmation
    )
    if swapping is None:
        return await current(deps, held.id)  # recovery took it over meanwhile
    return await swap(deps, cause, held.id)


async def _move_event(
    deps: BookingDeps, cause: Message, row: Booking, start: datetime, end: datetime
) -> None:
    """Ask calendars to move the booking's event to [start, end), in place."""
    await deps.rpc.call(
        cal.MOVE_BOOKING_EVENT,
        cal.MoveBookingEvent(
            **cause.caused(tenant_id=row.tenant_id),
            booking_id=row.id,
            start=start,
            end=end,
            deadline=deps.deadline(),
        ),
        timeout=deps.participant_timeout,
    )


async def _move_back(
    deps: BookingDeps, cause: Message, row: Booking, reason: str
) -> Booking | None:
    """Move the event back to the booking's current times (it is moved only after, and
    calendars runs the two one after the other under the booking's lock: the move was
    refused past its deadline, which has passed when this is sent). A refusal for good
    (no event to move: deleted) leaves nothing to undo."""
    try:
        await _move_event(deps, cause, row, row.start_at, row.end_at)
    except ServiceError as exc:
        if exc.kind not in DEFINITIVE_REFUSALS:
            raise
        log.info("nothing to move back", extra={"booking_id": row.id, "code": exc.reply.code})
    return None


# --- past the pivot: the swap ----------------------------------------------------------------


async def swap(deps: BookingDeps, cause: Message, booking_id: str) -> msg.BookingReply:
    """The new times become the booking's in one UPDATE (the old interval released in the
    same statement), its previous times go to its history, and ``booking_rescheduled`` (and
    ``booking_pending`` when it now waits for the owner) to the outbox, in one transaction.
    Retried by recovery until it is done."""

    async def attempt() -> Booking | None:
        async with deps.uow() as uow:
            await bookings.lock_slots_of(uow, booking_id)
            row = await bookings.load(uow, booking_id, lock=True)
            if row is None or row.saga_step != Step.SWAPPING.value:
                return None
            assert row.moving_start_at is not None and row.moving_end_at is not None
            assert row.moving_until is not None
            now = datetime.now(UTC)
            was_pending = row.status == msg.BookingStatus.PENDING.value
            pending = was_pending or row.needs_confirmation
            by = msg.ChangedBy(row.moving_by or msg.ChangedBy.OWNER.value)
            entry = {
                "start": row.start_at.isoformat(),
                "end": row.end_at.isoformat(),
                "changed_at": now.isoformat(),
                "by": by.value,
                **({"key": row.moving_key} if row.moving_key else {}),
                **({"hash": row.moving_hash} if row.moving_hash else {}),
            }
            await bookings.add_history(uow, booking_id, entry)
            status = msg.BookingStatus.PENDING if pending else msg.BookingStatus.CONFIRMED
            swapped = await bookings.move(
                uow,
                booking_id,
                Step.SWAPPING,
                Step.AWAITING_OWNER if pending else Step.DONE,
                start_at=row.moving_start_at,
                end_at=row.moving_end_at,
                occupied_until=row.moving_until,
                moving_start_at=None,
                moving_end_at=None,
                moving_until=None,
                moving_by=None,
                moving_key=None,
                moving_hash=None,
                status=status.value,
                hold_expires_at=(
                    (row.hold_expires_at if was_pending else now + deps.pending_expiry)
                    if pending
                    else None
                ),
            )
            assert swapped is not None
            await uow.add_event(
                changes.BOOKING_RESCHEDULED.subject,
                changes.BookingRescheduled(
                    **cause.caused(tenant_id=row.tenant_id),
                    booking=info(swapped),
                    old=msg.Slot(start=row.start_at, end=row.end_at),
                    new=msg.Slot(start=swapped.start_at, end=swapped.end_at),
                    by=by,
                ),
            )
            if pending and not was_pending:
                await announce(uow, msg.BOOKING_PENDING, cause, swapped)
            await uow.commit()
        return swapped

    swapped = await retry_lost_races(attempt)
    if swapped is None:
        return await current(deps, booking_id)
    return msg.BookingReply(booking=info(swapped))


# --- undoing: the plan's compensations, run in its order -------------------------------------

Compensate = Callable[[BookingDeps, Message, Booking, str], Awaitable[Booking | None]]
COMPENSATIONS: Final[Mapping[Compensation, Compensate]] = {
    Compensation.MOVE_BACK: _move_back,
    Compensation.KEEP_OLD: _keep_old,
}


async def undo(
    deps: BookingDeps, cause: Message, booking_id: str, reason: str, *, certain: bool = True
) -> None:
    """Undo a reschedule before its pivot (``moving``): its plan, in order. ``certain``
    False (recovery: a crash may have hidden a move) moves the event back whatever the row
    says; moving it back is idempotent. A participant out of reach raises: the row stays
    ``moving`` for recovery to run the plan again."""
    async with deps.reader() as uow:
        row = await bookings.load(uow, booking_id)
    if row is None or row.saga_step != Step.MOVING.value:
        return
    for compensation in undo_plan(Step.MOVING, Held(row.event_written, False, certain)):
        await COMPENSATIONS[compensation](deps, cause, row, reason)


async def undo_or_leave(deps: BookingDeps, cause: Message, booking_id: str, reason: str) -> None:
    """Undo a reschedule a request is about to refuse; the refusal stays the answer. When
    calendars cannot be reached to move the event back, recovery finishes the undo."""
    try:
        await undo(deps, cause, booking_id, reason)
    except ServiceError as exc:
        log.warning(
            "reschedule undo left to recovery",
            extra={"booking_id": booking_id, "code": exc.reply.code},
        )
