"""The invariants every resilience scenario ends with, read from the services' own databases,
the booking event stream and the owners' Radicale calendars.

Each check returns a list of violations (human sentences); an empty list is a pass. They read
state only: nothing here changes the system.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import nats

from contracts import subjects
from tests.e2e.harness import Owner, System, radicale_uids

ACTIVE = ("held", "pending", "confirmed")
# saga_step of a finished saga, and the status each may carry
FINAL_STEPS = {
    "done": {"confirmed"},
    "awaiting_owner": {"pending"},
    "compensated": {"failed", "declined", "cancelled", "expired"},
}
GRACE_SECONDS = 15.0  # a sweep runs every few seconds: this much past expiry is a violation


async def _fetch(system: System, service: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(system.database_url(service), timeout=10)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def bookings_of(system: System, owners: Iterable[Owner]) -> list[asyncpg.Record]:
    slugs = [o.slug for o in owners]
    return await _fetch(
        system, "booking", "SELECT * FROM bookings WHERE slug = ANY($1::text[])", slugs
    )


async def unfinished(system: System, owners: Iterable[Owner]) -> list[asyncpg.Record]:
    return [r for r in await bookings_of(system, owners) if r["saga_step"] not in FINAL_STEPS]


async def wait_for_bookings(
    system: System, owners: list[Owner], booking_ids: set[str], timeout: float
) -> None:
    """Wait until every one of ``booking_ids`` has a row (a 202's request handed over to
    booking is run, or its refusal recorded, a moment after the answer)."""
    deadline = time.monotonic() + timeout
    missing = set(booking_ids)
    while missing and time.monotonic() < deadline:
        missing -= {r["id"] for r in await bookings_of(system, owners)}
        if missing:
            await asyncio.sleep(0.5)


async def settle(system: System, owners: list[Owner], timeout: float) -> float:
    """Wait until every saga of these owners is final; the seconds it took (raises on timeout)."""
    started = time.monotonic()
    left: list[asyncpg.Record] = []
    while time.monotonic() - started < timeout:
        left = await unfinished(system, owners)
        if not left:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    steps = Counter((r["status"], r["saga_step"]) for r in left)
    raise AssertionError(f"{len(left)} sagas still unfinished after {timeout:.0f}s: {dict(steps)}")


# --- the checks ----------------------------------------------------------------------------


async def overlapping_active_bookings(system: System) -> list[str]:
    """No two active bookings of a tenant overlap: a self-join over booking's whole table."""
    rows = await _fetch(
        system,
        "booking",
        "SELECT a.id AS a, b.id AS b FROM bookings a JOIN bookings b "
        "ON a.tenant_id = b.tenant_id AND a.id < b.id "
        "AND tstzrange(a.start_at, a.occupied_until) && tstzrange(b.start_at, b.occupied_until) "
        "WHERE a.status = ANY($1::text[]) AND b.status = ANY($1::text[])",
        list(ACTIVE),
    )
    return [f"active bookings {r['a']} and {r['b']} overlap" for r in rows]


async def sagas_not_final(system: System, owners: list[Owner]) -> list[str]:
    """Every saga ended confirmed, pending, declined, cancelled or compensated (failed)."""
    wrong = []
    for row in await bookings_of(system, owners):
        allowed = FINAL_STEPS.get(row["saga_step"])
        if allowed is None or row["status"] not in allowed:
            wrong.append(f"{row['id']} ended {row['status']}/{row['saga_step']}")
    return wrong


async def stale_holds_and_reservations(system: System) -> list[str]:
    """No hold, pending expiry or quota reservation outlives its expiry (plus a sweep's grace)."""
    holds = await _fetch(
        system,
        "booking",
        "SELECT id, status, hold_expires_at FROM bookings WHERE status IN ('held', 'pending') "
        "AND hold_expires_at < now() - make_interval(secs => $1)",
        GRACE_SECONDS,
    )
    reservations = await _fetch(
        system,
        "billing",
        "SELECT booking_id, expires_at FROM quota_reservations WHERE state = 'reserved' "
        "AND expires_at < now() - make_interval(secs => $1)",
        GRACE_SECONDS,
    )
    return [
        f"{r['status']} {r['id']} outlived its expiry {r['hold_expires_at']}" for r in holds
    ] + [
        f"quota reservation {r['booking_id']} outlived its expiry {r['expires_at']}"
        for r in reservations
    ]


