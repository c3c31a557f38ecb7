"""Booking end to end: two gateways, two booking replicas, Radicale as the owner's calendar."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from tests.e2e.harness import (
    System,
    SystemOptions,
    at,
    book,
    free_at,
    future_day,
    make_owner,
    put_event,
    radicale_uids,
    utc_event,
    vcalendar,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        replicas={"gateway": 2, "booking": 2},
        # the synced copy goes stale on purpose
        environ={"CORTEX_CALENDARS_SYNC_INTERVAL_SECONDS": "3600"},
    )


def test_availability_book_and_the_event_on_radicale(system: System) -> None:
    owner = make_owner(system)
    gw = system.gateways[0]
    day = future_day()
    slots = httpx.get(
        f"{gw}/public/{owner.slug}/availability", params={"date": day.isoformat(), "duration": 30}
    ).json()
    assert slots["slots"] == [
        {
            "start": at(day, 8).isoformat().replace("+00:00", "Z"),
            "end": at(day, 18).isoformat().replace("+00:00", "Z"),
        }
    ] or slots["slots"][0]["start"].startswith(f"{day.isoformat()}T08:00:00")
    created = book(gw, owner, at(day, 10), at(day, 10, 30))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "confirmed" and body["calendar_event"]["uid"] == body["booking_id"]
    assert body["booking_id"] in radicale_uids(owner)
    after = httpx.get(
        f"{gw}/public/{owner.slug}/availability", params={"date": day.isoformat(), "duration": 30}
    ).json()
    starts_ends = [(s["start"][11:16], s["end"][11:16]) for s in after["slots"]]
    assert starts_ends == [("08:00", "10:00"), ("10:30", "18:00")]


def test_fifty_concurrent_overlapping_bookings_one_winner(system: System) -> None:
    owner = make_owner(system)
    day = future_day(6)

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:

            async def one(i: int) -> httpx.Response:
                start = at(day, 11) + timedelta(minutes=(i % 4) * 5)  # all contain 11:15-11:20
                end = start + timedelta(minutes=20 + (i % 3) * 5)
                body = {"title": f"storm {i}", "start": start.isoformat(), "end": end.isoformat(),
                        "attendee_email": f"g{i}@example.org"}  # fmt: skip
                gw = system.gateways[i % 2]
                return await client.post(f"{gw}/public/{owner.slug}/book", json=body)

            return await asyncio.gather(*(one(i) for i in range(50)))

    responses = asyncio.run(storm())
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 49}, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    assert all(
        r.json()["error"].startswith("Booking conflict") for r in responses if r.status_code == 409
    )
    winner = next(r.json() for r in responses if r.status_code == 201)
    storm_uids = [u for u in radicale_uids(owner) if u.startswith("bk_")]
    assert storm_uids == [winner["booking_id"]]

    [overlaps] = system.rows(
        "booking",
        "SELECT count(*) AS n FROM bookings a JOIN bookings b ON a.tenant_id = b.tenant_id "
        "AND a.id < b.id AND tstzrange(a.start_at, a.occupied_until) && tstzrange(b.start_at, b.occupied_until) "
        "WHERE a.status IN ('held','pending','confirmed') AND b.status IN ('held','pending','confirmed')",
    )  # fmt: skip
    assert overlaps["n"] == 0


def test_adjacent_bookings_and_buffers(system: System) -> None:
    owner = make_owner(system)
    gw = system.gateways[1]
    day = future_day(7)
    assert book(gw, owner, at(day, 9), at(day, 9, 30)).status_code == 201
    assert book(gw, owner, at(day, 9, 30), at(day, 10)).status_code == 201
    buffered = make_owner(system, buffer_minutes=15)
    assert book(gw, buffered, at(day, 9), at(day, 9, 30)).status_code == 201
    too_close = book(gw, buffered, at(day, 9, 40), at(day, 10))
    assert too_close.status_code == 409, too_close.text
    assert book(gw, buffered, at(day, 9, 45), at(day, 10, 15)).status_code == 201


def test_a_stale_synced_copy_is_caught_live_and_named(system: System) -> None:
    owner = make_owner(system)
    gw = system.gateways[0]
    day = future_day(8)
    put_event(
        owner, "board-1", vcalendar(utc_event("board-1", day, "1400", "1430", "Board meeting"))
    )
    # the synced copy does not know it yet: availability still offers 14:00
    assert free_at(system, owner, day, "14:00")
    refused = book(gw, owner, at(day, 14), at(day, 14, 30))
    assert refused.status_code == 409, refused.text
    assert (
        refused.json()["error"] == "Booking conflict: existing event 'Board meeting' at 14:00-14:30"
    )
    assert refused.json()["code"] == "slot_unavailable"


@pytest.mark.parametrize(
    ("start_hour", "end_hour", "code"),
    [(20, 21, "outside_working_hours"), (10, 10, None), (12, 11, None)],
)
def test_slots_availability_would_not_offer_are_400(
    system: System, start_hour: int, end_hour: int, code: str | None
) -> None:
    owner = make_owner(system)
    day = future_day(9)
    response = book(system.gateways[0], owner, at(day, start_hour), at(day, end_hour))
    assert response.status_code == 400, response.text
    if code:
        assert response.json()["code"] == code


def test_too_soon_too_far_unknown_page_and_bad_input(system: System) -> None:
    owner = make_owner(system, min_notice_hours=48, max_advance_days=10)
    gw = system.gateways[0]
    soon = future_day(1)
    assert book(gw, owner, at(soon, 10), at(soon, 11)).json()["code"] == "too_soon"
    far = future_day(20)
    assert book(gw, owner, at(far, 10), at(far, 11)).json()["code"] == "too_far"
    assert (
        httpx.get(
            f"{gw}/public/nobody-here/availability", params={"date": "2030-01-01"}
        ).status_code
        == 404
    )
    assert (
        httpx.get(f"{gw}/public/{owner.slug}/availability", params={"date": "tomorrow"}).status_code
        == 400
    )
    bad_tz = httpx.get(
        f"{gw}/public/{owner.slug}/availability",
        params={"date": far.isoformat(), "timezone": "Mars/Base"},
    )
    assert bad_tz.status_code == 400 and bad_tz.json()["code"] == "invalid_timezone"
    # a control character (NUL would fail in PostgreSQL) is a clean 400, never a 500
    nul = book(gw, owner, at(far, 10), at(far, 11), attendee_email="x\u0000@example.org")
    assert nul.status_code == 400 and nul.json()["code"] == "invalid_attendee_email", nul.text


def test_idempotency_key(system: System) -> None:
    owner = make_owner(system)
    gw = system.gateways[0]
    day = future_day(10)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"title": "Once", "start": at(day, 9).isoformat(), "end": at(day, 9, 30).isoformat(),
            "attendee_email": "a@example.org"}  # fmt: skip
    first = httpx.post(f"{gw}/public/{owner.slug}/book", json=body, headers=key, timeout=30)
    again = httpx.post(
        f"{system.gateways[1]}/public/{owner.slug}/book", json=body, headers=key, timeout=30
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = httpx.post(
        f"{gw}/public/{owner.slug}/book", json={**body, "title": "Other"}, headers=key, timeout=30
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_pending_confirm_decline_cancel(system: System) -> None:
    owner = make_owner(system, confirm_before_booking=True)
    gw = system.gateways[0]
    day = future_day(11)
    pending = book(gw, owner, at(day, 13), at(day, 14))
    assert pending.status_code == 201 and pending.json()["status"] == "pending", pending.text
    booking_id = pending.json()["booking_id"]
    assert booking_id not in radicale_uids(owner)
    # it holds the slot
    assert book(gw, owner, at(day, 13, 30), at(day, 14)).status_code == 409

    async def confirm_twice() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(
                client.post(f"{g}/api/v1/bookings/{booking_id}/confirm", headers=owner.auth)
                for g in system.gateways
            ))  # fmt: skip

    results = sorted(r.status_code for r in asyncio.run(confirm_twice()))
    assert results == [200, 409]
    assert booking_id in radicale_uids(owner)

    declined = book(gw, owner, at(day, 15), at(day, 15, 30))
    declined_id = declined.json()["booking_id"]
    response = httpx.post(
        f"{gw}/api/v1/bookings/{declined_id}/decline", json={"reason": "busy"}, headers=owner.auth
    )
    assert response.status_code == 200 and response.json()["status"] == "declined"
    assert (
        book(gw, owner, at(day, 15), at(day, 15, 30)).status_code == 201
    )  # the slot is free again

    cancelled = httpx.post(f"{gw}/api/v1/bookings/{booking_id}/cancel", headers=owner.auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert booking_id not in radicale_uids(owner)
    listed = httpx.get(
        f"{gw}/api/v1/bookings", params={"status": "cancelled"}, headers=owner.auth
    ).json()
    assert [b["booking_id"] for b in listed["bookings"]] == [booking_id]
    other = make_owner(system)
    assert httpx.get(f"{gw}/api/v1/bookings/{booking_id}", headers=other.auth).status_code == 404


POLICY_CASES = [
    # condition_type, condition_value matching the booking below (10:00-11:30 UTC, guest@partner.org)
    ("caller_domain", "partner.org"),
    ("caller_domain", "external"),
    ("caller_email", "guest@partner.org"),
    ("caller_trust_level", "standard"),
    ("duration_over", "60"),
    ("weekday", "mon,tue,wed,thu,fri,sat,sun"),
    ("outside_hours", "11:00-18:00"),
]


@pytest.mark.parametrize(("condition_type", "condition_value"), POLICY_CASES)
def test_each_policy_condition_through_the_api(
    system: System, condition_type: str, condition_value: str
) -> None:
    owner = make_owner(system)
    gw = system.gateways[0]
    day = future_day(12)
    policy = httpx.post(
        f"{gw}/api/v1/policies",
        json={"name": f"No {condition_type}", "condition_type": condition_type,
              "condition_value": condition_value, "action": "deny", "priority": 10},
        headers=owner.auth,
    )  # fmt: skip
    assert policy.status_code == 201, policy.text
    body = {"title": "t", "start": at(day, 10).isoformat(), "end": at(day, 11, 30).isoformat(),
            "attendee_email": "guest@partner.org"}  # fmt: skip
    denied = httpx.post(f"{gw}/public/{owner.slug}/book", json=body, timeout=30)
    assert denied.status_code == 403, denied.text
    assert (
        denied.json()["code"] == "policy_denied"
        and f"No {condition_type}" in denied.json()["error"]
    )
    # a higher-priority allow decides first
    allow = httpx.post(
        f"{gw}/api/v1/policies",
        json={"name": "VIPs", "condition_type": "caller_email", "condition_value": "guest@partner.org",
              "action": "allow", "priority": 20},
        headers=owner.auth,
    )  # fmt: skip
    assert allow.status_code == 201
    assert httpx.post(f"{gw}/public/{owner.slug}/book", json=body, timeout=30).status_code == 201


def test_require_confirmation_and_trust_levels_through_the_api(system: System) -> None:
    owner = make_owner(system)
    gw = system.gateways[1]
    day = future_day(13)
    assert httpx.post(f"{gw}/api/v1/policies", headers=owner.auth, json={
        "name": "Check restricted", "condition_type": "caller_trust_level", "condition_value": "restricted",
        "action": "require_confirmation", "priority": 5}).status_code == 201  # fmt: skip
    for email, level in (("r@x.org", "restricted"), ("b@x.org", "blocked"), ("t@x.org", "trusted")):
        created = httpx.post(f"{gw}/api/v1/callers", headers=owner.auth,
                             json={"email": email, "display_name": level, "trust_level": level})  # fmt: skip
        assert created.status_code == 201, created.text
    assert httpx.post(f"{gw}/api/v1/callers", headers=owner.auth,
                      json={"email": "R@x.org", "trust_level": "trusted"}).status_code == 409  # fmt: skip
    assert httpx.post(f"{gw}/api/v1/callers", headers=owner.auth,
                      json={"email": "n@x.org", "trust_level": "vip"}).status_code == 400  # fmt: skip

    def attempt(email: str, hour: int) -> httpx.Response:
        return book(gw, owner, at(day, hour), at(day, hour, 30), attendee_email=email)

    pending = attempt("r@x.org", 9)
    assert pending.status_code == 201 and pending.json()["status"] == "pending"
    blocked = attempt("b@x.org", 10)
    assert blocked.status_code == 403 and blocked.json()["code"] == "policy_denied"
    assert attempt("t@x.org", 11).json()["status"] == "confirmed"
    assert attempt("unknown@x.org", 12).json()["status"] == "confirmed"  # standard by default
    bad = httpx.post(f"{gw}/api/v1/policies", headers=owner.auth, json={
        "name": "x", "condition_type": "moon_phase", "condition_value": "full", "action": "deny"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_condition_type"
