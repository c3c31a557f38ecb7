"""The tenant's booking policies: queries and typed rows, every query scoped to a tenant.
SQLAlchemy Core, like the other query modules (read once per booking, by the saga's
policy decision: one indexed query)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypedDict

import sqlalchemy as sa

from booking.adapters.policy_tables import policies
from cortex_runtime.database import UnitOfWork, advisory_lock

if TYPE_CHECKING:
    from typing_extensions import Unpack


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    id: str
    tenant_id: str
    name: str
    condition_type: str
    condition_value: str
    action: str
    priority: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


class PolicyDefinition(TypedDict):
    """A policy's checked condition and action, and its name."""

    name: str
    condition_type: str
    condition_value: str
    action: str


class PolicyChanges(TypedDict, total=False):
    name: str
    condition_type: str
    condition_value: str
    action: str
    priority: int
    enabled: bool


def _policy(row: sa.Row[tuple[object, ...]]) -> Policy:
    return Policy(**row._mapping)


# the order :func:`booking.domain.policies.decide` evaluates them in
_IN_EVALUATION_ORDER: Final = (policies.c.priority.desc(), policies.c.created_at, policies.c.id)


async def lock(uow: UnitOfWork, tenant_id: str) -> None:
    """Serialise creations of the tenant's policies, so the count limit holds."""
    await advisory_lock(uow, f"policies:{tenant_id}")


async def count(uow: UnitOfWork, tenant_id: str) -> int:
    query = (
        sa.select(sa.func.count()).select_from(policies).where(policies.c.tenant_id == tenant_id)
    )
    return int((await uow.execute(query)).scalar_one())


async def insert(
    uow: UnitOfWork,
    policy_id: str,
    tenant_id: str,
    *,
    priority: int,
    enabled: bool,
    **definition: Unpack[PolicyDefinition],
) -> Policy:
    now = sa.func.clock_timestamp()  # distinct within a transaction: "oldest first" holds
    statement = (
        sa.insert(policies)
        .values(
            id=policy_id,
            tenant_id=tenant_id,
            priority=priority,
            enabled=enabled,
            created_at=now,
            updated_at=now,
            **definition,
        )
        .returning(policies)
    )
    return _policy((await uow.execute(statement)).one())


async def all_of(uow: UnitOfWork, tenant_id: str, *, enabled_only: bool = False) -> list[Policy]:
    """The tenant's policies in evaluation order."""
    query = sa.select(policies).where(policies.c.tenant_id == tenant_id)
    if enabled_only:
        query = query.where(policies.c.enabled.is_(True))
    return [_policy(row) for row in await uow.execute(query.order_by(*_IN_EVALUATION_ORDER))]


async def get(
    uow: UnitOfWork, tenant_id: str, policy_id: str, *, for_update: bool = False
) -> Policy | None:
    query = sa.select(policies).where(policies.c.id == policy_id, policies.c.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    row = (await uow.execute(query)).first()
    return _policy(row) if row is not None else None


async def update(
    uow: UnitOfWork, tenant_id: str, policy_id: str, **changes: Unpack[PolicyChanges]
) -> Policy:
    statement = (
        sa.update(policies)
        .where(policies.c.id == policy_id, policies.c.tenant_id == tenant_id)
        .values(**changes, updated_at=sa.func.clock_timestamp())
        .returning(policies)
    )
    return _policy((await uow.execute(statement)).one())


async def delete(uow: UnitOfWork, tenant_id: str, policy_id: str) -> bool:
    statement = (
        sa.delete(policies)
        .where(policies.c.id == policy_id, policies.c.tenant_id == tenant_id)
        .returning(policies.c.id)
    )
    return (await uow.execute(statement)).first() is not None
