"""A deleted tenant (identity's tenant_deleted): calendars forgets its credentials, calendars
and events at once, and syncs nothing of it again."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from calendars_harness import (
    StartCalendars,
    connect_caldav,
    make_calendar,
    put_ics,
)

from contracts import calendars as msg
from contracts import identity
from cortex_dev.embedded import Radicale
from cortex_dev.pytest_plugin import CaldavAccount, eventually, publish_events, query
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = pytest.mark.integration

GONE, STAYS = "tn_deleted_owner", "tn_staying_owner"
TENANT_TABLES = ("connections", "calendars", "events", "oauth_states", "booking_events")


def busy_ics(start: datetime) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:busy\r\n"
        f"DTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\n"
        f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\nSUMMARY:Busy\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )


async def syncs(db: str, tenant: str) -> int:
    """How many syncs of the tenant's connections finished (each announces calendar_synced)."""
    rows = await query(
        db, "SELECT payload FROM outbox WHERE subject = $1", msg.CALENDAR_SYNCED.subject
    )
    return sum(1 for r in rows if json.loads(bytes(r["payload"]))["tenant_id"] == tenant)


async def tenant_rows(db: str, tenant: str) -> dict[str, int]:
    counts = {}
    for table in TENANT_TABLES:
        rows = await query(db, f"SELECT count(*) AS n FROM {table} WHERE tenant_id = $1", tenant)
        counts[table] = int(rows[0]["n"])
    return counts


async def test_a_deleted_tenant_keeps_no_secret_and_is_never_synced_again(
    start_calendars: StartCalendars,
    calendars_rpc: RpcClient,
    calendars_db: str,
    radicale_server: Radicale,
    caldav_account: CaldavAccount,
    nats_url: str,
) -> None:
    start_calendars(CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS="1")
    other = CaldavAccount(caldav_account.url, f"{caldav_account.username}b", "pw-b")
    radicale_server.add_user(other.username, other.password)
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    for tenant, account in ((GONE, caldav_account), (STAYS, other)):
        calendar_url = await make_calendar(account)
        await put_ics(account, calendar_url, "busy", busy_ics(soon))
        await connect_caldav(calendars_rpc, tenant, account)
    await calendars_rpc.call(
        msg.WRITE_BOOKING_EVENT,
        msg.WriteBookingEvent(
            tenant_id=GONE,
            booking_id="bk_gone",
            start=soon + timedelta(hours=2),
            end=soon + timedelta(hours=3),
            summary="Intro",
        ),
    )
    started = await calendars_rpc.call(
        msg.START_OAUTH,
        msg.StartOAuth(tenant_id=GONE, provider="google", redirect_uri="http://127.0.0.1:9/cb"),
    )
    before = await tenant_rows(calendars_db, GONE)
    assert all(before.values()), before
    first = await syncs(calendars_db, GONE)
    await eventually(
        lambda: _more(calendars_db, GONE, first), "the scheduled sync runs every second"
    )

    await publish_events(
        nats_url,
        (
            identity.TENANT_DELETED,
            identity.TenantDeleted(tenant_id=GONE, deleted_tenant_id=GONE, settings_version=7),
        ),
    )

    async def forgotten() -> bool:
        return not any((await tenant_rows(calendars_db, GONE)).values())

    await eventually(forgotten, "the deleted tenant's rows are gone")
    [owner] = await query(calendars_db, "SELECT * FROM owners WHERE tenant_id = $1", GONE)
    assert owner["deleted"] and owner["settings_version"] == 7
    # nothing in the database holds the tenant's password any more
    for table in ("connections", "oauth_states"):
        dump = "\n".join(str(tuple(r)) for r in await query(calendars_db, f"SELECT * FROM {table}"))
        assert GONE not in dump and caldav_account.password not in dump

    # no sync of it runs again, while the other tenant's go on
    after, others = await syncs(calendars_db, GONE), await syncs(calendars_db, STAYS)
    await asyncio.sleep(3)
    assert await syncs(calendars_db, GONE) == after
    assert await syncs(calendars_db, STAYS) > others

    # an OAuth flow started before the deletion, or a new connection, brings nothing back
    with pytest.raises(ServiceError) as late_oauth:
        await calendars_rpc.call(
            msg.COMPLETE_OAUTH,
            msg.CompleteOAuth(provider="google", code="code", state=started.state),
        )
    assert late_oauth.value.code == "invalid_state"
    with pytest.raises(ServiceError) as late_connect:
        await connect_caldav(calendars_rpc, GONE, caldav_account)
    assert late_connect.value.code == "tenant_deleted"
    assert not any((await tenant_rows(calendars_db, GONE)).values())


async def _more(db: str, tenant: str, than: int) -> bool:
    return await syncs(db, tenant) > than
