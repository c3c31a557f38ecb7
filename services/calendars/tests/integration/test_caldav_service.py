"""The calendars service as a process against real Radicale, NATS and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from calendars_harness import StartCalendars, connect_caldav, make_calendar, put_ics

from contracts import calendars as msg
from cortex_dev.embedded import Radicale, free_port
from cortex_dev.pytest_plugin import CaldavAccount
from cortex_runtime.client import RpcClient
from cortex_runtime.errors import ServiceError

pytestmark = pytest.mark.integration

TENANT = "tn_caldav_test"


@pytest.fixture
def rpc(start_calendars: StartCalendars, calendars_rpc: RpcClient) -> RpcClient:
    start_calendars()
    return calendars_rpc


def weekly_ics(first: datetime) -> str:
    """Mondays 10:00-11:00 Berlin; one EXDATE, one occurrence moved to Tuesday 15:00."""
    day = first.strftime("%Y%m%d")
    exdate = (first + timedelta(days=7)).strftime("%Y%m%d")
    moved = (first + timedelta(days=14)).strftime("%Y%m%d")
    moved_to = (first + timedelta(days=15)).strftime("%Y%m%d")
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID=Europe/Berlin:{day}T100000\r\nDTEND;TZID=Europe/Berlin:{day}T110000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=4\r\n"
        f"EXDATE;TZID=Europe/Berlin:{exdate}T100000\r\nSUMMARY:Team Standup\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20260101T000000Z\r\n"
        f"RECURRENCE-ID;TZID=Europe/Berlin:{moved}T100000\r\n"
        f"DTSTART;TZID=Europe/Berlin:{moved_to}T150000\r\nDTEND;TZID=Europe/Berlin:{moved_to}T160000\r\n"
        "SUMMARY:Team Standup (moved)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def berlin(day: datetime, hour: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(
        day.year, day.month, day.day, hour, tzinfo=ZoneInfo("Europe/Berlin")
    ).astimezone(UTC)


async def test_wrong_password_is_400_and_stores_nothing(
    rpc: RpcClient, caldav_account: CaldavAccount, calendars_db: str
) -> None:
    await make_calendar(caldav_account)
    with pytest.raises(ServiceError) as refused:
        await rpc.call(
            msg.CONNECT_CALDAV,
            msg.ConnectCaldav(
                tenant_id=TENANT,
                server_url=caldav_account.url,
                username=caldav_account.username,
                password="wrong",
            ),
        )
    assert refused.value.code == "credentials_rejected"
    conn = await asyncpg.connect(calendars_db.replace("+asyncpg", ""))
    try:
        assert await conn.fetchval("SELECT count(*) FROM connections") == 0
    finally:
        await conn.close()


async def test_unreachable_server_is_upstream_error(rpc: RpcClient) -> None:
    with pytest.raises(ServiceError) as failed:
        await rpc.call(
            msg.CONNECT_CALDAV,
            msg.ConnectCaldav(
                tenant_id=TENANT,
                server_url=f"http://127.0.0.1:{free_port()}/",
                username="a",
                password="b",
            ),
        )
    assert failed.value.code == "caldav_unreachable"


async def test_connect_sync_recurrence_and_booking_events(
    rpc: RpcClient, caldav_account: CaldavAccount, calendars_db: str
) -> None:
    calendar_url = await make_calendar(caldav_account)
    today = datetime.now(UTC)
    first_monday = today + timedelta(days=(7 - today.weekday()) % 7 + 7)
    await put_ics(caldav_account, calendar_url, "weekly", weekly_ics(first_monday))

    connected = await connect_caldav(rpc, TENANT, caldav_account)
    info = connected.connection
    assert info.provider is msg.Provider.CALDAV and info.status is msg.ConnectionStatus.OK
    assert [c.name for c in info.calendars] == ["work"] and info.calendars[0].receives_bookings

    window_start = first_monday.replace(hour=0, minute=0, second=0, microsecond=0)
    window_end = window_start + timedelta(days=28)
    busy = await rpc.call(
        msg.GET_FREE_BUSY, msg.GetFreeBusy(tenant_id=TENANT, start=window_start, end=window_end)
    )
    got = [(b.start, b.end) for b in busy.busy]
    week = timedelta(days=7)
    moved_day = first_monday + 2 * week + timedelta(days=1)  # the third, moved to Tuesday
    expected = [
        (berlin(first_monday, 10), berlin(first_monday, 11)),
        (berlin(moved_day, 15), berlin(moved_day, 16)),
        (berlin(first_monday + 3 * week, 10), berlin(first_monday + 3 * week, 11)),
    ]
    assert got == expected
    assert busy.unknown == [] and all(s.known for s in busy.sources)

    # the booking's event, written twice, is one event on the server
    start, end = (
        berlin(first_monday + timedelta(days=3), 9),
        berlin(first_monday + timedelta(days=3), 10),
    )
    for _ in range(2):
        written = await rpc.call(
            msg.WRITE_BOOKING_EVENT,
            msg.WriteBookingEvent(
                tenant_id=TENANT,
                booking_id="bk_test1",
                start=start,
                end=end,
                summary="Intro call",
                attendee_email="bob@example.com",
            ),
        )
        assert written.uid == "bk_test1"
    async with httpx.AsyncClient(auth=(caldav_account.username, caldav_account.password)) as client:
        listing = await client.request("PROPFIND", calendar_url, headers={"Depth": "1"})
    assert listing.text.count("bk_test1") == 1

    # a live check sees the new event through sync-collection
    live = await rpc.call(
        msg.GET_FREE_BUSY,
        msg.GetFreeBusy(tenant_id=TENANT, start=start - timedelta(hours=1), end=end, live=True),
    )
    assert [(b.start, b.end) for b in live.busy] == [(start, end)]

    deleted = await rpc.call(
        msg.DELETE_BOOKING_EVENT, msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_test1")
    )
    assert deleted.deleted
    async with httpx.AsyncClient(auth=(caldav_account.username, caldav_account.password)) as client:
        listing = await client.request("PROPFIND", calendar_url, headers={"Depth": "1"})
    assert "bk_test1" not in listing.text
    after = await rpc.call(
        msg.GET_FREE_BUSY,
        msg.GetFreeBusy(tenant_id=TENANT, start=start - timedelta(hours=1), end=end, live=True),
    )
    assert after.busy == []

    # a write whose record was lost (the database went away right after the provider wrote):
    # the compensating delete still finds the event by its UID
    await rpc.call(
        msg.WRITE_BOOKING_EVENT,
        msg.WriteBookingEvent(
            tenant_id=TENANT, booking_id="bk_lost", start=start, end=end, summary="Lost record"
        ),
    )
    conn = await asyncpg.connect(calendars_db.replace("+asyncpg", ""))
    try:
        await conn.execute("DELETE FROM booking_events WHERE booking_id = 'bk_lost'")
    finally:
        await conn.close()
    await rpc.call(
        msg.DELETE_BOOKING_EVENT, msg.DeleteBookingEvent(tenant_id=TENANT, booking_id="bk_lost")
    )
    async with httpx.AsyncClient(auth=(caldav_account.username, caldav_account.password)) as client:
        listing = await client.request("PROPFIND", calendar_url, headers={"Depth": "1"})
    assert "bk_lost" not in listing.text

    # secrets at rest: the password is nowhere in the database in clear
    conn = await asyncpg.connect(calendars_db.replace("+asyncpg", ""))
    try:
        dump = "\n".join(str(tuple(r)) for r in await conn.fetch("SELECT * FROM connections"))
    finally:
        await conn.close()
    assert caldav_account.password not in dump and caldav_account.username in dump

    # a second CalDAV connection is refused; disconnecting removes events and secrets
    with pytest.raises(ServiceError) as twice:
        await connect_caldav(rpc, TENANT, caldav_account)
    assert twice.value.code == "already_connected"
    await rpc.call(msg.DISCONNECT, msg.Disconnect(tenant_id=TENANT, provider="caldav"))
    conn = await asyncpg.connect(calendars_db.replace("+asyncpg", ""))
    try:
        for table in ("connections", "calendars", "events"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
    finally:
        await conn.close()


async def test_free_busy_is_unknown_when_the_server_is_down(
    rpc: RpcClient, tmp_path: object
) -> None:
    from pathlib import Path

    server = Radicale(Path(str(tmp_path)) / "rad", free_port()).start()
    try:
        server.add_user("carol", "pw")
        account = CaldavAccount(server.url, "carol", "pw")
        await make_calendar(account)
        await rpc.call(
            msg.CONNECT_CALDAV,
            msg.ConnectCaldav(
                tenant_id="tn_down", server_url=server.url, username="carol", password="pw"
            ),
        )
    finally:
        server.stop()
    now = datetime.now(UTC)
    answer = await rpc.call(
        msg.GET_FREE_BUSY,
        msg.GetFreeBusy(tenant_id="tn_down", start=now, end=now + timedelta(hours=8), live=True),
    )
    assert [s.known for s in answer.sources] == [False]
    assert answer.sources[0].status is msg.ConnectionStatus.ERROR
    assert [(u.start, u.end) for u in answer.unknown] == [(now, now + timedelta(hours=8))]
    listed = await rpc.call(msg.LIST_CONNECTIONS, msg.ListConnections(tenant_id="tn_down"))
    assert listed.connections[0].status is msg.ConnectionStatus.ERROR
    assert listed.connections[0].status_reason


async def test_ssrf_refused_through_the_service(rpc: RpcClient) -> None:
    for url in ("http://169.254.169.254/latest/", "http://10.0.0.1/dav/", "file:///etc/passwd"):
        with pytest.raises(ServiceError) as refused:
            await rpc.call(
                msg.CONNECT_CALDAV,
                msg.ConnectCaldav(tenant_id=TENANT, server_url=url, username="a", password="b"),
            )
        assert refused.value.code == "url_refused", url
