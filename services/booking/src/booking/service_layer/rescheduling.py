"""Changing a booking after it was made: the owner's reschedule, and the attendee's
self-service through the manage link (read, reschedule, cancel). The new slot is checked
against the same rules and policies as a new booking, an Idempotency-Key is answered again,
then the reschedule runs as a saga step (:mod:`reschedule_saga`)."""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from booking.adapters import bookings, owners
from booking.adapters.bookings import Booking
from booking.adapters.database_errors import ConstraintViolated
from booking.adapters.owners import Owner
from booking.domain import availability as engine
from booking.domain.saga import Step
from booking.service_layer import lifecycle, reschedule_saga
from booking.service_layer.availability import refused_as_invalid, rules_of
from booking.service_layer.booking_requests import _needs_confirmation
from booking.service_layer.conflicts import conflict
from booking.service_layer.deps import BookingDeps
from booking.service_layer.saga_state import NOT_FOUND, info
from contracts import booking as msg
from contracts import booking_changes as changes
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError, require_tenant

REPLAY_WAIT_SECONDS: Final = 1.0
# compared against when no booking (or no token) matches, so a miss costs what a hit does
_NO_HASH: Final = changes.manage_token_hash("")


# --- the owner's -----------------------------------------------------------------------------


async def reschedule_booking(cmd: changes.RescheduleBooking, deps: BookingDeps) -> msg.BookingReply:
    tenant_id = require_tenant(cmd)
    async with deps.reader() as uow:
        row = await bookings.load(uow, cmd.booking_id)
    if row is None or row.tenant_id != tenant_id:
        raise ServiceError(*NOT_FOUND)
    return await reschedule(
        deps,
        cmd,
        row,
        cmd.start,
        cmd.end,
        by=msg.ChangedBy.OWNER,
        key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
    )


# --- the attendee's, by the manage link ------------------------------------------------------


async def _managed(deps: BookingDeps, cmd: changes.ManagedBooking) -> Booking:
    """The booking the link names; ``booking_not_found`` (as for an unknown booking) for a
    wrong token, another booking's, another page's. The token's hash is compared in
    constant time."""
    async with deps.reader() as uow:
        row = await bookings.load(uow, cmd.booking_id)
    stored = row.manage_token_hash if row is not None and row.manage_token_hash else _NO_HASH
    presented = changes.manage_token_hash(cmd.token)
    matches = hmac.compare_digest(stored.encode(), presented.encode())
    if row is None or not matches or stored is _NO_HASH or row.slug != cmd.slug.strip().lower():
        raise ServiceError(*NOT_FOUND)
    return row


async def _with_notice(deps: BookingDeps, row: Booking) -> Owner:
    """The owner, once the booking is far enough ahead to change: min notice applies to
    changes as to bookings (``too_soon``)."""
    async with deps.reader() as uow:
        owner = await owners.by_tenant(uow, row.tenant_id)
    if owner is None:
        raise ServiceError(*NOT_FOUND)
    earliest = datetime.now(UTC) + timedelta(hours=owner.min_notice_hours)
    if row.start_at < earliest:
        raise ServiceError(
            ErrorKind.INVALID,
            "too_soon",
            f"Changes need {owner.min_notice_hours} hours' notice: this booking starts too "
            "soon to be changed here; contact the owner.",
        )
    return owner


async def get_managed_booking(cmd: changes.ManagedBooking, deps: BookingDeps) -> msg.BookingReply:
    return msg.BookingReply(booking=info(await _managed(deps, cmd)))


async def reschedule_managed_booking(
    cmd: changes.RescheduleManagedBooking, deps: BookingDeps
) -> msg.BookingReply:
    row = await _managed(deps, cmd)
    if cmd.idempotency_key:  # a retry of a change made is answered, even inside the notice
        replay = await _settled_replay(deps, row.id, cmd.idempotency_key, cmd.request_hash)
        if replay is not None:
            return replay
    await _with_notice(deps, row)
    return await reschedule(
        deps,
        cmd,
        row,
        cmd.start,
        cmd.end,
        by=msg.ChangedBy.ATTENDEE,
        key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
    )


async def cancel_managed_booking(
    cmd: changes.CancelManagedBooking, deps: BookingDeps
) -> msg.BookingReply:
    """The owner's cancel, on the attendee's behalf, inside the owner's notice rule."""
    row = await _managed(deps, cmd)
    if row.status in (msg.BookingStatus.CANCELLED.value,):
        return msg.BookingReply(booking=info(row), replayed=True)
    await _with_notice(deps, row)
    change = msg.ChangeBooking(
        **cmd.caused(tenant_id=row.tenant_id),
        booking_id=row.id,
        reason=cmd.reason or "Cancelled by the attendee.",
    )
    return await lifecycle.cancel_booking(change, deps)


