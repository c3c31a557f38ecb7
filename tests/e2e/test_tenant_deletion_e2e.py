"""Deleting a tenant reaches calendars and billing, end to end: after Clerk's
``user.deleted``, calendars' database holds no secret of the tenant (not even in a dump)
and no sync of its calendars runs any more; billing has ended the tenant."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from contracts import calendars as cal
from contracts import identity
from tests.e2e.harness import (
    WHOLE_DAY,
    System,
    SystemOptions,
    clerk_user,
    connect_caldav,
    eventually,
    new_user_id,
    post_clerk,
    put_settings,
    radicale_calendar,
)

pytestmark = pytest.mark.e2e

TENANT_TABLES = ("connections", "calendars", "events", "oauth_states", "booking_events")


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(environ={"CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS": "1"})


def syncs(system: System, tenant_id: str) -> int:
    """Finished syncs of the tenant's calendars: each announces calendar_synced."""
    rows = system.rows(
        "calendars", "SELECT payload FROM outbox WHERE subject = $1", cal.CALENDAR_SYNCED.subject
    )
    return sum(1 for r in rows if json.loads(bytes(r["payload"]))["tenant_id"] == tenant_id)


def tenant_rows(system: System, tenant_id: str) -> dict[str, int]:
    return {
        table: system.rows(
            "calendars",
            f"SELECT count(*) AS n FROM {table} WHERE tenant_id = $1",
            tenant_id,
        )[0]["n"]
        for table in TENANT_TABLES
    }


def test_after_user_deleted_calendars_keeps_no_secret_and_syncs_nothing(system: System) -> None:
    # a tenant from Clerk, with a key, an open page and a CalDAV calendar connected
    user_id, email = new_user_id(), f"gone-{uuid.uuid4().hex[:8]}@example.com"
    assert post_clerk(system, "user.created", clerk_user(user_id, email)).status_code == 200
    [tenant] = system.rows("identity", "SELECT id FROM tenants WHERE external_id = $1", user_id)
    tenant_id = tenant["id"]
    key = system.bus.call(
        identity.CREATE_API_KEY, identity.CreateApiKey(tenant_id=tenant_id, name="agent")
    ).key
    assert key is not None
    put_settings(system, key, timezone="Europe/Paris", hours=WHOLE_DAY)
    user, password = f"gone{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    radicale_calendar(system, user, password)
    connect_caldav(system, key, user, password)

    [connection] = system.rows(
        "calendars", "SELECT secret FROM connections WHERE tenant_id = $1", tenant_id
    )
    sealed = bytes(connection["secret"])
    assert sealed.hex().encode() in system.dump("calendars", "--data-only")
    first = syncs(system, tenant_id)
    eventually(lambda: syncs(system, tenant_id) > first + 1, "the scheduled sync runs each second")

    deleted = post_clerk(system, "user.deleted", {"deleted": True, "id": user_id, "object": "user"})
    assert deleted.status_code == 200, deleted.text

    eventually(
        lambda: not any(tenant_rows(system, tenant_id).values()),
        "calendars removed the deleted tenant's connection, calendars and events",
    )
    [owner] = system.rows("calendars", "SELECT deleted FROM owners WHERE tenant_id = $1", tenant_id)
    assert owner["deleted"]
    data = system.dump("calendars", "--data-only")
    assert sealed.hex().encode() not in data and password.encode() not in data

    # no sync runs for it any more (while the loop goes on every second)
    after = syncs(system, tenant_id)
    time.sleep(4)
    assert syncs(system, tenant_id) == after

    # billing ended the tenant: no reservation for it any more
    def billing_ended() -> bool:
        rows = system.rows(
            "billing", "SELECT deleted_at FROM tenants WHERE tenant_id = $1", tenant_id
        )
        return bool(rows) and rows[0]["deleted_at"] is not None

    eventually(billing_ended, "billing marked the tenant deleted")
