"""The events Cortex wrote for bookings (UID = booking id), and the tombstones their deletes
leave.

The saga's event write is a hot path: SQLAlchemy Core statements, a row or two each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from calendars.adapters import connection_repo
from calendars.adapters.connection_repo import Connection
from calendars.adapters.tables import booking_events, booking_tombstones, connections
from cortex_runtime.database import UnitOfWork, advisory_lock


@dataclass(frozen=True)
class Written:
    """A booking's event as recorded: where it was written, and whether it was deleted."""

    remote_calendar_id: str
    uid: str
    deleted_at: datetime | None
    provider: str


@dataclass(frozen=True)
class WrittenTo:
    """A booking's recorded event with the connection that reaches its calendar."""

    remote_calendar_id: str
    uid: str
    deleted_at: datetime | None
    connection: Connection


async def lock(uow: UnitOfWork, booking_id: str) -> None:
    """Serialise the write and the delete of one booking's event, across replicas, until
    the transaction ends: a compensating delete waits for a write still under way."""
    await advisory_lock(uow, f"booking_event:{booking_id}")


async def written(uow: UnitOfWork, booking_id: str, tenant_id: str) -> Written | None:
    row = (
        await uow.execute(
            sa.select(
                booking_events.c.remote_calendar_id,
                booking_events.c.uid,
                booking_events.c.deleted_at,
                connections.c.provider,
            )
            .join(connections, connections.c.id == booking_events.c.connection_id)
            .where(
                booking_events.c.booking_id == booking_id,
                booking_events.c.tenant_id == tenant_id,
            )
        )
    ).first()
    return None if row is None else Written(**row._mapping)


async def written_to(uow: UnitOfWork, booking_id: str, tenant_id: str) -> WrittenTo | None:
    row = (
        await uow.execute(
            sa.select(
                booking_events.c.remote_calendar_id,
                booking_events.c.uid,
                booking_events.c.deleted_at,
                *connection_repo.COLUMNS,
            )
            .join(connections, connections.c.id == booking_events.c.connection_id)
            .where(
                booking_events.c.booking_id == booking_id,
                booking_events.c.tenant_id == tenant_id,
            )
        )
    ).first()
    if row is None:
        return None
    return WrittenTo(
        str(row.remote_calendar_id), str(row.uid), row.deleted_at, connection_repo.from_row(row, 3)
    )


async def record(
    uow: UnitOfWork,
    *,
    booking_id: str,
    tenant_id: str,
    connection_id: str,
    remote_calendar_id: str,
    uid: str,
    synced_uid: str | None = None,
) -> None:
    """Record the booking's event as written (again, if it had been deleted), with the UID
    its synced copy carries when that is not ``uid`` (None: ``uid``)."""
    synced = None if synced_uid == uid else synced_uid
    await uow.execute(
        pg_insert(booking_events)
        .values(
            booking_id=booking_id,
            tenant_id=tenant_id,
            connection_id=connection_id,
            remote_calendar_id=remote_calendar_id,
            uid=uid,
            synced_uid=synced,
        )
        .on_conflict_do_update(
            index_elements=["booking_id"],
            set_={
                "deleted_at": None,
                "connection_id": connection_id,
                "remote_calendar_id": remote_calendar_id,
                "synced_uid": synced,
            },
        )
    )


async def set_synced_uid(uow: UnitOfWork, booking_id: str, synced_uid: str | None) -> None:
    """The UID the event's synced copy carries now (None: its own)."""
    await uow.execute(
        sa.update(booking_events)
        .where(booking_events.c.booking_id == booking_id)
        .values(synced_uid=synced_uid)
    )


async def mark_deleted(uow: UnitOfWork, booking_id: str) -> None:
    await uow.execute(
        sa.update(booking_events)
        .where(booking_events.c.booking_id == booking_id)
        .values(deleted_at=sa.func.now())
    )


async def deleted_issued_at(uow: UnitOfWork, booking_id: str) -> datetime | None:
    """When the last delete of the booking's event was issued (its tombstone), if one was."""
    found = (
        await uow.execute(
            sa.select(booking_tombstones.c.deleted_issued_at).where(
                booking_tombstones.c.booking_id == booking_id
            )
        )
    ).scalar()
    return found if isinstance(found, datetime) else None


async def leave_tombstone(
    uow: UnitOfWork, booking_id: str, tenant_id: str, issued_at: datetime
) -> None:
    """Remember the delete (the latest, of several)."""
    statement = pg_insert(booking_tombstones).values(
        booking_id=booking_id, tenant_id=tenant_id, deleted_issued_at=issued_at
    )
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=["booking_id"],
            set_={
                "deleted_issued_at": sa.func.greatest(
                    booking_tombstones.c.deleted_issued_at, statement.excluded.deleted_issued_at
                )
            },
        )
    )


async def purge_tombstones(uow: UnitOfWork, created_before: datetime) -> int:
    purged = (
        await uow.execute(
            sa.delete(booking_tombstones)
            .where(booking_tombstones.c.created_at < created_before)
            .returning(booking_tombstones.c.booking_id)
        )
    ).all()
    return len(purged)


async def delete_of_tenant(uow: UnitOfWork, tenant_id: str) -> None:
    """Forget the tenant's booking events and tombstones."""
    for table in (booking_events, booking_tombstones):
        await uow.execute(sa.delete(table).where(table.c.tenant_id == tenant_id))
