"""Booking's handlers: the settings projection, availability, the saga and the lifecycle."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError

from booking.adapters.free_busy_cache import FreeBusyCache
from booking.adapters.tables import bookings, owners
from booking.domain import availability, next_slots
from booking.domain.policies import BookingFacts, Decision
from booking.domain.saga import Recovery, Step, recovery_for
from booking.service_layer.callers_policies import NO_TENANT
from contracts import billing as bill
from contracts import booking as msg
from contracts import calendars as cal
from contracts import identity as ident
from contracts import owners as owner_msg
from contracts.envelope import Message
from contracts.policies import PolicyAction
from contracts.rpc import ErrorKind
from cortex_runtime.client import RpcClient
from cortex_runtime.database import UnitOfWork, retry_lost_races
from cortex_runtime.errors import ServiceError
from cortex_runtime.text import clean_text

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]
ACTIVE = [s.value for s in msg.ACTIVE_STATUSES]


@dataclass
class Context:
    uow: UowFactory
    rpc: RpcClient
    hold: timedelta
    pending_expiry: timedelta
    participant_timeout: float
    decide: Callable[[UnitOfWork, str, BookingFacts], Awaitable[Decision]] | None = None
    # reads outside any transaction (autocommit); the write unit of work when not given
    read: UowFactory | None = None
    # availability's calendars answers (never the saga's live check)
    free_busy_cache: FreeBusyCache | None = None

    def reader(self) -> UnitOfWork:
        return (self.read or self.uow)()


def _deadline(ctx: Context) -> datetime:
    """The deadline of a participant command sent now: the moment the saga stops waiting
    for its answer (and undoes or retries the step), never later than the moment recovery
    may take the saga over (``hold`` after its last step). The participant refuses the
    command past it, so nothing it does comes after the saga gave up on it."""
    return datetime.now(UTC) + min(timedelta(seconds=ctx.participant_timeout), ctx.hold)


# --- the settings projection ---------------------------------------------------------------


async def project_settings(uow: UnitOfWork, settings: ident.TenantSettings) -> bool:
    """Keep the newest settings; say whether these were newer than what the projection held.

    Events arrive out of order and may be redelivered, and the gateway hands over the result
    of a change before its event arrives: identity's ``version`` decides (settings from
    before versions existed, version 0, fall back to ``updated_at``). A forgotten owner is
    never brought back, whatever arrives after its deletion."""
    values = {
        "email": settings.email,
        "display_name": settings.display_name,
        "slug": settings.slug,
        "open_scheduling": settings.open_scheduling,
        "timezone": settings.timezone,
        "working_hours": {
            d: [i.model_dump() for i in v] for d, v in settings.working_hours.items()
        },
        "booking_rules": settings.booking_rules.model_dump(),
        "settings_updated_at": settings.updated_at,
        "settings_version": settings.version,
    }
    statement = pg_insert(owners).values(tenant_id=settings.tenant_id, **values)
    newer = statement.excluded
    # calendars place floating and all-day events in the owner's zone: a new zone makes the
    # free/busy answers cached under the old one stale
    zone_moved = sa.case((owners.c.timezone != newer.timezone, 1), else_=0)
    applied = await uow.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={**values, "calendars_version": owners.c.calendars_version + zone_moved},
            where=sa.and_(
                owners.c.deleted.is_(False),
                sa.or_(
                    owners.c.settings_version < newer.settings_version,
                    sa.and_(
                        owners.c.settings_version == 0,
                        newer.settings_version == 0,
                        owners.c.settings_updated_at <= newer.settings_updated_at,
                    ),
                ),
            ),
        ).returning(owners.c.tenant_id)
    )
    return applied.first() is not None


async def forget_owner(uow: UnitOfWork, event: ident.TenantDeleted) -> None:
    """Mark the owner deleted, at the deletion's version: a settings event of the tenant
    arriving later (redelivered, or late) finds it and changes nothing. An owner this
    projection never saw gets a tombstone for the same reason."""
    tombstone = {
        "deleted": True,
        "open_scheduling": False,
        "slug": None,
        "settings_version": sa.func.greatest(owners.c.settings_version, event.settings_version),
    }
    statement = pg_insert(owners).values(
        tenant_id=event.deleted_tenant_id,
        email="",
        display_name="",
        slug=None,
        open_scheduling=False,
        timezone="UTC",
        working_hours={},
        booking_rules={},
        deleted=True,
        settings_updated_at=event.occurred_at,
        settings_version=event.settings_version,
    )
    await uow.execute(statement.on_conflict_do_update(index_elements=["tenant_id"], set_=tombstone))


async def apply_owner_settings(
    cmd: ident.ApplyOwnerSettings, ctx: Context
) -> ident.OwnerSettingsApplied:
    """Read-your-writes: the settings identity just committed, applied before the gateway
    answers the change (the event that follows finds nothing newer)."""
    if not cmd.tenant_id:
        raise NO_TENANT
    if cmd.settings.tenant_id != cmd.tenant_id:
        raise ServiceError(
            ErrorKind.INVALID, "tenant_mismatch", "The settings are not the caller's tenant's."
        )
    async with ctx.uow() as uow:
        await project_settings(uow, cmd.settings)
        version = (
            await uow.execute(
                sa.select(owners.c.settings_version).where(owners.c.tenant_id == cmd.tenant_id)
            )
        ).scalar_one()
        await uow.commit()
    return ident.OwnerSettingsApplied(**cmd.caused(), settings_version=version)


async def owner_calendars_changed(
    cmd: owner_msg.OwnerCalendarsChanged, ctx: Context
) -> owner_msg.OwnerCalendarsVersion:
    """Every replica's cached free/busy answers for the owner become stale at once: an
    answer is served only under the ``calendars_version`` it was filled under, and
    availability reads the owner's row (with that version) on every request anyway."""
    if not cmd.tenant_id:
        raise NO_TENANT
    async with ctx.uow() as uow:
        version = (
            await uow.execute(
                sa.update(owners)
                .where(owners.c.tenant_id == cmd.tenant_id)
                .values(calendars_version=owners.c.calendars_version + 1)
                .returning(owners.c.calendars_version)
            )
        ).scalar()
        await uow.commit()
    if ctx.free_busy_cache is not None:
        ctx.free_busy_cache.forget(cmd.tenant_id)
    return owner_msg.OwnerCalendarsVersion(**cmd.caused(), calendars_version=version or 0)


NO_PAGE = ServiceError(ErrorKind.NOT_FOUND, "page_not_found", "No public scheduling page here.")


