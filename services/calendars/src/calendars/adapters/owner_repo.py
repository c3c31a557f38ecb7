"""The owner as calendars needs it: a projection of identity's settings (its zone), and
whether the tenant was deleted (final)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from calendars.adapters.tables import owners
from calendars.domain.owner import DEFAULT_ZONE
from cortex_runtime.database import UnitOfWork


@dataclass(frozen=True)
class Owner:
    tenant_id: str
    timezone: str
    settings_version: int
    settings_updated_at: datetime | None
    deleted: bool


async def zone(uow: UnitOfWork, tenant_id: str) -> str:
    """The zone the owner's floating and all-day times are read in (UTC until known)."""
    found = (
        await uow.execute(sa.select(owners.c.timezone).where(owners.c.tenant_id == tenant_id))
    ).scalar()
    return str(found) if found else DEFAULT_ZONE


async def lock(uow: UnitOfWork, tenant_id: str, *, share: bool) -> Owner:
    """The owner's row, locked (made if calendars has not heard of the owner yet): the
    owner's changes (zone, deletion) and new connections take their turns on it."""
    await uow.execute(pg_insert(owners).values(tenant_id=tenant_id).on_conflict_do_nothing())
    query = sa.select(
        owners.c.tenant_id,
        owners.c.timezone,
        owners.c.settings_version,
        owners.c.settings_updated_at,
        owners.c.deleted,
    ).where(owners.c.tenant_id == tenant_id)
    row = (await uow.execute(query.with_for_update(read=share))).one()
    return Owner(**row._mapping)


async def set_zone(
    uow: UnitOfWork, tenant_id: str, zone: str, version: int, updated_at: datetime | None
) -> None:
    await uow.execute(
        sa.update(owners)
        .where(owners.c.tenant_id == tenant_id)
        .values(timezone=zone, settings_version=version, settings_updated_at=updated_at)
    )


async def settings_version(uow: UnitOfWork, tenant_id: str) -> int:
    """The version of the settings the projection holds (0: none yet)."""
    held = (
        await uow.execute(
            sa.select(owners.c.settings_version).where(owners.c.tenant_id == tenant_id)
        )
    ).scalar()
    return int(held or 0)


async def mark_deleted(uow: UnitOfWork, tenant_id: str, settings_version: int) -> None:
    await uow.execute(
        sa.update(owners)
        .where(owners.c.tenant_id == tenant_id)
        .values(
            deleted=True,
            settings_version=sa.func.greatest(owners.c.settings_version, settings_version),
        )
    )
