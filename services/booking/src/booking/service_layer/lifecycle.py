"""A booking's life after its saga: the owner reads, lists, confirms, declines and cancels
it; expiry ends a pending one (:mod:`recovery`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from booking.adapters import bookings
from booking.adapters.bookings import Booking, Changes
from booking.domain import availability as engine
from booking.domain import texts
from booking.domain.saga import Step
from booking.service_layer import booking_saga
from booking.service_layer.availability import refused_as_invalid
from booking.service_layer.deps import BookingDeps
from booking.service_layer.saga_state import NOT_FOUND, info, move
from contracts import booking as msg
from contracts.envelope import Message
from contracts.rpc import ErrorKind, EventSpec
from cortex_runtime.cursors import decode_cursor, encode_cursor
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError, require_tenant

log = logging.getLogger(__name__)


async def _owned(uow: UnitOfWork, cmd: msg.GetBooking | msg.ChangeBooking) -> Booking:
    """The tenant's booking ``cmd`` names; ``booking_not_found`` for another's."""
    tenant_id = require_tenant(cmd)
    row = await bookings.load(uow, cmd.booking_id)
    if row is None or row.tenant_id != tenant_id:
        raise ServiceError(*NOT_FOUND)
    return row


async def get_booking(cmd: msg.GetBooking, deps: BookingDeps) -> msg.BookingReply:
    async with deps.uow() as uow:
        return msg.BookingReply(booking=info(await _owned(uow, cmd)))


async def get_public_booking(cmd: msg.GetPublicBooking, deps: BookingDeps) -> msg.BookingReply:
    async with deps.uow() as uow:
        row = await bookings.load(uow, cmd.booking_id)
    if row is None or row.slug != cmd.slug.strip().lower():
        raise ServiceError(*NOT_FOUND)
    return msg.BookingReply(booking=info(row))


# the bookings list's cursors: after the (start, id) of a page's last booking; its times
# lie in the calendar booking works in (EARLIEST..LATEST, the cursors' own range)
CURSOR_KIND = "bk"


async def list_bookings(cmd: msg.ListBookings, deps: BookingDeps) -> msg.BookingList:
    with refused_as_invalid():
        engine.check_moments(*(m for m in (cmd.start, cmd.end) if m is not None))
    tenant_id = require_tenant(cmd)
    before = decode_cursor(cmd.cursor, kind=CURSOR_KIND) if cmd.cursor else None
    async with deps.uow() as uow:
        rows = await bookings.page(
            uow,
            tenant_id,
            status=cmd.status.value if cmd.status is not None else None,
            start=cmd.start,
            end=cmd.end,
            before=before,
            limit=cmd.limit + 1,
        )
    page = rows[: cmd.limit]
    return msg.BookingList(
        bookings=[info(r) for r in page],
        next_cursor=(
            encode_cursor(CURSOR_KIND, page[-1].start_at, page[-1].id)
            if len(rows) > cmd.limit and page
            else None
        ),
    )


async def confirm_booking(cmd: msg.ChangeBooking, deps: BookingDeps) -> msg.BookingReply:
    async with deps.uow() as uow:
        row = await _owned(uow, cmd)
    if row.status != msg.BookingStatus.PENDING.value:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "not_pending",
            f"Only a pending booking can be confirmed; this one is {row.status}.",
        )
    if row.hold_expires_at is not None and row.hold_expires_at < datetime.now(UTC):
        raise ServiceError(ErrorKind.CONFLICT, "expired", "This pending booking has expired.")
    # compare-and-swap: of two concurrent confirms only one moves AWAITING_OWNER on
    try:
        return await booking_saga.write_and_confirm(deps, cmd, row.id, Step.AWAITING_OWNER)
    except ServiceError as exc:
        if exc.code == "booking_changed":
            raise ServiceError(
                ErrorKind.CONFLICT,
                "not_pending",
                "The booking was confirmed, declined or expired meanwhile.",
            ) from exc
        raise


async def decline_booking(cmd: msg.ChangeBooking, deps: BookingDeps) -> msg.BookingReply:
    async with deps.uow() as uow:
        row = await _owned(uow, cmd)
    if row.status != msg.BookingStatus.PENDING.value:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "not_pending",
            f"Only a pending booking can be declined; this one is {row.status}.",
        )
    reason = texts.reason(cmd.reason, "Declined by the owner.")
    return await end_pending(
        deps, cmd, row.id, msg.BookingStatus.DECLINED, msg.BOOKING_DECLINED, reason
    )


async def cancel_booking(cmd: msg.ChangeBooking, deps: BookingDeps) -> msg.BookingReply:
    """Cancel: delete the provider event and free the slot. Quota: released when the meeting
    has not started yet (it never happened), kept otherwise."""
    async with deps.uow() as uow:
        row = await _owned(uow, cmd)
    reason = texts.reason(cmd.reason, "Cancelled by the owner.")
    if row.status == msg.BookingStatus.PENDING.value:
        return await end_pending(
            deps, cmd, row.id, msg.BookingStatus.CANCELLED, msg.BOOKING_CANCELLED, reason
        )
    if row.status != msg.BookingStatus.CONFIRMED.value:
        raise ServiceError(
            ErrorKind.CONFLICT, "not_cancellable", f"A {row.status} booking cannot be cancelled."
        )
    ended = await _end(
        deps,
        cmd,
        row.id,
        Step.DONE,
        msg.BookingStatus.CANCELLED,
        msg.BOOKING_CANCELLED,
        reason,
        delete_event=True,
        # the quota is released when the meeting has not started (it never happened)
        release_quota=row.start_at > datetime.now(UTC),
    )
    if ended is None:
        raise ServiceError(ErrorKind.CONFLICT, "not_cancellable", "The booking changed meanwhile.")
    return ended


async def end_pending(
    deps: BookingDeps,
    cause: Message,
    booking_id: str,
    status: msg.BookingStatus,
    spec: EventSpec[msg.BookingEvent],
    reason: str,
) -> msg.BookingReply:
    """End a pending booking (declined, cancelled, expired). A confirm that failed may have
    left an event (``event_written``): deleted with it."""
    ended = await _end(
        deps, cause, booking_id, Step.AWAITING_OWNER, status, spec, reason, delete_event=None
    )
    if ended is None:
        raise ServiceError(ErrorKind.CONFLICT, "not_pending", "The booking is no longer pending.")
    return ended


async def _end(
    deps: BookingDeps,
    cause: Message,
    booking_id: str,
    expected: Step,
    status: msg.BookingStatus,
    spec: EventSpec[msg.BookingEvent],
    reason: str,
    *,
    delete_event: bool | None,
    release_quota: bool = True,
) -> msg.BookingReply | None:
    """End a booking for good (cancelled, declined, expired); None if it moved meanwhile.

    The end is decided first: status, reason and the event announcing it are committed in
    one transaction, with what is still to release (``event_written``: the calendar event,
    ``quota_reserved``: the month's quota) and the step ``ending``. The slot is free from
    that moment. The releases follow; when a participant cannot be reached they are left to
    the recovery loop, which retries them until they succeed (``booking_saga.release``),
    and the answer is still the ended booking: an owner's cancellation does not wait on a
    calendar server that is down. ``delete_event`` None: as the row says
    (``event_written``)."""
    changes: Changes = {
        "status": status.value,
        "reason": reason[: texts.REASON_MAX],
        "hold_expires_at": None,
        "quota_reserved": release_quota,
    }
    if delete_event is not None:
        changes["event_written"] = delete_event
    decided = await move(
        deps, booking_id, expected, Step.ENDING, announcing=(spec, cause), **changes
    )
    if decided is None:
        return None
    row = decided
    try:
        row = await booking_saga.release(deps, cause, decided)
    except ServiceError as exc:
        log.warning(
            "releases left to recovery", extra={"booking_id": booking_id, "code": exc.reply.code}
        )
    return msg.BookingReply(booking=info(row))