# built once: only the parameters change between calls (the statement cache does the rest)
# identity keeps slugs unique; while the projection still holds a released slug whose
# release has not arrived yet, the newest claim wins
_OWNER_BY_SLUG = (
    sa.select(owners)
    .where(
        owners.c.slug == sa.bindparam("slug"),
        owners.c.open_scheduling.is_(True),
        owners.c.deleted.is_(False),
    )
    .order_by(owners.c.settings_updated_at.desc())
    .limit(1)
)
_OWNER_BY_TENANT = sa.select(owners).where(
    owners.c.tenant_id == sa.bindparam("tenant_id"), owners.c.deleted.is_(False)
)
_ACTIVE_BOOKINGS = sa.select(bookings.c.start_at, bookings.c.end_at).where(
    bookings.c.tenant_id == sa.bindparam("tenant_id"),
    bookings.c.status.in_(ACTIVE),
    bookings.c.start_at < sa.bindparam("end"),
    bookings.c.occupied_until > sa.bindparam("start"),
)


# Holds of one tenant are taken one at a time. Two transactions inserting overlapping rows
# at once each find the other's uncommitted row while checking the exclusion constraint and
# wait for each other: a deadlock PostgreSQL breaks only after ``deadlock_timeout`` (1 s),
# again and again in a storm. An UPDATE of a booking row checks the constraint again (new
# index entries) and can deadlock with a hold the same way, so it takes the same lock,
# shared: holds wait for the tenant's updates in flight, updates never wait for each other.
SLOT_LOCKS = 0x5107  # the advisory-lock namespace (the two-key form) of these locks


def _slot_lock(tenant_id: Any, *, shared: bool) -> sa.Select[Any]:
    take = sa.func.pg_advisory_xact_lock_shared if shared else sa.func.pg_advisory_xact_lock
    return sa.select(take(SLOT_LOCKS, sa.func.hashtext(tenant_id)))


def _slot_lock_of(booking_id: str) -> sa.Select[Any]:
    """The shared slot lock of the tenant owning ``booking_id`` (nothing when none does)."""
    return _slot_lock(bookings.c.tenant_id, shared=True).where(bookings.c.id == booking_id)


async def _owner_by_slug(uow: UnitOfWork, slug: str) -> sa.Row[Any]:
    row = (await uow.execute(_OWNER_BY_SLUG, {"slug": slug.strip().lower()})).first()
    if row is None:
        raise NO_PAGE
    return row


def _rules(owner: Any) -> availability.Rules:
    rules = owner.booking_rules
    return availability.Rules(
        timezone=owner.timezone,
        working_hours={
            day: [(i["start"], i["end"]) for i in intervals]
            for day, intervals in owner.working_hours.items()
        },
        buffer_minutes=int(rules.get("buffer_minutes", 0)),
        min_notice_hours=int(rules.get("min_notice_hours", 0)),
        max_advance_days=int(rules.get("max_advance_days", 60)),
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_timezone", "timezone must be an IANA time zone name."
        ) from exc


# --- busy time: the calendars and this service's own bookings ----------------------------------


async def _busy(
    ctx: Context,
    cause: Message,
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    live: bool,
    ignore_booking: str | None = None,
    calendars_version: int = 0,
) -> tuple[list[tuple[datetime, datetime]], cal.FreeBusy]:
    """Busy intervals over [start, end): calendars (unknown time counts as busy) + bookings.

    The calendars' answer and this service's own bookings are read at the same time."""

    async def calendars() -> cal.FreeBusy:
        cache = None if live else ctx.free_busy_cache
        generation = (0, 0)
        if cache is not None:
            cached = cache.get(tenant_id, start, end, calendars_version)
            if cached is not None:
                return cached
            generation = cache.generation(tenant_id)
        try:
            answer = await ctx.rpc.call(
                cal.GET_FREE_BUSY,
                cal.GetFreeBusy(
                    **cause.caused(tenant_id=tenant_id),
                    start=start,
                    end=end,
                    live=live,
                    deadline=_deadline(ctx),
                ),
                timeout=ctx.participant_timeout,
            )
        except ServiceError as exc:
            if exc.kind is ErrorKind.INVALID:
                raise
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                "calendar_unavailable",
                "The owner's calendar cannot be checked right now; try again shortly.",
            ) from exc
        if cache is not None:
            cache.put(tenant_id, start, end, answer, generation, calendars_version)
        return answer

    async def own() -> list[tuple[datetime, datetime]]:
        params = {"tenant_id": tenant_id, "start": start, "end": end}
        async with ctx.reader() as uow:
            if ignore_booking:
                query = _ACTIVE_BOOKINGS.where(bookings.c.id != ignore_booking)
                rows = (await uow.execute(query, params)).all()
            else:
                rows = (await uow.execute(_ACTIVE_BOOKINGS, params)).all()
        return [(r.start_at, r.end_at) for r in rows]

    free_busy, booked = await asyncio.gather(calendars(), own())
    busy = [(b.start, b.end) for b in free_busy.busy] + [
        (u.start, u.end) for u in free_busy.unknown
    ]
    busy.extend(booked)
    return busy, free_busy


async def _free_days(
    ctx: Context,
    cause: Message,
    owner: Any,
    days: list[date],
    timezone: str | None,
    duration_minutes: int | None,
) -> tuple[str, int, list[list[msg.Slot]]]:
    """The owner's free windows on each of ``days`` (consecutive), in ``timezone`` (default:
    the owner's), ``duration_minutes`` long (default: the owner's), from one read of the
    busy time over all of them. Returns the zone, the duration and the slots per day."""
    try:
        for day in (days[0], days[-1]):
            availability.check_day(day)
    except availability.SlotRefused as refused:
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused
    tz_name = timezone or owner.timezone
    zone = _zone(tz_name)
    duration = duration_minutes or int(owner.booking_rules.get("default_duration_minutes", 30))
    rules = _rules(owner)
    first_start, _ = availability.local_day_bounds(days[0], zone.key)
    _, last_end = availability.local_day_bounds(days[-1], zone.key)
    pad = timedelta(minutes=rules.buffer_minutes)
    busy, _ = await _busy(
        ctx,
        cause,
        owner.tenant_id,
        first_start.astimezone(UTC) - pad,
        last_end.astimezone(UTC) + pad,
        live=False,
        calendars_version=owner.calendars_version,
    )
    now = datetime.now(UTC)
    return (
        tz_name,
        duration,
        [
            [
                msg.Slot(start=s, end=e)
                for s, e in availability.free_windows(rules, day, tz_name, duration, busy, now)
            ]
            for day in days
        ],
    )


