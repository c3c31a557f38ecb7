"""What an attendee and an owner are answered when something fails at the wrong moment, and
at the calendar's edges: the whole system as processes, Radicale as the owners' calendar.

* past the pivot (the event is written) no error: the booking, or 202 and its status URL;
* an owner's confirm that meets a calendar down keeps the booking pending;
* a 202's hand-over outlives a database outage, and a refused one is recorded;
* an Idempotency-Key belongs to the page's owner, not to the slug;
* a pending booking's quota reservation lasts as long as the booking waits;
* dates and times at the calendar's edges are a 400, never a 500.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from contracts import booking as booking_msg
from contracts.envelope import Message
from contracts.rpc import ErrorKind, Rpc
from cortex_runtime.errors import ServiceError
from tests.e2e.harness import (
    CaldavProxy,
    Owner,
    System,
    SystemOptions,
    at,
    book,
    booking_body,
    booking_row,
    future_day,
    hand_over,
    make_owner,
    radicale_uids,
    reservation,
    settled,
)

pytestmark = pytest.mark.e2e

QUOTA = 2  # bookings a month per owner here: the quota test fills it
QUOTA_HOLD_SECONDS = 3  # billing's own reservation hold, far shorter than a pending booking's


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        environ={
            "CORTEX_BOOKING_HOLD_SECONDS": "4",
            "CORTEX_BOOKING_RECOVERY_INTERVAL_SECONDS": "1",
            "CORTEX_BOOKING_PARTICIPANT_TIMEOUT_SECONDS": "3",
            # booking answers first, never the 202
            "CORTEX_GATEWAY_BOOKING_TIMEOUT_SECONDS": "20",
            "CORTEX_BILLING_QUOTA_HOLD_SECONDS": str(QUOTA_HOLD_SECONDS),
            "CORTEX_BILLING_QUOTA_SWEEP_SECONDS": "1",
            "CORTEX_BILLING_PLAN_OVERRIDES": json.dumps(
                {"starter": {"bookings_per_month_individual": QUOTA}}
            ),
        }
    )


@pytest.fixture
def proxy(system: System) -> Iterator[CaldavProxy]:
    server = CaldavProxy(system.radicale.url)
    try:
        yield server
    finally:
        server.stop()


# --- item 3: past the pivot, the booking -------------------------------------------------------


def test_past_the_pivot_the_attendee_gets_the_booking_never_an_error(
    system: System, proxy: CaldavProxy
) -> None:
    """Billing goes down right as the event is written: the quota cannot be committed now,
    and recovery will confirm the booking. The attendee gets 202 and the status URL (it was
    a 503), a retry of the same request without Idempotency-Key gets its own booking (it was
    a 409 against it), and once billing is back the booking is confirmed."""
    owner = make_owner(system, caldav_server=proxy.url)
    day = future_day(4)
    billing = system.stack.child("billing-1")

    def stop_billing(path: str) -> None:
        billing.stop(signal.SIGKILL)  # the quota was reserved; nobody will answer its commit
        return None

    proxy.on_write = stop_billing
    try:
        first = book(system.gateways[0], owner, at(day, 10), at(day, 10, 30))
        proxy.on_write = None
        assert first.status_code == 202, first.text
        booking_id = first.json()["booking_id"]
        assert first.json()["status_url"] == f"/public/{owner.slug}/bookings/{booking_id}"
        assert booking_id in radicale_uids(owner)  # past the pivot
        row = booking_row(system, booking_id)
        assert row is not None and row["saga_step"] == "committing", dict(row or {})
        # the same request again, without a key, while the booking is still being confirmed
        retry = book(system.gateways[0], owner, at(day, 10), at(day, 10, 30))
        assert retry.status_code == 202, retry.text
        assert retry.json()["booking_id"] == booking_id
    finally:
        proxy.on_write = None
        if not billing.alive:
            billing.start()
    assert settled(system, owner, booking_id, 90).json()["status"] == "confirmed"
    again = book(system.gateways[0], owner, at(day, 10), at(day, 10, 30))
    assert again.status_code == 201, again.text
    assert (again.json()["booking_id"], again.json()["status"]) == (booking_id, "confirmed")
    # another request for the same slot is still a conflict
    other = book(system.gateways[0], owner, at(day, 10), at(day, 10, 30), title="Other")
    assert other.status_code == 409 and other.json()["code"] == "slot_unavailable", other.text
    assert radicale_uids(owner) == [booking_id]
    committed = reservation(system, booking_id)
    assert committed is not None and committed["state"] == "committed"


# --- item 5: the owner's confirm with the calendar down --------------------------------------


def test_a_confirm_meeting_a_calendar_down_leaves_the_booking_pending(
    system: System, proxy: CaldavProxy
) -> None:
    owner = make_owner(system, caldav_server=proxy.url, confirm_before_booking=True)
    gw = system.gateways[0]
    day = future_day(5)
    pending = book(gw, owner, at(day, 13), at(day, 13, 30))
    assert pending.status_code == 201 and pending.json()["status"] == "pending", pending.text
    booking_id = pending.json()["booking_id"]
    confirm_url = f"{gw}/api/v1/bookings/{booking_id}/confirm"

    proxy.on_write = lambda path: 503  # the calendar server is down for the moment
    try:
        refused = httpx.post(confirm_url, headers=owner.auth, timeout=30)
    finally:
        proxy.on_write = None
    assert refused.status_code == 503, refused.text
    assert refused.headers.get("Retry-After")
    assert refused.json()["code"] == "calendar_unavailable"
    detail = httpx.get(f"{gw}/api/v1/bookings/{booking_id}", headers=owner.auth).json()
    assert detail["status"] == "pending"
    held = reservation(system, booking_id)
    assert held is not None and held["state"] == "reserved"
    taken = book(gw, owner, at(day, 13), at(day, 13, 30), attendee_email="else@example.org")
    assert taken.status_code == 409, taken.text  # it still holds its slot

    confirmed = httpx.post(confirm_url, headers=owner.auth, timeout=30)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    assert booking_id in radicale_uids(owner)
    committed = reservation(system, booking_id)
    assert committed is not None and committed["state"] == "committed"


# --- item 12: a pending booking's quota --------------------------------------------------------


def test_a_pending_bookings_quota_is_held_as_long_as_it_waits(system: System) -> None:
    """Billing's own hold (3 s here) is far shorter than a pending booking's wait (48 h):
    the reservation lasts as long as the booking asks, so the month's quota stays taken
    and the owner's confirm commits it."""
    owner = make_owner(system, confirm_before_booking=True)
    gw = system.gateways[0]
    day = future_day(7)
    pending = book(gw, owner, at(day, 9), at(day, 9, 30))
    assert pending.status_code == 201 and pending.json()["status"] == "pending", pending.text
    booking_id = pending.json()["booking_id"]
    time.sleep(QUOTA_HOLD_SECONDS + 3)  # billing's hold has passed, its sweep has run
    held = reservation(system, booking_id)
    assert held is not None and held["state"] == "reserved", dict(held or {})
    second = book(gw, owner, at(day, 11), at(day, 11, 30))
    assert second.status_code == 201, second.text
    over = book(gw, owner, at(day, 14), at(day, 14, 30))
    assert over.status_code == 402, over.text  # the pending booking still counts
    confirmed = httpx.post(
        f"{gw}/api/v1/bookings/{booking_id}/confirm", headers=owner.auth, timeout=30
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    committed = reservation(system, booking_id)
    assert committed is not None and committed["state"] == "committed"


# --- item 10: an Idempotency-Key belongs to the page's owner ---------------------------------


def test_a_key_reused_after_the_slug_changed_owner_books_for_the_new_owner(
    system: System,
) -> None:
    gw = system.gateways[0]
    first_owner = make_owner(system)
    day = future_day(8)
    body = booking_body(at(day, 15), at(day, 15, 30))
    key = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    slug = first_owner.slug
    first = httpx.post(f"{gw}/public/{slug}/book", json=body, headers=key, timeout=60)
    assert first.status_code == 201, first.text
    moved = httpx.put(
        f"{gw}/api/v1/settings/slug",
        json={"slug": f"moved-{uuid.uuid4().hex[:8]}"},
        headers=first_owner.auth,
    )
    assert moved.status_code == 200, moved.text
    second_owner = make_owner(system)
    taken = httpx.put(f"{gw}/api/v1/settings/slug", json={"slug": slug}, headers=second_owner.auth)
    assert taken.status_code == 200, taken.text

    again = httpx.post(f"{gw}/public/{slug}/book", json=body, headers=key, timeout=60)
    assert again.status_code == 201, again.text
    assert again.json()["booking_id"] != first.json()["booking_id"]
    mine = httpx.get(f"{gw}/api/v1/bookings", headers=second_owner.auth).json()["bookings"]
    assert [b["booking_id"] for b in mine] == [again.json()["booking_id"]]
    theirs = httpx.get(f"{gw}/api/v1/bookings", headers=first_owner.auth).json()["bookings"]
    assert [b["booking_id"] for b in theirs] == [first.json()["booking_id"]]
    # the new owner's retry with the key is its own first answer
    replay = httpx.post(f"{gw}/public/{slug}/book", json=body, headers=key, timeout=60)
    assert replay.status_code == 201 and replay.json() == again.json()


# --- item 8: the calendar's edges ------------------------------------------------------------

PLUS_14 = timezone(timedelta(hours=14))
EDGE_SLOTS = [
    (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    (datetime(1, 1, 1, 0, 0, tzinfo=PLUS_14), datetime(1, 1, 1, 0, 30, tzinfo=PLUS_14)),
    (datetime(2030, 1, 1, 10, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
]  # fmt: skip


def _json_4xx(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]


def test_the_calendars_edges_are_4xx_json_through_the_routes(system: System) -> None:
    owner = make_owner(system)
    gw = system.gateways[0]
    for params in (
        {"date": "9999-12-31"},
        {"date": "9999-12-31", "timezone": "Etc/GMT+12"},
        {"date": "0001-01-01", "timezone": "Pacific/Kiritimati"},
        {"date": "0001-01-01"},
    ):
        _json_4xx(httpx.get(f"{gw}/public/{owner.slug}/availability", params=params))
    for start, end in EDGE_SLOTS:
        _json_4xx(book(gw, owner, start, end))
        _json_4xx(book(gw, owner, start, end, key=f"edge-{uuid.uuid4().hex}"))
    for params in ({"from": "0001-01-01T00:00:00+14:00"}, {"to": "9999-12-31T23:59:00-12:00"}):
        _json_4xx(httpx.get(f"{gw}/api/v1/bookings", params=params, headers=owner.auth))


def test_the_calendars_edges_are_refused_by_booking_itself(system: System) -> None:
    """Whoever sends booking's commands (not only this gateway): an invalid request."""
    owner = make_owner(system)

    calls: list[tuple[Rpc[Any, Any], Message]] = [
        (
            booking_msg.GET_AVAILABILITY,
            booking_msg.GetAvailability(slug=owner.slug, day=day, timezone=zone),
        )
        for day, zone in ((date(9999, 12, 31), None), (date(1, 1, 1), "Pacific/Kiritimati"))
    ]
    calls += [
        (booking_msg.CREATE_BOOKING, _command(owner, start, end)) for start, end in EDGE_SLOTS
    ]
    errors: list[ServiceError] = []
    for rpc, request in calls:
        try:
            system.bus.call(rpc, request)
        except ServiceError as exc:
            errors.append(exc)
    assert len(errors) == 2 + len(EDGE_SLOTS)
    assert all(e.kind is ErrorKind.INVALID for e in errors), [e.reply for e in errors]
    assert {e.code for e in errors} == {"date_out_of_range"}


# --- item 4: hand-overs ------------------------------------------------------------------------


def _command(owner: Owner, start: datetime, end: datetime) -> booking_msg.CreateBooking:
    return booking_msg.CreateBooking(
        booking_id=f"bk_{uuid.uuid4().hex[:20]}", slug=owner.slug, title="Handed over",
        start=start, end=end, attendee_email="late@example.org",
    )  # fmt: skip


def test_a_handed_over_request_with_a_bad_range_ends_failed_with_its_reason(
    system: System,
) -> None:
    """A refused range was recorded with end = start, against the range constraint: the
    hand-over was dead-lettered and the 202's status URL answered 404 forever."""
    owner = make_owner(system)
    day = future_day(9)
    command = _command(owner, at(day, 11), at(day, 10))
    hand_over(system, command)
    answer = settled(system, owner, command.booking_id, 30)
    assert answer.json()["status"] == "failed", answer.text
    row = booking_row(system, command.booking_id)
    assert row is not None and "end after it starts" in row["reason"], dict(row or {})


def test_a_hand_over_outlasts_a_database_outage(system: System) -> None:
    """Handed over while PostgreSQL is down for longer than five deliveries' backoff (about
    4 s, after which it was dead-lettered): it is settled once the database is back."""
    owner = make_owner(system)
    day = future_day(10)
    command = _command(owner, at(day, 16), at(day, 16, 30))
    postgres = system.stack.postgres
    assert postgres is not None
    postgres.stop()
    try:
        hand_over(system, command)
        time.sleep(10)
    finally:
        postgres.start(log_file=system.stack.logs_dir / "postgres.log")
    answer = settled(system, owner, command.booking_id, 90)
    assert answer.json()["status"] == "confirmed", answer.text
    assert command.booking_id in radicale_uids(owner)
