"""The api_keys table: typed rows in, typed rows out (SQLAlchemy Core statements; a key's row
is :class:`identity.adapters.tables.ApiKeyRow`, a SQLModel data model)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cortex_runtime.database import UnitOfWork
from identity.adapters.tables import ApiKeyRow, api_keys, columns_of, tenants


@dataclass(frozen=True, slots=True)
class Credential:
    """What verifying a presented key needs: the stored digest of its secret (a projection
    of a key and its tenant read on every request, kept a plain dataclass: docs/architecture.md,
    "SQLModel and Core")."""

    id: str
    tenant_id: str
    secret_hash: bytes


@dataclass(frozen=True, slots=True)
class RevokedKey:
    id: str
    prefix: str


_INFO = columns_of(api_keys, ApiKeyRow)


async def insert(
    uow: UnitOfWork, *, key_id: str, tenant_id: str, name: str, prefix: str, secret_hash: bytes
) -> ApiKeyRow:
    row = (
        await uow.execute(
            sa.insert(api_keys)
            .values(
                id=key_id, tenant_id=tenant_id, name=name, prefix=prefix, secret_hash=secret_hash
            )
            .returning(*_INFO)
        )
    ).one()
    return ApiKeyRow.model_validate(row._mapping)


async def count_live(uow: UnitOfWork, tenant_id: str) -> int:
    count: int = (
        await uow.execute(
            sa.select(sa.func.count())
            .select_from(api_keys)
            .where(api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
        )
    ).scalar_one()
    return count


async def list_live(uow: UnitOfWork, tenant_id: str) -> list[ApiKeyRow]:
    """The tenant's unrevoked keys, oldest first."""
    rows = await uow.execute(
        sa.select(*_INFO)
        .where(api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    return [ApiKeyRow.model_validate(row._mapping) for row in rows]


async def revoke(uow: UnitOfWork, key_id: str, tenant_id: str) -> RevokedKey | None:
    """Revoke the tenant's key unless it is unknown or already revoked."""
    row = (
        await uow.execute(
            sa.update(api_keys)
            .where(
                api_keys.c.id == key_id,
                api_keys.c.tenant_id == tenant_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=sa.func.now())
            .returning(api_keys.c.id, api_keys.c.prefix)
        )
    ).first()
    return RevokedKey(id=row.id, prefix=row.prefix) if row is not None else None


async def revoke_all(uow: UnitOfWork, tenant_id: str) -> list[RevokedKey]:
    """Revoke every live key of the tenant; the ones it revoked."""
    rows = await uow.execute(
        sa.update(api_keys)
        .where(api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
        .returning(api_keys.c.id, api_keys.c.prefix)
    )
    return [RevokedKey(id=row.id, prefix=row.prefix) for row in rows.all()]


# verify_api_key reads this for every request the gateway's key cache misses: built once
# (the statement and its cache key), as ``python -m bench S9`` measures
_LIVE_CREDENTIAL = (
    sa.select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.secret_hash)
    .join(tenants, tenants.c.id == api_keys.c.tenant_id)
    .where(
        api_keys.c.prefix == sa.bindparam("prefix"),
        api_keys.c.revoked_at.is_(None),
        tenants.c.deleted_at.is_(None),
    )
)


async def live_credential(uow: UnitOfWork, prefix: str) -> Credential | None:
    """The unrevoked key with that prefix, held by a live tenant."""
    row = (await uow.execute(_LIVE_CREDENTIAL, {"prefix": prefix})).first()
    if row is None:
        return None
    return Credential(id=row.id, tenant_id=row.tenant_id, secret_hash=row.secret_hash)


async def record_usage(uow: UnitOfWork, last_used: Mapping[str, datetime]) -> int:
    """Move each key's ``last_used_at`` forward to its time (never back): one statement for
    the whole batch. The number of keys it found."""
    ids = list(last_used)
    times = [last_used[i] for i in ids]
    used = (
        sa.func.unnest(
            sa.cast(ids, sa.ARRAY(sa.Text)), sa.cast(times, sa.ARRAY(sa.DateTime(timezone=True)))
        )
        .table_valued("id", "at")
        .render_derived(name="used")
    )
    result = await uow.execute(
        sa.update(api_keys)
        .where(api_keys.c.id == used.c.id)
        .values(
            last_used_at=sa.func.greatest(
                sa.func.coalesce(api_keys.c.last_used_at, used.c.at), used.c.at
            )
        )
    )
    updated: int = result.rowcount or 0  # type: ignore[attr-defined]
    return updated