async def get_availability(cmd: msg.GetAvailability, ctx: Context) -> msg.Availability:
    try:
        availability.check_day(cmd.day)
    except availability.SlotRefused as refused:
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused
    async with ctx.reader() as uow:
        owner = await _owner_by_slug(uow, cmd.slug)
    tz_name, duration, (slots,) = await _free_days(
        ctx, cmd, owner, [cmd.day], cmd.timezone, cmd.duration_minutes
    )
    return msg.Availability(
        slug=owner.slug,
        day=cmd.day,
        timezone=tz_name,
        duration_minutes=duration,
        slots=slots,
    )


async def get_owner_availability(
    cmd: msg.GetOwnerAvailability, ctx: Context
) -> msg.OwnerAvailability:
    """The tenant's own free windows: their page's rules and busy time, open or not."""
    if not cmd.tenant_id:
        raise NO_TENANT
    span = (cmd.last_day - cmd.first_day).days
    if not 0 <= span < msg.MAX_RANGE_DAYS:
        raise ServiceError(
            ErrorKind.INVALID,
            "invalid_range",
            f"The last date must be on or after the first, at most {msg.MAX_RANGE_DAYS} days "
            "in all.",
        )
    async with ctx.reader() as uow:
        owner = (await uow.execute(_OWNER_BY_TENANT, {"tenant_id": cmd.tenant_id})).first()
    if owner is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "tenant_not_found", "No such tenant.")
    days = [cmd.first_day + timedelta(days=n) for n in range(span + 1)]
    tz_name, duration, slots = await _free_days(
        ctx, cmd, owner, days, cmd.timezone, cmd.duration_minutes
    )
    return msg.OwnerAvailability(
        timezone=tz_name,
        duration_minutes=duration,
        days=[msg.DaySlots(day=day, slots=found) for day, found in zip(days, slots, strict=True)],
    )


async def get_page(cmd: msg.GetPage, ctx: Context) -> msg.Page:
    async with ctx.reader() as uow:
        owner = await _owner_by_slug(uow, cmd.slug)
    return msg.Page(slug=owner.slug, page_tenant_id=owner.tenant_id)


# --- the saga ------------------------------------------------------------------------------------


def _info(row: Any) -> msg.BookingInfo:
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
    )


def _hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


async def _load(uow: UnitOfWork, booking_id: str, lock: bool = False) -> sa.Row[Any] | None:
    query = sa.select(bookings).where(bookings.c.id == booking_id)
    if lock:
        query = query.with_for_update()
    return (await uow.execute(query)).first()


async def create_booking(cmd: msg.CreateBooking, ctx: Context) -> msg.BookingReply:
    """Validate, hold, prepare (calendar live check, quota), commit; compensate on failure."""
    start, end = _range(cmd)
    if end <= start:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_range", "The booking must end after it starts."
        )
    async with ctx.reader() as uow:
        owner = await _owner_by_slug(uow, cmd.slug)
    if cmd.page_tenant_id is not None and cmd.page_tenant_id != owner.tenant_id:
        raise PAGE_CHANGED
    if cmd.idempotency_key:
        replay = await _settled_replay(ctx, owner.tenant_id, cmd)
        if replay is not None:
            return replay
    zone = ZoneInfo(owner.timezone)
    rules = _rules(owner)
    attendee = cmd.attendee_email.strip()
    if (
        "@" not in attendee
        or len(attendee) < 3
        or any(c.isspace() or not c.isprintable() for c in attendee)
    ):
        raise ServiceError(
            ErrorKind.INVALID, "invalid_attendee_email", "attendee_email is not an e-mail address."
        )
    title = clean_text(cmd.title, 200)
    if not title:
        raise ServiceError(ErrorKind.INVALID, "invalid_title", "A booking needs a title.")
    now = datetime.now(UTC)
    pad = timedelta(minutes=rules.buffer_minutes)

    # 1. the same rules as availability, on the synced data (fast), then policies
    busy, _ = await _busy(ctx, cmd, owner.tenant_id, start - pad, end + pad, live=False)
    try:
        availability.check_slot(rules, start, end, busy, now)
    except availability.SlotRefused as refused:
        if refused.code == "slot_unavailable":
            own = await _own_booking(ctx, owner.tenant_id, cmd, start, end)
            if own is not None:
                return own
            raise await _conflict(ctx, cmd, owner, start, end, zone) from refused
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused
    needs_confirmation = bool(owner.booking_rules.get("confirm_before_booking", False))
    if ctx.decide is not None:
        facts = BookingFacts(
            attendee_email=attendee,
            owner_email=owner.email,
            owner_timezone=owner.timezone,
            start=start,
            end=end,
        )
        async with ctx.reader() as uow:
            decision = await ctx.decide(uow, owner.tenant_id, facts)
        if decision.action is PolicyAction.DENY:
            raise ServiceError(
                ErrorKind.FORBIDDEN,
                "policy_denied",
                decision.reason,
                {"policy": decision.policy_name},
            )
        if decision.action is PolicyAction.REQUIRE_CONFIRMATION:
            needs_confirmation = True

    # 2. hold the slot: the exclusion constraint decides every race
    async def hold() -> sa.Row[Any]:
        async with ctx.uow() as uow:
            await uow.execute(_slot_lock(owner.tenant_id, shared=False))
            row = (
                await uow.execute(
                    sa.insert(bookings)
                    .values(
                        id=cmd.booking_id,
                        tenant_id=owner.tenant_id,
                        slug=owner.slug,
                        title=title,
                        description=clean_text(cmd.description, 5000),
                        attendee_email=attendee,
                        attendee_name=clean_text(cmd.attendee_name, 200),
                        start_at=start,
                        end_at=end,
                        occupied_until=end + pad,
                        status=msg.BookingStatus.HELD.value,
                        saga_step=Step.HOLDING.value,
                        needs_confirmation=needs_confirmation,
                        hold_expires_at=now + ctx.hold,
                        idempotency_key=cmd.idempotency_key,
                        request_hash=cmd.request_hash,
                    )
                    .returning(bookings)
                )
            ).one()
            await uow.add_event(
                msg.BOOKING_REQUESTED.subject,
                msg.BookingEvent(**cmd.caused(tenant_id=owner.tenant_id), booking=_info(row)),
            )
            await uow.commit()
        return row

    try:
        row = await retry_lost_races(hold)
    except IntegrityError as exc:
        constraint = str(getattr(getattr(exc.orig, "__cause__", None), "constraint_name", ""))
        retried = constraint in ("bookings_idempotency", "bookings_pkey")
        if retried and cmd.idempotency_key:  # the id is derived from the key: same check
            replay = await _settled_replay(ctx, owner.tenant_id, cmd)
            if replay is not None:
                return replay
        if constraint == "bookings_pkey":
            async with ctx.reader() as uow:
                existing = await _load(uow, cmd.booking_id)
            if existing is not None and existing.tenant_id != owner.tenant_id:
                raise ServiceError(
                    ErrorKind.CONFLICT,
                    "booking_id_taken",
                    "This booking id belongs to another page's booking; send the request "
                    "again with a new Idempotency-Key.",
                ) from exc
            if existing is not None:
                return msg.BookingReply(booking=_info(existing), replayed=True)
        if constraint == "bookings_no_overlap":
            own = await _own_booking(ctx, owner.tenant_id, cmd, start, end)
            if own is not None:
                return own
            raise await _conflict(ctx, cmd, owner, start, end, zone, own_only=True) from exc
        raise
    return await _prepare_and_commit(ctx, cmd, row)