async def quota_disagreements(system: System, owners: list[Owner]) -> list[str]:
    """Billing agrees with booking: a confirmed booking's unit is committed, a compensated one's
    is released (or expired, or was never taken), and each month's counter equals the units
    reserved or committed in it (a command applied twice would show here)."""
    bookings = {r["id"]: r for r in await bookings_of(system, owners)}
    rows = await _fetch(
        system,
        "billing",
        "SELECT booking_id, state FROM quota_reservations WHERE booking_id = ANY($1::text[])",
        list(bookings),
    )
    state = {r["booking_id"]: r["state"] for r in rows}
    wrong = []
    for booking_id, row in bookings.items():
        unit = state.get(booking_id)
        if row["status"] == "confirmed" and unit != "committed":
            wrong.append(f"confirmed {booking_id} has quota state {unit}")
        elif row["status"] == "pending" and unit != "reserved":
            wrong.append(f"pending {booking_id} has quota state {unit}")
        elif row["saga_step"] == "compensated" and unit in ("reserved", "committed"):
            wrong.append(f"{row['status']} {booking_id} still holds a {unit} quota unit")
    counters = await _fetch(
        system,
        "billing",
        "SELECT m.tenant_id, m.month, m.used, "
        "(SELECT count(*) FROM quota_reservations r WHERE r.tenant_id = m.tenant_id "
        " AND r.month = m.month AND r.state IN ('reserved', 'committed')) AS counted "
        "FROM quota_months m",
    )
    wrong += [
        f"quota counter of {r['tenant_id']} {r['month']} is {r['used']}, units held {r['counted']}"
        for r in counters
        if r["used"] != r["counted"]
    ]
    return wrong


async def calendar_disagreements(system: System, owners: list[Owner]) -> list[str]:
    """Every confirmed booking has exactly one event on the receiving calendar (Radicale and
    calendars' own record), and every event Cortex wrote belongs to a live booking."""
    bookings = await bookings_of(system, owners)
    by_tenant: dict[str, set[str]] = {}
    for row in bookings:
        by_tenant.setdefault(row["slug"], set())
        if row["status"] == "confirmed":
            by_tenant[row["slug"]].add(row["id"])
    written = await _fetch(
        system,
        "calendars",
        "SELECT booking_id FROM booking_events WHERE deleted_at IS NULL "
        "AND booking_id = ANY($1::text[])",
        [r["id"] for r in bookings],
    )
    recorded = {r["booking_id"] for r in written}
    wrong = []
    for owner in owners:
        uids = Counter(
            u for u in await asyncio.to_thread(radicale_uids, owner) if u.startswith("bk_")
        )
        confirmed = by_tenant.get(owner.slug, set())
        wrong += [
            f"{uid} is on {owner.slug}'s calendar {n} times" for uid, n in uids.items() if n > 1
        ]
        wrong += [
            f"confirmed {b} has no event on {owner.slug}'s calendar" for b in confirmed - set(uids)
        ]
        wrong += [
            f"event {u} on {owner.slug}'s calendar has no live booking"
            for u in set(uids) - confirmed
        ]
        mine = {r["id"] for r in bookings if r["slug"] == owner.slug}
        wrong += [f"confirmed {b} has no booking_events row" for b in confirmed - recorded]
        wrong += [f"booking_events row of non-confirmed {b}" for b in (recorded & mine) - confirmed]
    return wrong  # fmt: skip


