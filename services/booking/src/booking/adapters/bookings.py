"""Bookings and their saga rows: queries, slot locks and typed rows.

Repository functions in cosmicpython's style: each takes the unit of work it runs in (the
caller begins, commits and retries it) and returns :class:`Booking` rows. SQLAlchemy Core
on purpose, not the ORM: these are the saga's and availability's statements (the hot
paths); a statement that runs on every request is built once, so only its parameters
change and the statement cache serves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, TypedDict

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert

from booking.adapters.database_errors import refusals
from booking.adapters.tables import bookings
from booking.domain.saga import Step
from contracts import booking as msg
from cortex_runtime.database import UnitOfWork, advisory_lock, advisory_lock_statement

if TYPE_CHECKING:
    from typing_extensions import Unpack

ACTIVE: Final = [s.value for s in msg.ACTIVE_STATUSES]
# what refuses a hold (``ConstraintViolated.constraint``)
SLOT_TAKEN: Final = "bookings_no_overlap"  # the exclusion constraint: an active booking holds it
ID_TAKEN: Final = "bookings_pkey"  # a booking of this id exists
KEY_TAKEN: Final = "bookings_idempotency"  # the tenant's booking of this Idempotency-Key exists
Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    """One row of ``bookings``: the booking and where its saga is."""

    id: str
    tenant_id: str
    slug: str
    title: str
    description: str
    attendee_email: str
    attendee_name: str
    start_at: datetime
    end_at: datetime
    occupied_until: datetime  # end + the owner's buffer
    status: str
    saga_step: str
    needs_confirmation: bool
    hold_expires_at: datetime | None
    quota_reserved: bool
    event_written: bool
    calendar_event: Mapping[str, str] | None  # provider, calendar_id, uid
    reason: str | None
    idempotency_key: str | None
    request_hash: str | None
    created_at: datetime
    updated_at: datetime
    # a reschedule under way (``moving``/``swapping``): the new interval, held beside the
    # current one by the exclusion constraint, who asked, and the request's key and hash
    moving_start_at: datetime | None = None
    moving_end_at: datetime | None = None
    moving_until: datetime | None = None
    moving_by: str | None = None
    moving_key: str | None = None
    moving_hash: str | None = None
    history: tuple[Mapping[str, str], ...] = ()  # previous times, oldest first
    manage_token_hash: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewBooking:
    """A row to insert: a hold, or a refusal recorded as failed."""

    id: str
    tenant_id: str
    slug: str
    title: str
    description: str
    attendee_email: str
    attendee_name: str
    start_at: datetime
    end_at: datetime
    occupied_until: datetime
    status: str
    saga_step: str
    needs_confirmation: bool = False
    hold_expires_at: datetime | None = None
    reason: str | None = None
    idempotency_key: str | None
    request_hash: str | None
    manage_token_hash: str | None = None


class Changes(TypedDict, total=False):
    """What a saga step changes besides the step (left out: unchanged)."""

    status: str
    hold_expires_at: datetime | None
    quota_reserved: bool
    event_written: bool
    calendar_event: Mapping[str, str] | None
    reason: str
    # a reschedule: the new interval held (or dropped), then swapped in
    start_at: datetime
    end_at: datetime
    occupied_until: datetime
    moving_start_at: datetime | None
    moving_end_at: datetime | None
    moving_until: datetime | None
    moving_by: str | None
    moving_key: str | None
    moving_hash: str | None
    needs_confirmation: bool


def _booking(row: sa.Row[tuple[object, ...]]) -> Booking:
    values = dict(row._mapping)
    values["history"] = tuple(values.get("history") or ())
    return Booking(**values)


# --- slot locks ----------------------------------------------------------------------------

# Holds of one tenant are taken one at a time. Two transactions inserting overlapping rows
# at once each find the other's uncommitted row while checking the exclusion constraint and
# wait for each other: a deadlock PostgreSQL breaks only after ``deadlock_timeout`` (1 s),
# again and again in a storm. An UPDATE of a booking row checks the constraint again (new
# index entries) and can deadlock with a hold the same way, so it takes the same lock,
# shared: holds wait for the tenant's updates in flight, updates never wait for each other.
SLOT_LOCKS: Final = 0x5107  # the advisory-lock namespace (the two-key form) of these locks


async def lock_slots(uow: UnitOfWork, tenant_id: str) -> None:
    """The tenant's slot lock, exclusive: before a hold is inserted."""
    await advisory_lock(uow, tenant_id, namespace=SLOT_LOCKS)


