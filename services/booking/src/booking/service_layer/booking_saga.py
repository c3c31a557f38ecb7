"""The booking saga: its forward steps, each beside the compensation that undoes it, and the
one function that runs an undo plan (:func:`booking.domain.saga.undo_plan` says which
compensations a saga owes, in which order).

    hold the slot                      undo: fail (release the hold)
    check the calendars live           (a read: nothing to undo)
    reserve a unit of quota            undo: release the quota
    write the provider event (pivot)   undo: delete the event
    commit the quota and confirm       (past the pivot: never undone, recovery finishes it)

A pending booking stops after the quota, ``awaiting_owner``; the owner's confirm resumes it
at the write. Every step moves the row compare-and-swap (:func:`saga_state.move`): a saga
that recovery took over meanwhile is left to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from booking.adapters import bookings
from booking.adapters.bookings import Booking, NewBooking
from booking.adapters.database_errors import DatabaseError
from booking.domain import texts
from booking.domain.saga import Compensation, Held, Step, undo_plan
from booking.service_layer.availability import busy_time
from booking.service_layer.conflicts import live_clash
from booking.service_layer.deps import BookingDeps
from booking.service_layer.saga_state import announce, current, info, move
from contracts import billing as bill
from contracts import booking as msg
from contracts import calendars as cal
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.database import retry_lost_races
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

# What a participant answers when it refuses for good; anything else (unreachable, timed
# out, a provider down or refusing the credentials, a crash) may pass
DEFINITIVE_REFUSALS: Final = frozenset(
    {
        ErrorKind.INVALID,
        ErrorKind.UNAUTHORIZED,
        ErrorKind.PAYMENT_REQUIRED,
        ErrorKind.FORBIDDEN,
        ErrorKind.NOT_FOUND,
        ErrorKind.CONFLICT,
    }
)

# how long past the booking's own deadline its quota reservation still counts: a confirm
# at the last moment commits it after a participant's retries, or recovery's
QUOTA_HOLD_MARGIN: Final = timedelta(hours=2)


async def prepare_and_commit(
    deps: BookingDeps, cmd: msg.CreateBooking, held: Booking
) -> msg.BookingReply:
    """A held booking's saga from the live check on: pending (the owner decides), or made."""
    if await move(deps, held.id, Step.HOLDING, Step.PREPARING) is None:
        return await current(deps, held.id)
    await check_live(deps, cmd, held)
    await reserve_quota(deps, cmd, held)
    if await move(deps, held.id, Step.PREPARING, Step.PREPARING, quota_reserved=True) is None:
        return await current(deps, held.id)  # recovery took it over meanwhile
    if held.needs_confirmation:
        row = await move(
            deps,
            held.id,
            Step.PREPARING,
            Step.AWAITING_OWNER,
            status=msg.BookingStatus.PENDING.value,
            hold_expires_at=datetime.now(UTC) + deps.pending_expiry,
            announcing=(msg.BOOKING_PENDING, cmd),
        )
        if row is None:
            return await current(deps, held.id)
        return msg.BookingReply(booking=info(row))
    return await write_and_confirm(deps, cmd, held.id, Step.PREPARING)


# --- the hold, and its undo ------------------------------------------------------------------


async def hold(deps: BookingDeps, cmd: msg.CreateBooking, new: NewBooking) -> Booking:
    """Hold the slot: the row (``held``, ``holding``) and ``booking_requested`` in one
    transaction, under the tenant's slot lock. The exclusion constraint decides every race:
    a taken slot (or a booking id sent before) raises ``ConstraintViolated``."""

    async def attempt() -> Booking:
        async with deps.uow() as uow:
            await bookings.lock_slots(uow, new.tenant_id)
            row = await bookings.insert(uow, new)
            await announce(uow, msg.BOOKING_REQUESTED, cmd, row)
            await uow.commit()
        return row

    return await retry_lost_races(attempt)


async def _fail(deps: BookingDeps, cause: Message, row: Booking, reason: str) -> Booking | None:
    """Release the hold of a saga being undone: failed, with its reason, announced."""
    return await move(
        deps,
        row.id,
        Step.COMPENSATING,
        Step.COMPENSATED,
        status=msg.BookingStatus.FAILED.value,
        reason=reason[: texts.REASON_MAX],
        hold_expires_at=None,
        quota_reserved=False,
        event_written=False,
        calendar_event=None,
        announcing=(msg.BOOKING_FAILED, cause),
    )


async def _close(deps: BookingDeps, cause: Message, row: Booking, reason: str) -> Booking | None:
    """Release the hold of an ended booking (its end was announced when it was decided)."""
    return await move(
        deps, row.id, Step.ENDING, Step.COMPENSATED, event_written=False, quota_reserved=False
    )


# --- the live calendar check: what changed at the providers since the last sync ---------------