PAGE_CHANGED = ServiceError(
    ErrorKind.CONFLICT,
    "page_changed",
    "This page changed owner while the request was on its way; send it again.",
)


def _range(cmd: msg.CreateBooking) -> tuple[datetime, datetime]:
    """The requested slot in UTC; a time outside the calendar booking works in is refused
    before any arithmetic on it (``date_out_of_range``)."""
    try:
        availability.check_moments(cmd.start, cmd.end)
    except availability.SlotRefused as refused:
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused
    return cmd.start.astimezone(UTC), cmd.end.astimezone(UTC)


async def _own_booking(
    ctx: Context, tenant_id: str, cmd: msg.CreateBooking, start: datetime, end: datetime
) -> msg.BookingReply | None:
    """The attendee's own active booking made by this very request, when a retry without
    Idempotency-Key (after a 503, a 202 or a lost answer) finds the slot taken by it.

    It is the same request when it names the same page owner, the same start and end,
    the same attendee, and the gateway's hash of the whole body (title, description, name
    included) is the same. Only a held, pending or confirmed booking is answered (a failed
    one frees its slot: the retry books again). The answer tells the sender nothing the
    request did not hold already, except the booking's id and status: whoever can send that
    exact body could have booked it, and the slot is not theirs to take either way."""
    if not cmd.request_hash:
        return None
    async with ctx.reader() as uow:
        row = (
            await uow.execute(
                sa.select(bookings)
                .where(
                    bookings.c.tenant_id == tenant_id,
                    bookings.c.start_at == start,
                    bookings.c.end_at == end,
                    bookings.c.attendee_email == cmd.attendee_email.strip(),
                    bookings.c.request_hash == cmd.request_hash,
                    bookings.c.status.in_(ACTIVE),
                )
                .limit(1)
            )
        ).first()
    return msg.BookingReply(booking=_info(row), replayed=True) if row is not None else None


REPLAY_WAIT_SECONDS = 1.0


async def _settled_replay(
    ctx: Context, tenant_id: str, cmd: msg.CreateBooking
) -> msg.BookingReply | None:
    """The first answer to this Idempotency-Key, once there is one.

    A retry that arrives while the first request's saga still runs waits a moment for its
    outcome; past that the answer is the booking as it stands, ``held`` (the gateway
    answers 202 with its status URL, never a 201 for a booking that may still fail).
    """
    deadline = asyncio.get_running_loop().time() + REPLAY_WAIT_SECONDS
    while True:
        async with ctx.reader() as uow:
            replay = await _replay(uow, tenant_id, cmd)
        if replay is None or replay.booking.status is not msg.BookingStatus.HELD:
            return replay
        if asyncio.get_running_loop().time() >= deadline:
            return replay
        await asyncio.sleep(0.05)


async def _replay(
    uow: UnitOfWork, tenant_id: str, cmd: msg.CreateBooking
) -> msg.BookingReply | None:
    first = (
        await uow.execute(
            sa.select(bookings).where(
                bookings.c.tenant_id == tenant_id, bookings.c.idempotency_key == cmd.idempotency_key
            )
        )
    ).first()
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
    return msg.BookingReply(booking=_info(first), replayed=True)


