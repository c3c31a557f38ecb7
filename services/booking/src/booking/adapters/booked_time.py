"""The tenant's own active bookings over a range, with their ids and statuses: the busy
time an owner's explained availability names (``bookings.busy`` reads only the times, for
the hot path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa

from booking.adapters.bookings import ACTIVE
from booking.adapters.tables import bookings
from cortex_runtime.database import UnitOfWork


@dataclass(frozen=True, slots=True, kw_only=True)
class Booked:
    id: str
    status: str
    start_at: datetime
    end_at: datetime


_ACTIVE_BETWEEN: Final = (
    sa.select(bookings.c.id, bookings.c.status, bookings.c.start_at, bookings.c.end_at)
    .where(
        bookings.c.tenant_id == sa.bindparam("tenant_id"),
        bookings.c.status.in_(ACTIVE),
        bookings.c.start_at < sa.bindparam("end"),
        bookings.c.occupied_until > sa.bindparam("start"),
    )
    .order_by(bookings.c.start_at, bookings.c.id)
)


async def active_between(
    uow: UnitOfWork, tenant_id: str, start: datetime, end: datetime
) -> list[Booked]:
    """The tenant's active bookings over [start, end) (with their buffers), by start: the
    same rows as ``bookings.busy``."""
    params = {"tenant_id": tenant_id, "start": start, "end": end}
    return [Booked(**r._mapping) for r in await uow.execute(_ACTIVE_BETWEEN, params)]