_SLOT_LOCK_OF: Final = advisory_lock_statement(
    bookings.c.tenant_id, namespace=SLOT_LOCKS, shared=True
).where(bookings.c.id == sa.bindparam("booking_id"))


async def lock_slots_of(uow: UnitOfWork, booking_id: str) -> None:
    """The shared slot lock of the tenant owning ``booking_id`` (nothing when none does):
    before a booking row is updated."""
    await uow.execute(_SLOT_LOCK_OF, {"booking_id": booking_id})


# --- reads ---------------------------------------------------------------------------------


def _active_between(*, ignoring: bool) -> sa.CompoundSelect[tuple[datetime, datetime]]:
    """The active bookings' intervals over [start, end): each one's current interval, and
    the new one a booking being moved holds beside it (the constraint covers both)."""
    but = (bookings.c.id != sa.bindparam("ignore"),) if ignoring else ()
    tenant = (bookings.c.tenant_id == sa.bindparam("tenant_id"), bookings.c.status.in_(ACTIVE))
    current = sa.select(bookings.c.start_at, bookings.c.end_at).where(
        *tenant,
        *but,
        bookings.c.start_at < sa.bindparam("end"),
        bookings.c.occupied_until > sa.bindparam("start"),
    )
    moving = sa.select(
        bookings.c.moving_start_at.label("start_at"), bookings.c.moving_end_at.label("end_at")
    ).where(
        *tenant,
        *but,
        bookings.c.moving_start_at.is_not(None),
        bookings.c.moving_start_at < sa.bindparam("end"),
        bookings.c.moving_until > sa.bindparam("start"),
    )
    return sa.union_all(current, moving)


_ACTIVE_BETWEEN: Final = _active_between(ignoring=False)
_ACTIVE_BETWEEN_BUT: Final = _active_between(ignoring=True)


async def busy(
    uow: UnitOfWork,
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    ignore: str | None = None,
) -> list[Interval]:
    """The tenant's active bookings over [start, end) (with their buffers), but ``ignore``;
    a booking being moved occupies its current interval and its new one."""
    params = {"tenant_id": tenant_id, "start": start, "end": end}
    if ignore:
        return [
            (r.start_at, r.end_at)
            for r in await uow.execute(_ACTIVE_BETWEEN_BUT, {**params, "ignore": ignore})
        ]
    return [(r.start_at, r.end_at) for r in await uow.execute(_ACTIVE_BETWEEN, params)]


async def load(uow: UnitOfWork, booking_id: str, *, lock: bool = False) -> Booking | None:
    query = sa.select(bookings).where(bookings.c.id == booking_id)
    if lock:
        query = query.with_for_update()
    row = (await uow.execute(query)).first()
    return _booking(row) if row is not None else None


async def same_request(
    uow: UnitOfWork,
    tenant_id: str,
    start: datetime,
    end: datetime,
    attendee_email: str,
    request_hash: str,
) -> Booking | None:
    """An active booking of this slot by this attendee made by a request with this hash."""
    row = (
        await uow.execute(
            sa.select(bookings)
            .where(
                bookings.c.tenant_id == tenant_id,
                bookings.c.start_at == start,
                bookings.c.end_at == end,
                bookings.c.attendee_email == attendee_email,
                bookings.c.request_hash == request_hash,
                bookings.c.status.in_(ACTIVE),
            )
            .limit(1)
        )
    ).first()
    return _booking(row) if row is not None else None


async def by_idempotency_key(uow: UnitOfWork, tenant_id: str, key: str) -> Booking | None:
    row = (
        await uow.execute(
            sa.select(bookings).where(
                bookings.c.tenant_id == tenant_id, bookings.c.idempotency_key == key
            )
        )
    ).first()
    return _booking(row) if row is not None else None


async def first_clash(
    uow: UnitOfWork, tenant_id: str, start: datetime, end: datetime, *, ignore: str | None
) -> Interval | None:
    """The earliest active booking (but ``ignore``) starting before ``end`` whose occupied
    time reaches past ``start`` (a booking being moved: either of its intervals)."""
    found = sorted(await busy(uow, tenant_id, start, end, ignore=ignore))
    return found[0] if found else None


