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


class Changes(TypedDict, total=False):
    """What a saga step changes besides the step (left out: unchanged)."""

    status: str
    hold_expires_at: datetime | None
    quota_reserved: bool
    event_written: bool
    calendar_event: Mapping[str, str] | None
    reason: str


def _booking(row: sa.Row[tuple[object, ...]]) -> Booking:
    return Booking(**row._mapping)


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

_ACTIVE_BETWEEN: Final = sa.select(bookings.c.start_at, bookings.c.end_at).where(
    bookings.c.tenant_id == sa.bindparam("tenant_id"),
    bookings.c.status.in_(ACTIVE),
    bookings.c.start_at < sa.bindparam("end"),
    bookings.c.occupied_until > sa.bindparam("start"),
)


async def busy(
    uow: UnitOfWork,
    tenant_id: str,
    start: datetime,
    end: datetime,
    *,
    ignore: str | None = None,
) -> list[Interval]:
    """The tenant's active bookings over [start, end) (with their buffers), but ``ignore``."""
    params = {"tenant_id": tenant_id, "start": start, "end": end}
    statement = _ACTIVE_BETWEEN if not ignore else _ACTIVE_BETWEEN.where(bookings.c.id != ignore)
    return [(r.start_at, r.end_at) for r in await uow.execute(statement, params)]


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
    time reaches past ``start``."""
    row = (
        await uow.execute(
            sa.select(bookings.c.start_at, bookings.c.end_at)
            .where(
                bookings.c.tenant_id == tenant_id,
                bookings.c.status.in_(ACTIVE),
                bookings.c.start_at < end,
                bookings.c.occupied_until > start,
                bookings.c.id != (ignore or ""),
            )
            .order_by(bookings.c.start_at)
            .limit(1)
        )
    ).first()
    return (row.start_at, row.end_at) if row is not None else None


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
