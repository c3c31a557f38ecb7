"""A refused booking tells an agent what to do next (issue 15, errors an agent can act on):
the 409 names the clash (a calendar event on Radicale, or another booking) and offers the
next free slots of the same length, in the owner's zone; each offered slot is one the
availability answer shows, and booking the first one succeeds. What availability shows is
what booking accepts."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.harness import (
    Owner,
    System,
    SystemOptions,
    availability,
    book,
    connect_caldav,
    eventually,
    future_day,
    holds,
    make_owner,
    put_event,
    utc_event,
    vcalendar,
)

pytestmark = pytest.mark.e2e

TOKYO = ZoneInfo("Asia/Tokyo")  # +09:00 all year: 14:00 there is 05:00 UTC


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(replicas={"gateway": 2})


def shown(system: System, owner: Owner, start: datetime, end: datetime) -> bool:
    """Whether the availability answer for the slot's day and length holds the slot."""
    minutes = int((end - start) / timedelta(minutes=1))
    page = availability(system, owner, start.astimezone(TOKYO).date(), duration=minutes)
    return holds(page["slots"], start, end)


def test_a_conflict_names_the_clash_and_offers_slots_booking_accepts(system: System) -> None:
    owner = make_owner(system, timezone="Asia/Tokyo", connect=False)
    day = future_day(4)

    def local(hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO)

    put_event(
        owner, "standup", vcalendar(utc_event("standup", day, "0500", "0530", "Team Standup"))
    )
    connect_caldav(system, owner.key, owner.user, owner.password)
    eventually(
        lambda: not shown(system, owner, local(14), local(14, 30)) or None,
        "the synced standup blocks 14:00-14:30",
    )
    first, second = system.gateways
    assert book(first, owner, local(14, 30), local(15)).status_code == 201

    # 1. a 45-minute request over the standup: the calendar event is named
    refused = book(second, owner, local(14), local(14, 45))
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "slot_unavailable"
    assert body["error"] == "Booking conflict: existing event 'Team Standup' at 14:00-14:30"
    assert body["conflict"] == {
        "start": local(14).isoformat(),
        "end": local(14, 30).isoformat(),
        "summary": "Team Standup",
        "source": "calendar",
    }
    # after the standup comes the booking until 15:00; then 45-minute slots back to back
    assert body["next_slots"] == [
        {"start": local(15).isoformat(), "end": local(15, 45).isoformat()},
        {"start": local(15, 45).isoformat(), "end": local(16, 30).isoformat()},
        {"start": local(16, 30).isoformat(), "end": local(17, 15).isoformat()},
    ]
    offered = [
        (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
        for s in body["next_slots"]
    ]
    assert all(shown(system, owner, a, b) for a, b in offered)
    took = book(first, owner, *offered[0])
    assert took.status_code == 201, took.text


def test_a_conflict_with_another_booking_names_it_and_offers_slots_booking_accepts(
    system: System,
) -> None:
    # no calendar connected: the booking is the only thing that holds the time (a connected
    # calendar would receive its event, and the clash would be that event)
    owner = make_owner(system, timezone="Asia/Tokyo", connect=False)
    day = future_day(5)

    def local(hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TOKYO)

    first, second = system.gateways
    assert book(first, owner, local(14, 30), local(15)).status_code == 201
    refused = book(second, owner, local(14), local(15), attendee_email="other@example.org")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "slot_unavailable"
    assert body["error"] == "Booking conflict: existing booking at 14:30-15:00"
    assert body["conflict"] == {  # no title of another attendee's booking
        "start": local(14, 30).isoformat(),
        "end": local(15).isoformat(),
        "summary": None,
        "source": "booking",
    }
    assert body["next_slots"] == [
        {"start": local(15).isoformat(), "end": local(16).isoformat()},
        {"start": local(16).isoformat(), "end": local(17).isoformat()},
        {"start": local(17).isoformat(), "end": local(18).isoformat()},
    ]
    offered = [
        (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
        for s in body["next_slots"]
    ]
    assert all(shown(system, owner, a, b) for a, b in offered)
    took = book(first, owner, *offered[0], attendee_email="other@example.org")
    assert took.status_code == 201, took.text
    # the slot just taken is not offered again
    again = book(second, owner, local(14), local(15), attendee_email="third@example.org")
    assert again.status_code == 409, again.text
    assert again.json()["next_slots"][0] == {
        "start": local(16).isoformat(),
        "end": local(17).isoformat(),
    }


def test_the_openapi_documents_the_conflict_fields(system: System) -> None:
    spec = httpx.get(f"{system.gateway}/openapi.json").json()
    book_409 = spec["paths"]["/public/{slug}/book"]["post"]["responses"]["409"]
    assert book_409["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    properties = spec["components"]["schemas"]["ErrorBody"]["properties"]
    assert {"conflict", "next_slots", "retry_after_seconds"} <= set(properties)
