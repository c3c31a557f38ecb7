"""The activity table, the tenant's feed: typed rows in, typed rows out (SQLAlchemy Core
statements; an item is :class:`identity.adapters.tables.ActivityRow`, a SQLModel data model)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cortex_runtime.database import UnitOfWork
from identity.adapters.tables import ActivityRow, activity, columns_of


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page of the feed ended: the last item's time and sequence number."""

    occurred_at: datetime
    seq: int


async def newest_first(
    uow: UnitOfWork, tenant_id: str, limit: int, before: Position | None = None
) -> list[ActivityRow]:
    """Up to ``limit`` items, newest first by when they happened (consumers store in any
    order), strictly before ``before`` when given."""
    query = (
        sa.select(*columns_of(activity, ActivityRow))
        .where(activity.c.tenant_id == tenant_id)
        .order_by(activity.c.occurred_at.desc(), activity.c.seq.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(
            sa.tuple_(activity.c.occurred_at, activity.c.seq) < (before.occurred_at, before.seq)
        )
    rows = (await uow.execute(query)).all()
    return [ActivityRow.model_validate(row._mapping) for row in rows]


async def add_once(
    uow: UnitOfWork,
    *,
    event_id: str,
    tenant_id: str,
    kind: str,
    summary: str,
    occurred_at: datetime,
    ids: dict[str, str],
) -> None:
    """Add an item for ``event_id`` unless the feed has one: a re-sent event is a no-op."""
    await uow.execute(
        pg_insert(activity)
        .values(
            event_id=event_id,
            tenant_id=tenant_id,
            type=kind,
            summary=summary,
            occurred_at=occurred_at,
            ids=ids,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
