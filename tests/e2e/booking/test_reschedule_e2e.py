"""Reschedule and the attendee's manage link end to end: two gateways, two booking replicas,
Radicale as the owner's calendar. Each move is checked on Radicale: one event, the same UID,
at the new times."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.harness import (
    Owner,
    System,
    SystemOptions,
    at,
    book,
    eventually,
    future_day,
    make_owner,
    radicale_uids,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        replicas={"gateway": 2, "booking": 2},
        environ={
            "CORTEX_GATEWAY_RATE_BOOK_PER_HOUR": "1000",  # the storm books 50 times
            "CORTEX_BILLING_PLAN_OVERRIDES": '{"starter": {"bookings_per_month_individual": null}}',
        },
    )


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event_start(owner: Owner, uid: str) -> datetime:
    """The DTSTART (UTC) of the event ``uid`` in the owner's Radicale calendar."""
    ics = httpx.get(f"{owner.calendar_url}{uid}.ics", auth=(owner.user, owner.password)).text
    found = re.search(r"DTSTART[^:\r\n]*:(\d{8}T\d{6}Z?)", ics)
    assert found, ics
    text = found.group(1)
    assert text.endswith("Z"), ics  # booking events are written in UTC
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def booked(system: System, owner: Owner, start: datetime, minutes: int = 30) -> dict[str, object]:
    created = book(system.gateways[0], owner, start, start + timedelta(minutes=minutes))
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


def reschedule(
    system: System, owner: Owner, booking_id: object, start: datetime, **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{system.gateways[1]}/api/v1/bookings/{booking_id}/reschedule",
        json={"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()},
        headers={**owner.auth, **headers},
        timeout=60,
    )


def test_the_owner_moves_a_booking_and_its_one_event_moves_on_radicale(system: System) -> None:
    owner = make_owner(system)
    day = future_day(4)
    made = booked(system, owner, at(day, 10))
    booking_id = str(made["booking_id"])
    assert str(made["manage_url"]).startswith(f"/public/{owner.slug}/bookings/{booking_id}/manage/")
    moved = reschedule(system, owner, booking_id, at(day, 14), **{"Idempotency-Key": "mv-1"})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["booking_id"], body["status"], body["start"]) == (
        booking_id,
        "confirmed",
        _z(at(day, 14)),
    )
    assert [(h["start"], h["by"]) for h in body["history"]] == [(_z(at(day, 10)), "owner")]
    assert radicale_uids(owner) == [booking_id]  # one event, the same UID
    assert event_start(owner, booking_id) == at(day, 14)
    detail = httpx.get(f"{system.gateway}/api/v1/bookings/{booking_id}", headers=owner.auth)
    assert detail.json()["history"] == body["history"]
    # the same key and body: the same answer; the same key, another body: refused
    again = reschedule(system, owner, booking_id, at(day, 14), **{"Idempotency-Key": "mv-1"})
    assert (again.status_code, again.json()["start"]) == (200, body["start"])
    reused = reschedule(system, owner, booking_id, at(day, 15), **{"Idempotency-Key": "mv-1"})
    assert reused.status_code == 409, reused.text
    # the old slot is free again at once, the new one taken
    assert book(system.gateway, owner, at(day, 10), at(day, 10, 30)).status_code == 201
    taken = book(system.gateway, owner, at(day, 14), at(day, 14, 30))
    assert taken.status_code == 409, taken.text

    # the activity feed shows the move
    def shown() -> list[dict[str, object]] | None:
        feed = httpx.get(f"{system.gateway}/api/v1/activity", headers=owner.auth).json()
        return [i for i in feed["items"] if i["type"] == "booking.rescheduled"] or None

    items = eventually(shown, "booking.rescheduled in the activity feed")
    assert items is not None
    assert [i["ids"] for i in items] == [{"booking_id": booking_id}]


def test_a_taken_slot_is_409_with_the_details_of_a_booking_conflict(system: System) -> None:
    owner = make_owner(system)
    day = future_day(5)
    mine = booked(system, owner, at(day, 9))
    booked(system, owner, at(day, 11))
    refused = reschedule(system, owner, mine["booking_id"], at(day, 11))
    assert refused.status_code == 409, refused.text
    error = refused.json()  # a booking conflict's body: error, code, conflict, next_slots
    assert error["code"] == "slot_unavailable"
    assert error["conflict"]["start"].startswith(f"{day.isoformat()}T11:00")
    assert error["next_slots"]
    assert event_start(owner, str(mine["booking_id"])) == at(day, 9)


