"""Floating and all-day events are read in the owner's zone, which calendars learns from
identity's events (in version order), and placed again when the owner changes zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from calendars_harness import (
    StartCalendars,
    connect_caldav,
    make_calendar,
    owner_settings,
    put_ics,
)

from contracts import calendars as msg
from contracts import identity
from cortex_dev.pytest_plugin import CaldavAccount, eventually, publish_events
from cortex_runtime.client import RpcClient

pytestmark = pytest.mark.integration

DAY = (datetime.now(UTC) + timedelta(days=10)).date()


def ics(body: str) -> str:
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n"


def all_day(uid: str, day: date) -> str:
    return ics(
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;VALUE=DATE:{day:%Y%m%d}\r\nDTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}\r\n"
        "SUMMARY:Offsite\r\nEND:VEVENT\r\n"
    )


def floating(uid: str, day: date, hour: int) -> str:
    return ics(
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{day:%Y%m%d}T{hour:02d}0000\r\nDTEND:{day:%Y%m%d}T{hour + 1:02d}0000\r\n"
        "SUMMARY:Breakfast\r\nEND:VEVENT\r\n"
    )


def zoned(uid: str, day: date) -> str:
    return ics(
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{day:%Y%m%d}T150000Z\r\nDTEND:{day:%Y%m%d}T160000Z\r\n"
        "SUMMARY:Call\r\nEND:VEVENT\r\n"
    )


def local(day: date, hour: int, zone: str) -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(zone)).astimezone(UTC)


def expected(zone: str) -> list[tuple[datetime, datetime]]:
    """The all-day event on DAY, the floating 09:00-10:00 on DAY+1, the 15:00Z call on DAY+2."""
    after = DAY + timedelta(days=1)
    return sorted(
        [
            (local(DAY, 0, zone), local(after, 0, zone)),
            (local(after, 9, zone), local(after, 10, zone)),
            (
                datetime.combine(DAY + timedelta(days=2), time(15), UTC),
                datetime.combine(DAY + timedelta(days=2), time(16), UTC),
            ),
        ]
    )


async def busy(rpc: RpcClient, tenant: str, live: bool = False) -> list[tuple[datetime, datetime]]:
    start = datetime.combine(DAY - timedelta(days=1), time(), UTC)
    answer = await rpc.call(
        msg.GET_FREE_BUSY,
        msg.GetFreeBusy(tenant_id=tenant, start=start, end=start + timedelta(days=5), live=live),
    )
    return [(b.start, b.end) for b in answer.busy]


async def test_floating_and_all_day_events_follow_the_owners_zone(
    start_calendars: StartCalendars,
    calendars_rpc: RpcClient,
    nats_url: str,
    caldav_account: CaldavAccount,
) -> None:
    start_calendars()
    tenant = "tn_zone_owner"
    await publish_events(
        nats_url,
        (
            identity.TENANT_CREATED,
            identity.TenantCreated(
                tenant_id=tenant, settings=owner_settings(tenant, "America/New_York", 1)
            ),
        ),
    )
    calendar_url = await make_calendar(caldav_account)
    await put_ics(caldav_account, calendar_url, "offsite", all_day("offsite", DAY))
    await put_ics(
        caldav_account, calendar_url, "breakfast", floating("breakfast", DAY + timedelta(days=1), 9)
    )
    await put_ics(caldav_account, calendar_url, "call", zoned("call", DAY + timedelta(days=2)))

    # the owner's zone may reach calendars after the connection: the events are placed again
    await connect_caldav(calendars_rpc, tenant, caldav_account)

    async def in_zone(zone: str, live: bool = False) -> bool:
        return await busy(calendars_rpc, tenant, live) == expected(zone)

    await eventually(lambda: in_zone("America/New_York"), "read in New York time")
    assert await in_zone("America/New_York", live=True)  # a sync keeps them there

    # the owner moves to Tokyo; a stale event (version 1) arriving later changes nothing
    moved = identity.SettingsChanged(
        tenant_id=tenant, settings=owner_settings(tenant, "Asia/Tokyo", 3), changed=["timezone"]
    )
    stale = identity.SettingsChanged(
        tenant_id=tenant,
        settings=owner_settings(tenant, "America/Los_Angeles", 2),
        changed=["timezone"],
    )
    await publish_events(nats_url, (identity.SETTINGS_CHANGED, moved))
    await eventually(lambda: in_zone("Asia/Tokyo"), "placed again in Tokyo time")
    await publish_events(nats_url, (identity.SETTINGS_CHANGED, stale))
    # a change of the calendar after the move is read in the new zone too
    await put_ics(
        caldav_account, calendar_url, "breakfast", floating("breakfast", DAY + timedelta(days=1), 9)
    )
    assert await in_zone("Asia/Tokyo", live=True)
    await calendars_rpc.call(msg.SYNC_NOW, msg.SyncNow(tenant_id=tenant))
    assert await in_zone("Asia/Tokyo")
