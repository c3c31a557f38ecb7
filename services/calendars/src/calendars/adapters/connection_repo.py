"""Connections (one per tenant and provider): their credentials, status and sync schedule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from calendars.adapters.tables import connections
from cortex_runtime.database import UnitOfWork, constraint_name


@dataclass(frozen=True)
class Connection:
    """A stored connection; ``secret`` (password or refresh token) and ``access_token`` are
    sealed (:class:`~calendars.adapters.secrets.SecretBox`)."""

    id: str
    tenant_id: str
    provider: str
    email: str
    server_url: str | None
    username: str | None
    secret: bytes
    access_token: bytes | None
    access_expires_at: datetime | None
    status: str
    status_reason: str | None
    last_synced_at: datetime | None


class ConnectionKey(NamedTuple):
    id: str
    provider: str


COLUMNS = (
    connections.c.id,
    connections.c.tenant_id,
    connections.c.provider,
    connections.c.email,
    connections.c.server_url,
    connections.c.username,
    connections.c.secret,
    connections.c.access_token,
    connections.c.access_expires_at,
    connections.c.status,
    connections.c.status_reason,
    connections.c.last_synced_at,
)
"""The columns of :class:`Connection`, in its order (for queries joining connections)."""


def from_row(row: sa.Row[Any], start: int = 0) -> Connection:
    """The :class:`Connection` whose :data:`COLUMNS` begin at ``start`` in ``row``."""
    return Connection(*row[start : start + len(COLUMNS)])


class AlreadyConnected(Exception):
    """The tenant has a connection of this provider already (``str(exc)``: the constraint
    that refused the write)."""


@contextmanager
def one_per_provider() -> Iterator[None]:
    """Storing a connection (and its calendars) that a unique key refuses raises
    :class:`AlreadyConnected`."""
    try:
        yield
    except IntegrityError as exc:
        raise AlreadyConnected(constraint_name(exc)) from exc


async def get(uow: UnitOfWork, connection_id: str) -> Connection | None:
    row = (await uow.execute(sa.select(*COLUMNS).where(connections.c.id == connection_id))).first()
    return None if row is None else from_row(row)


async def of_tenant(uow: UnitOfWork, tenant_id: str, connection_id: str) -> Connection | None:
    row = (
        await uow.execute(
            sa.select(*COLUMNS).where(
                connections.c.id == connection_id, connections.c.tenant_id == tenant_id
            )
        )
    ).first()
    return None if row is None else from_row(row)


async def list_of_tenant(uow: UnitOfWork, tenant_id: str) -> list[Connection]:
    """The tenant's connections, oldest first."""
    rows = await uow.execute(
        sa.select(*COLUMNS)
        .where(connections.c.tenant_id == tenant_id)
        .order_by(connections.c.created_at)
    )
    return [from_row(row) for row in rows]


async def ids_of_tenant(uow: UnitOfWork, tenant_id: str) -> list[str]:
    query = sa.select(connections.c.id).where(connections.c.tenant_id == tenant_id)
    return [str(i) for i in (await uow.execute(query)).scalars()]


async def add(
    uow: UnitOfWork,
    *,
    connection_id: str,
    tenant_id: str,
    provider: str,
    email: str,
    secret: bytes,
    status: str,
    server_url: str | None = None,
    username: str | None = None,
    access_token: bytes | None = None,
    access_expires_at: datetime | None = None,
) -> None:
    await uow.execute(
        sa.insert(connections).values(
            id=connection_id,
            tenant_id=tenant_id,
            provider=provider,
            email=email,
            server_url=server_url,
            username=username,
            secret=secret,
            access_token=access_token,
            access_expires_at=access_expires_at,
            status=status,
        )
    )


async def store_tokens(
    uow: UnitOfWork,
    connection_id: str,
    access_token: bytes,
    access_expires_at: datetime,
    secret: bytes | None,
) -> None:
    """Keep refreshed OAuth tokens (``secret``: a new refresh token, when one was granted)."""
    values: dict[str, object] = {
        "access_token": access_token,
        "access_expires_at": access_expires_at,
    }
    if secret is not None:
        values["secret"] = secret
    await uow.execute(
        sa.update(connections).where(connections.c.id == connection_id).values(values)
    )


async def set_status(
    uow: UnitOfWork,
    connection_id: str,
    status: str,
    reason: str | None,
    next_sync_at: datetime,
    *,
    synced: bool,
) -> bool:
    """Record a sync's outcome (``synced``: it read everything, now); False when the
    connection is gone (disconnected meanwhile)."""
    values: dict[str, object] = {
        "status": status,
        "status_reason": reason,
        "next_sync_at": next_sync_at,
    }
    if synced:
        values["last_synced_at"] = sa.func.now()
    updated = (
        await uow.execute(
            sa.update(connections)
            .where(connections.c.id == connection_id)
            .values(values)
            .returning(connections.c.status)
        )
    ).first()
    return updated is not None


async def claim_due(uow: UnitOfWork, limit: int, next_sync_at: datetime) -> list[str]:
    """Up to ``limit`` connections due for their scheduled sync, moved to ``next_sync_at``;
    rows another replica is claiming are skipped, so replicas never collide."""
    due = await uow.execute(
        sa.update(connections)
        .where(
            connections.c.id.in_(
                sa.select(connections.c.id)
                .where(connections.c.next_sync_at <= sa.func.now())
                .order_by(connections.c.next_sync_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .values(next_sync_at=next_sync_at)
        .returning(connections.c.id)
    )
    return [str(i) for i in due.scalars()]


async def delete_by_provider(uow: UnitOfWork, tenant_id: str, provider: str) -> str | None:
    """Delete the tenant's connection of ``provider`` (its calendars and events go with it,
    ON DELETE CASCADE); its id, or None if there was none."""
    row = (
        await uow.execute(
            sa.delete(connections)
            .where(connections.c.tenant_id == tenant_id, connections.c.provider == provider)
            .returning(connections.c.id)
        )
    ).first()
    return None if row is None else str(row.id)


async def delete_of_tenant(uow: UnitOfWork, tenant_id: str) -> list[ConnectionKey]:
    """Delete every connection of the tenant (calendars and events go with them)."""
    gone = await uow.execute(
        sa.delete(connections)
        .where(connections.c.tenant_id == tenant_id)
        .returning(connections.c.id, connections.c.provider)
    )
    return [ConnectionKey(str(r.id), str(r.provider)) for r in gone]