def test_the_attendee_reschedules_and_cancels_through_the_manage_link(system: System) -> None:
    owner = make_owner(system)
    day = future_day(6)
    made = booked(system, owner, at(day, 9))
    booking_id = str(made["booking_id"])
    link = f"{system.gateway}{made['manage_url']}"
    status = httpx.get(f"{system.gateways[1]}/public/{owner.slug}/bookings/{booking_id}")
    assert status.json()["manage_url"] == made["manage_url"]  # derivable by any replica
    assert httpx.get(link).json()["booking_id"] == booking_id
    moved = httpx.post(
        f"{link}/reschedule",
        json={"start": at(day, 15).isoformat(), "end": at(day, 15, 30).isoformat()},
        timeout=60,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == _z(at(day, 15))
    assert radicale_uids(owner) == [booking_id]
    assert event_start(owner, booking_id) == at(day, 15)
    cancelled = httpx.post(f"{link}/cancel", json={"reason": "Cannot make it"}, timeout=60)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert radicale_uids(owner) == []


def test_a_wrong_or_foreign_token_is_404_like_an_unknown_booking(system: System) -> None:
    owner = make_owner(system)
    day = future_day(7)
    first = booked(system, owner, at(day, 9))
    second = booked(system, owner, at(day, 10))
    first_token = str(first["manage_url"]).rsplit("/", 1)[1]
    wrong = [
        f"/public/{owner.slug}/bookings/{first['booking_id']}/manage/{'0' * 64}",
        f"/public/{owner.slug}/bookings/{second['booking_id']}/manage/{first_token}",
        f"/public/{owner.slug}/bookings/bk_{uuid.uuid4().hex[:20]}/manage/{first_token}",
    ]
    for path in wrong:
        for method, suffix in (("GET", ""), ("POST", "/cancel")):
            answer = httpx.request(method, f"{system.gateway}{path}{suffix}", timeout=30)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["code"] == "booking_not_found"
    assert httpx.get(f"{system.gateway}{first['manage_url']}").status_code == 200


def test_min_notice_refuses_the_attendees_changes(system: System) -> None:
    owner = make_owner(system, hours=("00:00", "23:59"), min_notice_hours=2)
    soon = (datetime.now(UTC) + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    made = booked(system, owner, soon)
    owner_rules = {"min_notice_hours": 48}
    response = httpx.put(
        f"{system.gateway}/api/v1/settings/booking-rules", json=owner_rules, headers=owner.auth
    )
    assert response.status_code == 200, response.text
    link = f"{system.gateway}{made['manage_url']}"
    later = soon + timedelta(days=5)
    for answer in (
        httpx.post(
            f"{link}/reschedule",
            json={"start": later.isoformat(), "end": (later + timedelta(minutes=30)).isoformat()},
        ),
        httpx.post(f"{link}/cancel"),
    ):
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["code"] == "too_soon"
    assert httpx.get(link).json()["status"] == "confirmed"


def test_a_storm_of_fifty_reschedules_into_one_slot_moves_one(system: System) -> None:
    owner = make_owner(system, hours=("06:00", "22:00"))
    day = future_day(8)
    made = [booked(system, owner, at(day, 6) + timedelta(minutes=15 * i), 15) for i in range(50)]
    target = at(day, 20)

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:

            async def one(i: int) -> httpx.Response:
                return await client.post(
                    f"{system.gateways[i % 2]}/api/v1/bookings/{made[i]['booking_id']}/reschedule",
                    json={
                        "start": target.isoformat(),
                        "end": (target + timedelta(minutes=15)).isoformat(),
                    },
                    headers=owner.auth,
                )

            return await asyncio.gather(*(one(i) for i in range(50)))

    answers = asyncio.run(storm())
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 49, [a.text for a in answers if a.status_code != 409]
    winner = next(a.json()["booking_id"] for a in answers if a.status_code == 200)
    assert sorted(radicale_uids(owner)) == sorted(str(m["booking_id"]) for m in made)
    for i, m in enumerate(made):
        start = target if m["booking_id"] == winner else at(day, 6) + timedelta(minutes=15 * i)
        assert event_start(owner, str(m["booking_id"])) == start, m["booking_id"]
        detail = httpx.get(
            f"{system.gateway}/api/v1/bookings/{m['booking_id']}", headers=owner.auth
        ).json()
        assert detail["start"] == _z(start)