async def _conflict(
    ctx: Context,
    cause: Message,
    owner: Any,
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
    pad = timedelta(minutes=int(owner.booking_rules.get("buffer_minutes", 0)))
    if free_busy is None and not own_only:
        try:
            free_busy = await ctx.rpc.call(
                cal.GET_FREE_BUSY,
                cal.GetFreeBusy(
                    **cause.caused(tenant_id=owner.tenant_id),
                    start=start - pad,
                    end=end + pad,
                    deadline=_deadline(ctx),
                ),
                timeout=ctx.participant_timeout,
            )
        except ServiceError:
            free_busy = None
    if free_busy is not None:
        for event in free_busy.events:
            if event.start < end + pad and event.end > start - pad:
                summary = _shown_summary(event)
                return ServiceError(
                    ErrorKind.CONFLICT,
                    "slot_unavailable",
                    f"Booking conflict: existing event '{summary}' at "
                    f"{_hhmm(event.start, zone)}-{_hhmm(event.end, zone)}",
                    {
                        "conflict": _clash(event.start, event.end, zone, summary, "calendar"),
                        "next_slots": await _next_slots(
                            ctx, cause, owner, start, end, zone, free_busy, ignore_booking
                        ),
                    },
                )
        if free_busy.unknown:
            return ServiceError(
                ErrorKind.UNAVAILABLE,
                "calendar_unavailable",
                "The owner's calendar cannot be checked right now; try again shortly.",
            )
    async with ctx.reader() as uow:
        clash = (
            await uow.execute(
                sa.select(bookings.c.start_at, bookings.c.end_at)
                .where(
                    bookings.c.tenant_id == owner.tenant_id,
                    bookings.c.status.in_(ACTIVE),
                    bookings.c.start_at < end + pad,
                    bookings.c.occupied_until > start,
                    bookings.c.id != (ignore_booking or ""),
                )
                .order_by(bookings.c.start_at)
                .limit(1)
            )
        ).first()
    where = f" at {_hhmm(clash.start_at, zone)}-{_hhmm(clash.end_at, zone)}" if clash else ""
    details: dict[str, Any] = {}
    if clash is not None:
        details["conflict"] = _clash(clash.start_at, clash.end_at, zone, None, "booking")
    details["next_slots"] = await _next_slots(
        ctx, cause, owner, start, end, zone, free_busy, ignore_booking
    )
    return ServiceError(
        ErrorKind.CONFLICT,
        "slot_unavailable",
        f"Booking conflict: existing booking{where}",
        details,
    )


def _shown_summary(event: cal.BusyEvent) -> str:
    """What a conflict shows of a calendar event: its summary, or ``Busy`` without one (the
    sentence and the details say the same)."""
    return event.summary or "Busy"


def _clash(
    start: datetime, end: datetime, zone: ZoneInfo, summary: str | None, source: str
) -> dict[str, Any]:
    return {
        "start": start.astimezone(zone).isoformat(),
        "end": end.astimezone(zone).isoformat(),
        "summary": summary,
        "source": source,
    }


async def _next_slots(
    ctx: Context,
    cause: Message,
    owner: Any,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    free_busy: cal.FreeBusy | None,
    ignore_booking: str | None,
) -> list[dict[str, str]]:
    """The next free slots of the refused slot's length (``next_slots.next_slots``, on
    the busy time availability reads, plus what a live check just found), in ``zone``;
    empty when the busy time cannot be read (the refusal stands without them)."""
    rules = _rules(owner)
    now = datetime.now(UTC)
    pad = timedelta(minutes=rules.buffer_minutes)
    until = min(
        start + timedelta(days=next_slots.DAYS + 1),
        now + timedelta(days=rules.max_advance_days),
    )
    if until <= start:
        return []
    try:
        busy, _ = await _busy(
            ctx,
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


async def _step(
    ctx: Context,
    booking_id: str,
    expected: Step | None,
    step: Step,
    *,
    announce: tuple[Any, Message] | None = None,
    **values: Any,
) -> sa.Row[Any] | None:
    """Move the saga on, compare-and-swap on its current step; None if it moved elsewhere.

    ``announce`` (an event spec and the message that caused it): the event saying so goes
    to the outbox in the same transaction, so the state and its announcement are never
    apart (committed one after the other, a database outage between them lost the event)."""
    query = sa.update(bookings).where(bookings.c.id == booking_id)
    if expected is not None:
        query = query.where(bookings.c.saga_step == expected.value)
    query = query.values(saga_step=step.value, updated_at=sa.func.now(), **values)

    async def attempt() -> sa.Row[Any] | None:
        async with ctx.uow() as uow:
            await uow.execute(_slot_lock_of(booking_id))
            row = (await uow.execute(query.returning(bookings))).first()
            if row is not None and announce is not None:
                spec, cause = announce
                await uow.add_event(
                    spec.subject,
                    msg.BookingEvent(**cause.caused(tenant_id=row.tenant_id), booking=_info(row)),
                )
            await uow.commit()
        return row

    return await retry_lost_races(attempt)


async def _prepare_and_commit(ctx: Context, cmd: msg.CreateBooking, held: Any) -> msg.BookingReply:
    async with ctx.reader() as uow:
        owner = (
            await uow.execute(sa.select(owners).where(owners.c.tenant_id == held.tenant_id))
        ).one()
    zone = ZoneInfo(owner.timezone)
    pad = held.occupied_until - held.end_at
    if await _step(ctx, held.id, Step.HOLDING, Step.PREPARING) is None:
        return await _current(ctx, held.id)
    # 3a. the live calendar check: what changed at the providers since the last sync
    try:
        busy, free_busy = await _busy(
            ctx,
            cmd,
            held.tenant_id,
            held.start_at - pad,
            held.occupied_until,
            live=True,
            ignore_booking=held.id,
        )
    except ServiceError as exc:
        await _undo(ctx, cmd, held.id, exc.reply.message)
        raise
    if any(a < held.occupied_until and b > held.start_at - pad for a, b in busy):
        error = await _conflict(
            ctx,
            cmd,
            owner,
            held.start_at,
            held.end_at,
            zone,
            free_busy=free_busy,
            ignore_booking=held.id,
        )
        await _undo(ctx, cmd, held.id, error.reply.message)
        raise error
    # 3b. one unit of the month's booking quota
    try:
        await ctx.rpc.call(
            bill.RESERVE_BOOKING_QUOTA,
            bill.ReserveBookingQuota(
                **cmd.caused(tenant_id=held.tenant_id),
                booking_id=held.id,
                hold_until=_quota_hold_until(ctx, held),
                deadline=_deadline(ctx),
            ),
            timeout=ctx.participant_timeout,
        )
    except ServiceError as exc:
        await _undo(ctx, cmd, held.id, exc.reply.message)
        if exc.kind is ErrorKind.PAYMENT_REQUIRED:
            raise
        raise ServiceError(
            ErrorKind.UNAVAILABLE,
            "billing_unavailable",
            "The booking could not be completed; try again.",
        ) from exc
    marked = await _step(ctx, held.id, Step.PREPARING, Step.PREPARING, quota_reserved=True)
    if marked is None:  # recovery took it over meanwhile
        return await _current(ctx, held.id)
    if held.needs_confirmation:
        row = await _step(
            ctx,
            held.id,
            Step.PREPARING,
            Step.AWAITING_OWNER,
            status=msg.BookingStatus.PENDING.value,
            hold_expires_at=datetime.now(UTC) + ctx.pending_expiry,
            announce=(msg.BOOKING_PENDING, cmd),
        )
        if row is None:
            return await _current(ctx, held.id)
        return msg.BookingReply(booking=_info(row))
    return await _write_and_confirm(ctx, cmd, held.id, Step.PREPARING)


# What a participant answers when it refuses for good; anything else (unreachable, timed
# out, a provider down or refusing the credentials, a crash) may pass
DEFINITIVE_REFUSALS = frozenset(
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
QUOTA_HOLD_MARGIN = timedelta(hours=2)


def _quota_hold_until(ctx: Context, held: Any) -> datetime:
    """Until when the booking may still commit its reservation: a pending one until past
    its expiry (billing's own hold setting need not know booking's pending expiry)."""
    waits = ctx.pending_expiry if held.needs_confirmation else timedelta(0)
    return datetime.now(UTC) + waits + ctx.hold + QUOTA_HOLD_MARGIN


async def _write_and_confirm(
    ctx: Context, cause: Message, booking_id: str, expected: Step
) -> msg.BookingReply:
    """The pivot: write the provider event, then commit quota and confirm.

    ``expected`` is ``awaiting_owner`` for the owner's confirm of a pending booking: then
    only a definitive refusal of the write ends the booking; a failure that may pass
    leaves it pending with its hold and quota (:func:`_back_to_owner`), answered 503."""
    row = await _step(ctx, booking_id, expected, Step.WRITING)
    if row is None:
        raise ServiceError(ErrorKind.CONFLICT, "booking_changed", "The booking changed meanwhile.")
    try:
        written = await ctx.rpc.call(
            cal.WRITE_BOOKING_EVENT,
            cal.WriteBookingEvent(
                **cause.caused(tenant_id=row.tenant_id),
                booking_id=row.id,
                start=row.start_at,
                end=row.end_at,
                summary=row.title,
                description=row.description,
                attendee_email=row.attendee_email,
                deadline=_deadline(ctx),
            ),
            timeout=ctx.participant_timeout,
        )
    except ServiceError as exc:
        message = f"The booking could not be written to the owner's calendar: {exc.reply.message}"
        if expected is Step.AWAITING_OWNER and exc.kind not in DEFINITIVE_REFUSALS:
            await _back_to_owner(ctx, booking_id)
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                "calendar_unavailable",
                f"{message} The booking is still pending and holds its slot: confirm it again "
                "shortly.",
            ) from exc
        await _undo(ctx, cause, booking_id, message)
        raise ServiceError(ErrorKind.UPSTREAM, "calendar_write_failed", message) from exc
    event = (
        {"provider": written.provider.value, "calendar_id": written.calendar_id, "uid": written.uid}
        if written.provider is not None and written.calendar_id and written.uid
        else None
    )
    committed = await _step(
        ctx, booking_id, Step.WRITING, Step.COMMITTING, event_written=True, calendar_event=event
    )
    if committed is None:
        return await _current(ctx, booking_id)
    return await _past_the_pivot(ctx, cause, committed)


async def _back_to_owner(ctx: Context, booking_id: str) -> None:
    """An owner's confirm that did not get past the pivot: the booking is pending again,
    with its hold and quota, until the owner confirms once more, declines, or it expires.
    The write may have happened (a timeout): ``event_written`` has the event deleted by
    its UID if the booking ends without a confirm."""
    await _step(ctx, booking_id, Step.WRITING, Step.AWAITING_OWNER, event_written=True)


async def _past_the_pivot(ctx: Context, cause: Message, committed: Any) -> msg.BookingReply:
    """The event is written and recorded: the booking is made, and recovery confirms it
    whatever happens now. When the confirmation cannot be finished at once (billing or
    the database out of reach), it is left to recovery and the answer is the booking as it
    stands (not confirmed yet: the gateway answers 202 with its status URL), never an
    error."""
    try:
        return await _finish(ctx, cause, committed.id)
    except (ServiceError, DBAPIError, OSError) as exc:
        log.warning(
            "confirmation left to recovery",
            extra={"booking_id": committed.id, "error": repr(exc)[:300]},
        )
        return msg.BookingReply(booking=_info(committed))


async def _finish(ctx: Context, cause: Message, booking_id: str) -> msg.BookingReply:
    """Past the pivot: commit the quota (idempotent) and confirm. Retried by recovery."""
    async with ctx.reader() as uow:
        row = await _load(uow, booking_id)
    assert row is not None
    await ctx.rpc.call(
        bill.COMMIT_BOOKING_QUOTA,
        bill.CommitBookingQuota(
            **cause.caused(tenant_id=row.tenant_id),
            booking_id=booking_id,
            deadline=_deadline(ctx),
        ),
        timeout=ctx.participant_timeout,
    )
    done = await _step(
        ctx,
        booking_id,
        Step.COMMITTING,
        Step.DONE,
        status=msg.BookingStatus.CONFIRMED.value,
        hold_expires_at=None,
        announce=(msg.BOOKING_CONFIRMED, cause),
    )
    if done is None:
        return await _current(ctx, booking_id)
    return msg.BookingReply(booking=_info(done))


async def _undo(ctx: Context, cause: Message, booking_id: str, reason: str) -> None:
    """Compensate a saga that a request is about to refuse; the refusal stays the answer.

    When a participant cannot be reached for the undo (the calendar that just refused the
    write is still down), the row is left ``compensating`` and the recovery loop, which
    retries every undo until it succeeds, finishes it: the caller hears why its booking
    failed, not that the clean-up is pending."""
    try:
        await _compensate(ctx, cause, booking_id, reason)
    except ServiceError as exc:
        log.warning(
            "compensation left to recovery",
            extra={"booking_id": booking_id, "code": exc.reply.code},
        )


async def _compensate(
    ctx: Context, cause: Message, booking_id: str, reason: str, *, thorough: bool = False
) -> None:
    """Undo in reverse: delete the provider event, release the quota, release the hold.

    ``thorough`` (recovery, where a crash may have hidden what was done) undoes both
    participants whatever the row says; both undos are idempotent.
    """

    async def claim() -> sa.Row[Any] | None:
        async with ctx.uow() as uow:
            await uow.execute(_slot_lock_of(booking_id))
            row = await _load(uow, booking_id, lock=True)
            if row is None or row.saga_step in (Step.DONE.value, Step.COMPENSATED.value):
                return None
            await uow.execute(
                sa.update(bookings)
                .where(bookings.c.id == booking_id)
                .values(saga_step=Step.COMPENSATING.value, updated_at=sa.func.now())
            )
            await uow.commit()
        return row

    row = await retry_lost_races(claim)
    if row is None:
        return
    trace = cause.caused(tenant_id=row.tenant_id)
    if thorough or row.event_written or row.saga_step == Step.WRITING.value:
        await ctx.rpc.call(
            cal.DELETE_BOOKING_EVENT,
            cal.DeleteBookingEvent(**trace, booking_id=booking_id),
            timeout=ctx.participant_timeout,
        )
    if thorough or row.quota_reserved or row.saga_step == Step.PREPARING.value:
        await ctx.rpc.call(
            bill.RELEASE_BOOKING_QUOTA,
            bill.ReleaseBookingQuota(**trace, booking_id=booking_id),
            timeout=ctx.participant_timeout,
        )
    await _step(
        ctx,
        booking_id,
        Step.COMPENSATING,
        Step.COMPENSATED,
        status=msg.BookingStatus.FAILED.value,
        reason=reason[:500],
        hold_expires_at=None,
        quota_reserved=False,
        event_written=False,
        calendar_event=None,
        announce=(msg.BOOKING_FAILED, cause),
    )


async def _current(ctx: Context, booking_id: str) -> msg.BookingReply:
    async with ctx.reader() as uow:
        row = await _load(uow, booking_id)
    if row is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "booking_not_found", "No such booking.")
    return msg.BookingReply(booking=_info(row))


# --- recovery ---------------------------------------------------------------------------


async def recover(ctx: Context, stale_after: timedelta, limit: int = 20) -> int:
    """Finish or undo sagas whose process stopped, expire holds and pending bookings.

    Rows are claimed with SKIP LOCKED and their ``updated_at`` bumped, so replicas share the
    work and a saga still running in a live process (it touches the row at every step) is
    left alone until it is older than ``stale_after``.
    """
    now = datetime.now(UTC)

    async def claim() -> list[sa.Row[Any]]:
        async with ctx.uow() as uow:
            claimed = (
                await uow.execute(
                    sa.update(bookings)
                    .where(
                        bookings.c.id.in_(
                            sa.select(bookings.c.id)
                            .where(
                                sa.or_(
                                    sa.and_(
                                        bookings.c.saga_step.notin_(
                                            [
                                                Step.DONE.value,
                                                Step.COMPENSATED.value,
                                                Step.AWAITING_OWNER.value,
                                            ]
                                        ),
                                        bookings.c.updated_at < now - stale_after,
                                    ),
                                    sa.and_(
                                        bookings.c.saga_step == Step.AWAITING_OWNER.value,
                                        bookings.c.hold_expires_at < now,
                                    ),
                                )
                            )
                            .limit(limit)
                            .with_for_update(skip_locked=True)
                        )
                    )
                    .values(updated_at=sa.func.now())
                    .returning(bookings)
                )
            ).all()
            await uow.commit()
        return list(claimed)

    claimed = await retry_lost_races(claim)
    cause = msg.GetBooking(booking_id="recovery")
    for row in claimed:
        try:
            await _recover_one(ctx, cause, row)
        except ServiceError as exc:
            log.warning(
                "recovery will retry", extra={"booking_id": row.id, "error": exc.reply.message}
            )
    return len(claimed)


async def _recover_one(ctx: Context, cause: Message, row: Any) -> None:
    step = Step(row.saga_step)
    if step is Step.AWAITING_OWNER:
        await _end_pending(
            ctx,
            cause,
            row.id,
            msg.BookingStatus.EXPIRED,
            msg.BOOKING_EXPIRED,
            "Nobody confirmed it in time.",
        )
        return
    confirming = row.status == msg.BookingStatus.PENDING.value  # an owner's confirm
    what = recovery_for(step, row.event_written, confirming=confirming)
    log.info(
        "recovering saga", extra={"booking_id": row.id, "step": step.value, "action": what.value}
    )
    if what is Recovery.FORWARD:
        if step is not Step.COMMITTING:
            await _step(ctx, row.id, step, Step.COMMITTING)
        await _finish(ctx, cause, row.id)
    elif what is Recovery.RELEASE:
        await _release(ctx, cause, row)
    elif what is Recovery.RETURN:
        await _back_to_owner(ctx, row.id)
    elif what is Recovery.BACKWARD:
        await _compensate(
            ctx, cause, row.id, "The booking did not complete in time.", thorough=True
        )


# --- the owner's side -------------------------------------------------------------------


async def _owned(
    uow: UnitOfWork, tenant_id: str | None, booking_id: str, lock: bool = False
) -> Any:
    row = await _load(uow, booking_id, lock)
    if row is None or row.tenant_id != (tenant_id or ""):
        raise ServiceError(ErrorKind.NOT_FOUND, "booking_not_found", "No such booking.")
    return row


async def get_booking(cmd: msg.GetBooking, ctx: Context) -> msg.BookingReply:
    async with ctx.uow() as uow:
        return msg.BookingReply(booking=_info(await _owned(uow, cmd.tenant_id, cmd.booking_id)))


async def get_public_booking(cmd: msg.GetPublicBooking, ctx: Context) -> msg.BookingReply:
    async with ctx.uow() as uow:
        row = await _load(uow, cmd.booking_id)
    if row is None or row.slug != cmd.slug.strip().lower():
        raise ServiceError(ErrorKind.NOT_FOUND, "booking_not_found", "No such booking.")
    return msg.BookingReply(booking=_info(row))


def _cursor(row: Any) -> str:
    return (
        base64.urlsafe_b64encode(f"{row.start_at.isoformat()}|{row.id}".encode())
        .decode()
        .rstrip("=")
    )


def _uncursor(text: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, _, booking_id = raw.partition("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not booking_id:
            raise ValueError(raw)
        availability.check_moments(moment)
        return moment, booking_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_cursor", "The cursor is not valid.") from exc


async def list_bookings(cmd: msg.ListBookings, ctx: Context) -> msg.BookingList:
    try:
        availability.check_moments(*(m for m in (cmd.start, cmd.end) if m is not None))
    except availability.SlotRefused as refused:
        raise ServiceError(ErrorKind.INVALID, refused.code, str(refused)) from refused
    query = sa.select(bookings).where(bookings.c.tenant_id == (cmd.tenant_id or ""))
    if cmd.status is not None:
        query = query.where(bookings.c.status == cmd.status.value)
    if cmd.start is not None:
        query = query.where(bookings.c.end_at > cmd.start)
    if cmd.end is not None:
        query = query.where(bookings.c.start_at < cmd.end)
    if cmd.cursor:
        at, booking_id = _uncursor(cmd.cursor)
        query = query.where(sa.tuple_(bookings.c.start_at, bookings.c.id) < (at, booking_id))
    query = query.order_by(bookings.c.start_at.desc(), bookings.c.id.desc()).limit(cmd.limit + 1)
    async with ctx.uow() as uow:
        rows = (await uow.execute(query)).all()
    page = rows[: cmd.limit]
    return msg.BookingList(
        bookings=[_info(r) for r in page],
        next_cursor=_cursor(page[-1]) if len(rows) > cmd.limit and page else None,
    )


async def confirm_booking(cmd: msg.ChangeBooking, ctx: Context) -> msg.BookingReply:
    async with ctx.uow() as uow:
        row = await _owned(uow, cmd.tenant_id, cmd.booking_id)
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
        return await _write_and_confirm(ctx, cmd, row.id, Step.AWAITING_OWNER)
    except ServiceError as exc:
        if exc.code == "booking_changed":
            raise ServiceError(
                ErrorKind.CONFLICT,
                "not_pending",
                "The booking was confirmed, declined or expired meanwhile.",
            ) from exc
        raise


async def _end_pending(
    ctx: Context, cause: Message, booking_id: str, status: msg.BookingStatus, spec: Any, reason: str
) -> msg.BookingReply:
    # a confirm that failed may have left an event (``event_written``): deleted with it
    ended = await _end(
        ctx, cause, booking_id, Step.AWAITING_OWNER, status, spec, reason, delete_event=None
    )
    if ended is None:
        raise ServiceError(ErrorKind.CONFLICT, "not_pending", "The booking is no longer pending.")
    return ended


async def _end(
    ctx: Context,
    cause: Message,
    booking_id: str,
    expected: Step,
    status: msg.BookingStatus,
    spec: Any,
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
    the recovery loop, which retries them until they succeed (:func:`_release`), and the
    answer is still the ended booking: an owner's cancellation does not wait on a calendar
    server that is down. ``delete_event`` None: as the row says (``event_written``)."""
    written = bookings.c.event_written if delete_event is None else delete_event

    async def decide() -> sa.Row[Any] | None:
        async with ctx.uow() as uow:
            await uow.execute(_slot_lock_of(booking_id))
            row = (
                await uow.execute(
                    sa.update(bookings)
                    .where(bookings.c.id == booking_id, bookings.c.saga_step == expected.value)
                    .values(
                        saga_step=Step.ENDING.value,
                        status=status.value,
                        reason=reason[:500],
                        hold_expires_at=None,
                        event_written=written,
                        quota_reserved=release_quota,
                        updated_at=sa.func.now(),
                    )
                    .returning(bookings)
                )
            ).first()
            if row is None:
                return None
            await uow.add_event(
                spec.subject,
                msg.BookingEvent(**cause.caused(tenant_id=row.tenant_id), booking=_info(row)),
            )
            await uow.commit()
        return row

    row = await retry_lost_races(decide)
    if row is None:
        return None
    try:
        row = await _release(ctx, cause, row)
    except ServiceError as exc:
        log.warning(
            "releases left to recovery", extra={"booking_id": booking_id, "code": exc.reply.code}
        )
    return msg.BookingReply(booking=_info(row))


async def _release(ctx: Context, cause: Message, row: Any) -> Any:
    """Release what an ended booking still holds (both calls idempotent), then close it."""
    trace = cause.caused(tenant_id=row.tenant_id)
    if row.event_written:
        await ctx.rpc.call(
            cal.DELETE_BOOKING_EVENT,
            cal.DeleteBookingEvent(**trace, booking_id=row.id),
            timeout=ctx.participant_timeout,
        )
    if row.quota_reserved:
        await ctx.rpc.call(
            bill.RELEASE_BOOKING_QUOTA,
            bill.ReleaseBookingQuota(**trace, booking_id=row.id),
            timeout=ctx.participant_timeout,
        )
    closed = await _step(
        ctx, row.id, Step.ENDING, Step.COMPENSATED, event_written=False, quota_reserved=False
    )
    return closed if closed is not None else row


async def decline_booking(cmd: msg.ChangeBooking, ctx: Context) -> msg.BookingReply:
    async with ctx.uow() as uow:
        row = await _owned(uow, cmd.tenant_id, cmd.booking_id)
    if row.status != msg.BookingStatus.PENDING.value:
        raise ServiceError(
            ErrorKind.CONFLICT,
            "not_pending",
            f"Only a pending booking can be declined; this one is {row.status}.",
        )
    reason = clean_text(cmd.reason, 500) or "Declined by the owner."
    return await _end_pending(
        ctx, cmd, row.id, msg.BookingStatus.DECLINED, msg.BOOKING_DECLINED, reason
    )


async def cancel_booking(cmd: msg.ChangeBooking, ctx: Context) -> msg.BookingReply:
    """Cancel: delete the provider event and free the slot. Quota: released when the meeting
    has not started yet (it never happened), kept otherwise."""
    async with ctx.uow() as uow:
        row = await _owned(uow, cmd.tenant_id, cmd.booking_id)
    if row.status == msg.BookingStatus.PENDING.value:
        reason = clean_text(cmd.reason, 500) or "Cancelled by the owner."
        return await _end_pending(
            ctx, cmd, row.id, msg.BookingStatus.CANCELLED, msg.BOOKING_CANCELLED, reason
        )
    if row.status != msg.BookingStatus.CONFIRMED.value:
        raise ServiceError(
            ErrorKind.CONFLICT, "not_cancellable", f"A {row.status} booking cannot be cancelled."
        )
    ended = await _end(
        ctx,
        cmd,
        row.id,
        Step.DONE,
        msg.BookingStatus.CANCELLED,
        msg.BOOKING_CANCELLED,
        clean_text(cmd.reason, 500) or "Cancelled by the owner.",
        delete_event=True,
        # the quota is released when the meeting has not started (it never happened)
        release_quota=row.start_at > datetime.now(UTC),
    )
    if ended is None:
        raise ServiceError(ErrorKind.CONFLICT, "not_cancellable", "The booking changed meanwhile.")
    return ended


# --- requests the gateway answered 202 without a reply -------------------------------------


async def settle_unanswered(cmd: msg.CreateBooking, ctx: Context) -> None:
    """Give a request the gateway accepted (202) without hearing back an outcome.

    If it reached booking, its saga (and recovery) settles it. If not (lost on the way, or
    refused after the gateway stopped waiting), it runs again, idempotent by booking id, and
    a refusal is recorded as a failed booking with its reason, so the 202's status URL ends
    with an answer. A failure to reach the database raises: the event is redelivered.
    """
    async with ctx.uow() as uow:
        if await _load(uow, cmd.booking_id) is not None:
            return
    try:
        await create_booking(cmd, ctx)
    except ServiceError as exc:
        await _record_refusal(ctx, cmd, exc.reply.message)


async def _record_refusal(ctx: Context, cmd: msg.CreateBooking, reason: str) -> None:
    try:
        availability.check_moments(cmd.start, cmd.end)
    except availability.SlotRefused:
        # no gateway hands such a request over (it refuses it with a 400): nothing to keep
        log.warning("a handed-over request outside the calendar", extra={"id": cmd.booking_id})
        return
    async with ctx.uow() as uow:
        if cmd.page_tenant_id is not None:  # the page's owner when the request was sent
            owner = (
                await uow.execute(
                    sa.select(owners).where(
                        owners.c.tenant_id == cmd.page_tenant_id, owners.c.deleted.is_(False)
                    )
                )
            ).first()
        else:
            try:
                owner = await _owner_by_slug(uow, cmd.slug)
            except ServiceError:
                owner = None
        if owner is None:
            return  # no such page: its status URL answers 404, which is the truth
        # a refused range (end at or before start) is kept as its start, one microsecond
        # long: every row holds the range constraint (end after start)
        start = cmd.start.astimezone(UTC)
        end = max(cmd.end.astimezone(UTC), start + timedelta(microseconds=1))
        row = (
            await uow.execute(
                pg_insert(bookings)
                .values(
                    id=cmd.booking_id,
                    tenant_id=owner.tenant_id,
                    slug=cmd.slug.strip().lower(),
                    title=clean_text(cmd.title, 200) or "Booking",
                    description=clean_text(cmd.description, 5000),
                    attendee_email=clean_text(cmd.attendee_email, 320),
                    attendee_name=clean_text(cmd.attendee_name, 200),
                    start_at=start,
                    end_at=end,
                    occupied_until=end,
                    status=msg.BookingStatus.FAILED.value,
                    saga_step=Step.COMPENSATED.value,
                    reason=reason[:500],
                    idempotency_key=cmd.idempotency_key,
                    request_hash=cmd.request_hash,
                )
                .on_conflict_do_nothing()
                .returning(bookings)
            )
        ).first()
        if row is not None:  # like every booking: requested, then its final state
            for spec in (msg.BOOKING_REQUESTED, msg.BOOKING_FAILED):
                await uow.add_event(
                    spec.subject,
                    msg.BookingEvent(**cmd.caused(tenant_id=owner.tenant_id), booking=_info(row)),
                )
        await uow.commit()
