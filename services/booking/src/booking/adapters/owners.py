"""The owners projection (identity's settings as booking reads them): queries and typed rows.

Repository functions in cosmicpython's style: each takes the unit of work it runs in and
returns :class:`Owner` rows. SQLAlchemy Core on purpose: availability reads an owner on
every request (a hot path), and the statements it runs are built once (only their
parameters change, so the statement cache serves them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from booking.adapters.tables import owners
from contracts import identity as ident
from cortex_runtime.database import UnitOfWork

WorkingHours = Mapping[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """One owner as the projection holds it; the booking rules read with today's defaults
    (a tombstone holds none)."""

    tenant_id: str
    email: str
    display_name: str
    slug: str | None
    open_scheduling: bool
    timezone: str
    working_hours: WorkingHours  # "mon".."sun" -> local ("HH:MM", "HH:MM") intervals
    buffer_minutes: int
    min_notice_hours: int
    max_advance_days: int
    default_duration_minutes: int
    confirm_before_booking: bool
    deleted: bool
    settings_version: int
    calendars_version: int


def _owner(row: sa.Row[tuple[object, ...]]) -> Owner:
    m = row._mapping
    rules: Mapping[str, object] = m["booking_rules"] or {}
    hours: Mapping[str, list[Mapping[str, str]]] = m["working_hours"] or {}
    return Owner(
        tenant_id=m["tenant_id"],
        email=m["email"],
        display_name=m["display_name"],
        slug=m["slug"],
        open_scheduling=m["open_scheduling"],
        timezone=m["timezone"],
        working_hours={
            day: tuple((i["start"], i["end"]) for i in intervals)
            for day, intervals in hours.items()
        },
        buffer_minutes=_int(rules, "buffer_minutes", 0),
        min_notice_hours=_int(rules, "min_notice_hours", 0),
        max_advance_days=_int(rules, "max_advance_days", 60),
        default_duration_minutes=_int(rules, "default_duration_minutes", 30),
        confirm_before_booking=bool(rules.get("confirm_before_booking", False)),
        deleted=m["deleted"],
        settings_version=m["settings_version"],
        calendars_version=m["calendars_version"],
    )


def _int(rules: Mapping[str, object], name: str, default: int) -> int:
    value = rules.get(name, default)
    return int(value) if isinstance(value, int | float | str) else default


# identity keeps slugs unique; while the projection still holds a released slug whose
# release has not arrived yet, the newest claim wins
_BY_SLUG: Final = (
    sa.select(owners)
    .where(
        owners.c.slug == sa.bindparam("slug"),
        owners.c.open_scheduling.is_(True),
        owners.c.deleted.is_(False),
    )
    .order_by(owners.c.settings_updated_at.desc())
    .limit(1)
)
_BY_TENANT: Final = sa.select(owners).where(owners.c.tenant_id == sa.bindparam("tenant_id"))
_LIVE_BY_TENANT: Final = _BY_TENANT.where(owners.c.deleted.is_(False))


async def by_slug(uow: UnitOfWork, slug: str) -> Owner | None:
    """The owner whose public page ``slug`` is (any case), when the page is open."""
    row = (await uow.execute(_BY_SLUG, {"slug": slug.strip().lower()})).first()
    return _owner(row) if row is not None else None


async def by_tenant(uow: UnitOfWork, tenant_id: str, *, deleted_too: bool = False) -> Owner | None:
    statement = _BY_TENANT if deleted_too else _LIVE_BY_TENANT
    row = (await uow.execute(statement, {"tenant_id": tenant_id})).first()
    return _owner(row) if row is not None else None


async def project(uow: UnitOfWork, settings: ident.TenantSettings) -> bool:
    """Keep the newer settings; whether these were newer than what the projection held
    (identity's ``version`` decides; version 0 falls back to ``updated_at``; a forgotten
    owner is never brought back)."""
    values = {
        "email": settings.email,
        "display_name": settings.display_name,
        "slug": settings.slug,
        "open_scheduling": settings.open_scheduling,
        "timezone": settings.timezone,
        "working_hours": {
            d: [i.model_dump() for i in v] for d, v in settings.working_hours.items()
        },
        "booking_rules": settings.booking_rules.model_dump(),
        "settings_updated_at": settings.updated_at,
        "settings_version": settings.version,
    }
    statement = pg_insert(owners).values(tenant_id=settings.tenant_id, **values)
    newer = statement.excluded
    # calendars place floating and all-day events in the owner's zone: a new zone makes the
    # free/busy answers cached under the old one stale
    zone_moved = sa.case((owners.c.timezone != newer.timezone, 1), else_=0)
    applied = await uow.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={**values, "calendars_version": owners.c.calendars_version + zone_moved},
            where=sa.and_(
                owners.c.deleted.is_(False),
                sa.or_(
                    owners.c.settings_version < newer.settings_version,
                    sa.and_(
                        owners.c.settings_version == 0,
                        newer.settings_version == 0,
                        owners.c.settings_updated_at <= newer.settings_updated_at,
                    ),
                ),
            ),
        ).returning(owners.c.tenant_id)
    )
    return applied.first() is not None


async def forget(uow: UnitOfWork, tenant_id: str, version: int, at: datetime) -> None:
    """Mark the owner deleted at ``version`` (a tombstone for an owner never seen)."""
    tombstone = {
        "deleted": True,
        "open_scheduling": False,
        "slug": None,
        "settings_version": sa.func.greatest(owners.c.settings_version, version),
    }
    statement = pg_insert(owners).values(
        tenant_id=tenant_id,
        email="",
        display_name="",
        slug=None,
        open_scheduling=False,
        timezone="UTC",
        working_hours={},
        booking_rules={},
        deleted=True,
        settings_updated_at=at,
        settings_version=version,
    )
    await uow.execute(statement.on_conflict_do_update(index_elements=["tenant_id"], set_=tombstone))


async def settings_version(uow: UnitOfWork, tenant_id: str) -> int:
    statement = sa.select(owners.c.settings_version).where(owners.c.tenant_id == tenant_id)
    return int((await uow.execute(statement)).scalar_one())


async def bump_calendars_version(uow: UnitOfWork, tenant_id: str) -> int | None:
    """The owner's new ``calendars_version``; None when booking knows no such owner."""
    statement = (
        sa.update(owners)
        .where(owners.c.tenant_id == tenant_id)
        .values(calendars_version=owners.c.calendars_version + 1)
        .returning(owners.c.calendars_version)
    )
    version = (await uow.execute(statement)).scalar()
    return None if version is None else int(version)