async def check_live(deps: BookingDeps, cmd: msg.CreateBooking, held: Booking) -> None:
    """Refuse (after undoing the hold) a slot the calendars say is busy now."""
    pad = held.occupied_until - held.end_at
    try:
        busy, free_busy = await busy_time(
            deps,
            cmd,
            held.tenant_id,
            held.start_at - pad,
            held.occupied_until,
            live=True,
            ignore_booking=held.id,
        )
    except ServiceError as exc:
        await undo_or_leave(deps, cmd, held.id, exc.reply.message)
        raise
    if any(a < held.occupied_until and b > held.start_at - pad for a, b in busy):
        error = await live_clash(deps, cmd, held, held.start_at, held.end_at, free_busy)
        await undo_or_leave(deps, cmd, held.id, error.reply.message)
        raise error


# --- one unit of the month's booking quota, and its undo -----------------------------------


def _quota_hold_until(deps: BookingDeps, held: Booking) -> datetime:
    """Until when the booking may still commit its reservation: a pending one until past
    its expiry (billing's own hold setting need not know booking's pending expiry)."""
    waits = deps.pending_expiry if held.needs_confirmation else timedelta(0)
    return datetime.now(UTC) + waits + deps.hold + QUOTA_HOLD_MARGIN


async def reserve_quota(deps: BookingDeps, cmd: msg.CreateBooking, held: Booking) -> None:
    try:
        await deps.rpc.call(
            bill.RESERVE_BOOKING_QUOTA,
            bill.ReserveBookingQuota(
                **cmd.caused(tenant_id=held.tenant_id),
                booking_id=held.id,
                hold_until=_quota_hold_until(deps, held),
                deadline=deps.deadline(),
            ),
            timeout=deps.participant_timeout,
        )
    except ServiceError as exc:
        await undo_or_leave(deps, cmd, held.id, exc.reply.message)
        if exc.kind is ErrorKind.PAYMENT_REQUIRED:
            raise
        raise ServiceError(
            ErrorKind.UNAVAILABLE,
            "billing_unavailable",
            "The booking could not be completed; try again.",
        ) from exc


async def _release_quota(
    deps: BookingDeps, cause: Message, row: Booking, reason: str
) -> Booking | None:
    await deps.rpc.call(
        bill.RELEASE_BOOKING_QUOTA,
        bill.ReleaseBookingQuota(**cause.caused(tenant_id=row.tenant_id), booking_id=row.id),
        timeout=deps.participant_timeout,
    )
    return None


# --- the pivot: the provider event, and its undo -------------------------------------------


async def write_and_confirm(
    deps: BookingDeps, cause: Message, booking_id: str, expected: Step
) -> msg.BookingReply:
    """The pivot: write the provider event, then commit quota and confirm.

    ``expected`` is ``awaiting_owner`` for the owner's confirm of a pending booking: then
    only a definitive refusal of the write ends the booking; a failure that may pass
    leaves it pending with its hold and quota (:func:`back_to_owner`), answered 503."""
    row = await move(deps, booking_id, expected, Step.WRITING)
    if row is None:
        raise ServiceError(ErrorKind.CONFLICT, "booking_changed", "The booking changed meanwhile.")
    try:
        written = await deps.rpc.call(
            cal.WRITE_BOOKING_EVENT,
            cal.WriteBookingEvent(
                **cause.caused(tenant_id=row.tenant_id),
                booking_id=row.id,
                start=row.start_at,
                end=row.end_at,
                summary=row.title,
                description=row.description,
                attendee_email=row.attendee_email,
                deadline=deps.deadline(),
            ),
            timeout=deps.participant_timeout,
        )
    except ServiceError as exc:
        message = f"The booking could not be written to the owner's calendar: {exc.reply.message}"
        if expected is Step.AWAITING_OWNER and exc.kind not in DEFINITIVE_REFUSALS:
            await back_to_owner(deps, booking_id)
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                "calendar_unavailable",
                f"{message} The booking is still pending and holds its slot: confirm it again "
                "shortly.",
            ) from exc
        await undo_or_leave(deps, cause, booking_id, message)
        raise ServiceError(ErrorKind.UPSTREAM, "calendar_write_failed", message) from exc
    event = (
        {"provider": written.provider.value, "calendar_id": written.calendar_id, "uid": written.uid}
        if written.provider is not None and written.calendar_id and written.uid
        else None
    )
    committed = await move(
        deps, booking_id, Step.WRITING, Step.COMMITTING, event_written=True, calendar_event=event
    )
    if committed is None:
        return await current(deps, booking_id)
    return await _past_the_pivot(deps, cause, committed)


async def back_to_owner(deps: BookingDeps, booking_id: str) -> None:
    """An owner's confirm that did not get past the pivot: the booking is pending again,
    with its hold and quota, until the owner confirms once more, declines, or it expires.
    The write may have happened (a timeout): ``event_written`` has the event deleted by
    its UID if the booking ends without a confirm."""
    await move(deps, booking_id, Step.WRITING, Step.AWAITING_OWNER, event_written=True)


