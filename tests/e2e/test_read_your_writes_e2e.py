"""Read-your-writes across services: once a change of an owner is answered 200, the next
availability and booking for that owner reflect it, through any gateway and any booking
replica, with no sleep in between.

Two gateways and two booking replicas; each change goes through one gateway and the read
right after it through the other. Settings reach booking's projection through identity's
events and calendar changes reach booking's free/busy cache through calendars' events;
both arrive milliseconds after the change was answered, which is what this test would see
without the gateway's hand-over (docs/gateway.md, "Read-your-writes").
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from tests.e2e.harness import (
    Owner,
    System,
    SystemOptions,
    connect_caldav,
    floating_event,
    get_availability,
    holds,
    new_owner,
    put_event,
    put_setting,
    utc_event,
    vcalendar,
    working_hours,
)

pytestmark = pytest.mark.e2e

ROUNDS = 200
CALENDAR_ROUNDS = 12


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(replicas={"gateway": 2, "booking": 2})


def open_owner(system: System) -> Owner:
    """An owner with an open page and no notice, everything else as a new tenant has it
    (its Radicale calendar is not connected); the two settings through different gateways."""
    owner = new_owner(system, "ryw")
    put_setting(system.gateways[0], owner.key, "booking-rules", {"min_notice_hours": 0})
    put_setting(system.gateways[1], owner.key, "open-scheduling", {"enabled": True})
    return owner


def first_start(response: httpx.Response) -> datetime:
    assert response.status_code == 200, response.text
    slots = response.json()["slots"]
    assert slots, response.text
    return datetime.fromisoformat(slots[0]["start"])


def test_every_read_after_a_settings_change_sees_it(system: System) -> None:
    owner = open_owner(system)
    slug = owner.slug
    day = (datetime.now(UTC) + timedelta(days=5)).date()
    zones = ("Europe/Paris", "America/New_York", "Asia/Tokyo")
    stale: list[str] = []
    for i in range(ROUNDS):
        write, read = system.gateways[i % 2], system.gateways[(i + 1) % 2]
        kind = i % 5
        if kind == 0:  # the owner's zone: availability answers in it by default
            zone = zones[i % 3]
            put_setting(write, owner.key, "timezone", {"timezone": zone})
            got = get_availability(read, slug, day)
            if got.status_code != 200 or got.json()["timezone"] != zone:
                stale.append(f"round {i}: zone {zone}, read {got.status_code} {got.text[:120]}")
        elif kind == 1:  # working hours: the day's first window opens when the new hours do
            start = ("07:00", "13:00")[i % 2]
            put_setting(write, owner.key, "working-hours", working_hours(start, "18:00"))
            got = get_availability(read, slug, day)  # in the owner's zone
            if got.status_code != 200 or first_start(got).strftime("%H:%M") != start:
                stale.append(f"round {i}: hours from {start}, read {got.text[:160]}")
        elif kind == 2:  # the default duration
            minutes = (30, 45)[i % 2]
            put_setting(write, owner.key, "booking-rules", {"default_duration_minutes": minutes})
            got = get_availability(read, slug, day)
            if got.status_code != 200 or got.json()["duration"] != minutes:
                stale.append(f"round {i}: duration {minutes}, read {got.text[:120]}")
        elif kind == 3:  # the page closes and reopens
            put_setting(write, owner.key, "open-scheduling", {"enabled": False})
            closed = get_availability(read, slug, day)
            put_setting(read, owner.key, "open-scheduling", {"enabled": True})
            opened = get_availability(write, slug, day)
            if (closed.status_code, opened.status_code) != (404, 200):
                stale.append(f"round {i}: closed {closed.status_code}, open {opened.status_code}")
        else:  # the slug moves: the new one answers, the old one is gone
            new_slug = f"ryw-{uuid.uuid4().hex[:8]}"
            put_setting(write, owner.key, "slug", {"slug": new_slug})
            new, old = get_availability(read, new_slug, day), get_availability(read, slug, day)
            if (new.status_code, old.status_code) != (200, 404):
                stale.append(f"round {i}: new slug {new.status_code}, old {old.status_code}")
            slug = new_slug
    assert not stale, f"{len(stale)} of {ROUNDS} reads saw the state before the change: {stale}"


def test_a_booking_right_after_a_change_obeys_it(system: System) -> None:
    owner = open_owner(system)
    day = (datetime.now(UTC) + timedelta(days=6)).date()
    put_setting(system.gateways[0], owner.key, "timezone", {"timezone": "UTC"})
    wrong: list[str] = []
    for i in range(10):
        write, read = system.gateways[i % 2], system.gateways[(i + 1) % 2]
        start_hour = 8 + i  # each round moves the working day later; book its first hour
        put_setting(
            write, owner.key, "working-hours", working_hours(f"{start_hour:02d}:00", "23:00")
        )
        before = datetime(day.year, day.month, day.day, start_hour - 1, tzinfo=UTC)
        body = {
            "title": "Right after the change",
            "attendee_email": f"guest{i}@example.com",
            "start": before.isoformat(),
            "end": (before + timedelta(minutes=30)).isoformat(),
        }
        refused = httpx.post(f"{read}/public/{owner.slug}/book", json=body, timeout=30)
        if refused.status_code != 400 or refused.json().get("code") != "outside_working_hours":
            wrong.append(f"round {i}: the hour before the new hours answered {refused.text[:160]}")
    assert not wrong, wrong


def _caldav_owner(
    system: System, owner: Owner, day: date, *, floating: bool = False
) -> tuple[str, str]:
    """One event on ``day`` in ``owner``'s Radicale calendar: 10:00-11:00 UTC, or
    09:00-10:00 floating (the owner's local time, wherever that is); the account."""
    uid = f"busy-{owner.slug}"
    event = (
        floating_event(uid, day, "0900", "1000", "Busy")
        if floating
        else utc_event(uid, day, "1000", "1100", "Busy")
    )
    put_event(owner, "busy", vcalendar(event))
    return owner.user, owner.password


def _ten_is_free(gateway: str, slug: str, day: date) -> bool:
    got = get_availability(gateway, slug, day, timezone="UTC", duration="60")
    assert got.status_code == 200, got.text
    ten = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    return holds(got.json()["slots"], ten, ten + timedelta(hours=1))


def test_every_read_after_a_calendar_change_sees_it(system: System) -> None:
    owner = open_owner(system)
    day = (datetime.now(UTC) + timedelta(days=4)).date()
    gw = system.gateways
    put_setting(gw[0], owner.key, "timezone", {"timezone": "UTC"})
    put_setting(gw[1], owner.key, "working-hours", working_hours("08:00", "18:00"))
    user, password = _caldav_owner(system, owner, day)
    stale: list[str] = []
    for i in range(CALENDAR_ROUNDS):
        write, read = gw[i % 2], gw[(i + 1) % 2]
        # warm every replica's cache with "free at 10:00" before the change
        for gateway in gw * 2:
            assert _ten_is_free(gateway, owner.slug, day)
        connected = connect_caldav(system, owner.key, user, password, gateway=write)
        if _ten_is_free(read, owner.slug, day):
            stale.append(f"round {i}: free at 10:00 right after connecting")
        calendar = connected["calendars"][0]["id"]
        chosen = httpx.put(
            f"{read}/api/v1/calendars/calendars/{calendar}",
            json={"contributes_to_availability": False}, headers=owner.auth, timeout=30,
        )  # fmt: skip
        assert chosen.status_code == 200, chosen.text
        if not _ten_is_free(write, owner.slug, day):
            stale.append(f"round {i}: busy at 10:00 right after leaving the calendar out")
        chosen = httpx.put(
            f"{write}/api/v1/calendars/calendars/{calendar}",
            json={"contributes_to_availability": True}, headers=owner.auth, timeout=30,
        )  # fmt: skip
        assert chosen.status_code == 200, chosen.text
        if _ten_is_free(read, owner.slug, day):
            stale.append(f"round {i}: free at 10:00 right after counting the calendar again")
        gone = httpx.delete(f"{read}/api/v1/calendars/caldav", headers=owner.auth, timeout=30)
        assert gone.status_code == 200, gone.text
        if not _ten_is_free(write, owner.slug, day):
            stale.append(f"round {i}: busy at 10:00 right after disconnecting")
    assert not stale, stale


def test_a_zone_change_places_floating_events_before_it_is_answered(system: System) -> None:
    """A floating 09:00-10:00 event is 09:00-10:00 in whatever zone the owner is in: the
    read right after a zone change finds 09:00 busy in the new zone (calendars re-placed the
    event, booking dropped the free/busy answers cached under the old zone)."""
    owner = open_owner(system)
    day = (datetime.now(UTC) + timedelta(days=7)).date()
    gw = system.gateways
    put_setting(gw[0], owner.key, "working-hours", working_hours("06:00", "20:00"))
    user, password = _caldav_owner(system, owner, day, floating=True)
    connect_caldav(system, owner.key, user, password, gateway=gw[1])
    zones = ("Europe/Paris", "Asia/Tokyo", "America/New_York", "Australia/Sydney")
    stale: list[str] = []
    for i in range(16):
        write, read = gw[i % 2], gw[(i + 1) % 2]
        zone = zones[i % len(zones)]
        get_availability(read, owner.slug, day)  # cache the answer under the old zone
        put_setting(write, owner.key, "timezone", {"timezone": zone})
        got = get_availability(read, owner.slug, day, duration="60")
        assert got.status_code == 200, got.text
        assert got.json()["timezone"] == zone
        local = [
            (datetime.fromisoformat(s["start"]).strftime("%H:%M"),
             datetime.fromisoformat(s["end"]).strftime("%H:%M"))
            for s in got.json()["slots"]
        ]  # fmt: skip
        if local != [("06:00", "09:00"), ("10:00", "20:00")]:
            stale.append(f"round {i} ({zone}): free {local}")
    assert not stale, stale
