"""A booking request: checked against the owner's rules and policies, answered again when
it was sent before, then held and handed to the saga (:mod:`booking_saga`). And the
requests the gateway answered 202 without hearing an outcome."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from booking.adapters import bookings, owners
from booking.adapters.bookings import NewBooking
from booking.adapters.database_errors import ConstraintViolated
from booking.adapters.owners import Owner
from booking.domain import availability as engine
from booking.domain import texts
from booking.domain.policies import BookingFacts
from booking.domain.saga import Step
from booking.service_layer import booking_saga
from booking.service_layer.availability import (
    busy_time,
    owner_by_slug,
    refused_as_invalid,
    rules_of,
)
from booking.service_layer.conflicts import conflict
from booking.service_layer.deps import BookingDeps
from booking.service_layer.policies import decide_for_booking
from booking.service_layer.saga_state import announce, info
from contracts import booking as msg
from contracts.formats import InvalidEmail, parse_email
from contracts.policies import PolicyAction
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

PAGE_CHANGED: Final = ServiceError(
    ErrorKind.CONFLICT,
    "page_changed",
    "This page changed owner while the request was on its way; send it again.",
)
REPLAY_WAIT_SECONDS: Final = 1.0


async def create_booking(cmd: msg.CreateBooking, deps: BookingDeps) -> msg.BookingReply:
    """Validate, hold, prepare (calendar live check, quota), commit; compensate on failure."""
    start, end = _range(cmd)
    async with deps.reader() as uow:
        owner = await owner_by_slug(uow, cmd.slug)
    if cmd.page_tenant_id is not None and cmd.page_tenant_id != owner.tenant_id:
        raise PAGE_CHANGED
    if cmd.idempotency_key:
        replay = await _settled_replay(deps, owner.tenant_id, cmd)
        if replay is not None:
            return replay
    attendee = _attendee_email(cmd)
    title = texts.title(cmd.title)
    if not title:
        raise ServiceError(ErrorKind.INVALID, "invalid_title", "A booking needs a title.")
    now = datetime.now(UTC)

    # 1. the same rules as availability, on the synced data (fast), then policies
    own = await _check_slot(deps, cmd, owner, attendee, start, end, now)
    if own is not None:
        return own
    needs_confirmation = await _needs_confirmation(deps, owner, attendee, start, end)

    # 2. hold the slot: the exclusion constraint decides every race
    new = NewBooking(
        id=cmd.booking_id,
        tenant_id=owner.tenant_id,
        slug=owner.slug or "",
        title=title,
        description=texts.description(cmd.description),
        attendee_email=attendee,
        attendee_name=texts.name(cmd.attendee_name),
        start_at=start,
        end_at=end,
        occupied_until=end + timedelta(minutes=owner.buffer_minutes),
        status=msg.BookingStatus.HELD.value,
        saga_step=Step.HOLDING.value,
        needs_confirmation=needs_confirmation,
        hold_expires_at=now + deps.hold,
        idempotency_key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
        manage_token_hash=cmd.manage_token_hash,
    )
    try:
        row = await booking_saga.hold(deps, cmd, new)
    except ConstraintViolated as refused:
        return await _hold_refused(deps, cmd, owner, attendee, start, end, refused)
    # 3. and 4. the participants, then the pivot
    return await booking_saga.prepare_and_commit(deps, cmd, row)


def _range(cmd: msg.CreateBooking) -> tuple[datetime, datetime]:
    """The requested slot in UTC; a time outside the calendar booking works in is refused
    before any arithmetic on it (``date_out_of_range``), a slot that does not end after it
    starts too (``invalid_range``)."""
    with refused_as_invalid():
        engine.check_moments(cmd.start, cmd.end)
    start, end = cmd.start.astimezone(UTC), cmd.end.astimezone(UTC)
    if end <= start:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_range", "The booking must end after it starts."
        )
    return start, end


def _attendee_email(cmd: msg.CreateBooking) -> str:
    """The attendee's address (``contracts.formats.parse_email``, the one e-mail rule)."""
    try:
        return parse_email(cmd.attendee_email)
    except InvalidEmail as refused:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_attendee_email", "attendee_email is not an e-mail address."
        ) from refused