# --- the reschedule --------------------------------------------------------------------------


def _range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    with refused_as_invalid():
        engine.check_moments(start, end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_range", "The booking must end after it starts."
        )
    return start, end


async def reschedule(
    deps: BookingDeps,
    cause: Message,
    row: Booking,
    start: datetime,
    end: datetime,
    *,
    by: msg.ChangedBy,
    key: str | None,
    request_hash: str | None,
) -> msg.BookingReply:
    """Check the new slot as a new booking's, hold it beside the old, move the event, swap."""
    start, end = _range(start, end)
    if key:
        replay = await _settled_replay(deps, row.id, key, request_hash)
        if replay is not None:
            return replay
    if row.status not in (msg.BookingStatus.CONFIRMED.value, msg.BookingStatus.PENDING.value):
        raise ServiceError(
            ErrorKind.CONFLICT,
            "not_reschedulable",
            f"Only a pending or confirmed booking can be moved; this one is {row.status}.",
        )
    if row.saga_step not in (Step.DONE.value, Step.AWAITING_OWNER.value):
        raise ServiceError(*reschedule_saga.BUSY_CHANGING)
    if (start, end) == (row.start_at, row.end_at):
        return msg.BookingReply(booking=info(row))  # already there: nothing to move
    async with deps.reader() as uow:
        owner = await owners.by_tenant(uow, row.tenant_id)
    if owner is None:
        raise ServiceError(*NOT_FOUND)
    await _check_slot(deps, cause, owner, row, start, end)
    needs_confirmation = await _needs_confirmation(deps, owner, row.attendee_email, start, end)
    pad = timedelta(minutes=owner.buffer_minutes)
    try:
        held = await reschedule_saga.hold(
            deps, row, start, end, buffer=pad, by=by, key=key, request_hash=request_hash
        )
    except ConstraintViolated as refused:
        if refused.constraint != bookings.SLOT_TAKEN:
            raise
        zone = ZoneInfo(owner.timezone)
        raise await conflict(
            deps, cause, owner, start, end, zone, own_only=True, ignore_booking=row.id
        ) from refused
    return await reschedule_saga.move_and_swap(
        deps, cause, held, needs_confirmation=needs_confirmation
    )


async def _check_slot(
    deps: BookingDeps, cause: Message, owner: Owner, row: Booking, start: datetime, end: datetime
) -> None:
    """Refuse a new slot availability would not show (the booking's own times and event
    left out: they move with it), with a new booking's codes and conflict details."""
    rules = rules_of(owner)
    pad = timedelta(minutes=rules.buffer_minutes)
    found = await reschedule_saga.calendar_busy(
        deps, cause, row, start - pad, end + pad, live=False
    )
    async with deps.reader() as uow:
        booked = await bookings.busy(uow, row.tenant_id, start - pad, end + pad, ignore=row.id)
    busy = [(b.start, b.end) for b in (*found.busy, *found.unknown)] + booked
    try:
        engine.check_slot(rules, start, end, busy, datetime.now(UTC))
    except engine.SlotRefused as refused:
        if refused.code == "slot_unavailable":
            zone = ZoneInfo(owner.timezone)
            raise await conflict(
                deps, cause, owner, start, end, zone, free_busy=found, ignore_booking=row.id
            ) from refused
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused


# --- an Idempotency-Key sent again ---------------------------------------------------------


async def _settled_replay(
    deps: BookingDeps, booking_id: str, key: str, request_hash: str | None
) -> msg.BookingReply | None:
    """The answer to a reschedule this key made (the booking as it stands), waiting a
    moment while it is still under way; None when the key moved nothing yet. The same key
    with another body is ``idempotency_key_reused``."""
    deadline = asyncio.get_running_loop().time() + REPLAY_WAIT_SECONDS
    while True:
        async with deps.reader() as uow:
            row = await bookings.load(uow, booking_id)
        if row is None:
            raise ServiceError(*NOT_FOUND)
        made = next((e for e in row.history if e.get("key") == key), None)
        in_flight = row.moving_key == key
        sent_hash = made.get("hash") if made is not None else row.moving_hash
        if (made is not None or in_flight) and sent_hash != request_hash:
            raise ServiceError(
                ErrorKind.CONFLICT,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            )
        if made is not None:
            return msg.BookingReply(booking=info(row), replayed=True)
        if not in_flight:
            return None
        if asyncio.get_running_loop().time() >= deadline:
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                "reschedule_in_progress",
                "This reschedule is still under way; send it again shortly.",
            )
        await asyncio.sleep(0.05)
