"""The booking quota: reservations (``quota_reservations``) and each month's count of them
(``quota_months``).

Functions of a unit of work, as cosmicpython's repository, with typed rows out. They are on
the booking saga's path (every booking reserves, then commits or releases), so they stay
SQLAlchemy Core statements, one round trip each; the conditional UPDATE of :func:`take` is
what keeps concurrent reservations within the limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from billing.adapters.tables import quota_months, quota_reservations
from cortex_runtime.database import UnitOfWork

ReservationState = Literal["reserved", "committed", "released", "expired"]


@dataclass(frozen=True)
class Reservation:
    booking_id: str
    tenant_id: str
    month: date
    state: ReservationState


_COLUMNS = (
    quota_reservations.c.booking_id,
    quota_reservations.c.tenant_id,
    quota_reservations.c.month,
    quota_reservations.c.state,
)
_booking = quota_reservations.c.booking_id


def _reservation(row: sa.Row[Any]) -> Reservation:
    return Reservation(
        booking_id=row.booking_id,
        tenant_id=row.tenant_id,
        month=row.month,
        state=cast(ReservationState, row.state),
    )


def _hold_until(hold: timedelta, at_least: datetime | None) -> sa.ColumnElement[Any]:
    """Now plus ``hold``, or ``at_least`` when that is later."""
    held = sa.func.now() + hold
    return held if at_least is None else sa.func.greatest(held, at_least)


# --- the month's count ----------------------------------------------------------------------


async def month_used(uow: UnitOfWork, tenant_id: str, month: date) -> int:
    used = (
        await uow.execute(
            sa.select(quota_months.c.used).where(
                quota_months.c.tenant_id == tenant_id, quota_months.c.month == month
            )
        )
    ).scalar()
    return int(used or 0)


async def take(uow: UnitOfWork, tenant_id: str, month: date, limit: int | None) -> int | None:
    """Count one more booking in ``month`` unless the limit is reached: the new count, or None.

    The conditional UPDATE locks the month's row: concurrent takers wait for each other
    and each sees the count the previous one left, so the limit is never passed.
    """
    await uow.execute(
        pg_insert(quota_months).values(tenant_id=tenant_id, month=month).on_conflict_do_nothing()
    )
    condition = quota_months.c.used < limit if limit is not None else sa.true()
    used = (
        await uow.execute(
            sa.update(quota_months)
            .where(quota_months.c.tenant_id == tenant_id, quota_months.c.month == month, condition)
            .values(used=quota_months.c.used + 1)
            .returning(quota_months.c.used)
        )
    ).scalar()
    return int(used) if used is not None else None


async def give_back(uow: UnitOfWork, counts: Mapping[tuple[str, date], int]) -> None:
    """Count ``counts[(tenant, month)]`` bookings fewer in each of those months."""
    for (tenant_id, month), count in sorted(counts.items()):  # one lock order: no deadlock
        await uow.execute(
            sa.update(quota_months)
            .where(quota_months.c.tenant_id == tenant_id, quota_months.c.month == month)
            .values(used=sa.func.greatest(quota_months.c.used - count, 0))
        )


async def expire_overdue(uow: UnitOfWork, tenant_id: str | None, batch: int) -> int:
    """Expire overdue reservations (all tenants' or one's) that no one else holds, and give
    their units back. Returns how many."""
    overdue = sa.select(quota_reservations.c.booking_id).where(
        quota_reservations.c.state == "reserved",
        quota_reservations.c.expires_at <= sa.func.now(),
    )
    if tenant_id is not None:
        overdue = overdue.where(quota_reservations.c.tenant_id == tenant_id)
    claimed = overdue.order_by(quota_reservations.c.expires_at).limit(batch)
    rows = (
        await uow.execute(
            sa.update(quota_reservations)
            .where(_booking.in_(claimed.with_for_update(skip_locked=True).scalar_subquery()))
            .values(state="expired", released_at=sa.func.now())
            .returning(quota_reservations.c.tenant_id, quota_reservations.c.month)
        )
    ).all()
    await give_back(uow, Counter((row.tenant_id, row.month) for row in rows))
    return len(rows)


# --- reservations ---------------------------------------------------------------------------


async def add_reservation(
    uow: UnitOfWork,
    booking_id: str,
    tenant_id: str,
    month: date,
    hold: timedelta,
    hold_until: datetime | None,
) -> bool:
    """A new reservation, held for ``hold`` (or until ``hold_until`` when later); False when
    the booking already has one (of any state)."""
    inserted = (
        await uow.execute(
            pg_insert(quota_reservations)
            .values(
                booking_id=booking_id,
                tenant_id=tenant_id,
                month=month,
                state="reserved",
                expires_at=_hold_until(hold, hold_until),
            )
            .on_conflict_do_nothing()
            .returning(_booking)
        )
    ).first()
    return inserted is not None


async def add_release_marker(uow: UnitOfWork, booking_id: str, tenant_id: str, month: date) -> bool:
    """A released reservation for a booking that has none, so that a reservation arriving
    later cannot count; False when the booking already has one."""
    marker = (
        await uow.execute(
            pg_insert(quota_reservations)
            .values(
                booking_id=booking_id,
                tenant_id=tenant_id,
                month=month,
                state="released",
                expires_at=sa.func.now(),
                released_at=sa.func.now(),
            )
            .on_conflict_do_nothing()
            .returning(_booking)
        )
    ).first()
    return marker is not None


def _locking(booking_id: str) -> sa.Select[Any]:
    return sa.select(*_COLUMNS).where(_booking == booking_id).with_for_update()


async def find_locked(uow: UnitOfWork, booking_id: str) -> Reservation | None:
    """The booking's reservation, locked, if it has one."""
    row = (await uow.execute(_locking(booking_id))).first()
    return _reservation(row) if row is not None else None


async def locked(uow: UnitOfWork, booking_id: str) -> Reservation:
    """The booking's reservation (which exists), locked."""
    return _reservation((await uow.execute(_locking(booking_id))).one())


async def renew(
    uow: UnitOfWork, booking_id: str, month: date, hold: timedelta, hold_until: datetime | None
) -> None:
    """An expired reservation counts again, in ``month``, as a new one would."""
    await uow.execute(
        sa.update(quota_reservations)
        .where(_booking == booking_id)
        .values(
            state="reserved",
            month=month,
            expires_at=_hold_until(hold, hold_until),
            released_at=None,
        )
    )


async def mark_committed(uow: UnitOfWork, booking_id: str, month: date) -> None:
    await uow.execute(
        sa.update(quota_reservations)
        .where(_booking == booking_id)
        .values(state="committed", month=month, committed_at=sa.func.now())
    )


async def mark_released(uow: UnitOfWork, booking_id: str) -> None:
    await uow.execute(
        sa.update(quota_reservations)
        .where(_booking == booking_id)
        .values(state="released", released_at=sa.func.now())
    )


# --- usage ------------------------------------------------------------------------------------


async def committed_per_day(
    uow: UnitOfWork, tenant_id: str, start: datetime, end: datetime
) -> dict[date, int]:
    """The tenant's bookings committed from ``start`` to before ``end``, by UTC day."""
    day = sa.func.date(sa.func.timezone("UTC", quota_reservations.c.committed_at))
    booked = (
        await uow.execute(
            sa.select(day.label("day"), sa.func.count().label("n"))
            .where(
                quota_reservations.c.tenant_id == tenant_id,
                quota_reservations.c.state == "committed",
                quota_reservations.c.committed_at >= start,
                quota_reservations.c.committed_at < end,
            )
            .group_by(day)
        )
    ).all()
    return {r.day: int(r.n) for r in booked}