async def _delete_event(
    deps: BookingDeps, cause: Message, row: Booking, reason: str
) -> Booking | None:
    await deps.rpc.call(
        cal.DELETE_BOOKING_EVENT,
        cal.DeleteBookingEvent(**cause.caused(tenant_id=row.tenant_id), booking_id=row.id),
        timeout=deps.participant_timeout,
    )
    return None


# --- past the pivot: commit the quota and confirm --------------------------------------------


async def _past_the_pivot(
    deps: BookingDeps, cause: Message, committed: Booking
) -> msg.BookingReply:
    """The event is written and recorded: the booking is made, and recovery confirms it
    whatever happens now. When the confirmation cannot be finished at once (billing or
    the database out of reach), it is left to recovery and the answer is the booking as it
    stands (not confirmed yet: the gateway answers 202 with its status URL), never an
    error."""
    try:
        return await finish(deps, cause, committed.id)
    except (ServiceError, DatabaseError, OSError) as exc:
        log.warning(
            "confirmation left to recovery",
            extra={"booking_id": committed.id, "error": repr(exc)[:300]},
        )
        return msg.BookingReply(booking=info(committed))


async def finish(deps: BookingDeps, cause: Message, booking_id: str) -> msg.BookingReply:
    """Past the pivot: commit the quota (idempotent) and confirm. Retried by recovery."""
    async with deps.reader() as uow:
        row = await bookings.load(uow, booking_id)
    assert row is not None
    await deps.rpc.call(
        bill.COMMIT_BOOKING_QUOTA,
        bill.CommitBookingQuota(
            **cause.caused(tenant_id=row.tenant_id),
            booking_id=booking_id,
            deadline=deps.deadline(),
        ),
        timeout=deps.participant_timeout,
    )
    done = await move(
        deps,
        booking_id,
        Step.COMMITTING,
        Step.DONE,
        status=msg.BookingStatus.CONFIRMED.value,
        hold_expires_at=None,
        announcing=(msg.BOOKING_CONFIRMED, cause),
    )
    if done is None:
        return await current(deps, booking_id)
    return msg.BookingReply(booking=info(done))


# --- undoing: the plan's compensations, run in its order -------------------------------------

Compensate = Callable[[BookingDeps, Message, Booking, str], Awaitable[Booking | None]]
COMPENSATIONS: Final[Mapping[Compensation, Compensate]] = {
    Compensation.DELETE_EVENT: _delete_event,
    Compensation.RELEASE_QUOTA: _release_quota,
    Compensation.FAIL: _fail,
    Compensation.CLOSE: _close,
}


async def compensate(
    deps: BookingDeps, cause: Message, row: Booking, held: Held, reason: str
) -> Booking:
    """Run the compensations ``row``'s saga owes (:func:`undo_plan`), in order; a
    participant that cannot be reached raises, and the row stays where it is for recovery
    to run the plan again (every compensation is idempotent). The row as they left it."""
    last = row
    for compensation in undo_plan(Step(row.saga_step), held):
        moved = await COMPENSATIONS[compensation](deps, cause, row, reason)
        last = moved or last
    return last


async def undo(
    deps: BookingDeps, cause: Message, booking_id: str, reason: str, *, certain: bool = True
) -> None:
    """Undo a saga before its pivot: claim it (``compensating``), then its plan.

    ``certain`` False (recovery, where a crash may have hidden what was done) undoes both
    participants whatever the row says; both undos are idempotent."""

    async def claim() -> Booking | None:
        async with deps.uow() as uow:
            await bookings.lock_slots_of(uow, booking_id)
            row = await bookings.load(uow, booking_id, lock=True)
            if row is None or row.saga_step in (Step.DONE.value, Step.COMPENSATED.value):
                return None
            await bookings.move(uow, booking_id, None, Step.COMPENSATING)
            await uow.commit()
        return row

    row = await retry_lost_races(claim)
    if row is not None:  # its step as it was claimed says what may have been done
        held = Held(row.event_written, row.quota_reserved, certain)
        await compensate(deps, cause, row, held, reason)


async def undo_or_leave(deps: BookingDeps, cause: Message, booking_id: str, reason: str) -> None:
    """Compensate a saga that a request is about to refuse; the refusal stays the answer.

    When a participant cannot be reached for the undo (the calendar that just refused the
    write is still down), the row is left ``compensating`` and the recovery loop, which
    retries every undo until it succeeds, finishes it: the caller hears why its booking
    failed, not that the clean-up is pending."""
    try:
        await undo(deps, cause, booking_id, reason)
    except ServiceError as exc:
        log.warning(
            "compensation left to recovery",
            extra={"booking_id": booking_id, "code": exc.reply.code},
        )


async def release(deps: BookingDeps, cause: Message, row: Booking) -> Booking:
    """Release what an ended booking (``ending``) still holds, then close it."""
    return await compensate(
        deps, cause, row, Held(row.event_written, row.quota_reserved), row.reason or ""
    )
