"""The tenant's callers (people and agents it describes, with a trust level): queries and
typed rows. Every query is scoped to a tenant. SQLAlchemy Core, like the other query
modules (not a hot path: the ORM would buy nothing here but a second way to read a row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from booking.adapters.database_errors import refusals
from booking.adapters.policy_tables import callers
from cortex_runtime.database import UnitOfWork, advisory_lock

EMAIL_TAKEN = "callers_tenant_email"  # the unique index of a tenant's addresses (any case)


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    id: str
    tenant_id: str
    email: str
    display_name: str
    trust_level: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerFields:
    """What a command sets of a caller (None: left as it is)."""

    email: str | None = None
    display_name: str | None = None
    trust_level: str | None = None

    def values(self) -> dict[str, str]:
        fields = (("email", self.email), ("display_name", self.display_name))
        return {
            name: value
            for name, value in (*fields, ("trust_level", self.trust_level))
            if value is not None
        }


def _caller(row: sa.Row[tuple[object, ...]]) -> Caller:
    return Caller(**row._mapping)


async def lock(uow: UnitOfWork, tenant_id: str) -> None:
    """Serialise creations of the tenant's callers, so the count limit holds."""
    await advisory_lock(uow, f"callers:{tenant_id}")


async def count(uow: UnitOfWork, tenant_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(callers).where(callers.c.tenant_id == tenant_id)
    return int((await uow.execute(query)).scalar_one())


async def insert(uow: UnitOfWork, caller_id: str, tenant_id: str, fields: CallerFields) -> Caller:
    """A new caller; an address the tenant has already raises ``ConstraintViolated``."""
    now = sa.func.clock_timestamp()
    statement = (
        sa.insert(callers)
        .values(
            id=caller_id, tenant_id=tenant_id, created_at=now, updated_at=now, **fields.values()
        )
        .returning(callers)
    )
    with refusals():
        return _caller((await uow.execute(statement)).one())


async def update(
    uow: UnitOfWork, tenant_id: str, caller_id: str, fields: CallerFields
) -> Caller | None:
    """The caller changed (as it is, when nothing changes); None when the tenant has no such
    caller; an address taken by another caller raises ``ConstraintViolated``."""
    mine = (callers.c.id == caller_id, callers.c.tenant_id == tenant_id)
    values = fields.values()
    if not values:
        row = (await uow.execute(sa.select(callers).where(*mine))).first()
        return _caller(row) if row is not None else None
    statement = (
        sa.update(callers)
        .where(*mine)
        .values(**values, updated_at=sa.func.clock_timestamp())
        .returning(callers)
    )
    with refusals():
        row = (await uow.execute(statement)).first()
    return _caller(row) if row is not None else None


async def update_by_email(uow: UnitOfWork, tenant_id: str, fields: CallerFields) -> Caller | None:
    """The tenant's caller with ``fields.email`` (any case) changed; None when none has it."""
    statement = (
        sa.update(callers)
        .where(
            callers.c.tenant_id == tenant_id,
            sa.func.lower(callers.c.email) == sa.func.lower(fields.email or ""),
        )
        .values(**fields.values(), updated_at=sa.func.clock_timestamp())
        .returning(callers)
    )
    row = (await uow.execute(statement)).first()
    return _caller(row) if row is not None else None


async def get(uow: UnitOfWork, tenant_id: str, caller_id: str) -> Caller | None:
    query = sa.select(callers).where(callers.c.id == caller_id, callers.c.tenant_id == tenant_id)
    row = (await uow.execute(query)).first()
    return _caller(row) if row is not None else None


async def all_of(uow: UnitOfWork, tenant_id: str) -> list[Caller]:
    """The tenant's callers, oldest first."""
    query = (
        sa.select(callers)
        .where(callers.c.tenant_id == tenant_id)
        .order_by(callers.c.created_at, callers.c.id)
    )
    return [_caller(row) for row in await uow.execute(query)]


async def delete(uow: UnitOfWork, tenant_id: str, caller_id: str) -> bool:
    statement = (
        sa.delete(callers)
        .where(callers.c.id == caller_id, callers.c.tenant_id == tenant_id)
        .returning(callers.c.id)
    )
    return (await uow.execute(statement)).first() is not None


async def trust_level(uow: UnitOfWork, tenant_id: str, normalised_email: str) -> str | None:
    """The trust level of the tenant's caller with that (lower-case) address, if any."""
    query = sa.select(callers.c.trust_level).where(
        callers.c.tenant_id == tenant_id, sa.func.lower(callers.c.email) == normalised_email
    )
    level = (await uow.execute(query)).scalar_one_or_none()
    return None if level is None else str(level)
