"""Identity's adapters on real PostgreSQL: Core statements in, SQLModel rows out.

Each read gives the row type of ``identity.adapters.tables`` (a frozen data model, validated
from the driver's values: JSONB objects, BYTEA, timestamptz), never an object of the unit of
work's session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from cortex_runtime.database import Database, UnitOfWork
from identity.adapters import activity, api_keys, tenants
from identity.adapters.activity import Position
from identity.adapters.tables import ActivityRow, ApiKeyRow, NewTenant, TenantRow

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
HOURS = {"mon": [{"start": "09:00", "end": "17:00"}]}


@pytest.fixture
async def db(service_database: Callable[[str], str]) -> AsyncIterator[Database]:
    database = Database(service_database("identity"), pool_size=2)
    yield database
    await database.dispose()


def new_tenant(tenant_id: str, **changes: object) -> NewTenant:
    values: dict[str, object] = {
        "id": tenant_id,
        "external_id": f"user_{tenant_id}",
        "email": f"{tenant_id}@example.com",
        "display_name": tenant_id.title(),
        "user_type": "individual",
        "slug": tenant_id,
        "timezone": "UTC",
        "working_hours": HOURS,
        "booking_rules": {"min_notice_hours": 2},
    }
    return NewTenant.model_validate({**values, **changes})


async def test_tenant_rows_in_and_out(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        inserted = await tenants.insert(uow, new_tenant("ten_a"))
        assert uow.session.identity_map.keys() == set()  # nothing loaded into the session
        await uow.commit()
    assert type(inserted) is TenantRow
    assert (inserted.open_scheduling, inserted.version, inserted.deleted_at) == (False, 1, None)
    assert inserted.working_hours == HOURS
    assert inserted.created_at.tzinfo is not None
    with pytest.raises(pydantic.ValidationError):
        inserted.slug = "changed"  # type: ignore[misc]

    async with UnitOfWork(db, read_only=True) as reader:
        assert await tenants.live(reader, "ten_a") == inserted
        assert await tenants.by_external_id(reader, "user_ten_a") == inserted
        assert await tenants.live(reader, "ten_missing") is None

    async with UnitOfWork(db) as uow:
        current = await tenants.live(uow, "ten_a", lock=True)
        assert current is not None
        changed = await tenants.update(uow, current.id, {"open_scheduling": True, "slug": "a2"})
        unchanged = await tenants.update(uow, current.id, {})
        await uow.commit()
    assert (changed.open_scheduling, changed.slug, changed.version) == (True, "a2", 2)
    assert unchanged.version == 2  # no change, no new version

    async with UnitOfWork(db) as uow:
        page = await tenants.public_page(uow, "ten_a@example.com")
        assert page is not None and page.slug == "a2"
        with pytest.raises(tenants.Taken) as taken:
            await tenants.insert(uow, new_tenant("ten_b", slug="a2"))
    assert taken.value.field == "slug"

    async with UnitOfWork(db) as uow:
        deleted = await tenants.delete_by_external_id(uow, "user_ten_a")
        await uow.commit()
    assert deleted is not None and deleted.version == 3
    async with UnitOfWork(db, read_only=True) as reader:
        assert await tenants.live(reader, "ten_a") is None
        gone = await tenants.by_external_id(reader, "user_ten_a")
    assert gone is not None and gone.deleted_at is not None and gone.slug is None


async def test_key_rows_never_carry_the_secret(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await tenants.insert(uow, new_tenant("ten_k"))
        first = await api_keys.insert(
            uow, key_id="key_1", tenant_id="ten_k", name="one", prefix="pfx1", secret_hash=b"\x01"
        )
        await api_keys.insert(
            uow, key_id="key_2", tenant_id="ten_k", name="two", prefix="pfx2", secret_hash=b"\x02"
        )
        await uow.commit()
    assert type(first) is ApiKeyRow
    assert set(ApiKeyRow.model_fields) == {"id", "name", "prefix", "created_at", "last_used_at"}

    async with UnitOfWork(db, read_only=True) as reader:
        listed = await api_keys.list_live(reader, "ten_k")
        credential = await api_keys.live_credential(reader, "pfx2")
    assert [k.id for k in listed] == ["key_1", "key_2"] and listed[0] == first
    assert credential is not None and credential.secret_hash == b"\x02"

    async with UnitOfWork(db) as uow:
        assert await api_keys.record_usage(uow, {"key_1": T0, "key_unknown": T0}) == 1
        revoked = await api_keys.revoke(uow, "key_2", "ten_k")
        await uow.commit()
    assert revoked is not None and revoked.prefix == "pfx2"
    async with UnitOfWork(db, read_only=True) as reader:
        (only,) = await api_keys.list_live(reader, "ten_k")
        assert await api_keys.live_credential(reader, "pfx2") is None
    assert only.last_used_at == T0


async def test_the_feed_reads_newest_first_in_pages(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        for i in range(5):
            for _ in range(2):  # a re-sent event adds nothing
                await activity.add_once(
                    uow,
                    event_id=f"evt_{i}",
                    tenant_id="ten_f",
                    kind="settings_changed",
                    summary=f"change {i}",
                    occurred_at=T0 + timedelta(minutes=i),
                    ids={"n": str(i)},
                )
        await uow.commit()
    async with UnitOfWork(db, read_only=True) as reader:
        first = await activity.newest_first(reader, "ten_f", 3)
        last = first[-1]
        rest = await activity.newest_first(
            reader, "ten_f", 3, Position(occurred_at=last.occurred_at, seq=last.seq)
        )
    assert all(type(item) is ActivityRow for item in first + rest)
    assert [item.summary for item in first + rest] == [f"change {i}" for i in (4, 3, 2, 1, 0)]
    assert first[0].ids == {"n": "4"} and first[0].type == "settings_changed"
