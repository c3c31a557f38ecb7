"""Booking's projection of owners on real PostgreSQL: identity's versions decide, in any order.

Settings events reach booking through one durable consumer per event type, so a tenant's
``settings_changed``, ``tenant_deleted`` and another tenant's claim of a released slug arrive
in any order, and any of them may be delivered again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from booking.adapters.tables import owners
from booking.service_layer import availability, projection
from contracts import identity as ident
from cortex_runtime.database import Database, UnitOfWork
from cortex_runtime.errors import ServiceError

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def settings(tenant: str, version: int, **changes: object) -> ident.TenantSettings:
    values: dict[str, object] = {
        "tenant_id": tenant,
        "email": f"{tenant}@example.com",
        "display_name": tenant,
        "slug": None,
        "open_scheduling": True,
        "user_type": ident.UserType.INDIVIDUAL,
        "timezone": "UTC",
        "working_hours": {},
        "booking_rules": ident.BookingRules(),
        "updated_at": T0 + timedelta(seconds=version),
        "version": version,
    }
    values.update(changes)
    return ident.TenantSettings.model_validate(values)


def deleted(tenant: str, version: int) -> ident.TenantDeleted:
    return ident.TenantDeleted(tenant_id=tenant, deleted_tenant_id=tenant, settings_version=version)


@pytest.fixture
async def db(service_database: Callable[[str], str]) -> AsyncIterator[Database]:
    database = Database(service_database("booking"), pool_size=2)
    yield database
    await database.dispose()


async def apply(db: Database, event: ident.TenantSettings | ident.TenantDeleted) -> bool:
    async with UnitOfWork(db) as uow:
        if isinstance(event, ident.TenantDeleted):
            await projection.forget_owner(uow, event)
            applied = True
        else:
            applied = await projection.project_settings(uow, event)
        await uow.commit()
    return applied


async def owner(db: Database, tenant: str) -> sa.Row[object]:
    async with UnitOfWork(db) as uow:
        return (await uow.execute(sa.select(owners).where(owners.c.tenant_id == tenant))).one()


async def page_owner(db: Database, slug: str) -> str | None:
    """Whose public page ``slug`` is, as availability and booking find it."""
    async with UnitOfWork(db) as uow:
        try:
            return str((await availability.owner_by_slug(uow, slug)).tenant_id)
        except ServiceError:
            return None


async def test_a_redelivered_settings_event_never_revives_a_deleted_tenants_slug(
    db: Database,
) -> None:
    assert await apply(db, settings("tn_x", 1, slug="shared"))
    await apply(db, deleted("tn_x", 2))
    # the consumer of settings_changed delivers X's old settings again
    assert not await apply(db, settings("tn_x", 1, slug="shared"))
    row = await owner(db, "tn_x")
    assert (row.deleted, row.slug, row.open_scheduling, row.settings_version) == (
        True,
        None,
        False,
        2,
    )
    # another tenant takes the released slug: applied (it used to hit the unique index and
    # be dead-lettered), and the page is theirs
    assert await apply(db, settings("tn_y", 1, slug="shared"))
    assert await page_owner(db, "shared") == "tn_y"


async def test_versions_apply_in_order_whatever_order_they_arrive_in(db: Database) -> None:
    assert await apply(db, settings("tn_v", 3, timezone="Europe/Berlin"))
    assert not await apply(db, settings("tn_v", 2, timezone="Europe/Paris"))
    assert not await apply(db, settings("tn_v", 3, timezone="Asia/Tokyo"))  # same version
    row = await owner(db, "tn_v")
    assert (row.timezone, row.settings_version) == ("Europe/Berlin", 3)
    # even when the older one carries a later clock (identity's clock is not the order)
    late_clock = settings("tn_v", 2, timezone="Europe/Paris", updated_at=T0 + timedelta(days=1))
    assert not await apply(db, late_clock)
    assert await apply(db, settings("tn_v", 4, timezone="America/New_York"))
    assert (await owner(db, "tn_v")).timezone == "America/New_York"


async def test_a_deletion_that_arrives_first_leaves_a_tombstone(db: Database) -> None:
    await apply(db, deleted("tn_gone", 3))
    # the tenant's creation and settings arrive after its deletion: nothing comes back
    assert not await apply(db, settings("tn_gone", 1, slug="ghost"))
    assert not await apply(db, settings("tn_gone", 2, slug="ghost"))
    assert await page_owner(db, "ghost") is None
    row = await owner(db, "tn_gone")
    assert (row.deleted, row.settings_version) == (True, 3)
    # a deletion delivered again does not lower the version
    await apply(db, deleted("tn_gone", 1))
    assert (await owner(db, "tn_gone")).settings_version == 3


async def test_a_slug_claimed_before_its_release_arrives_goes_to_the_newest_claim(
    db: Database,
) -> None:
    assert await apply(db, settings("tn_old", 1, slug="moving"))
    # identity released the slug from tn_old (its v2) and gave it to tn_new; tn_new's event
    # arrives first
    claim = settings("tn_new", 1, slug="moving", updated_at=T0 + timedelta(minutes=5))
    assert await apply(db, claim)
    assert await page_owner(db, "moving") == "tn_new"
    release = settings("tn_old", 2, slug=None, updated_at=T0 + timedelta(minutes=4))
    assert await apply(db, release)
    assert await page_owner(db, "moving") == "tn_new"
    assert (await owner(db, "tn_old")).slug is None


async def test_settings_from_before_versions_still_order_by_time(db: Database) -> None:
    assert await apply(db, settings("tn_legacy", 0, timezone="Europe/Rome"))
    older = settings("tn_legacy", 0, timezone="Europe/Oslo", updated_at=T0 - timedelta(hours=1))
    assert not await apply(db, older)
    assert await apply(db, settings("tn_legacy", 1, timezone="Europe/Madrid"))
    assert (await owner(db, "tn_legacy")).timezone == "Europe/Madrid"