async def page(
    uow: UnitOfWork,
    tenant_id: str,
    *,
    status: str | None,
    start: datetime | None,
    end: datetime | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Booking]:
    """The tenant's bookings, latest start first (then id), before the ``before`` key."""
    query = sa.select(bookings).where(bookings.c.tenant_id == tenant_id)
    if status is not None:
        query = query.where(bookings.c.status == status)
    if start is not None:
        query = query.where(bookings.c.end_at > start)
    if end is not None:
        query = query.where(bookings.c.start_at < end)
    if before is not None:
        query = query.where(sa.tuple_(bookings.c.start_at, bookings.c.id) < before)
    query = query.order_by(bookings.c.start_at.desc(), bookings.c.id.desc()).limit(limit)
    return [_booking(row) for row in await uow.execute(query)]


# --- writes --------------------------------------------------------------------------------


async def insert(uow: UnitOfWork, new: NewBooking) -> Booking:
    """Insert a hold; a constraint it breaks (the exclusion constraint: the slot is taken;
    the primary key or the idempotency index: sent before) raises ``ConstraintViolated``."""
    with refusals():
        row = (
            await uow.execute(sa.insert(bookings).values(**asdict(new)).returning(bookings))
        ).one()
    return _booking(row)


async def insert_unless_present(uow: UnitOfWork, new: NewBooking) -> Booking | None:
    """Insert ``new`` unless a booking of its id exists (then None)."""
    statement = pg_insert(bookings).values(**asdict(new)).on_conflict_do_nothing()
    row = (await uow.execute(statement.returning(bookings))).first()
    return _booking(row) if row is not None else None


async def move(
    uow: UnitOfWork, booking_id: str, expected: Step | None, step: Step, **changes: Unpack[Changes]
) -> Booking | None:
    """Set the saga's step (and ``changes``), compare-and-swap on the step it is at
    (``expected``; None: whatever it is); None when it is elsewhere."""
    query = sa.update(bookings).where(bookings.c.id == booking_id)
    if expected is not None:
        query = query.where(bookings.c.saga_step == expected.value)
    query = query.values(saga_step=step.value, updated_at=sa.func.now(), **changes)
    row = (await uow.execute(query.returning(bookings))).first()
    return _booking(row) if row is not None else None


async def hold_move(
    uow: UnitOfWork, booking_id: str, expected: Step, step: Step, **changes: Unpack[Changes]
) -> Booking | None:
    """:func:`move` for a change the exclusion constraint may refuse (a reschedule's new
    interval): a slot taken raises ``ConstraintViolated`` (``SLOT_TAKEN``)."""
    with refusals():
        return await move(uow, booking_id, expected, step, **changes)


async def add_history(uow: UnitOfWork, booking_id: str, entry: Mapping[str, str]) -> None:
    """Append one entry to the booking's history (in the swap's transaction)."""
    await uow.execute(
        sa.update(bookings)
        .where(bookings.c.id == booking_id)
        .values(history=bookings.c.history + sa.cast([dict(entry)], postgresql.JSONB))
    )


async def claim_unfinished(
    uow: UnitOfWork, now: datetime, stale_after: timedelta, limit: int
) -> list[Booking]:
    """Claim (``updated_at`` bumped, SKIP LOCKED) up to ``limit`` sagas no live process
    runs: unfinished and untouched for ``stale_after``, or pending past their expiry."""
    stale = sa.and_(
        bookings.c.saga_step.notin_(
            [Step.DONE.value, Step.COMPENSATED.value, Step.AWAITING_OWNER.value]
        ),
        bookings.c.updated_at < now - stale_after,
    )
    expired = sa.and_(
        bookings.c.saga_step == Step.AWAITING_OWNER.value, bookings.c.hold_expires_at < now
    )
    claimed = sa.select(bookings.c.id).where(sa.or_(stale, expired)).limit(limit)
    statement = (
        sa.update(bookings)
        .where(bookings.c.id.in_(claimed.with_for_update(skip_locked=True)))
        .values(updated_at=sa.func.now())
        .returning(bookings)
    )
    return [_booking(row) for row in await uow.execute(statement)]
