"""The calendars of a connection: which of them count for availability, which one receives
bookings (one per tenant), and each one's sync token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa

from calendars.adapters import connection_repo
from calendars.adapters.connection_repo import Connection
from calendars.adapters.tables import calendars, connections
from cortex_runtime.database import UnitOfWork


@dataclass(frozen=True)
class Calendar:
    id: str
    connection_id: str
    tenant_id: str
    remote_id: str  # the provider's id of the calendar
    name: str
    writable: bool
    contributes: bool  # its busy time counts for availability
    receives_bookings: bool
    sync_token: str | None


@dataclass(frozen=True)
class ReceivingCalendar:
    """The calendar bookings are written to, with the connection that reaches it."""

    remote_id: str
    connection: Connection


class ConnectedCalendar(NamedTuple):
    id: str
    connection_id: str
    provider: str


_COLUMNS = (
    calendars.c.id,
    calendars.c.connection_id,
    calendars.c.tenant_id,
    calendars.c.remote_id,
    calendars.c.name,
    calendars.c.writable,
    calendars.c.contributes,
    calendars.c.receives_bookings,
    calendars.c.sync_token,
)


def _calendar(row: sa.Row[Any]) -> Calendar:
    return Calendar(**row._mapping)


async def of_connection(
    uow: UnitOfWork, connection_id: str, *, by_name: bool = False
) -> list[Calendar]:
    query = sa.select(*_COLUMNS).where(calendars.c.connection_id == connection_id)
    if by_name:
        query = query.order_by(calendars.c.name)
    return [_calendar(row) for row in await uow.execute(query)]


async def of_tenant_with_provider(uow: UnitOfWork, tenant_id: str) -> list[ConnectedCalendar]:
    """Every calendar of the tenant with its connection's provider, by id."""
    rows = await uow.execute(
        sa.select(calendars.c.id, calendars.c.connection_id, connections.c.provider)
        .join(connections, connections.c.id == calendars.c.connection_id)
        .where(calendars.c.tenant_id == tenant_id)
        .order_by(calendars.c.id)
    )
    return [ConnectedCalendar(str(r.id), str(r.connection_id), str(r.provider)) for r in rows]


async def add(
    uow: UnitOfWork,
    *,
    calendar_id: str,
    connection_id: str,
    tenant_id: str,
    remote_id: str,
    name: str,
    writable: bool,
    receives_bookings: bool,
) -> None:
    await uow.execute(
        sa.insert(calendars).values(
            id=calendar_id,
            connection_id=connection_id,
            tenant_id=tenant_id,
            remote_id=remote_id,
            name=name,
            writable=writable,
            receives_bookings=receives_bookings,
        )
    )


async def by_remote_id(uow: UnitOfWork, connection_id: str, remote_id: str) -> Calendar | None:
    """The connection's calendar with this provider id."""
    row = (
        await uow.execute(
            sa.select(*_COLUMNS).where(
                calendars.c.connection_id == connection_id, calendars.c.remote_id == remote_id
            )
        )
    ).first()
    return None if row is None else _calendar(row)


async def locked(uow: UnitOfWork, tenant_id: str, calendar_id: str) -> Calendar | None:
    """The tenant's calendar, locked for an update until the transaction ends."""
    row = (
        await uow.execute(
            sa.select(*_COLUMNS)
            .where(calendars.c.id == calendar_id, calendars.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    return None if row is None else _calendar(row)


async def still_there(uow: UnitOfWork, calendar_id: str) -> bool:
    """Whether the calendar still exists, holding it (FOR KEY SHARE) until the transaction
    ends: neither a disconnect nor a tenant's deletion removes it meanwhile."""
    row = (
        await uow.execute(
            sa.select(calendars.c.id)
            .where(calendars.c.id == calendar_id)
            .with_for_update(read=True, key_share=True)
        )
    ).first()
    return row is not None


async def choose(
    uow: UnitOfWork,
    calendar_id: str,
    *,
    contributes: bool | None = None,
    receives_bookings: bool | None = None,
) -> None:
    """Change what the calendar is used for (None: unchanged)."""
    changes: dict[str, bool] = {}
    if contributes is not None:
        changes["contributes"] = contributes
    if receives_bookings is not None:
        changes["receives_bookings"] = receives_bookings
    if changes:
        await uow.execute(sa.update(calendars).where(calendars.c.id == calendar_id).values(changes))


async def stop_receiving_others(uow: UnitOfWork, tenant_id: str, calendar_id: str) -> None:
    """No calendar of the tenant but ``calendar_id`` receives bookings."""
    await uow.execute(
        sa.update(calendars)
        .where(calendars.c.tenant_id == tenant_id, calendars.c.id != calendar_id)
        .values(receives_bookings=False)
    )


async def set_sync_token(uow: UnitOfWork, calendar_id: str, sync_token: str | None) -> None:
    await uow.execute(
        sa.update(calendars).where(calendars.c.id == calendar_id).values(sync_token=sync_token)
    )


async def receiving(uow: UnitOfWork, tenant_id: str) -> ReceivingCalendar | None:
    """The tenant's calendar that receives bookings, if one does."""
    row = (
        await uow.execute(
            sa.select(calendars.c.remote_id, *connection_repo.COLUMNS)
            .join(connections, connections.c.id == calendars.c.connection_id)
            .where(calendars.c.tenant_id == tenant_id, calendars.c.receives_bookings.is_(True))
        )
    ).first()
    if row is None:
        return None
    return ReceivingCalendar(str(row.remote_id), connection_repo.from_row(row, 1))
