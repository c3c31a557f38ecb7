"""The owner's zone in calendars, end to end on Radicale: an all-day event blocks the owner's
whole local day and a floating-time event its wall-clock hours, also after the owner changes
zone with the calendar already connected (the stored events are placed again)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.harness import (
    WHOLE_DAY,
    Owner,
    System,
    SystemOptions,
    all_day_event,
    availability,
    connect_caldav,
    eventually_equal,
    floating_event,
    future_day,
    make_owner,
    put_event,
    vcalendar,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    # no scheduled sync during the test: a zone change must place the stored events itself
    return SystemOptions(environ={"CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS": "3600"})


Window = tuple[datetime, datetime]


def local(day: date, hour: int, zone: str) -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(zone))


def windows(system: System, owner: Owner, day: date) -> list[Window]:
    answer = availability(system, owner, day)
    zone = ZoneInfo(answer["timezone"])
    found = []
    for slot in answer["slots"]:
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        # the times carry the owner's zone's offset
        assert start.utcoffset() == start.astimezone(zone).utcoffset(), slot
        found.append((start, end))
    return found


def day_without(day: date, zone: str, busy_from: int, busy_to: int) -> list[Window]:
    """The whole local day free (working hours 00:00-23:59) but ``busy_from``-``busy_to``."""
    last = datetime.combine(day, time(23, 59), ZoneInfo(zone))
    return [
        (local(day, 0, zone), local(day, busy_from, zone)),
        (local(day, busy_to, zone), last),
    ]


def test_all_day_and_floating_events_follow_the_owner_and_a_zone_change(system: System) -> None:
    owner = make_owner(system, timezone="America/New_York", hours=WHOLE_DAY, connect=False)
    day = future_day(5)
    after = day + timedelta(days=1)
    put_event(owner, "offsite", vcalendar(all_day_event("offsite", day)))
    put_event(owner, "gym", vcalendar(floating_event("gym", after, "0900", "1000")))
    connect_caldav(system, owner.key, owner.user, owner.password)

    # New York: the all-day event is the whole local day (not 00:00-24:00 UTC, which left
    # the evening free), the floating 09:00 is 09:00 there (not 04:00)
    def seen() -> tuple[list[Window], list[Window]]:
        return windows(system, owner, day), windows(system, owner, after)

    new_york = ([], day_without(after, "America/New_York", 9, 10))
    eventually_equal(seen, new_york, "the events are read in New York time")

    # the owner moves to Tokyo after connecting: the same events, Tokyo's day and hours
    moved = httpx.put(
        f"{system.gateway}/api/v1/settings/timezone",
        json={"timezone": "Asia/Tokyo"},
        headers=owner.auth,
        timeout=15,
    )
    assert moved.status_code == 200, moved.text

    tokyo = ([], day_without(after, "Asia/Tokyo", 9, 10))
    eventually_equal(seen, tokyo, "the stored events are placed again in Tokyo time")
    [owner_row] = system.rows(
        "calendars", "SELECT timezone FROM owners WHERE tenant_id = $1", owner.tenant_id
    )
    assert owner_row["timezone"] == "Asia/Tokyo"