async def _check_slot(
    deps: BookingDeps,
    cmd: msg.CreateBooking,
    owner: Owner,
    attendee: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> msg.BookingReply | None:
    """Refuse a slot availability would not show; None when it would. A slot this very
    request holds already (a retry) is answered with its booking."""
    rules = rules_of(owner)
    pad = timedelta(minutes=rules.buffer_minutes)
    busy, _ = await busy_time(deps, cmd, owner.tenant_id, start - pad, end + pad, live=False)
    try:
        engine.check_slot(rules, start, end, busy, now)
    except engine.SlotRefused as refused:
        if refused.code == "slot_unavailable":
            own = await _own_booking(deps, owner.tenant_id, cmd, attendee, start, end)
            if own is not None:
                return own
            zone = ZoneInfo(owner.timezone)
            raise await conflict(deps, cmd, owner, start, end, zone) from refused
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused
    return None


async def _needs_confirmation(
    deps: BookingDeps, owner: Owner, attendee: str, start: datetime, end: datetime
) -> bool:
    """Whether the owner confirms this booking (their rule, or a policy); a policy that
    denies it refuses it (``policy_denied``)."""
    facts = BookingFacts(
        attendee_email=attendee,
        owner_email=owner.email,
        owner_timezone=owner.timezone,
        start=start,
        end=end,
    )
    async with deps.reader() as uow:
        decision = await decide_for_booking(uow, owner.tenant_id, facts)
    if decision.action is PolicyAction.DENY:
        raise ServiceError(
            ErrorKind.FORBIDDEN,
            "policy_denied",
            decision.reason,
            {"policy": decision.policy_name},
        )
    return owner.confirm_before_booking or decision.action is PolicyAction.REQUIRE_CONFIRMATION


async def _hold_refused(
    deps: BookingDeps,
    cmd: msg.CreateBooking,
    owner: Owner,
    attendee: str,
    start: datetime,
    end: datetime,
    refused: ConstraintViolated,
) -> msg.BookingReply:
    """The answer to a hold the database refused: the first answer to the same request
    (by Idempotency-Key, or by the booking id derived from it), else the conflict."""
    constraint = refused.constraint
    if constraint in (bookings.KEY_TAKEN, bookings.ID_TAKEN) and cmd.idempotency_key:
        replay = await _settled_replay(deps, owner.tenant_id, cmd)  # the id is the key's
        if replay is not None:
            return replay
    if constraint == bookings.ID_TAKEN:
        async with deps.reader() as uow:
            existing = await bookings.load(uow, cmd.booking_id)
        if existing is not None and existing.tenant_id != owner.tenant_id:
            raise ServiceError(
                ErrorKind.CONFLICT,
                "booking_id_taken",
                "This booking id belongs to another page's booking; send the request "
                "again with a new Idempotency-Key.",
            ) from refused
        if existing is not None:
            return msg.BookingReply(booking=info(existing), replayed=True)
    if constraint == bookings.SLOT_TAKEN:
        own = await _own_booking(deps, owner.tenant_id, cmd, attendee, start, end)
        if own is not None:
            return own
        zone = ZoneInfo(owner.timezone)
        raise await conflict(deps, cmd, owner, start, end, zone, own_only=True) from refused
    raise refused


async def _own_booking(
    deps: BookingDeps,
    tenant_id: str,
    cmd: msg.CreateBooking,
    attendee: str,
    start: datetime,
    end: datetime,
) -> msg.BookingReply | None:
    """The attendee's own active booking made by this very request, when a retry without
    Idempotency-Key (after a 503, a 202 or a lost answer) finds the slot taken by it.

    It is the same request when it names the same page owner, the same start and end,
    the same attendee (``attendee``: the address as parsed), and the gateway's hash of the
    whole body (title, description, name included) is the same. Only a held, pending or
    confirmed booking is answered (a failed one frees its slot: the retry books again). The
    answer tells the sender nothing the request did not hold already, except the booking's
    id and status: whoever can send that exact body could have booked it, and the slot is
    not theirs to take either way."""
    if not cmd.request_hash:
        return None
    async with deps.reader() as uow:
        row = await bookings.same_request(uow, tenant_id, start, end, attendee, cmd.request_hash)
    return msg.BookingReply(booking=info(row), replayed=True) if row is not None else None


async def _settled_replay(
    deps: BookingDeps, tenant_id: str, cmd: msg.CreateBooking
) -> msg.BookingReply | None:
    """The first answer to this Idempotency-Key, once there is one.

    A retry that arrives while the first request's saga still runs waits a moment for its
    outcome; past that the answer is the booking as it stands, ``held`` (the gateway
    answers 202 with its status URL, never a 201 for a booking that may still fail).
    """
    deadline = asyncio.get_running_loop().time() + REPLAY_WAIT_SECONDS
    while True:
        replay = await _replay(deps, tenant_id, cmd)
        if replay is None or replay.booking.status is not msg.BookingStatus.HELD:
            return replay
        if asyncio.get_running_loop().time() >= deadline:
            return replay
        await asyncio.sleep(0.05)


async def _replay(
    deps: BookingDeps, tenant_id: str, cmd: msg.CreateBooking
) -> msg.BookingReply | None:
    async with deps.reader() as uow:
        first = await bookings.by_idempotency_key(uow, tenant_id, cmd.idempotency_key or "")
    if first is None:
        return None
    if first.request_hash != cmd.request_hash:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request.",
        )
    if first.status == msg.BookingStatus.FAILED.value and first.reason:
        # the first answer was an error: answer the same error again
        raise ServiceError(ErrorKind.CONFLICT, "booking_failed", first.reason)
    return msg.BookingReply(booking=info(first), replayed=True)