def _event_start(owner: Owner, uid: str) -> datetime | None:
    """DTSTART (UTC) of the event ``uid`` on the owner's Radicale calendar; None without one."""
    ics = httpx.get(f"{owner.calendar_url}{uid}.ics", auth=(owner.user, owner.password), timeout=10)
    found = re.search(r"DTSTART[^:\r\n]*:(\d{8}T\d{6})Z", ics.text)
    if ics.status_code != 200 or not found:
        return None
    return datetime.strptime(found.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


async def moved_event_disagreements(system: System, owners: list[Owner]) -> list[str]:
    """A rescheduled confirmed booking's event is where the booking is (moved, not left
    behind or moved back)."""
    by_slug = {o.slug: o for o in owners}
    wrong = []
    for row in await bookings_of(system, owners):
        history = row["history"]
        if row["status"] != "confirmed" or history in (None, "[]", []):
            continue
        start = await asyncio.to_thread(_event_start, by_slug[row["slug"]], row["id"])
        if start != row["start_at"]:
            wrong.append(f"rescheduled {row['id']} is at {row['start_at']}, its event at {start}")
    return wrong


@dataclass
class StreamCount:
    messages: int = 0
    by_booking: dict[str, Counter[str]] = field(default_factory=dict)
    duplicate_ids: list[str] = field(default_factory=list)


async def booking_stream(system: System) -> StreamCount:
    """Every message in booking's JetStream stream, counted by message id and by booking."""
    nc = await nats.connect(system.stack.nats_url, connect_timeout=5, max_reconnect_attempts=3)
    counted = StreamCount()
    seen: Counter[str] = Counter()
    try:
        js = nc.jetstream()
        stream = subjects.stream_name(subjects.BOOKING)
        info = await js.stream_info(stream)
        last = info.state.last_seq
        seq = info.state.first_seq
        while seq and seq <= last:
            try:
                raw = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                seq += 1
                continue
            seq += 1
            counted.messages += 1
            body = json.loads(raw.data or b"{}")
            seen[body.get("message_id", "")] += 1
            booking_id = (body.get("booking") or {}).get("booking_id")
            if booking_id:
                kind = (raw.subject or "").rsplit(".", 1)[-1]
                counted.by_booking.setdefault(booking_id, Counter())[kind] += 1
    finally:
        await nc.close()
    counted.duplicate_ids = [m for m, n in seen.items() if n > 1]
    return counted


TERMINAL_EVENT = {
    "confirmed": "booking_confirmed",
    "failed": "booking_failed",
    "pending": "booking_pending",
    "declined": "booking_declined",
    "cancelled": "booking_cancelled",
    "expired": "booking_expired",
}


async def event_disagreements(system: System, owners: list[Owner]) -> list[str]:
    """Each booking's events reached the stream exactly once: one booking_requested and one
    event for its final state; no message id twice (the outbox relay re-publishing after a
    lost acknowledgement is deduplicated by Nats-Msg-Id)."""
    stream = await booking_stream(system)
    wrong = [f"message {m} is in the stream twice" for m in stream.duplicate_ids]
    for row in await bookings_of(system, owners):
        kinds = stream.by_booking.get(row["id"], Counter())
        if kinds["booking_requested"] != 1:
            wrong.append(f"{row['id']}: {kinds['booking_requested']} booking_requested events")
        final = TERMINAL_EVENT.get(row["status"])
        if final and kinds[final] != 1:
            wrong.append(f"{row['status']} {row['id']}: {kinds[final]} {final} events")
        doubles = [k for k, n in kinds.items() if n > 1]
        if doubles:
            wrong.append(f"{row['id']}: events published twice: {doubles}")
    return wrong


async def outbox_backlog(system: System) -> list[str]:
    wrong = []
    for service in ("identity", "booking", "calendars", "billing"):
        left = await _fetch(
            system, service, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"
        )
        if left[0]["n"]:
            wrong.append(f"{service}: {left[0]['n']} outbox messages never published")
    return wrong


async def wait_for_outboxes(system: System, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and await outbox_backlog(system):  # noqa: ASYNC110
        await asyncio.sleep(0.5)


async def violations(system: System, owners: list[Owner], *, events: bool = True) -> list[str]:
    """Every invariant over these owners (and the overlap check over every tenant)."""
    await wait_for_outboxes(system)
    found = (
        await overlapping_active_bookings(system)
        + await sagas_not_final(system, owners)
        + await stale_holds_and_reservations(system)
        + await quota_disagreements(system, owners)
        + await calendar_disagreements(system, owners)
        + await moved_event_disagreements(system, owners)
        + await outbox_backlog(system)
    )
    if events:
        found += await event_disagreements(system, owners)
    return found


def assert_invariants(system: System, owners: list[Owner], *, events: bool = True) -> None:
    found = asyncio.run(violations(system, owners, events=events))
    assert not found, f"{len(found)} invariant violations:\n" + "\n".join(found[:50])
