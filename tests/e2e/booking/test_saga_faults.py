"""The saga under faults: a failing provider write, a stalled participant, a killed replica."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid

import httpx
import pytest

from contracts import booking as booking_msg
from tests.e2e.harness import (
    System,
    SystemOptions,
    at,
    book,
    booking_row,
    booking_row_at,
    free_at,
    future_day,
    hand_over,
    make_owner,
    process_id,
    radicale_uids,
    reservations,
    settled,
)

pytestmark = pytest.mark.e2e

MAX_CALENDAR_WRITE = 4000  # bytes Radicale accepts in one request


@pytest.fixture(scope="module")
def system_options() -> SystemOptions:
    return SystemOptions(
        replicas={"booking": 2},
        radicale_max_content_length=MAX_CALENDAR_WRITE,
        environ={
            "CORTEX_BOOKING_HOLD_SECONDS": "4",
            "CORTEX_BOOKING_RECOVERY_INTERVAL_SECONDS": "1",
            "CORTEX_BOOKING_PARTICIPANT_TIMEOUT_SECONDS": "20",
            "CORTEX_GATEWAY_BOOKING_TIMEOUT_SECONDS": "2",
        },
    )


def test_a_failed_provider_write_releases_everything(system: System) -> None:
    owner = make_owner(system)
    day = future_day(4)
    failed = book(
        system.gateways[0],
        owner,
        at(day, 10),
        at(day, 11),
        description="x" * (MAX_CALENDAR_WRITE + 500),
    )
    assert failed.status_code == 502, failed.text
    assert failed.json()["code"] == "calendar_write_failed"
    assert "calendar" in failed.json()["error"]
    row = system.rows("booking", "SELECT * FROM bookings WHERE slug = $1", owner.slug)[0]
    assert (row["status"], row["saga_step"]) == ("failed", "compensated")
    assert all(r["state"] != "reserved" for r in reservations(system, row["id"]))
    assert free_at(system, owner, day, "10:00")
    again = book(system.gateways[0], owner, at(day, 10), at(day, 11))
    assert again.status_code == 201, again.text
    assert radicale_uids(owner) == [again.json()["booking_id"]]


def test_a_stalled_participant_gives_202_then_the_saga_finishes(system: System) -> None:
    owner = make_owner(system)
    day = future_day(5)
    billing = process_id(system, "billing-1")
    os.kill(billing, signal.SIGSTOP)
    try:
        accepted = book(system.gateways[0], owner, at(day, 9), at(day, 9, 30))
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        assert body["status"] == "processing"
        assert body["status_url"] == f"/public/{owner.slug}/bookings/{body['booking_id']}"
    finally:
        os.kill(billing, signal.SIGCONT)
    assert settled(system, owner, body["booking_id"], 40).json()["status"] == "confirmed"
    assert body["booking_id"] in radicale_uids(owner)


def test_killed_booking_replicas_mid_saga_are_recovered(system: System) -> None:
    owner = make_owner(system)
    day = future_day(6)
    billing = process_id(system, "billing-1")
    os.kill(billing, signal.SIGSTOP)  # the saga stalls at the quota reservation: mid-prepare
    try:
        accepted = book(system.gateways[0], owner, at(day, 15), at(day, 15, 30))
        assert accepted.status_code == 202, accepted.text
        booking_id = accepted.json()["booking_id"]
        row = booking_row(system, booking_id)
        assert row is not None and row["saga_step"] == "preparing"
        for name in ("booking-1", "booking-2"):
            system.stack.child(name).stop(signal.SIGKILL)
    finally:
        os.kill(billing, signal.SIGCONT)
    for name in ("booking-1", "booking-2"):
        system.stack.child(name).start()
    row = booking_row_at(system, booking_id, ("done", "compensated"), 60)
    assert row is not None and (row["status"], row["saga_step"]) == ("failed", "compensated"), dict(
        row or {}
    )
    assert all(r["state"] != "reserved" for r in reservations(system, booking_id))
    assert booking_id not in radicale_uids(owner)
    assert free_at(system, owner, day, "15:00")
    # no hold outlives its expiry anywhere
    stale = [
        r["id"] for r in system.rows("booking", "SELECT * FROM bookings")
        if r["status"] == "held" and r["hold_expires_at"] is not None
        and r["hold_expires_at"].timestamp() < time.time() - 10
    ]  # fmt: skip
    assert stale == []


def test_a_retry_while_the_first_saga_runs_is_never_a_held_201(system: System) -> None:
    """Regression (found by the resilience storm): a retry with the first request's
    Idempotency-Key, arriving while that saga still ran, was answered 201 "held"."""
    owner = make_owner(system)
    day = future_day(7)
    key = {"Idempotency-Key": "retry-while-running"}
    body = {"title": "Intro call", "start": at(day, 11).isoformat(),
            "end": at(day, 11, 30).isoformat(), "attendee_email": "guest@example.org"}  # fmt: skip
    url = f"{system.gateways[0]}/public/{owner.slug}/book"
    billing = process_id(system, "billing-1")
    os.kill(billing, signal.SIGSTOP)  # the first saga stalls at the quota reservation
    try:
        first = httpx.post(url, json=body, headers=key, timeout=30)
        assert first.status_code == 202, first.text
        retry = httpx.post(url, json=body, headers=key, timeout=30)
        # never a 201 for a saga still running: 202 and the status URL, the booking's own
        # answer (still held) or the gateway's when it takes longer than its timeout (2 s)
        assert retry.status_code == 202, retry.text
        assert retry.json()["booking_id"] == first.json()["booking_id"]
    finally:
        os.kill(billing, signal.SIGCONT)
    deadline = time.monotonic() + 40
    later = None
    while time.monotonic() < deadline:
        later = httpx.post(url, json=body, headers=key, timeout=30)
        if later.status_code != 202:
            break
        time.sleep(0.3)
    assert later is not None and later.status_code == 201, later and later.text
    assert later.json()["booking_id"] == first.json()["booking_id"]
    assert later.json()["status"] == "confirmed"


def test_a_request_lost_with_its_replica_still_gets_an_outcome(system: System) -> None:
    """Regression (found by the resilience suite): a request that died with the booking
    replica holding it, after the gateway had answered 202, left a status URL that answered
    404 forever. The gateway now hands an unanswered request over durably."""
    owner = make_owner(system)
    day = future_day(8)
    names = ("booking-1", "booking-2")
    pids = [process_id(system, name) for name in names]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # the request reaches a replica that never runs it
    try:
        accepted = book(system.gateways[0], owner, at(day, 13), at(day, 13, 30))
        assert accepted.status_code == 202, accepted.text
        for name in names:
            system.stack.child(name).stop(signal.SIGKILL)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    for name in names:
        system.stack.child(name).start()
    answer = settled(system, owner, accepted.json()["booking_id"], 60)
    assert answer.json()["status"] == "confirmed", answer.text
    assert accepted.json()["booking_id"] in radicale_uids(owner)


def test_an_unanswered_request_refused_later_ends_failed_with_its_reason(
    system: System,
) -> None:
    """A handed-over request that booking refuses (here: the slot was taken meanwhile) is
    recorded as a failed booking, so its 202's status URL answers with the reason."""
    owner = make_owner(system)
    day = future_day(9)
    taken = book(system.gateways[0], owner, at(day, 14), at(day, 14, 30))
    assert taken.status_code == 201, taken.text
    booking_id = f"bk_{uuid.uuid4().hex[:20]}"
    command = booking_msg.CreateBooking(
        booking_id=booking_id, slug=owner.slug, title="Late", start=at(day, 14),
        end=at(day, 14, 30), attendee_email="late@example.org",
    )  # fmt: skip
    hand_over(system, command)
    hand_over(system, command)  # the same request twice: one outcome
    answer = settled(system, owner, booking_id, 30)
    assert answer.json()["status"] == "failed"
    row = booking_row(system, booking_id)
    assert row is not None and "conflict" in row["reason"].lower(), dict(row or {})
    assert radicale_uids(owner) == [taken.json()["booking_id"]]