# --- requests the gateway answered 202 without a reply -------------------------------------


async def settle_unanswered(cmd: msg.CreateBooking, deps: BookingDeps) -> None:
    """Give a request the gateway accepted (202) without hearing back an outcome.

    If it reached booking, its saga (and recovery) settles it. If not (lost on the way, or
    refused after the gateway stopped waiting), it runs again, idempotent by booking id, and
    a refusal is recorded as a failed booking with its reason, so the 202's status URL ends
    with an answer. A failure to reach the database raises: the event is redelivered.
    """
    async with deps.uow() as uow:
        if await bookings.load(uow, cmd.booking_id) is not None:
            return
    try:
        await create_booking(cmd, deps)
    except ServiceError as exc:
        await _record_refusal(deps, cmd, exc.reply.message)


async def _record_refusal(deps: BookingDeps, cmd: msg.CreateBooking, reason: str) -> None:
    try:
        engine.check_moments(cmd.start, cmd.end)
    except engine.SlotRefused:
        # no gateway hands such a request over (it refuses it with a 400): nothing to keep
        log.warning("a handed-over request outside the calendar", extra={"id": cmd.booking_id})
        return
    async with deps.uow() as uow:
        owner: Owner | None
        if cmd.page_tenant_id is not None:  # the page's owner when the request was sent
            owner = await owners.by_tenant(uow, cmd.page_tenant_id)
        else:
            owner = await owners.by_slug(uow, cmd.slug)
        if owner is None:
            return  # no such page: its status URL answers 404, which is the truth
        # a refused range (end at or before start) is kept as its start, one microsecond
        # long: every row holds the range constraint (end after start)
        start = cmd.start.astimezone(UTC)
        end = max(cmd.end.astimezone(UTC), start + timedelta(microseconds=1))
        failed = NewBooking(
            id=cmd.booking_id,
            tenant_id=owner.tenant_id,
            slug=cmd.slug.strip().lower(),
            title=texts.title(cmd.title) or "Booking",
            description=texts.description(cmd.description),
            attendee_email=texts.address(cmd.attendee_email),
            attendee_name=texts.name(cmd.attendee_name),
            start_at=start,
            end_at=end,
            occupied_until=end,
            status=msg.BookingStatus.FAILED.value,
            saga_step=Step.COMPENSATED.value,
            reason=reason[: texts.REASON_MAX],
            idempotency_key=cmd.idempotency_key,
            request_hash=cmd.request_hash,
        )
        row = await bookings.insert_unless_present(uow, failed)
        if row is not None:  # like every booking: requested, then its final state
            for spec in (msg.BOOKING_REQUESTED, msg.BOOKING_FAILED):
                await announce(uow, spec, cmd, row)
        await uow.commit()