def test_a_cancellation_with_the_calendar_down_ends_the_booking_and_cleans_up_later(
    system: System,
) -> None:
    """The owner cancels while the calendar server is down: the answer is the cancelled
    booking (the slot is free at once), and the calendar event and the quota are released
    by recovery once the server is back; the booking never turns into a failed one."""
    owner = make_owner(system)
    day = future_day(10)
    booked = book(system.gateways[0], owner, at(day, 11), at(day, 11, 30))
    assert booked.status_code == 201, booked.text
    booking_id = booked.json()["booking_id"]
    assert booking_id in radicale_uids(owner)
    system.radicale.stop()
    try:
        cancelled = httpx.post(
            f"{system.gateways[0]}/api/v1/bookings/{booking_id}/cancel",
            json={"reason": "Double-booked elsewhere"},
            headers=owner.auth,
            timeout=30,
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        row = booking_row(system, booking_id)
        assert (row["status"], row["saga_step"]) == ("cancelled", "ending")
        again = httpx.post(
            f"{system.gateways[0]}/api/v1/bookings/{booking_id}/cancel", headers=owner.auth
        )
        assert again.status_code == 409 and again.json()["code"] == "not_cancellable"
    finally:
        system.radicale.start()
    row = booking_row_at(system, booking_id, ("compensated",), 60)
    assert row is not None
    assert (row["status"], row["saga_step"]) == ("cancelled", "compensated"), dict(row)
    assert row["reason"] == "Double-booked elsewhere"
    assert booking_id not in radicale_uids(owner)
    assert all(r["state"] != "reserved" for r in reservations(system, booking_id))
    listed = httpx.get(
        f"{system.gateways[0]}/api/v1/bookings/{booking_id}", headers=owner.auth
    ).json()
    assert listed["status"] == "cancelled"
